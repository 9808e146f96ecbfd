//! Dirty bitmaps and `transaction`: the same transcripts sent to a real `qemu-storage-daemon`
//! (started here, with `null-co` nodes) and to the simulator; replies, errors and the
//! `dirty-bitmaps` that `query-named-block-nodes` shows must match.

mod common;

use common::{s, Step};
use serde_json::{json, Value};

fn exec(cmd: &str, args: Value) -> Step {
    s(json!({"execute": cmd, "arguments": args}).to_string())
}

fn bitmap(cmd: &str, node: &str, name: &str) -> Step {
    exec(&format!("block-dirty-bitmap-{cmd}"), json!({"node": node, "name": name}))
}

fn action(kind: &str, node: &str, name: &str) -> Value {
    json!({"type": format!("block-dirty-bitmap-{kind}"), "data": {"node": node, "name": name}})
}

fn abort() -> Value {
    json!({"type": "abort", "data": {}})
}

fn tx(actions: Vec<Value>) -> Step {
    exec("transaction", json!({"actions": actions}))
}

fn nodes() -> Step {
    s(b"{\"execute\": \"query-named-block-nodes\"}")
}

/// Runs `steps` after negotiating and adding null-co nodes n0 (64 MiB) and n1 (default size).
fn both(steps: Vec<Step>) {
    let mut all = vec![
        s(b"{\"execute\": \"qmp_capabilities\"}"),
        exec("blockdev-add", json!({"driver": "null-co", "node-name": "n0", "size": 67108864})),
        exec("blockdev-add", json!({"driver": "null-co", "node-name": "n1"})),
    ];
    all.extend(steps);
    common::compare_with_storage_daemon(&all);
}

#[test]
fn bitmap_commands() {
    both(vec![
        nodes(),
        bitmap("add", "n0", "b0"),
        bitmap("add", "n0", "b0"),
        bitmap("add", "nope", "b0"),
        bitmap("add", "n0", ""),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b1", "granularity": 512})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b2", "granularity": 1000})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b2", "granularity": 256})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b2", "granularity": 4294967296u64})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b2", "granularity": -1})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b2", "granularity": "x"})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b2", "granularity": 2147483648u64})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b4", "persistent": true})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b3", "disabled": true})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b5", "disabled": 3})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b4", "x": 1})),
        exec("block-dirty-bitmap-add", json!({"name": "b4"})),
        // Two things wrong: the empty name is found before the missing node, the missing
        // node before a bad granularity, a bad granularity before the name in use.
        exec("block-dirty-bitmap-add", json!({"node": "nope", "name": "", "granularity": 3})),
        exec("block-dirty-bitmap-add", json!({"node": "nope", "name": "b0", "granularity": 3})),
        exec("block-dirty-bitmap-add", json!({"node": "n0", "name": "b0", "granularity": 3})),
        nodes(),
        bitmap("clear", "n0", "b0"),
        bitmap("clear", "n0", "zz"),
        bitmap("clear", "nope", "zz"),
        bitmap("clear", "n0", "b3"),
        bitmap("disable", "n0", "b0"),
        bitmap("enable", "n0", "b3"),
        bitmap("enable", "n1", "b3"),
        bitmap("remove", "n0", "b1"),
        bitmap("remove", "n0", "b1"),
        bitmap("remove", "nope", "b1"),
        nodes(),
        exec("blockdev-del", json!({"node-name": "n0"})),
        nodes(),
        exec("blockdev-add", json!({"driver": "null-co", "node-name": "n0"})),
        bitmap("remove", "n0", "b0"),
    ]);
}

#[test]
fn transactions_all_or_nothing() {
    both(vec![
        tx(vec![action("add", "n0", "t1"), action("add", "n0", "t2")]),
        nodes(),
        // The second action fails: the first is undone, the error is the second's.
        tx(vec![action("add", "n0", "t3"), action("add", "n0", "t1")]),
        tx(vec![action("remove", "n0", "t1"), abort()]),
        tx(vec![action("add", "n0", "a1"), action("add", "n0", "a2"), abort()]),
        tx(vec![action("disable", "n0", "t1"), action("add", "n0", "t2")]),
        nodes(),
        // A removal is done at the commit: until then the bitmap exists, and is busy.
        tx(vec![action("remove", "n0", "t1"), action("add", "n0", "t1")]),
        tx(vec![action("remove", "n0", "t1"), action("remove", "n0", "t1")]),
        tx(vec![action("remove", "n0", "t1"), action("clear", "n0", "t1")]),
        tx(vec![action("remove", "n0", "t1"), action("disable", "n0", "t1")]),
        tx(vec![action("add", "n0", "t9"), action("remove", "n0", "t9")]),
        tx(vec![action("add", "n1", "x"), action("disable", "n1", "x"), action("clear", "n1", "x")]),
        nodes(),
        tx(vec![action("remove", "n1", "x"), action("remove", "n0", "t2")]),
        tx(vec![action("clear", "nope", "t1")]),
        tx(vec![action("remove", "nope", "t1")]),
        tx(vec![action("add", "nope", "t1")]),
        // (`enable` of a missing bitmap in a transaction kills QEMU 7.2; `disable` answers.)
        tx(vec![action("disable", "n0", "zz")]),
        tx(vec![]),
        tx(vec![abort()]),
        nodes(),
    ]);
}

#[test]
fn transaction_properties_and_bad_actions() {
    let grouped = |actions: Vec<Value>| {
        exec("transaction", json!({"actions": actions, "properties": {"completion-mode": "grouped"}}))
    };
    both(vec![
        exec("transaction", json!({"actions": [], "properties": {}})),
        grouped(vec![]),
        grouped(vec![action("add", "n0", "g1")]),
        grouped(vec![action("add", "nope", "g1")]),
        grouped(vec![abort()]),
        exec(
            "transaction",
            json!({"actions": [action("add", "n0", "g1")], "properties": {"completion-mode": "individual"}}),
        ),
        exec("transaction", json!({"actions": [], "properties": {"completion-mode": "x"}})),
        exec("transaction", json!({"actions": [], "properties": {"q": 1}})),
        exec("transaction", json!({"actions": [], "properties": 1})),
        exec("transaction", json!({"actions": [], "properties": {"completion-mode": "grouped"}, "x": 1})),
        nodes(),
        // Unknown action types and bad data: the schema's errors, with their paths.
        tx(vec![json!({"type": "nope", "data": {}})]),
        tx(vec![action("add", "n0", "x"), json!({"type": "bogus"})]),
        tx(vec![json!({"type": "abort"})]),
        tx(vec![action("clear", "n0", "t1"), json!({"type": "abort"})]),
        tx(vec![json!({"data": {}})]),
        tx(vec![json!({"type": 5, "data": {}})]),
        tx(vec![json!({"type": "block-dirty-bitmap-add"})]),
        tx(vec![json!({"type": "block-dirty-bitmap-add", "data": []})]),
        tx(vec![json!({"type": "block-dirty-bitmap-add", "data": {"node": "n0"}})]),
        tx(vec![json!({"type": "block-dirty-bitmap-add", "data": {"node": 5, "name": "x"}})]),
        tx(vec![json!({"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "x", "y": 1}})]),
        tx(vec![json!({"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "x"}, "z": 1})]),
        tx(vec![
            json!({"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "", "granularity": 3}}),
        ]),
        tx(vec![
            json!({"type": "block-dirty-bitmap-add", "data": {"node": "n0", "name": "q", "granularity": 3}}),
        ]),
        exec("transaction", json!({"actions": {}})),
        exec("transaction", json!({})),
        exec("transaction", json!({"actions": [1]})),
        nodes(),
    ]);
}
