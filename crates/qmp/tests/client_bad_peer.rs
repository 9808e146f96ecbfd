//! The client against peers that break the protocol: each failure must be a clear error at
//! once, never a panic, a hang or unbounded memory. Real QEMU never misbehaves like this, so
//! these peers are scripted over a socket pair.

use std::time::Duration;

use qmp::{Client, CloseReason, Error, EventFilter, NegotiationStep, ProtocolFault};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": [\"oob\"]}}\r\n";
const T: Duration = Duration::from_secs(5);

/// Reads from the client until `n` complete requests (counted by their closing newline).
async fn read_requests(peer: &mut UnixStream, n: usize) -> Vec<Value> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while buf.iter().filter(|&&b| b == b'\n').count() < n {
        let got = peer.read(&mut chunk).await.unwrap();
        assert!(got > 0, "client hung up");
        buf.extend_from_slice(&chunk[..got]);
    }
    buf.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect()
}

/// A connected client (negotiated, oob on) and the scripted peer's end.
async fn pair(builder: qmp::ClientBuilder) -> (Client, UnixStream) {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let client = tokio::spawn(builder.timeout(T).connect_unix_stream(ours));
    peer.write_all(GREETING).await.unwrap();
    let caps = read_requests(&mut peer, 1).await;
    assert_eq!(caps[0]["execute"], "qmp_capabilities");
    assert_eq!(caps[0]["arguments"], json!({"enable": ["oob"]}));
    let reply = format!("{{\"return\": {{}}, \"id\": {}}}\r\n", caps[0]["id"]);
    peer.write_all(reply.as_bytes()).await.unwrap();
    (client.await.unwrap().unwrap(), peer)
}

#[tokio::test]
async fn replies_without_newlines_split_and_merged_are_routed_by_id() {
    let (client, mut peer) = pair(Client::builder()).await;
    let a = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("a", Value::Null).send().await }
    });
    let b = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("b", Value::Null).send().await }
    });
    let reqs = read_requests(&mut peer, 2).await;
    let id_of = |name: &str| reqs.iter().find(|r| r["execute"] == name).unwrap()["id"].clone();
    // Answer in reverse order, with an event between, no newlines, cut mid-object.
    let out = format!(
        "{{\"return\": \"B\", \"id\": {}}}{{\"event\": \"X\", \"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}}}{{\"return\": \"A\", \"id\": {}}}",
        id_of("b"),
        id_of("a")
    );
    let (first, second) = out.as_bytes().split_at(out.len() / 2 + 3);
    peer.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    peer.write_all(second).await.unwrap();
    assert_eq!(a.await.unwrap().unwrap(), "A");
    assert_eq!(b.await.unwrap().unwrap(), "B");
}

#[tokio::test]
async fn a_peer_that_dies_mid_reply_fails_the_call_at_once() {
    let (client, mut peer) = pair(Client::builder()).await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.without_timeout().call_raw("query-status", Value::Null).send().await }
    });
    read_requests(&mut peer, 1).await;
    peer.write_all(b"{\"return\": {\"status\": \"runn").await.unwrap();
    drop(peer);
    let err = tokio::time::timeout(T, call).await.expect("no hang").unwrap().unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    assert!(matches!(err, Error::Disconnected(CloseReason::ClosedMidMessage)), "{err}");
}

#[tokio::test]
async fn invalid_json_from_the_peer_ends_the_connection_with_a_clear_error() {
    let (client, mut peer) = pair(Client::builder()).await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("x", Value::Null).send().await }
    });
    read_requests(&mut peer, 1).await;
    peer.write_all(b"{\"return\": nope}\r\n").await.unwrap();
    let err = call.await.unwrap().unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    assert!(err.close_reason().is_some_and(CloseReason::is_protocol_fault), "{err}");
}

#[tokio::test]
async fn a_message_over_the_cap_ends_the_connection_without_buffering_it() {
    let (client, mut peer) = pair(Client::builder().max_message_size(64 * 1024)).await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("x", Value::Null).send().await }
    });
    read_requests(&mut peer, 1).await;
    let writer = tokio::spawn(async move {
        let _ = peer.write_all(b"{\"return\": \"").await;
        let junk = vec![b'a'; 1 << 20];
        for _ in 0..8 {
            if peer.write_all(&junk).await.is_err() {
                break;
            }
        }
    });
    let err = call.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Disconnected(CloseReason::TooLarge { .. })), "{err}");
    writer.await.unwrap();
}

#[tokio::test]
async fn unknown_messages_and_members_never_break_decoding() {
    let (client, mut peer) = pair(Client::builder()).await;
    let mut events = client.subscribe(EventFilter::name("NEW_EVENT"));
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("x", Value::Null).send().await }
    });
    let id = read_requests(&mut peer, 1).await[0]["id"].clone();
    let out = format!(
        "{{\"something\": \"new\"}}\r\n{{\"event\": \"NEW_EVENT\", \"data\": {{\"who\": 1}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 0}}, \"extra\": true}}\r\n{{\"return\": 5, \"id\": {id}, \"future\": [1]}}\r\n"
    );
    peer.write_all(out.as_bytes()).await.unwrap();
    assert_eq!(call.await.unwrap().unwrap(), json!(5));
    let ev = events.recv().await.unwrap();
    assert_eq!(ev.data_value(), json!({"who": 1}));
    assert_eq!(ev.extra["extra"], json!(true));
}

#[tokio::test]
async fn an_unknown_error_class_is_kept() {
    let (client, mut peer) = pair(Client::builder()).await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("x", Value::Null).send().await }
    });
    let id = read_requests(&mut peer, 1).await[0]["id"].clone();
    let out = format!("{{\"error\": {{\"class\": \"BrandNew\", \"desc\": \"it broke\"}}, \"id\": {id}}}\r\n");
    peer.write_all(out.as_bytes()).await.unwrap();
    let err = call.await.unwrap().unwrap_err();
    let e = err.qmp_error().unwrap();
    assert_eq!(e.class, qmp::ErrorClass::Other("BrandNew".into()));
    assert_eq!(err.to_string(), "BrandNew: it broke");
}

#[tokio::test]
async fn no_greeting_is_a_protocol_error_not_a_hang() {
    let (ours, _peer) = UnixStream::pair().unwrap();
    let err =
        Client::builder().timeout(Duration::from_millis(200)).connect_unix_stream(ours).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Protocol(ProtocolFault::NegotiationTimeout { step: NegotiationStep::Greeting, .. })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_peer_that_hangs_up_before_the_greeting_is_a_disconnect() {
    let (ours, peer) = UnixStream::pair().unwrap();
    drop(peer);
    let err = Client::builder().timeout(T).connect_unix_stream(ours).await.unwrap_err();
    assert!(err.is_disconnect(), "{err}");
}

#[tokio::test]
async fn connecting_to_nothing_is_a_connect_error() {
    let dir = qmp_testkit::tempdir();
    let err = Client::connect(dir.path().join("absent.sock")).await.unwrap_err();
    assert!(err.is_connect(), "{err}");
    assert!(err.to_string().contains("absent.sock"), "{err}");
    let err = Client::connect("tcp:nonsense").await.unwrap_err();
    assert!(matches!(err, Error::Address(_)), "{err}");
}

#[tokio::test]
async fn a_garbage_flood_before_the_greeting_cannot_grow_memory() {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let connect = tokio::spawn(Client::builder().timeout(T).max_message_size(4096).connect_unix_stream(ours));
    // An endless string: the framer must give up at the cap, not buffer it.
    let _ = peer.write_all(b"\"").await;
    let junk = vec![b'x'; 64 * 1024];
    for _ in 0..64 {
        if peer.write_all(&junk).await.is_err() {
            break;
        }
    }
    let err = connect.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Disconnected(CloseReason::TooLarge { .. })), "{err}");
}

#[tokio::test]
async fn a_return_of_null_is_a_return_not_a_protocol_error() {
    let (client, mut peer) = pair(Client::builder()).await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("x", Value::Null).send().await }
    });
    let id = read_requests(&mut peer, 1).await[0]["id"].clone();
    peer.write_all(format!("{{\"return\": null, \"id\": {id}}}\r\n").as_bytes()).await.unwrap();
    assert_eq!(call.await.unwrap().unwrap(), Value::Null);
}

/// The ids a reply may carry that this client never sent: none of them may complete a call.
const FOREIGN_IDS: &[&str] = &["\"1\"", "\"str\"", "\"2\"", "null", "-1", "1.5", "1.0", "[1]", "{}"];

#[tokio::test]
async fn a_reply_with_an_id_we_never_sent_is_not_taken_as_the_pending_calls_answer() {
    let (client, mut peer) = pair(Client::builder()).await;
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("x", Value::Null).send().await }
    });
    let id = read_requests(&mut peer, 1).await[0]["id"].clone();
    let mut out =
        String::from("{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON parse error\"}}\r\n");
    for foreign in FOREIGN_IDS {
        out.push_str(&format!("{{\"return\": \"wrong\", \"id\": {foreign}}}\r\n"));
    }
    out.push_str(&format!("{{\"return\": \"right\", \"id\": {id}}}\r\n"));
    peer.write_all(out.as_bytes()).await.unwrap();
    assert_eq!(call.await.unwrap().unwrap(), "right");
}

#[tokio::test]
async fn a_call_answered_only_with_foreign_ids_times_out_instead_of_taking_one() {
    let (client, mut peer) = pair(Client::builder()).await;
    let call = tokio::spawn({
        let c = client.with_timeout(Duration::from_millis(300));
        async move { c.call_raw("x", Value::Null).send().await }
    });
    read_requests(&mut peer, 1).await;
    peer.write_all(b"{\"return\": \"wrong\"}\r\n").await.unwrap();
    for foreign in FOREIGN_IDS {
        peer.write_all(format!("{{\"return\": \"wrong\", \"id\": {foreign}}}\r\n").as_bytes()).await.unwrap();
    }
    let err = call.await.unwrap().unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

/// A peer that greets and then says nothing, or half a reply, to `qmp_capabilities`.
async fn silent_after_greeting(half_reply: bool) -> Error {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let bound = Duration::from_millis(300);
    let t = std::time::Instant::now();
    // No call timeout: only the negotiation's own bound may end it.
    let client = tokio::spawn(Client::builder().negotiation_timeout(bound).connect_unix_stream(ours));
    peer.write_all(GREETING).await.unwrap();
    read_requests(&mut peer, 1).await;
    if half_reply {
        peer.write_all(b"{\"return\": {").await.unwrap();
    }
    let err = client.await.unwrap().unwrap_err();
    assert!(t.elapsed() >= bound && t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    err
}

#[tokio::test]
async fn a_peer_silent_after_the_greeting_fails_the_negotiation_instead_of_hanging() {
    for half_reply in [false, true] {
        let err = silent_after_greeting(half_reply).await;
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

/// The next item of a stream, through the trait alone.
async fn next_item<S: qmp::Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx)).await
}

#[tokio::test]
async fn a_subscription_is_a_stream_that_ends_after_the_close() {
    let (client, mut peer) = pair(Client::builder().event_queue(2)).await;
    let mut sub = client.subscribe(EventFilter::name("E"));
    // Pending while nothing has come.
    assert!(tokio::time::timeout(Duration::from_millis(20), next_item(&mut sub)).await.is_err());
    let mut out = String::new();
    for n in 0..3 {
        out += &format!("{{\"event\": \"E\", \"data\": {{\"n\": {n}}}, \"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}}}\r\n");
    }
    out += "{\"event\": \"F\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n";
    peer.write_all(out.as_bytes()).await.unwrap();
    drop(peer);
    assert_eq!(tokio::time::timeout(T, client.closed()).await.unwrap(), CloseReason::PeerClosed);
    let mut items = Vec::new();
    while let Some(item) = tokio::time::timeout(T, next_item(&mut sub)).await.unwrap() {
        items.push(item);
    }
    assert_eq!(items.len(), 4, "{items:?}");
    assert_eq!(items[0], Err(qmp::RecvError::Lagged(1)));
    assert_eq!(items[1].as_ref().unwrap().data_value()["n"], 1);
    assert_eq!(items[2].as_ref().unwrap().data_value()["n"], 2);
    assert_eq!(items[3], Err(qmp::RecvError::Closed(CloseReason::PeerClosed)));
    assert!(next_item(&mut sub).await.is_none());
}

#[tokio::test]
async fn a_waiting_stream_is_woken_by_an_event() {
    let (client, mut peer) = pair(Client::builder()).await;
    let mut sub = client.subscribe(EventFilter::any());
    let waiting = tokio::spawn(async move { next_item(&mut sub).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    peer.write_all(b"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}\r\n")
        .await
        .unwrap();
    let item = tokio::time::timeout(T, waiting).await.unwrap().unwrap();
    assert_eq!(item.unwrap().unwrap().name, "STOP");
}

#[tokio::test]
async fn a_calls_options_apply_to_it_alone() {
    let (client, mut peer) = pair(Client::builder()).await;
    // This call's own timeout, though the client's is 5 s.
    let t = std::time::Instant::now();
    let err = client.call_raw("slow", ()).timeout(Duration::from_millis(50)).send().await.unwrap_err();
    assert!(err.is_timeout() && t.elapsed() < Duration::from_secs(2), "{err}");
    // exec-oob and raw JSON on the wire and back.
    let call = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("yank", json!({"instances": []})).oob().raw_json().send().await }
    });
    let reqs = read_requests(&mut peer, 2).await;
    assert_eq!(reqs[0]["execute"], "slow");
    assert_eq!(reqs[1]["exec-oob"], "yank");
    let out = format!("{{\"return\": {{\"a\": [1, 2]}}, \"id\": {}}}\r\n", reqs[1]["id"]);
    peer.write_all(out.as_bytes()).await.unwrap();
    assert_eq!(call.await.unwrap().unwrap().get(), "{\"a\": [1, 2]}");
}
