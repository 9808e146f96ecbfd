//! `qmp-bench --proxy`: the cost of `qmp proxy`. The same `qmp` client runs `query-status`
//! directly and through an in-process `qmp_server::proxy::Proxy`, against the fast peer (so
//! the proxy's own cost shows) and against real QEMU 7.2 (what a user sees), in one run: one
//! call at a time (the round trip), 64 in flight, and 16 clients with 64 in flight each, every
//! reply counted. Then the `qmp proxy` binary's resident memory, idle and with 100 idle
//! clients. Each figure is the median of interleaved rounds.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use qmp_server::proxy::{Listen, Proxy};

/// Calls per round, in all (split among clients and tasks).
const N: usize = 2000;

/// One upstream and the proxy in front of it.
struct Pair {
    direct: PathBuf,
    proxied: PathBuf,
}

pub fn run() -> io::Result<()> {
    let qemu = qmp_testkit::Peer::qemu(3);
    let dir = tempfile::Builder::new().prefix("qmp-bench-proxy-").tempdir()?;
    let fast = dir.path().join("fast.sock");
    let listener = qmp_unix::bind_unix(&fast, 0o600)?;
    std::thread::spawn(move || crate::peer::serve(listener, None));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let mut pairs = Vec::new();
        // The fast peer serves any number of clients; QEMU one per monitor (0 direct, 1 proxied).
        for (name, direct, upstream) in [
            ("the fast peer", fast.clone(), fast.clone()),
            ("real QEMU 7.2", qemu.socket(0).to_owned(), qemu.socket(1).to_owned()),
        ] {
            let sock = dir.path().join(format!("proxy-{}.sock", pairs.len()));
            let bound =
                Proxy::connect(&qmp::Address::Unix(upstream)).await?.listen(Listen::new(&sock)).bind()?;
            tokio::spawn(bound.serve());
            pairs.push((name, Pair { direct, proxied: sock }));
        }
        println!("query-status, {N} calls per round, median of {ROUNDS} interleaved rounds (µs per call; ratio: through the proxy / direct)");
        println!("{:<16} {:<22} {:>10} {:>14} {:>9}", "upstream", "", "direct", "through proxy", "ratio");
        for (name, pair) in &pairs {
            for (label, clients, inflight) in [("serial", 1, 1), ("64 in flight", 1, 64), ("16 clients x 64", 16, 64)] {
                let direct = connect(&pair.direct, clients).await?;
                let proxied = connect(&pair.proxied, clients).await?;
                let (mut d, mut p) = (Vec::new(), Vec::new());
                for _ in 0..ROUNDS {
                    d.push(round(&direct, inflight).await?);
                    p.push(round(&proxied, inflight).await?);
                }
                let (d, p) = (median(d), median(p));
                println!("{name:<16} {label:<22} {d:>10.1} {p:>14.1} {:>9.2}", p / d);
            }
        }
        Ok::<(), io::Error>(())
    })?;
    proxy_rss(qemu.socket(2), dir.path())
}

/// Rounds of each measure, alternating direct and through the proxy, so that both see the
/// same moments of a shared machine.
const ROUNDS: usize = 7;

/// `clients` connections to `path` (QEMU's monitor serves one: there the others are not
/// made, and the direct figure is one client's; 16 clients on one QEMU monitor are only
/// possible through the proxy).
async fn connect(path: &Path, clients: usize) -> io::Result<Vec<qmp::Client>> {
    let mut conns = Vec::new();
    for _ in 0..clients {
        match qmp::Client::builder().timeout(Duration::from_millis(500)).connect(path).await {
            Ok(c) => conns.push(c.without_timeout()),
            // A QEMU monitor serves one client: the next waits, ungreeted.
            Err(_) if !conns.is_empty() => break,
            Err(e) => return Err(io::Error::other(e)),
        }
    }
    Ok(conns)
}

/// µs per call for [`N`] calls spread over `inflight` tasks on each connection; every reply
/// must come.
async fn round(conns: &[qmp::Client], inflight: usize) -> io::Result<f64> {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let lanes = conns.len() * inflight;
    for lane in 0..lanes {
        let c = conns[lane % conns.len()].clone();
        let n = N / lanes + usize::from(lane < N % lanes);
        tasks.spawn(async move {
            for _ in 0..n {
                c.call_raw("query-status", ()).send().await.map_err(io::Error::other)?;
            }
            Ok::<usize, io::Error>(n)
        });
    }
    let mut answered = 0;
    while let Some(r) = tasks.join_next().await {
        answered += r.map_err(io::Error::other)??;
    }
    if answered != N {
        return Err(io::Error::other(format!("{answered} of {N} calls answered")));
    }
    Ok(start.elapsed().as_secs_f64() * 1e6 / N as f64)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The `qmp proxy` binary in front of `upstream`: its RSS idle, then with 100 clients that
/// have each run one command and stay connected.
fn proxy_rss(upstream: &Path, dir: &Path) -> io::Result<()> {
    let qmp = crate::external::qmp_binary()?;
    let listen = dir.join("rss.sock");
    let mut child = Command::new(qmp)
        .arg("proxy")
        .arg("--upstream")
        .arg(upstream)
        .arg("--listen")
        .arg(&listen)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| {
        crate::child::wait_for_path(&listen)?;
        std::thread::sleep(Duration::from_millis(100));
        let idle = crate::child::status_kb(child.id(), "VmRSS:")?;
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let clients = rt.block_on(async {
            let mut v = Vec::new();
            for _ in 0..100 {
                let c = qmp::Client::connect(&listen).await.map_err(io::Error::other)?;
                c.call_raw("query-status", ()).send().await.map_err(io::Error::other)?;
                v.push(c);
            }
            Ok::<_, io::Error>(v)
        })?;
        std::thread::sleep(Duration::from_millis(100));
        let busy = crate::child::status_kb(child.id(), "VmRSS:")?;
        drop(clients);
        println!("qmp proxy RSS: {idle} KiB idle, {busy} KiB with 100 idle clients");
        Ok(())
    })();
    let _ = child.kill();
    let _ = child.wait();
    result
}
