//! Block nodes and jobs: the same transcripts sent to a real `qemu-storage-daemon` (started
//! here, on images made with `qemu-img`) and to the simulator. Job progress counters are
//! masked; event sequences, replies and errors must match.

mod common;

use common::{make_images, s, s_until, Peer, Step};

fn exec(cmd: &str, args: &str) -> String {
    format!("{{\"execute\": \"{cmd}\", \"arguments\": {args}}}")
}

/// Adds file+qcow2 nodes for base, top (backed by base) and tgt.
fn add_nodes(dir: &std::path::Path) -> Vec<Step> {
    let f = |n: &str| dir.join(n).display().to_string();
    vec![
        s(b"{\"execute\": \"qmp_capabilities\"}"),
        s(exec(
            "blockdev-add",
            &format!(r#"{{"driver": "file", "node-name": "bf", "filename": "{}"}}"#, f("base.qcow2")),
        )),
        s(exec("blockdev-add", r#"{"driver": "qcow2", "node-name": "base0", "file": "bf"}"#)),
        s(exec(
            "blockdev-add",
            &format!(r#"{{"driver": "file", "node-name": "f0", "filename": "{}"}}"#, f("top.qcow2")),
        )),
        s(exec(
            "blockdev-add",
            r#"{"driver": "qcow2", "node-name": "top0", "file": "f0", "backing": "base0"}"#,
        )),
        s(exec(
            "blockdev-add",
            &format!(r#"{{"driver": "file", "node-name": "tf", "filename": "{}"}}"#, f("tgt.qcow2")),
        )),
        s(exec("blockdev-add", r#"{"driver": "qcow2", "node-name": "tgt0", "file": "tf"}"#)),
    ]
}

/// Runs `steps` (after adding the nodes) against qemu-storage-daemon and the simulator, each
/// on fresh images in the same place.
fn both(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path());
    let mut all = add_nodes(dir.path());
    all.extend(steps);
    let qemu = Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]);
    let want = common::transcript(&qemu, &all);
    drop(qemu);
    let sim = Peer::sim();
    let got = common::transcript(&sim, &all);
    common::assert_same(&want, &got);
}

#[test]
fn node_errors() {
    both(vec![
        s(exec("blockdev-add", r#"{"driver": "qcow2", "node-name": "top0", "file": "f0"}"#)),
        s(exec("blockdev-add", r#"{"driver": "qcow2", "node-name": "x", "file": "nope"}"#)),
        s(exec("blockdev-add", r#"{"driver": "qcow2", "file": "bf"}"#)),
        s(exec("blockdev-add", r#"{"driver": "qcow2", "node-name": "x"}"#)),
        s(exec("blockdev-add", r#"{"driver": "file", "node-name": "x", "filename": 5}"#)),
        s(exec("blockdev-add", r#"{"driver": "file", "node-name": "x", "filename": "/nonexistent"}"#)),
        s(exec("blockdev-add", r#"{"driver": "file", "node-name": "x", "filename": "/x", "bogus": 1}"#)),
        s(exec("blockdev-del", r#"{"node-name": "nope"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "f0"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "tgt0"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "tf"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "tf"}"#)),
        s(r#"{"execute": "query-block"}"#),
    ]);
}

#[test]
fn stream_pause_resume_cancel() {
    both(vec![
        s(exec("block-stream", r#"{"job-id": "j1", "device": "top0", "speed": 1048576}"#)),
        s(exec("block-stream", r#"{"job-id": "j2", "device": "top0"}"#)),
        s(exec("block-stream", r#"{"job-id": "j2", "device": "base0"}"#)),
        s(exec("block-stream", r#"{"job-id": "j2", "device": "nope"}"#)),
        s(exec("block-stream", r#"{"job-id": "j2", "device": "top0", "speed": "x"}"#)),
        s(r#"{"execute": "query-block-jobs"}"#),
        s(r#"{"execute": "query-jobs"}"#),
        s_until(exec("block-job-pause", r#"{"device": "j1"}"#), r#""status": "paused""#),
        s(exec("block-job-pause", r#"{"device": "j1"}"#)),
        s(r#"{"execute": "query-block-jobs"}"#),
        s(r#"{"execute": "query-jobs"}"#),
        s_until(exec("block-job-resume", r#"{"device": "j1"}"#), r#""status": "running""#),
        s(exec("block-job-resume", r#"{"device": "j1"}"#)),
        s(exec("block-job-set-speed", r#"{"device": "j1", "speed": -1}"#)),
        s(exec("block-job-set-speed", r#"{"device": "j1", "speed": 2097152}"#)),
        s(exec("block-job-complete", r#"{"device": "j1"}"#)),
        s(exec("job-dismiss", r#"{"id": "j1"}"#)),
        s(exec("job-dismiss", r#"{"id": "zz"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "top0"}"#)),
        s(exec("block-job-pause", r#"{"device": "zz"}"#)),
        s_until(exec("block-job-cancel", r#"{"device": "j1"}"#), r#""status": "null""#),
        s(r#"{"execute": "query-block-jobs"}"#),
        s(exec("block-job-cancel", r#"{"device": "j1"}"#)),
    ]);
}

#[test]
fn stream_completes_and_dismiss() {
    both(vec![
        s(exec(
            "block-stream",
            r#"{"job-id": "j2", "device": "top0", "speed": 1048576, "auto-dismiss": false}"#,
        )),
        s_until(exec("block-job-cancel", r#"{"device": "j2"}"#), r#""status": "concluded""#),
        s(r#"{"execute": "query-jobs"}"#),
        s(r#"{"execute": "query-block-jobs"}"#),
        s(exec("block-stream", r#"{"job-id": "j3", "device": "top0"}"#)),
        s(exec("job-dismiss", r#"{"id": "j2"}"#)),
        s(r#"{"execute": "query-jobs"}"#),
        s_until(exec("block-stream", r#"{"job-id": "j1", "device": "top0"}"#), r#""status": "null""#),
    ]);
}

#[test]
fn mirror_ready_complete_and_cancel() {
    both(vec![
        s_until(
            exec(
                "blockdev-mirror",
                r#"{"job-id": "m1", "device": "top0", "target": "tgt0", "sync": "full"}"#,
            ),
            "BLOCK_JOB_READY",
        ),
        s(r#"{"execute": "query-block-jobs"}"#),
        s_until(exec("block-job-pause", r#"{"device": "m1"}"#), r#""status": "standby""#),
        s(r#"{"execute": "query-jobs"}"#),
        s_until(exec("block-job-resume", r#"{"device": "m1"}"#), r#""status": "ready""#),
        s_until(exec("block-job-complete", r#"{"device": "m1"}"#), r#""status": "null""#),
        s_until(
            exec(
                "blockdev-mirror",
                r#"{"job-id": "m2", "device": "top0", "target": "tgt0", "sync": "full"}"#,
            ),
            "BLOCK_JOB_READY",
        ),
        s_until(exec("block-job-cancel", r#"{"device": "m2"}"#), r#""status": "null""#),
        s(exec(
            "blockdev-mirror",
            r#"{"job-id": "m3", "device": "top0", "target": "tgt0", "sync": "sideways"}"#,
        )),
        s(exec("blockdev-mirror", r#"{"job-id": "m3", "device": "top0", "target": "nope", "sync": "full"}"#)),
    ]);
}

#[test]
fn active_commit_is_ready_at_once() {
    both(vec![
        s_until(exec("block-commit", r#"{"job-id": "c1", "device": "top0"}"#), "BLOCK_JOB_READY"),
        s(r#"{"execute": "query-block-jobs"}"#),
        s_until(exec("block-job-complete", r#"{"device": "c1"}"#), r#""status": "null""#),
    ]);
}

/// Names at the edges QEMU checks (empty, not starting with a letter, odd characters, too
/// long), with every other argument valid so that the name's own check is the one reached,
/// and the order of the checks around them.
#[test]
fn edge_names_and_values() {
    let long = "n".repeat(32);
    let ok31 = "n".repeat(31);
    let bad = ["", "1a", "a b", "#a", "-a", "\u{e9}", "a/b"];
    let mut steps = Vec::new();
    for name in bad.iter().copied().chain([long.as_str(), ok31.as_str(), "a.b-c_d"]) {
        let n = serde_json::json!(name);
        steps.push(s(exec("blockdev-add", &format!(r#"{{"driver": "null-co", "node-name": {n}}}"#))));
        steps.push(s(exec("block-dirty-bitmap-add", &format!(r#"{{"node": "top0", "name": {n}}}"#))));
    }
    for name in bad {
        let n = serde_json::json!(name);
        steps.push(s(exec("block-stream", &format!(r#"{{"job-id": {n}, "device": "top0", "speed": 1}}"#))));
        steps.push(s(exec(
            "blockdev-mirror",
            &format!(r#"{{"job-id": {n}, "device": "top0", "target": "tgt0", "sync": "full", "speed": 1}}"#),
        )));
    }
    // The checks around them, in QEMU's order: a format's file child before the name, the
    // name before its backing child and before the file is opened; a mirror's target, and
    // a node already busy, before the job id; the default job id (no device name) refused.
    for args in [
        r##"{"driver": "qcow2", "node-name": "#x", "file": "nope"}"##,
        r##"{"driver": "qcow2", "node-name": "#x", "file": "tf", "backing": "nope"}"##,
        r#"{"driver": "qcow2", "node-name": "bf", "file": "nope"}"#,
        r##"{"driver": "file", "node-name": "#x", "filename": "/nonexistent"}"##,
        r#"{"driver": "file", "node-name": "bf", "filename": "/nonexistent"}"#,
        r#"{"driver": "file", "node-name": "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn", "filename": "/nonexistent"}"#,
    ] {
        steps.push(s(exec("blockdev-add", args)));
    }
    steps.push(s(exec(
        "blockdev-mirror",
        r##"{"job-id": "#j", "device": "top0", "target": "nope", "sync": "full"}"##,
    )));
    steps.push(s(exec("block-stream", r#"{"device": "top0", "speed": 1}"#)));
    steps.push(s(exec("blockdev-mirror", r#"{"device": "top0", "target": "tgt0", "sync": "full"}"#)));
    steps.push(s(exec("block-commit", r##"{"device": "bf", "job-id": "#j"}"##)));
    steps.push(s(exec("block-stream", r#"{"job-id": "j1", "device": "top0", "speed": 1}"#)));
    steps.push(s(exec("block-stream", r##"{"job-id": "#j", "device": "top0", "speed": 1}"##)));
    steps.push(s(exec("block-stream", r#"{"job-id": "j1", "device": "top0", "speed": 1}"#)));
    steps.push(s(exec("block-stream", r#"{"job-id": "j1", "device": "base0", "speed": 1}"#)));
    steps.push(s(r#"{"execute": "query-jobs"}"#));
    let huge = "b".repeat(1024);
    let max = "m".repeat(1023);
    for (name, granularity) in [
        (huge.as_str(), 65536),
        (max.as_str(), 65536),
        ("g0", 0),
        ("g1", 3),
        ("g2", 256),
        ("g3", 512),
        ("g4", 1 << 31),
        ("g5", -512),
    ] {
        steps.push(s(exec(
            "block-dirty-bitmap-add",
            &format!(r#"{{"node": "top0", "name": "{name}", "granularity": {granularity}}}"#),
        )));
    }
    steps.push(s(exec("block-dirty-bitmap-add", r#"{"node": "", "name": "x"}"#)));
    steps.push(s(exec("block-dirty-bitmap-add", r#"{"node": "", "name": ""}"#)));
    steps.push(s(exec("block-dirty-bitmap-remove", r#"{"node": "top0", "name": ""}"#)));
    steps.push(s(exec("blockdev-del", r#"{"node-name": ""}"#)));
    steps.push(s(exec("block-stream", r#"{"device": ""}"#)));
    steps.push(s(exec("block-job-cancel", r#"{"device": ""}"#)));
    steps.push(s(exec("job-dismiss", r#"{"id": ""}"#)));
    both(steps);
}

/// What `query-named-block-nodes` reports of files, qcow2 images and a backing chain, flat
/// and not, and of a null node.
#[test]
fn named_nodes_as_qemu_reports_them() {
    // Headers of other kinds: version 2, lazy refcounts with 64-bit refcounts and 4 KiB
    // clusters, zstd compression, a version 2 backing file.
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let create = |name: &str, opts: &[&str]| {
        let mut args = vec!["create", "-q", "-f", "qcow2"];
        args.extend_from_slice(opts);
        let path = p(name);
        args.extend([path.as_str(), "1M"]);
        common::run_tool("qemu-img", &args);
    };
    create("v2.qcow2", &["-o", "compat=0.10"]);
    create("lazy.qcow2", &["-o", "lazy_refcounts=on,refcount_bits=64,cluster_size=4096"]);
    create("zstd.qcow2", &["-o", "compression_type=zstd"]);
    // (A backing node whose name differs from the header's backing file, a relative name
    // among them, makes QEMU describe the image as `json:{...}`, which the simulator does
    // not: the backing file is named as its node is.)
    let v2 = p("v2.qcow2");
    create("rel.qcow2", &["-b", &v2, "-F", "qcow2"]);
    let mut steps =
        vec![s(exec("blockdev-add", r#"{"driver": "null-co", "node-name": "n0", "size": 1048576}"#))];
    for (i, name) in ["v2.qcow2", "lazy.qcow2", "zstd.qcow2", "rel.qcow2"].iter().enumerate() {
        steps.push(s(exec(
            "blockdev-add",
            &format!(r#"{{"driver": "file", "node-name": "x{i}", "filename": "{}"}}"#, p(name)),
        )));
        steps.push(s(exec(
            "blockdev-add",
            // rel.qcow2's backing file is v2.qcow2, node q0.
            &if *name == "rel.qcow2" {
                format!(r#"{{"driver": "qcow2", "node-name": "q{i}", "file": "x{i}", "backing": "q0"}}"#)
            } else {
                format!(r#"{{"driver": "qcow2", "node-name": "q{i}", "file": "x{i}"}}"#)
            },
        )));
    }
    both(
        vec![
            steps.remove(0),
            s(r#"{"execute": "query-named-block-nodes"}"#),
            s(exec("query-named-block-nodes", r#"{"flat": true}"#)),
            s(exec("query-named-block-nodes", r#"{"flat": false}"#)),
        ]
        .into_iter()
        .chain(steps)
        .chain([s(exec("query-named-block-nodes", r#"{"flat": false}"#))])
        .collect(),
    );
}
