//! The shell on the guest agent end to end: the real binary in a pseudo-terminal against a
//! real qemu-ga (`Peer::qemu_ga`, which blocks every command that could harm this host).
//! qemu-ga's unix-listen serves one client at a time, so each test starts its own.

use std::path::Path;
use std::process::Command;

use qmp_testkit::Peer;

mod support;

use support::pty::Pty;

const PROMPT: &str = "(QGA) ";

/// `qmp ARGS...` under a pty, with HOME in the agent's temp dir (for the history file).
fn spawn(ga: &Peer, args: &[&str]) -> Pty {
    Pty::spawn(args, ga.dir(), &[])
}

fn socket(ga: &Peer) -> String {
    ga.socket(0).display().to_string()
}

/// Types a line and waits for the next agent prompt.
fn line(sh: &mut Pty, text: &str) -> String {
    sh.send(&format!("{text}\r"));
    sh.prompt_of(PROMPT)
}

#[test]
fn commands_short_names_errors_completion_help_and_ctrl_d() {
    let ga = Peer::qemu_ga();
    let sock = socket(&ga);
    let mut sh = spawn(&ga, &["ga", "-s", &sock, "shell"]);
    sh.expect("Connected to qemu-ga ");
    sh.prompt_of(PROMPT);
    let out = line(&mut sh, "guest-ping");
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
    // The guest- prefix may be left out.
    let out = line(&mut sh, "ping");
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
    let out = line(&mut sh, "guest-info");
    assert!(out.contains(r#""version": "#) && out.contains("supported_commands"), "{out:?}");
    // A blocked command: the agent's error, and the shell goes on.
    let out = line(&mut sh, "guest-shutdown");
    assert!(out.contains("has been disabled"), "{out:?}");
    let out = line(&mut sh, "get-host-name");
    assert!(out.contains(r#""host-name": "#), "{out:?}");
    // Completion: full names, from a short or a full prefix.
    sh.send("guest-get-o\t");
    sh.expect("guest-get-osinfo ");
    let out = line(&mut sh, "");
    assert!(out.contains(r#""kernel-release": "#), "{out:?}");
    sh.send("get-host-na\t");
    sh.expect("guest-get-host-name ");
    line(&mut sh, "");
    // help lists the commands (blocked ones marked); help COMMAND shows arguments.
    let out = line(&mut sh, "help");
    assert!(out.contains("guest-ping") && out.contains("guest-shutdown (disabled)"), "{out:?}");
    let out = line(&mut sh, "help exec");
    assert!(
        out.contains("guest-exec") && out.contains("path: string") && out.contains("pid: int"),
        "{out:?}"
    );
    sh.send("\x04");
    assert!(sh.wait().success());
}

#[test]
fn arguments_json_lines_bang_and_what_the_agent_lacks() {
    let ga = Peer::qemu_ga();
    let sock = socket(&ga);
    let mut sh = spawn(&ga, &["ga", "-s", &sock, "shell", "-v"]);
    sh.prompt_of(PROMPT);
    // Argument names complete from the agent's schema.
    sh.send("guest-exec pa\t");
    sh.expect("path=");
    let out = line(&mut sh, "/bin/true");
    assert!(
        out.contains(r#""arguments": {"path": "/bin/true"}"#) && out.contains(r#""execute": "guest-exec""#),
        "{out:?}"
    );
    assert!(out.contains(r#"{"return": {"pid": "#), "{out:?}");
    // A JSON line is sent as it is (no guest- added); '!' sends a line as typed.
    let out = line(&mut sh, r#"{"execute": "guest-ping"}"#);
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
    let out = line(&mut sh, r#"{"execute": "ping"}"#);
    assert!(out.contains("CommandNotFound"), "{out:?}");
    let out = line(&mut sh, "!ping");
    assert!(out.contains(r#"{"execute": "guest-ping"}"#) && out.contains(r#"{"return": {}}"#), "{out:?}");
    // No argument check: the agent's own error comes back.
    let out = line(&mut sh, "guest-exec bogus=1");
    assert!(out.contains(r#""error": "#), "{out:?}");
    let out = line(&mut sh, "transaction(");
    assert!(out.contains("no transactions"), "{out:?}");
    let out = line(&mut sh, r#"{"exec-oob": "guest-ping"}"#);
    assert!(out.contains("no out-of-band"), "{out:?}");
    // The agent still answers in turn after all that.
    let out = line(&mut sh, "ping");
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
    sh.send("\x04");
    assert!(sh.wait().success());
}

#[test]
fn shell_dash_dash_ga_and_its_own_history() {
    let ga = Peer::qemu_ga();
    let sock = socket(&ga);
    let mut sh = spawn(&ga, &["shell", "--ga", "-s", &sock]);
    sh.expect("Welcome to the guest agent shell!");
    sh.prompt_of(PROMPT);
    let out = line(&mut sh, "guest-ping");
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
    sh.send("\x04");
    assert!(sh.wait().success());
    drop(sh);
    let history = std::fs::read_to_string(ga.dir().join(".qmp-ga-shell_history")).unwrap();
    assert_eq!(history, "guest-ping\n");
    assert!(!ga.dir().join(".qmp-shell_history").exists());
    // The address from QMP_GA_SOCKET; the history comes back.
    let mut sh = Pty::spawn(&["shell", "--ga"], ga.dir(), &[("QMP_GA_SOCKET", ga.socket(0))]);
    sh.prompt_of(PROMPT);
    sh.send("\x1b[A");
    sh.expect("guest-ping");
    let out = line(&mut sh, "");
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
    sh.send("\x04");
    assert!(sh.wait().success());
}

#[test]
fn ctrl_c_stops_waiting_and_the_late_reply_is_not_the_next_ones() {
    let ga = Peer::qemu_ga();
    let sock = socket(&ga);
    let mut sh = spawn(&ga, &["ga", "-s", &sock, "shell"]);
    sh.prompt_of(PROMPT);
    ga.signal("STOP");
    sh.send("guest-get-host-name\r");
    sh.expect("guest-get-host-name");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Ctrl-C while a call runs: the terminal is in its normal mode then, so it is a SIGINT.
    let shell_pid = nix::unistd::Pid::from_raw(sh.child.id() as i32);
    nix::sys::signal::kill(shell_pid, nix::sys::signal::Signal::SIGINT).unwrap();
    sh.expect("(interrupted: no longer waiting for the reply)");
    sh.prompt_of(PROMPT);
    ga.signal("CONT");
    // The agent answers the dropped call late; the next call resynchronises past it.
    let out = line(&mut sh, "ping");
    assert!(out.contains(r#"{"return": {}}"#) && !out.contains("host-name"), "{out:?}");
    sh.send("\x04");
    assert!(sh.wait().success());
}

#[test]
fn skip_negotiation_on_the_agent_gets_a_prompt_at_once() {
    let ga = Peer::qemu_ga();
    let sock = socket(&ga);
    let started = std::time::Instant::now();
    let mut sh = spawn(&ga, &["shell", "-N", "-s", &sock]);
    sh.expect("Connected (no greeting");
    sh.prompt();
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    let out = sh.line(r#"{"execute": "guest-ping"}"#);
    assert!(out.contains(r#"{"return": {}}"#), "{out:?}");
    sh.send("\x04");
    assert!(sh.wait().success());
}

#[test]
fn a_lost_agent_ends_the_shell_with_exit_code_3() {
    let ga = Peer::qemu_ga();
    let sock = socket(&ga);
    let mut sh = spawn(&ga, &["ga", "-s", &sock, "shell"]);
    sh.prompt_of(PROMPT);
    ga.signal("KILL");
    sh.expect("qmp: connection lost: ");
    assert_eq!(sh.wait().code(), Some(3));
}

#[test]
fn hmp_and_a_missing_address_are_usage_errors() {
    let run = |args: &[&str], home: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_qmp"))
            .args(args)
            .env("HOME", home)
            .env_remove("QMP_GA_SOCKET")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let home = tempfile::tempdir().unwrap();
    let (code, err) = run(&["ga", "-s", "/nonexistent", "shell", "-H"], home.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the guest agent has none"), "{err}");
    let (code, err) = run(&["shell", "--ga", "-H", "-s", "/nonexistent"], home.path());
    assert_eq!(code, Some(2), "{err}");
    let (code, err) = run(&["shell", "--ga"], home.path());
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("QMP_GA_SOCKET"), "{err}");
    let (code, err) = run(&["shell", "--ga", "--sim"], home.path());
    assert_eq!(code, Some(2), "{err}");
    let (code, err) =
        run(&["ga", "-s", home.path().join("none.sock").to_str().unwrap(), "shell"], home.path());
    assert_eq!(code, Some(3), "{err}");
}

#[test]
fn help_describes_the_agent_shell() {
    let out = Command::new(env!("CARGO_BIN_EXE_qmp")).args(["ga", "shell", "--help"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in ["-l, --logfile", "guest- prefix", "Ctrl-D leaves", ".qmp-ga-shell_history"] {
        assert!(text.contains(needle), "qmp ga shell --help lacks {needle:?}:\n{text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_qmp")).args(["shell", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--ga") && text.contains("do not wait for a greeting"), "{text}");
}
