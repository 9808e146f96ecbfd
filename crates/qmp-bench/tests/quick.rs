//! The benchmark runs as documented and reports every figure: the built `qmp-bench` in
//! quick mode with `--json` (about 35 s in a debug build) must print one JSON object holding each figure of the report
//! (`src/run.rs`) as a number, none missing (`null`, with a reason under `missing`) and none
//! unknown. A figure that silently stops being measured, or a new one this list does not
//! know, fails here. Timings are not checked: benchmarks are not tests.
//!
//! The run needs what the bench's peers need: QEMU (qemu-system-x86_64) and Python's
//! qemu.qmp (`scripts/install-deps.sh` installs both), the helper `qmp-bench-idle` (built
//! with this package's binaries) and the `qmp` binary (built by this test when missing).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;

/// Every figure of a run, by its JSON key.
const FIGURES: &[&str] = &[
    // real QEMU
    "floor_qemu_serial_us",
    "qemu_serial_us",
    "qemu_async_serial_us",
    "qemu_qmp_qemu_serial_us",
    // the fast peer, unpinned
    "floor_serial_unpinned_us",
    "serial_unpinned_us",
    "async_serial_unpinned_us",
    "serial_multi_thread_us",
    "tokio_floor_serial_unpinned_us",
    "qemu_qmp_serial_us",
    // pinned to one CPU
    "floor_serial_us",
    "serial_us",
    "async_serial_us",
    "tokio_floor_serial_us",
    // calls in flight
    "inflight1_per_s",
    "floor_pipelined1_per_s",
    "inflight8_per_s",
    "floor_pipelined8_per_s",
    "inflight64_per_s",
    "floor_pipelined_per_s",
    "inflight1024_per_s",
    "floor_pipelined1024_per_s",
    // events
    "floor_events_per_s",
    "events_per_s",
    "events16_per_s",
    // schema decoding
    "schema_decode_us",
    "schema_decode_value_us",
    "schema_decode_borrowed_us",
    "schema_frame_us",
    "schema_message_us",
    "schema_typed_us",
    "schema_value_us",
    "schema_library_us",
    "schema_serde_us",
    "floor_schema_round_trip_us",
    "schema_round_trip_us",
    // one-shot
    "floor_oneshot_ms",
    "oneshot_ms",
    // memory
    "floor_client_rss_kb",
    "floor_client_anon_kb",
    "client_rss_kb",
    "client_anon_kb",
    "client_current_thread_rss_kb",
    "client_current_thread_anon_kb",
    "client_blocking_rss_kb",
    "client_blocking_anon_kb",
    "sim_idle_cpu_ms_per_10s",
    "sim_idle_rss_kb",
    "sim100_rss_kb",
    // server side
    "server_per_s",
    "floor_server_per_s",
    "server16_per_s",
    "floor_server16_per_s",
];

/// Taken only on a machine with two CPUs or more (pinned to two).
const TWO_CPU_FIGURES: &[&str] = &[
    "floor_serial_pinned2_us",
    "serial_pinned2_us",
    "async_serial_pinned2_us",
    "tokio_floor_serial_pinned2_us",
];

/// Figures that may be 0 (all others are positive).
const ZERO_ALLOWED: &[&str] = &["sim_idle_cpu_ms_per_10s"];

/// The members of the object that are not figures.
const OTHER_MEMBERS: &[&str] = &["missing", "facts", "targets_met"];

/// The `qmp` binary beside the bench's, built (with this test's profile) when it is not
/// there: `cargo test -p qmp-bench` builds this package's binaries, not qmp-cli's.
fn ensure_qmp_binary(bench: &Path) {
    let qmp = bench.with_file_name("qmp");
    if qmp.is_file() {
        return;
    }
    let release = bench.parent().and_then(Path::file_name).is_some_and(|d| d == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-p", "qmp-cli", "--bin", "qmp", "--manifest-path"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"));
    if release {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("cannot run cargo");
    assert!(status.success() && qmp.is_file(), "could not build {}: {status}", qmp.display());
}

#[test]
fn a_quick_run_reports_every_figure_as_a_number() {
    let bench = Path::new(env!("CARGO_BIN_EXE_qmp-bench"));
    // The helper whose memory is measured is found beside the bench (src/external.rs).
    let idle = Path::new(env!("CARGO_BIN_EXE_qmp-bench-idle"));
    assert_eq!(idle, bench.with_file_name("qmp-bench-idle"), "the helper is not beside the bench");
    ensure_qmp_binary(bench);
    let started = Instant::now();
    // Without CARGO, the bench uses the binaries beside it as they are, rather than building
    // qmp-cli again with other features than this test run's.
    let mut child = Command::new(bench)
        .args(["--quick", "--json"])
        .env_remove("CARGO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start qmp-bench");
    let mut stderr = child.stderr.take().unwrap();
    let table = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut stdout = String::new();
    child.stdout.take().unwrap().read_to_string(&mut stdout).unwrap();
    let status = child.wait().unwrap();
    let table = table.join().unwrap();
    let took = started.elapsed();
    assert!(status.success(), "qmp-bench --quick --json failed ({status}); stderr:\n{table}");
    eprintln!("qmp-bench --quick --json took {took:?}");

    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{stdout}\nstderr:\n{table}"));
    let object = report.as_object().unwrap_or_else(|| panic!("not an object: {report}"));
    assert_eq!(report["facts"]["mode"], "quick", "{report}");
    let cpus: usize = report["facts"]["cpus"].as_str().and_then(|c| c.parse().ok()).unwrap_or(1);

    let mut expected: BTreeSet<&str> = FIGURES.iter().copied().collect();
    if cpus >= 2 {
        expected.extend(TWO_CPU_FIGURES);
    }
    let found: BTreeSet<&str> =
        object.keys().map(String::as_str).filter(|k| !OTHER_MEMBERS.contains(k)).collect();
    let absent: Vec<_> = expected.difference(&found).collect();
    let unknown: Vec<_> = found.difference(&expected).collect();
    assert!(absent.is_empty(), "figures absent from the report: {absent:?}\nstderr:\n{table}");
    assert!(unknown.is_empty(), "figures this test does not know (add them to FIGURES): {unknown:?}");

    let not_numbers: Vec<String> = expected
        .iter()
        .filter(|k| {
            // An idle process may well use no CPU at all: that figure may be 0.
            let least = if ZERO_ALLOWED.contains(k) { 0.0 } else { f64::MIN_POSITIVE };
            !report[**k].as_f64().is_some_and(|v| v.is_finite() && v >= least)
        })
        .map(|k| format!("{k} = {} ({})", report[*k], report["missing"][*k].as_str().unwrap_or("no reason")))
        .collect();
    assert!(not_numbers.is_empty(), "figures that are not positive numbers:\n{}", not_numbers.join("\n"));
    assert_eq!(report["missing"], serde_json::json!({}), "{report}");
    // Each target's verdict was reached (true or false; null would mean its figure was missing).
    let verdicts = report["targets_met"].as_object().expect("targets_met");
    assert!(!verdicts.is_empty() && verdicts.values().all(Value::is_boolean), "{verdicts:?}");
}
