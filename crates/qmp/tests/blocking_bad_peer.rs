//! The blocking client against scripted peers over a socket pair: split and merged replies,
//! peers that break the protocol or die, slow subscribers. Each failure must be a clear error
//! at once, never a panic, a hang or unbounded memory.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::thread;
use std::time::{Duration, Instant};

use qmp::blocking::Client;
use qmp::{CloseReason, Error, EventFilter, NegotiationStep, ProtocolFault, RecvError};
use serde_json::{json, Value};

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n";
const T: Duration = Duration::from_secs(5);

/// Reads from the client until `n` complete requests (counted by their closing newline).
fn read_requests(peer: &mut UnixStream, n: usize) -> Vec<Value> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while buf.iter().filter(|&&b| b == b'\n').count() < n {
        let got = peer.read(&mut chunk).unwrap();
        assert!(got > 0, "client hung up");
        buf.extend_from_slice(&chunk[..got]);
    }
    buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

fn event(name: &str, n: u64) -> String {
    format!("{{\"event\": \"{name}\", \"data\": {{\"n\": {n}}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}}}\r\n")
}

/// A connected client (negotiated, oob on) and the scripted peer's end.
fn pair(builder: qmp::ClientBuilder) -> (Client, UnixStream) {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let client = thread::spawn(move || Client::from_unix_stream(builder.timeout(T), ours));
    peer.write_all(GREETING).unwrap();
    let caps = read_requests(&mut peer, 1);
    assert_eq!(caps[0]["execute"], "qmp_capabilities");
    assert_eq!(caps[0]["arguments"], json!({"enable": ["oob"]}));
    peer.write_all(format!("{{\"return\": {{}}, \"id\": {}}}\r\n", caps[0]["id"]).as_bytes()).unwrap();
    (client.join().unwrap().unwrap(), peer)
}

#[test]
fn replies_split_merged_and_out_of_order_reach_their_own_threads() {
    let (client, mut peer) = pair(qmp::Client::builder());
    let mut events = client.subscribe(EventFilter::name("X"));
    let a = thread::spawn({
        let c = client.clone();
        move || c.call_raw("a", Value::Null).send()
    });
    let b = thread::spawn({
        let c = client.clone();
        move || c.call_raw("b", Value::Null).send()
    });
    let reqs = read_requests(&mut peer, 2);
    let id_of = |name: &str| reqs.iter().find(|r| r["execute"] == name).unwrap()["id"].clone();
    // In reverse order, an event between, no newlines, cut mid-object.
    let out = format!(
        "{{\"return\": \"B\", \"id\": {}}}{}{{\"return\": \"A\", \"id\": {}}}",
        id_of("b"),
        event("X", 1).trim_end(),
        id_of("a")
    );
    let (first, second) = out.as_bytes().split_at(out.len() / 2 + 3);
    peer.write_all(first).unwrap();
    thread::sleep(Duration::from_millis(20));
    peer.write_all(second).unwrap();
    assert_eq!(a.join().unwrap().unwrap(), "A");
    assert_eq!(b.join().unwrap().unwrap(), "B");
    assert_eq!(events.try_recv().unwrap().unwrap().data_value()["n"], 1);
}

#[test]
fn a_peer_that_dies_mid_reply_fails_the_call_at_once() {
    let (client, mut peer) = pair(qmp::Client::builder());
    let call = thread::spawn(move || client.call_raw("query-status", Value::Null).send());
    read_requests(&mut peer, 1);
    peer.write_all(b"{\"return\": {\"status\": \"runn").unwrap();
    let t = Instant::now();
    drop(peer);
    let err = call.join().unwrap().unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(1));
    assert!(err.is_disconnect(), "{err}");
    assert!(matches!(err, Error::Disconnected(CloseReason::ClosedMidMessage)), "{err}");
}

#[test]
fn invalid_json_ends_the_connection_with_a_clear_error() {
    let (client, mut peer) = pair(qmp::Client::builder());
    let call = thread::spawn({
        let c = client.clone();
        move || c.call_raw("query-status", Value::Null).send()
    });
    read_requests(&mut peer, 1);
    peer.write_all(b"{\"return\": nope}\r\n").unwrap();
    let err = call.join().unwrap().unwrap_err();
    assert!(err.close_reason().is_some_and(CloseReason::is_protocol_fault), "{err}");
    assert!(client.is_closed());
    assert!(client.call_raw("query-status", Value::Null).send().unwrap_err().is_disconnect());
}

#[test]
fn a_message_over_the_cap_ends_the_connection_without_buffering_it() {
    let (client, mut peer) = pair(qmp::Client::builder().max_message_size(64 * 1024));
    let call = thread::spawn(move || client.call_raw("query-status", Value::Null).send());
    read_requests(&mut peer, 1);
    // 1 MiB inside one string; the client gives up once it is over the cap, so the write may
    // fail when it hangs up.
    let writer = thread::spawn(move || {
        let _ = peer.write_all(b"{\"return\": \"");
        let _ = peer.write_all(&vec![b'x'; 1 << 20]);
        peer
    });
    let err = call.join().unwrap().unwrap_err();
    assert!(
        matches!(err, Error::Disconnected(CloseReason::TooLarge { limit: 65536 })),
        "names the cap: {err}"
    );
    assert!(err.is_disconnect(), "{err}");
    drop(writer.join().unwrap());
}

#[test]
fn no_greeting_is_a_protocol_error_not_a_hang() {
    let (ours, _peer) = UnixStream::pair().unwrap();
    let t = Instant::now();
    let err = Client::from_unix_stream(qmp::Client::builder().timeout(Duration::from_millis(200)), ours)
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(ProtocolFault::NegotiationTimeout { step: NegotiationStep::Greeting, .. })
        ),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_peer_that_hangs_up_before_the_greeting_is_a_disconnect() {
    let (ours, peer) = UnixStream::pair().unwrap();
    drop(peer);
    let err = Client::from_unix_stream(qmp::Client::builder(), ours).unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    assert!(matches!(err, Error::Disconnected(CloseReason::NoGreeting)), "{err}");
}

#[test]
fn connecting_to_nothing_is_a_connect_error() {
    let dir = qmp_testkit::tempdir();
    let err = Client::connect(dir.path().join("none.sock")).unwrap_err();
    assert!(err.is_connect(), "{err}");
}

#[test]
fn a_slow_subscriber_is_told_how_many_events_it_lost() {
    let (client, mut peer) = pair(qmp::Client::builder().event_queue(4));
    let mut sub = client.subscribe(EventFilter::name("E"));
    let mut other = client.subscribe(EventFilter::name("F"));
    for n in 0..10 {
        peer.write_all(event("E", n).as_bytes()).unwrap();
    }
    peer.write_all(event("F", 0).as_bytes()).unwrap();
    // Reading F makes the client read all ten E before it.
    assert_eq!(other.recv_timeout(T).unwrap().name, "F");
    assert_eq!(sub.len(), 4);
    assert_eq!(sub.recv(), Err(RecvError::Lagged(6)));
    let kept: Vec<Value> = (0..4).map(|_| sub.recv().unwrap().data_value()["n"].clone()).collect();
    assert_eq!(kept, [6, 7, 8, 9]);
    assert!(sub.try_recv().is_none());
    drop(peer);
    assert!(matches!(sub.recv(), Err(RecvError::Closed(_))));
}

#[test]
fn a_panicking_event_filter_does_not_leave_the_others_waiting() {
    let (client, mut peer) = pair(qmp::Client::builder());
    let _bad = client.subscribe(EventFilter::any().matching(|e| e.name != "BOOM" || panic!("filter")));
    let reader = thread::spawn({
        let c = client.clone();
        move || c.call_raw("a", Value::Null).send()
    });
    let id = read_requests(&mut peer, 1)[0]["id"].clone();
    peer.write_all(event("BOOM", 0).as_bytes()).unwrap();
    assert!(reader.join().is_err(), "the filter's panic reaches the thread that read the event");
    // The panicked call is forgotten (its late reply discarded); the next caller reads on.
    peer.write_all(format!("{{\"return\": 1, \"id\": {id}}}\r\n").as_bytes()).unwrap();
    let next = thread::spawn({
        let c = client.clone();
        move || c.call_raw("b", Value::Null).send()
    });
    let id = read_requests(&mut peer, 1)[0]["id"].clone();
    peer.write_all(format!("{{\"return\": 2, \"id\": {id}}}\r\n").as_bytes()).unwrap();
    assert_eq!(next.join().unwrap().unwrap(), 2);
}

/// The ids a reply may carry that this client never sent: none of them may complete a call.
const FOREIGN_IDS: &[&str] = &["\"1\"", "\"str\"", "\"2\"", "null", "-1", "1.5", "1.0", "[1]", "{}"];

#[test]
fn a_reply_with_an_id_we_never_sent_is_not_taken_as_the_pending_calls_answer() {
    let (client, mut peer) = pair(qmp::Client::builder());
    let call = thread::spawn(move || client.call_raw("x", Value::Null).send());
    let id = read_requests(&mut peer, 1)[0]["id"].clone();
    // Every foreign id, and a reply with no id at all, before the real answer.
    let mut out =
        String::from("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n");
    for foreign in FOREIGN_IDS {
        out.push_str(&format!("{{\"return\": \"wrong\", \"id\": {foreign}}}\r\n"));
    }
    out.push_str(&format!("{{\"return\": \"right\", \"id\": {id}}}\r\n"));
    peer.write_all(out.as_bytes()).unwrap();
    assert_eq!(call.join().unwrap().unwrap(), "right");
}

#[test]
fn a_call_answered_only_with_foreign_ids_times_out_instead_of_taking_one() {
    let (client, mut peer) = pair(qmp::Client::builder());
    let call = thread::spawn(move || {
        client.with_timeout(Duration::from_millis(300)).call_raw("x", Value::Null).send()
    });
    read_requests(&mut peer, 1);
    for foreign in FOREIGN_IDS.iter().chain(&["\"absent\""]) {
        let reply = if *foreign == "\"absent\"" {
            "{\"return\": \"wrong\"}\r\n".to_string()
        } else {
            format!("{{\"return\": \"wrong\", \"id\": {foreign}}}\r\n")
        };
        peer.write_all(reply.as_bytes()).unwrap();
    }
    let err = call.join().unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

/// A peer that greets and then says nothing, or half a reply, to `qmp_capabilities`.
fn silent_after_greeting(half_reply: bool) -> Error {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let bound = Duration::from_millis(300);
    let t = Instant::now();
    let client = thread::spawn(move || {
        // No call timeout: only the negotiation's own bound may end it.
        Client::from_unix_stream(qmp::Client::builder().negotiation_timeout(bound), ours)
    });
    peer.write_all(GREETING).unwrap();
    read_requests(&mut peer, 1);
    if half_reply {
        peer.write_all(b"{\"return\": {").unwrap();
    }
    let err = client.join().unwrap().unwrap_err();
    assert!(t.elapsed() >= bound && t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    err
}

#[test]
fn a_peer_silent_after_the_greeting_fails_the_negotiation_instead_of_hanging() {
    for half_reply in [false, true] {
        let err = silent_after_greeting(half_reply);
        assert!(matches!(err, Error::Protocol(_)), "{err}");
        assert!(
            matches!(
                err,
                Error::Protocol(ProtocolFault::NegotiationTimeout {
                    step: NegotiationStep::Capabilities,
                    ..
                })
            ),
            "{err}"
        );
    }
}

#[test]
fn a_subscription_is_an_iterator_that_ends_after_the_close() {
    let (client, mut peer) = pair(qmp::Client::builder().event_queue(2));
    let mut sub = client.subscribe(EventFilter::name("E"));
    // Nothing yet: the timeout variant says so without ending the iteration.
    assert!(sub.next_timeout(Duration::from_millis(20)).is_none());
    for n in 0..3 {
        peer.write_all(event("E", n).as_bytes()).unwrap();
    }
    peer.write_all(event("F", 9).as_bytes()).unwrap();
    drop(peer);
    let first = sub.next_timeout(T).unwrap();
    assert_eq!(first, Err(RecvError::Lagged(1)));
    let items: Vec<_> = sub.by_ref().collect();
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().data_value()["n"], 1);
    assert_eq!(items[1].as_ref().unwrap().data_value()["n"], 2);
    assert_eq!(items[2], Err(RecvError::Closed(CloseReason::PeerClosed)));
    assert!(sub.next().is_none() && sub.next_timeout(T).is_none());
}

#[test]
fn a_calls_options_apply_to_it_alone() {
    let (client, mut peer) = pair(qmp::Client::builder());
    let t = Instant::now();
    let err = client.call_raw("slow", ()).timeout(Duration::from_millis(50)).send().unwrap_err();
    assert!(err.is_timeout() && t.elapsed() < Duration::from_secs(2), "{err}");
    let call = thread::spawn({
        let c = client.clone();
        move || c.call_raw("yank", json!({"instances": []})).oob().raw_json().send()
    });
    let reqs = read_requests(&mut peer, 2);
    assert_eq!(reqs[0]["execute"], "slow");
    assert_eq!(reqs[1]["exec-oob"], "yank");
    peer.write_all(format!("{{\"return\": {{\"a\": [1, 2]}}, \"id\": {}}}\r\n", reqs[1]["id"]).as_bytes())
        .unwrap();
    assert_eq!(call.join().unwrap().unwrap().get(), "{\"a\": [1, 2]}");
}
