//! Shutting down with a client that does not read: its connection must still end.

use std::time::{Duration, Instant};

use qmp_server::{CommandSpec, Server};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Before the fix a connection blocked writing to a client that never reads ignored
/// `Server::shutdown` for good: its task, its socket and its slot under the connection cap
/// stayed. Now it gets a second to finish writing and is then dropped, while a client that
/// reads still gets everything, its last reply included.
#[tokio::test]
async fn shutdown_no_longer_waits_forever_for_a_client_that_never_reads() {
    let big = serde_json::Value::String("x".repeat(256 << 10));
    let server = Server::builder().command(CommandSpec::new("big"), move |_| Ok(big.clone())).build();
    let dir = tempfile::Builder::new().prefix("qmp-stuck-").tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let listener = qmp_server::bind_unix(&path).unwrap();
    tokio::spawn({
        let s = server.clone();
        async move { s.serve_unix(listener).await }
    });

    // The stuck client: negotiated, then 100 large replies asked for and none read.
    let mut stuck = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());
    let mut line = String::new();
    stuck.read_line(&mut line).await.unwrap();
    stuck.get_mut().write_all(b"{\"execute\": \"qmp_capabilities\"}").await.unwrap();
    line.clear();
    stuck.read_line(&mut line).await.unwrap();
    assert_eq!(line, "{\"return\": {}}\r\n");
    for _ in 0..100 {
        stuck.get_mut().write_all(b"{\"execute\": \"big\"}").await.unwrap();
    }
    // A reader, connected alongside.
    let mut reader = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());
    line.clear();
    reader.read_line(&mut line).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.connections() != 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let t = Instant::now();
    server.shutdown();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut rest)).await.unwrap().unwrap();
    while server.connections() != 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the stuck client's connection outlived shutdown by 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(900), "the stuck client got its grace period: {took:?}");
    // The stuck client, reading at last, gets part of what it asked for and then EOF.
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stuck.read_to_end(&mut got)).await.unwrap().unwrap();
    assert!(got.len() < 100 * (256 << 10), "{} bytes", got.len());
    eprintln!("shutdown ended a stuck connection after {took:?}; it had been sent {} KiB", got.len() >> 10);
}
