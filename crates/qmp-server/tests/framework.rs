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

/// A server whose `take` command reports how many descriptors were passed with the message
/// it takes them from, and keeps the first under `name` (dropping the last reference closes
/// it); `drop` forgets one.
fn fd_server() -> Server {
    use std::collections::HashMap;
    use std::os::fd::OwnedFd;
    use std::sync::{Arc, Mutex};
    let kept: Arc<Mutex<HashMap<String, OwnedFd>>> = Arc::default();
    let k2 = kept.clone();
    Server::builder()
        .command_with_context(CommandSpec::new("take").arg("name", Ty::Str), move |a, cx| {
            let held = cx.fds_held();
            let fd = cx.take_fd().ok_or_else(|| {
                qmp_server::QmpError::new(qmp_server::ErrorClass::GenericError, "nothing passed")
            })?;
            kept.lock().unwrap().insert(a["name"].as_str().unwrap().into(), fd);
            Ok(json!({"held": held}))
        })
        .command(CommandSpec::new("drop").arg("name", Ty::Str), move |a| {
            k2.lock().unwrap().remove(a["name"].as_str().unwrap());
            Ok(json!({}))
        })
        .command_async(CommandSpec::new("sleep").arg("ms", Ty::Uint), |a| async move {
            tokio::time::sleep(Duration::from_millis(a["ms"].as_u64().unwrap_or(0))).await;
            Ok(json!({}))
        })
        .build()
}

/// Sends `bytes` on `sock` with `fds` attached.
fn send_fds(sock: &std::os::unix::net::UnixStream, bytes: &[u8], fds: &[std::os::fd::RawFd]) {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    use std::os::fd::AsRawFd;
    let cmsg = [ControlMessage::ScmRights(fds)];
    sendmsg::<()>(sock.as_raw_fd(), &[std::io::IoSlice::new(bytes)], &cmsg, MsgFlags::empty(), None).unwrap();
}

/// Whether the server still holds the read end of the pipe whose write end is `w`.
fn pipe_open(w: &mut std::fs::File) -> bool {
    use std::io::Write;
    match w.write_all(b"x") {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
        Err(e) => panic!("{e}"),
    }
}

fn pipe() -> (std::os::fd::OwnedFd, std::fs::File) {
    let (r, w) = nix::unistd::pipe().unwrap();
    (r, std::fs::File::from(w))
}

/// qemu.qmp's `send_fd_scm` sends one space carrying the descriptor, then the request. The
/// kernel ends a read after bytes that carried descriptors, so after that one-byte read the
/// request is still waiting although nothing new will arrive to say so. Here both arrive
/// while the server is busy (a command that blocks its one thread), and the client reads
/// nothing that would wake the server: the pipe passed shows whether `take` ran (it closes it).
#[test]
fn a_descriptor_sent_ahead_of_its_request_is_taken_by_it() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::fd::AsRawFd;
    let (client, conn) = std::os::unix::net::UnixStream::pair().unwrap();
    conn.set_nonblocking(true).unwrap();
    let server = Server::builder()
        .command(CommandSpec::new("block"), |_| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(json!({}))
        })
        .command_with_context(CommandSpec::new("take-and-close"), |_, cx| {
            Ok(json!({"took": cx.take_fd().is_some()}))
        })
        .build();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let conn = tokio::net::UnixStream::from_std(conn).unwrap();
            server.serve_unix_stream(conn).await
        })
    });
    let mut rd = BufReader::new(client.try_clone().unwrap());
    let mut greeting = String::new();
    rd.read_line(&mut greeting).unwrap();
    (&client).write_all(br#"{"execute": "qmp_capabilities"}"#).unwrap();
    let mut reply = String::new();
    rd.read_line(&mut reply).unwrap();
    assert_eq!(reply.trim(), r#"{"return": {}}"#);
    std::thread::sleep(Duration::from_millis(50));

    let (r, mut w) = pipe();
    (&client).write_all(br#"{"execute": "block"}"#).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    send_fds(&client, b" ", &[r.as_raw_fd()]);
    (&client).write_all(br#"{"execute": "take-and-close"}"#).unwrap();
    drop(r);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pipe_open(&mut w) {
        assert!(std::time::Instant::now() < deadline, "the request after the descriptor was left unread");
        std::thread::sleep(Duration::from_millis(5));
    }
    for want in [r#"{"return": {}}"#, r#"{"return": {"took": true}}"#] {
        let mut line = String::new();
        rd.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), want);
    }
}

/// Descriptors held as QEMU holds them: a later message's replace the earlier (closed); of a
/// message's several, the first is taken and the rest closed; a request queued behind a slow
/// one gets the descriptor sent with its own bytes; what no command took is closed when the
/// client leaves; TCP connections carry none.
#[test]
fn descriptors_are_held_replaced_taken_and_closed() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::fd::AsRawFd;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fd.sock");
    let server = fd_server();
    let listener = rt.block_on(async { qmp_server::bind_unix(&path) }).unwrap();
    rt.spawn({
        let s = server.clone();
        async move { s.serve_unix(listener).await }
    });
    let sock = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let mut rd = BufReader::new(sock.try_clone().unwrap());
    let mut line = || {
        let mut l = String::new();
        rd.read_line(&mut l).unwrap();
        l.trim().to_string()
    };
    line();
    (&sock).write_all(br#"{"execute": "qmp_capabilities"}"#).unwrap();
    assert_eq!(line(), r#"{"return": {}}"#);

    let (r0, mut w0) = pipe();
    let (r1, mut w1) = pipe();
    let (r2, mut w2) = pipe();
    send_fds(&sock, br#"{"execute": "sleep", "arguments": {"ms": 1}}"#, &[r0.as_raw_fd()]);
    send_fds(&sock, b" ", &[r1.as_raw_fd(), r2.as_raw_fd()]);
    (&sock).write_all(br#"{"execute": "take", "arguments": {"name": "x"}}"#).unwrap();
    drop((r0, r1, r2));
    assert_eq!(line(), r#"{"return": {}}"#);
    assert_eq!(line(), r#"{"return": {"held": 2}}"#);
    assert!(!pipe_open(&mut w0), "replaced by the later message's");
    assert!(pipe_open(&mut w1), "the first of the message's, taken");
    assert!(!pipe_open(&mut w2), "the rest of the message's, closed");

    // Behind a slow command, a request still gets the descriptor sent with it.
    let (r3, mut w3) = pipe();
    (&sock).write_all(br#"{"execute": "sleep", "arguments": {"ms": 200}}"#).unwrap();
    send_fds(&sock, br#"{"execute": "take", "arguments": {"name": "y"}}"#, &[r3.as_raw_fd()]);
    drop(r3);
    assert_eq!(line(), r#"{"return": {}}"#);
    assert_eq!(line(), r#"{"return": {"held": 1}}"#);
    assert!(pipe_open(&mut w3));
    (&sock).write_all(br#"{"execute": "drop", "arguments": {"name": "y"}}"#).unwrap();
    assert_eq!(line(), r#"{"return": {}}"#);
    assert!(!pipe_open(&mut w3), "dropped by the server, so closed");

    // Passed but never taken: closed when the client leaves.
    let (r4, mut w4) = pipe();
    send_fds(&sock, br#"{"execute": "sleep", "arguments": {"ms": 0}}"#, &[r4.as_raw_fd()]);
    drop(r4);
    assert_eq!(line(), r#"{"return": {}}"#);
    assert!(pipe_open(&mut w4), "held for a later command");
    drop(rd);
    drop(sock);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while pipe_open(&mut w4) {
        assert!(std::time::Instant::now() < deadline, "still open after the client left");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(pipe_open(&mut w1), "what a command took is the server's");
}
