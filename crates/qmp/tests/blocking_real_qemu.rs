//! The blocking client against real QEMU 7.2, started by each test: no tokio anywhere.

use std::os::fd::AsFd;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use qmp::blocking::Client;
use qmp::commands::{QueryStatus, QueryYank};
use qmp::{ErrorClass, EventFilter, RecvError};
use qmp_testkit::Peer;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

fn connect(peer: &Peer, i: usize) -> Client {
    Client::connect_with(qmp::Client::builder().timeout(T), peer.socket(i)).expect("connect to QEMU")
}

#[test]
fn typed_raw_and_error_replies() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0);
    assert_eq!(client.greeting().unwrap().version.qemu.major, 7);
    assert!(client.oob_enabled());
    assert!(client.execute(QueryStatus).unwrap().running);
    assert_eq!(client.call_raw("query-name", Value::Null).send().unwrap(), json!({"name": "testvm"}));
    let err = client.call_raw("nope", Value::Null).send().unwrap_err();
    assert_eq!(err.qmp_error().unwrap().class, ErrorClass::CommandNotFound);
    assert_eq!(err.qmp_error().unwrap().desc, "The command nope has not been found");
    // exec-oob, as negotiated.
    client.call(QueryYank).oob().send().unwrap();
    assert!(!client.is_closed());
}

#[test]
fn without_oob_exec_oob_is_refused_before_sending() {
    let qemu = Peer::qemu(1);
    let client = Client::connect_with(qmp::Client::builder().oob(false).timeout(T), qemu.socket(0)).unwrap();
    assert!(!client.oob_enabled());
    let err = client.call(QueryYank).oob().send().unwrap_err();
    assert!(matches!(err, qmp::Error::Unsupported(_)), "{err}");
    assert!(client.execute(QueryStatus).unwrap().running);
}

#[test]
fn calls_from_eight_threads_are_pipelined_and_each_gets_its_own_reply() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0);
    // Commands with different answers, so a reply handed to the wrong caller shows.
    let commands = ["query-status", "query-name", "query-version", "query-kvm", "query-uuid"];
    let expected: Vec<Value> =
        commands.iter().map(|c| client.call_raw(c, Value::Null).send().unwrap()).collect();
    let expected = Arc::new(expected);
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (client, expected, start) = (client.clone(), Arc::clone(&expected), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for i in 0..150 {
                    let k = (t + i) % commands.len();
                    assert_eq!(client.call_raw(commands[k], Value::Null).send().unwrap(), expected[k]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn a_thread_waiting_for_events_reads_other_threads_replies_and_the_events_they_cause() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0);
    let mut stops = client.subscribe(EventFilter::name("STOP"));
    // This thread waits in recv, reading the socket, before the other thread calls.
    let waiter = thread::spawn(move || stops.recv_timeout(T).map(|e| e.name.clone()));
    thread::sleep(Duration::from_millis(100));
    let other = client.clone();
    let caller = thread::spawn(move || {
        // Its replies are read by the waiting thread and handed over.
        for _ in 0..20 {
            assert!(other.execute(QueryStatus).unwrap().running);
        }
        other.call_raw("stop", Value::Null).send().unwrap();
        other.execute(QueryStatus).unwrap()
    });
    let status = caller.join().unwrap();
    assert!(!status.running);
    assert_eq!(waiter.join().unwrap().unwrap(), "STOP");
}

#[test]
fn events_from_another_monitor_wait_in_the_socket_until_read() {
    let qemu = Peer::qemu(2);
    let watcher = connect(&qemu, 0);
    let actor = connect(&qemu, 1);
    let mut events = watcher.subscribe(EventFilter::names(["STOP", "RESUME"]));
    assert!(events.try_recv().is_none());
    actor.call_raw("stop", Value::Null).send().unwrap();
    actor.call_raw("cont", Value::Null).send().unwrap();
    // No call on the watcher in between: the events are read now, in order.
    assert_eq!(events.recv_timeout(T).unwrap().name, "STOP");
    assert_eq!(events.recv_timeout(T).unwrap().name, "RESUME");
    assert!(events.try_recv().is_none());
    let err = watcher.wait_for(EventFilter::name("STOP"), Duration::from_millis(100)).unwrap_err();
    assert!(err.is_timeout(), "{err}");
}

#[test]
fn a_timed_out_call_never_takes_a_later_reply() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0);
    qemu.signal("STOP");
    let started = Instant::now();
    let err = client
        .with_timeout(Duration::from_millis(200))
        .call_raw("query-status", Value::Null)
        .send()
        .unwrap_err();
    let took = started.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2), "timed out after {took:?}");
    qemu.signal("CONT");
    // query-status's late reply comes first, and is discarded.
    assert_eq!(client.call_raw("query-name", Value::Null).send().unwrap(), json!({"name": "testvm"}));
    // A call without a timeout after one with a short one waits as long as it takes.
    qemu.signal("STOP");
    let frozen = thread::spawn({
        let client = client.without_timeout();
        move || client.call_raw("query-name", Value::Null).send()
    });
    thread::sleep(Duration::from_millis(400));
    assert!(!frozen.is_finished(), "a frozen QEMU cannot have answered");
    qemu.signal("CONT");
    assert_eq!(frozen.join().unwrap().unwrap(), json!({"name": "testvm"}));
}

#[test]
fn qemu_killed_mid_command_fails_the_call_and_ends_subscriptions() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0).without_timeout();
    let mut events = client.events();
    qemu.signal("STOP");
    let pending = thread::spawn({
        let client = client.clone();
        move || client.call_raw("query-status", Value::Null).send()
    });
    thread::sleep(Duration::from_millis(100));
    assert!(!pending.is_finished(), "a frozen QEMU cannot have answered");
    let killed = Instant::now();
    qemu.signal("KILL");
    let err = pending.join().unwrap().unwrap_err();
    let took = killed.elapsed();
    assert!(err.is_disconnect(), "{err}");
    assert!(took < Duration::from_millis(100), "the pending call took {took:?} to fail");
    assert!(matches!(events.recv(), Err(RecvError::Closed(_))));
    assert!(client.call_raw("query-status", Value::Null).send().unwrap_err().is_disconnect());
    assert!(client.is_closed());
}

#[test]
fn is_closed_notices_a_hang_up_without_a_call() {
    let qemu = Peer::qemu(2);
    let client = connect(&qemu, 0);
    assert!(!client.is_closed());
    connect(&qemu, 1).call_raw("quit", Value::Null).send().unwrap();
    let deadline = Instant::now() + T;
    while !client.is_closed() {
        assert!(Instant::now() < deadline, "the hang-up was never noticed");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn getfd_and_add_fd_with_real_fds() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0);
    let file = tempfile::tempfile().unwrap();
    client.call_raw("getfd", json!({"fdname": "fd0"})).fds(&[file.as_fd()]).send().unwrap();
    client.call_raw("closefd", json!({"fdname": "fd0"})).send().unwrap();
    let err = client.call_raw("closefd", json!({"fdname": "fd0"})).send().unwrap_err();
    assert_eq!(err.qmp_error().unwrap().desc, "File descriptor named 'fd0' not found");
    let added = client
        .call_raw("add-fd", json!({"fdset-id": 3, "opaque": "disk"}))
        .fds(&[file.as_fd()])
        .send()
        .unwrap();
    assert_eq!(added["fdset-id"], 3);
    let sets = client.call_raw("query-fdsets", Value::Null).send().unwrap();
    assert_eq!(sets[0]["fds"][0]["opaque"], "disk");
}

#[test]
fn server_mode_accepts_qemus_own_connection() {
    let dir = qmp_testkit::tempdir();
    let path = dir.path().join("listen.sock");
    let accepting = thread::spawn({
        let path = path.clone();
        move || Client::accept_with(qmp::Client::builder().timeout(T), path.as_path())
    });
    let deadline = Instant::now() + T;
    while !path.exists() {
        assert!(Instant::now() < deadline, "the listener never appeared");
        thread::sleep(Duration::from_millis(5));
    }
    let qemu = Peer::qemu_with(0, &["-qmp", &format!("unix:{}", path.display())]);
    let client = accepting.join().unwrap().unwrap();
    assert!(!path.exists(), "the listening socket is removed once the peer is accepted");
    assert_eq!(client.call_raw("query-name", Value::Null).send().unwrap(), json!({"name": "testvm"}));
    drop(qemu);
}
