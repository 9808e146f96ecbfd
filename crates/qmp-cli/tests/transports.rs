//! The `qmp` binary's transports end to end: TLS (`tls:HOST:PORT` with `--tls-ca`,
//! `--tls-cert`, `--tls-key`) against real QEMU 7.2's TLS monitor, one-shot and in the shell;
//! `--wait` for a QEMU started after the binary; `--fd` on a socket the binary inherits (a
//! socket pair with QEMU, a connection to `qmp sim`, a listening socket QEMU connects to), and
//! the usage errors of each. QEMU and openssl are required: without them these tests fail
//! (scripts/install-deps.sh installs both).

mod support;

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use qmp_testkit::{tls::Certs, Peer};
use serde_json::Value;
use support::pty::Pty;
use support::{qmp, Output};

fn json_out(out: &Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out:?}"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `qmp ARGS` with `fd` open in it under its own number (our copy closed once it runs).
fn qmp_with_fd(args: &[&str], fd: OwnedFd) -> Output {
    let mut cmd = support::command(args);
    qmp_testkit::keep_open_across_exec(&mut cmd, fd.as_raw_fd());
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(fd);
    support::finish(child, Duration::from_secs(20))
}

// ---- TLS ----

#[test]
fn one_shot_commands_over_tls() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, false);
    let addr = qemu.tls_address();
    let out = qmp(&["-s", &addr, "--tls-ca", path(&certs.ca()), "query-status"]);
    out.assert_code(0);
    assert_eq!(json_out(&out)["status"], "running");
    // Arguments are checked against the schema first: ~200 KB over TLS, then the command.
    let out = qmp(&["--tls-ca", path(&certs.ca()), "-s", &addr, "qom-get", "path=/machine", "property=type"]);
    out.assert_code(0);
    assert_eq!(json_out(&out), "none-machine");
    let out = qmp(&["--tls-ca", path(&certs.ca()), "-s", &addr, "hmp", "info", "status"]);
    out.assert_code(0);
    assert_eq!(out.stdout, "VM status: running\n");
    // By name, or with the name the certificate was issued for.
    let by_name = format!("tls:localhost:{}", qemu.tls_port());
    qmp(&["--tls-ca", path(&certs.ca()), "-s", &by_name, "query-name"]).assert_code(0);
    let out =
        qmp(&["--tls-ca", path(&certs.ca()), "--tls-server-name", "localhost", "-s", &addr, "query-name"]);
    out.assert_code(0);
}

#[test]
fn a_wrong_ca_or_name_is_a_connection_error_that_says_so() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, false);
    let addr = qemu.tls_address();
    let out = qmp(&["-s", &addr, "--tls-ca", path(&certs.other_ca()), "query-status"]);
    out.assert_code(3);
    assert!(out.stderr.starts_with(&format!("qmp: cannot connect to {addr}: ")), "{out:?}");
    assert!(out.stderr.contains("the server's certificate was not trusted"), "{out:?}");
    let out = qmp(&[
        "-s",
        &addr,
        "--tls-ca",
        path(&certs.ca()),
        "--tls-server-name",
        "vm1.example",
        "query-status",
    ]);
    out.assert_code(3);
    assert!(out.stderr.contains(r#"not valid for "vm1.example""#), "{out:?}");
}

#[test]
fn verify_peer_wants_tls_cert_and_key() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, true);
    let addr = qemu.tls_address();
    let out = qmp(&["-s", &addr, "--tls-ca", path(&certs.ca()), "query-status"]);
    out.assert_code(3);
    assert!(out.stderr.contains("asked for a TLS client certificate, none was given"), "{out:?}");
    let out = qmp(&[
        "-s",
        &addr,
        "--tls-ca",
        path(&certs.ca()),
        "--tls-cert",
        path(&certs.untrusted_client_cert()),
        "--tls-key",
        path(&certs.untrusted_client_key()),
        "query-status",
    ]);
    out.assert_code(3);
    assert!(out.stderr.contains("did not accept the client certificate"), "{out:?}");
    let out = qmp(&[
        "-s",
        &addr,
        "--tls-ca",
        path(&certs.ca()),
        "--tls-cert",
        path(&certs.client_cert()),
        "--tls-key",
        path(&certs.client_key()),
        "query-status",
    ]);
    out.assert_code(0);
    assert_eq!(json_out(&out)["running"], true);
}

#[test]
fn tls_options_that_cannot_work_are_usage_errors() {
    let certs = Certs::generate();
    let (ca, key) = (certs.ca(), certs.client_key());
    let missing = certs.dir().join("missing.pem");
    let cases: &[(&[&str], &str)] = &[
        (&["-s", "tls:127.0.0.1:1", "query-status"], "tls:127.0.0.1:1 needs --tls-ca FILE"),
        (
            &["-s", "tls:127.0.0.1:1", "--tls-ca", path(&missing), "query-status"],
            "cannot read the TLS CA certificate file",
        ),
        (&["-s", "tls:127.0.0.1:1", "--tls-ca", path(&key), "query-status"], "holds no PEM certificate"),
        (
            &["-s", "/run/x.sock", "--tls-ca", path(&ca), "query-status"],
            "are for tls:HOST:PORT addresses, not unix:/run/x.sock",
        ),
        (
            &["-s", "tls:127.0.0.1:1", "--tls-ca", path(&ca), "--tls-cert", path(&ca), "query-status"],
            "--tls-key",
        ),
        (&["-s", "tls:/run/x.sock", "query-status"], "tls: needs HOST:PORT"),
        (
            &["-s", "tls:127.0.0.1:1", "--tls-ca", path(&ca), "--tls-server-name", "a b", "query-status"],
            "invalid TLS server name",
        ),
    ];
    for (argv, needle) in cases {
        let out = qmp(argv);
        out.assert_code(2);
        assert!(out.stderr.contains(needle), "{argv:?}: {needle:?} not in {:?}", out.stderr);
        if *needle == "cannot read the TLS CA certificate file" {
            assert!(out.stderr.contains(path(&missing)), "the file is named: {:?}", out.stderr);
        }
    }
}

#[test]
fn the_shell_over_tls_with_its_own_options_or_the_global_ones() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, true);
    let home = qmp_testkit::tempdir();
    let addr = qemu.tls_address();
    let (ca, cert, key) = (certs.ca(), certs.client_cert(), certs.client_key());
    let mut sh = Pty::spawn(
        &["shell", "-s", &addr, "--tls-ca", path(&ca), "--tls-cert", path(&cert), "--tls-key", path(&key)],
        home.path(),
        &[],
    );
    sh.expect("Connected to QEMU 7.");
    sh.prompt();
    let out = sh.line("query-status");
    assert!(out.contains(r#""status": "running""#), "{out:?}");
    let out = sh.line("stop");
    assert!(out.contains(r#""event": "STOP""#), "the event arrives over TLS too: {out:?}");
    sh.send("\x04");
    assert!(sh.wait().success());

    // The options before `shell` apply as well; a refused certificate ends it with code 3.
    let mut sh = Pty::spawn(&["--tls-ca", path(&certs.other_ca()), "shell", "-s", &addr], home.path(), &[]);
    sh.expect("the server's certificate was not trusted");
    assert_eq!(sh.wait().code(), Some(3));
}

// ---- --wait ----

#[test]
fn wait_connects_to_a_qemu_started_after_the_binary() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("qmp.sock");
    let child = support::command(&["--wait", "30", "-s", path(&socket), "query-status"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let spawned = Instant::now();
    let _qemu = Peer::qemu_at(&socket);
    let out = support::finish(child, Duration::from_secs(20));
    let took = spawned.elapsed();
    out.assert_code(0);
    assert_eq!(json_out(&out)["status"], "running");
    assert!(took < Duration::from_secs(3), "connected {took:?} after QEMU was started");
}

#[test]
fn the_shell_waits_too() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("qmp.sock");
    let mut sh = Pty::spawn(&["shell", "--wait", "30", "-s", path(&socket)], dir.path(), &[]);
    std::thread::sleep(Duration::from_millis(300));
    let _qemu = Peer::qemu_at(&socket);
    sh.expect("Connected to QEMU 7.");
    sh.prompt();
    sh.send("\x04");
    assert!(sh.wait().success());
}

#[test]
fn a_wait_that_runs_out_is_a_connection_error_naming_the_wait() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("never.sock");
    let started = Instant::now();
    let out = qmp(&["--wait", "0.5", "-s", path(&socket), "query-status"]);
    let took = started.elapsed();
    out.assert_code(3);
    assert_eq!(
        out.stderr,
        format!(
            "qmp: cannot connect to unix:{}: no server after waiting 500ms (the socket does not exist)\n",
            socket.display()
        )
    );
    assert!(took >= Duration::from_millis(500) && took < Duration::from_secs(5), "{took:?}");
    // Within --timeout: the command's limit is what runs out first.
    let out = qmp(&["--wait", "30", "--timeout", "0.3", "-s", path(&socket), "query-status"]);
    out.assert_code(4);
    let out = qmp(&["--wait", "soon", "-s", path(&socket), "query-status"]);
    out.assert_code(2);
}

// ---- --fd ----

#[test]
fn fd_talks_on_a_socket_pair_shared_with_qemu() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let _qemu = Peer::qemu_on_fd(OwnedFd::from(theirs));
    let fd = ours.as_raw_fd().to_string();
    let out = qmp_with_fd(&["--fd", &fd, "query-status"], ours.into());
    out.assert_code(0);
    assert_eq!(json_out(&out)["status"], "running");
}

#[test]
fn fd_talks_on_a_connection_to_the_simulator() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("sim.sock");
    let mut server = Killed(Some(
        support::command(&["sim", "--socket", path(&socket)])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // The simulator binds in a private directory and renames the socket into place,
    // listening: once it exists, it takes connections.
    let deadline = Instant::now() + Duration::from_secs(10);
    let conn = loop {
        if let Ok(conn) = UnixStream::connect(&socket) {
            break conn;
        }
        assert!(Instant::now() < deadline, "qmp sim did not listen");
        std::thread::sleep(Duration::from_millis(5));
    };
    let fd = conn.as_raw_fd().to_string();
    let out = qmp_with_fd(&["--fd", &fd, "query-status"], conn.into());
    out.assert_code(0);
    assert_eq!(json_out(&out)["status"], "running");
    let conn = UnixStream::connect(&socket).unwrap();
    let fd = conn.as_raw_fd().to_string();
    qmp_with_fd(&["--fd", &fd, "quit"], conn.into()).assert_code(0);
    let server = server.0.take().unwrap();
    support::finish(server, Duration::from_secs(10)).assert_code(0);
}

/// A child killed and reaped if the test fails before it ends.
struct Killed(Option<std::process::Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn fd_on_a_listening_socket_takes_the_qemu_that_connects() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("listen.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let fd = listener.as_raw_fd().to_string();
    let mut cmd = support::command(&["--fd", &fd, "query-name"]);
    qmp_testkit::keep_open_across_exec(&mut cmd, listener.as_raw_fd());
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(listener);
    let _qemu = Peer::qemu_unwaited(&["-qmp", &format!("unix:{}", socket.display())]);
    let out = support::finish(child, Duration::from_secs(20));
    out.assert_code(0);
    assert_eq!(json_out(&out)["name"], "testvm");
}

#[test]
fn fds_that_cannot_be_used_are_usage_errors() {
    let dir = qmp_testkit::tempdir();
    let file = std::fs::File::create(dir.path().join("plain-file")).unwrap();
    let fd = file.as_raw_fd().to_string();
    let out = qmp_with_fd(&["--fd", &fd, "query-status"], file.into());
    out.assert_code(2);
    assert!(out.stderr.contains(&format!("fd {fd} is not a socket (a regular file)")), "{out:?}");

    let (r, w) = nix::unistd::pipe().unwrap();
    let fd = r.as_raw_fd().to_string();
    let out = qmp_with_fd(&["--fd", &fd, "query-status"], r);
    drop(w);
    out.assert_code(2);
    assert!(out.stderr.contains("is not a socket (a pipe)"), "{out:?}");

    let datagram = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let fd = datagram.as_raw_fd().to_string();
    let out = qmp_with_fd(&["--fd", &fd, "query-status"], datagram.into());
    out.assert_code(2);
    assert!(out.stderr.contains("a datagram socket, not a stream socket"), "{out:?}");

    for (argv, needle) in [
        (&["--fd", "987", "query-status"][..], "fd 987 is not open"),
        (&["--fd", "three", "query-status"], "is not a file descriptor number"),
        (&["--fd=-1", "query-status"], "-1 is not a file descriptor number"),
        (&["--fd", "0", "query-status"], "fd 0 is not a socket (a character device)"),
    ] {
        let out = qmp(argv);
        out.assert_code(2);
        assert!(out.stderr.contains(needle), "{argv:?}: {needle:?} not in {:?}", out.stderr);
    }
    // A good socket, with options it cannot go with.
    for extra in [&["-s", "/x"][..], &["--wait", "3"], &["--sim"]] {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let fd = ours.as_raw_fd().to_string();
        let mut argv = vec!["--fd", fd.as_str()];
        argv.extend_from_slice(extra);
        argv.push("query-status");
        let out = qmp_with_fd(&argv, ours.into());
        out.assert_code(2);
        assert!(out.stderr.contains("cannot be used with"), "{argv:?}: {:?}", out.stderr);
    }
    let (ours, _theirs) = UnixStream::pair().unwrap();
    let fd = ours.as_raw_fd().to_string();
    let out = qmp_with_fd(&["--fd", &fd, "--tls-ca", "/ca.pem", "query-status"], ours.into());
    out.assert_code(2);
    assert!(out.stderr.contains("are for tls:HOST:PORT addresses, not --fd"), "{out:?}");
}
