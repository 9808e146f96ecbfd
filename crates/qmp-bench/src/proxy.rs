//! `qmp-bench --proxy`: the cost of `qmp proxy`. The same `qmp` client runs `query-status`
//! directly, through a `qmp proxy` process, and (against the fast peer) through `socat`, a
//! relay that copies bytes and does nothing else: the floor for any proxy process. Against
//! the fast peer the proxy's own cost shows; against real QEMU 7.2, what a user sees. In one
//! run: one call at a time (the round trip), 64 in flight, and 16 clients with 64 in flight
//! each, every reply counted, with the CPU time the proxy process spent per call. Then the
//! proxy's resident memory, idle and with 100 idle clients. Each figure is the median of
//! interleaved rounds.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Calls per round, in all (split among clients and tasks).
const N: usize = 2000;

/// One upstream and the relays in front of it.
struct Upstream {
    name: &'static str,
    direct: PathBuf,
    proxy: Relay,
    /// `socat` in front of the fast peer (QEMU's monitor serves one client: none there).
    socat: Option<Relay>,
}

/// A relay process listening on `path`, killed on drop.
struct Relay {
    path: PathBuf,
    child: std::process::Child,
}

impl Relay {
    /// `qmp proxy --upstream UPSTREAM --listen LISTEN`.
    fn proxy(upstream: &Path, listen: PathBuf) -> io::Result<Relay> {
        let mut cmd = Command::new(crate::external::qmp_binary()?);
        cmd.arg("proxy").arg("--upstream").arg(upstream).arg("--listen").arg(&listen);
        Relay::start(cmd, listen)
    }

    /// `socat` forking a relay per client from `listen` to `upstream`; `None` if this machine
    /// has no socat.
    fn socat(upstream: &Path, listen: PathBuf) -> io::Result<Option<Relay>> {
        let mut cmd = Command::new("socat");
        cmd.arg(format!("UNIX-LISTEN:{},fork", listen.display()))
            .arg(format!("UNIX-CONNECT:{}", upstream.display()));
        match Relay::start(cmd, listen) {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Runs `cmd` and waits for its socket.
    fn start(mut cmd: Command, path: PathBuf) -> io::Result<Relay> {
        let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
        let relay = Relay { path, child };
        crate::child::wait_for_path(&relay.path)?;
        Ok(relay)
    }

    /// CPU time the relay process and its children (socat forks one per client) have used
    /// so far, in µs.
    fn cpu_us(&self) -> io::Result<f64> {
        let pid = self.child.id();
        let mut ns = crate::child::cpu_ns(pid)?;
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))?;
        for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            // A child that ended meanwhile counts no more.
            ns += crate::child::cpu_ns(child).unwrap_or(0);
        }
        Ok(ns as f64 / 1e3)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run() -> io::Result<()> {
    let qemu = qmp_testkit::Peer::qemu(3);
    let dir = tempfile::Builder::new().prefix("qmp-bench-proxy-").tempdir()?;
    let fast = dir.path().join("fast.sock");
    let listener = qmp_unix::bind_unix(&fast, 0o600)?;
    std::thread::spawn(move || crate::peer::serve(listener, None));
    let upstreams = [
        Upstream {
            name: "the fast peer",
            direct: fast.clone(),
            proxy: Relay::proxy(&fast, dir.path().join("proxy-fast.sock"))?,
            socat: Relay::socat(&fast, dir.path().join("socat-fast.sock"))?,
        },
        // QEMU serves one client per monitor: 0 direct, 1 through the proxy.
        Upstream {
            name: "real QEMU 7.2",
            direct: qemu.socket(0).to_owned(),
            proxy: Relay::proxy(qemu.socket(1), dir.path().join("proxy-qemu.sock"))?,
            socat: None,
        },
    ];
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        println!(
            "query-status, {N} calls per round, median of {ROUNDS} interleaved rounds, µs per call \
             (CPU: the relay's CPU time per call)"
        );
        println!(
            "{:<14} {:<16} {:>8} {:>8} {:>10} {:>14} {:>13} {:>10} {:>10}",
            "upstream", "", "direct", "socat", "qmp proxy", "proxy/direct", "proxy/socat", "socat CPU", "proxy CPU"
        );
        for up in &upstreams {
            for (label, clients, inflight) in
                [("serial", 1, 1), ("64 in flight", 1, 64), ("16 clients x 64", 16, 64)]
            {
                let direct = connect(&up.direct, clients).await?;
                let proxied = connect(&up.proxy.path, clients).await?;
                let socat = match &up.socat {
                    Some(r) => Some(connect(&r.path, clients).await?),
                    None => None,
                };
                let (mut d, mut p, mut s) = (Vec::new(), Vec::new(), Vec::new());
                let (mut p_cpu, mut s_cpu) = (Vec::new(), Vec::new());
                for _ in 0..ROUNDS {
                    d.push(round(&direct, inflight).await?);
                    let before = up.proxy.cpu_us()?;
                    p.push(round(&proxied, inflight).await?);
                    p_cpu.push((up.proxy.cpu_us()? - before) / N as f64);
                    if let (Some(conns), Some(relay)) = (&socat, &up.socat) {
                        let before = relay.cpu_us()?;
                        s.push(round(conns, inflight).await?);
                        s_cpu.push((relay.cpu_us()? - before) / N as f64);
                    }
                }
                let (d, p, p_cpu) = (median(d), median(p), median(p_cpu));
                let (s, vs_socat, s_cpu) = match s.is_empty() {
                    true => ("-".to_string(), "-".to_string(), "-".to_string()),
                    false => {
                        let s = median(s);
                        (format!("{s:.1}"), format!("{:.2}", p / s), format!("{:.1}", median(s_cpu)))
                    }
                };
                println!(
                    "{:<14} {label:<16} {d:>8.1} {s:>8} {p:>10.1} {:>14.2} {vs_socat:>13} {s_cpu:>10} {p_cpu:>10.1}",
                    up.name,
                    p / d
                );
            }
        }
        Ok::<(), io::Error>(())
    })?;
    drop(upstreams);
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
    let relay = Relay::proxy(upstream, dir.join("rss.sock"))?;
    std::thread::sleep(Duration::from_millis(100));
    let pid = relay.child.id();
    let idle = crate::child::status_kb(pid, "VmRSS:")?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let clients = rt.block_on(async {
        let mut v = Vec::new();
        for _ in 0..100 {
            let c = qmp::Client::connect(&relay.path).await.map_err(io::Error::other)?;
            c.call_raw("query-status", ()).send().await.map_err(io::Error::other)?;
            v.push(c);
        }
        Ok::<_, io::Error>(v)
    })?;
    std::thread::sleep(Duration::from_millis(100));
    let busy = crate::child::status_kb(pid, "VmRSS:")?;
    drop(clients);
    println!("qmp proxy RSS: {idle} KiB idle, {busy} KiB with 100 idle clients");
    Ok(())
}
