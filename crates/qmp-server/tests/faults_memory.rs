//! Fault tests of the server's memory: clients that send without reading what they are sent
//! (replies, events) must not make the server buffer without bound. The server runs in a
//! child process whose RSS is read from /proc.

mod faults_support;

use std::io::{BufRead, Write};
use std::thread;
use std::time::{Duration, Instant};

use faults_support::{Raw, ServerProcess, BIG_REPLY};

/// Growth of the server's RSS the tests allow (what it needs is a few MiB).
const MAX_GROWTH_KIB: u64 = 32 << 10;

/// The child's entry point (see `faults_support`); a no-op in a normal run.
#[test]
fn fault_server_child() {
    faults_support::child_main_if_asked();
}

/// Samples the child's RSS for `period`; returns the highest.
fn peak_rss(server: &ServerProcess, period: Duration) -> u64 {
    let end = Instant::now() + period;
    let mut peak = server.rss_kib();
    while Instant::now() < end {
        thread::sleep(Duration::from_millis(20));
        peak = peak.max(server.rss_kib());
    }
    peak
}

/// Sends `count` copies of `request` (each with its own numeric id) from a thread, in
/// batches; returns the thread, which ends when all are sent.
fn pipeline(raw: &Raw, count: usize, request: &'static str) -> thread::JoinHandle<()> {
    let mut w = raw.writer.try_clone().unwrap();
    thread::spawn(move || {
        let mut batch = Vec::with_capacity(64 << 10);
        for i in 0..count {
            batch.extend_from_slice(format!("{{\"execute\": \"{request}\", \"id\": {i}}}").as_bytes());
            if batch.len() >= 60 << 10 || i + 1 == count {
                if w.write_all(&batch).is_err() {
                    return;
                }
                batch.clear();
            }
        }
    })
}

/// Reads `count` replies, checking their ids run 0.. in order, each of `len` bytes at least.
fn read_replies(raw: &mut Raw, count: usize, min_len: usize) {
    let mut line = Vec::new();
    for i in 0..count {
        line.clear();
        raw.reader.read_until(b'\n', &mut line).unwrap();
        assert!(line.len() >= min_len, "reply {i} of {count}: {:?}", String::from_utf8_lossy(&line));
        let tail = format!(", \"id\": {i}}}\r\n");
        assert!(line.ends_with(tail.as_bytes()), "reply {i}: {:?}", String::from_utf8_lossy(&line[..80]));
    }
}

/// Before the fix, the server turned everything one read brought in into replies before
/// writing any: 400 pipelined `big` requests (7 KiB) made it buffer 100 MiB of replies for a
/// client that was not reading. Now it stops taking requests while 1 MiB is pending, and
/// stops reading while its output is blocked.
#[test]
fn a_client_that_never_reads_its_replies_keeps_server_memory_bounded() {
    let server = ServerProcess::start(&[]);
    let mut raw = Raw::connect(server.path()).unwrap();
    raw.negotiate();
    let base = peak_rss(&server, Duration::from_millis(100));

    // Small replies: 200,000 query-status sent without reading.
    const SMALL: usize = 200_000;
    let writer = pipeline(&raw, SMALL, "query-status");
    let small_peak = peak_rss(&server, Duration::from_millis(1500));
    // Another client is served meanwhile.
    let mut other = Raw::connect(server.path()).unwrap();
    other.negotiate();
    assert!(other.query_status().starts_with("{\"return\": {\"status\": \"running\""));
    read_replies(&mut raw, SMALL, 40);
    writer.join().unwrap();

    // Large replies: 400 `big` (256 KiB each, 100 MiB in all) sent without reading.
    const BIG: usize = 400;
    let writer = pipeline(&raw, BIG, "big");
    let big_peak = peak_rss(&server, Duration::from_millis(1500));
    read_replies(&mut raw, BIG, BIG_REPLY);
    writer.join().unwrap();

    eprintln!(
        "server RSS: {base} KiB at start; peak {small_peak} KiB with {SMALL} query-status unread, \
         {big_peak} KiB with {BIG} x {} KiB replies unread",
        BIG_REPLY >> 10
    );
    assert!(small_peak < base + MAX_GROWTH_KIB, "{base} -> {small_peak} KiB with small replies unread");
    assert!(big_peak < base + MAX_GROWTH_KIB, "{base} -> {big_peak} KiB with large replies unread");
}

/// A negotiated client that never reads while a million events are emitted: the server
/// keeps the last `event_capacity` of them for it, not all, and the client, when it reads
/// at last, gets those and then a reply (its connection is fine).
#[test]
fn a_client_that_never_reads_events_keeps_server_memory_bounded() {
    let server = ServerProcess::start(&[]);
    let mut sleeper = Raw::connect(server.path()).unwrap();
    sleeper.negotiate();
    let mut emitter = Raw::connect(server.path()).unwrap();
    emitter.negotiate();
    let base = peak_rss(&server, Duration::from_millis(100));

    const FLOODS: usize = 5;
    const PER_FLOOD: usize = 200_000;
    let mut peak = base;
    for _ in 0..FLOODS {
        emitter.send(b"{\"execute\": \"flood\", \"arguments\": {\"n\": 200000}, \"id\": \"f\"}");
        // The emitter reads its own events and then the reply.
        loop {
            let line = emitter.line();
            assert!(!line.is_empty(), "the emitter was disconnected");
            if line.contains("\"id\": \"f\"") {
                assert_eq!(line, "{\"return\": {}, \"id\": \"f\"}\r\n");
                break;
            }
        }
        peak = peak.max(server.rss_kib());
    }
    peak = peak.max(peak_rss(&server, Duration::from_millis(200)));

    // The sleeper wakes: some events (at most the channel's 4096 plus what its socket
    // held), then its reply.
    let mut events = 0;
    sleeper.send(b"{\"execute\": \"query-status\", \"id\": \"qs\"}");
    loop {
        let line = sleeper.line();
        assert!(!line.is_empty(), "the sleeper was disconnected");
        if line.contains("\"id\": \"qs\"") {
            break;
        }
        assert!(line.contains("\"event\": \"TICK\""), "{line:?}");
        events += 1;
    }
    eprintln!(
        "server RSS: {base} KiB at start, peak {peak} KiB over {} events to a client not reading; \
         it then read {events} of them",
        FLOODS * PER_FLOOD
    );
    assert!(events < FLOODS * PER_FLOOD / 10, "{events} events kept for a client not reading");
    assert!(peak < base + MAX_GROWTH_KIB, "{base} -> {peak} KiB");
}
