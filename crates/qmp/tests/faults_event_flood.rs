//! A flood of events at a subscriber that never reads: the client's memory stays bounded (each
//! subscriber holds at most its queue, the rest counted as lost), calls keep being answered
//! during the flood, and the subscriber is told how many it lost. One test in its own binary,
//! so the process's RSS is this test's alone.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::Duration;

use qmp::{EventFilter, RecvError};
use serde_json::Value;

const GREETING: &[u8] = b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}\r\n";
const EVENTS: usize = 1_000_000;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The peer: one thread reads requests, one writes (so that no write lands inside another):
/// the flood in bursts of 100 events, with the replies to the requests that came meanwhile
/// between bursts. `done` is set when the whole flood is written.
fn peer(s: UnixStream, done: Arc<AtomicBool>) {
    let mut writer = s.try_clone().unwrap();
    writer.write_all(GREETING).unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        let mut reader = std::io::BufReader::new(s);
        let mut line = String::new();
        while std::io::BufRead::read_line(&mut reader, &mut line).is_ok_and(|n| n > 0) {
            let req: Value = serde_json::from_str(&line).unwrap();
            if tx.send(format!("{{\"return\": {{}}, \"id\": {}}}\r\n", req["id"])).is_err() {
                break;
            }
            line.clear();
        }
    });
    thread::spawn(move || {
        let event = b"{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"BLOCK_JOB_READY\", \"data\": {\"device\": \"job0\", \"len\": 1048576, \"offset\": 1048576, \"speed\": 0, \"type\": \"mirror\"}}\r\n";
        let burst: Vec<u8> = event.iter().copied().cycle().take(event.len() * 100).collect();
        for _ in 0..EVENTS / 100 {
            if writer.write_all(&burst).is_err() {
                return;
            }
            while let Ok(reply) = rx.try_recv() {
                let _ = writer.write_all(reply.as_bytes());
            }
        }
        done.store(true, Ordering::SeqCst);
        while let Ok(reply) = rx.recv() {
            if writer.write_all(reply.as_bytes()).is_err() {
                return;
            }
        }
    });
}

#[test]
fn a_flood_of_events_at_a_subscriber_that_never_reads_keeps_memory_bounded() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        peer(theirs, Arc::clone(&done));
        let client = qmp::Client::builder()
            .event_queue(1024)
            .connect_unix_stream(tokio::net::UnixStream::from_std(ours).unwrap())
            .await
            .unwrap();
        let mut stalled = client.subscribe(EventFilter::any());
        let before = rss_kib();
        // Calls go on while the flood comes in; the subscriber reads nothing.
        let mut answered = 0;
        while !done.load(Ordering::SeqCst) {
            client
                .with_timeout(Duration::from_secs(10))
                .call_raw("query-status", Value::Null)
                .send()
                .await
                .unwrap();
            answered += 1;
        }
        let grown = rss_kib().saturating_sub(before);
        eprintln!("{EVENTS} events, {answered} calls answered meanwhile, RSS grew by {grown} KiB");
        assert!(answered > 0, "calls were answered during the flood");
        // 1M events of ~170 bytes (170 MB) passed through; the queue holds 1024 of them.
        assert!(grown < 32 * 1024, "RSS grew by {grown} KiB");
        assert_eq!(stalled.len(), 1024);
        match stalled.try_recv() {
            Some(Err(RecvError::Lagged(n))) => assert!(n as usize >= EVENTS / 2, "lost {n}"),
            other => panic!("expected a lag notice first, got {other:?}"),
        }
        drop(client);
    });
}
