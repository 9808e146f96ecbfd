//! `--build-time`: what the generated QAPI costs to build, beside qapi-rs's `qapi-qmp` (the
//! crate the other Rust clients use, generated from one QEMU version's schema), both built in
//! the same run on the same machine. Each is built in a scratch project of its own with a
//! fresh target directory: once from clean (the crate and everything it depends on), then the
//! crate alone again (its dependencies already built). Dependencies are fetched before the
//! clock starts, so the network is not measured.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::report::{Report, Row, Target};

/// The qapi-qmp release measured against.
const QAPI_QMP: &str = "0.15.0";

/// One crate's build times, in seconds.
struct Times {
    clean: f64,
    alone: f64,
}

/// A scratch project depending on `dep` (a Cargo dependency line) whose library re-exports
/// `krate`, under `dir`.
fn project(dir: &Path, dep: &str, krate: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"build-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\n{dep}\n\n[workspace]\n"
        ),
    )?;
    std::fs::write(dir.join("src/lib.rs"), format!("pub use {krate};\n"))
}

fn cargo(dir: &Path, target: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        // The first error is what matters; the table has one line per row.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().find(|l| l.starts_with("error")).unwrap_or("no error line").to_owned();
        Err(format!("cargo {} failed: {first}", args.join(" ")))
    }
}

/// Builds `krate` through a scratch project: from clean, then the crate alone.
fn measure(root: &Path, name: &str, dep: &str, krate: &str, package: &str) -> Result<Times, String> {
    let dir = root.join(name);
    let target = dir.join("target");
    let _ = std::fs::remove_dir_all(&dir);
    project(&dir, dep, krate).map_err(|e| format!("cannot write the scratch project: {e}"))?;
    cargo(&dir, &target, &["fetch", "--quiet"])?;
    let t = Instant::now();
    cargo(&dir, &target, &["build", "--release", "--offline", "--quiet"])?;
    let clean = t.elapsed().as_secs_f64();
    cargo(&dir, &target, &["clean", "--release", "--offline", "--quiet", "-p", package])?;
    let t = Instant::now();
    cargo(&dir, &target, &["build", "--release", "--offline", "--quiet"])?;
    let alone = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&target);
    Ok(Times { clean, alone })
}

/// Measures both and adds the rows: ours against qapi-qmp, which ours must not exceed.
pub fn run(rep: &mut Report, workspace: &Path) {
    let root: PathBuf = workspace.join("target/qmp-bench-build");
    let path_dep = |krate: &str| {
        format!("{krate} = {{ path = {:?} }}", workspace.join("crates").join(krate).display().to_string())
    };
    // The crate holding the generated API, against qapi-qmp; then the whole client on top.
    let api = measure(&root, "qmp-qapi", &path_dep("qmp-qapi"), "qmp_qapi", "qmp-qapi");
    let theirs = measure(&root, "qapi-qmp", &format!("qapi-qmp = \"={QAPI_QMP}\""), "qapi_qmp", "qapi-qmp");
    let client = measure(&root, "qmp", &path_dep("qmp"), "qmp", "qmp");
    let pick = |r: &Result<Times, String>, f: fn(&Times) -> f64| r.as_ref().map(f).map_err(Clone::clone);
    let (their_clean, their_alone) = (pick(&theirs, |t| t.clean), pick(&theirs, |t| t.alone));
    let tc = rep.num("build_qapi_qmp_clean_s", &their_clean);
    let ta = rep.num("build_qapi_qmp_alone_s", &their_alone);
    let (api_clean, api_alone) = (pick(&api, |t| t.clean), pick(&api, |t| t.alone));
    rep.num("build_qmp_qapi_clean_s", &api_clean);
    rep.num("build_qmp_qapi_alone_s", &api_alone);
    let (client_clean, client_alone) = (pick(&client, |t| t.clean), pick(&client, |t| t.alone));
    rep.num("build_qmp_clean_s", &client_clean);
    rep.num("build_qmp_alone_s", &client_alone);
    rep.row(
        Row::new(
            "clean release build: qmp-qapi (QAPI 7.2-9.2) vs qapi-qmp 0.15 (one QEMU version)",
            api_clean,
            "s",
        )
        .vs("qapi-qmp, same run", tc)
        .target(Target::AtMostTimesRef(1.0)),
    );
    rep.row(
        Row::new("release build of qmp-qapi alone (dependencies built)", api_alone, "s")
            .vs("qapi-qmp alone, same run", ta)
            .target(Target::AtMostTimesRef(1.0)),
    );
    rep.row(Row::new("clean release build of qmp (the clients, qmp-qapi, tokio...)", client_clean, "s"));
    rep.row(Row::new("release build of qmp alone (qmp-qapi built)", client_alone, "s"));
    rep.facts.insert("qapi_qmp_version", QAPI_QMP.into());
}
