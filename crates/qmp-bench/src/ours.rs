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

    /// As [`Ours::serial_us`], with the loop in a spawned task rather than in `block_on`'s
    /// own future (tokio's current-thread scheduler polls the driver once more, without
    /// blocking, before it polls a woken `block_on` future).
    pub fn serial_spawned_us(&self, n: usize) -> io::Result<f64> {
        let client = self.client.clone();
        self.rt.block_on(async move {
            let task = tokio::spawn(async move {
                let t = Instant::now();
                for _ in 0..n {
                    client.execute(QueryStatus {}).await?;
                }
                Ok::<f64, qmp::Error>(t.elapsed().as_secs_f64() * 1e6 / n as f64)
            });
            task.await.map_err(io::Error::other)?.map_err(err)
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
        // Queues that hold a whole burst: the measure is delivery, not loss.
        let client = Client::builder().event_queue(count).connect(path).await.map_err(err)?;
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

/// Median µs of each step of decoding `reply` (a whole `{"return": ..., "id": ...}` line) the
/// way the client does for `execute_raw`: frame it, classify it (the `return` kept raw),
/// decode the `return` into a JSON value.
pub struct Decode {
    /// Cutting the value out of the byte stream.
    pub frame_us: f64,
    /// `Message::from_slice`: classifying it, the `return` kept as raw JSON.
    pub message_us: f64,
    /// Decoding the raw `return` into a `serde_json::Value`.
    pub value_us: f64,
    /// All three, timed together.
    pub total_us: f64,
}

/// Times each step of [`Decode`] `iters` times.
pub fn decode_us(reply: &[u8], iters: usize) -> io::Result<Decode> {
    let bad = |what: &str| io::Error::other(format!("the captured reply {what}"));
    let (mut fr, mut ms, mut vs, mut tot) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iters {
        let t0 = Instant::now();
        let mut framer = qmp_proto::Framer::new();
        framer.extend(reply);
        let frame = framer
            .next_frame()
            .map_err(|e| bad(&e.to_string()))?
            .ok_or_else(|| bad("is not one complete value"))?;
        let t1 = Instant::now();
        let msg = qmp_proto::Message::from_slice(frame.bytes).map_err(|e| bad(&e.to_string()))?;
        let qmp_proto::Message::Response(resp) = msg else {
            return Err(bad("is not a response"));
        };
        let raw = resp.result.map_err(|e| bad(&e.to_string()))?;
        let t2 = Instant::now();
        let value: serde_json::Value = serde_json::from_str(raw.get()).map_err(io::Error::other)?;
        std::hint::black_box(&value);
        drop(value);
        let t3 = Instant::now();
        fr.push((t1 - t0).as_secs_f64() * 1e6);
        ms.push((t2 - t1).as_secs_f64() * 1e6);
        vs.push((t3 - t2).as_secs_f64() * 1e6);
        tot.push((t3 - t0).as_secs_f64() * 1e6);
    }
    use crate::stats::median;
    Ok(Decode {
        frame_us: median(&mut fr),
        message_us: median(&mut ms),
        value_us: median(&mut vs),
        total_us: median(&mut tot),
    })
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
