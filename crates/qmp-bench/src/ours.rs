//! Our client (crate `qmp`) under each load: serial calls, calls in flight, event bursts,
//! decoding a large reply.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use qmp::{Client, EventFilter, RecvError};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

/// `query-status`, typed as an application would write it.
#[derive(Serialize)]
pub struct QueryStatus {}

/// Its return.
#[derive(Deserialize)]
pub struct StatusInfo {
    /// The run state, such as `running`.
    pub status: String,
    /// Whether the VM runs.
    pub running: bool,
}

impl qmp::Command for QueryStatus {
    const NAME: &'static str = "query-status";
    type Output = StatusInfo;
}

/// Which tokio runtime drives the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `#[tokio::main(flavor = "current_thread")]`.
    CurrentThread,
    /// A multi-thread runtime with this many workers.
    MultiThread(usize),
}

/// Builds a runtime of `flavor`.
pub fn runtime(flavor: Flavor) -> io::Result<Runtime> {
    match flavor {
        Flavor::CurrentThread => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        Flavor::MultiThread(n) => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(n).enable_all().build()
        }
    }
}

fn err(e: qmp::Error) -> io::Error {
    io::Error::other(e.to_string())
}

/// A connected client with its runtime.
pub struct Ours {
    rt: Runtime,
    client: Client,
}

impl Ours {
    /// Connects with the default settings (greeting, negotiation with oob when offered).
    pub fn connect(path: &Path, flavor: Flavor) -> io::Result<Ours> {
        let rt = runtime(flavor)?;
        let client = rt.block_on(Client::connect(path)).map_err(err)?;
        Ok(Ours { rt, client })
    }

    /// The peer's version from its greeting, such as `7.2.22 (Debian ...)`.
    pub fn version(&self) -> Option<String> {
        let g = self.client.greeting()?;
        Some(format!("{} {}", g.version.qemu, g.version.package).trim().to_owned())
    }

    /// Mean µs per typed `query-status` over `n` serial calls.
    pub fn serial_us(&self, n: usize) -> io::Result<f64> {
        let client = self.client.clone();
        self.rt.block_on(async move {
            let t = Instant::now();
            for _ in 0..n {
                let s = client.execute(QueryStatus {}).await.map_err(err)?;
                debug_assert!(s.running && !s.status.is_empty());
            }
            Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
        })
    }

    /// Commands per second with `depth` tasks each keeping one call in flight.
    pub fn inflight_per_s(&self, depth: usize, total: usize) -> io::Result<f64> {
        let per_task = (total / depth).max(1);
        let client = self.client.clone();
        self.rt.block_on(async move {
            let t = Instant::now();
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..depth {
                let c = client.clone();
                set.spawn(async move {
                    for _ in 0..per_task {
                        c.execute(QueryStatus {}).await?;
                    }
                    Ok::<(), qmp::Error>(())
                });
            }
            while let Some(r) = set.join_next().await {
                r.map_err(io::Error::other)?.map_err(err)?;
            }
            Ok((per_task * depth) as f64 / t.elapsed().as_secs_f64())
        })
    }

    /// Mean µs per `query-qmp-schema` round trip, decoded into a JSON value.
    pub fn schema_round_trip_us(&self, n: usize) -> io::Result<f64> {
        let client = self.client.clone();
        self.rt.block_on(async move {
            let t = Instant::now();
            for _ in 0..n {
                let v = client.execute_raw("query-qmp-schema", serde_json::Value::Null).await.map_err(err)?;
                debug_assert!(v.is_array());
            }
            Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
        })
    }
}

/// The result of one event burst.
pub struct Burst {
    /// Events delivered per second to each subscriber.
    pub per_s: f64,
    /// Events the subscribers lost to full queues, summed.
    pub lost: u64,
}

/// Subscribes `subscribers` times, asks the fast peer for a burst of `count` events, and
/// times until every subscriber has taken (or been told it lost) the last one.
pub fn event_burst(path: &Path, subscribers: usize, count: usize, flavor: Flavor) -> io::Result<Burst> {
    let rt = runtime(flavor)?;
    rt.block_on(async move {
        let client = Client::builder().event_queue(64 * 1024).connect(path).await.map_err(err)?;
        let lost = Arc::new(AtomicU64::new(0));
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..subscribers {
            let mut sub = client.subscribe(EventFilter::any());
            let lost = Arc::clone(&lost);
            set.spawn(async move {
                let mut seen = 0u64;
                while seen < count as u64 {
                    match sub.recv().await {
                        Ok(_) => seen += 1,
                        Err(RecvError::Lagged(n)) => {
                            seen += n;
                            lost.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(_) => break,
                    }
                }
                seen
            });
        }
        let t = Instant::now();
        client.execute_raw("bench-burst", serde_json::json!({ "count": count })).await.map_err(err)?;
        while let Some(r) = set.join_next().await {
            let seen = r.map_err(io::Error::other)?;
            if seen < count as u64 {
                return Err(io::Error::other(format!("a subscriber saw {seen} of {count} events")));
            }
        }
        let secs = t.elapsed().as_secs_f64();
        Ok(Burst { per_s: count as f64 / secs, lost: lost.load(Ordering::Relaxed) })
    })
}

/// Median µs to decode `reply` (a whole `{"return": ..., "id": ...}` line) the way the client
/// does for `execute_raw`: frame it, classify it, decode the `return` into a JSON value.
pub fn decode_us(reply: &[u8], iters: usize) -> io::Result<f64> {
    let mut times = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        let mut framer = qmp_proto::Framer::new();
        framer.extend(reply);
        let frame = framer
            .next_frame()
            .map_err(|e| io::Error::other(e.to_string()))?
            .ok_or_else(|| io::Error::other("the captured reply is not one complete value"))?;
        let msg = qmp_proto::Message::from_slice(frame.bytes).map_err(|e| io::Error::other(e.to_string()))?;
        let qmp_proto::Message::Response(resp) = msg else {
            return Err(io::Error::other("the captured reply is not a response"));
        };
        let raw = resp.result.map_err(|e| io::Error::other(e.to_string()))?;
        let value: serde_json::Value = serde_json::from_str(raw.get()).map_err(io::Error::other)?;
        std::hint::black_box(&value);
        drop(value);
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    Ok(crate::stats::median(&mut times))
}

/// The blocking wrapper: mean µs per serial call.
pub fn blocking_serial_us(path: &Path, n: usize) -> io::Result<f64> {
    let client = qmp::blocking::Client::connect(path).map_err(err)?;
    for _ in 0..n.min(200) {
        client.execute(QueryStatus {}).map_err(err)?;
    }
    let t = Instant::now();
    for _ in 0..n {
        client.execute(QueryStatus {}).map_err(err)?;
    }
    Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
}
