//! The simulator answering as `qemu-storage-daemon` (`Like::StorageDaemon`, `qmp sim --like
//! qemu-storage-daemon`) against the real daemon, started here: the same transcripts, the
//! same replies; its command and event lists within the daemon's; what the daemon lacks
//! refused as it refuses it.

mod common;

use std::collections::BTreeSet;

use common::{s, Peer, Step};
use serde_json::{json, Value};

fn exec(cmd: &str, args: Value) -> Step {
    s(json!({"execute": cmd, "arguments": args}).to_string())
}

fn both(steps: &[Step]) {
    let qemu = Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]);
    let want = common::transcript(&qemu, steps);
    drop(qemu);
    let got = common::transcript(&Peer::sim_storage_daemon(), steps);
    common::assert_same(&want, &got);
}

/// `query-qmp-schema`'s names of `meta` ("command" or "event").
fn declared(peer: &Peer, meta: &str) -> BTreeSet<String> {
    common::query(peer, "query-qmp-schema")
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["meta-type"] == meta)
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn declares_only_what_the_daemon_has() {
    let qemu = Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]);
    let sim = Peer::sim_storage_daemon();
    for meta in ["command", "event"] {
        let (theirs, ours) = (declared(&qemu, meta), declared(&sim, meta));
        let extra: Vec<_> = ours.difference(&theirs).collect();
        assert!(extra.is_empty(), "{meta}s the daemon does not have: {extra:?}");
        if meta == "command" {
            assert!(ours.len() * 3 > theirs.len(), "too few commands: {ours:?}");
        }
    }
    // The system emulator's simulator has what the daemon lacks.
    let system = declared(&Peer::sim(), "command");
    assert!(system.contains("query-status") && system.contains("device_add"));
}

#[test]
fn what_the_daemon_lacks_is_not_found() {
    let mut steps = vec![s(b"{\"execute\": \"qmp_capabilities\"}")];
    for cmd in
        ["query-status", "stop", "cont", "query-name", "human-monitor-command", "migrate", "device_add"]
    {
        steps.push(exec(cmd, json!({})));
    }
    steps.push(s(b"{\"execute\": \"query-version\"}"));
    both(&steps);
}

#[test]
fn its_qom_tree_has_no_machine() {
    let list = |path: &str| exec("qom-list", json!({"path": path}));
    both(&[
        s(b"{\"execute\": \"qmp_capabilities\"}"),
        list("/"),
        list("/chardevs"),
        list("/machine"),
        exec("qom-get", json!({"path": "/chardevs/compat_monitor0", "property": "connected"})),
        exec("object-add", json!({"qom-type": "iothread", "id": "io0"})),
        list("/"),
        list("/objects"),
        exec("object-del", json!({"id": "io0"})),
    ]);
}

#[test]
fn a_block_session() {
    both(&[
        s(b"{\"execute\": \"qmp_capabilities\"}"),
        exec("blockdev-add", json!({"driver": "null-co", "node-name": "n0", "size": 67108864})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b0"})),
        exec(
            "transaction",
            json!({"actions": [
                {"type": "block-dirty-bitmap-clear", "data": {"node": "n0", "name": "b0"}},
                {"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "b0"}},
            ]}),
        ),
        s(b"{\"execute\": \"query-named-block-nodes\"}"),
        exec("blockdev-del", json!({"node-name": "n0"})),
        s(b"{\"execute\": \"query-named-block-nodes\"}"),
    ]);
}
