//! Measures the simulator's `query-status` throughput over raw unix sockets: one client
//! waiting for each reply, 16 such clients at once, and one client pipelining.
//!
//! `cargo run --release -p qmp-server --example sim_throughput [SECONDS_PER_CASE]`

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

fn client(path: &Path) -> (BufReader<UnixStream>, UnixStream) {
    let s = UnixStream::connect(path).expect("connect");
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut w = s;
    let mut line = String::new();
    r.read_line(&mut line).expect("greeting");
    w.write_all(b"{\"execute\":\"qmp_capabilities\"}").expect("write");
    line.clear();
    r.read_line(&mut line).expect("negotiation");
    (r, w)
}

/// Serial request/reply for `dur`; returns commands done.
fn serial(path: &Path, dur: Duration) -> u64 {
    let (mut r, mut w) = client(path);
    let mut line = String::new();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < dur {
        w.write_all(b"{\"execute\":\"query-status\",\"id\":1}").expect("write");
        line.clear();
        r.read_line(&mut line).expect("reply");
        n += 1;
    }
    n
}

fn main() {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let dur = Duration::from_secs_f64(secs);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let _guard = rt.enter();
    let sim = qmp_server::sim::Simulator::new();
    let socket = sim.listen_unix_temp().expect("listen");
    let path = socket.path().to_path_buf();

    let n = serial(&path, dur);
    println!("1 client, serial:    {:>9.0} commands/s", n as f64 / secs);

    let threads: Vec<_> = (0..16)
        .map(|_| {
            let p = path.clone();
            std::thread::spawn(move || serial(&p, dur))
        })
        .collect();
    let total: u64 = threads.into_iter().map(|t| t.join().expect("thread")).sum();
    println!("16 clients, serial:  {:>9.0} commands/s", total as f64 / secs);

    let (mut r, mut w) = client(&path);
    let batch = 1000;
    let req = b"{\"execute\":\"query-status\",\"id\":1}".repeat(batch);
    let start = Instant::now();
    let mut n = 0u64;
    let mut line = String::new();
    while start.elapsed() < dur {
        w.write_all(&req).expect("write");
        for _ in 0..batch {
            line.clear();
            r.read_line(&mut line).expect("reply");
        }
        n += batch as u64;
    }
    println!("1 client, pipelined: {:>9.0} commands/s", n as f64 / start.elapsed().as_secs_f64());
}
