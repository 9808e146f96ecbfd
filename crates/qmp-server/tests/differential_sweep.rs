//! Every command the simulator declares, swept with the inputs any client can send: its
//! arguments not an object, a member it does not have, and each member of a wrong JSON type
//! (which also shows the order QEMU checks members in, since a member missing before it is
//! named first), in-band and, once `oob` is negotiated, out of band. Each reply must be real
//! QEMU's, class and text. The query commands that need no arguments are also run, and their
//! answers compared. Done for `qemu-system-x86_64 -machine none` and for
//! `qemu-storage-daemon` (the simulator's `Like::StorageDaemon`).
//!
//! Member types come from real QEMU's own `query-qmp-schema`, so a wrong value is one no
//! branch of the member's type accepts: no request of this sweep can run a command.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{assert_same, s, transcript, Peer, Step};
use serde_json::{json, Value};

/// Queries whose answers differ for reasons that are not the simulator's to fix: the
/// introspection of the whole program (the simulator declares the commands it has, each
/// as QEMU does: `differential_schema.rs` and `sim_declarations.rs` compare them) and
/// machine-wide lists the simulator does not model.
const ANSWERS_NOT_COMPARED: &[&str] = &["query-qmp-schema", "query-commands"];

/// JSON kinds, as QEMU's input visitor tells them apart.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    String,
    Number,
    Bool,
    Null,
    Object,
    Array,
}

/// A value of each kind, in the order a wrong one is picked.
const WRONG: &[(Kind, &str)] = &[
    (Kind::Array, "[]"),
    (Kind::Bool, "true"),
    (Kind::Object, "{}"),
    (Kind::String, "\"x\""),
    (Kind::Number, "7"),
    (Kind::Null, "null"),
];

/// Real QEMU's schema, entries by name.
struct Schema(BTreeMap<String, Value>);

impl Schema {
    fn fetch(peer: &Peer) -> Schema {
        let entries = common::query(peer, "query-qmp-schema");
        let entries = entries.as_array().expect("query-qmp-schema answered");
        Schema(entries.iter().map(|e| (e["name"].as_str().unwrap().to_string(), e.clone())).collect())
    }

    /// The JSON kinds a value of type `name` may be; `None` for `any` (every kind).
    fn kinds(&self, name: &str) -> Option<BTreeSet<Kind>> {
        let t = &self.0[name];
        let one = |k| Some(BTreeSet::from([k]));
        match t["meta-type"].as_str().unwrap() {
            "builtin" => match t["json-type"].as_str().unwrap() {
                "string" => one(Kind::String),
                "int" | "number" => one(Kind::Number),
                "boolean" => one(Kind::Bool),
                "null" => one(Kind::Null),
                _ => None,
            },
            "enum" => one(Kind::String),
            "object" => one(Kind::Object),
            "array" => one(Kind::Array),
            "alternate" => {
                let mut all = BTreeSet::new();
                for m in t["members"].as_array().unwrap() {
                    all.extend(self.kinds(m["type"].as_str().unwrap())?);
                }
                Some(all)
            }
            other => panic!("unexpected meta-type {other} for {name}"),
        }
    }

    /// A value no branch of type `name` accepts, if there is one.
    fn wrong(&self, name: &str) -> Option<&'static str> {
        let kinds = self.kinds(name)?;
        WRONG.iter().find(|(k, _)| !kinds.contains(k)).map(|(_, v)| *v)
    }

    /// The command's argument members (the base's, for a union), in declaration order.
    fn arguments(&self, command: &str) -> Vec<(String, String)> {
        let arg_type = self.0[command]["arg-type"].as_str().unwrap();
        self.0[arg_type]["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let name = m["name"].as_str().unwrap().to_string();
                (name, m["type"].as_str().unwrap().to_string())
            })
            .collect()
    }

    fn takes_no_arguments(&self, command: &str) -> bool {
        self.0.get(command).is_some_and(|c| {
            let arg_type = c["arg-type"].as_str().unwrap();
            self.0[arg_type]["members"].as_array().unwrap().is_empty()
        })
    }
}

/// The simulator's commands, by `query-commands`.
fn declared(sim: &Peer) -> Vec<String> {
    let commands = common::query(sim, "query-commands");
    let mut names: Vec<String> =
        commands.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect();
    names.sort();
    names
}

fn request(member: &str, command: &str, arguments: &str) -> Step {
    s(format!("{{\"{member}\": {}, \"arguments\": {arguments}}}", json!(command)))
}

/// The sweep's requests for `command`, sent as `execute` or `exec-oob`.
fn bad_requests(schema: &Schema, command: &str, member: &str, steps: &mut Vec<Step>) {
    steps.push(request(member, command, "[]"));
    steps.push(request(member, command, "{\"no-such-member\": 1}"));
    for (name, ty) in schema.arguments(command) {
        if let Some(wrong) = schema.wrong(&ty) {
            steps.push(request(member, command, &format!("{{{}: {wrong}}}", json!(name))));
        }
    }
}

fn sweep(qemu: &Peer, sim: &Peer) {
    let schema = Schema::fetch(qemu);
    let commands = declared(sim);
    let missing: Vec<&String> = commands.iter().filter(|c| !schema.0.contains_key(c.as_str())).collect();
    assert!(missing.is_empty(), "the simulator declares commands QEMU does not have: {missing:?}");
    assert!(commands.len() > 20, "too few commands declared: {commands:?}");

    let mut inband = vec![s("{\"execute\": \"qmp_capabilities\"}")];
    let mut oob = vec![s("{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}")];
    let mut queries = vec![s("{\"execute\": \"qmp_capabilities\"}")];
    for c in commands.iter().filter(|c| *c != "qmp_capabilities") {
        bad_requests(&schema, c, "execute", &mut inband);
        bad_requests(&schema, c, "exec-oob", &mut oob);
        if c.starts_with("query-")
            && schema.takes_no_arguments(c)
            && !ANSWERS_NOT_COMPARED.contains(&c.as_str())
        {
            queries.push(s(format!("{{\"execute\": {}}}", json!(c))));
        }
    }
    for steps in [&inband, &oob, &queries] {
        assert_same(&transcript(qemu, steps), &transcript(sim, steps));
    }
}

#[test]
fn every_declared_command_checks_its_input_as_qemu_system_does() {
    sweep(&Peer::qemu_system(), &Peer::sim());
}

#[test]
fn every_declared_command_checks_its_input_as_the_storage_daemon_does() {
    sweep(&Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]), &Peer::sim_storage_daemon());
}
