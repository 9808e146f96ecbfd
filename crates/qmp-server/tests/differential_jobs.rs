//! The job verbs, `block-job-*` and `job-*`, and `auto-finalize: false`: the same transcripts
//! sent to a real `qemu-storage-daemon` and to the simulator. Plain steps keep the order of
//! events and reply (what QEMU does within the command and what after it); `s_until` steps
//! wait for what comes later. Job progress counters are masked.

mod common;

use common::{s, s_until, Step};
use serde_json::{json, Value};

fn exec(cmd: &str, args: Value) -> Vec<u8> {
    json!({"execute": cmd, "arguments": args}).to_string().into_bytes()
}

fn both(steps: Vec<Step>) {
    let mut all = vec![s(b"{\"execute\": \"qmp_capabilities\"}")];
    for node in ["src", "t1", "t2"] {
        all.push(s(exec("blockdev-add", json!({"driver": "null-co", "node-name": node, "size": 64 << 20}))));
    }
    all.extend(steps);
    let (sim, got) = common::compare_with_storage_daemon(&all);
    // Every event the simulator sent is one its schema declares.
    let schema = common::query(&sim, "query-qmp-schema");
    let declared: Vec<&str> = schema
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["meta-type"] == "event")
        .filter_map(|e| e["name"].as_str())
        .collect();
    for line in &got {
        if let Some(name) = line.split("\"event\": \"").nth(1).and_then(|rest| rest.split('"').next()) {
            assert!(declared.contains(&name), "{name} is sent but not declared");
        }
    }
}

fn mirror(id: &str, target: &str, more: Value) -> Vec<u8> {
    let mut args = json!({"job-id": id, "device": "src", "target": target, "sync": "full"});
    args.as_object_mut().unwrap().extend(more.as_object().unwrap().clone());
    exec("blockdev-mirror", args)
}

/// Each verb of each family on a job that does not exist, and in a state that refuses it.
#[test]
fn unknown_jobs_and_refused_verbs() {
    let mut steps = Vec::new();
    for verb in ["cancel", "pause", "resume", "complete", "finalize", "dismiss"] {
        steps.push(s(exec(&format!("job-{verb}"), json!({"id": "nope"}))));
    }
    steps.push(s(exec("block-job-dismiss", json!({"id": "nope"}))));
    steps.push(s(exec("block-job-finalize", json!({"id": "nope"}))));
    steps.push(s(exec("block-job-pause", json!({"device": "nope"}))));
    // A mirror held back to one byte a second keeps running.
    steps.push(s(mirror("m0", "t1", json!({"speed": 1}))));
    for verb in ["complete", "finalize", "dismiss"] {
        steps.push(s(exec(&format!("job-{verb}"), json!({"id": "m0"}))));
    }
    steps.push(s(exec("block-job-finalize", json!({"id": "m0"}))));
    steps.push(s(exec("block-job-dismiss", json!({"id": "m0"}))));
    steps.push(s(exec("job-pause", json!({"id": "m0"}))));
    steps.push(s(exec("job-pause", json!({"id": "m0"}))));
    steps.push(s(b"{\"execute\": \"query-jobs\"}"));
    steps.push(s(exec("job-resume", json!({"id": "m0"}))));
    steps.push(s(exec("job-resume", json!({"id": "m0"}))));
    // Cancelled while paused: resumed within the command, aborted after it.
    steps.push(s(exec("block-job-pause", json!({"device": "m0"}))));
    steps.push(s_until(exec("job-cancel", json!({"id": "m0"})), "\"null\""));
    steps.push(s(b"{\"execute\": \"query-jobs\"}"));
    both(steps);
}

/// `auto-finalize: false` holds a finished job at `pending` (BLOCK_JOB_PENDING) until
/// job-finalize or block-job-finalize completes it within the command; a cancel there aborts
/// within the command too; a job that is not dismissed stays `concluded` with its error,
/// having let go of its nodes.
#[test]
fn pending_jobs_wait_for_finalize_or_cancel() {
    let held = json!({"auto-finalize": false, "auto-dismiss": false});
    both(vec![
        s_until(mirror("m1", "t1", held), "BLOCK_JOB_READY"),
        s_until(exec("job-complete", json!({"id": "m1"})), "BLOCK_JOB_PENDING"),
        s(b"{\"execute\": \"query-jobs\"}"),
        s(b"{\"execute\": \"query-block-jobs\"}"),
        s(exec("job-pause", json!({"id": "m1"}))),
        s(exec("job-complete", json!({"id": "m1"}))),
        s(exec("job-dismiss", json!({"id": "m1"}))),
        s(exec("job-cancel", json!({"id": "m1"}))),
        s(b"{\"execute\": \"query-jobs\"}"),
        // Concluded, the mirror m1 has let go of its nodes (a stream would hold them). A job with nothing to do reaches pending
        // within its command; the jobs are listed newest first.
        s(exec("block-stream", json!({"job-id": "s0", "device": "src", "auto-finalize": false}))),
        s(b"{\"execute\": \"query-jobs\"}"),
        s(b"{\"execute\": \"query-block-jobs\"}"),
        s(exec("job-finalize", json!({"id": "s0"}))),
        s(exec("job-finalize", json!({"id": "m1"}))),
        s(exec("block-job-dismiss", json!({"id": "m1"}))),
        // A ready mirror cancelled without force completes, and so waits at pending too.
        s_until(mirror("m2", "t2", json!({"auto-finalize": false})), "BLOCK_JOB_READY"),
        s_until(exec("block-job-cancel", json!({"device": "m2"})), "BLOCK_JOB_PENDING"),
        s(exec("block-job-finalize", json!({"id": "m2"}))),
        s(b"{\"execute\": \"query-jobs\"}"),
        // Forced, a running job aborts after the reply, finalize or not.
        s(mirror("m3", "t1", json!({"auto-finalize": false, "speed": 1}))),
        s_until(exec("block-job-cancel", json!({"device": "m3", "force": true})), "\"null\""),
        s(b"{\"execute\": \"query-named-block-nodes\", \"arguments\": {\"flat\": true}}"),
    ]);
}
