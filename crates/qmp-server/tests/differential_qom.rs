//! QOM: the same `qom-list`/`qom-get`/`qom-set`/`object-add`/`object-del` transcripts sent to
//! real `qemu-system-x86_64 -machine none` (started here) and to the simulator; replies must
//! match after masking. A walk of the whole tree from `/` must match too.

mod common;

use std::time::Duration;

use common::{compare, s, Peer, Step};
use serde_json::{json, Value};

fn exec(cmd: &str, args: Value) -> Step {
    s(json!({"execute": cmd, "arguments": args}).to_string())
}

fn negotiate() -> Step {
    s(b"{\"execute\": \"qmp_capabilities\"}")
}

fn get(path: &str, prop: &str) -> Step {
    exec("qom-get", json!({"path": path, "property": prop}))
}

fn set(path: &str, prop: &str, value: Value) -> Step {
    exec("qom-set", json!({"path": path, "property": prop, "value": value}))
}

fn add(ty: &str, id: &str, extra: Value) -> Step {
    let mut args = json!({"qom-type": ty, "id": id});
    for (k, v) in extra.as_object().unwrap() {
        args[k] = v.clone();
    }
    exec("object-add", args)
}

fn del(id: &str) -> Step {
    exec("object-del", json!({"id": id}))
}

fn list(path: &str) -> Step {
    exec("qom-list", json!({"path": path}))
}

/// Every `qom-list` reply from `/` down through the `child<...>` properties, after `setup`.
fn walk(peer: &Peer, setup: &[Step]) -> Vec<String> {
    let mut c = peer.connect();
    c.greeting();
    c.step(b"{\"execute\": \"qmp_capabilities\"}", 0);
    for (i, step) in setup.iter().enumerate() {
        c.step(&step.bytes, i + 1);
    }
    let mut out = Vec::new();
    let mut todo = vec!["/".to_string()];
    let mut n = 1000;
    while let Some(path) = todo.pop() {
        c.send(json!({"execute": "qom-list", "arguments": {"path": path}, "id": n}).to_string().as_bytes());
        let id = format!("\"id\": {n}");
        n += 1;
        let lines = c.read_until(Duration::from_secs(10), |l| l.iter().any(|x| x.contains(&id)));
        let reply: Value = serde_json::from_str(lines.last().expect("a reply")).unwrap();
        for prop in reply["return"].as_array().expect("a list") {
            let ty = prop["type"].as_str().unwrap();
            if ty.starts_with("child<") {
                let name = prop["name"].as_str().unwrap();
                todo.push(if path == "/" { format!("/{name}") } else { format!("{path}/{name}") });
            }
        }
        out.push(format!("{path}: {}", reply["return"]));
    }
    out
}

#[test]
fn tree_walk_from_root() {
    let setup = [
        add("iothread", "io0", json!({})),
        add("memory-backend-ram", "mem0", json!({"size": 1048576})),
        add("iothread", "io1", json!({"poll-max-ns": 5})),
    ];
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    let want = walk(&qemu, &[]);
    let got = walk(&sim, &[]);
    common::assert_same(&want, &got);
    assert!(want.len() >= 9, "{want:?}");
    let want = walk(&qemu, &setup);
    let got = walk(&sim, &setup);
    common::assert_same(&want, &got);
    assert!(want.iter().any(|l| l.starts_with("/objects/mem0/mem0[0]:")), "{want:?}");
}

#[test]
fn qom_get_and_errors() {
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    let mut steps = vec![negotiate(), list("/objects"), get("/objects", "type")];
    for path in ["/", "/machine", "/machine/peripheral", "/chardevs", "/machine/unattached/sysbus"] {
        steps.push(get(path, "type"));
    }
    for prop in [
        "kernel",
        "usb",
        "smp",
        "memory",
        "boot",
        "graphics",
        "dump-guest-core",
        "mem-merge",
        "phandle-start",
        "memory-backend",
        "peripheral",
        "unattached",
        "nope",
    ] {
        steps.push(get("/machine", prop));
    }
    for prop in ["size", "addr", "priority", "container", "nope"] {
        steps.push(get("/machine/unattached/system[0]", prop));
        steps.push(get("/machine/unattached/io[0]", prop));
    }
    steps.extend([
        get("/chardevs/compat_monitor0", "connected"),
        get("/machine/unattached/sysbus", "realized"),
        get("/machine/unattached/sysbus", "hotplug-handler"),
        // Paths: unknown, partial, sloppy slashes, empty.
        get("/nope", "type"),
        get("nope", "type"),
        get("", "type"),
        get("/machine/nope/x", "type"),
        get("peripheral", "type"),
        get("unattached/sysbus", "type"),
        get("machine/unattached", "type"),
        get("//machine", "type"),
        get("/machine/", "type"),
        list("/nope"),
        list("nope"),
        list(""),
        list("sysbus"),
        // Argument errors, in QEMU's member order.
        exec("qom-get", json!({"path": "/"})),
        exec("qom-get", json!({"property": "type"})),
        exec("qom-get", json!({"path": 1})),
        exec("qom-get", json!({"path": "/nope", "property": 1})),
        exec("qom-get", json!({"path": "/", "property": "type", "x": 1})),
        exec("qom-list", json!({})),
        exec("qom-list", json!({"path": "/", "x": 1})),
        exec("qom-list", json!({"path": 5, "x": 1})),
    ]);
    compare(&qemu, &sim, &steps);
}

#[test]
fn qom_set() {
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    let steps = vec![
        negotiate(),
        add("iothread", "io0", json!({})),
        add("memory-backend-ram", "m0", json!({"size": 1048576})),
        set("/objects/io0", "poll-max-ns", json!(100)),
        get("/objects/io0", "poll-max-ns"),
        set("/objects/io0", "poll-max-ns", json!("x")),
        set("/objects/io0", "poll-max-ns", json!(-1)),
        set("/objects/io0", "poll-max-ns", json!(1.5)),
        set("/objects/io0", "poll-max-ns", json!(null)),
        set("/objects/io0", "poll-max-ns", json!({})),
        set("/objects/io0", "poll-max-ns", json!(9223372036854775807i64)),
        set("/objects/io0", "poll-max-ns", json!(18446744073709551615u64)),
        get("/objects/io0", "poll-max-ns"),
        set("/objects/io0", "poll-grow", json!(2)),
        set("/objects/io0", "poll-shrink", json!(-3)),
        // A refused pool bound stays set, and refuses the next pool parameter too.
        set("/objects/io0", "thread-pool-min", json!(100)),
        get("/objects/io0", "thread-pool-min"),
        set("/objects/io0", "aio-max-batch", json!(3)),
        set("/objects/io0", "thread-pool-min", json!(0)),
        set("/objects/io0", "aio-max-batch", json!(3)),
        set("/objects/io0", "thread-pool-max", json!(-3)),
        get("io0", "aio-max-batch"),
        set("/objects/io0", "type", json!("x")),
        set("/objects/io0", "nope", json!("x")),
        set("/nope", "nope", json!("x")),
        set("/objects", "io0", json!("x")),
        // Read-only and frozen properties of the fixed tree and of a memory backend.
        set("/machine", "peripheral", json!("x")),
        set("/machine/unattached/system[0]", "size", json!(1)),
        set("/objects/m0/m0[0]", "container", json!("x")),
        set("/chardevs/compat_monitor0", "connected", json!(true)),
        set("/objects/m0", "size", json!(2097152)),
        set("/objects/m0", "share", json!(true)),
        set("/objects/m0", "reserve", json!(false)),
        set("/objects/m0", "policy", json!("nope")),
        set("/objects/m0", "policy", json!(5)),
        set("/objects/m0", "policy", json!("bind")),
        get("/objects/m0", "policy"),
        set("/objects/m0", "dump", json!(false)),
        get("/objects/m0", "dump"),
        set("/objects/m0", "merge", json!("x")),
        set("/objects/m0", "prealloc-threads", json!(4)),
        set("/objects/m0", "host-nodes", json!([0])),
        get("/objects/m0", "host-nodes"),
        // The machine's settable properties, and its links.
        set("/machine", "kernel", json!("vmlinuz")),
        get("/machine", "kernel"),
        set("/machine", "kernel", json!(5)),
        set("/machine", "usb", json!(1)),
        set("/machine", "usb", json!(true)),
        get("/machine", "usb"),
        set("/machine", "phandle-start", json!("x")),
        set("/machine", "phandle-start", json!(5)),
        get("/machine", "phandle-start"),
        set("/machine", "memory-backend", json!("x")),
        set("/machine", "memory-backend", json!(1)),
        set("/machine", "memory-backend", json!("/objects/io0")),
        set("/machine", "memory-backend", json!("m0")),
        get("/machine", "memory-backend"),
        get("/machine/memory-backend", "size"),
        set("/machine", "memory-backend", json!("")),
        get("/machine", "memory-backend"),
        // Two things wrong: the first in QEMU's order wins.
        exec("qom-set", json!({"path": "/nope", "property": "nope"})),
        exec("qom-set", json!({"property": "nope", "value": 1})),
        exec("qom-set", json!({"path": 1, "property": "nope", "value": 1})),
        exec("qom-set", json!({"path": "/nope", "property": 2, "x": 1})),
        exec("qom-set", json!({"path": "/nope", "property": "p", "value": 1, "x": 1})),
    ];
    compare(&qemu, &sim, &steps);
}

#[test]
fn object_add_and_del() {
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    let mut steps = vec![
        negotiate(),
        list("/"),
        del("x"),
        list("/"),
        list("/objects"),
        add("iothread", "io0", json!({})),
        add("iothread", "io0", json!({})),
        add("memory-backend-ram", "m1", json!({})),
        add("memory-backend-ram", "m1", json!({"size": 0})),
        add("memory-backend-ram", "m1", json!({"size": "x"})),
        add("memory-backend-ram", "m1", json!({"size": 1048576, "policy": "bind"})),
        add("memory-backend-ram", "m1", json!({"size": 1048576, "policy": "interleave"})),
        add("nope", "m1", json!({})),
        exec("object-add", json!({"qom-type": "iothread"})),
        exec("object-add", json!({"id": "x"})),
        exec("object-add", json!({"qom-type": 5, "id": 6})),
        add("iothread", "1bad", json!({})),
        add("iothread", "", json!({})),
        add("iothread", "a b", json!({})),
        add("iothread", "#a", json!({})),
        add("iothread", "-a", json!({})),
        add("iothread", "\u{e9}", json!({})),
        add("nope", "#a", json!({})),
        add("iothread", "a.b-c_d", json!({})),
        add("iothread", &"l".repeat(300), json!({})),
        del("a.b-c_d"),
        del(&"l".repeat(300)),
        del(""),
        del("#a"),
        add("iothread", "x", json!({"poll-max-ns": -1})),
        add("iothread", "x", json!({"bogus": 1})),
        add("iothread", "x", json!({"poll-max-ns": "fast"})),
        add("iothread", "x", json!({"thread-pool-min": 100})),
        add("iothread", "x", json!({"poll-max-ns": 5, "poll-grow": 2})),
        get("/objects/x", "poll-grow"),
        get("/objects/x", "poll-max-ns"),
        get("/objects/x", "thread-pool-max"),
        add(
            "memory-backend-ram",
            "m2",
            json!({"size": 2097152, "share": true, "merge": false, "dump": false, "reserve": false}),
        ),
        get("/objects/m2", "share"),
        get("/objects/m2", "reserve"),
        get("/objects/m2", "merge"),
        get("/objects/m2/m2[0]", "size"),
        list("/objects/m2"),
        del("x"),
        del("x"),
        exec("object-del", json!({})),
        exec("object-del", json!({"id": 1})),
        list("/objects"),
    ];
    // Enough objects that the container's table grows and shrinks: the order must follow.
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q"];
    for n in names {
        steps.push(add("iothread", n, json!({})));
    }
    steps.push(list("/objects"));
    for n in ["c", "k", "l", "m", "n", "o", "p", "q", "j", "i", "m2"] {
        steps.push(del(n));
    }
    steps.push(list("/objects"));
    steps.extend([add("iothread", "new1", json!({})), add("iothread", "c", json!({})), list("/objects")]);
    compare(&qemu, &sim, &steps);
}

/// `secret` objects: loaded from `data` or a file, raw or base64, refused as QEMU refuses
/// them (both or neither source, an unreadable file, bad base64, a `keyid` naming no secret
/// or a key of the wrong length), listed, read and deleted as QEMU does.
#[test]
fn secrets_are_loaded_and_refused_as_qemu_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret.txt");
    std::fs::write(&file, b"from a file").unwrap();
    let file = file.display().to_string();
    let mut steps = vec![negotiate(), add("secret", "s1", json!({"data": "abc"})), list("/objects/s1")];
    for prop in ["loaded", "data", "format", "keyid", "file", "iv"] {
        steps.push(get("/objects/s1", prop));
    }
    steps.extend([
        add("secret", "s2", json!({})),
        add("secret", "s2", json!({"data": "a", "file": file})),
        add("secret", "s2", json!({"file": "/nonexistent/secret"})),
        add("secret", "s2", json!({"file": file})),
        get("/objects/s2", "data"),
        get("/objects/s2", "file"),
        add("secret", "s3", json!({"data": "!!!", "format": "base64"})),
        add("secret", "s3", json!({"data": "c2VjcmV0", "format": "base64"})),
        add("secret", "s4", json!({"data": "abc", "format": "nope"})),
        add("secret", "s4", json!({"data": "abc", "keyid": "nope"})),
        add("secret", "s4", json!({"data": "abc", "keyid": "s1"})),
        add("secret", "k32", json!({"data": "0123456789abcdef0123456789abcdef"})),
        add("secret", "s4", json!({"data": "abc", "keyid": "k32"})),
        add("secret", "s1", json!({"data": "abc"})),
        add("secret", "9s", json!({"data": "abc"})),
        set("/objects/s1", "data", json!("x")),
        get("/objects/s1", "data"),
        set("/objects/s1", "loaded", json!(false)),
        del("s1"),
        list("/objects"),
        exec("qom-list-properties", json!({"typename": "secret"})),
    ]);
    compare(&Peer::qemu_system(), &Peer::sim(), &steps);
}
