//! One run: starts the peers, takes every measure, fills the report. A measure that cannot be
//! taken (QEMU missing, a helper failing) is reported as missing with the reason; the others
//! go on.

use std::io;
use std::path::{Path, PathBuf};

use crate::child::{on_path, Helper};
use crate::floor::Floor;
use crate::ours::{Blocking, Flavor, Ours};
use crate::report::{Report, Row, Target};
use crate::{external, helpers, ours, stats};

/// What the command line asked for.
pub struct Options {
    /// A short run.
    pub quick: bool,
    /// Print JSON too.
    pub json: bool,
}

/// How much work each measure does.
struct Sizes {
    /// Interleaved rounds of the serial measures (the median round of each client counts).
    rounds: usize,
    /// Interleaved rounds against real QEMU: many short ones, as its own speed drifts by
    /// ±15% from second to second.
    qemu_rounds: usize,
    /// Serial calls per round against the fast peer.
    serial: usize,
    /// Serial calls per round against real QEMU.
    qemu_serial: usize,
    /// Calls per throughput measure.
    throughput: usize,
    /// Events in a burst.
    burst: usize,
    /// One-shot process runs.
    oneshot: usize,
    /// Calls by the qemu.qmp script.
    python: usize,
    /// Seconds the idle simulator's CPU time is watched for.
    idle_secs: u64,
}

fn sizes(quick: bool) -> Sizes {
    if quick {
        Sizes {
            rounds: 3,
            qemu_rounds: 15,
            serial: 1000,
            qemu_serial: 60,
            throughput: 40_000,
            burst: 200_000,
            oneshot: 10,
            python: 500,
            idle_secs: 2,
        }
    } else {
        Sizes {
            rounds: 21,
            qemu_rounds: 41,
            serial: 2000,
            qemu_serial: 100,
            throughput: 200_000,
            burst: 1_000_000,
            oneshot: 40,
            python: 2000,
            idle_secs: 10,
        }
    }
}

fn note(what: &str) {
    eprintln!("qmp-bench: {what}");
}

fn s<T>(r: io::Result<T>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

/// Runs every measure.
pub fn run(opts: &Options) -> Report {
    crate::pin::init();
    let z = sizes(opts.quick);
    let mut rep = Report::default();
    machine_facts(&mut rep, opts);
    let dir = match tempfile::Builder::new().prefix("qmp-bench-").tempdir() {
        Ok(d) => d,
        Err(e) => {
            rep.facts.insert("error", format!("cannot create a temporary directory: {e}"));
            return rep;
        }
    };
    let python = external::python_with_qemu_qmp().map_err(|e| e.to_string());

    // Real QEMU first: its schema reply feeds the fast peer and the decode measure.
    note("real QEMU 7.2: serial round trips");
    let schema = real_qemu(&mut rep, &z, &python);
    let schema_file = dir.path().join("schema.json");
    let schema_arg = match &schema {
        Ok(bytes) if std::fs::write(&schema_file, bytes).is_ok() => Some(schema_file.clone()),
        _ => None,
    };

    let sock = dir.path().join("peer.sock");
    let sock_str = sock.to_string_lossy().into_owned();
    let mut peer_args = vec!["peer", "--socket", &sock_str];
    let schema_str = schema_arg.as_ref().map(|p| p.to_string_lossy().into_owned());
    if let Some(p) = &schema_str {
        peer_args.extend(["--schema", p.as_str()]);
    }
    let peer = match Helper::serving(&peer_args, &sock) {
        Ok(p) => p,
        Err(e) => {
            rep.facts.insert("error", format!("cannot start the fast peer: {e}"));
            return rep;
        }
    };

    note("fast peer: serial round trips");
    fast_serial(&mut rep, &z, &sock, &python);
    pinned_serial(&mut rep, &z, &sock, peer.pid());
    note("fast peer: calls in flight");
    throughput(&mut rep, &z, &sock, peer.pid());
    note("fast peer: event bursts");
    events(&mut rep, &z, &sock);
    note("schema reply decoding");
    schema_decode(&mut rep, &z, &sock, schema.as_deref());
    note("one-shot `qmp query-status`");
    let oneshot = s(external::qmp_binary().and_then(|q| external::oneshot_ms(&q, &[], &sock, z.oneshot)));
    let oneshot_floor = s(std::env::current_exe()
        .and_then(|me| external::oneshot_ms(&me, &["oneshot-floor"], &sock, z.oneshot)));
    let floor_v = rep.num("floor_oneshot_ms", &oneshot_floor);
    rep.num("oneshot_ms", &oneshot);
    rep.row(
        Row::new("one-shot `qmp --socket SOCK query-status`, wall, median", oneshot, "ms")
            .vs("floor process", floor_v)
            .target(Target::AtMost(5.0)),
    );
    note("resident memory");
    memory(&mut rep, &sock, dir.path(), z.idle_secs);
    drop(peer);
    note("server side");
    server_side(&mut rep, &z, dir.path());
    rep
}

fn machine_facts(rep: &mut Report, opts: &Options) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown".into());
    rep.facts.insert("cpu", model);
    rep.facts.insert("cpus", helpers::num_cpus().to_string());
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    if let Some(total) = mem.lines().find_map(|l| l.strip_prefix("MemTotal:")) {
        rep.facts.insert("memory", total.trim().to_owned());
    }
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    rep.facts.insert("kernel", kernel.trim().to_owned());
    rep.facts.insert("mode", if opts.quick { "quick" } else { "full" }.into());
}

/// Interleaves rounds of several clients so that drift on a shared machine (other work, the
/// scheduler putting both ends on one CPU or on two) hits them alike; each client's figure is
/// the median of its rounds, so that one lucky or unlucky round moves no ratio.
fn interleaved(
    rounds: usize,
    clients: &mut [&mut dyn FnMut() -> io::Result<f64>],
) -> Vec<Result<f64, String>> {
    interleaved_best(rounds, median_of, clients)
}

/// [`interleaved`] for rates.
fn interleaved_rates(
    rounds: usize,
    clients: &mut [&mut dyn FnMut() -> io::Result<f64>],
) -> Vec<Result<f64, String>> {
    interleaved_best(rounds, median_of, clients)
}

fn median_of(xs: &[f64]) -> f64 {
    stats::median(&mut xs.to_vec())
}

fn interleaved_best(
    rounds: usize,
    best: fn(&[f64]) -> f64,
    clients: &mut [&mut dyn FnMut() -> io::Result<f64>],
) -> Vec<Result<f64, String>> {
    let mut samples: Vec<Result<Vec<f64>, String>> = clients.iter().map(|_| Ok(Vec::new())).collect();
    for _ in 0..rounds {
        for (c, acc) in clients.iter_mut().zip(samples.iter_mut()) {
            if let Ok(v) = acc {
                match c() {
                    Ok(x) => v.push(x),
                    Err(e) => *acc = Err(e.to_string()),
                }
            }
        }
    }
    samples.into_iter().map(|r| r.map(|v| best(&v))).collect()
}

/// Serial round trips against real QEMU (floor, ours, qemu.qmp); returns its schema reply.
fn real_qemu(rep: &mut Report, z: &Sizes, python: &Result<PathBuf, String>) -> Result<Vec<u8>, String> {
    let result = (|| -> Result<Vec<u8>, String> {
        on_path("qemu-system-x86_64").ok_or("qemu-system-x86_64 not on PATH (scripts/install-deps.sh)")?;
        let qemu =
            std::panic::catch_unwind(|| qmp_testkit::Peer::qemu(3)).map_err(|_| "QEMU did not start")?;
        // One client per monitor, as QEMU serves them.
        let (a, b, c) = (qemu.socket(0), qemu.socket(1), qemu.socket(2));
        let mut floor = s(Floor::connect(a))?;
        let ours = s(Ours::connect(b, Flavor::CurrentThread))?;
        let blocking = s(Blocking::connect(c))?;
        s(floor.serial_us(50))?;
        s(ours.serial_us(50))?;
        s(blocking.serial_us(50))?;
        let n = z.qemu_serial;
        let r = interleaved(
            z.qemu_rounds,
            &mut [&mut || floor.serial_us(n), &mut || blocking.serial_us(n), &mut || ours.serial_us(n)],
        );
        let (fl, blk, our) = (r[0].clone(), r[1].clone(), r[2].clone());
        let schema = s(floor.fetch("query-qmp-schema"))?;
        rep.facts.insert("qemu", qemu_version(&ours));
        drop(ours);
        drop(blocking);
        let floor_v = rep.num("floor_qemu_serial_us", &fl);
        rep.num("qemu_serial_us", &blk);
        rep.num("qemu_async_serial_us", &our);
        rep.row(
            Row::new("serial round trip, real QEMU 7.2 (qmp::blocking::Client)", blk, "us")
                .vs("floor", floor_v)
                .target(Target::AtMostTimesRef(1.05)),
        );
        rep.row(
            Row::new("serial round trip, real QEMU 7.2 (async, current-thread)", our, "us")
                .vs("floor", floor_v),
        );
        rep.row(Row::new("serial round trip, real QEMU 7.2, floor", fl, "us"));
        let py = python
            .clone()
            .and_then(|p| s(external::qemu_qmp_serial_us(&p, b, z.python.min(500))).map(|r| r.0));
        rep.num("qemu_qmp_qemu_serial_us", &py);
        rep.row(Row::new("serial round trip, real QEMU 7.2, qemu.qmp", py, "us").vs("floor", floor_v));
        Ok(schema)
    })();
    if let Err(why) = &result {
        for key in ["qemu_serial_us", "floor_qemu_serial_us"] {
            rep.num(key, &Err(why.clone()));
        }
        rep.row(
            Row::new("serial round trip, real QEMU 7.2", Err(why.clone()), "us")
                .target(Target::AtMostTimesRef(1.05)),
        );
    }
    result
}

fn qemu_version(ours: &Ours) -> String {
    ours.version().unwrap_or_else(|| "unknown".into())
}

fn fast_serial(rep: &mut Report, z: &Sizes, sock: &Path, python: &Result<PathBuf, String>) {
    let n = z.serial;
    let r = (|| -> io::Result<Vec<Result<f64, String>>> {
        let mut floor = Floor::connect(sock)?;
        let mut tokio_floor = crate::floor::TokioFloor::connect(sock)?;
        let ours = Ours::connect(sock, Flavor::CurrentThread)?;
        let ours_mt = Ours::connect(sock, Flavor::MultiThread(helpers::num_cpus()))?;
        let blocking = Blocking::connect(sock)?;
        floor.serial_us(200)?;
        tokio_floor.serial_us(200)?;
        ours.serial_us(200)?;
        ours_mt.serial_us(200)?;
        blocking.serial_us(200)?;
        Ok(interleaved(
            z.rounds,
            &mut [
                &mut || floor.serial_us(n),
                &mut || ours.serial_us(n),
                &mut || ours_mt.serial_us(n),
                &mut || blocking.serial_us(n),
                &mut || tokio_floor.serial_us(n),
            ],
        ))
    })();
    let [fl, our, our_mt, blocking, tokio_fl] = match r {
        Ok(v) => [v[0].clone(), v[1].clone(), v[2].clone(), v[3].clone(), v[4].clone()],
        Err(e) => std::array::from_fn(|_| Err(e.to_string())),
    };
    let floor_v = rep.num("floor_serial_unpinned_us", &fl);
    rep.num("serial_unpinned_us", &blocking);
    rep.num("async_serial_unpinned_us", &our);
    rep.num("serial_multi_thread_us", &our_mt);
    rep.row(
        Row::new("serial round trip, unpinned (qmp::blocking::Client)", blocking, "us").vs("floor", floor_v),
    );
    rep.row(
        Row::new("serial round trip, unpinned (async, current-thread runtime)", our, "us")
            .vs("floor", floor_v),
    );
    rep.row(
        Row::new("serial round trip, unpinned (async, multi-thread runtime)", our_mt, "us")
            .vs("floor", floor_v),
    );
    rep.row(Row::new("serial round trip, unpinned, floor", fl, "us"));
    rep.num("tokio_floor_serial_unpinned_us", &tokio_fl);
    rep.row(
        Row::new("serial round trip, unpinned, the floor's loop on tokio", tokio_fl, "us")
            .vs("floor", floor_v),
    );
    let py = python.clone().and_then(|p| {
        s(external::qemu_qmp_serial_us(&p, sock, z.python)).map(|(us, ver)| {
            rep.facts.insert("qemu.qmp", ver);
            us
        })
    });
    rep.num("qemu_qmp_serial_us", &py);
    rep.row(Row::new("serial round trip, unpinned, qemu.qmp (Python)", py, "us").vs("floor", floor_v));
}

/// The serial round trip with both ends pinned: on one CPU (the headline `serial_us`: the
/// regime where the client's own CPU time shows whole), then on two (see [`crate::pin`]).
fn pinned_serial(rep: &mut Report, z: &Sizes, sock: &Path, peer_pid: u32) {
    let regimes: &[(&str, &str, usize)] = if helpers::num_cpus() < 2 {
        &[("one CPU", "pinned1", 0)]
    } else {
        &[("one CPU", "pinned1", 0), ("two CPUs", "pinned2", 1)]
    };
    for &(label, key, client_cpu) in regimes {
        let n = z.serial;
        let r = (|| -> io::Result<Vec<Result<f64, String>>> {
            // The peer's threads for the connections made now inherit its main thread's CPU.
            crate::pin::set(peer_pid, Some(crate::pin::nth(0)))?;
            crate::pin::set(0, Some(crate::pin::nth(client_cpu)))?;
            let mut floor = Floor::connect(sock)?;
            let mut tokio_floor = crate::floor::TokioFloor::connect(sock)?;
            let ours = Ours::connect(sock, Flavor::CurrentThread)?;
            let blocking = Blocking::connect(sock)?;
            floor.serial_us(200)?;
            tokio_floor.serial_us(200)?;
            ours.serial_us(200)?;
            blocking.serial_us(200)?;
            Ok(interleaved(
                z.rounds.div_ceil(2),
                &mut [
                    &mut || floor.serial_us(n),
                    &mut || blocking.serial_us(n),
                    &mut || ours.serial_us(n),
                    &mut || tokio_floor.serial_us(n),
                ],
            ))
        })();
        let _ = crate::pin::set(0, None);
        let _ = crate::pin::set(peer_pid, None);
        let [fl, blk, our, tfl] = match r {
            Ok(v) => [v[0].clone(), v[1].clone(), v[2].clone(), v[3].clone()],
            Err(e) => std::array::from_fn(|_| Err(e.to_string())),
        };
        let (floor_key, blocking_key, async_key, tokio_key) = if key == "pinned1" {
            ("floor_serial_us", "serial_us", "async_serial_us", "tokio_floor_serial_us")
        } else {
            (
                "floor_serial_pinned2_us",
                "serial_pinned2_us",
                "async_serial_pinned2_us",
                "tokio_floor_serial_pinned2_us",
            )
        };
        let floor_v = rep.num(floor_key, &fl);
        rep.num(blocking_key, &blk);
        rep.num(async_key, &our);
        rep.num(tokio_key, &tfl);
        rep.row(
            Row::new(format!("serial round trip, pinned to {label} (qmp::blocking::Client)"), blk, "us")
                .vs("floor", floor_v)
                .target(Target::AtMostTimesRef(1.15)),
        );
        rep.row(
            Row::new(format!("serial round trip, pinned to {label} (async, current-thread)"), our, "us")
                .vs("floor", floor_v),
        );
        rep.row(
            Row::new(format!("serial round trip, pinned to {label}, the floor on tokio"), tfl, "us")
                .vs("floor", floor_v),
        );
        rep.row(Row::new(format!("serial round trip, pinned to {label}, floor"), fl, "us"));
    }
}

/// Calls in flight, with the peer and the client pinned to one CPU: each side runs while the
/// other waits, so the figure is the CPU each call costs both ends, and it repeats from run to
/// run (on two CPUs, cross-CPU wake-ups in this VM make it swing by 2x between runs).
fn throughput(rep: &mut Report, z: &Sizes, sock: &Path, peer_pid: u32) {
    let _ = crate::pin::set(peer_pid, Some(crate::pin::nth(0)));
    let _ = crate::pin::set(0, Some(crate::pin::nth(0)));
    throughput_pinned(rep, z, sock);
    let _ = crate::pin::set(0, None);
    let _ = crate::pin::set(peer_pid, None);
}

fn throughput_pinned(rep: &mut Report, z: &Sizes, sock: &Path) {
    const KEYS: [(usize, &str, &str); 4] = [
        (1, "inflight1_per_s", "floor_pipelined1_per_s"),
        (8, "inflight8_per_s", "floor_pipelined8_per_s"),
        (64, "inflight64_per_s", "floor_pipelined_per_s"),
        (1024, "inflight1024_per_s", "floor_pipelined1024_per_s"),
    ];
    let conns = (|| -> io::Result<(Floor, Ours)> {
        Ok((Floor::connect(sock)?, Ours::connect(sock, Flavor::CurrentThread)?))
    })();
    let (mut floor, ours) = match conns {
        Ok(c) => c,
        Err(e) => {
            for (_, k, f) in KEYS {
                rep.num(k, &Err(e.to_string()));
                rep.num(f, &Err(e.to_string()));
            }
            return;
        }
    };
    for (depth, key, floor_key) in KEYS {
        let total = if depth == 1 { z.throughput / 10 } else { z.throughput };
        let _ = ours.inflight_per_s(depth, total / 10);
        let r = interleaved_rates(
            5,
            &mut [&mut || floor.pipelined_per_s(depth, total), &mut || ours.inflight_per_s(depth, total)],
        );
        let (fl, our) = (r[0].clone(), r[1].clone());
        let floor_v = rep.num(floor_key, &fl);
        rep.num(key, &our);
        let mut row = Row::new(format!("{depth} in flight"), our, "/s").vs("floor pipelined", floor_v);
        if depth == 64 {
            row = row.target(Target::AtLeast(400_000.0)).target(Target::RateWithinTimesRef(2.0));
        }
        rep.row(row);
    }
}

fn events(rep: &mut Report, z: &Sizes, sock: &Path) {
    let fl = s(Floor::connect(sock).and_then(|mut f| f.burst_per_s(z.burst)));
    let floor_v = rep.num("floor_events_per_s", &fl);
    for (subs, key) in [(1, "events_per_s"), (16, "events16_per_s")] {
        let r = s(ours::event_burst(sock, subs, z.burst, Flavor::MultiThread(helpers::num_cpus())));
        let lost = r.as_ref().map(|b| b.lost).unwrap_or(0);
        let per_s = r.map(|b| b.per_s);
        rep.num(key, &per_s);
        let name = format!(
            "events/s to {subs} subscriber{} (burst of {}, {lost} lost)",
            if subs > 1 { "s" } else { "" },
            z.burst
        );
        let mut row = Row::new(name, per_s, "/s").vs("floor (lines counted)", floor_v);
        if subs == 1 {
            row = row.target(Target::AtLeast(1_000_000.0));
        }
        rep.row(row);
    }
}

fn schema_decode(rep: &mut Report, z: &Sizes, sock: &Path, schema: Result<&[u8], &String>) {
    let decoded = match schema {
        Ok(bytes) => {
            rep.facts.insert("schema_bytes", bytes.len().to_string());
            s(ours::decode_us(bytes, if z.rounds > 5 { 300 } else { 60 }))
        }
        Err(why) => Err(format!("no schema captured: {why}")),
    };
    let library = decoded.as_ref().map(|d| d.total_library_us).map_err(Clone::clone);
    let value = decoded.as_ref().map(|d| d.total_value_us).map_err(Clone::clone);
    let typed = decoded.as_ref().map(|d| d.total_typed_us).map_err(Clone::clone);
    rep.num("schema_decode_us", &library);
    rep.num("schema_decode_value_us", &value);
    rep.num("schema_decode_borrowed_us", &typed);
    // The target is the library's typed decode; the generic `Value` (40,000 small
    // allocations) and an application's borrowed entries are shown beside it.
    for (what, v, target) in [
        ("into Vec<qmp::commands::SchemaInfo> (execute(QueryQmpSchema))", library, true),
        ("into a serde_json::Value (execute_raw)", value, false),
        ("into entries borrowing their strs (execute_raw_json + serde)", typed, false),
    ] {
        let row = Row::new(format!("decode a query-qmp-schema reply {what}, median"), v, "us");
        rep.row(if target { row.target(Target::AtMost(1000.0)) } else { row });
    }
    if let Ok(d) = &decoded {
        rep.num("schema_frame_us", &Ok(d.frame_us));
        rep.num("schema_message_us", &Ok(d.message_us));
        rep.num("schema_typed_us", &Ok(d.typed_us));
        rep.num("schema_value_us", &Ok(d.value_us));
        rep.row(Row::new("  step: framing", Ok(d.frame_us), "us"));
        rep.row(Row::new("  step: Message::from_slice (return kept raw)", Ok(d.message_us), "us"));
        rep.num("schema_library_us", &Ok(d.library_us));
        rep.row(Row::new(
            "  step: the frame into Vec<SchemaInfo> (QueryQmpSchema's scanner)",
            Ok(d.library_us),
            "us",
        ));
        rep.num("schema_serde_us", &Ok(d.serde_us));
        rep.row(Row::new(
            "  step: the same by serde's path (qmp::decode_reply, as other commands)",
            Ok(d.serde_us),
            "us",
        ));
        rep.row(Row::new("  step: raw return into borrowed entries", Ok(d.typed_us), "us"));
        rep.row(Row::new("  step: raw return into a Value (and its drop)", Ok(d.value_us), "us"));
    }
    if schema.is_ok() {
        let n = if z.rounds > 5 { 200 } else { 40 };
        let r = (|| -> io::Result<Vec<Result<f64, String>>> {
            let mut floor = Floor::connect(sock)?;
            let ours = Ours::connect(sock, Flavor::CurrentThread)?;
            Ok(interleaved(
                3,
                &mut [&mut || floor.fetch_us("query-qmp-schema", n), &mut || ours.schema_round_trip_us(n)],
            ))
        })();
        let (fl, our) = match r {
            Ok(v) => (v[0].clone(), v[1].clone()),
            Err(e) => (Err(e.to_string()), Err(e.to_string())),
        };
        let floor_v = rep.num("floor_schema_round_trip_us", &fl);
        rep.num("schema_round_trip_us", &our);
        rep.row(
            Row::new("query-qmp-schema round trip, decoded", our, "us")
                .vs("floor (read, not decoded)", floor_v),
        );
    }
}

fn memory(rep: &mut Report, sock: &Path, dir: &Path, idle_secs: u64) {
    let sock_str = sock.to_string_lossy().into_owned();
    // A separate small program (`qmp-bench-idle`), so that the figure is the client's and its
    // runtime's, not the benchmark's; the floor mode holds a raw socket, for reference.
    let idle = crate::external::idle_binary();
    let mut floor_rss = None;
    for (mode, key, anon_key) in [
        ("floor", "floor_client_rss_kb", "floor_client_anon_kb"),
        ("multi-thread", "client_rss_kb", "client_anon_kb"),
        ("current-thread", "client_current_thread_rss_kb", "client_current_thread_anon_kb"),
        ("blocking", "client_blocking_rss_kb", "client_blocking_anon_kb"),
    ] {
        let r = idle.as_ref().map_err(|e| e.to_string()).and_then(|exe| {
            s(Helper::start_program(exe, &["--socket", &sock_str, "--mode", mode]).and_then(|h| {
                std::thread::sleep(std::time::Duration::from_millis(100));
                Ok((h.rss_kb()? as f64, h.anon_kb()? as f64))
            }))
        });
        let (rss, anon) = match r {
            Ok((a, b)) => (Ok(a), Ok(b)),
            Err(e) => (Err(e.clone()), Err(e)),
        };
        let rss_v = rep.num(key, &rss);
        rep.num(anon_key, &anon);
        if mode == "floor" {
            floor_rss = rss_v;
            rep.row(Row::new("RSS of an idle raw-socket process (floor), same build", rss, "KiB"));
            continue;
        }
        let mut row =
            Row::new(format!("RSS of a connected idle client ({mode})"), rss, "KiB").vs("floor", floor_rss);
        if mode == "multi-thread" {
            row = row.target(Target::AtMost(4096.0));
        }
        rep.row(row);
        rep.row(Row::new(format!("  of which anonymous (heap, stacks) ({mode})"), anon, "KiB"));
    }

    // The simulator, idle and with 100 connected clients (each has run one command).
    let sim_sock = dir.join("sim.sock");
    let sim_str = sim_sock.to_string_lossy().into_owned();
    let r = (|| -> io::Result<(f64, f64, f64)> {
        let sim = Helper::serving(&["sim", "--socket", &sim_str], &sim_sock)?;
        std::thread::sleep(std::time::Duration::from_millis(50));
        let idle = sim.rss_kb()? as f64;
        // CPU time over idle seconds, per 10 s (the quick run watches 2 s).
        let before = sim.cpu_ns()?;
        std::thread::sleep(std::time::Duration::from_secs(idle_secs));
        let idle_cpu_ms = (sim.cpu_ns()? - before) as f64 / 1e6 * 10.0 / idle_secs as f64;
        let rt = ours::runtime(Flavor::CurrentThread)?;
        let clients = rt.block_on(async {
            let mut v = Vec::new();
            for _ in 0..100 {
                let c = qmp::Client::connect(&sim_sock).await.map_err(io::Error::other)?;
                c.execute(ours::QueryStatus).await.map_err(io::Error::other)?;
                v.push(c);
            }
            Ok::<_, io::Error>(v)
        })?;
        std::thread::sleep(std::time::Duration::from_millis(100));
        let busy = sim.rss_kb()? as f64;
        drop(clients);
        Ok((idle, busy, idle_cpu_ms))
    })();
    let (idle, busy, idle_cpu) = match r {
        Ok((i, b, c)) => (Ok(i), Ok(b), Ok(c)),
        Err(e) => (Err(e.to_string()), Err(e.to_string()), Err(e.to_string())),
    };
    rep.num("sim_idle_cpu_ms_per_10s", &idle_cpu);
    rep.row(
        Row::new(format!("CPU time of the idle simulator, per 10 s (watched {idle_secs} s)"), idle_cpu, "ms")
            .target(Target::AtMost(20.0)),
    );
    rep.num("sim_idle_rss_kb", &idle);
    rep.num("sim100_rss_kb", &busy);
    rep.row(Row::new("RSS of the simulator, no client", idle, "KiB"));
    rep.row(Row::new("RSS of the simulator with 100 clients", busy, "KiB"));
}

fn server_side(rep: &mut Report, z: &Sizes, dir: &Path) {
    let (srv_sock, peer_sock) = (dir.join("server.sock"), dir.join("peer2.sock"));
    let (srv_str, peer_str) =
        (srv_sock.to_string_lossy().into_owned(), peer_sock.to_string_lossy().into_owned());
    let server = Helper::serving(&["server", "--socket", &srv_str], &srv_sock);
    let peer = Helper::serving(&["peer", "--socket", &peer_str], &peer_sock);
    for (clients, key, floor_key) in
        [(1, "server_per_s", "floor_server_per_s"), (16, "server16_per_s", "floor_server16_per_s")]
    {
        let total = z.throughput;
        let (ours, fl) = match (&server, &peer) {
            (Ok(_), Ok(_)) => {
                let _ = helpers::drive_server(&srv_sock, clients, 64, total / 10);
                let r = interleaved_rates(
                    3,
                    &mut [&mut || helpers::drive_server(&srv_sock, clients, 64, total), &mut || {
                        helpers::drive_server(&peer_sock, clients, 64, total)
                    }],
                );
                (r[0].clone(), r[1].clone())
            }
            (Err(e), _) => (Err(format!("cannot start the server: {e}")), Err(String::new())),
            (_, Err(e)) => (Err(String::new()), Err(format!("cannot start the fast peer: {e}"))),
        };
        let floor_v = rep.num(floor_key, &fl);
        rep.num(key, &ours);
        rep.row(
            Row::new(
                format!(
                    "server framework, {clients} client{} x 64 in flight",
                    if clients > 1 { "s" } else { "" }
                ),
                ours,
                "/s",
            )
            .vs("fast peer", floor_v),
        );
    }
}
