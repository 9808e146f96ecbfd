//! `qmp shell` end to end: the real binary in a pseudo-terminal against real QEMU.
//!
//! Each test starts its own QEMU (or qemu-storage-daemon) in a private directory, runs
//! `qmp shell` under a pty with HOME pointing there, types keys and waits for the output.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::{json, Value};

mod support;

use support::pty::{Pty, WAIT};

/// A QEMU (or storage daemon) with two monitor sockets: one for the shell, one for the test.
struct Qemu {
    child: Child,
    dir: tempfile::TempDir,
}

impl Qemu {
    fn system() -> Qemu {
        let dir = tempfile::tempdir().expect("tempdir");
        let sockets = [dir.path().join("shell.sock"), dir.path().join("test.sock")];
        let mut cmd = Command::new(qmp_testkit::require("qemu-system-x86_64"));
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]);
        for socket in &sockets {
            cmd.arg("-qmp").arg(qmp_testkit::waiting_unix(socket));
        }
        let mut child = qmp_testkit::spawn_quiet(cmd);
        qmp_testkit::greet_monitors(&mut child, &sockets.each_ref().map(|s| qmp_testkit::Listener::Unix(s)));
        Qemu { child, dir }
    }

    fn storage_daemon() -> Qemu {
        let dir = tempfile::tempdir().expect("tempdir");
        let sockets = [dir.path().join("shell.sock"), dir.path().join("test.sock")];
        let mut cmd = Command::new("qemu-storage-daemon");
        cmd.args(qmp_testkit::storage_daemon_monitor(&sockets[0], "m0"))
            .args(qmp_testkit::storage_daemon_monitor(&sockets[1], "m1"))
            .args(["--blockdev", "driver=null-co,node-name=n0,size=1048576"]);
        Qemu { child: qmp_testkit::spawn_storage_daemon(cmd, &sockets), dir }
    }

    fn socket(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.sock"))
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    /// The test's own monitor, negotiated.
    fn monitor(&self) -> Monitor {
        Monitor::connect(&self.socket("test"))
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain QMP connection for the test's side actions.
struct Monitor {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Monitor {
    fn connect(path: &Path) -> Monitor {
        let stream = UnixStream::connect(path).expect("connect to the test monitor");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let writer = stream.try_clone().unwrap();
        let mut m = Monitor { reader: BufReader::new(stream), writer };
        m.next_message(); // the greeting
        m.execute("qmp_capabilities", json!({}));
        m
    }

    fn next_message(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from QEMU");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"))
    }

    fn execute(&mut self, name: &str, args: Value) -> Value {
        let request = json!({"execute": name, "arguments": args});
        self.writer.write_all(request.to_string().as_bytes()).unwrap();
        loop {
            let msg = self.next_message();
            if msg.get("return").is_some() || msg.get("error").is_some() {
                return msg;
            }
        }
    }
}

/// `qmp shell -s SOCKET EXTRA...` against `qemu`'s shell monitor, under a pty.
fn shell(qemu: &Qemu, extra: &[&str]) -> Pty {
    let sock = qemu.socket("shell").display().to_string();
    let mut args = vec!["shell", "-s", sock.as_str()];
    args.extend_from_slice(extra);
    Pty::spawn(&args, qemu.home(), &[])
}

#[test]
fn a_command_and_its_result() {
    let qemu = Qemu::system();
    let mut sh = shell(&qemu, &[]);
    sh.expect("Connected to QEMU 7.");
    sh.prompt();
    let out = sh.line("query-status");
    assert!(
        out.contains(r#"{"return": {"status": "running", "singlestep": false, "running": true}}"#),
        "{out:?}"
    );
    // The schema check refuses a bad call and says why; '!' sends it anyway.
    let out = sh.line("block-dirty-bitmap-add node=x");
    assert!(out.contains("missing required argument 'name' (string)"), "{out:?}");
    assert!(out.contains("start the line with '!'"), "{out:?}");
    let out = sh.line("!block-dirty-bitmap-add node=x");
    assert!(out.contains(r#"{"error": {"class": "GenericError""#), "{out:?}");
    // help lists commands; help COMMAND shows the argument tree.
    let out = sh.line("help block-dirty-bitmap-add");
    assert!(out.contains("granularity: int (optional)") && out.contains("returns: nothing"), "{out:?}");
    let out = sh.line("query-status nokey");
    assert!(
        out.contains("Error while parsing command line: expected a key=value pair, got 'nokey'"),
        "{out:?}"
    );
    sh.send("\x04");
    assert!(sh.wait().success());
}

#[test]
fn skip_negotiation_verbose_and_json_lines() {
    let qemu = Qemu::system();
    let mut sh = shell(&qemu, &["-N", "-v"]);
    // Not waited for, but QEMU greets at once: it is shown.
    sh.expect("Connected to QEMU 7.");
    sh.prompt();
    // Not negotiated: QEMU refuses; there is no schema yet, so nothing is checked.
    let out = sh.line("query-status");
    assert!(out.contains(r#"{"execute": "query-status"}"#), "-v shows the request: {out:?}");
    assert!(out.contains("Expecting capabilities negotiation"), "{out:?}");
    let out = sh.line("qmp_capabilities");
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
    // Negotiated: the schema is loaded, so completion works now.
    sh.send("query-statu\t");
    sh.expect("query-status ");
    let out = sh.line("");
    assert!(out.contains(r#""status": "running""#), "{out:?}");
    // A JSON object line is sent as it is.
    let out = sh.line(r#"{"execute": "query-name", "arguments": {}}"#);
    assert!(out.contains(r#"{"execute": "query-name"}"#) && out.contains(r#"{"return": {}}"#), "{out:?}");
    let out = sh.line("help");
    assert!(out.contains("query-status") && out.contains("Events: ") && out.contains("STOP"), "{out:?}");
}

#[test]
fn tab_completes_commands_arguments_and_enum_values() {
    let qemu = Qemu::system();
    let mut sh = shell(&qemu, &[]);
    sh.prompt();
    sh.send("query-statu\t");
    sh.expect("query-status ");
    let out = sh.line("");
    assert!(out.contains(r#""status": "running""#), "{out:?}");

    // After the command and a space, a hint names the required arguments.
    sh.send("block-dirty-bitmap-add ");
    sh.expect("node=<string> name=<string>");
    sh.send("gran\t");
    sh.expect("granularity=");
    sh.send("\x03"); // Ctrl-C drops the line
    sh.prompt();

    sh.send("blockdev-add driver=vvf\t");
    sh.expect("vvfat ");
    sh.send("\x03");
    sh.prompt();
    // A nested argument after '.'.
    sh.send("blockdev-add driver=qcow2 file.filen\t");
    sh.expect("filename=");
    sh.send("\x03");
    sh.prompt();
    let out = sh.line("query-status");
    assert!(out.contains(r#""status": "running""#) && !out.contains("blockdev"), "{out:?}");
}

#[test]
fn events_appear_while_the_prompt_waits_and_the_line_stays() {
    let qemu = Qemu::system();
    let mut side = qemu.monitor();
    let mut sh = shell(&qemu, &[]);
    sh.prompt();
    sh.send("query-sta");
    sh.expect("query-sta");
    assert_eq!(side.execute("stop", json!({})), json!({"return": {}}));
    let out = sh.expect(r#""event": "STOP""#);
    assert!(!out.contains("(QEMU) query-status"), "{out:?}");
    let out = sh.expect("}}");
    assert!(out.contains(r#""timestamp": {"#), "{out:?}");
    // The prompt and the typed text are drawn again below the event.
    sh.expect("(QEMU) query-sta");
    sh.send("tus\r");
    let out = sh.prompt();
    assert!(out.contains(r#""status": "paused""#), "{out:?}");
    // An event caused by the shell's own command gets a line of its own too.
    sh.send("cont\r");
    sh.expect(r#""event": "RESUME""#);
    let out = sh.expect(r#"{"return": {}}"#);
    assert!(!out.contains(r#"}}{"return""#), "{out:?}");
}

#[test]
fn hmp_mode() {
    let qemu = Qemu::system();
    let mut sh = shell(&qemu, &["-H"]);
    sh.expect("Welcome to the HMP shell!");
    sh.prompt();
    let out = sh.line("info version");
    assert!(out.contains("7.2."), "{out:?}");
    sh.send("info statu\t");
    sh.expect("info status");
    let out = sh.line("");
    assert!(out.contains("VM status: running"), "{out:?}");
    let out = sh.line("cpu x");
    assert!(out.contains("cpu command takes an integer argument"), "{out:?}");
    // -machine none has no CPU 3.
    let out = sh.line("cpu 3");
    assert!(out.contains("bad CPU index"), "{out:?}");
}

#[test]
fn a_transaction_is_applied_at_once() {
    let qemu = Qemu::storage_daemon();
    let mut side = qemu.monitor();
    let log = qemu.home().join("log.jsonl");
    let log_arg = log.display().to_string();
    let mut sh = shell(&qemu, &["-l", &log_arg]);
    sh.prompt();
    sh.send("transaction(\r");
    sh.prompt_of("TRANS> ");
    sh.send("block-dirty-bitmap-add node=n0 name=b1\r");
    sh.prompt_of("TRANS> ");
    sh.send("block-dirty-bitmap-add node=n0 name=b2 granularity=65536\r");
    sh.prompt_of("TRANS> ");
    let out = sh.line(")");
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
    // Ctrl-C at the TRANS> prompt drops the open transaction.
    sh.send("transaction(\r");
    sh.prompt_of("TRANS> ");
    sh.send("block-dirty-bitmap-add node=n0 name=b9\r");
    sh.prompt_of("TRANS> ");
    sh.send("\x03");
    sh.expect("(transaction dropped)");
    sh.prompt();
    let bitmaps = |side: &mut Monitor| -> Vec<String> {
        let nodes = side.execute("query-named-block-nodes", json!({}));
        let node =
            nodes["return"].as_array().unwrap().iter().find(|n| n["node-name"] == "n0").unwrap().clone();
        let list = node["dirty-bitmaps"].as_array().cloned().unwrap_or_default();
        list.iter().map(|b| b["name"].as_str().unwrap().to_string()).collect()
    };
    let mut names = bitmaps(&mut side);
    names.sort();
    assert_eq!(names, ["b1", "b2"]);
    // One line: the second action fails, so the first is not applied either.
    let out = sh.line(
        "transaction( block-dirty-bitmap-add node=n0 name=b3 ; block-dirty-bitmap-add node=n0 name=b1 )",
    );
    assert!(out.contains(r#""error""#) && out.contains("b1"), "{out:?}");
    assert!(!bitmaps(&mut side).contains(&"b3".to_string()));
    // -l wrote each request and response as a JSON line.
    let logged: Vec<Value> =
        std::fs::read_to_string(&log).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(logged.len(), 4, "{logged:?}");
    assert_eq!(logged[0]["execute"], "transaction");
    assert_eq!(logged[0]["arguments"]["actions"][1]["data"]["granularity"], 65536);
    assert_eq!(logged[1], json!({"return": {}}));
    assert!(logged[3].get("error").is_some());
}

#[test]
fn launch_starts_qemu_and_exits_with_its_status() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sh = Pty::spawn(
        &["launch", "-p", "--", "qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none"],
        tmp.path(),
        &[("TMPDIR", tmp.path())],
    );
    sh.expect("Connected to QEMU 7.");
    sh.prompt();
    // The socket lives in a private directory under TMPDIR while QEMU runs.
    let dirs: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(dirs.iter().any(|d| d.to_string_lossy().starts_with("qmp-launch-")), "{dirs:?}");
    let out = sh.line("query-status");
    assert!(out.contains("\"return\": {\r\n        \"status\": \"running\""), "-p pretty output: {out:?}");
    sh.send("quit\r");
    sh.expect("QEMU exited");
    assert!(sh.wait().success());
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("qmp-launch-"))
        .collect();
    assert!(left.is_empty(), "socket directory left behind: {left:?}");
}

#[test]
fn leaving_a_launched_shell_quits_qemu() {
    // `qmp shell [OPTIONS] -- QEMU...` is the same as `qmp launch`.
    let tmp = tempfile::tempdir().unwrap();
    let mut sh = Pty::spawn(
        &["shell", "--", "qemu-system-x86_64", "-machine", "none", "-nodefaults", "-display", "none"],
        tmp.path(),
        &[("TMPDIR", tmp.path())],
    );
    sh.prompt();
    sh.send("\x04");
    assert!(sh.wait().success());
    let left = std::fs::read_dir(tmp.path()).unwrap().flatten().count();
    assert_eq!(left, 0, "socket directory left behind");
}

#[test]
fn launch_passes_on_a_failing_qemu_status() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sh = Pty::spawn(
        &["launch", "qemu-system-x86_64", "-machine", "no-such-machine"],
        tmp.path(),
        &[("TMPDIR", tmp.path())],
    );
    sh.expect("QEMU exited before connecting");
    assert_eq!(sh.wait().code(), Some(1));
}

#[test]
fn history_is_restored_in_a_second_session() {
    let qemu = Qemu::system();
    let mut sh = shell(&qemu, &[]);
    sh.prompt();
    sh.line("query-name");
    sh.send("\x04");
    assert!(sh.wait().success());
    drop(sh);
    let history = std::fs::read_to_string(qemu.home().join(".qmp-shell_history")).unwrap();
    assert!(history.contains("query-name"), "{history:?}");

    let mut sh = shell(&qemu, &[]);
    sh.prompt();
    sh.send("\x1b[A"); // Up: the last line of the previous session
    sh.expect("query-name");
    let out = sh.line("");
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
}

#[test]
fn ctrl_c_stops_waiting_for_a_reply() {
    let qemu = Qemu::system();
    let mut sh = shell(&qemu, &[]);
    sh.prompt();
    let qemu_pid = nix::unistd::Pid::from_raw(qemu.child.id() as i32);
    nix::sys::signal::kill(qemu_pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    sh.send("query-status\r");
    sh.expect("query-status");
    std::thread::sleep(Duration::from_millis(300));
    // Ctrl-C while a command runs: the terminal is in its normal mode then, so it is a SIGINT.
    let shell_pid = nix::unistd::Pid::from_raw(sh.child.id() as i32);
    nix::sys::signal::kill(shell_pid, nix::sys::signal::Signal::SIGINT).unwrap();
    sh.expect("(interrupted: no longer waiting for the reply)");
    sh.prompt();
    nix::sys::signal::kill(qemu_pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    // The late reply to query-status is not taken for the next command's.
    let out = sh.line("query-name");
    assert!(out.contains(r#"{"return": {}}"#) && !out.contains("running"), "{out:?}");
}

#[test]
fn a_lost_connection_ends_the_shell_with_one_line() {
    let qemu = Qemu::system();
    let mut side = qemu.monitor();
    let mut sh = shell(&qemu, &[]);
    sh.prompt();
    sh.send("query-sta");
    sh.expect("query-sta");
    side.execute("quit", json!({}));
    // The last event comes out before the shell ends.
    sh.expect(r#""event": "SHUTDOWN""#);
    sh.expect("qmp: connection lost: ");
    assert_eq!(sh.wait().code(), Some(3));
}

#[test]
fn help_documents_the_syntax_and_keys() {
    for sub in ["shell", "launch"] {
        let out = Command::new(env!("CARGO_BIN_EXE_qmp")).args([sub, "--help"]).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        for needle in ["-H, --hmp", "-l, --logfile", "transaction(", "Ctrl-D leaves", "exit code 3"] {
            assert!(text.contains(needle), "{sub} --help lacks {needle:?}:\n{text}");
        }
    }
}

#[test]
fn lines_typed_ahead_while_a_reply_is_pending_all_run_in_order() {
    let qemu = Qemu::system();
    let mut sh = shell(&qemu, &[]);
    sh.prompt();
    let qemu_pid = nix::unistd::Pid::from_raw(qemu.child.id() as i32);
    nix::sys::signal::kill(qemu_pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    sh.send("query-status\r");
    sh.expect("query-status");
    // Three more lines typed while the first waits for its reply.
    sh.send("query-name\rquery-kvm\rquery-uuid\r");
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(qemu_pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let out = sh.expect(r#""UUID""#);
    let at = |needle: &str| out.find(needle).unwrap_or_else(|| panic!("{needle:?} not in {out:?}"));
    let (status, name, kvm, uuid) =
        (at(r#""running""#), at(r#"{"return": {}}"#), at(r#""present""#), at(r#""UUID""#));
    assert!(status < name && name < kvm && kvm < uuid, "{out:?}");
    sh.prompt();
}

#[test]
fn lines_pasted_at_the_prompt_all_run_in_order() {
    let qemu = Qemu::system();
    let mut sh = shell(&qemu, &[]);
    sh.prompt();
    sh.send("query-name\rquery-kvm\rquery-uuid\r");
    let out = sh.expect(r#""UUID""#);
    let at = |needle: &str| out.find(needle).unwrap_or_else(|| panic!("{needle:?} not in {out:?}"));
    assert!(at(r#"{"return": {}}"#) < at(r#""present""#), "{out:?}");
    sh.prompt();
}

#[test]
fn the_socket_may_be_a_plain_argument_as_for_qmp_shell() {
    let qemu = Qemu::system();
    let sock = qemu.socket("shell").display().to_string();
    let mut sh = Pty::spawn(&["shell", "-p", &sock], qemu.home(), &[]);
    sh.prompt();
    let out = sh.line("query-status");
    assert!(out.contains(r#""status": "prelaunch""#) || out.contains(r#""status": "running""#), "{out:?}");
    sh.send("\x04");
    assert!(sh.wait().success());

    let both = Command::new(env!("CARGO_BIN_EXE_qmp")).args(["shell", "-s", &sock, &sock]).output().unwrap();
    assert_eq!(both.status.code(), Some(2), "{both:?}");
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"), "{both:?}");
}
