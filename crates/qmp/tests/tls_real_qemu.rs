//! Both clients over TLS against real QEMU 7.2's TLS monitor (`tls-creds-x509` and a
//! `-chardev socket,...,tls-creds=tls0` monitor), with certificates each test makes with
//! openssl: negotiation, commands, a large reply, pipelined calls and events over TLS; a wrong
//! CA and a wrong name refused in words; with `verify-peer=yes`, a client certificate required,
//! accepted, and one from another CA refused; a plain monitor taken for TLS; the handshake
//! bounded by the negotiation timeout. QEMU and openssl are required: these tests fail without
//! them (scripts/install-deps.sh installs both).

use std::time::{Duration, Instant};

use qmp::{EventFilter, TlsConfig};
use qmp_testkit::{tls::Certs, Peer};
use serde_json::{json, Value};

const BOUND: Duration = Duration::from_secs(10);

fn trusting(ca: &std::path::Path) -> qmp::TlsConfigBuilder {
    TlsConfig::builder().ca_file(ca)
}

fn builder(tls: TlsConfig) -> qmp::ClientBuilder {
    qmp::Client::builder().tls(tls).negotiation_timeout(BOUND).timeout(BOUND)
}

#[tokio::test]
async fn async_client_negotiates_calls_and_gets_events_over_tls() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, false);
    let client = builder(trusting(&certs.ca()).build().unwrap()).connect(qemu.tls_address()).await.unwrap();
    assert_eq!(client.greeting().unwrap().version.qemu.major, 7);
    assert!(client.oob_enabled(), "oob negotiated over TLS too");
    assert_eq!(client.call_raw("query-status", Value::Null).send().await.unwrap()["status"], "running");

    // Events: STOP and RESUME, each before its command's reply.
    let mut events = client.subscribe(EventFilter::names(["STOP", "RESUME"]));
    client.call_raw("stop", Value::Null).send().await.unwrap();
    assert_eq!(events.next_within(BOUND).await.unwrap().name, "STOP");
    client.call_raw("cont", Value::Null).send().await.unwrap();
    assert_eq!(events.next_within(BOUND).await.unwrap().name, "RESUME");

    // A reply of many TLS records (~200 KB), then 64 calls in flight at once.
    let schema = client.schema().await.unwrap();
    assert!(schema.has_command("blockdev-add") && schema.command_names().count() > 200);
    let calls = (0..64).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call_raw("qom-get", json!({"path": "/machine", "property": "type"}))
                .send()
                .await
                .map(|v| (i, v))
        })
    });
    for call in calls.collect::<Vec<_>>() {
        let (_, value) = call.await.unwrap().unwrap();
        assert_eq!(value, "none-machine");
    }

    // Errors from QEMU arrive whole; fds cannot travel over TLS.
    let err = client.call_raw("nope", Value::Null).send().await.unwrap_err();
    assert_eq!(err.qmp_error().unwrap().desc, "The command nope has not been found");
    let file = std::fs::File::open("/dev/null").unwrap();
    let fd = std::os::fd::AsFd::as_fd(&file);
    let err = client.call_raw("getfd", json!({"fdname": "x"})).fds(&[fd]).send().await.unwrap_err();
    assert!(matches!(err, qmp::Error::Unsupported(_)), "{err}");

    // QEMU quitting ends the connection at once. (Over TLS, QEMU 7.2 exits before its reply
    // to quit goes out; SHUTDOWN does arrive.)
    let shutdown = client.wait_for(EventFilter::name("SHUTDOWN"), BOUND);
    match client.call_raw("quit", Value::Null).send().await {
        Ok(_) => {}
        Err(e) => assert!(e.is_disconnect(), "{e}"),
    }
    assert_eq!(shutdown.await.unwrap().name, "SHUTDOWN");
    let why = tokio::time::timeout(BOUND, client.closed()).await.expect("the connection ends");
    assert!(why.is_peer_end(), "{why:?}");
}

#[test]
fn blocking_client_negotiates_calls_and_gets_events_over_tls() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, false);
    let tls = trusting(&certs.ca()).build().unwrap();
    let client = qmp::blocking::Client::connect_with(builder(tls), qemu.tls_address()).unwrap();
    assert_eq!(client.greeting().unwrap().version.qemu.minor, 2);
    assert_eq!(client.call_raw("query-status", Value::Null).send().unwrap()["running"], true);

    let mut stops = client.subscribe(EventFilter::name("STOP"));
    client.call_raw("stop", Value::Null).send().unwrap();
    assert_eq!(stops.recv_timeout(BOUND).unwrap().name, "STOP");
    assert_eq!(client.call_raw("query-status", Value::Null).send().unwrap()["status"], "paused");

    // fds cannot cross TLS: refused before sending, not dropped by the relay.
    let file = std::fs::File::open("/dev/null").unwrap();
    let fd = std::os::fd::AsFd::as_fd(&file);
    let err = client.call_raw("getfd", json!({"fdname": "x"})).fds(&[fd]).send().unwrap_err();
    assert!(matches!(err, qmp::Error::Unsupported(_)), "{err}");

    let schema = client.schema().unwrap();
    assert!(schema.has_command("query-status"));
    // Calls from several threads share the connection.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    assert_eq!(client.call_raw("query-name", Value::Null).send().unwrap()["name"], "testvm");
                }
            });
        }
    });
    // QEMU quitting ends the connection at once (through the relay). Over TLS, QEMU 7.2 sends
    // SHUTDOWN and exits before its reply to quit goes out: the call ends either way.
    let shutdown = client.subscribe(EventFilter::name("SHUTDOWN"));
    match client.call_raw("quit", Value::Null).send() {
        Ok(_) => {}
        Err(e) => assert!(e.is_disconnect(), "{e}"),
    }
    let mut shutdown = shutdown;
    assert_eq!(shutdown.recv_timeout(BOUND).unwrap().name, "SHUTDOWN");
    let deadline = Instant::now() + BOUND;
    while !client.is_closed() {
        assert!(Instant::now() < deadline, "the connection did not end after quit");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(client.call_raw("query-status", Value::Null).send().unwrap_err().is_disconnect());
}

#[tokio::test]
async fn a_wrong_ca_is_refused_as_not_trusted_by_both_clients() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, false);
    let wrong = trusting(&certs.other_ca()).build().unwrap();
    let err = builder(wrong.clone()).connect(qemu.tls_address()).await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with(&format!("cannot connect to {}: ", qemu.tls_address())), "{text}");
    assert!(text.contains("the server's certificate was not trusted"), "{text}");

    let err = qmp::blocking::Client::connect_with(builder(wrong), qemu.tls_address()).unwrap_err();
    assert!(err.to_string().contains("the server's certificate was not trusted"), "{err}");

    // QEMU is none the worse: the right CA connects next.
    let right = trusting(&certs.ca()).build().unwrap();
    builder(right).connect(qemu.tls_address()).await.unwrap();
}

#[tokio::test]
async fn the_certificate_is_checked_against_the_host_or_the_name_given() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, false);
    // Issued for localhost and 127.0.0.1: by name, by address, and not for another name.
    let by_name = format!("tls:localhost:{}", qemu.tls_port());
    builder(trusting(&certs.ca()).build().unwrap()).connect(by_name.as_str()).await.unwrap();
    let other = trusting(&certs.ca()).server_name("vm1.example").build().unwrap();
    let err = builder(other).connect(qemu.tls_address()).await.unwrap_err().to_string();
    assert!(err.contains(r#"the server's certificate is not valid for "vm1.example""#), "{err}");
    let named = trusting(&certs.ca()).build().unwrap().with_server_name("localhost").unwrap();
    builder(named).connect(qemu.tls_address()).await.unwrap();
}

#[tokio::test]
async fn verify_peer_wants_a_client_certificate_of_its_ca() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, true);

    let none = trusting(&certs.ca()).build().unwrap();
    assert!(!none.has_client_certificate());
    let err = builder(none.clone()).connect(qemu.tls_address()).await.unwrap_err();
    let text = err.to_string();
    assert!(err.is_connect(), "{err:?}");
    assert!(text.contains("the server asked for a TLS client certificate, none was given"), "{text}");
    let err = qmp::blocking::Client::connect_with(builder(none), qemu.tls_address()).unwrap_err();
    assert!(err.to_string().contains("none was given"), "{err}");

    let untrusted = trusting(&certs.ca())
        .client_cert_files(certs.untrusted_client_cert(), certs.untrusted_client_key())
        .build()
        .unwrap();
    let err = builder(untrusted).connect(qemu.tls_address()).await.unwrap_err().to_string();
    assert!(err.contains("it did not accept the client certificate"), "{err}");

    let good =
        trusting(&certs.ca()).client_cert_files(certs.client_cert(), certs.client_key()).build().unwrap();
    assert!(good.has_client_certificate());
    let client = builder(good.clone()).connect(qemu.tls_address()).await.unwrap();
    assert_eq!(client.call_raw("query-status", Value::Null).send().await.unwrap()["status"], "running");
    drop(client);
    // Off the runtime's thread, so the dropped client's task can hang up first (QEMU serves
    // one client at a time).
    let address = qemu.tls_address();
    let name = tokio::task::spawn_blocking(move || {
        let client = qmp::blocking::Client::connect_with(builder(good), address).unwrap();
        client.call_raw("query-name", Value::Null).send().unwrap()
    });
    assert_eq!(name.await.unwrap()["name"], "testvm");
}

#[tokio::test]
async fn qemus_own_client_layout_is_read_from_a_directory() {
    let certs = Certs::generate();
    let qemu = Peer::qemu_tls(&certs, true);
    let dir = certs.dir().join("client-dir");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(certs.ca(), dir.join("ca-cert.pem")).unwrap();
    std::fs::copy(certs.client_cert(), dir.join("client-cert.pem")).unwrap();
    std::fs::copy(certs.client_key(), dir.join("client-key.pem")).unwrap();
    let tls = TlsConfig::builder().qemu_dir(&dir).build().unwrap();
    assert!(tls.has_client_certificate());
    builder(tls).connect(qemu.tls_address()).await.unwrap();
}

#[tokio::test]
async fn a_plain_monitor_is_not_taken_for_tls() {
    let certs = Certs::generate();
    let port = qmp_testkit::free_port();
    let qemu = Peer::qemu_unwaited(&["-qmp", &qmp_testkit::waiting_tcp(port)]);
    let deadline = Instant::now() + BOUND;
    while !qmp_testkit::tcp_listening_by(port, qemu.pid()) {
        assert!(Instant::now() < deadline, "QEMU did not listen");
        std::thread::sleep(Duration::from_millis(5));
    }
    let tls = trusting(&certs.ca()).build().unwrap();
    let err = builder(tls).connect(format!("tls:127.0.0.1:{port}")).await.unwrap_err().to_string();
    assert!(err.contains("the server does not speak TLS here"), "{err}");
}

#[tokio::test]
async fn a_silent_peer_cannot_hang_the_handshake() {
    let certs = Certs::generate();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("tls:{}", listener.local_addr().unwrap());
    let tls = trusting(&certs.ca()).server_name("localhost").build().unwrap();
    let started = Instant::now();
    let b = qmp::Client::builder().tls(tls).negotiation_timeout(Duration::from_millis(300));
    let err = b.clone().connect(address.as_str()).await.unwrap_err().to_string();
    assert_eq!(err, "protocol error: no TLS handshake within 300ms of connecting (the negotiation timeout)");
    let err = qmp::blocking::Client::connect_with(b, address.as_str()).unwrap_err().to_string();
    assert!(err.contains("no TLS handshake within 300ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}

#[test]
fn pem_files_that_are_missing_or_hold_the_wrong_thing_are_named() {
    let certs = Certs::generate();
    let missing = certs.dir().join("nope/ca-cert.pem");
    let err = TlsConfig::builder().ca_file(&missing).build().unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "cannot read the TLS CA certificate file {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    // A key where a certificate should be, and a certificate where a key should be.
    let err = TlsConfig::builder().ca_file(certs.client_key()).build().unwrap_err().to_string();
    assert_eq!(
        err,
        format!("the TLS CA certificate file {} holds no PEM certificate", certs.client_key().display())
    );
    let err = trusting(&certs.ca())
        .client_cert_files(certs.client_cert(), certs.client_cert())
        .build()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!("the TLS client key file {} holds no PEM private key", certs.client_cert().display())
    );
    let err = trusting(&certs.ca())
        .client_cert_files(certs.client_cert(), certs.untrusted_client_key())
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not belong to the client certificate"), "{err}");
    let err = trusting(&certs.ca()).client_cert_files(certs.dir(), certs.client_key()).build().unwrap_err();
    assert!(err.to_string().starts_with("cannot read the TLS client certificate file"), "{err}");
}

#[tokio::test]
async fn a_tls_address_needs_a_tls_configuration() {
    let err = qmp::Client::connect("tls:127.0.0.1:1").await.unwrap_err();
    assert!(matches!(err, qmp::Error::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("needs a TLS configuration"), "{err}");
    let err = qmp::blocking::Client::connect("tls:127.0.0.1:1").unwrap_err();
    assert!(err.to_string().contains("needs a TLS configuration"), "{err}");
    let err = qmp::Client::builder().listen("tls:127.0.0.1:0").unwrap_err();
    assert!(err.to_string().contains("server mode has no TLS"), "{err}");
}
