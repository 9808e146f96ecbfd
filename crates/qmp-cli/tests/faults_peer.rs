//! The one-shot `qmp` against scripted peers that misbehave after the connection is made: a
//! peer that greets and then says nothing, one that sends half a reply and goes silent, and
//! replies carrying ids we never sent. Each must end with a clear message and a documented
//! exit code, never a hang and never a wrong answer printed as the command's result. The
//! default limits (30 s for the negotiation, 60 s for a command) are waited for here for real:
//! these tests run side by side, so the file takes about a minute.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::command;

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n";

/// Reads one request (a line) from the client.
fn read_request(s: &mut UnixStream) -> Value {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\n") {
        if s.read(&mut byte).unwrap() == 0 {
            panic!("client hung up after {:?}", String::from_utf8_lossy(&buf));
        }
        buf.push(byte[0]);
    }
    serde_json::from_slice(&buf).unwrap()
}

/// A one-client peer at a fresh socket: greets, then runs `script` on the connection.
fn peer(
    script: impl FnOnce(UnixStream) + Send + 'static,
) -> (tempfile::TempDir, String, thread::JoinHandle<()>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(GREETING).unwrap();
        script(s);
    });
    (dir, path.to_str().unwrap().to_owned(), server)
}

/// Negotiates on the peer's side: answers `qmp_capabilities`.
fn negotiate(s: &mut UnixStream) {
    let caps = read_request(s);
    assert_eq!(caps["execute"], "qmp_capabilities");
    s.write_all(format!("{{\"return\": {{}}, \"id\": {}}}\r\n", caps["id"]).as_bytes()).unwrap();
}

/// Keeps the connection open, reading until the client leaves.
fn linger(mut s: UnixStream) {
    let mut buf = [0u8; 256];
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// Runs `qmp ARGS` against `path` with no limit of the test's own below `limit`.
fn run(path: &str, args: &[&str], env: &[(&str, &str)], limit: Duration) -> (support::Output, Duration) {
    let mut full = vec!["-s", path];
    full.extend_from_slice(args);
    let mut cmd = command(&full);
    cmd.env_remove("QMP_TIMEOUT").envs(env.iter().copied());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let started = Instant::now();
    let out = support::finish(cmd.spawn().unwrap(), limit);
    (out, started.elapsed())
}

#[test]
fn a_peer_silent_after_the_greeting_ends_the_one_shot_at_the_negotiation_bound() {
    let (_dir, path, server) = peer(|mut s| {
        read_request(&mut s); // qmp_capabilities, never answered
        linger(s);
    });
    let (out, took) = run(&path, &["query-status"], &[], Duration::from_secs(50));
    out.assert_code(3);
    assert!(out.stderr.contains("qmp_capabilities") && out.stderr.contains("30s"), "{:?}", out.stderr);
    assert!(took >= Duration::from_secs(30) && took < Duration::from_secs(40), "took {took:?}");
    assert_eq!(out.stdout, "");
    server.join().unwrap();
}

#[test]
fn half_a_reply_then_silence_ends_the_one_shot_at_the_default_limit() {
    let (_dir, path, server) = peer(|mut s| {
        negotiate(&mut s);
        read_request(&mut s);
        s.write_all(b"{\"return\": {\"status\": \"runn").unwrap();
        linger(s);
    });
    let (out, took) = run(&path, &["query-status"], &[], Duration::from_secs(90));
    out.assert_code(4);
    assert!(out.stderr.contains("timed out after 60s") && out.stderr.contains("default"), "{:?}", out.stderr);
    assert!(took >= Duration::from_secs(60) && took < Duration::from_secs(70), "took {took:?}");
    server.join().unwrap();
}

#[test]
fn qmp_timeout_in_the_environment_sets_the_limit_and_the_option_overrides_it() {
    let silent = |mut s: UnixStream| {
        negotiate(&mut s);
        read_request(&mut s);
        linger(s);
    };
    let (_dir, path, server) = peer(silent);
    let (out, took) = run(&path, &["query-status"], &[("QMP_TIMEOUT", "0.5")], Duration::from_secs(20));
    out.assert_code(4);
    assert!(
        out.stderr.contains("timed out after 500ms") && out.stderr.contains("QMP_TIMEOUT"),
        "{:?}",
        out.stderr
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    server.join().unwrap();

    let (_dir, path, server) = peer(silent);
    let (out, _) =
        run(&path, &["--timeout", "0.3", "query-status"], &[("QMP_TIMEOUT", "50")], Duration::from_secs(20));
    out.assert_code(4);
    assert_eq!(out.stderr, "qmp: timed out after 300ms\n");
    server.join().unwrap();

    let (out, _) = run(&path, &["query-status"], &[("QMP_TIMEOUT", "soon")], Duration::from_secs(20));
    out.assert_code(2);
    assert!(out.stderr.contains("QMP_TIMEOUT"), "{:?}", out.stderr);
}

#[test]
fn timeout_zero_waits_for_a_slow_reply() {
    // A reply after 1.5 s, with QMP_TIMEOUT=1 in force: --timeout 0 overrides it and waits.
    let (_dir, path, server) = peer(|mut s| {
        negotiate(&mut s);
        let req = read_request(&mut s);
        thread::sleep(Duration::from_millis(1500));
        s.write_all(format!("{{\"return\": {{\"late\": true}}, \"id\": {}}}\r\n", req["id"]).as_bytes())
            .unwrap();
        linger(s);
    });
    let (out, _) =
        run(&path, &["--timeout", "0", "query-status"], &[("QMP_TIMEOUT", "1")], Duration::from_secs(20));
    out.assert_code(0);
    assert_eq!(out.stdout, "{\"late\":true}\n");
    server.join().unwrap();
}

#[test]
fn a_reply_with_an_id_we_never_sent_is_not_printed_as_the_answer() {
    for foreign in ["\"1\"", "null", "\"str\"", "-1", "1.5", "[1]", "{}"] {
        // Wrong replies only, then the peer hangs up: no answer, so exit 3 and nothing printed.
        let (_dir, path, server) = peer(move |mut s| {
            negotiate(&mut s);
            read_request(&mut s);
            s.write_all(format!("{{\"return\": \"wrong\", \"id\": {foreign}}}\r\n").as_bytes()).unwrap();
            s.write_all(b"{\"return\": \"wrong\"}\r\n").unwrap();
        });
        let (out, _) = run(&path, &["query-status"], &[], Duration::from_secs(20));
        out.assert_code(3);
        assert_eq!(out.stdout, "", "id {foreign}");
        server.join().unwrap();

        // Wrong replies first, then the right one: the right one is printed.
        let (_dir, path, server) = peer(move |mut s| {
            negotiate(&mut s);
            let req = read_request(&mut s);
            s.write_all(format!("{{\"return\": \"wrong\", \"id\": {foreign}}}\r\n").as_bytes()).unwrap();
            s.write_all(format!("{{\"return\": \"right\", \"id\": {}}}\r\n", req["id"]).as_bytes()).unwrap();
            linger(s);
        });
        let (out, _) = run(&path, &["query-status"], &[], Duration::from_secs(20));
        out.assert_code(0);
        assert_eq!(out.stdout, "\"right\"\n", "id {foreign}");
        server.join().unwrap();
    }
}
