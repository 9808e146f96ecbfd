//! The async client against real QEMU 7.2, started by each test.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp::{Client, ErrorClass, EventFilter, RecvError};
use qmp_testkit::Peer;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

async fn connect(peer: &Peer, i: usize) -> Client {
    Client::builder().timeout(T).connect(peer.socket(i)).await.expect("connect to QEMU")
}

#[tokio::test]
async fn negotiates_with_oob_and_runs_exec_oob() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0).await;
    let greeting = client.greeting().expect("greeting");
    assert_eq!(greeting.version.qemu.major, 7);
    assert!(greeting.offers_oob());
    assert!(client.oob_enabled());
    let yank = client.call_raw("query-yank", Value::Null).oob().send().await.unwrap();
    assert!(yank.is_array(), "query-yank returns a list: {yank}");
    let status = client.call_raw("query-status", Value::Null).send().await.unwrap();
    assert_eq!(status["status"], "running");
}

#[tokio::test]
async fn negotiates_without_oob_and_refuses_exec_oob() {
    let qemu = Peer::qemu(1);
    let client = Client::builder().oob(false).timeout(T).connect(qemu.socket(0)).await.unwrap();
    assert!(!client.oob_enabled());
    let err = client.call_raw("query-yank", Value::Null).oob().send().await.unwrap_err();
    assert!(matches!(err, qmp::Error::Unsupported(_)), "{err}");
    // In-band still works.
    client.call_raw("query-yank", Value::Null).send().await.unwrap();
}

#[tokio::test]
async fn skipping_negotiation_leaves_the_server_in_capabilities_mode() {
    let qemu = Peer::qemu(1);
    let client = Client::builder().negotiate(false).timeout(T).connect(qemu.socket(0)).await.unwrap();
    let err = client.call_raw("query-status", Value::Null).send().await.unwrap_err();
    let qmp = err.qmp_error().expect("a QMP error");
    assert_eq!(qmp.class, ErrorClass::CommandNotFound);
    assert_eq!(qmp.desc, "Expecting capabilities negotiation with 'qmp_capabilities'");
    client.call_raw("qmp_capabilities", Value::Null).send().await.unwrap();
    client.call_raw("query-status", Value::Null).send().await.unwrap();
}

#[tokio::test]
async fn a_greeting_not_waited_for_is_still_kept() {
    let qemu = Peer::qemu(1);
    let client = Client::builder()
        .negotiate(false)
        .await_greeting(false)
        .timeout(T)
        .connect(qemu.socket(0))
        .await
        .unwrap();
    // QEMU greets first: by the time an answer comes, the greeting has been read.
    client.call_raw("qmp_capabilities", Value::Null).send().await.unwrap();
    assert!(client.greeting().expect("the greeting").version.qemu.major >= 7);
    client.call_raw("query-status", Value::Null).send().await.unwrap();
}

#[tokio::test]
async fn a_thousand_pipelined_commands_are_all_answered_and_matched() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0).await;
    // Alternate commands with distinguishable answers so a mismatch would show.
    let calls = (0..1000).map(|i| {
        let client = client.clone();
        async move {
            if i % 2 == 0 {
                let v = client.call_raw("query-name", Value::Null).send().await.unwrap();
                assert_eq!(v, json!({"name": "testvm"}), "call {i}");
            } else {
                let v = client.call_raw("query-status", Value::Null).send().await.unwrap();
                assert_eq!(v["status"], "running", "call {i}");
            }
        }
    });
    let started = Instant::now();
    futures_join_all(calls).await;
    eprintln!("1000 pipelined commands in {:?}", started.elapsed());
}

/// Runs all futures concurrently on this task (so all 1,000 are in flight at once).
async fn futures_join_all<F: std::future::Future<Output = ()> + 'static>(futs: impl IntoIterator<Item = F>) {
    let local = tokio::task::LocalSet::new();
    let futs: Vec<_> = futs.into_iter().collect();
    local
        .run_until(async move {
            let handles: Vec<_> = futs.into_iter().map(|f| tokio::task::spawn_local(f)).collect();
            for h in handles {
                h.await.unwrap();
            }
        })
        .await;
}

#[tokio::test]
async fn stop_and_cont_reach_two_subscribers_with_different_filters() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0).await;
    let mut stops = client.subscribe(EventFilter::name("STOP"));
    let mut both = client.subscribe(EventFilter::names(["STOP", "RESUME"]));
    client.call_raw("stop", Value::Null).send().await.unwrap();
    client.call_raw("cont", Value::Null).send().await.unwrap();
    let first = tokio::time::timeout(T, stops.recv()).await.unwrap().unwrap();
    assert_eq!(first.name, "STOP");
    assert!(first.timestamp.seconds > 0);
    let a = tokio::time::timeout(T, both.recv()).await.unwrap().unwrap();
    let b = tokio::time::timeout(T, both.recv()).await.unwrap().unwrap();
    assert_eq!((a.name.as_str(), b.name.as_str()), ("STOP", "RESUME"));
    // The STOP-only subscriber never sees RESUME.
    client.call_raw("query-status", Value::Null).send().await.unwrap();
    assert!(stops.try_recv().is_none(), "the STOP filter let another event through");
}

#[tokio::test]
async fn block_stream_cancelled_gives_block_job_cancelled_through_wait_for() {
    let qsd = Peer::storage_daemon(1);
    let client = connect(&qsd, 0).await;
    let cancelled = client.wait_for(
        EventFilter::name("BLOCK_JOB_CANCELLED").data("device", json!("job0")),
        Duration::from_secs(20),
    );
    client
        .call_raw("block-stream", json!({"job-id": "job0", "device": "top0", "speed": 65536}))
        .send()
        .await
        .unwrap();
    let jobs = client.call_raw("query-block-jobs", Value::Null).send().await.unwrap();
    assert_eq!(jobs[0]["device"], "job0");
    assert_eq!(jobs[0]["type"], "stream");
    client.call_raw("block-job-cancel", json!({"device": "job0"})).send().await.unwrap();
    let event = cancelled.await.unwrap();
    assert_eq!(event.name, "BLOCK_JOB_CANCELLED");
    let data = event.data_value();
    assert_eq!(data["type"], "stream");
    assert!(
        data["offset"].as_u64().unwrap() < data["len"].as_u64().unwrap(),
        "cancelled before the end: {data}"
    );
}

#[tokio::test]
async fn getfd_with_a_real_fd_then_closefd() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0).await;
    let file = tempfile::tempfile().unwrap();
    client.call_raw("getfd", json!({"fdname": "fd0"})).fds(&[file.as_fd()]).send().await.unwrap();
    client.call_raw("closefd", json!({"fdname": "fd0"})).send().await.unwrap();
    // Closed: a second closefd fails the way QEMU words it.
    let err = client.call_raw("closefd", json!({"fdname": "fd0"})).send().await.unwrap_err();
    assert_eq!(err.qmp_error().unwrap().desc, "File descriptor named 'fd0' not found");
    // Without an fd, getfd fails.
    let err = client.call_raw("getfd", json!({"fdname": "fd1"})).send().await.unwrap_err();
    assert_eq!(err.qmp_error().unwrap().desc, "No file descriptor supplied via SCM_RIGHTS");
}

#[tokio::test]
async fn add_fd_puts_a_real_fd_in_an_fdset() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0).await;
    let file = tempfile::tempfile().unwrap();
    let added = client
        .call_raw("add-fd", json!({"fdset-id": 3, "opaque": "disk"}))
        .fds(&[file.as_fd()])
        .send()
        .await
        .unwrap();
    assert_eq!(added["fdset-id"], 3);
    let sets = client.call_raw("query-fdsets", Value::Null).send().await.unwrap();
    assert_eq!(sets[0]["fdset-id"], 3);
    assert_eq!(sets[0]["fds"][0]["opaque"], "disk");
    client.call_raw("remove-fd", json!({"fdset-id": 3})).send().await.unwrap();
}

#[tokio::test]
async fn server_mode_accepts_qemus_own_connection() {
    let dir = qmp_testkit::tempdir();
    let path = dir.path().join("listen.sock");
    let listener = Client::builder().timeout(T).listen(path.as_path()).unwrap();
    let qemu = Peer::qemu_with(0, &["-qmp", &format!("unix:{}", path.display())]);
    let client = tokio::time::timeout(T, listener.accept()).await.expect("QEMU connected").unwrap();
    assert_eq!(client.greeting().unwrap().version.qemu.major, 7);
    let v = client.call_raw("query-name", Value::Null).send().await.unwrap();
    assert_eq!(v["name"], "testvm");
    drop(listener);
    assert!(!path.exists(), "the listener's socket is removed when it is dropped");
    drop(qemu);
}

#[tokio::test]
async fn qemu_killed_mid_command_fails_the_pending_call_within_100ms() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0).await.without_timeout();
    let mut events = client.events();
    // Freeze QEMU so the command is certainly in flight, then kill it.
    qemu.signal("STOP");
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.call_raw("query-status", Value::Null).send().await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished(), "a frozen QEMU cannot have answered");
    let killed = Instant::now();
    qemu.signal("KILL");
    let err = pending.await.unwrap().unwrap_err();
    let took = killed.elapsed();
    assert!(err.is_disconnect(), "{err}");
    assert!(took < Duration::from_millis(100), "the pending call took {took:?} to fail");
    assert!(matches!(events.recv().await, Err(RecvError::Closed(_))));
    // Later calls fail at once too.
    let err = client.call_raw("query-status", Value::Null).send().await.unwrap_err();
    assert!(err.is_disconnect(), "{err}");
    assert!(client.is_closed());
}

#[tokio::test]
async fn a_timed_out_or_dropped_call_never_takes_a_later_reply() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0).await;
    qemu.signal("STOP");
    let err = client
        .with_timeout(Duration::from_millis(50))
        .call_raw("query-status", Value::Null)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    // A dropped future too.
    let dropped = client.call_raw("query-version", Value::Null).send();
    let _ = tokio::time::timeout(Duration::from_millis(10), dropped).await;
    qemu.signal("CONT");
    // The late replies to query-status and query-version are discarded, not handed over.
    let name = client.call_raw("query-name", Value::Null).send().await.unwrap();
    assert_eq!(name, json!({"name": "testvm"}));
}

#[tokio::test]
async fn qmp_errors_keep_class_and_text() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu, 0).await;
    let err = client.call_raw("nope", Value::Null).send().await.unwrap_err();
    let e = err.qmp_error().unwrap();
    assert_eq!(e.class, ErrorClass::CommandNotFound);
    assert_eq!(e.desc, "The command nope has not been found");
    assert_eq!(err.to_string(), "CommandNotFound: The command nope has not been found");
    let err = client.call_raw("device_del", json!({"id": "nodev"})).send().await.unwrap_err();
    assert_eq!(err.qmp_error().unwrap().class, ErrorClass::DeviceNotFound);
    let err = client.call_raw("query-status", json!({"x": 1})).send().await.unwrap_err();
    assert_eq!(err.qmp_error().unwrap().desc, "Parameter 'x' is unexpected");
}

#[tokio::test]
async fn a_slow_subscriber_is_told_how_many_events_it_lost() {
    let qemu = Peer::qemu(1);
    let client = Client::builder().event_queue(4).timeout(T).connect(qemu.socket(0)).await.unwrap();
    let mut slow = client.events();
    for _ in 0..5 {
        client.call_raw("stop", Value::Null).send().await.unwrap();
        client.call_raw("cont", Value::Null).send().await.unwrap();
    }
    // Ten events arrived (before the last reply); only the newest four were kept.
    assert_eq!(slow.recv().await, Err(RecvError::Lagged(6)));
    let kept: Vec<String> = (0..4).map(|_| slow.try_recv().unwrap().unwrap().name.clone()).collect();
    assert_eq!(kept, ["STOP", "RESUME", "STOP", "RESUME"]);
    assert!(slow.try_recv().is_none());
}

#[tokio::test]
async fn events_from_another_monitor_arrive_while_idle() {
    let qemu = Peer::qemu(2);
    let watcher = connect(&qemu, 0).await;
    let actor = connect(&qemu, 1).await;
    let stopped = watcher.wait_for(EventFilter::name("STOP"), T);
    actor.call_raw("stop", Value::Null).send().await.unwrap();
    let event: Arc<qmp::Event> = stopped.await.unwrap();
    assert_eq!(event.name, "STOP");
}
