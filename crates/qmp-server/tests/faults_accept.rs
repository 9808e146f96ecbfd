//! Fault tests of the accept loop and the connection cap: a server out of file descriptors
//! (in a child process with a low `RLIMIT_NOFILE`) and a server at its cap.

mod faults_support;

use std::io::Read;
use std::time::{Duration, Instant};

use faults_support::{raise_own_fd_limit, Raw, ServerProcess};
use qmp_server::Server;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The child's entry point (see `faults_support`); a no-op in a normal run.
#[test]
fn fault_server_child() {
    faults_support::child_main_if_asked();
}

/// Before the fix, the first accept() failing with EMFILE ended `serve_unix`: the listener
/// was closed, the process lived on with its socket file in place, and every later client
/// was refused forever. Now the loop pauses and accepts again once descriptors are freed.
#[test]
fn a_failed_accept_no_longer_stops_the_server_accepting() {
    const FD_LIMIT: usize = 256;
    const CLIENTS: usize = FD_LIMIT * 3 / 2;
    assert!(raise_own_fd_limit() as usize > CLIENTS + 64, "this test needs {CLIENTS}+ fds of its own");
    // The default cap (512) is above the limit, so the server runs out of descriptors first.
    let mut server = ServerProcess::start(&[("QMP_FAULT_NOFILE", &FD_LIMIT.to_string())]);
    let mut clients: Vec<Raw> = (0..CLIENTS).map(|_| Raw::connect(server.path()).unwrap()).collect();

    // The backlog is accepted in order: greetings up to the limit, then silence (the rest
    // wait in the backlog while the server has no descriptor to take them with).
    let mut greeted = 0;
    for c in &mut clients {
        c.reader.get_ref().set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
        let mut line = String::new();
        match std::io::BufRead::read_line(&mut c.reader, &mut line) {
            Ok(n) if n > 0 => {
                assert!(line.starts_with("{\"QMP\": "), "{line:?}");
                greeted += 1;
            }
            _ => break,
        }
    }
    assert!(
        (FD_LIMIT - 32..FD_LIMIT).contains(&greeted),
        "{greeted} of {CLIENTS} clients greeted by a server limited to {FD_LIMIT} fds"
    );
    for c in &mut clients[greeted + 1..] {
        c.reader.get_ref().set_nonblocking(true).unwrap();
        let mut byte = [0u8; 1];
        let r = c.reader.get_mut().read(&mut byte);
        assert!(
            matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "a client beyond the fd limit got {r:?}"
        );
    }
    assert!(server.alive(), "the server died out of descriptors");

    // Everyone leaves; a newcomer is served as if nothing had happened.
    drop(clients);
    let left = Instant::now();
    let mut newcomer = Raw::connect(server.path()).expect("the listener still accepts");
    newcomer.negotiate();
    let recovered = left.elapsed();
    let status = newcomer.query_status();
    assert!(status.starts_with("{\"return\": {\"status\": \"running\""), "{status:?}");
    assert!(recovered < Duration::from_secs(5), "recovering took {recovered:?}");
    drop(newcomer);

    let log = server.stop_log();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("cannot accept connections")).collect();
    assert_eq!(warnings.len(), 1, "one warning per episode; log:\n{log}");
    assert!(warnings[0].starts_with("WARN ") && warnings[0].contains("Too many open files"), "{log}");
    let recoveries: Vec<&str> = log.lines().filter(|l| l.contains("accepting again after")).collect();
    assert_eq!(recoveries.len(), 1, "one recovery line; log:\n{log}");
    assert!(recoveries[0].starts_with("INFO "), "{log}");
    eprintln!(
        "greeted {greeted} of {CLIENTS}; newcomer served {recovered:?} after all left; {}",
        recoveries[0]
    );
}

/// With the cap below the fd limit, the clients over it are refused with QMP's error
/// object, and those that wait in the backlog meanwhile (the refusals hold descriptors too)
/// are refused as well, none left hanging.
#[test]
fn clients_over_the_cap_are_refused_even_while_out_of_descriptors() {
    const FD_LIMIT: usize = 256;
    const CAP: usize = 200;
    const CLIENTS: usize = FD_LIMIT * 3 / 2;
    assert!(raise_own_fd_limit() as usize > CLIENTS + 64, "this test needs {CLIENTS}+ fds of its own");
    let mut server = ServerProcess::start(&[
        ("QMP_FAULT_NOFILE", &FD_LIMIT.to_string()),
        ("QMP_FAULT_MAX_CONNECTIONS", &CAP.to_string()),
    ]);
    let started = Instant::now();
    let mut clients: Vec<Raw> = (0..CLIENTS).map(|_| Raw::connect(server.path()).unwrap()).collect();
    let refusal = format!(
        "{{\"error\": {{\"class\": \"GenericError\", \"desc\": \"Too many QMP connections: this server serves \
         at most {CAP} at once; try again later\"}}}}\r\n"
    );
    let (mut greeted, mut refused) = (0, 0);
    for (i, c) in clients.iter_mut().enumerate() {
        let line = c.line();
        if line.starts_with("{\"QMP\": ") {
            greeted += 1;
        } else {
            assert_eq!(line, refusal, "client {i}");
            assert_eq!(c.line(), "", "client {i}: EOF after the refusal");
            refused += 1;
        }
    }
    let all_answered = started.elapsed();
    assert_eq!((greeted, refused), (CAP, CLIENTS - CAP));
    assert!(server.alive());
    // The served ones are still served.
    assert!(clients[0].query_status().contains("CommandNotFound"), "not negotiated yet");
    drop(clients);
    let mut newcomer = Raw::connect_negotiated(server.path());
    assert!(newcomer.query_status().starts_with("{\"return\": {\"status\": \"running\""));
    drop(newcomer);
    let log = server.stop_log();
    assert!(log.contains("200 clients connected; refusing more until one leaves"), "{log}");
    eprintln!("{CLIENTS} clients: {greeted} greeted, {refused} refused, all answered in {all_answered:?}");
}

fn temp_socket() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new().prefix("qmp-cap-").tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    (dir, path)
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The cap at the framework level, over unix and TCP: n clients are served, the n+1th gets
/// the error and EOF, and once one leaves a new one is served.
#[tokio::test]
async fn the_client_over_the_cap_gets_an_error_and_eof_then_the_next_is_served() {
    let server = Server::builder().max_connections(2).build();
    let (_dir, path) = temp_socket();
    let unix = qmp_server::bind_unix(&path).unwrap();
    tokio::spawn({
        let s = server.clone();
        async move { s.serve_unix(unix).await }
    });
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    tokio::spawn({
        let s = server.clone();
        async move { s.serve_tcp(tcp).await }
    });
    let expected =
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Too many QMP connections: this server \
                    serves at most 2 at once; try again later\"}}\r\n";

    async fn first_line<S: tokio::io::AsyncRead + Unpin>(s: &mut BufReader<S>) -> String {
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_line(&mut line)).await.unwrap().unwrap();
        line
    }
    let mut a = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());
    assert!(first_line(&mut a).await.starts_with("{\"QMP\": "));
    let mut b = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    assert!(first_line(&mut b).await.starts_with("{\"QMP\": "));
    assert_eq!(server.connections(), 2);

    // Over the cap on either listener; the TCP one has sent a request before reading, and
    // still reads the whole refusal (no reset).
    let mut c = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());
    assert_eq!(first_line(&mut c).await, expected);
    assert_eq!(first_line(&mut c).await, "", "EOF after the refusal");
    let mut d = tokio::net::TcpStream::connect(addr).await.unwrap();
    d.write_all(b"{\"execute\": \"qmp_capabilities\"}").await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), d.read_to_end(&mut got)).await.unwrap().unwrap();
    assert_eq!(String::from_utf8(got).unwrap(), expected);
    assert_eq!(server.connections(), 2, "refused clients are not counted");

    // The served ones are unaffected.
    let a_stream = a.get_mut();
    a_stream.write_all(b"{\"execute\": \"qmp_capabilities\"}").await.unwrap();
    assert_eq!(first_line(&mut a).await, "{\"return\": {}}\r\n");

    drop(b);
    wait_until("the TCP client's slot is freed", || server.connections() == 1).await;
    let mut e = BufReader::new(tokio::net::UnixStream::connect(&path).await.unwrap());
    assert!(first_line(&mut e).await.starts_with("{\"QMP\": "));

    // A lower cap leaves those connected alone; a higher one admits more at once.
    server.set_max_connections(1);
    let mut f = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    assert_eq!(first_line(&mut f).await, expected.replace("most 2", "most 1"));
    assert_eq!(server.connections(), 2);
    server.set_max_connections(3);
    let mut g = BufReader::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    assert!(first_line(&mut g).await.starts_with("{\"QMP\": "));
    assert_eq!(server.connections(), 3);
}

/// `serve_stream` connections count towards the cap but are never refused themselves.
#[tokio::test]
async fn serve_stream_connections_count_but_are_not_refused() {
    let server = Server::builder().max_connections(1).build();
    let mut held = Vec::new();
    for _ in 0..3 {
        let (client, conn) = tokio::io::duplex(4096);
        tokio::spawn({
            let s = server.clone();
            async move { s.serve_stream(conn).await }
        });
        let mut client = BufReader::new(client);
        let mut line = String::new();
        client.read_line(&mut line).await.unwrap();
        assert!(line.starts_with("{\"QMP\": "), "{line:?}");
        held.push(client);
    }
    assert_eq!(server.connections(), 3);
    drop(held);
    wait_until("every slot is freed", || server.connections() == 0).await;
}
