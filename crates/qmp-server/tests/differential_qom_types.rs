//! QOM type introspection: `qom-list-types`, `qom-list-properties` and
//! `device-list-properties`, against real `qemu-system-x86_64 -machine none` and real
//! `qemu-storage-daemon` (started here; a missing binary fails the test).
//!
//! The simulator answers from facts read off those binaries, stored in
//! `facts/qom/*.json`. Two kinds of test:
//! - `stored_facts_are_*`: the stored facts are what the binary says today, both ways
//!   (no type missing, none extra, the same order, the same properties). With
//!   `QMP_SIM_QOM_WRITE=1` they write the files instead: that is the extraction tool.
//! - the transcripts: the same requests to QEMU and to the simulator, the same replies.
//!
//! One member is normalised: `description`. QEMU's property descriptions are its own prose,
//! which this repository does not copy, so the facts leave them out, the simulator has none,
//! and [`undescribed`] removes exactly that member (and checks nothing else was touched) from
//! QEMU's `qom-list-properties` and `device-list-properties` answers before comparing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{Peer, Raw};
use serde_json::{json, Map, Value};

/// The types the simulator has, whose properties the facts hold (with their ancestors):
/// the machine and containers of its QOM tree, the objects `object-add` makes, and the
/// device models `device_add` knows (`sim::DEVICE_MODELS`).
fn system_types() -> Vec<&'static str> {
    let own = [
        "container",
        "none-machine",
        "System",
        "memory-region",
        "chardev-socket",
        "iothread",
        "memory-backend-ram",
        "secret",
    ];
    own.into_iter().chain(qmp_server::sim::DEVICE_MODELS.iter().copied()).collect()
}

/// The same for the storage daemon (which has no machine, no devices, and no
/// `memory-backend-ram`).
const DAEMON_TYPES: &[&str] = &["container", "chardev-socket", "iothread", "secret"];

fn facts_path(name: &str) -> String {
    format!("{}/facts/qom/{name}.json", env!("CARGO_MANIFEST_DIR"))
}

/// A negotiated connection that answers one request at a time.
struct Conn {
    raw: Raw,
    n: u64,
}

impl Conn {
    fn new(peer: &Peer) -> Conn {
        let mut raw = peer.connect();
        raw.greeting();
        raw.step(b"{\"execute\": \"qmp_capabilities\"}", 0);
        Conn { raw, n: 0 }
    }

    /// The whole reply to `cmd` (its `return` or `error`), events passed over.
    fn call(&mut self, cmd: &str, args: Value) -> Value {
        self.n += 1;
        let n = self.n;
        self.raw.send(json!({"execute": cmd, "arguments": args, "id": n}).to_string().as_bytes());
        let lines = self.raw.read_until(Duration::from_secs(20), |l| l.iter().any(|x| is_reply(x, n)));
        let line = lines.iter().find(|x| is_reply(x, n)).unwrap_or_else(|| panic!("no reply to {cmd}"));
        let mut v: Value = serde_json::from_str(line).unwrap();
        v.as_object_mut().unwrap().remove("id");
        v
    }

    fn ret(&mut self, cmd: &str, args: Value) -> Value {
        let v = self.call(cmd, args.clone());
        v.get("return").cloned().unwrap_or_else(|| panic!("{cmd} {args} failed: {v}"))
    }
}

fn is_reply(line: &str, n: u64) -> bool {
    serde_json::from_str::<Value>(line).is_ok_and(|v| v["id"] == n && v.get("event").is_none())
}

/// `reply` with the `description` member of every listed property removed (see the
/// module's doc); nothing else changes.
fn undescribed(reply: &Value) -> Value {
    let mut out = reply.clone();
    if let Some(list) = out.get_mut("return").and_then(Value::as_array_mut) {
        for prop in list {
            if let Some(p) = prop.as_object_mut() {
                if let Some(d) = p.remove("description") {
                    assert!(d.is_string(), "a description that is not a string: {d}");
                }
            }
        }
    }
    out
}

/// The facts as the binary behind `peer` says them, for `roots` and their ancestors.
fn live_facts(peer: &Peer, program: &str, roots: &[&str], devices: bool) -> Value {
    let mut c = Conn::new(peer);
    let all = c.ret("qom-list-types", json!({"abstract": true}));
    let all = all.as_array().unwrap();
    let parent: BTreeMap<&str, Option<&str>> =
        all.iter().map(|t| (t["name"].as_str().unwrap(), t["parent"].as_str())).collect();
    let ancestors = |t: &str| {
        let mut out = vec![];
        let mut cur = Some(t);
        while let Some(n) = cur {
            out.push(n.to_string());
            cur = parent.get(n).copied().flatten();
        }
        out
    };
    // An interface's implementers, as QEMU lists them; each type keeps the interfaces its
    // parent does not already have (the simulator closes over parents again). Every
    // interface of 7.2 but `interface` itself is a child of `interface`, with no
    // interface below it: its implementers are exactly the types that have it (for
    // `interface`, QEMU lists only the types with one interface, see `sim::qom_types`).
    let interfaces: Vec<&str> = parent
        .keys()
        .copied()
        .filter(|t| *t != "interface" && ancestors(t).last().map(String::as_str) == Some("interface"))
        .collect();
    for i in &interfaces {
        assert_eq!(parent[i], Some("interface"), "{i} is an interface below another one");
        assert!(!parent.values().any(|p| p == &Some(*i)), "an interface below {i}");
    }
    let mut implementers: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for i in &interfaces {
        let list = c.ret("qom-list-types", json!({"implements": i, "abstract": true}));
        let set = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
        implementers.insert(i, set);
    }
    let types: Vec<Value> = all
        .iter()
        .map(|t| {
            let name = t["name"].as_str().unwrap();
            let up = ancestors(name);
            let own: Vec<&str> = interfaces
                .iter()
                .copied()
                .filter(|i| {
                    let has = |x: &str| implementers[i].contains(x);
                    has(name) && !up.iter().any(|a| a == i) && !parent[name].is_some_and(has)
                })
                .collect();
            json!([name, t["parent"], t.get("abstract").is_some_and(|a| a == true), own])
        })
        .collect();
    let wanted: BTreeSet<String> = roots.iter().flat_map(|r| ancestors(r)).collect();
    let mut props = Map::new();
    let mut device_props = Map::new();
    for t in &wanted {
        props.insert(
            t.clone(),
            undescribed(&c.call("qom-list-properties", json!({"typename": t})))["return"].clone(),
        );
        if devices {
            let reply = undescribed(&c.call("device-list-properties", json!({"typename": t})));
            if let Some(list) = reply.get("return") {
                device_props.insert(t.clone(), list.clone());
            }
        }
    }
    let version = c.ret("query-version", json!({}));
    let q = &version["qemu"];
    let from = format!(
        "{program} {}.{}.{} ({})",
        q["major"],
        q["minor"],
        q["micro"],
        version["package"].as_str().unwrap().trim()
    );
    json!({"from": from, "types": types, "properties": props, "device-properties": device_props})
}

/// The facts as text: one type, or one property, a line.
fn facts_text(f: &Value) -> String {
    let mut out = format!("{{\n  \"from\": {},\n  \"types\": [\n", f["from"]);
    let types = f["types"].as_array().unwrap();
    for (i, t) in types.iter().enumerate() {
        out += &format!("    {t}{}\n", if i + 1 < types.len() { "," } else { "" });
    }
    out += "  ],\n";
    for (k, key) in ["properties", "device-properties"].iter().enumerate() {
        out += &format!("  \"{key}\": {{\n");
        let map = f[key].as_object().unwrap();
        for (i, (name, list)) in map.iter().enumerate() {
            out += &format!("    {}: [\n", json!(name));
            let list = list.as_array().unwrap();
            for (j, p) in list.iter().enumerate() {
                out += &format!("      {p}{}\n", if j + 1 < list.len() { "," } else { "" });
            }
            out += &format!("    ]{}\n", if i + 1 < map.len() { "," } else { "" });
        }
        out += &format!("  }}{}\n", if k == 0 { "," } else { "" });
    }
    out + "}\n"
}

/// Compares (or with `QMP_SIM_QOM_WRITE=1` writes) the stored facts of `name`.
fn check_stored(name: &str, live: &Value) {
    let path = facts_path(name);
    let text = facts_text(live);
    if std::env::var_os("QMP_SIM_QOM_WRITE").is_some() {
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
        return;
    }
    let stored = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let stored: Value = serde_json::from_str(&stored).unwrap();
    let live: Value = serde_json::from_str(&text).unwrap();
    let names = |v: &Value| -> Vec<String> {
        v["types"].as_array().unwrap().iter().map(|t| t[0].as_str().unwrap().to_string()).collect()
    };
    let (theirs, ours) = (names(&live), names(&stored));
    let missing: Vec<_> = theirs.iter().filter(|t| !ours.contains(t)).collect();
    let extra: Vec<_> = ours.iter().filter(|t| !theirs.contains(t)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{path}: types missing {missing:?}, not in QEMU {extra:?}"
    );
    assert_eq!(theirs, ours, "{path}: the types' order differs from QEMU's");
    // `from` says which build they were read off; it is not compared (a rebuild of the same
    // QEMU with the same types passes).
    for key in ["types", "properties", "device-properties"] {
        assert!(
            live[key] == stored[key],
            "{path}: {key} differs from QEMU's; rerun with QMP_SIM_QOM_WRITE=1 and read the diff"
        );
    }
}

#[test]
fn stored_facts_are_qemu_systems() {
    let qemu = Peer::qemu_system();
    let live = live_facts(&qemu, "qemu-system-x86_64 -machine none", &system_types(), true);
    assert!(live["types"].as_array().unwrap().len() > 700, "too few types");
    check_stored("qemu-system-x86_64", &live);
}

#[test]
fn stored_facts_are_the_storage_daemons() {
    let qemu = Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]);
    let live = live_facts(&qemu, "qemu-storage-daemon", DAEMON_TYPES, false);
    assert!(live["types"].as_array().unwrap().len() > 40, "too few types");
    check_stored("qemu-storage-daemon", &live);
}

/// The stored facts of `name`, as the simulator reads them.
fn stored(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(facts_path(name)).unwrap()).unwrap()
}

/// Each request's reply, as compact JSON with the member order kept; QEMU's (`qemu`)
/// property lists without `description` (see the module's doc).
fn answers(peer: &Peer, qemu: bool, requests: &[Value]) -> Vec<String> {
    let mut c = Conn::new(peer);
    requests
        .iter()
        .map(|r| {
            let cmd = r["execute"].as_str().unwrap();
            let mut reply = c.call(cmd, r.get("arguments").cloned().unwrap_or(json!({})));
            if qemu && matches!(cmd, "qom-list-properties" | "device-list-properties") {
                reply = undescribed(&reply);
            }
            format!("{r} -> {reply}")
        })
        .collect()
}

/// The same requests to QEMU and to the simulator: the same replies.
fn both(qemu: Peer, sim: Peer, requests: &[Value]) {
    let want = answers(&qemu, true, requests);
    drop(qemu);
    let got = answers(&sim, false, requests);
    common::assert_same(&want, &got);
}

fn exec(cmd: &str, args: Value) -> Value {
    json!({"execute": cmd, "arguments": args})
}

/// The interfaces and the parents of the stored types: names `implements` is tried with.
fn filter_names(facts: &Value) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = ["nope", "", "object", "interface"].map(String::from).into();
    for t in facts["types"].as_array().unwrap() {
        out.extend(t[3].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_string()));
        out.extend(t[1].as_str().map(String::from));
    }
    out
}

/// `qom-list-types`: unfiltered, with and without abstract types, and `implements` with
/// every interface and every parent type; then the argument errors, in QEMU's order.
fn list_types_requests(facts: &Value) -> Vec<Value> {
    let mut r = vec![
        json!({"execute": "qom-list-types"}),
        exec("qom-list-types", json!({})),
        exec("qom-list-types", json!({"abstract": true})),
        exec("qom-list-types", json!({"abstract": false})),
    ];
    for name in filter_names(facts) {
        r.push(exec("qom-list-types", json!({"implements": name})));
        r.push(exec("qom-list-types", json!({"implements": name, "abstract": true})));
    }
    r.extend([
        exec("qom-list-types", json!({"implements": 1})),
        exec("qom-list-types", json!({"implements": null})),
        exec("qom-list-types", json!({"abstract": "x"})),
        exec("qom-list-types", json!({"abstract": 1, "implements": 5})),
        exec("qom-list-types", json!({"abstract": "x", "implements": "device"})),
        exec("qom-list-types", json!({"x": 1})),
        exec("qom-list-types", json!({"x": 1, "implements": 2})),
        exec("qom-list-types", json!({"abstract": true, "implements": "device", "x": 1})),
    ]);
    r
}

/// `qom-list-properties` of every stored type and of names QEMU refuses, and its argument
/// errors.
fn list_properties_requests(facts: &Value) -> Vec<Value> {
    let mut r: Vec<Value> = facts["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(|t| exec("qom-list-properties", json!({"typename": t})))
        .collect();
    for t in ["nope", "", "interface", "user-creatable", "Object"] {
        r.push(exec("qom-list-properties", json!({"typename": t})));
    }
    r.extend([
        exec("qom-list-properties", json!({})),
        exec("qom-list-properties", json!({"typename": 1})),
        exec("qom-list-properties", json!({"typename": null})),
        exec("qom-list-properties", json!({"typename": "object", "x": 1})),
        exec("qom-list-properties", json!({"x": 1, "typename": 1})),
        exec("qom-list-properties", json!({"x": 1})),
    ]);
    r
}

#[test]
fn qom_list_types_as_qemu_system() {
    let requests = list_types_requests(&stored("qemu-system-x86_64"));
    assert!(requests.len() > 60, "{}", requests.len());
    both(Peer::qemu_system(), Peer::sim(), &requests);
}

#[test]
fn qom_list_types_as_the_storage_daemon() {
    let requests = list_types_requests(&stored("qemu-storage-daemon"));
    both(Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]), Peer::sim_storage_daemon(), &requests);
}

#[test]
fn qom_list_properties_as_qemu_system() {
    let requests = list_properties_requests(&stored("qemu-system-x86_64"));
    both(Peer::qemu_system(), Peer::sim(), &requests);
}

#[test]
fn qom_list_properties_as_the_storage_daemon() {
    let mut requests = list_properties_requests(&stored("qemu-storage-daemon"));
    requests.extend([
        // Not in the daemon: declared, but the type is not there.
        exec("qom-list-properties", json!({"typename": "memory-backend-ram"})),
        exec("device-list-properties", json!({"typename": "iothread"})),
        exec("object-add", json!({"qom-type": "memory-backend-ram", "id": "1x", "size": 1048576})),
        exec("object-add", json!({"qom-type": "memory-backend-ram", "id": "m0"})),
        exec("object-add", json!({"qom-type": "memory-backend-ram", "id": "m0", "size": 1048576})),
        exec("qom-list", json!({"path": "/"})),
    ]);
    both(Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]), Peer::sim_storage_daemon(), &requests);
}

#[test]
fn device_list_properties_as_qemu_system() {
    let facts = stored("qemu-system-x86_64");
    let devices = facts["device-properties"].as_object().unwrap();
    assert!(devices.len() >= 8, "{:?}", devices.keys());
    let mut requests: Vec<Value> =
        devices.keys().map(|t| exec("device-list-properties", json!({"typename": t}))).collect();
    // Abstract devices, non-devices, interfaces, unknown names; then the argument errors.
    for t in [
        "device",
        "pci-device",
        "virtio-pci",
        "iothread",
        "none-machine",
        "interface",
        "hotplug-handler",
        "nope",
        "",
    ] {
        requests.push(exec("device-list-properties", json!({"typename": t})));
    }
    requests.extend([
        exec("device-list-properties", json!({})),
        exec("device-list-properties", json!({"typename": 1})),
        exec("device-list-properties", json!({"typename": "e1000", "x": 1})),
        exec("device-list-properties", json!({"x": 1, "typename": false})),
    ]);
    both(Peer::qemu_system(), Peer::sim(), &requests);
}

/// A type QEMU has whose properties the facts do not hold: the simulator says so rather
/// than answer something.
#[test]
fn properties_the_simulator_does_not_know_are_refused_as_such() {
    let sim = Peer::sim();
    let mut c = Conn::new(&sim);
    for (cmd, t) in [("qom-list-properties", "pci-bridge"), ("device-list-properties", "e1000e")] {
        let reply = c.call(cmd, json!({"typename": t}));
        assert_eq!(reply["error"]["class"], "GenericError", "{reply}");
        let desc = reply["error"]["desc"].as_str().unwrap();
        assert_eq!(desc, format!("the simulator does not know the properties of type '{t}'"));
    }
}

/// Every object of the simulator's QOM tree, with the objects `object-add` makes and a
/// device plugged, is of a type whose properties the simulator knows.
#[test]
fn every_type_in_the_simulators_tree_has_its_properties() {
    let options = qmp_server::sim::SimOptions { machine: qmp_server::sim::Machine::Pc, ..Default::default() };
    let sim = Peer::sim_with(tempfile::tempdir().unwrap(), options);
    let mut c = Conn::new(&sim);
    c.ret("object-add", json!({"qom-type": "iothread", "id": "io0"}));
    c.ret("object-add", json!({"qom-type": "memory-backend-ram", "id": "m0", "size": 1048576}));
    c.ret("device_add", json!({"driver": "e1000", "id": "net0"}));
    let (mut todo, mut types) = (vec!["/".to_string()], BTreeSet::new());
    while let Some(path) = todo.pop() {
        types.insert(
            c.ret("qom-get", json!({"path": path, "property": "type"})).as_str().unwrap().to_string(),
        );
        for prop in c.ret("qom-list", json!({"path": path})).as_array().unwrap() {
            if prop["type"].as_str().unwrap().starts_with("child<") {
                let name = prop["name"].as_str().unwrap();
                todo.push(if path == "/" { format!("/{name}") } else { format!("{path}/{name}") });
            }
        }
    }
    assert!(types.len() >= 8, "{types:?}");
    for t in &types {
        c.ret("qom-list-properties", json!({"typename": t}));
    }
}
