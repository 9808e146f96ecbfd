//! `qmp-bench --proxy`: the cost of `qmp proxy` in front of real QEMU. The same `qmp` client
//! runs `query-status` against QEMU directly and through an in-process
//! `qmp_server::proxy::Proxy` on QEMU's other monitor: one call at a time (the round trip),
//! and 64 in flight. Each figure is the best of three rounds.

use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use qmp_server::proxy::{Listen, Proxy};

/// Calls per round.
const N: usize = 2000;

pub fn run() -> io::Result<()> {
    let peer = qmp_testkit::Peer::qemu(2);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(async {
        let sock = peer.dir().join("proxy.sock");
        let address = qmp::Address::Unix(peer.socket(1).to_owned());
        let bound = Proxy::connect(&address).await?.listen(Listen::new(&sock)).bind()?;
        tokio::spawn(bound.serve());
        println!("query-status against real QEMU, {N} calls per round, best of 3 (µs per call)");
        println!("{:<14} {:>10} {:>14} {:>10}", "", "direct", "through proxy", "overhead");
        for inflight in [1usize, 64] {
            let direct = best(peer.socket(0), inflight).await?;
            let proxied = best(&sock, inflight).await?;
            println!(
                "{:<14} {:>10.1} {:>14.1} {:>9.1}%",
                if inflight == 1 { "serial" } else { "64 in flight" },
                direct,
                proxied,
                (proxied / direct - 1.0) * 100.0
            );
        }
        Ok(())
    })
}

async fn best(path: &Path, inflight: usize) -> io::Result<f64> {
    let client = qmp::Client::connect(path).await.map_err(io::Error::other)?;
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..inflight {
            let c = client.clone();
            let n = N / inflight + usize::from(t < N % inflight);
            tasks.spawn(async move {
                for _ in 0..n {
                    c.call_raw("query-status", ()).send().await.map_err(io::Error::other)?;
                }
                Ok::<(), io::Error>(())
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.map_err(io::Error::other)??;
        }
        best = best.min(start.elapsed());
    }
    Ok(best.as_secs_f64() * 1e6 / N as f64)
}
