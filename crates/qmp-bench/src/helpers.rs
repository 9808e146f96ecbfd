//! The hidden subcommands the bench re-executes itself with (see [`crate::child`]), and the
//! load that drives the servers for the "server side" measure.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::child::ready_and_watch_parent;
use crate::floor::Floor;
use crate::ours::Flavor;

/// `qmp-bench peer --socket P [--schema FILE]`: the fast peer.
pub fn peer(socket: &Path, schema: Option<&Path>) -> io::Result<()> {
    let listener = qmp_unix::bind_unix(socket, 0o600)?;
    ready_and_watch_parent();
    crate::peer::serve(listener, schema)
}

/// `qmp-bench sim --socket P`: the simulated QEMU (crate `qmp-server`) on tokio's default
/// runtime, as `qmp sim` runs it.
pub fn sim(socket: &Path) -> io::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        // Many clients on one socket: the bench measures the simulator with 100 at once.
        let options = qmp_server::sim::SimOptions { many_clients: true, ..Default::default() };
        let sim = qmp_server::sim::Simulator::with_options(options);
        let _task = sim.listen_unix(socket)?;
        ready_and_watch_parent();
        std::future::pending::<io::Result<()>>().await
    })
}

/// `qmp-bench server --socket P`: the server framework with one sync command, `query-status`
/// answering what QEMU answers, on tokio's default runtime.
pub fn server(socket: &Path) -> io::Result<()> {
    use qmp_server::{schema::Ty, CommandSpec, Server};
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let server = Server::builder()
            .command(CommandSpec::new("query-status").returns(Ty::Any), |_| {
                Ok(serde_json::json!({"running": true, "singlestep": false, "status": "running"}))
            })
            .build();
        let listener = qmp_server::bind_unix(socket)?;
        ready_and_watch_parent();
        server.serve_unix(listener).await
    })
}

/// What `#[tokio::main]` would use for worker threads: the CPUs the process started with
/// (pinning for one measure does not change it).
pub fn num_cpus() -> usize {
    crate::pin::cpus()
}

/// Commands per second a server sustains for `clients` raw connections, each keeping
/// `depth` requests in flight (floor-style clients, so the server's cost dominates).
pub fn drive_server(socket: &Path, clients: usize, depth: usize, total: usize) -> io::Result<f64> {
    let per_client = (total / clients).max(depth);
    let socket: PathBuf = socket.to_path_buf();
    let mut conns = (0..clients).map(|_| Floor::connect(&socket)).collect::<io::Result<Vec<_>>>()?;
    let t = Instant::now();
    let done: io::Result<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> =
            conns.iter_mut().map(|f| s.spawn(move || f.pipelined_per_s(depth, per_client))).collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| io::Error::other("a load thread panicked"))?)
            .collect()
    });
    done?;
    let secs = t.elapsed().as_secs_f64();
    Ok((per_client / depth * depth * clients) as f64 / secs)
}

/// `qmp-bench profile WHAT [--n N]`: one workload of our client against a fresh fast peer (in
/// its own process; or the peer already serving `--socket P`), for a profiler: `serial`, `inflight64`, `events`, or `floor-serial`.
pub fn profile(what: &str, n: usize, peer: Option<&Path>) -> io::Result<()> {
    if let Some(kind) = what.strip_prefix("decode-") {
        // CPU only: Message::from_slice on one canned message, n times.
        let msg: &[u8] = match kind {
            "reply" => b"{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": true}, \"id\": 12345}",
            _ => crate::peer::EVENT.strip_suffix(b"\r\n").unwrap_or(crate::peer::EVENT),
        };
        let t = Instant::now();
        for _ in 0..n {
            let m = qmp_proto::Message::from_slice(std::hint::black_box(msg)).map_err(io::Error::other)?;
            std::hint::black_box(m);
        }
        eprintln!("decode {kind}: {:.0} ns each", t.elapsed().as_secs_f64() * 1e9 / n as f64);
        return Ok(());
    }
    let dir = tempfile::Builder::new().prefix("qmp-bench-").tempdir()?;
    let mut sock = dir.path().join("peer.sock");
    let sock_str = sock.to_string_lossy().into_owned();
    let _peer = match peer {
        Some(p) => {
            sock = p.to_path_buf();
            None
        }
        None => Some(crate::child::Helper::serving(&["peer", "--socket", &sock_str], &sock)?),
    };
    let t = Instant::now();
    match what {
        "serial" => {
            let us = crate::ours::Ours::connect(&sock, Flavor::CurrentThread)?.serial_us(n)?;
            eprintln!("serial: {us:.2} us per call");
        }
        "blocking-serial" => {
            let us = crate::ours::Blocking::connect(&sock)?.serial_us(n)?;
            eprintln!("blocking serial: {us:.2} us per call");
        }
        "serial-spawned" => {
            let us = crate::ours::Ours::connect(&sock, Flavor::CurrentThread)?.serial_spawned_us(n)?;
            eprintln!("serial (spawned task): {us:.2} us per call");
        }
        "tokio-floor-serial" => {
            let us = crate::floor::TokioFloor::connect(&sock)?.serial_us(n)?;
            eprintln!("tokio floor serial: {us:.2} us per call");
        }
        "floor-serial" => {
            let us = Floor::connect(&sock)?.serial_us(n)?;
            eprintln!("floor serial: {us:.2} us per call");
        }
        "inflight64" => {
            let per_s = crate::ours::Ours::connect(&sock, Flavor::CurrentThread)?.inflight_per_s(64, n)?;
            eprintln!("64 in flight: {per_s:.0} calls/s");
        }
        "inflight64-mt" => {
            let ours = crate::ours::Ours::connect(&sock, Flavor::MultiThread(num_cpus()))?;
            let per_s = ours.inflight_per_s(64, n)?;
            eprintln!("64 in flight (multi-thread runtime): {per_s:.0} calls/s");
        }
        "events" => {
            let b = crate::ours::event_burst(&sock, 1, n, Flavor::MultiThread(num_cpus()))?;
            eprintln!("events: {:.0}/s, {} lost", b.per_s, b.lost);
        }
        other => return Err(io::Error::other(format!("unknown workload {other:?}"))),
    }
    eprintln!("took {:.2} s", t.elapsed().as_secs_f64());
    Ok(())
}
