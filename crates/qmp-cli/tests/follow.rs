//! Following jobs and migrations to their end, against real peers: `qmp --follow COMMAND`,
//! `qmp job wait`, `qmp migration wait`, Ctrl-C, the progress bar on a terminal.
//!
//! Block jobs run on qemu-storage-daemon over a qcow2 chain (`base.qcow2`, its first 32 MiB
//! written, under `top.qcow2`, node `top0`), streams at 16 MiB/s (about 2 s) where progress
//! must be seen, slower only where the test must act during the job. Migration runs on
//! `qemu-system-x86_64 -machine pc -S` with 32 MiB of RAM, to `exec:cat > /dev/null`.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use qmp_testkit::Peer;
use serde_json::{json, Value};
use support::{qmp, Output};

const MIB: u64 = 1 << 20;

fn sock(peer: &Peer) -> String {
    peer.socket(0).to_str().unwrap().to_owned()
}

/// `qmp -s SOCK ARGS`.
fn run(peer: &Peer, args: &[&str]) -> Output {
    let sock = sock(peer);
    let mut all = vec!["-s", sock.as_str()];
    all.extend_from_slice(args);
    qmp(&all)
}

/// `qmp -s SOCK COMMAND ...` that must succeed, its result parsed.
fn ok(peer: &Peer, args: &[&str]) -> Value {
    let out = run(peer, args);
    out.assert_code(0);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// The JSON value of stdout (one value, the final state).
fn final_state(out: &Output) -> Value {
    serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {out:?}"))
}

/// The `{"progress": ...}` lines of stderr, parsed.
fn progress_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v.get("progress").cloned())
        .collect()
}

/// `qemu-img` or `qemu-io` with `args`, which must succeed.
fn tool(bin: &str, args: &[&str]) {
    let status = Command::new(bin).args(args).stdin(Stdio::null()).status().unwrap();
    assert!(status.success(), "{bin} {args:?}: {status}");
}

/// Whether node `top0` has no backing file left (a stream drops it once all is copied).
fn top_holds_the_data(peer: &Peer) -> bool {
    let nodes = ok(peer, &["query-named-block-nodes"]);
    let top = nodes.as_array().unwrap().iter().find(|n| n["node-name"] == "top0").expect("node top0");
    top["backing_file_depth"] == 0
}

/// Whether `top.qcow2` itself holds data in its first 32 MiB (read once the daemon is gone:
/// it caches the image's metadata).
fn top_file_holds_the_data(dir: &Path) -> bool {
    let top = dir.join("top.qcow2");
    let out = Command::new("qemu-img")
        .args(["map", "-U", "--output=json", top.to_str().unwrap()])
        .output()
        .unwrap();
    let map: Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &map[0];
    first["data"] == true && first["depth"] == 0 && first["length"].as_u64().unwrap() >= 32 * MIB
}

#[test]
fn follow_stream_prints_progress_lines_then_the_final_state() {
    let peer = Peer::storage_daemon(1);
    assert!(!top_holds_the_data(&peer));
    let started = Instant::now();
    let out = run(&peer, &["--follow", "block-stream", "job-id=j", "device=top0", "speed=16777216"]);
    out.assert_code(0);
    // A second at least: the job was followed, not just started.
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    let state = final_state(&out);
    assert_eq!(state["job"], "j");
    assert_eq!(state["type"], "stream");
    assert_eq!((state["status"].as_str(), state["result"].as_str()), (Some("concluded"), Some("completed")));
    assert_eq!(state["current"], state["total"]);
    assert_eq!(state["total"], 64 * MIB);
    let lines = progress_lines(&out.stderr);
    assert!(lines.len() >= 2, "one progress line a second expected: {:?}", out.stderr);
    let mut before = 0;
    for line in &lines {
        assert_eq!((line["job"].as_str(), line["type"].as_str()), (Some("j"), Some("stream")), "{line}");
        let current = line["current"].as_u64().unwrap();
        assert!(current >= before && current <= 64 * MIB, "{lines:?}");
        before = current;
    }
    assert!(lines.iter().any(|l| l["rate"].as_u64().is_some_and(|r| r > MIB)), "no rate: {lines:?}");
    // Auto-dismissed by QEMU; the data is in the top image now.
    assert_eq!(ok(&peer, &["query-jobs"]), json!([]));
    assert!(top_holds_the_data(&peer));
    let mut peer = peer;
    run(&peer, &["quit"]);
    peer.wait_exit(Duration::from_secs(10));
    assert!(top_file_holds_the_data(peer.dir()));
}

#[test]
fn job_wait_follows_a_stream_started_earlier() {
    let peer = Peer::storage_daemon(1);
    assert_eq!(ok(&peer, &["block-stream", "job-id=j", "device=top0", "speed=16777216"]), json!({}));
    let out = run(&peer, &["job", "wait", "j"]);
    out.assert_code(0);
    let state = final_state(&out);
    assert_eq!((state["job"].as_str(), state["result"].as_str()), (Some("j"), Some("completed")));
    assert!(top_holds_the_data(&peer));
    // No job left: nothing to wait for.
    let none = run(&peer, &["job", "wait"]);
    none.assert_code(1);
    assert!(none.stderr.contains("no job to wait for"), "{none:?}");
    let named = run(&peer, &["job", "wait", "nope"]);
    named.assert_code(1);
    assert!(named.stderr.contains("no job nope"), "{named:?}");
}

#[test]
fn verbose_shows_the_followers_requests_and_replies() {
    let peer = Peer::storage_daemon(1);
    let out = run(&peer, &["-v", "--follow", "block-stream", "job-id=v", "device=top0", "speed=33554432"]);
    out.assert_code(0);
    let shown: Vec<Value> = out.stderr.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let sent = |name: &str| shown.iter().any(|m| m["execute"] == name);
    assert!(sent("block-stream") && sent("query-jobs"), "{out:?}");
    assert!(shown.iter().any(|m| m["return"].is_array()), "a query-jobs reply: {out:?}");
    assert_eq!(final_state(&out)["result"], "completed");
}

#[test]
fn job_wait_without_an_id_takes_the_only_job() {
    let peer = Peer::storage_daemon(1);
    ok(&peer, &["block-stream", "job-id=only", "device=top0", "speed=33554432"]);
    let out = run(&peer, &["job", "wait"]);
    out.assert_code(0);
    assert_eq!(final_state(&out)["job"], "only");
}

/// Adds `b1` (qcow2 over a blkdebug node failing every data read with EIO) under `t1`.
fn add_failing_chain(peer: &Peer, name: &str) {
    let dir = peer.dir();
    let base = dir.join(format!("{name}-base.qcow2"));
    let top = dir.join(format!("{name}-top.qcow2"));
    let (base, top) = (base.to_str().unwrap(), top.to_str().unwrap());
    tool("qemu-img", &["create", "-q", "-f", "qcow2", base, "8M"]);
    tool("qemu-io", &["-c", "write -q 0 4M", base]);
    tool("qemu-img", &["create", "-q", "-f", "qcow2", "-b", base, "-F", "qcow2", top]);
    let failing = json!({
        "driver": "qcow2", "node-name": format!("{name}-b"),
        "file": {"driver": "blkdebug", "image": {"driver": "file", "filename": base},
                 "inject-error": [{"event": "read_aio", "errno": 5}]}
    });
    ok(peer, &["blockdev-add", "--args", &failing.to_string()]);
    let over = json!({
        "driver": "qcow2", "node-name": format!("{name}-t"),
        "file": {"driver": "file", "filename": top}, "backing": format!("{name}-b")
    });
    ok(peer, &["blockdev-add", "--args", &over.to_string()]);
}

#[test]
fn a_failing_job_exits_1_with_qemus_error() {
    let peer = Peer::storage_daemon(1);
    add_failing_chain(&peer, "x");
    let out = run(&peer, &["--follow", "block-stream", "job-id=bad", "device=x-t"]);
    out.assert_code(1);
    assert!(out.stderr.contains("job bad failed: Input/output error"), "{out:?}");
    let state = final_state(&out);
    assert_eq!(
        (state["result"].as_str(), state["error"].as_str()),
        (Some("failed"), Some("Input/output error"))
    );

    // With auto-dismiss=false QEMU keeps the concluded job: its error is read, then it is
    // dismissed, so nothing is left behind (and the node is free for the next job).
    add_failing_chain(&peer, "y");
    let out = run(&peer, &["--follow", "block-stream", "job-id=kept", "device=y-t", "auto-dismiss=false"]);
    out.assert_code(1);
    assert!(out.stderr.contains("job kept failed: Input/output error"), "{out:?}");
    assert_eq!(ok(&peer, &["query-jobs"]), json!([]));
}

/// A `qmp` run whose stderr is read line by line as it comes.
struct Running {
    child: std::process::Child,
    stderr: mpsc::Receiver<String>,
    stdout: std::thread::JoinHandle<String>,
}

fn start(peer: &Peer, args: &[&str]) -> Running {
    let sock = sock(peer);
    let mut all = vec!["-s", sock.as_str()];
    all.extend_from_slice(args);
    let mut child = support::command(&all).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (tx, stderr) = mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    Running { child, stderr, stdout }
}

impl Running {
    /// Waits (10 s at most) for a progress line showing the job running.
    fn wait_for_progress(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.stderr.recv_timeout(left).expect("no progress line within 10 s");
            if progress_lines(&line).iter().any(|p| p["status"] == "running") {
                return;
            }
        }
    }

    fn interrupt(&self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    }

    /// Waits (20 s at most) for the end: the exit code, stdout, the rest of stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("qmp did not exit within 20 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr: Vec<String> = self.stderr.try_iter().collect();
        (status.code(), self.stdout.join().unwrap(), stderr.join("\n"))
    }
}

#[test]
fn ctrl_c_with_cancel_on_interrupt_cancels_the_job() {
    let peer = Peer::storage_daemon(1);
    let run = start(
        &peer,
        &["--follow", "--cancel-on-interrupt", "block-stream", "job-id=j", "device=top0", "speed=1048576"],
    );
    run.wait_for_progress();
    run.interrupt();
    let (code, stdout, stderr) = run.finish();
    assert_eq!(code, Some(130), "stdout {stdout:?} stderr {stderr:?}");
    let state: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!((state["job"].as_str(), state["result"].as_str()), (Some("j"), Some("cancelled")), "{stderr}");
    assert!(state["current"].as_u64().unwrap() < 32 * MIB, "{state}");
    assert_eq!(ok(&peer, &["query-jobs"]), json!([]));
    assert!(!top_holds_the_data(&peer));
}

#[test]
fn ctrl_c_without_a_terminal_leaves_the_job_running() {
    let peer = Peer::storage_daemon(1);
    let run = start(&peer, &["--follow", "block-stream", "job-id=j", "device=top0", "speed=1048576"]);
    run.wait_for_progress();
    run.interrupt();
    let (code, stdout, stderr) = run.finish();
    assert_eq!(code, Some(130), "stdout {stdout:?} stderr {stderr:?}");
    assert!(stderr.contains("job j is still running") && stderr.contains("qmp job wait j"), "{stderr}");
    let jobs = ok(&peer, &["query-jobs"]);
    assert_eq!((jobs[0]["id"].as_str(), jobs[0]["status"].as_str()), (Some("j"), Some("running")), "{jobs}");
    ok(&peer, &["job-cancel", "id=j"]);
}

#[test]
fn a_mirror_stops_at_ready_unless_told_to_complete() {
    let peer = Peer::storage_daemon(1);
    let target = peer.dir().join("mirror.qcow2");
    tool("qemu-img", &["create", "-q", "-f", "qcow2", target.to_str().unwrap(), "64M"]);
    let file = format!("file.filename={}", target.display());
    ok(&peer, &["blockdev-add", "driver=qcow2", "node-name=tgt", "file.driver=file", &file]);
    let out =
        run(&peer, &["--follow", "blockdev-mirror", "job-id=m", "device=top0", "target=tgt", "sync=full"]);
    out.assert_code(0);
    assert!(out.stderr.contains("left running") && out.stderr.contains("qmp job-complete id=m"), "{out:?}");
    assert_eq!(final_state(&out)["status"], "ready");
    let jobs = ok(&peer, &["query-jobs"]);
    assert_eq!((jobs[0]["id"].as_str(), jobs[0]["status"].as_str()), (Some("m"), Some("ready")), "{jobs}");

    let out = run(&peer, &["job", "wait", "--complete", "m"]);
    out.assert_code(0);
    let state = final_state(&out);
    assert_eq!((state["status"].as_str(), state["result"].as_str()), (Some("concluded"), Some("completed")));
    assert_eq!(ok(&peer, &["query-jobs"]), json!([]));
}

#[test]
fn the_bar_is_drawn_on_a_terminal_and_cleared_at_the_end() {
    let peer = Peer::storage_daemon(1);
    let home = tempfile::tempdir().unwrap();
    let sock = sock(&peer);
    let args = ["-s", &sock, "--follow", "block-stream", "job-id=j", "device=top0", "speed=16777216"];
    let mut pty = support::pty::Pty::spawn(&args, home.path(), &[]);
    pty.expect("stream j");
    pty.expect("MiB/64.00 MiB");
    let status = pty.wait();
    assert_eq!(status.code(), Some(0), "{}", pty.text());
    let text = pty.text();
    let last_bar = text.rfind("MiB/64.00 MiB").unwrap();
    let result = text.rfind("\"result\"").unwrap_or_else(|| panic!("no final state: {text:?}"));
    assert!(last_bar < result, "{text:?}");
    // Between the bar's last drawing and the final state, its line is erased.
    assert!(text[last_bar..result].contains("\x1b[2K"), "the bar is not cleared: {text:?}");
    assert!(text[result..].contains("completed"), "{text:?}");
}

#[test]
fn ctrl_c_on_a_terminal_asks_whether_to_cancel() {
    let peer = Peer::storage_daemon(1);
    let home = tempfile::tempdir().unwrap();
    let sock = sock(&peer);
    let args = ["-s", &sock, "--follow", "block-stream", "job-id=j", "device=top0", "speed=1048576"];
    let mut pty = support::pty::Pty::spawn(&args, home.path(), &[]);
    pty.expect("stream j");
    let pid = nix::unistd::Pid::from_raw(pty.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
    pty.expect("cancel job j? [y/N] ");
    pty.send("y\r");
    let status = pty.wait();
    assert_eq!(status.code(), Some(130), "{}", pty.text());
    assert!(pty.text().contains("\"cancelled\""), "{}", pty.text());
    assert_eq!(ok(&peer, &["query-jobs"]), json!([]));
}

#[test]
fn follow_migrate_to_completion() {
    let peer = Peer::qemu_with(1, &["-machine", "pc", "-S", "-accel", "tcg", "-m", "32"]);
    let out = run(&peer, &["--follow", "migrate", "uri=exec:cat > /dev/null"]);
    out.assert_code(0);
    let state = final_state(&out);
    assert_eq!(state["status"], "completed", "{out:?}");
    assert!(state["ram"]["total"].as_u64().unwrap() >= 32 * MIB, "{state}");
    // The migration is over; `migration wait` reports how the last one ended.
    let again = run(&peer, &["migration", "wait"]);
    again.assert_code(0);
    assert_eq!(final_state(&again)["status"], "completed");
}

#[test]
fn migration_wait_without_a_migration_fails() {
    let peer = Peer::qemu(1);
    let out = run(&peer, &["migration", "wait"]);
    out.assert_code(1);
    assert!(out.stderr.contains("no migration is running"), "{out:?}");
}

#[test]
fn follow_needs_a_command_that_starts_something_and_goes_first() {
    let out = qmp(&["-s", "/nonexistent/qmp.sock", "--follow", "query-status"]);
    out.assert_code(2);
    assert!(out.stderr.contains("starts no job or migration"), "{out:?}");
    assert!(out.stderr.contains("block-stream") && out.stderr.contains("migrate"), "{out:?}");

    for option in ["--follow", "--complete", "--cancel-on-interrupt"] {
        let out = qmp(&["-s", "/nonexistent/qmp.sock", "block-stream", "job-id=j", "device=top0", option]);
        out.assert_code(2);
        assert!(out.stderr.contains("options go before COMMAND"), "{option}: {out:?}");
        assert!(out.stderr.contains(&format!("{option} block-stream job-id=j")), "{option}: {out:?}");
    }

    let out = qmp(&["-s", "/nonexistent/qmp.sock", "--cancel-on-interrupt", "query-status"]);
    out.assert_code(2);
    assert!(out.stderr.contains("go with --follow"), "{out:?}");
    let out = qmp(&["-s", "/nonexistent/qmp.sock", "--follow", "events"]);
    out.assert_code(2);
}
