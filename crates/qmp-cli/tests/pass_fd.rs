//! `qmp --pass-fd N`: the one-shot sends its descriptor N with the command (SCM_RIGHTS), end
//! to end against real QEMU: `getfd` then `closefd` by the same name (which only succeeds when
//! QEMU holds the descriptor), `add-fd` then `query-fdsets` in a second run; and the usage
//! errors: a descriptor that is not open, a TCP connection, the option after COMMAND or with a
//! subcommand that sends no command. QEMU is required (scripts/install-deps.sh installs it).

mod support;

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::process::Stdio;
use std::time::Duration;

use qmp_testkit::Peer;
use serde_json::Value;
use support::{qmp, Output};

/// `qmp ARGS` with `fd` open in it under its own number (FD_CLOEXEC cleared in the child).
fn qmp_with_fd(args: &[&str], fd: RawFd) -> Output {
    let mut cmd = support::command(args);
    qmp_testkit::keep_open_across_exec(&mut cmd, fd);
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    support::finish(child, Duration::from_secs(20))
}

fn json_out(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out:?}"))
}

/// A file with some bytes in the peer's directory, opened for reading and writing.
fn some_file(qemu: &Peer, name: &str) -> File {
    let path = qemu.dir().join(name);
    File::create(&path).unwrap().write_all(b"disk bytes").unwrap();
    File::options().read(true).write(true).open(&path).unwrap()
}

fn sock(qemu: &Peer, i: usize) -> String {
    qemu.socket(i).to_str().unwrap().to_owned()
}

#[test]
fn getfd_receives_the_descriptor_and_closefd_finds_it_by_name() {
    let qemu = Peer::qemu(1);
    let s = sock(&qemu, 0);
    let file = some_file(&qemu, "img");
    let n = file.as_raw_fd().to_string();

    // Without a descriptor QEMU refuses getfd: the run below succeeds because one was sent.
    let out = qmp(&["-s", &s, "getfd", "fdname=none"]);
    out.assert_code(1);
    assert!(out.stderr.starts_with("GenericError: "), "{out:?}");

    let out = qmp_with_fd(&["-s", &s, "--pass-fd", &n, "getfd", "fdname=x"], file.as_raw_fd());
    out.assert_code(0);
    assert_eq!(json_out(&out), serde_json::json!({}));

    // QEMU keeps the descriptor under its name after that client hung up.
    let out = qmp(&["-s", &s, "closefd", "fdname=y"]);
    out.assert_code(1);
    assert!(out.stderr.starts_with("GenericError: ") && out.stderr.contains('y'), "{out:?}");
    qmp(&["-s", &s, "closefd", "fdname=x"]).assert_code(0);
    // Closed: the name is gone.
    qmp(&["-s", &s, "closefd", "fdname=x"]).assert_code(1);
}

#[test]
fn add_fd_makes_an_fdset_that_query_fdsets_lists() {
    let qemu = Peer::qemu(2);
    // QEMU closes the descriptors of fdsets nobody uses when its last QMP client hangs up (as
    // a management program stays connected): hold the second monitor for the test's length.
    let _held = std::os::unix::net::UnixStream::connect(qemu.socket(1)).unwrap();
    let s = sock(&qemu, 0);
    let file = some_file(&qemu, "img");
    let n = file.as_raw_fd().to_string();

    let out =
        qmp_with_fd(&["-s", &s, "--pass-fd", &n, "add-fd", "fdset-id=7", "opaque=ours"], file.as_raw_fd());
    out.assert_code(0);
    let added = json_out(&out);
    assert_eq!(added["fdset-id"], 7, "{out:?}");
    let qemu_fd = added["fd"].as_i64().unwrap_or_else(|| panic!("no fd in {added}"));

    let out = qmp(&["-s", &s, "query-fdsets"]);
    out.assert_code(0);
    let sets = json_out(&out);
    let set = sets
        .as_array()
        .and_then(|sets| sets.iter().find(|set| set["fdset-id"] == 7))
        .unwrap_or_else(|| panic!("no fdset 7 in {sets}"));
    assert_eq!(set["fds"], serde_json::json!([{"fd": qemu_fd, "opaque": "ours"}]), "{sets}");
}

#[test]
fn a_descriptor_that_is_not_open_is_a_usage_error() {
    // No QEMU is needed: the descriptor is checked when the command line is read.
    for (fd, says) in
        [("99", "fd 99 is not open"), ("-1", "not a file descriptor"), ("x", "not a file descriptor")]
    {
        let out = qmp(&["-s", "/nonexistent.sock", "--pass-fd", fd, "getfd", "fdname=x"]);
        out.assert_code(2);
        assert!(out.stderr.contains("--pass-fd") && out.stderr.contains(says), "{fd}: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{out:?}");
    }
}

#[test]
fn tcp_connections_cannot_carry_descriptors() {
    let port = support::free_tcp_port();
    let _qemu = support::Qemu::start_on_tcp(port);
    let addr = format!("127.0.0.1:{port}");
    // Standard input (/dev/null here) is an open descriptor.
    for address in [addr.clone(), format!("tcp:{addr}"), format!("tls:{addr}")] {
        let out = qmp(&["-s", &address, "--pass-fd", "0", "getfd", "fdname=x"]);
        out.assert_code(2);
        assert!(
            out.stderr.contains("--pass-fd 0") && out.stderr.contains("unix socket"),
            "{address}: {out:?}"
        );
    }
    // The same over an inherited TCP socket.
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let fd = tcp.as_raw_fd().to_string();
    let out = qmp_with_fd(&["--fd", &fd, "--pass-fd", "0", "getfd", "fdname=x"], tcp.as_raw_fd());
    out.assert_code(2);
    assert!(out.stderr.contains("unix socket") && out.stderr.contains("TCP"), "{out:?}");
    drop(tcp);
    // The monitor still works for a command without descriptors.
    qmp(&["-s", &addr, "query-status"]).assert_code(0);
}

#[test]
fn misplaced_or_misapplied_pass_fd_is_a_usage_error() {
    let out = qmp(&["-s", "/nonexistent.sock", "getfd", "fdname=x", "--pass-fd", "0"]);
    out.assert_code(2);
    assert!(
        out.stderr.contains("options go before COMMAND") && out.stderr.contains("--pass-fd 0 getfd fdname=x"),
        "{out:?}"
    );
    for sub in ["shell", "events"] {
        let out = qmp(&["-s", "/nonexistent.sock", "--pass-fd", "0", sub]);
        out.assert_code(2);
        assert!(out.stderr.contains("--pass-fd goes with a QMP command"), "{sub}: {out:?}");
    }
}

/// The embedded simulator (`--sim`) takes the descriptor as QEMU does: refused without one,
/// put in an fd set with one.
#[test]
fn the_embedded_simulator_takes_passed_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("img");
    File::create(&path).unwrap().write_all(b"disk bytes").unwrap();
    let file = File::open(&path).unwrap();
    let n = file.as_raw_fd().to_string();

    let out = qmp(&["--sim", "add-fd"]);
    out.assert_code(1);
    assert_eq!(out.stderr.trim(), "GenericError: No file descriptor supplied via SCM_RIGHTS", "{out:?}");

    let out = qmp_with_fd(&["--sim", "--pass-fd", &n, "add-fd", "opaque=ours"], file.as_raw_fd());
    out.assert_code(0);
    let added = json_out(&out);
    assert_eq!(added["fdset-id"], 0, "{out:?}");
    assert!(added["fd"].as_i64().is_some_and(|fd| fd > 2), "{out:?}");

    let out = qmp_with_fd(&["--sim", "--pass-fd", &n, "getfd", "fdname=x"], file.as_raw_fd());
    out.assert_code(0);
    assert_eq!(json_out(&out), serde_json::json!({}));
}
