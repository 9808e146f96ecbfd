//! `qmp-bench`: measures the `qmp` client against the floor (a raw blocking socket loop),
//! QEMU's Python client qemu.qmp and real QEMU 7.2, in one bounded run.
//!
//! ```text
//! cargo run --release -p qmp-bench [-- --quick] [-- --json]
//! ```
//!
//! It starts its own peers: a fast in-repo QMP responder (so the client's own cost shows),
//! the `qmp-server` framework and simulator, and `qemu-system-x86_64 -machine none`. It prints
//! a table (each figure next to its reference, the cost ratio, the target, PASS/MISS) and, with
//! `--json`, one JSON object on stdout (the table then goes to stderr). Benchmarks are not
//! tests: nothing here fails a build.
//!
//! Hidden subcommands (the bench re-executes itself with them, so peers run in their own
//! processes): `peer`, `sim`, `server`, `oneshot-floor`; and `profile WHAT [--n N]`, one
//! workload against a fresh fast peer, to run under a profiler (`serial`, `inflight64`,
//! `events`, `floor-serial`).

mod build_time;
mod child;
mod external;
mod floor;
mod ga_copy;
mod helpers;
mod ours;
mod peer;
mod pin;
mod proxy;
mod report;
mod run;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: qmp-bench [--quick] [--json] | --build-time [--json]

  --quick       a short run (fewer calls and rounds; about 20 s)
  --json        also print one JSON object with every figure on stdout (the table goes to stderr)
  --build-time  instead: clean release builds of qmp-qapi, qapi-rs's qapi-qmp and qmp, side by side
                (several minutes; fetches qapi-qmp from crates.io first)
  --ga-copy [MIB]  instead: a file of MIB MiB (64) copied into and out of real qemu-ga with
                `qmp ga cp` and with qemu.qmp, checked byte for byte (about a minute)
  --proxy       instead: query-status against the fast peer and real QEMU, directly, through
                `qmp proxy` and through socat: serial, 64 in flight, 16 clients (a few seconds)

Runs every measure of issue 5 against peers it starts itself; see BENCHMARKS.md.";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("peer") => helpers::peer(&socket_arg(&args), opt_arg(&args, "--schema").as_deref()),
        Some("sim") => helpers::sim(&socket_arg(&args)),
        Some("server") => helpers::server(&socket_arg(&args)),
        Some("profile") => {
            let what = args.get(1).map(String::as_str).unwrap_or("");
            helpers::profile(what, opt_num(&args, "--n"), opt_arg(&args, "--socket").as_deref())
        }
        Some("oneshot-floor") => floor::oneshot(&socket_arg(&args)),
        Some("--proxy") => proxy::run(),
        Some("--ga-copy") => ga_copy::run(args.get(1).and_then(|m| m.parse().ok()).unwrap_or(64)),
        _ => return bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qmp-bench {}: {e}", args[0]);
            ExitCode::FAILURE
        }
    }
}

fn bench(args: &[String]) -> ExitCode {
    let mut opts = run::Options { quick: false, json: false };
    let mut build_time = false;
    for a in args {
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--build-time" => build_time = true,
            "--json" => opts.json = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => {
                eprintln!("qmp-bench: unknown argument {other:?}\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if build_time {
        let mut report = report::Report::default();
        let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        build_time::run(&mut report, &workspace);
        if opts.json {
            eprintln!("{}", report.table());
            println!("{}", report.json());
        } else {
            println!("{}", report.table());
        }
        return ExitCode::SUCCESS;
    }
    // A hung peer must not hang the run: the calls being timed carry no timeout (a timer per
    // call would be part of what is measured), so the whole run has one.
    let limit = std::time::Duration::from_secs(if opts.quick { 180 } else { 600 });
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("qmp-bench: the run took longer than {limit:?}; giving up");
        std::process::exit(1);
    });
    let report = run::run(&opts);
    if opts.json {
        eprintln!("{}", report.table());
        println!("{}", report.json());
    } else {
        println!("{}", report.table());
    }
    ExitCode::SUCCESS
}

/// The value after `name` in a helper's arguments.
fn opt_arg(args: &[String], name: &str) -> Option<PathBuf> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(PathBuf::from)
}

fn opt_num(args: &[String], name: &str) -> usize {
    opt_arg(args, name).and_then(|v| v.to_str()?.parse().ok()).unwrap_or(100_000)
}

fn socket_arg(args: &[String]) -> PathBuf {
    opt_arg(args, "--socket").unwrap_or_else(|| {
        eprintln!("qmp-bench {}: --socket PATH is required", args[0]);
        std::process::exit(2)
    })
}
