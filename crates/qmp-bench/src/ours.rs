//! Our client (crate `qmp`) under each load: serial calls, calls in flight, event bursts,
//! decoding a large reply.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use qmp::{Client, EventFilter, RecvError};
use serde::Deserialize;
use tokio::runtime::Runtime;

/// `query-status`, typed: the library's own command.
pub use qmp::commands::QueryStatus;

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
                let s = client.execute(QueryStatus).await.map_err(err)?;
                debug_assert!(s.running);
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
                    client.execute(QueryStatus).await?;
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
                        c.execute(QueryStatus).await?;
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
                let v =
                    client.call_raw("query-qmp-schema", serde_json::Value::Null).send().await.map_err(err)?;
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
        client.call_raw("bench-burst", serde_json::json!({ "count": count })).send().await.map_err(err)?;
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

/// One `query-qmp-schema` entry (QEMU's `SchemaInfo`), borrowing its strings from the reply:
/// what an application that reads the schema needs, without a `Value` tree's allocations.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)] // decoded to be measured, not read
pub struct SchemaInfo<'a> {
    name: &'a str,
    meta_type: &'a str,
    #[serde(borrow)]
    features: Option<Vec<&'a str>>,
    arg_type: Option<&'a str>,
    ret_type: Option<&'a str>,
    allow_oob: Option<bool>,
    #[serde(borrow)]
    members: Option<Vec<SchemaMember<'a>>>,
    tag: Option<&'a str>,
    #[serde(borrow)]
    variants: Option<Vec<SchemaVariant<'a>>>,
    #[serde(borrow)]
    values: Option<Vec<&'a str>>,
    element_type: Option<&'a str>,
    json_type: Option<&'a str>,
}

/// A member of an object, enum or alternate entry.
#[derive(Deserialize)]
#[allow(dead_code)]
pub struct SchemaMember<'a> {
    name: Option<&'a str>,
    #[serde(rename = "type")]
    ty: Option<&'a str>,
    default: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    features: Option<Vec<&'a str>>,
}

/// A variant of a union entry.
#[derive(Deserialize)]
#[allow(dead_code)]
pub struct SchemaVariant<'a> {
    case: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
}

/// Median µs of each step of decoding a `query-qmp-schema` reply (a whole
/// `{"return": ..., "id": ...}` line) the way our client does: frame it, classify it (the
/// `return` kept raw, as `call_raw(..).raw_json()` hands it over), then decode the `return` into
/// the library's `Vec<qmp::commands::SchemaInfo>` (what `execute(QueryQmpSchema)` does), into
/// a `serde_json::Value` (what `call_raw` does), or into entries that borrow their strings
/// from the reply (what an application can do with `raw_json()`).
pub struct Decode {
    /// The frame (copied out, as the client does) into `Vec<qmp::commands::SchemaInfo>` by
    /// `QueryQmpSchema`'s own reply decoder, as `execute(QueryQmpSchema)` takes it.
    pub library_us: f64,
    /// The same by `qmp::decode_reply`, serde's one-pass decode that every other command takes.
    pub serde_us: f64,
    /// Frame + the library's one-pass decode, timed together.
    pub total_library_us: f64,
    /// Cutting the value out of the byte stream.
    pub frame_us: f64,
    /// `Message::from_slice`: classifying it, the `return` kept as raw JSON.
    pub message_us: f64,
    /// The raw `return` into borrowed entries.
    pub typed_us: f64,
    /// The raw `return` into a `serde_json::Value` (and dropping it).
    pub value_us: f64,
    /// Frame + message + typed, timed together.
    pub total_typed_us: f64,
    /// Frame + message + value, timed together.
    pub total_value_us: f64,
}

/// Times each step of [`Decode`] `iters` times.
pub fn decode_us(reply: &[u8], iters: usize) -> io::Result<Decode> {
    let bad = |what: &str| io::Error::other(format!("the captured reply {what}"));
    let mut t = [(); 9].map(|_| Vec::with_capacity(iters));
    for i in 0..iters * 4 {
        let way = i % 4;
        let t0 = Instant::now();
        let mut framer = qmp_proto::Framer::new();
        framer.extend(reply);
        let frame = framer
            .next_frame()
            .map_err(|e| bad(&e.to_string()))?
            .ok_or_else(|| bad("is not one complete value"))?;
        let t1 = Instant::now();
        if way >= 2 {
            // The library's typed path, as `execute(QueryQmpSchema)` takes it: the frame is
            // copied out of the framer's buffer and decoded once, with no `Message` step; by
            // the command's own decoder, or by serde's path as any other command.
            use qmp::{commands::QueryQmpSchema, Command};
            let owned = frame.bytes.to_vec();
            let entries: Vec<qmp::commands::SchemaInfo> = if way == 2 {
                QueryQmpSchema::decode_reply(&owned).map_err(qmp::Error::from)
            } else {
                qmp::decode_reply(QueryQmpSchema::NAME, &owned)
            }
            .map_err(io::Error::other)?;
            std::hint::black_box(&entries);
            let t3 = Instant::now();
            let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
            t[0].push(us(t0, t1));
            if way == 2 {
                t[4].push(us(t1, t3));
                t[7].push(us(t0, t3));
            } else {
                t[8].push(us(t1, t3));
            }
            continue;
        }
        let msg = qmp_proto::Message::from_slice(frame.bytes).map_err(|e| bad(&e.to_string()))?;
        let qmp_proto::Message::Response(resp) = msg else {
            return Err(bad("is not a response"));
        };
        let raw = resp.result.map_err(|e| bad(&e.to_string()))?;
        let t2 = Instant::now();
        match way {
            0 => {
                let entries: Vec<SchemaInfo<'_>> =
                    serde_json::from_str(raw.get()).map_err(io::Error::other)?;
                std::hint::black_box(&entries);
            }
            1 => {
                let value: serde_json::Value = serde_json::from_str(raw.get()).map_err(io::Error::other)?;
                std::hint::black_box(&value);
            }
            _ => unreachable!("the library's paths are timed above"),
        }
        let t3 = Instant::now();
        let us = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e6;
        t[0].push(us(t0, t1));
        t[1].push(us(t1, t2));
        t[2 + way].push(us(t2, t3));
        t[5 + way].push(us(t0, t3));
    }
    let [mut fr, mut ms, mut ty, mut va, mut li, mut tt, mut tv, mut tl, mut se] = t;
    use crate::stats::median;
    Ok(Decode {
        frame_us: median(&mut fr),
        message_us: median(&mut ms),
        typed_us: median(&mut ty),
        value_us: median(&mut va),
        total_typed_us: median(&mut tt),
        total_value_us: median(&mut tv),
        library_us: median(&mut li),
        serde_us: median(&mut se),
        total_library_us: median(&mut tl),
    })
}

/// The blocking client (`qmp::blocking::Client`), which reads the socket on the calling
/// thread: no runtime, no task hop.
pub struct Blocking {
    client: qmp::blocking::Client,
}

impl Blocking {
    /// Connects with the default settings.
    pub fn connect(path: &Path) -> io::Result<Blocking> {
        Ok(Blocking { client: qmp::blocking::Client::connect(path).map_err(err)? })
    }

    /// Mean µs per typed `query-status` over `n` serial calls.
    pub fn serial_us(&self, n: usize) -> io::Result<f64> {
        let t = Instant::now();
        for _ in 0..n {
            let s = self.client.execute(QueryStatus).map_err(err)?;
            debug_assert!(s.running);
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
    }
}
