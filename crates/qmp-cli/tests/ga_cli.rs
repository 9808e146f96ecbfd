//! `qmp ga` end to end: the real binary against real qemu-ga (Debian's 7.2, run on this host
//! by `qmp_testkit::Peer::qemu_ga` with every command that could harm it blocked). Programs
//! run through it are harmless ones; files are copied only inside the test's temp directory.

mod support;

use std::time::Duration;

use qmp_testkit::Peer;
use serde_json::Value;
use support::{command, finish, qmp, qmp_env};

fn ga(peer: &Peer, args: &[&str]) -> support::Output {
    let sock = peer.socket(0).to_str().unwrap();
    qmp(&[&["ga", "-s", sock][..], args].concat())
}

#[test]
fn exec_passes_the_programs_output_and_exit_code_through() {
    let peer = Peer::qemu_ga();
    let out = ga(&peer, &["exec", "--", "/bin/sh", "-c", "printf out; printf err >&2; exit 3"]);
    out.assert_code(3);
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("out", "err"));
    // A signal is 128+N, as a shell says it.
    ga(&peer, &["exec", "--", "/bin/sh", "-c", "kill -KILL $$"]).assert_code(137);
    // More output than one chunk of anything, unmangled.
    let out = ga(&peer, &["exec", "--", "/bin/sh", "-c", "yes 0123456789abcdef | head -c 1000000"]);
    out.assert_code(0);
    assert_eq!(out.stdout.len(), 1_000_000);
    assert!(out.stdout.lines().all(|l| l == "0123456789abcdef" || "0123456789abcdef".starts_with(l)));
    // Input from a file and from our stdin; the environment given.
    let dir = qmp_testkit::tempdir();
    let input = dir.path().join("input");
    std::fs::write(&input, "from a file\n").unwrap();
    let out = ga(&peer, &["exec", "--input", input.to_str().unwrap(), "--", "/bin/cat"]);
    assert_eq!(out.stdout, "from a file\n");
    let sock = peer.socket(0).to_str().unwrap();
    let mut cmd = command(&["ga", "-s", sock, "exec", "--input", "-", "--", "/usr/bin/wc", "-c"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &[b'x'; 70_000]).unwrap();
    let out = finish(child, Duration::from_secs(20));
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), "70000");
    let out = ga(
        &peer,
        &[
            "exec",
            "--env",
            "A=1",
            "--env",
            "B=two words",
            "--",
            "/bin/sh",
            "-c",
            "printf '%s|%s' \"$A\" \"$B\"",
        ],
    );
    assert_eq!(out.stdout, "1|two words");
    // A program that is not there is the agent's error, exit code 1.
    let out = ga(&peer, &["exec", "--", "/nonexistent/program"]);
    out.assert_code(1);
    assert!(!out.stderr.is_empty());
}

#[test]
fn cp_copies_64_mib_in_and_out_byte_for_byte() {
    let peer = Peer::qemu_ga();
    let dir = qmp_testkit::tempdir();
    let mut x: u32 = 0x1234_5678;
    let data: Vec<u8> = (0..64 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 11) as u8
        })
        .collect();
    let (local, in_guest, back) =
        (dir.path().join("local"), dir.path().join("guest-side"), dir.path().join("back"));
    std::fs::write(&local, &data).unwrap();
    let guest = format!("guest:{}", in_guest.display());
    ga(&peer, &["cp", local.to_str().unwrap(), &guest]).assert_code(0);
    assert!(std::fs::read(&in_guest).unwrap() == data, "the copy in differs");
    ga(&peer, &["cp", &guest, back.to_str().unwrap()]).assert_code(0);
    assert!(std::fs::read(&back).unwrap() == data, "the copy out differs");
    // To stdout, and errors: a missing guest file (the agent's error), no guest side.
    let small = dir.path().join("small");
    std::fs::write(&small, "hello\n").unwrap();
    let out = ga(&peer, &["cp", &format!("guest:{}", small.display()), "-"]);
    assert_eq!(out.stdout, "hello\n");
    let out = ga(
        &peer,
        &["cp", &format!("guest:{}", dir.path().join("missing").display()), back.to_str().unwrap()],
    );
    out.assert_code(1);
    let out = ga(&peer, &["cp", "a", "b"]);
    out.assert_code(2);
    assert!(out.stderr.contains("guest:"), "{}", out.stderr);
}

#[test]
fn commands_ping_info_and_the_agents_errors() {
    let peer = Peer::qemu_ga();
    let out = ga(&peer, &["ping"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "");
    // Short names and full ones; qmp's argument syntax.
    let out = ga(&peer, &["get-osinfo"]);
    out.assert_code(0);
    let os: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(os["kernel-release"].is_string(), "{os}");
    let out = ga(&peer, &["guest-get-host-name"]);
    let name: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(name["host-name"].is_string());
    let out = ga(&peer, &["--pretty", "guest-get-host-name"]);
    assert!(out.stdout.lines().count() == 3 && out.stdout.contains("\n  \"host-name\""), "{}", out.stdout);
    let out = ga(&peer, &["guest-sync", "id=42"]);
    assert_eq!(out.stdout.trim(), "42");
    // info: JSON when not a terminal.
    let out = ga(&peer, &["info"]);
    out.assert_code(0);
    let info: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(info["version"].as_str().unwrap().starts_with("7.2"));
    let cmds = info["supported_commands"].as_array().unwrap();
    assert!(cmds.iter().any(|c| c["name"] == "guest-shutdown" && c["enabled"] == false));
    // A blocked command and an unknown one: the agent's error, exit code 1.
    let out = ga(&peer, &["shutdown"]);
    out.assert_code(1);
    assert!(out.stderr.contains("has been disabled"), "{}", out.stderr);
    let out = ga(&peer, &["no-such-command"]);
    out.assert_code(1);
    assert!(out.stderr.contains("guest-no-such-command"), "{}", out.stderr);
    // The address from the environment.
    let out = qmp_env(&["ga", "ping"], &[("QMP_GA_SOCKET", peer.socket(0).to_str().unwrap())]);
    out.assert_code(0);
    let out = qmp(&["ga", "ping"]);
    out.assert_code(2);
    assert!(out.stderr.contains("QMP_GA_SOCKET"), "{}", out.stderr);
}

#[test]
fn a_timeout_then_a_correct_next_run() {
    let peer = Peer::qemu_ga();
    let out = ga(&peer, &["--timeout", "0.3", "exec", "--", "/bin/sleep", "3"]);
    out.assert_code(4);
    let out = ga(&peer, &["exec", "--", "/bin/echo", "next"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "next\n");
}

#[test]
fn a_socket_nobody_listens_on_is_a_connection_error() {
    let dir = qmp_testkit::tempdir();
    let out = qmp(&["ga", "-s", dir.path().join("none.sock").to_str().unwrap(), "ping"]);
    out.assert_code(3);
}

#[test]
fn a_serial_line_by_its_plain_path() {
    // The host side of a serial channel (a pty here): `-s /dev/pts/N` as it is, or `serial:`.
    let agent = Peer::qemu_ga_serial();
    let path = agent.path().to_str().unwrap();
    for addr in [path.to_owned(), format!("serial:{path}")] {
        let out = qmp(&["ga", "-s", &addr, "get-host-name"]);
        out.assert_code(0);
        let name: Value = serde_json::from_str(&out.stdout).unwrap();
        assert!(name["host-name"].is_string(), "{addr}: {out:?}");
    }
}
