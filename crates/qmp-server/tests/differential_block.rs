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
    let want =
        mask_implicit_names(common::mask_numbers(common::transcript(&qemu, &all), &["\"actual-size\": "]));
    drop(qemu);
    // A job of QEMU's may have rewritten an image: the simulator starts from fresh ones.
    make_images(dir.path());
    let sim = Peer::sim();
    let got =
        mask_implicit_names(common::mask_numbers(common::transcript(&sim, &all), &["\"actual-size\": "]));
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
        // A stream that is copying aborts when its copy ends, before or after the reply
        // as it happens; one that waits (paused, or between chunks at its speed) aborts
        // within the command, resumed first when paused (a plain step keeps that order).
        s_until(exec("block-job-cancel", r#"{"device": "j1"}"#), r#""status": "null""#),
        s(exec("block-stream", r#"{"job-id": "j3", "device": "top0", "speed": 1}"#)),
        s_until(exec("job-pause", r#"{"id": "j3"}"#), r#""status": "paused""#),
        s(exec("job-cancel", r#"{"id": "j3"}"#)),
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
        // A top node with nothing below is its own base.
        s(exec("block-commit", r#"{"job-id": "c0", "device": "top0", "top-node": "base0"}"#)),
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

/// A 1 MiB qcow2 image at `path`, made by `qemu-img create` with `opts`.
fn create_qcow2(path: &str, opts: &[&str]) {
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    args.extend_from_slice(opts);
    args.extend([path, "1M"]);
    common::run_tool("qemu-img", &args);
}

/// What `query-named-block-nodes` reports of files, qcow2 images and a backing chain, flat
/// and not, and of a null node.
#[test]
fn named_nodes_as_qemu_reports_them() {
    // Headers of other kinds: version 2, lazy refcounts with 64-bit refcounts and 4 KiB
    // clusters, zstd compression, a version 2 backing file.
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let create = |name: &str, opts: &[&str]| create_qcow2(&p(name), opts);
    create("v2.qcow2", &["-o", "compat=0.10"]);
    create("lazy.qcow2", &["-o", "lazy_refcounts=on,refcount_bits=64,cluster_size=4096"]);
    create("zstd.qcow2", &["-o", "compression_type=zstd"]);
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

/// A backing node that is not the one the image header names as QEMU stores it (a relative
/// name is never a node's filename), or none where the header names one: QEMU then reports
/// the image as `json:{...}` with the options it was opened with, nested down the chain, and
/// `backing_file` as the backing node's filename.
#[test]
fn overridden_backing_files_are_json_filenames() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).display().to_string();
    let create = |name: &str, opts: &[&str]| create_qcow2(&p(name), opts);
    create("base.qcow2", &[]);
    create("other.qcow2", &[]);
    // Three alike (one writer each).
    for name in ["abs.qcow2", "abs2.qcow2", "abs3.qcow2"] {
        create(name, &["-b", &p("base.qcow2"), "-F", "qcow2"]);
    }
    // Relative backing names, stored as given.
    create("rel.qcow2", &["-b", "base.qcow2", "-F", "qcow2"]);
    create("rel2.qcow2", &["-b", "rel.qcow2", "-F", "qcow2"]);
    let mut steps = Vec::new();
    let mut add = |node: &str, file: &str, backing: Option<&str>| {
        steps.push(s(exec(
            "blockdev-add",
            &format!(r#"{{"driver": "file", "node-name": "f-{node}", "filename": "{}"}}"#, p(file)),
        )));
        let backing = match backing {
            None => String::new(),
            Some("null") => r#", "backing": null"#.to_string(),
            Some(b) => format!(r#", "backing": "{b}""#),
        };
        steps.push(s(exec(
            "blockdev-add",
            &format!(r#"{{"driver": "qcow2", "node-name": "{node}", "file": "f-{node}"{backing}}}"#),
        )));
    };
    add("base", "base.qcow2", None);
    add("other", "other.qcow2", None);
    // The header's own backing, by its absolute name: a plain filename.
    add("abs", "abs.qcow2", Some("base"));
    // Another backing than the header's; no backing where the header has one.
    add("abs-other", "abs2.qcow2", Some("other"));
    add("abs-none", "abs3.qcow2", Some("null"));
    // A relative header name: json, and json nested in its overlay's.
    add("rel", "rel.qcow2", Some("base"));
    add("rel2", "rel2.qcow2", Some("rel"));
    steps.push(s(exec("query-named-block-nodes", r#"{"flat": true}"#)));
    steps.push(s(exec("query-named-block-nodes", r#"{"flat": false}"#)));
    both(steps);
}

/// `both`, with what a stream changes on disk masked: `actual-size` and `virtual-size`
/// (QEMU really copies the data, and a file node's size is its file's).
/// The two digits QEMU picks at random for a node it names itself (`#block` + counter + 2
/// random digits), masked.
fn mask_implicit_names(lines: Vec<String>) -> Vec<String> {
    lines
        .into_iter()
        .map(|line| {
            let mut masked = String::new();
            let mut rest = line.as_str();
            while let Some(i) = rest.find("#block") {
                let digits = rest[i + 6..].chars().take_while(char::is_ascii_digit).count();
                masked.push_str(&rest[..i + 6 + digits.saturating_sub(2)]);
                masked.push_str("RR");
                rest = &rest[i + 6 + digits..];
            }
            masked.push_str(rest);
            masked
        })
        .collect()
}

fn both_masking_copies(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    make_images(dir.path());
    let mut all = add_nodes(dir.path());
    all.extend(steps);
    let qemu = Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]);
    let sizes = ["\"actual-size\": ", "\"virtual-size\": "];
    let want = mask_implicit_names(common::mask_numbers(common::transcript(&qemu, &all), &sizes));
    drop(qemu);
    // QEMU's stream rewrote the image's header: the simulator starts from fresh images.
    make_images(dir.path());
    let got = mask_implicit_names(common::mask_numbers(common::transcript(&Peer::sim(), &all), &sizes));
    common::assert_same(&want, &got);
}

/// While a stream runs, QEMU lists the copy-on-read filter it put above the node (in the
/// chain when shown whole); the filter goes with the job, and a finished stream leaves the
/// node with no backing file.
#[test]
fn a_stream_has_its_filter_node_and_leaves_the_chain_shorter() {
    both_masking_copies(vec![
        s(exec("block-stream", r#"{"job-id": "j1", "device": "top0", "speed": 1024}"#)),
        s(exec("query-named-block-nodes", r#"{"flat": true}"#)),
        s(exec("query-named-block-nodes", r#"{"flat": false}"#)),
        // A stream that is copying aborts when its copy ends, before or after the reply
        // as it happens; one that waits (paused, or between chunks at its speed) aborts
        // within the command, resumed first when paused (a plain step keeps that order).
        s_until(exec("block-job-cancel", r#"{"device": "j1"}"#), r#""status": "null""#),
        s(exec("block-stream", r#"{"job-id": "j3", "device": "top0", "speed": 1}"#)),
        s_until(exec("job-pause", r#"{"id": "j3"}"#), r#""status": "paused""#),
        s(exec("job-cancel", r#"{"id": "j3"}"#)),
        s(exec("query-named-block-nodes", r#"{"flat": true}"#)),
        s_until(exec("block-stream", r#"{"job-id": "j2", "device": "top0"}"#), r#""status": "null""#),
        s(exec("query-named-block-nodes", r#"{"flat": false}"#)),
        s(exec("blockdev-del", r#"{"node-name": "base0"}"#)),
    ]);
}

/// `raw` nodes: a window onto their file child, named as QEMU names them (the child's name,
/// or `json:` with their options), and refused as QEMU refuses them, a window over a file a
/// writable qcow2 node uses included; `null-aio` beside `null-co`; `detect-zeroes` reported,
/// and `unmap` refused without `discard: unmap`.
#[test]
fn raw_nodes_are_windows_onto_their_file() {
    let add = |args: &str| s(exec("blockdev-add", args));
    both(vec![
        add(r#"{"driver": "raw", "node-name": "r0", "file": "bf"}"#),
        add(
            r#"{"driver": "raw", "node-name": "r1", "file": "bf", "offset": 4096, "size": 8192, "read-only": true}"#,
        ),
        add(r#"{"driver": "null-aio", "node-name": "na", "size": 4096}"#),
        add(r#"{"driver": "null-aio", "node-name": "nb"}"#),
        add(r#"{"driver": "raw", "node-name": "r2", "file": "na"}"#),
        add(r#"{"driver": "raw", "node-name": "r3", "file": "nb"}"#),
        add(r#"{"driver": "raw", "node-name": "x", "file": "bf", "offset": 1099511627776}"#),
        add(r#"{"driver": "raw", "node-name": "x", "file": "bf", "size": 1099511627776}"#),
        add(r#"{"driver": "raw", "node-name": "x", "file": "bf", "offset": 1099511627776, "size": 1}"#),
        add(r#"{"driver": "raw", "node-name": "x", "file": "bf", "offset": 1, "size": 1}"#),
        add(r#"{"driver": "raw", "node-name": "x", "file": "bf", "offset": -1}"#),
        add(r#"{"driver": "raw", "node-name": "x", "file": "nope"}"#),
        add(r#"{"driver": "raw", "node-name": "x"}"#),
        add(r#"{"driver": "raw", "node-name": "r4", "file": "bf", "offset": 1, "size": 512}"#),
        add(r#"{"driver": "raw", "node-name": "r5", "file": "bf", "offset": 0}"#),
        add(r#"{"driver": "raw", "node-name": "r6", "file": "r5"}"#),
        // A writable qcow2 node over a window's file, refused before its header is read.
        add(r#"{"driver": "raw", "node-name": "r7", "file": "na", "size": 4096}"#),
        add(r#"{"driver": "qcow2", "node-name": "x", "file": "na"}"#),
        add(r#"{"driver": "qcow2", "node-name": "x", "file": "na", "read-only": true}"#),
        add(r#"{"driver": "file", "node-name": "x", "filename": "/nonexistent", "detect-zeroes": "unmap"}"#),
        add(r#"{"driver": "raw", "node-name": "9x", "file": "bf", "detect-zeroes": "unmap"}"#),
        add(r#"{"driver": "raw", "node-name": "x", "file": "nope", "detect-zeroes": "unmap"}"#),
        add(r#"{"driver": "null-co", "node-name": "z1", "detect-zeroes": "on"}"#),
        add(r#"{"driver": "null-co", "node-name": "z2", "detect-zeroes": "unmap", "discard": "unmap"}"#),
        s(b"{\"execute\": \"query-named-block-nodes\", \"arguments\": {\"flat\": true}}"),
        s(b"{\"execute\": \"query-named-block-nodes\"}"),
        s(exec("blockdev-del", r#"{"node-name": "r5"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "r6"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "r5"}"#)),
    ]);
}

/// Child nodes given inline: checked whole before anything opens (members named by their
/// path), opened child first and named `#block…` unless named, `read-only` and `cache`
/// inherited, owned by their parent (deleted with it, not deletable alone), dropped when
/// their parent fails.
#[test]
fn inline_children_are_opened_named_and_owned_as_qemu_does() {
    let images = tempfile::tempdir().unwrap();
    let raw = images.path().join("disk.raw");
    std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
    let add = |args: String| s(exec("blockdev-add", &args));
    let raw = raw.display();
    both(vec![
        add(format!(r#"{{"driver": "raw", "node-name": "i0", "file": {{"driver": "file", "filename": "{raw}"}}}}"#)),
        add(r#"{"driver": "raw", "node-name": "i1", "file": {"driver": "null-co", "size": 4096}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": {"driver": "file", "filename": "/nonexistent"}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "9x", "file": {"driver": "null-co"}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "i2", "file": {"driver": "null-co", "node-name": "inner"}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "i3", "file": {"driver": "raw", "file": {"driver": "null-co"}}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": {"driver": "file"}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": {"filename": "/x"}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": {"driver": "file", "filename": "/x", "bogus": 1}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": {"driver": "nope"}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": {"driver": "file", "filename": 7}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": 7}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": null}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": {"driver": "raw", "file": {"driver": "file"}}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "x", "file": {"driver": "null-co", "node-name": "9x"}}"#.into()),
        add(r#"{"driver": "raw", "file": {"driver": "null-co"}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "i4", "read-only": true, "file": {"driver": "null-co"}}"#.into()),
        add(r#"{"driver": "raw", "node-name": "i5", "read-only": true, "file": {"driver": "null-co", "read-only": false}}"#.into()),
        add(r#"{"driver": "qcow2", "node-name": "i6", "file": "tf", "backing": {"driver": "null-co"}}"#.into()),
        // `cache` flags are inherited too; aio=native needs cache.direct, checked once open.
        add(r#"{"driver": "raw", "node-name": "i7", "cache": {"direct": true, "no-flush": true}, "file": {"driver": "null-co", "cache": {"direct": false}}}"#.into()),
        add(format!(r#"{{"driver": "raw", "node-name": "x", "file": {{"driver": "file", "filename": "{raw}", "aio": "native"}}}}"#)),
        add(r#"{"driver": "raw", "node-name": "x", "file": {"driver": "file", "filename": "/nonexistent", "aio": "native"}}"#.into()),
        add(format!(r#"{{"driver": "raw", "node-name": "i8", "cache": {{"direct": true}}, "file": {{"driver": "file", "filename": "{raw}", "aio": "native"}}}}"#)),
        s(b"{\"execute\": \"query-named-block-nodes\", \"arguments\": {\"flat\": true}}"),
        s(exec("blockdev-del", r#"{"node-name": "inner"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "i2"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "inner"}"#)),
        s(exec("blockdev-del", r#"{"node-name": "i3"}"#)),
        s(b"{\"execute\": \"query-named-block-nodes\", \"arguments\": {\"flat\": true}}"),
    ]);
}

/// Two nodes over one file node: a qcow2 node lets no one else write or resize its file and
/// (unless read-only) needs both; a raw window lets no one resize it. The newest user in
/// the way is named.
#[test]
fn users_of_one_file_conflict_as_in_qemu() {
    let add = |args: &str| s(exec("blockdev-add", args));
    both(vec![
        add(r#"{"driver": "qcow2", "node-name": "x", "file": "bf"}"#),
        add(r#"{"driver": "qcow2", "node-name": "x", "file": "bf", "read-only": true}"#),
        add(r#"{"driver": "raw", "node-name": "x", "file": "bf", "size": 512}"#),
        s(exec("blockdev-del", r#"{"node-name": "tgt0"}"#)),
        add(r#"{"driver": "qcow2", "node-name": "ro1", "file": "tf", "read-only": true}"#),
        add(r#"{"driver": "raw", "node-name": "win", "file": "tf", "size": 512}"#),
        add(r#"{"driver": "qcow2", "node-name": "ro2", "file": "tf", "read-only": true}"#),
        add(r#"{"driver": "qcow2", "node-name": "x", "file": "tf"}"#),
        add(r#"{"driver": "raw", "node-name": "plain", "file": "tf"}"#),
    ]);
}

/// A mirror puts a `mirror_top` filter above its source and keeps an anonymous dirty bitmap
/// there while it runs, and holds its target (a second mirror to it is refused); a stream of
/// a node with nothing below ends within the command, having copied nothing.
#[test]
fn a_mirror_has_its_filter_bitmap_and_target_and_an_empty_stream_ends_at_once() {
    let nodes = b"{\"execute\": \"query-named-block-nodes\", \"arguments\": {\"flat\": true}}";
    both_masking_copies(vec![
        s(exec(
            "blockdev-add",
            r#"{"driver": "raw", "node-name": "src", "file": {"driver": "null-co", "size": 67108864}}"#,
        )),
        s_until(
            exec("blockdev-mirror", r#"{"job-id": "m0", "device": "src", "target": "tgt0", "sync": "full"}"#),
            "BLOCK_JOB_READY",
        ),
        s(nodes),
        s(exec("block-dirty-bitmap-add", r#"{"node": "src", "name": "b0"}"#)),
        s(nodes),
        s(exec("blockdev-mirror", r#"{"job-id": "m1", "device": "top0", "target": "tgt0", "sync": "full"}"#)),
        s(exec("block-dirty-bitmap-remove", r#"{"node": "src", "name": ""}"#)),
        s_until(exec("block-job-cancel", r#"{"device": "m0", "force": true}"#), "\"null\""),
        s(nodes),
        // Every event of a job with nothing to do comes before the reply (a plain step keeps
        // their order with the reply's).
        s(exec("block-stream", r#"{"job-id": "s0", "device": "src"}"#)),
        s(exec("block-stream", r#"{"job-id": "s1", "device": "src", "auto-dismiss": false}"#)),
        s(b"{\"execute\": \"query-jobs\"}"),
        s(exec("job-dismiss", r#"{"id": "s1"}"#)),
        s(nodes),
    ]);
}
