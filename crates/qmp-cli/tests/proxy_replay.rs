//! `qmp proxy --record` then `qmp replay`: the same client script against the recording gets
//! the same replies and events as it got from real QEMU through the proxy.

mod proxy_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use proxy_support::{proxy, untimed, Peer, Proc, Raw};

/// The client script: each step's input, and the lines it reads (up to the step's id).
const SCRIPT: &[(&str, &str)] = &[
    ("{\"execute\": \"query-status\", \"id\": 1}", "\"id\": 1"),
    ("{\"execute\": \"stop\", \"id\": \"two\"}", "\"id\": \"two\""),
    ("{\"execute\": \"query-status\", \"id\": [3]}", "\"id\": [3]"),
    ("{\"execute\": \"cont\", \"id\": 4}{\"execute\": \"query-name\", \"id\": 5}", "\"id\": 5"),
    ("{\"execute\": \"qom-list\", \"arguments\": {\"path\": \"/machine\"}, \"id\": 6}", "\"id\": 6"),
    ("{\"execute\": \"nope\", \"id\": 7}", "\"id\": 7"),
];

fn run_script(sock: &Path) -> Vec<String> {
    let mut r = Raw::connect(sock);
    let mut lines = vec![r.line()];
    r.send(b"{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}");
    lines.push(r.line());
    for (input, until) in SCRIPT {
        r.send(input.as_bytes());
        lines.extend(r.until(until));
    }
    lines
}

fn replay(dir: &Path, rec: &Path, strict: bool) -> (Proc, std::path::PathBuf) {
    let sock = dir.join(if strict { "strict.sock" } else { "replay.sock" });
    let mut args = vec!["replay", rec.to_str().unwrap(), "--socket", sock.to_str().unwrap()];
    if strict {
        args.push("--strict");
    }
    let log = dir.join(if strict { "strict.log" } else { "replay.log" });
    (Proc::start(&args, &[&sock], log), sock)
}

#[test]
fn a_recorded_session_replays_with_identical_replies_and_events() {
    let started = Instant::now();
    let peer = Peer::qemu(1);
    let sock = peer.dir().join("proxy.sock");
    let rec = peer.dir().join("session.jsonl");
    let p = proxy(&peer, &["--listen", sock.to_str().unwrap(), "--record", rec.to_str().unwrap()], &[&sock]);
    let live = run_script(&sock);
    drop(p);
    assert!(live.iter().any(|l| l.contains("\"event\": \"STOP\"")), "{live:#?}");
    assert_eq!(std::fs::metadata(&rec).unwrap().permissions().mode() & 0o777, 0o600);

    // The record: both directions, the client's ids and the proxy's, the peer's credentials.
    let text = std::fs::read_to_string(&rec).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let stop_in =
        lines.iter().find(|l| l["dir"] == "in" && l["msg"]["execute"] == "stop").expect("stop recorded");
    assert_eq!(stop_in["id"], "two");
    assert!(stop_in["call"].is_u64() && stop_in["uid"].is_u64() && stop_in["pid"].is_u64(), "{stop_in}");
    let stop_out =
        lines.iter().find(|l| l["dir"] == "out" && l["call"] == stop_in["call"]).expect("its reply");
    assert_eq!(stop_out["msg"], serde_json::json!({"return": {}, "id": "two"}));

    let (_replay, rsock) = replay(peer.dir(), &rec, false);
    let replayed = run_script(&rsock);
    let strip = |v: &[String]| v.iter().map(|l| untimed(l)).collect::<Vec<_>>();
    assert_eq!(strip(&replayed), strip(&live));
    // In fact byte for byte: the replay keeps the recorded timestamps.
    assert_eq!(replayed, live);

    // A request the recording does not have gets an error naming what it expected.
    let mut r = Raw::negotiated(&rsock);
    r.send(b"{\"execute\": \"query-block\", \"id\": 1}");
    assert_eq!(
        r.line(),
        "{\"id\": 1, \"error\": {\"class\": \"GenericError\", \"desc\": \"Replay: query-block is not in the recording here; the next recorded request is query-status\"}}"
    );
    // ... and the replay goes on from where it was.
    r.send(b"{\"execute\": \"query-status\", \"id\": 2}");
    assert!(r.line().contains("\"status\": \"running\""));
    eprintln!("record and replay: {:?}", started.elapsed());
}

#[test]
fn a_strict_replay_ends_at_the_first_mismatch() {
    let peer = Peer::qemu(1);
    let sock = peer.dir().join("proxy.sock");
    let rec = peer.dir().join("session.jsonl");
    let p = proxy(&peer, &["--listen", sock.to_str().unwrap(), "--record", rec.to_str().unwrap()], &[&sock]);
    run_script(&sock);
    drop(p);
    let (mut replay, rsock) = replay(peer.dir(), &rec, true);
    let mut r = Raw::negotiated(&rsock);
    r.send(b"{\"execute\": \"query-status\", \"id\": 1}{\"execute\": \"cont\", \"id\": 2}");
    assert!(r.line().contains("\"status\": \"running\""));
    let err = r.line();
    assert!(
        err.contains("Replay: cont is not in the recording here; the next recorded request is stop"),
        "{err}"
    );
    r.eof_within(Duration::from_secs(5));
    assert_eq!(replay.wait(Duration::from_secs(5)), Some(1), "{}", replay.stderr());
    assert!(replay.stderr().contains("cont is not in the recording"), "{}", replay.stderr());
}

#[test]
fn a_block_job_on_qemu_storage_daemon_replays_with_its_events() {
    let peer = Peer::storage_daemon(1);
    let sock = peer.dir().join("proxy.sock");
    let rec = peer.dir().join("job.jsonl");
    let script = |sock: &Path| -> Vec<String> {
        let mut r = Raw::negotiated(sock);
        r.send(b"{\"execute\": \"block-stream\", \"arguments\": {\"job-id\": \"job0\", \"device\": \"top0\"}, \"id\": \"s\"}");
        // The job's events come after the reply, up to its end.
        let mut lines = r.until("\"concluded\"");
        lines.extend(r.until("\"null\""));
        r.send(b"{\"execute\": \"query-block-jobs\", \"id\": \"q\"}");
        lines.extend(r.until("\"id\": \"q\""));
        lines
    };
    let p = proxy(&peer, &["--listen", sock.to_str().unwrap(), "--record", rec.to_str().unwrap()], &[&sock]);
    let live = script(&sock);
    drop(p);
    assert!(live.iter().any(|l| l.contains("BLOCK_JOB_COMPLETED")), "{live:#?}");
    let (_replay, rsock) = replay(peer.dir(), &rec, false);
    let replayed = script(&rsock);
    let strip = |v: &[String]| v.iter().map(|l| untimed(l)).collect::<Vec<_>>();
    assert_eq!(strip(&replayed), strip(&live));
}
