//! The simulator declares each command's arguments as QEMU 7.2 does: for every command both
//! offer, the argument types from `query-qmp-schema` (type names unmasked and resolved) must
//! be the same as real `qemu-system-x86_64`'s, so argument errors match too.

mod common;

use std::collections::BTreeMap;

use serde_json::{json, Value};

fn fetch(peer: &common::Peer) -> Vec<Value> {
    common::query(peer, "query-qmp-schema").as_array().unwrap().clone()
}

/// Where the simulator declares `any`, it accepts anything (a QAPI alternate or an object it
/// does not check): that matches whatever QEMU has there. The simulator implements a few
/// `blockdev-add` drivers only, so only its own variants are compared.
fn same(qemu: &Value, sim: &Value) -> bool {
    match (qemu, sim) {
        (_, Value::String(s)) if s == "any" => true,
        (Value::Object(q), Value::Object(s)) => {
            let keys_ok = s.keys().all(|k| q.contains_key(k))
                && q.keys().all(|k| k == "variants" || s.contains_key(k) || k == "oob");
            keys_ok
                && s.iter().all(|(k, sv)| {
                    let qv = &q[k];
                    if k == "variants" {
                        sv.as_object()
                            .unwrap()
                            .iter()
                            .all(|(case, st)| qv.get(case).is_some_and(|qt| same(qt, st)))
                    } else {
                        same(qv, sv)
                    }
                })
        }
        (Value::Array(q), Value::Array(s)) => q.len() == s.len() && q.iter().zip(s).all(|(a, b)| same(a, b)),
        _ => qemu == sim,
    }
}

/// A type with its masked names resolved away, for comparison.
fn resolve(types: &BTreeMap<String, Value>, name: &str, depth: usize) -> Value {
    let Some(t) = types.get(name) else { return json!(name) };
    if depth > 8 {
        return json!("...");
    }
    match t["meta-type"].as_str().unwrap_or_default() {
        "builtin" => json!(name),
        "enum" => {
            let mut v: Vec<String> =
                t["values"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().into()).collect();
            v.sort();
            json!({"enum": v})
        }
        "array" => json!([resolve(types, t["element-type"].as_str().unwrap(), depth + 1)]),
        "alternate" => json!("alternate"),
        "object" => {
            let members: Vec<Value> = t["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    json!({"name": m["name"], "optional": m.get("default").is_some(),
                           "type": resolve(types, m["type"].as_str().unwrap(), depth + 1)})
                })
                .collect();
            let mut out = json!({"members": members});
            if let Some(vs) = t["variants"].as_array() {
                let mut vars = BTreeMap::new();
                for v in vs {
                    vars.insert(
                        v["case"].as_str().unwrap().to_string(),
                        resolve(types, v["type"].as_str().unwrap(), depth + 1),
                    );
                }
                out["variants"] = json!(vars);
            }
            out
        }
        other => json!(other),
    }
}

fn commands(schema: &[Value]) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let types: BTreeMap<String, Value> =
        schema.iter().map(|e| (e["name"].as_str().unwrap().to_string(), e.clone())).collect();
    let mut cmds = BTreeMap::new();
    for e in schema.iter().filter(|e| e["meta-type"] == "command" || e["meta-type"] == "event") {
        let args = resolve(&types, e["arg-type"].as_str().unwrap(), 0);
        cmds.insert(
            e["name"].as_str().unwrap().to_string(),
            json!({"args": args, "oob": e.get("allow-oob")}),
        );
    }
    (cmds, types)
}

#[test]
fn argument_types_match_qemu() {
    let qemu = common::Peer::qemu_system();
    let sim = common::Peer::sim();
    let (want, _) = commands(&fetch(&qemu));
    let (got, _) = commands(&fetch(&sim));
    let mut diffs = Vec::new();
    let mut compared = 0;
    for (name, g) in &got {
        let Some(w) = want.get(name) else { continue };
        compared += 1;
        if !same(w, g) {
            diffs.push(format!("{name}:\n  qemu: {w}\n  sim:  {g}"));
        }
    }
    assert!(compared >= 40, "only {compared} commands/events in common");
    assert!(diffs.is_empty(), "{} differ:\n{}", diffs.len(), diffs.join("\n"));
}
