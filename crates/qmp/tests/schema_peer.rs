//! `check_arguments` against a scripted peer: a server that refuses `query-qmp-schema` fails
//! checked calls with a clear error and is asked again by the next call; concurrent calls
//! share one fetch.

use std::time::Duration;

use qmp::{Client, Error};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n";
const T: Duration = Duration::from_secs(5);

/// Reads one request (the client ends each with a newline).
async fn request(peer: &mut UnixStream, pending: &mut Vec<u8>) -> Value {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            return serde_json::from_slice(&line).unwrap();
        }
        let n = peer.read(&mut chunk).await.unwrap();
        assert!(n > 0, "client hung up");
        pending.extend_from_slice(&chunk[..n]);
    }
}

async fn reply(peer: &mut UnixStream, req: &Value, body: Value) {
    let mut msg = body;
    msg["id"] = req["id"].clone();
    peer.write_all(format!("{msg}\r\n").as_bytes()).await.unwrap();
}

fn schema() -> Value {
    json!([
        {"name": "ping", "meta-type": "command", "arg-type": "1", "ret-type": "0"},
        {"name": "0", "meta-type": "object", "members": []},
        {"name": "1", "meta-type": "object", "members": [{"name": "n", "type": "int", "default": null}]},
        {"name": "int", "meta-type": "builtin", "json-type": "int"},
    ])
}

#[tokio::test]
async fn a_refused_schema_is_a_clear_error_and_asked_for_again() {
    let (ours, mut peer) = UnixStream::pair().unwrap();
    let client = tokio::spawn(Client::builder().timeout(T).check_arguments(true).connect_unix_stream(ours));
    let mut pending = Vec::new();
    peer.write_all(GREETING).await.unwrap();
    let caps = request(&mut peer, &mut pending).await;
    assert_eq!(caps["execute"], "qmp_capabilities");
    reply(&mut peer, &caps, json!({"return": {}})).await;
    let client = client.await.unwrap().unwrap();

    // First call: the server refuses the schema; the call is not sent.
    let first = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("ping", json!({"n": 1})).send().await }
    });
    let req = request(&mut peer, &mut pending).await;
    assert_eq!(req["execute"], "query-qmp-schema");
    let refusal = json!({"error": {"class": "CommandNotFound", "desc": "The command query-qmp-schema has not been found"}});
    reply(&mut peer, &req, refusal).await;
    let err = first.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::Unsupported(m) if m.contains("cannot check the arguments of ping")),
        "{err:?}"
    );

    // Next calls: asked again, once for two calls at once; the bad one is refused here, the
    // good one sent.
    let (bad, good) = (client.clone(), client.clone());
    let bad = tokio::spawn(async move { bad.call_raw("ping", json!({"n": "one"})).send().await });
    let good = tokio::spawn(async move { good.call_raw("ping", json!({"n": 1})).send().await });
    let req = request(&mut peer, &mut pending).await;
    assert_eq!(req["execute"], "query-qmp-schema");
    reply(&mut peer, &req, json!({"return": schema()})).await;
    let sent = request(&mut peer, &mut pending).await;
    assert_eq!((sent["execute"].as_str(), &sent["arguments"]), (Some("ping"), &json!({"n": 1})));
    reply(&mut peer, &sent, json!({"return": {}})).await;
    assert_eq!(good.await.unwrap().unwrap(), json!({}));
    let err = bad.await.unwrap().unwrap_err();
    assert_eq!(err.to_string(), "invalid arguments for ping: 'n': expected int, got string \"one\"");
    // Nothing else was sent.
    let ping = tokio::spawn({
        let c = client.clone();
        async move { c.call_raw("unknown-here", Value::Null).send().await }
    });
    let next = request(&mut peer, &mut pending).await;
    assert_eq!(next["execute"], "unknown-here");
    reply(&mut peer, &next, json!({"return": 7})).await;
    assert_eq!(ping.await.unwrap().unwrap(), json!(7));
}
