//! A peer that dies, or goes silent, at every stage of the exchange: before the greeting,
//! halfway through it, after it, after reading `qmp_capabilities`, halfway through its reply,
//! after reading a command, and halfway through the command's reply. Both clients must end
//! every case with the right kind of error (a disconnect when the peer died; the negotiation
//! bound or the call's timeout when it went silent), quickly, and never hang or panic.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use qmp::{Error, ProtocolFault};
use serde_json::Value;

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n";
const BOUND: Duration = Duration::from_millis(300);

/// Where the peer stops.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    Accepted,
    HalfGreeting,
    Greeted,
    ReadCapabilities,
    HalfCapabilitiesReply,
    ReadCommand,
    HalfReply,
}

const STAGES: [Stage; 7] = [
    Stage::Accepted,
    Stage::HalfGreeting,
    Stage::Greeted,
    Stage::ReadCapabilities,
    Stage::HalfCapabilitiesReply,
    Stage::ReadCommand,
    Stage::HalfReply,
];

impl Stage {
    /// Whether the client is negotiated by the time the peer stops.
    fn negotiated(self) -> bool {
        matches!(self, Stage::ReadCommand | Stage::HalfReply)
    }
}

fn read_line(s: &mut UnixStream) -> Value {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "client hung up");
        buf.push(byte[0]);
    }
    serde_json::from_slice(&buf).unwrap()
}

/// Plays the peer up to `stage`, then hangs up (`dies`) or keeps the socket open, silent,
/// until the client leaves.
fn play(mut s: UnixStream, stage: Stage, dies: bool) {
    steps(&mut s, stage);
    if !dies {
        let mut sink = [0u8; 256];
        while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
    }
}

/// The peer's part of the exchange, up to `stage`.
fn steps(s: &mut UnixStream, stage: Stage) {
    {
        if stage == Stage::Accepted {
            return;
        }
        if stage == Stage::HalfGreeting {
            s.write_all(&GREETING[..GREETING.len() / 2]).unwrap();
            return;
        }
        s.write_all(GREETING).unwrap();
        if stage == Stage::Greeted {
            return;
        }
        let caps = read_line(s);
        match stage {
            Stage::ReadCapabilities => return,
            Stage::HalfCapabilitiesReply => {
                s.write_all(b"{\"return\": {").unwrap();
                return;
            }
            _ => {}
        }
        s.write_all(format!("{{\"return\": {{}}, \"id\": {}}}\r\n", caps["id"]).as_bytes()).unwrap();
        read_line(s);
        if stage == Stage::HalfReply {
            s.write_all(b"{\"return\": {\"status\": \"runn").unwrap();
        }
    }
}

/// Checks the error a case ended with, and how long it took.
fn check(stage: Stage, dies: bool, result: Result<Value, Error>, took: Duration) {
    let case = format!("{stage:?}, {}", if dies { "dies" } else { "silent" });
    let err = result.expect_err(&case);
    if dies {
        assert!(err.is_disconnect(), "{case}: {err}");
        assert!(took < Duration::from_secs(2), "{case}: {took:?}");
    } else if stage.negotiated() {
        assert!(err.is_timeout(), "{case}: {err}");
    } else {
        assert!(
            matches!(err, Error::Protocol(ProtocolFault::NegotiationTimeout { .. })) && err.is_timeout(),
            "{case}: {err}"
        );
    }
    if !dies {
        assert!(took >= BOUND && took < BOUND * 8, "{case}: {took:?}");
    }
}

#[test]
fn the_blocking_client_ends_every_stage_with_the_right_error() {
    for stage in STAGES {
        for dies in [true, false] {
            let (ours, peer) = UnixStream::pair().unwrap();
            let peer = thread::spawn(move || play(peer, stage, dies));
            let t = Instant::now();
            let result = qmp::blocking::Client::from_unix_stream(
                qmp::Client::builder().negotiation_timeout(BOUND),
                ours,
            )
            .and_then(|c| c.with_timeout(BOUND).call_raw("query-status", Value::Null).send());
            check(stage, dies, result, t.elapsed());
            peer.join().unwrap();
        }
    }
}

#[tokio::test]
async fn the_async_client_ends_every_stage_with_the_right_error() {
    for stage in STAGES {
        for dies in [true, false] {
            let (ours, peer) = UnixStream::pair().unwrap();
            ours.set_nonblocking(true).unwrap();
            let peer = thread::spawn(move || play(peer, stage, dies));
            let t = Instant::now();
            let ours = tokio::net::UnixStream::from_std(ours).unwrap();
            let result = async {
                let c = qmp::Client::builder().negotiation_timeout(BOUND).connect_unix_stream(ours).await?;
                c.with_timeout(BOUND).call_raw("query-status", Value::Null).send().await
            }
            .await;
            check(stage, dies, result, t.elapsed());
            // The connection's task closes our end once the client is dropped: let it run.
            tokio::task::spawn_blocking(move || peer.join().unwrap()).await.unwrap();
        }
    }
}
