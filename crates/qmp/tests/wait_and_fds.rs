//! Waiting for a QEMU that is starting (`ClientBuilder::wait`), and sockets handed in as file
//! descriptors (`connect_fd`, `listen_fd`, `blocking::Client::from_fd`/`accept_fd`), against
//! real QEMU 7.2. QEMU is required: these tests fail without it (scripts/install-deps.sh).

use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use qmp_testkit::Peer;
use serde_json::Value;

const BOUND: Duration = Duration::from_secs(10);

/// Starts QEMU with its monitor at `socket` after `delay`, on a thread; the peer comes back
/// through the handle (to be kept alive until the test ends).
fn qemu_later(socket: &Path, delay: Duration) -> std::thread::JoinHandle<(Peer, Instant)> {
    let socket = socket.to_owned();
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        (Peer::qemu_at(&socket), Instant::now())
    })
}

fn builder() -> qmp::ClientBuilder {
    qmp::Client::builder().negotiation_timeout(BOUND).timeout(BOUND)
}

#[tokio::test]
async fn async_connect_waits_for_a_qemu_started_after_it() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("qmp.sock");
    let started = Instant::now();
    let later = qemu_later(&socket, Duration::from_millis(500));
    let client = builder().wait(Duration::from_secs(30)).connect(socket.as_path()).await.unwrap();
    let connected = Instant::now();
    let (_qemu, spawned) = later.join().unwrap();
    assert!(connected.duration_since(started) >= Duration::from_millis(500));
    // QEMU takes ~0.1-0.3 s to listen; the retries come at most 100 ms apart.
    assert!(
        connected.duration_since(spawned) < Duration::from_secs(3),
        "{:?}",
        connected.duration_since(spawned)
    );
    assert_eq!(client.call_raw("query-status", Value::Null).send().await.unwrap()["status"], "running");
}

#[test]
fn blocking_connect_waits_for_a_qemu_started_after_it() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("qmp.sock");
    let later = qemu_later(&socket, Duration::from_millis(500));
    let client =
        qmp::blocking::Client::connect_with(builder().wait(Duration::from_secs(30)), &socket).unwrap();
    let connected = Instant::now();
    let (_qemu, spawned) = later.join().unwrap();
    assert!(connected.duration_since(spawned) < Duration::from_secs(3));
    assert_eq!(client.call_raw("query-name", Value::Null).send().unwrap()["name"], "testvm");
}

#[tokio::test]
async fn a_stale_socket_refusing_connections_is_waited_through() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("qmp.sock");
    // A socket file nobody listens on (a QEMU that died): connect is refused until the new
    // QEMU replaces it.
    drop(UnixListener::bind(&socket).unwrap());
    let refused = UnixStream::connect(&socket).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    let later = qemu_later(&socket, Duration::from_millis(300));
    let client = builder().wait(Duration::from_secs(30)).connect(socket.as_path()).await.unwrap();
    let _qemu = later.join().unwrap();
    client.call_raw("query-status", Value::Null).send().await.unwrap();
}

#[tokio::test]
async fn tcp_connect_waits_while_refused() {
    let port = qmp_testkit::free_port();
    let monitor = qmp_testkit::waiting_tcp(port);
    let later = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        Peer::qemu_unwaited(&["-qmp", &monitor])
    });
    let client = builder().wait(Duration::from_secs(30)).connect(format!("127.0.0.1:{port}")).await.unwrap();
    let _qemu = later.join().unwrap();
    client.call_raw("query-status", Value::Null).send().await.unwrap();
}

#[tokio::test]
async fn a_wait_that_runs_out_names_the_address_and_the_wait() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("never.sock");
    let started = Instant::now();
    let err = builder().wait(Duration::from_millis(400)).connect(socket.as_path()).await.unwrap_err();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400) && waited < Duration::from_secs(3), "{waited:?}");
    assert!(err.is_connect());
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to unix:{}: no server after waiting 400ms (the socket does not exist)",
            socket.display()
        )
    );
    let qmp::Error::Connect { source, .. } = &err else { panic!("{err:?}") };
    assert_eq!(source.kind(), std::io::ErrorKind::TimedOut);

    let port = qmp_testkit::free_port();
    let err = qmp::blocking::Client::connect_with(
        builder().wait(Duration::from_millis(200)),
        format!("tcp:127.0.0.1:{port}"),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        format!("cannot connect to tcp:127.0.0.1:{port}: no server after waiting 200ms (connection refused)")
    );
}

#[tokio::test]
async fn failures_other_than_not_there_yet_are_not_waited_on() {
    let dir = qmp_testkit::tempdir();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let started = Instant::now();
    let err = builder().wait(Duration::from_secs(30)).connect(file.join("qmp.sock")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "not a directory is final");
    assert!(err.to_string().contains("Not a directory"), "{err}");
}

#[tokio::test]
async fn a_socket_pair_shared_with_qemu_is_a_connection() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let _qemu = Peer::qemu_on_fd(OwnedFd::from(theirs));
    let client = builder().connect_fd(ours).await.unwrap();
    assert_eq!(client.greeting().unwrap().version.qemu.major, 7);
    assert_eq!(client.call_raw("query-status", Value::Null).send().await.unwrap()["status"], "running");
    // A unix socket: fds can be passed on it.
    let file = std::fs::File::open("/dev/null").unwrap();
    let fd = std::os::fd::AsFd::as_fd(&file);
    client.call_raw("getfd", serde_json::json!({"fdname": "null0"})).fds(&[fd]).send().await.unwrap();
    client.call_raw("closefd", serde_json::json!({"fdname": "null0"})).send().await.unwrap();
}

#[test]
fn the_blocking_client_takes_a_socket_pair_and_a_connected_tcp_socket() {
    let (ours, theirs) = UnixStream::pair().unwrap();
    let _qemu = Peer::qemu_on_fd(OwnedFd::from(theirs));
    let client = qmp::blocking::Client::from_fd(builder(), ours).unwrap();
    assert_eq!(client.call_raw("query-name", Value::Null).send().unwrap()["name"], "testvm");

    let port = qmp_testkit::free_port();
    let tcp_qemu = Peer::qemu_unwaited(&["-qmp", &qmp_testkit::waiting_tcp(port)]);
    let deadline = Instant::now() + BOUND;
    while !qmp_testkit::tcp_listening_by(port, tcp_qemu.pid()) {
        assert!(Instant::now() < deadline, "QEMU did not listen");
        std::thread::sleep(Duration::from_millis(5));
    }
    let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let client = qmp::blocking::Client::from_fd(builder(), tcp).unwrap();
    client.call_raw("query-status", Value::Null).send().unwrap();
}

#[tokio::test]
async fn a_listening_socket_handed_in_accepts_qemu() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("listen.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let listener = builder().listen_fd(listener).unwrap();
    assert_eq!(listener.address(), qmp::Address::Unix(socket.clone()));
    let _qemu = Peer::qemu_unwaited(&["-qmp", &format!("unix:{}", socket.display())]);
    let client = tokio::time::timeout(BOUND, listener.accept()).await.unwrap().unwrap();
    client.call_raw("query-status", Value::Null).send().await.unwrap();
    drop(listener);
    assert!(socket.exists(), "a socket file the listener did not make is left in place");
}

#[test]
fn the_blocking_client_accepts_on_a_listening_socket_handed_in() {
    let dir = qmp_testkit::tempdir();
    let socket = dir.path().join("listen.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let _qemu = Peer::qemu_unwaited(&["-qmp", &format!("unix:{}", socket.display())]);
    let client = qmp::blocking::Client::accept_fd(builder(), listener).unwrap();
    client.call_raw("query-status", Value::Null).send().unwrap();
}

#[tokio::test]
async fn descriptors_that_are_no_stream_socket_say_what_they_are() {
    let (r, _w) = nix::unistd::pipe().unwrap();
    let err = builder().connect_fd(r).await.unwrap_err().to_string();
    assert!(err.starts_with("cannot connect to fd ") && err.ends_with("not a socket (a pipe)"), "{err}");
    let file = std::fs::File::open("/dev/null").unwrap();
    let err = qmp::blocking::Client::from_fd(builder(), file).unwrap_err().to_string();
    assert!(err.ends_with("not a socket (a character device)"), "{err}");

    let (a, _b) = UnixStream::pair().unwrap();
    let err = builder().listen_fd(a).unwrap_err().to_string();
    assert!(err.contains("a connected socket, not a listening one"), "{err}");
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = builder().connect_fd(l).await.unwrap_err().to_string();
    assert!(err.contains("a listening socket, not a connected one"), "{err}");
    let d = std::os::unix::net::UnixDatagram::unbound().unwrap();
    let err = qmp::blocking::Client::accept_fd(builder(), d).unwrap_err().to_string();
    assert!(err.ends_with("a datagram socket, not a stream socket"), "{err}");
}
