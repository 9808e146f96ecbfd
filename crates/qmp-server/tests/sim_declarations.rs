//! The simulator's declarations are QEMU 7.2's as the committed model has them: for every
//! command and event the simulator declares, its `query-qmp-schema` entry (arguments or
//! data with members, types, optionality and order; `allow-oob`; the return type as far as
//! the simulator describes it) equals what the model's 7.2.0 slice gives under the truth
//! table of Debian's x86_64 build, read here through qapi-gen (the model's own reader and
//! the truth table's source), not through the generated facts the simulator uses. And the
//! simulator's sources hold no member list of their own.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use qapi_gen::model::{Kind, Model, Schema};
use qapi_gen::truth::DEBIAN_X86_64;
use serde_json::{json, Value};

/// The `blockdev-add` drivers the simulator implements (only their variants are declared).
const BLOCKDEV_DRIVERS: &[&str] = &["file", "raw", "qcow2", "null-co", "null-aio"];
/// The `object-add` types the simulator implements (its `qapi::OBJECT_TYPES`).
const OBJECT_TYPES: &[&str] = &["iothread", "memory-backend-ram", "secret"];

/// The commands the framework itself declares (`server.rs`, for every server, not from the
/// facts): their arguments are compared, their return types (`any`) are not.
const FRAMEWORK: &[&str] = &["qmp_capabilities", "query-commands", "query-qmp-schema"];

fn sim_schema() -> Vec<Value> {
    let sim = common::Peer::sim();
    let mut c = sim.connect();
    c.greeting();
    c.step(b"{\"execute\":\"qmp_capabilities\"}", 0);
    c.send(b"{\"execute\":\"query-qmp-schema\"}");
    let lines = c.read_until(Duration::from_secs(10), |l| !l.is_empty());
    let v: Value = serde_json::from_str(&lines[0]).unwrap();
    v["return"].as_array().unwrap().clone()
}

fn model_72() -> Schema {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../qmp-qapi/model.json");
    let model = Model::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    let v = model.version_index("7.2.0").unwrap();
    model.schemas["qmp"].at(v)
}

/// A type of the simulator's schema with its masked names resolved, order kept.
fn resolve_sim(types: &BTreeMap<&str, &Value>, name: &str, depth: usize) -> Value {
    assert!(depth < 32, "the simulator's schema nests deeper than 32 at {name}");
    let t = types[name];
    match t["meta-type"].as_str().unwrap() {
        "builtin" => json!(name),
        "enum" => json!({"enum": t["values"]}),
        "array" => json!([resolve_sim(types, t["element-type"].as_str().unwrap(), depth + 1)]),
        "object" => {
            let members: Vec<Value> = t["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    json!([
                        m["name"],
                        m.get("default").is_some(),
                        resolve_sim(types, m["type"].as_str().unwrap(), depth + 1)
                    ])
                })
                .collect();
            let mut out = json!({"members": members});
            if let Some(vs) = t["variants"].as_array() {
                out["tag"] = t["tag"].clone();
                out["variants"] = vs
                    .iter()
                    .map(|v| json!([v["case"], resolve_sim(types, v["type"].as_str().unwrap(), depth + 1)]))
                    .collect();
            }
            out
        }
        other => panic!("the simulator declares a {other} ({name})"),
    }
}

/// What the model says the simulator should declare for type `name`, in the same form:
/// integers are `int` as in QEMU's introspection; alternates, `any` and `null` are `any`;
/// a type met inside itself is `any`; a union lists its variants in schema order, then the
/// discriminator values without one (empty).
struct Expect<'a> {
    model: &'a Schema,
}

impl Expect<'_> {
    fn holds(&self, c: Option<&qapi_gen::model::Cond>) -> bool {
        c.is_none_or(|c| DEBIAN_X86_64.eval(c).expect("the truth table covers 7.2"))
    }

    fn ty(&self, name: &str, path: &mut Vec<String>) -> Value {
        match name {
            "int" | "int8" | "int16" | "int32" | "int64" | "uint8" | "uint16" | "uint32" | "uint64"
            | "size" => return json!("int"),
            "str" | "bool" | "number" => return json!(name),
            "any" | "null" | "QType" => return json!("any"),
            _ => {}
        }
        if let Some(elem) = name.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            return json!([self.ty(elem, path)]);
        }
        if path.iter().any(|p| p == name) {
            return json!("any");
        }
        let e = self.model.get(name).unwrap_or_else(|| panic!("the model's 7.2 has no {name}"));
        match &e.kind {
            Kind::Enum { values, .. } => {
                let v: Vec<&str> =
                    values.iter().filter(|v| self.holds(v.cond.as_ref())).map(|v| v.name.as_str()).collect();
                json!({"enum": v})
            }
            Kind::Alternate { .. } => json!("any"),
            Kind::Struct { .. } | Kind::Union { .. } => {
                path.push(name.to_string());
                let out = self.object(name, path);
                path.pop();
                out
            }
            k => panic!("{name} is a {k:?}"),
        }
    }

    /// Struct `name`'s members with its bases' first.
    fn members(&self, name: &str, path: &mut Vec<String>) -> Vec<Value> {
        let mut chain = Vec::new();
        let mut cur = Some(name.to_string());
        while let Some(n) = cur {
            let e = self.model.get(&n).unwrap();
            let Kind::Struct { base, members } = &e.kind else { panic!("{n} is not a struct") };
            chain.push(members);
            cur = base.clone();
        }
        let mut out = Vec::new();
        for members in chain.into_iter().rev() {
            for m in members.iter().filter(|m| self.holds(m.cond.as_ref())) {
                let ty = self.ty(&m.types[0].ty, path);
                out.push(json!([m.name, m.optional.0 != 0, ty]));
            }
        }
        out
    }

    fn object(&self, name: &str, path: &mut Vec<String>) -> Value {
        let e = self.model.get(name).unwrap();
        match &e.kind {
            Kind::Struct { .. } => json!({"members": self.members(name, path)}),
            Kind::Union { base, discriminator, variants } => {
                let members = self.members(base, path);
                let mut cases = Vec::new();
                for v in variants.iter().filter(|v| self.holds(v.cond.as_ref())) {
                    cases.push(json!([v.name, self.object(&v.types[0].ty, path)]));
                }
                let tag = members.iter().find(|m| m[0] == json!(discriminator)).unwrap();
                for value in tag[2]["enum"].as_array().unwrap() {
                    if !cases.iter().any(|c| &c[0] == value) {
                        cases.push(json!([value, {"members": []}]));
                    }
                }
                json!({"members": members, "tag": discriminator, "variants": cases})
            }
            k => panic!("{name} is a {k:?}"),
        }
    }

    fn args(&self, ty: Option<&str>) -> Value {
        match ty {
            Some(t) => self.object(t, &mut Vec::new()),
            None => json!({"members": []}),
        }
    }
}

#[test]
fn every_declaration_is_the_72_models() {
    let schema = sim_schema();
    let types: BTreeMap<&str, &Value> = schema.iter().map(|e| (e["name"].as_str().unwrap(), e)).collect();
    let model = model_72();
    let expect = Expect { model: &model };
    let (mut commands, mut events, mut diffs) = (0, 0, Vec::new());
    for e in schema.iter().filter(|e| matches!(e["meta-type"].as_str(), Some("command" | "event"))) {
        let name = e["name"].as_str().unwrap();
        let def = model.get(name).unwrap_or_else(|| panic!("the simulator declares {name}, 7.2 has none"));
        assert!(expect.holds(def.cond.as_ref()), "{name} is not in 7.2 on x86_64");
        let got_args = resolve_sim(&types, e["arg-type"].as_str().unwrap(), 0);
        let (mut want_args, want) = match &def.kind {
            Kind::Command { args, returns, allow_oob, .. } => {
                commands += 1;
                let ret = match returns.as_deref() {
                    None => json!({"members": []}),
                    Some(t @ ("str" | "bool" | "number" | "any")) => json!(t),
                    Some("int" | "int64" | "uint64" | "size") => json!("int"),
                    // The simulator does not describe other return types.
                    Some(_) => json!("any"),
                };
                let got_ret = resolve_sim(&types, e["ret-type"].as_str().unwrap(), 0);
                let oob = e.get("allow-oob").and_then(Value::as_bool).unwrap_or(false);
                (expect.args(args.as_deref()), (ret, *allow_oob, got_ret, oob))
            }
            Kind::Event { data, .. } => {
                events += 1;
                (expect.args(data.as_deref()), (json!(null), false, json!(null), false))
            }
            k => panic!("{name} is a {k:?}"),
        };
        if name == "blockdev-add" {
            // Only the implemented drivers' variants.
            let vs = want_args["variants"].as_array_mut().unwrap();
            vs.retain(|v| BLOCKDEV_DRIVERS.contains(&v[0].as_str().unwrap()));
            assert_eq!(vs.len(), BLOCKDEV_DRIVERS.len());
        }
        if name == "object-add" {
            // Only the implemented object types' variants.
            let vs = want_args["variants"].as_array_mut().unwrap();
            vs.retain(|v| OBJECT_TYPES.contains(&v[0].as_str().unwrap()));
            assert_eq!(vs.len(), OBJECT_TYPES.len());
        }
        if got_args != want_args {
            diffs.push(format!("{name} arguments:\n  model: {want_args}\n  sim:   {got_args}"));
        }
        let (want_ret, want_oob, got_ret, got_oob) = want;
        if (got_ret != want_ret && !FRAMEWORK.contains(&name)) || got_oob != want_oob {
            diffs.push(format!(
                "{name}: returns {got_ret} oob {got_oob} in the sim, {want_ret} oob {want_oob} in the model"
            ));
        }
    }
    assert!(diffs.is_empty(), "{} declarations differ from the model:\n{}", diffs.len(), diffs.join("\n"));
    assert!(commands >= 35 && events >= 12, "only {commands} commands and {events} events compared");
}

/// The comparison is not blind: a declaration with one member renamed differs.
#[test]
fn the_comparison_sees_a_changed_member() {
    let model = model_72();
    let expect = Expect { model: &model };
    let args = expect.args(Some("q_obj_block-job-set-speed-arg"));
    assert_eq!(args, json!({"members": [["device", false, "str"], ["speed", false, "int"]]}));
    assert_ne!(args, json!({"members": [["device", false, "str"], ["speed", true, "int"]]}));
}

/// The simulator's source files, those in its submodules' folders included.
fn sim_sources() -> Vec<std::path::PathBuf> {
    let mut dirs = vec![std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/src/sim"))];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// No member list creeps back into the simulator: its sources build no member, argument or
/// enum from a literal name (every declaration comes from `qapi::command` and
/// `qapi::events`, which take names from the facts), and only `qapi.rs` names types.
#[test]
fn the_simulator_writes_no_member_list() {
    let mut checked = 0;
    for path in sim_sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_str().unwrap().to_string();
        checked += 1;
        for pattern in [".member(\"", ".optional(\"", ".arg(\"", ".opt(\"", "Ty::enumeration(\"", ".union(\""]
        {
            assert!(!text.contains(pattern), "{file} declares by hand: {pattern}...");
        }
        if file != "qapi.rs" {
            for pattern in ["CommandSpec::new(", "Struct::new(", "Ty::", ".args(", ".returns(", ".allow_oob("]
            {
                assert!(!text.contains(pattern), "{file} declares by hand: {pattern}... (use qapi::command)");
            }
        }
    }
    assert!(checked >= 5, "read only {checked} files of src/sim");
}

/// The string lists of `text`: each `[...]` holding only string literals (three or more).
fn string_lists(text: &str) -> Vec<Vec<&str>> {
    let mut out = Vec::new();
    for (start, _) in text.match_indices('[') {
        let Some(len) = text[start + 1..].find(']') else { continue };
        let inner = text[start + 1..start + 1 + len].trim().trim_end_matches(',');
        let items: Vec<&str> = inner.split(',').map(str::trim).collect();
        let literal = |i: &&str| {
            i.len() >= 2 && i.starts_with('"') && i.ends_with('"') && !i[1..i.len() - 1].contains('"')
        };
        if items.len() >= 3 && items.iter().all(literal) {
            out.push(items.iter().map(|i| &i[1..i.len() - 1]).collect());
        }
    }
    out
}

/// Nor does an enum's value list: no list of string literals in the simulator's sources
/// holds every value of a 7.2 enum (`BlockdevDriver`, `JobStatus`, `MigrationCapability`...).
/// A choice among them (the drivers the simulator implements) is not a copy.
#[test]
fn the_simulator_writes_no_enum_list() {
    let model = model_72();
    let expect = Expect { model: &model };
    let enums: Vec<(&str, Vec<&str>)> = model
        .entities
        .iter()
        .filter_map(|e| match &e.kind {
            Kind::Enum { values, .. } => {
                let present = values.iter().filter(|v| expect.holds(v.cond.as_ref()));
                Some((e.name.as_str(), present.map(|v| v.name.as_str()).collect()))
            }
            _ => None,
        })
        .collect();
    assert!(string_lists(r#"x = ["a", "b", "c"]; y = [1, 2, 3]"#) == vec![vec!["a", "b", "c"]]);
    for path in sim_sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        for list in string_lists(&text) {
            for (name, values) in &enums {
                assert!(
                    values.len() < 3 || !values.iter().all(|v| list.contains(v)),
                    "{}: {list:?} are values of {name}: take them from the facts (qapi.rs)",
                    path.display()
                );
            }
        }
    }
}
