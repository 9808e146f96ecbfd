//! Events from the command line, end to end against a real QEMU: `qmp events`, `qmp wait`,
//! `--then-wait`, and seeing the wire with `-v` and `RUST_LOG`.
//!
//! A watcher runs on one QMP monitor while the test acts on a second one (QEMU serves one
//! client per monitor). The watcher runs with `RUST_LOG=qmp::events=debug` so that the test
//! knows when it has subscribed (its "subscribed" log line) before causing any event.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};
use support::{qmp, qmp_env, Qemu};

/// A `qmp` run whose output is read as it comes.
struct Watcher {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
}

/// What a watcher printed, once it ended.
#[derive(Debug)]
struct Ended {
    code: Option<i32>,
    stdout: Vec<String>,
    /// Standard error without the log lines the watcher was started with.
    stderr: Vec<String>,
}

/// Starts `qmp ARGS` and returns once it has subscribed (10 s at most).
fn watch(args: &[&str]) -> Watcher {
    let mut child = support::command(args)
        .env("RUST_LOG", "qmp::events=debug")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let stderr = lines(child.stderr.take().unwrap());
    let watcher = Watcher { child, stdout, stderr };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match watcher.stderr.recv_timeout(left) {
            Ok(line) if line.contains("subscribed") => return watcher,
            Ok(_) => {}
            Err(e) => panic!("qmp {args:?} did not subscribe within 10 s: {e}"),
        }
    }
}

/// Each line of `pipe` as it comes.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Watcher {
    /// Waits (20 s at most) for the run to end.
    fn finish(mut self) -> Ended {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("qmp did not finish within 20 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        // The pipes close with the process; the readers then end their channels.
        let stdout = self.stdout.iter().collect();
        let stderr = self.stderr.iter().filter(|l| !l.contains("qmp::events")).collect();
        Ended { code: status.code(), stdout, stderr }
    }
}

/// `qmp -s SOCK ARGS` on the second monitor, which must succeed.
fn act(qemu: &Qemu, args: &[&str]) {
    let sock = qemu.sock2();
    let argv: Vec<&str> = ["-s", sock.as_str()].into_iter().chain(args.iter().copied()).collect();
    qmp(&argv).assert_code(0);
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

/// The event's time stamp, checked to be QEMU's: seconds since the epoch and microseconds.
fn timestamp(event: &Value) -> (u64, u64) {
    let ts = &event["timestamp"];
    let (s, us) = (ts["seconds"].as_u64().unwrap(), ts["microseconds"].as_u64().unwrap());
    assert!(s > 1_500_000_000 && us < 1_000_000, "{event}");
    (s, us)
}

// ---- qmp events ----

#[test]
fn events_prints_stop_then_resume_with_timestamps() {
    let qemu = Qemu::start_with_two_monitors();
    let watcher = watch(&["-s", qemu.sock(), "events", "--count", "2"]);
    act(&qemu, &["stop"]);
    act(&qemu, &["cont"]);
    let out = watcher.finish();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.len(), 2, "{out:?}");
    let (stop, resume) = (parse(&out.stdout[0]), parse(&out.stdout[1]));
    assert_eq!((&stop["event"], &resume["event"]), (&json!("STOP"), &json!("RESUME")));
    assert!(timestamp(&stop) <= timestamp(&resume));
    // The whole event: no data for these two, and the name first, as QEMU's own members.
    assert_eq!(stop.as_object().unwrap().len(), 2, "{stop}");
    assert!(out.stdout[0].starts_with(r#"{"event":"STOP","timestamp":"#), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[test]
fn filter_takes_one_name_and_ignores_the_others() {
    let qemu = Qemu::start_with_two_monitors();
    // Lower case is taken as QEMU's upper case.
    let watcher = watch(&["-s", qemu.sock(), "events", "--filter", "resume", "--count", "1"]);
    act(&qemu, &["stop"]);
    act(&qemu, &["cont"]);
    let out = watcher.finish();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.len(), 1, "{out:?}");
    assert_eq!(parse(&out.stdout[0])["event"], "RESUME");
}

#[test]
fn data_filter_matches_a_member_of_the_data() {
    let mut qemu = Qemu::start_with_two_monitors();
    let watcher = watch(&[
        "-s",
        qemu.sock(),
        "events",
        "--filter",
        "SHUTDOWN",
        "--data",
        "reason=host-qmp-quit",
        "--data",
        "guest=false",
        "--count",
        "1",
    ]);
    act(&qemu, &["quit"]);
    let out = watcher.finish();
    // The count was reached before QEMU went away: success.
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.len(), 1, "{out:?}");
    let event = parse(&out.stdout[0]);
    assert_eq!(event["event"], "SHUTDOWN");
    assert_eq!(event["data"], json!({"guest": false, "reason": "host-qmp-quit"}));
    timestamp(&event);
    qemu.wait_exit(Duration::from_secs(10));
}

#[test]
fn data_filter_that_does_not_match_prints_nothing_until_qemu_goes_away() {
    let mut qemu = Qemu::start_with_two_monitors();
    let watcher = watch(&["-s", qemu.sock(), "events", "--data", "reason=guest-shutdown"]);
    act(&qemu, &["stop"]);
    act(&qemu, &["quit"]);
    let out = watcher.finish();
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.is_empty(), "STOP has no reason, SHUTDOWN another one: {out:?}");
    assert_eq!(out.stderr.len(), 1, "{out:?}");
    assert!(out.stderr[0].starts_with("qmp: connection closed"), "{out:?}");
    qemu.wait_exit(Duration::from_secs(10));
}

#[test]
fn events_timeout_without_events_is_exit_code_4() {
    let qemu = Qemu::start();
    let started = Instant::now();
    let out = qmp(&["-s", qemu.sock(), "events", "--timeout", "0.5"]);
    let took = started.elapsed();
    out.assert_code(4);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "qmp: timed out after 500ms\n");
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn events_timeout_comes_after_the_events_that_came() {
    let qemu = Qemu::start_with_two_monitors();
    let watcher = watch(&["-s", qemu.sock(), "events", "--timeout", "1.5"]);
    act(&qemu, &["stop"]);
    let out = watcher.finish();
    assert_eq!(out.code, Some(4), "{out:?}");
    assert_eq!(out.stdout.len(), 1, "{out:?}");
    assert_eq!(parse(&out.stdout[0])["event"], "STOP");
    assert_eq!(out.stderr, ["qmp: timed out after 1.5s"], "{out:?}");
}

#[test]
fn qemu_killed_while_watching_is_exit_code_3() {
    let mut qemu = Qemu::start();
    let watcher = watch(&["-s", qemu.sock(), "events"]);
    let killed = Instant::now();
    qemu.signal(Signal::SIGKILL);
    let out = watcher.finish();
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(out.stderr.len(), 1, "one line: {out:?}");
    assert!(out.stderr[0].starts_with("qmp: connection closed"), "{out:?}");
    assert!(killed.elapsed() < Duration::from_secs(3), "noticed within {:?}", killed.elapsed());
    qemu.reap();
}

#[test]
fn bad_events_options_are_usage_errors() {
    for argv in [
        &["-s", "/nonexistent", "events", "--count", "0"][..],
        &["-s", "/nonexistent", "events", "--data", "reason"],
        &["-s", "/nonexistent", "events", "--filter", "A=B"],
        &["-s", "/nonexistent", "events", "--timeout", "soon"],
        &["-s", "/nonexistent", "wait"],
        &["-s", "/nonexistent", "--then-wait", "STOP", "events"],
        &["-s", "/nonexistent", "--then-wait", "reason=x", "stop"],
    ] {
        let out = qmp(argv);
        out.assert_code(2);
        assert_eq!(out.stdout, "", "{argv:?}");
    }
}

#[test]
fn events_on_a_terminal_are_pretty_with_the_name_in_colour() {
    let qemu = Qemu::start();
    // --then-wait prints the event as `qmp events` does; NO_COLOR empty counts as unset.
    let args = ["-s", qemu.sock(), "--then-wait", "STOP", "stop"];
    let text = support::run_on_pty_env(&args, &[("NO_COLOR", "")]);
    assert!(text.contains("\"event\": \x1b[1;36m\"STOP\"\x1b[0m,\n"), "{text:?}");
    assert!(text.contains("\n  \"timestamp\": {\n"), "pretty: {text:?}");
    let plain =
        support::run_on_pty_env(&["-s", qemu.sock(), "--then-wait", "RESUME", "cont"], &[("NO_COLOR", "1")]);
    assert!(!plain.contains('\x1b'), "{plain:?}");
    assert!(plain.contains("\"event\": \"RESUME\""), "{plain:?}");
}

// ---- qmp wait ----

#[test]
fn wait_prints_the_event_when_it_comes() {
    let qemu = Qemu::start_with_two_monitors();
    let watcher = watch(&["-s", qemu.sock(), "wait", "STOP"]);
    act(&qemu, &["stop"]);
    let out = watcher.finish();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.len(), 1, "{out:?}");
    let event = parse(&out.stdout[0]);
    assert_eq!(event["event"], "STOP");
    timestamp(&event);
}

#[test]
fn wait_with_a_data_condition() {
    let mut qemu = Qemu::start_with_two_monitors();
    let watcher = watch(&["-s", qemu.sock(), "wait", "shutdown", "reason=host-qmp-quit"]);
    act(&qemu, &["quit"]);
    let out = watcher.finish();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(parse(&out.stdout[0])["data"]["reason"], "host-qmp-quit");
    qemu.wait_exit(Duration::from_secs(10));
}

#[test]
fn wait_timeout_is_exit_code_4() {
    let qemu = Qemu::start();
    let started = Instant::now();
    let out = qmp(&["-s", qemu.sock(), "wait", "RESUME", "--timeout", "0.3"]);
    out.assert_code(4);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "qmp: timed out after 300ms\n");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Without its own --timeout, wait takes the command's limit.
    let out = qmp_env(&["-s", qemu.sock(), "wait", "RESUME"], &[("QMP_TIMEOUT", "0.3")]);
    out.assert_code(4);
    assert!(out.stderr.contains("QMP_TIMEOUT"), "{out:?}");
}

#[test]
fn wait_when_qemu_goes_away_is_exit_code_3() {
    let mut qemu = Qemu::start_with_two_monitors();
    let watcher = watch(&["-s", qemu.sock(), "wait", "RESUME"]);
    act(&qemu, &["quit"]);
    let out = watcher.finish();
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert!(out.stderr[0].starts_with("qmp: connection closed"), "{out:?}");
    qemu.wait_exit(Duration::from_secs(10));
}

// ---- --then-wait ----

#[test]
fn then_wait_prints_the_reply_then_the_event() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "--then-wait", "STOP", "stop"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(parse(lines[0]), json!({}));
    assert_eq!(parse(lines[1])["event"], "STOP");
    assert_eq!(out.stderr, "");
    // With a data condition, after hmp.
    let out = qmp(&["-s", qemu.sock(), "--then-wait", "RESUME", "hmp", "cont"]);
    out.assert_code(0);
    assert_eq!(parse(out.stdout.lines().last().unwrap())["event"], "RESUME");
}

#[test]
fn then_wait_sees_a_hot_unplugged_device_go() {
    // A USB device leaves without the guest's help, so a stopped machine (-S) will do.
    let extra = ["-machine", "pc", "-S", "-accel", "tcg", "-m", "64", "-device", "qemu-xhci,id=usb"];
    let qemu = qmp_testkit::Peer::qemu_with(1, &extra);
    let sock = qemu.socket(0).to_str().unwrap();
    qmp(&["-s", sock, "device_add", "driver=usb-mouse", "id=m0"]).assert_code(0);
    let out = qmp(&[
        "-s",
        sock,
        "--timeout",
        "20",
        "--then-wait",
        "DEVICE_DELETED,device=m0",
        "device_del",
        "id=m0",
    ]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(parse(lines[0]), json!({}));
    let event = parse(lines[1]);
    assert_eq!(event["event"], "DEVICE_DELETED", "{out:?}");
    assert_eq!(event["data"]["device"], "m0", "{out:?}");
    timestamp(&event);
    // It is gone: a second unplug is QEMU's error.
    let again = qmp(&["-s", sock, "device_del", "id=m0"]);
    again.assert_code(1);
    assert!(again.stderr.contains("m0"), "{again:?}");
}

#[test]
fn then_wait_with_a_failing_command_does_not_wait() {
    let qemu = Qemu::start();
    let started = Instant::now();
    let out = qmp(&["-s", qemu.sock(), "--timeout", "20", "--then-wait", "STOP", "no-such-command"]);
    out.assert_code(1);
    assert_eq!(out.stdout, "");
    assert!(out.stderr.starts_with("CommandNotFound: "), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[test]
fn then_wait_for_an_event_that_does_not_come_is_exit_code_4() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "--timeout", "0.5", "--then-wait", "STOP", "query-status"]);
    out.assert_code(4);
    assert_eq!(parse(out.stdout.trim_end())["status"], "running", "the reply came first: {out:?}");
    assert_eq!(out.stderr, "qmp: timed out after 500ms\n");
}

#[test]
fn then_wait_quit_sees_shutdown_before_qemu_goes() {
    let mut qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "--then-wait", "SHUTDOWN,guest=false", "quit"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(parse(lines[1])["data"]["reason"], "host-qmp-quit", "{out:?}");
    qemu.wait_exit(Duration::from_secs(10));
}

// ---- -v and RUST_LOG ----

#[test]
fn verbose_shows_the_request_and_the_reply_on_stderr() {
    let qemu = Qemu::start();
    let out = qmp(&["-v", "-s", qemu.sock(), "query-status"]);
    out.assert_code(0);
    assert_eq!(parse(out.stdout.trim_end())["status"], "running");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert_eq!(parse(lines[0]), json!({"execute": "query-status"}));
    assert_eq!(parse(lines[1])["return"], parse(out.stdout.trim_end()));
    // Arguments, and a QMP error as the server sent it, before the usual CLASS: desc line.
    let out = qmp(&["--verbose", "-s", qemu.sock(), "device_del", "id=nope"]);
    out.assert_code(1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{out:?}");
    assert_eq!(parse(lines[0]), json!({"execute": "device_del", "arguments": {"id": "nope"}}));
    assert_eq!(parse(lines[1])["error"]["class"], "DeviceNotFound");
    assert!(lines[2].starts_with("DeviceNotFound: "), "{out:?}");
}

#[test]
fn rust_log_prints_logs_on_stderr_and_changes_nothing_else() {
    let qemu = Qemu::start();
    let out = qmp_env(&["-s", qemu.sock(), "query-status"], &[("RUST_LOG", "debug")]);
    out.assert_code(0);
    assert!(!out.stderr.is_empty(), "{out:?}");
    assert_eq!(parse(out.stdout.trim_end())["status"], "running");
    let quiet = qmp_env(&["-s", qemu.sock(), "query-status"], &[("RUST_LOG", "")]);
    quiet.assert_code(0);
    assert_eq!(quiet.stdout, out.stdout);
}
