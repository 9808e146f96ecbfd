//! The `qmp` one-shot command end to end: the real binary against a real QEMU that each test
//! starts (`qemu-system-x86_64 -machine none`), one test per success and error path.
//!
//! QEMU is required: a missing `qemu-system-x86_64` fails these tests (scripts/install-deps.sh
//! installs it).

mod support;

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{json, Value};
use support as common;
use support::{qmp, qmp_env, Qemu};

/// Parses stdout as one JSON value.
fn json_out(out: &common::Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out:?}"))
}

// ---- success ----

#[test]
fn query_status_prints_compact_json_when_piped() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "query-status"]);
    out.assert_code(0);
    assert_eq!(out.stderr, "");
    assert_eq!(out.stdout.lines().count(), 1, "one compact line: {:?}", out.stdout);
    assert!(out.stdout.ends_with('\n'));
    assert_eq!(json_out(&out)["status"], "running");
}

#[test]
fn pretty_and_compact_force_the_layout() {
    let qemu = Qemu::start();
    let pretty = qmp(&["-s", qemu.sock(), "--pretty", "query-version"]);
    pretty.assert_code(0);
    assert!(pretty.stdout.lines().count() > 3, "pretty output spans lines: {:?}", pretty.stdout);
    assert!(pretty.stdout.contains("\n  \"package\""), "{:?}", pretty.stdout);
    let compact = qmp(&["-s", qemu.sock(), "--compact", "query-version"]);
    compact.assert_code(0);
    assert_eq!(compact.stdout.lines().count(), 1);
    assert_eq!(json_out(&pretty), json_out(&compact));
    assert_eq!(json_out(&compact)["qemu"]["major"], 7);
}

#[test]
fn pretty_on_a_terminal_compact_otherwise() {
    let qemu = Qemu::start();
    let on_tty = common::run_on_pty(&["-s", qemu.sock(), "query-status"]);
    assert!(on_tty.lines().count() > 1, "pretty on a terminal: {on_tty:?}");
    let forced = common::run_on_pty(&["-s", qemu.sock(), "--compact", "query-status"]);
    assert_eq!(forced.trim_end().lines().count(), 1, "--compact on a terminal: {forced:?}");
}

#[test]
fn key_value_arguments_reach_qemu() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "qom-get", "path=/machine", "property=type"]);
    out.assert_code(0);
    assert_eq!(json_out(&out), json!("none-machine"));
}

#[test]
fn dotted_keys_and_numbers_build_nested_arguments() {
    let qemu = Qemu::start();
    let add = qmp(&[
        "-s",
        qemu.sock(),
        "blockdev-add",
        "driver=raw",
        "node-name=r0",
        "file.driver=null-co",
        "file.size=4096",
    ]);
    add.assert_code(0);
    assert_eq!(json_out(&add), json!({}));
    let nodes = json_out(&qmp(&["-s", qemu.sock(), "query-named-block-nodes"]));
    let r0 = nodes.as_array().unwrap().iter().find(|n| n["node-name"] == "r0").expect("node r0 exists");
    assert_eq!(r0["drv"], "raw");
    assert_eq!(r0["image"]["virtual-size"], 4096, "file.size=4096 went as a number");
}

#[test]
fn seed_spellings_path_and_dash_dash_key() {
    let qemu = Qemu::start();
    // --path= before the command is the address; after it, an argument named "path".
    let out = qmp(&[&format!("--path={}", qemu.sock()), "qom-get", "--path=/machine", "--property=type"]);
    out.assert_code(0);
    assert_eq!(json_out(&out), json!("none-machine"));
}

#[test]
fn whole_arguments_object_with_args() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "qom-get", "--args", r#"{"path": "/machine", "property": "type"}"#]);
    out.assert_code(0);
    assert_eq!(json_out(&out), json!("none-machine"));
    let mixed = qmp(&["-s", qemu.sock(), "qom-get", r#"--args={"path": "/machine"}"#, "property=type"]);
    mixed.assert_code(0);
    assert_eq!(json_out(&mixed), json!("none-machine"));
}

#[test]
fn hmp_prints_the_text_with_unix_line_ends() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "hmp", "info status"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "VM status: running\n");
    let words = qmp(&["-s", qemu.sock(), "hmp", "info", "status"]);
    words.assert_code(0);
    assert_eq!(words.stdout, "VM status: running\n", "words are joined with spaces");
    let stop = qmp(&["-s", qemu.sock(), "hmp", "stop"]);
    stop.assert_code(0);
    assert_eq!(stop.stdout, "", "an empty answer prints nothing");
    assert_eq!(qmp(&["-s", qemu.sock(), "hmp", "info status"]).stdout, "VM status: paused\n");
}

#[test]
fn hmp_cpu_index_is_passed() {
    let qemu = Qemu::start();
    // -machine none has no CPU: QEMU refuses the index, which proves it was sent.
    let out = qmp(&["-s", qemu.sock(), "hmp", "--cpu-index", "3", "info status"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "GenericError: Parameter 'cpu-index' expects a CPU number\n");
}

#[test]
fn address_from_environment_qmp_socket_then_qmp_path() {
    let qemu = Qemu::start();
    let missing = qemu.dir().join("missing.sock");
    let missing = missing.to_str().unwrap();
    let by_socket = qmp_env(&["query-status"], &[("QMP_SOCKET", qemu.sock()), ("QMP_PATH", missing)]);
    by_socket.assert_code(0);
    let by_path = qmp_env(&["query-status"], &[("QMP_PATH", qemu.sock())]);
    by_path.assert_code(0);
    let unix_prefix = qmp_env(&["query-status"], &[("QMP_SOCKET", &format!("unix:{}", qemu.sock()))]);
    unix_prefix.assert_code(0);
    let flag_wins = qmp_env(&["-s", qemu.sock(), "query-status"], &[("QMP_SOCKET", missing)]);
    flag_wins.assert_code(0);
    let empty_is_unset = qmp_env(&["query-status"], &[("QMP_SOCKET", ""), ("QMP_PATH", qemu.sock())]);
    empty_is_unset.assert_code(0);
}

#[test]
fn tcp_addresses() {
    let port = common::free_tcp_port();
    let _qemu = Qemu::start_on_tcp(port);
    for addr in [format!("127.0.0.1:{port}"), format!("tcp:127.0.0.1:{port}"), format!("localhost:{port}")] {
        let out = qmp(&["-s", &addr, "query-status"]);
        out.assert_code(0);
        assert_eq!(json_out(&out)["status"], "running", "{addr}");
    }
}

#[test]
fn broken_pipe_is_success() {
    let qemu = Qemu::start();
    // ~207 KB of schema into a pipe whose reader is already gone.
    let mut child = common::command(&["-s", qemu.sock(), "query-qmp-schema"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = common::finish(child, Duration::from_secs(20));
    out.assert_code(0);
    assert_eq!(out.stderr, "");
}

#[test]
fn help_documents_exit_codes() {
    for argv in [&["--help"][..], &["help"], &["-h"]] {
        let out = qmp(argv);
        out.assert_code(0);
        for needle in [
            "Exit codes",
            "0  success",
            "1  the server answered",
            "2  usage error",
            "3  connection error",
            "4  --timeout",
            "QMP_SOCKET",
            "QMP_PATH",
            "hmp",
        ] {
            assert!(out.stdout.contains(needle), "{argv:?}: {needle:?} missing from\n{}", out.stdout);
        }
    }
    let version = qmp(&["--version"]);
    version.assert_code(0);
    assert!(version.stdout.starts_with("qmp "));
}

// ---- exit code 1: the server answered an error ----

#[test]
fn unknown_command_is_a_qmp_error() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "no-such-command"]);
    out.assert_code(1);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "CommandNotFound: The command no-such-command has not been found\n");
}

#[test]
fn unexpected_argument_is_a_qmp_error() {
    let qemu = Qemu::start();
    // --no-check: checked, this is a usage error before sending (tests/schema_checks.rs).
    let out = qmp(&["-s", qemu.sock(), "--no-check", "query-status", "x=1"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "GenericError: Parameter 'x' is unexpected\n");
}

#[test]
fn wrong_argument_type_is_a_qmp_error() {
    let qemu = Qemu::start();
    // `true` is read as a boolean, so QEMU sees the wrong type.
    let out = qmp(&["-s", qemu.sock(), "--no-check", "qom-get", "path=true", "property=type"]);
    out.assert_code(1);
    assert_eq!(out.stderr, "GenericError: Invalid parameter type for 'path', expected: string\n");
}

#[test]
fn device_not_found_keeps_its_class() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "block-job-cancel", "device=job0"]);
    out.assert_code(1);
    assert!(
        out.stderr.starts_with("DeviceNotActive: ") || out.stderr.starts_with("GenericError: "),
        "{out:?}"
    );
    assert!(out.stderr.contains("job0"), "{out:?}");
}

#[test]
fn output_that_cannot_be_written_fails() {
    let qemu = Qemu::start();
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let child = common::command(&["-s", qemu.sock(), "query-qmp-schema"])
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = common::finish(child, Duration::from_secs(20));
    out.assert_code(1);
    assert!(out.stderr.starts_with("qmp: cannot write the result: "), "{out:?}");
}

// ---- exit code 2: usage errors (nothing is sent) ----

#[test]
fn no_address_is_a_usage_error() {
    let out = qmp(&["query-status"]);
    out.assert_code(2);
    assert_eq!(
        out.stderr,
        "qmp: no QMP server address: use -s ADDR, set QMP_SOCKET or QMP_PATH, or try --sim\n"
    );
}

#[test]
fn no_command_is_a_usage_error() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock()]);
    out.assert_code(2);
    assert!(out.stderr.contains("no command given"), "{out:?}");
}

#[test]
fn bad_arguments_are_usage_errors_before_connecting() {
    let qemu = Qemu::start();
    let cases: &[(&[&str], &str)] = &[
        (&["query-status", "novalue"], "qmp: expected a key=value pair, got 'novalue'\n"),
        (&["query-status", "a=1", "a=2"], "qmp: cannot set \"a\" multiple times\n"),
        (&["query-status", "a=1", "a.b=2"], "qmp: cannot use \"a\" as both leaf and non-leaf key\n"),
        (&["query-status", "a.b=1", "a=2"], "qmp: cannot use \"a\" as both leaf and non-leaf key\n"),
        (
            &["query-status", "n=99999999999999999999"],
            "qmp: the value of \"n\" cannot be sent as JSON: an integer beyond 64 bits\n",
        ),
        (
            &["query-status", "s={1, 2}"],
            "qmp: the value of \"s\" cannot be sent as JSON: a set (use [...] for a list)\n",
        ),
        (&["query-status", "--args"], "qmp: --args needs a JSON object: nothing follows it\n"),
        (&["query-status", "--args", "[1]"], "qmp: --args needs a JSON object: got an array\n"),
        (
            &["query-status", "--args", "{oops"],
            "qmp: --args needs a JSON object: got a string (not valid JSON or Python)\n",
        ),
        (&["query-status", "--args", r#"{"a": 1}"#, "a=2"], "qmp: cannot set \"a\" multiple times\n"),
    ];
    for (argv, want) in cases {
        let mut full = vec!["-s", qemu.sock()];
        full.extend_from_slice(argv);
        let out = qmp(&full);
        out.assert_code(2);
        assert_eq!(&out.stderr, want, "{argv:?}");
        assert_eq!(out.stdout, "");
    }
    // Nothing reached QEMU: its monitor is free and still running.
    assert_eq!(json_out(&qmp(&["-s", qemu.sock(), "query-status"]))["status"], "running");
}

#[test]
fn bad_options_are_usage_errors() {
    for (argv, needle) in [
        (&["--timeout", "-1", "query-status"][..], "must be a number of seconds, 0 or more"),
        (&["--timeout", "soon", "query-status"], "not a number of seconds"),
        (&["--pretty", "--compact", "query-status"], "cannot be used with"),
        (&["--no-such-flag", "query-status"], "unexpected argument"),
        (&["-s"], "a value is required"),
        (&["hmp"], "required"),
        (&["-s", "/x", "--sim", "query-status"], "cannot be used with"),
    ] {
        let out = qmp(argv);
        out.assert_code(2);
        assert!(out.stderr.contains(needle), "{argv:?}: {needle:?} not in {:?}", out.stderr);
        assert_eq!(out.stdout, "");
    }
}

#[test]
fn bad_address_is_a_usage_error() {
    for addr in ["tcp:nohost", "tcp::4444", "unix:", ""] {
        let out = qmp(&["-s", addr, "query-status"]);
        out.assert_code(2);
        assert!(out.stderr.starts_with("qmp: invalid QMP address"), "{addr:?}: {out:?}");
    }
}

#[test]
fn non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let qemu = Qemu::start();
    let bad = std::ffi::OsStr::from_bytes(b"x=\xff");
    let child = common::command(&["-s", qemu.sock(), "query-status"])
        .arg(bad)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = common::finish(child, Duration::from_secs(20));
    out.assert_code(2);
    assert!(out.stderr.contains("UTF-8"), "{out:?}");
}

// ---- exit code 3: connection errors ----

#[test]
fn missing_socket_is_a_connection_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.sock");
    let out = qmp(&["-s", path.to_str().unwrap(), "query-status"]);
    out.assert_code(3);
    assert!(out.stderr.contains("absent.sock does not exist"), "{out:?}");
    assert!(out.stderr.contains("-qmp unix:"), "{out:?}");
}

#[test]
fn refused_tcp_port_is_a_connection_error() {
    let port = common::free_tcp_port();
    let out = qmp(&["-s", &format!("127.0.0.1:{port}"), "query-status"]);
    out.assert_code(3);
    assert!(out.stderr.contains("Connection refused"), "{out:?}");
}

#[test]
fn human_monitor_socket_is_not_qmp() {
    // A real QEMU, but its socket speaks HMP text: no greeting, a protocol error.
    let qemu = Qemu::start_with_monitor_option("-monitor");
    let out = qmp(&["-s", qemu.sock(), "--timeout", "10", "query-status"]);
    out.assert_code(3);
    assert!(out.stderr.starts_with("qmp: "), "{out:?}");
    assert_eq!(out.stdout, "");
}

#[test]
fn qemu_killed_while_we_wait_is_a_connection_error() {
    let mut qemu = Qemu::start();
    // Stopped, QEMU cannot greet; the kernel still accepts our connection. Then it dies.
    // (The client's own tests kill QEMU with a command in flight.)
    qemu.signal(Signal::SIGSTOP);
    let child = common::command(&["-s", qemu.sock(), "query-status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let killed = Instant::now();
    qemu.signal(Signal::SIGKILL);
    let out = common::finish(child, Duration::from_secs(20));
    out.assert_code(3);
    assert!(out.stderr.starts_with("qmp: connection closed"), "{out:?}");
    assert!(killed.elapsed() < Duration::from_secs(2), "noticed within {:?}", killed.elapsed());
    qemu.reap();
}

#[test]
fn quit_then_the_socket_is_gone() {
    let mut qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "quit"]);
    out.assert_code(0);
    assert_eq!(json_out(&out), json!({}));
    qemu.wait_exit(Duration::from_secs(10));
    let after = qmp(&["-s", qemu.sock(), "query-status"]);
    after.assert_code(3);
}

#[test]
fn peer_that_hangs_up_at_once_is_a_connection_error() {
    // Not QEMU: a socket that accepts and closes, as a crashing server would.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hangup.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let _ =
            s.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, ");
    });
    let out = qmp(&["-s", path.to_str().unwrap(), "query-status"]);
    server.join().unwrap();
    out.assert_code(3);
    assert!(out.stderr.starts_with("qmp: connection closed"), "{out:?}");
}

#[test]
fn refused_negotiation_is_a_connection_error() {
    // Not QEMU: a peer that greets, then refuses qmp_capabilities.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("refuse.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n").unwrap();
        let mut buf = [0u8; 256];
        let n = std::io::Read::read(&mut s, &mut buf).unwrap();
        let request: Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(request["execute"], "qmp_capabilities");
        let reply = json!({"error": {"class": "GenericError", "desc": "not today"}, "id": request["id"]});
        s.write_all(format!("{reply}\r\n").as_bytes()).unwrap();
        let _ = std::io::Read::read(&mut s, &mut buf);
    });
    let out = qmp(&["-s", path.to_str().unwrap(), "query-status"]);
    server.join().unwrap();
    out.assert_code(3);
    assert_eq!(out.stderr, "qmp: negotiation failed: GenericError: not today\n");
}

// ---- exit code 4: timeout ----

#[test]
fn timeout_when_qemu_does_not_answer() {
    let mut qemu = Qemu::start();
    qemu.signal(Signal::SIGSTOP);
    let started = Instant::now();
    let out = qmp(&["-s", qemu.sock(), "--timeout", "0.3", "query-status"]);
    let took = started.elapsed();
    out.assert_code(4);
    assert_eq!(out.stderr, "qmp: timed out after 300ms\n");
    assert!(took >= Duration::from_millis(300) && took < Duration::from_secs(3), "took {took:?}");
    qemu.signal(Signal::SIGCONT);
}

#[test]
fn timeout_while_another_client_holds_the_monitor() {
    let qemu = Qemu::start();
    // QEMU serves one client per monitor: a second one waits, here past its timeout.
    let holder = std::os::unix::net::UnixStream::connect(qemu.sock()).unwrap();
    let mut greeting = [0u8; 16];
    std::io::Read::read(&mut &holder, &mut greeting).unwrap();
    let out = qmp(&["-s", qemu.sock(), "--timeout", "0.5", "hmp", "info status"]);
    out.assert_code(4);
    assert_eq!(out.stderr, "qmp: timed out after 500ms\n");
    drop(holder);
    let later = qmp(&["-s", qemu.sock(), "--timeout", "10", "query-status"]);
    later.assert_code(0);
}

#[test]
fn generous_timeout_still_succeeds() {
    let qemu = Qemu::start();
    let out = qmp(&["-s", qemu.sock(), "--timeout", "30", "query-status"]);
    out.assert_code(0);
}

// ---- the simulator: `--sim` and `qmp sim` ----

#[test]
fn sim_answers_like_real_qemu() {
    let qemu = Qemu::start();
    for argv in [
        &["query-status"][..],
        &["no-such-command"],
        &["query-status", "x=1"],
        &["block-job-cancel", "device=job0"],
        &["block-job-cancel", "device=true"],
        &["query-name"],
        &["hmp", "info status"],
    ] {
        let real = qmp(&[&["-s", qemu.sock()][..], argv].concat());
        let sim = qmp(&[&["--sim"][..], argv].concat());
        assert_eq!((sim.code, &sim.stdout, &sim.stderr), (real.code, &real.stdout, &real.stderr), "{argv:?}");
    }
}

#[test]
fn sim_serves_a_unix_socket_until_quit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.sock");
    let path = path.to_str().unwrap();
    let mut server = common::command(&["sim", "--socket", path]).stderr(Stdio::piped()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::path::Path::new(path).exists() {
        assert!(Instant::now() < deadline, "qmp sim did not listen");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = qmp(&["-s", path, "query-status"]);
    out.assert_code(0);
    assert_eq!(json_out(&out)["status"], "running");
    qmp(&["-s", path, "quit"]).assert_code(0);
    let stderr = server.stderr.take().unwrap();
    let done = common::finish(server, Duration::from_secs(10));
    done.assert_code(0);
    drop(stderr);
    assert!(!std::path::Path::new(path).exists(), "the socket is removed at exit");
}

#[test]
fn sim_serves_tcp_and_says_where() {
    use std::io::BufRead;
    let mut server =
        common::command(&["sim", "--tcp", "127.0.0.1:0"]).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stderr.as_mut().unwrap()).read_line(&mut line).unwrap();
    let addr =
        line.trim().strip_prefix("qmp sim: listening on ").unwrap_or_else(|| panic!("{line:?}")).to_owned();
    assert!(addr.starts_with("tcp:127.0.0.1:"), "{addr}");
    qmp(&["-s", &addr, "query-status"]).assert_code(0);
    qmp(&["-s", &addr, "quit"]).assert_code(0);
    common::finish(server, Duration::from_secs(10)).assert_code(0);
}

#[test]
fn sim_that_cannot_listen_is_a_connection_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no-such-dir").join("sim.sock");
    let out = qmp(&["sim", "--socket", path.to_str().unwrap()]);
    out.assert_code(3);
    assert!(out.stderr.starts_with("qmp: qmp sim: "), "{out:?}");
}

#[test]
fn help_after_the_command_prints_help() {
    for flag in ["--help", "-h"] {
        let out = qmp(&["block-job-cancel", "device=x", flag]);
        out.assert_code(0);
        assert!(out.stdout.contains("Exit codes"), "{flag}: {out:?}");
    }
}

#[test]
fn shell_sim_runs_the_shell_on_an_in_process_simulator() {
    for argv in [&["shell", "--sim"][..], &["--sim", "shell"][..]] {
        let mut child = common::command(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(b"query-status\nstop\nquery-status\n").unwrap();
        let out = common::finish(child, Duration::from_secs(20));
        out.assert_code(0);
        assert!(out.stdout.contains("\"status\": \"running\""), "{argv:?}: {}", out.stdout);
        assert!(out.stdout.contains("\"event\": \"STOP\""), "{argv:?}: {}", out.stdout);
        assert!(out.stdout.contains("\"status\": \"paused\""), "{argv:?}: {}", out.stdout);
    }
    let out = common::qmp(&["shell", "--sim", "-s", "/x"]);
    out.assert_code(2);
}
