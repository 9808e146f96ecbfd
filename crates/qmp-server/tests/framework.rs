//! The framework on its own: a custom server with sync and async commands, checked over raw
//! in-memory and unix-socket connections.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use qmp_server::schema::{Struct, Ty};
use qmp_server::{CommandSpec, Server};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn server() -> Server {
    Server::builder()
        .version(1, 2, 3, "-test")
        .command(CommandSpec::new("echo").arg("v", Ty::Any).returns(Ty::Any), |a| Ok(a["v"].clone()))
        .command_async(CommandSpec::new("sleep").arg("ms", Ty::Uint), |a| async move {
            tokio::time::sleep(Duration::from_millis(a["ms"].as_u64().unwrap_or(0))).await;
            Ok(json!({"slept": a["ms"]}))
        })
        .command(CommandSpec::new("ping").allow_oob(), |_| Ok(json!("pong")))
        .event("TICK", Struct::new().member("n", Ty::Int))
        .max_message_size(1024)
        .build()
}

/// Reads lines from an async reader until `n` lines have arrived.
async fn lines<R: AsyncReadExt + Unpin>(r: &mut R, buf: &mut Vec<u8>, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        while let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            out.push(String::from_utf8(buf.drain(..=pos).collect()).unwrap());
            if out.len() == n {
                return out;
            }
        }
        let mut chunk = [0u8; 4096];
        let k = tokio::time::timeout(Duration::from_secs(5), r.read(&mut chunk))
            .await
            .expect("timed out")
            .unwrap();
        assert!(k > 0, "closed early; got {out:?}");
        buf.extend_from_slice(&chunk[..k]);
    }
}

#[tokio::test]
async fn greeting_negotiation_and_in_order_replies() {
    let s = server();
    let (client, conn) = tokio::io::duplex(1 << 16);
    tokio::spawn({
        let s = s.clone();
        async move { s.serve_stream(conn).await }
    });
    let (mut r, mut w) = tokio::io::split(client);
    let mut buf = Vec::new();
    let g = lines(&mut r, &mut buf, 1).await;
    assert_eq!(
        g[0],
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 3, \"minor\": 2, \"major\": 1}, \"package\": \"-test\"}, \"capabilities\": [\"oob\"]}}\r\n"
    );
    // A slow async command, then fast sync ones: replies stay in request order.
    w.write_all(b"{'execute':'qmp_capabilities'}{\"execute\":\"sleep\",\"arguments\":{\"ms\":50},\"id\":1}")
        .await
        .unwrap();
    w.write_all(
        b"{\"execute\":\"echo\",\"arguments\":{\"v\":[1,\"x\"]},\"id\":2}{\"execute\":\"echo\",\"id\":3}",
    )
    .await
    .unwrap();
    let got = lines(&mut r, &mut buf, 4).await;
    assert_eq!(
        got,
        [
            "{\"return\": {}}\r\n",
            "{\"return\": {\"slept\": 50}, \"id\": 1}\r\n",
            "{\"return\": [1, \"x\"], \"id\": 2}\r\n",
            "{\"id\": 3, \"error\": {\"class\": \"GenericError\", \"desc\": \"Parameter 'v' is missing\"}}\r\n",
        ]
    );
}

#[tokio::test]
async fn oob_overtakes_a_slow_in_band_command() {
    let s = server();
    let (client, conn) = tokio::io::duplex(1 << 16);
    tokio::spawn({
        let s = s.clone();
        async move { s.serve_stream(conn).await }
    });
    let (mut r, mut w) = tokio::io::split(client);
    let mut buf = Vec::new();
    lines(&mut r, &mut buf, 1).await;
    w.write_all(b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\"]}}").await.unwrap();
    lines(&mut r, &mut buf, 1).await;
    w.write_all(b"{\"execute\":\"sleep\",\"arguments\":{\"ms\":300},\"id\":\"slow\"}{\"exec-oob\":\"ping\",\"id\":\"oob\"}")
        .await
        .unwrap();
    let got = lines(&mut r, &mut buf, 2).await;
    assert_eq!(got[0], "{\"return\": \"pong\", \"id\": \"oob\"}\r\n");
    assert_eq!(got[1], "{\"return\": {\"slept\": 300}, \"id\": \"slow\"}\r\n");
}

#[tokio::test]
async fn events_reach_every_negotiated_client_only() {
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sock");
    let listener = qmp_server::bind_unix(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "sockets are private by default");
    tokio::spawn({
        let s = s.clone();
        async move { s.serve_unix(listener).await }
    });
    let mut clients = Vec::new();
    for negotiate in [true, true, false] {
        let mut c = tokio::net::UnixStream::connect(&path).await.unwrap();
        let mut buf = Vec::new();
        lines(&mut c, &mut buf, 1).await;
        if negotiate {
            c.write_all(b"{\"execute\":\"qmp_capabilities\"}").await.unwrap();
            lines(&mut c, &mut buf, 1).await;
        }
        clients.push((c, buf));
    }
    s.events().emit("TICK", Some(json!({"n": 1})));
    s.events().emit("TOCK", None);
    for (c, buf) in &mut clients[..2] {
        let got = lines(c, buf, 2).await;
        assert!(got[0].ends_with("\"event\": \"TICK\", \"data\": {\"n\": 1}}\r\n"), "{got:?}");
        assert!(got[0].starts_with("{\"timestamp\": {\"seconds\": "), "{got:?}");
        assert!(got[1].ends_with("\"event\": \"TOCK\"}\r\n"), "{got:?}");
    }
    // The unnegotiated client got nothing: its next line answers its own request.
    let (c, buf) = &mut clients[2];
    c.write_all(b"{\"execute\":\"echo\"}").await.unwrap();
    let got = lines(c, buf, 1).await;
    assert!(got[0].contains("Expecting capabilities negotiation"), "{got:?}");
    s.shutdown();
}

#[test]
fn size_cap_and_introspection_over_a_real_socket() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let s = server();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sock");
    let listener = rt.block_on(async { qmp_server::bind_unix(&path) }).unwrap();
    rt.spawn({
        let s = s.clone();
        async move { s.serve_unix(listener).await }
    });
    let mut c =
        common::Raw { stream: std::os::unix::net::UnixStream::connect(&path).unwrap(), buf: Vec::new() };
    c.stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    c.greeting();
    c.step(b"{\"execute\":\"qmp_capabilities\"}", 0);
    let big = format!("{{\"execute\":\"echo\",\"arguments\":{{\"v\":\"{}\"}}}}", "x".repeat(2000));
    let got = c.step(big.as_bytes(), 1);
    assert_eq!(
        got[0],
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"JSON token size limit exceeded\"}}\r\n"
    );
    // Still usable afterwards.
    assert_eq!(c.step(b"{\"execute\":\"echo\",\"arguments\":{\"v\":1}}", 2), ["{\"return\": 1}\r\n"]);

    c.send(b"{\"execute\":\"query-commands\",\"id\":\"c\"}");
    let got = c.read_until(Duration::from_secs(5), |l| !l.is_empty());
    let v: Value = serde_json::from_str(&got[0]).unwrap();
    let names: Vec<&str> =
        v["return"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    for n in ["qmp_capabilities", "echo", "sleep", "ping", "query-commands", "query-qmp-schema"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }

    c.send(b"{\"execute\":\"query-qmp-schema\",\"id\":\"s\"}");
    let got = c.read_until(Duration::from_secs(5), |l| !l.is_empty());
    let v: Value = serde_json::from_str(&got[0]).unwrap();
    let schema = v["return"].as_array().unwrap();
    let find = |name: &str| schema.iter().find(|e| e["name"] == name).cloned().unwrap_or(Value::Null);
    let ping = find("ping");
    assert_eq!(ping["meta-type"], "command");
    assert_eq!(ping["allow-oob"], true);
    let sleep = find("sleep");
    let args = find(sleep["arg-type"].as_str().unwrap());
    assert_eq!(args["members"], json!([{"name": "ms", "type": "int"}]));
    assert_eq!(find("TICK")["meta-type"], "event");
    assert_eq!(find("int")["json-type"], "int");
    s.shutdown();
}

#[tokio::test]
async fn oob_not_offered() {
    let s = Server::builder().oob(false).build();
    let (client, conn) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move { s.serve_stream(conn).await });
    let (mut r, mut w) = tokio::io::split(client);
    let mut buf = Vec::new();
    let g = lines(&mut r, &mut buf, 1).await;
    assert!(g[0].ends_with("\"capabilities\": []}}\r\n"), "{g:?}");
    w.write_all(b"{\"execute\":\"qmp_capabilities\",\"arguments\":{\"enable\":[\"oob\",\"oob\"]}}")
        .await
        .unwrap();
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}{\"exec-oob\":\"query-commands\"}").await.unwrap();
    let got = lines(&mut r, &mut buf, 3).await;
    assert_eq!(
        got,
        [
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Capability oob, oob not available\"}}\r\n",
            "{\"return\": {}}\r\n",
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"QMP input member 'exec-oob' is unexpected\"}}\r\n",
        ]
    );
}

#[tokio::test]
async fn a_long_pipeline_behind_a_slow_command_is_all_answered() {
    let s = server();
    let (client, conn) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move { s.serve_stream(conn).await });
    let (mut r, mut w) = tokio::io::split(client);
    let mut buf = Vec::new();
    lines(&mut r, &mut buf, 1).await;
    let mut burst =
        b"{\"execute\":\"qmp_capabilities\"}{\"execute\":\"sleep\",\"arguments\":{\"ms\":20}}".to_vec();
    for i in 0..200 {
        burst.extend_from_slice(format!("{{\"execute\":\"echo\",\"arguments\":{{\"v\":{i}}}}}").as_bytes());
    }
    w.write_all(&burst).await.unwrap();
    let got = lines(&mut r, &mut buf, 202).await;
    assert_eq!(got[1], "{\"return\": {\"slept\": 20}}\r\n");
    for (i, line) in got[2..].iter().enumerate() {
        assert_eq!(*line, format!("{{\"return\": {i}}}\r\n"));
    }
}

#[tokio::test]
async fn bind_replaces_stale_sockets_but_never_other_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.sock");
    drop(qmp_server::bind_unix(&path).unwrap());
    assert!(path.exists(), "a stale socket is left behind");
    let _second = qmp_server::bind_unix(&path).expect("a stale socket is replaced");
    let file = dir.path().join("precious.txt");
    std::fs::write(&file, "data").unwrap();
    let err = qmp_server::bind_unix(&file).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "data");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers.len(), 2, "no private bind directories left: {leftovers:?}");
}
