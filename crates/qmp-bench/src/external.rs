//! The outside programs a run compares against or measures: QEMU's Python client qemu.qmp
//! (in a virtual environment under `target/` when the system Python lacks it) and the `qmp`
//! binary's one-shot mode.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The qemu.qmp benchmark script, run as `python SCRIPT SOCKET COUNT`.
const QEMU_QMP_SCRIPT: &str = include_str!("../scripts/qemu_qmp_serial.py");

/// The `target/` directory this binary was built into (`target/release/qmp-bench`).
fn target_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

fn imports_qemu_qmp(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import qemu.qmp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A Python that can `import qemu.qmp`: `$QMP_BENCH_PYTHON`, the venv under `target/`, or
/// the system's `python3`; failing those, a venv is created under `target/` and qemu.qmp is
/// installed into it with pip.
pub fn python_with_qemu_qmp() -> io::Result<PathBuf> {
    if let Some(p) = std::env::var_os("QMP_BENCH_PYTHON") {
        return Ok(PathBuf::from(p));
    }
    let venv = target_dir().unwrap_or_else(|| PathBuf::from("target")).join("qmp-bench-venv");
    let venv_python = venv.join("bin").join("python3");
    if venv_python.is_file() && imports_qemu_qmp(&venv_python) {
        return Ok(venv_python);
    }
    let system = PathBuf::from("python3");
    if imports_qemu_qmp(&system) {
        return Ok(system);
    }
    eprintln!("qmp-bench: installing qemu.qmp into {}", venv.display());
    let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status()?.success()
        && Command::new(&venv_python)
            .args(["-m", "pip", "install", "--quiet", "qemu.qmp"])
            .status()?
            .success();
    if ok && imports_qemu_qmp(&venv_python) {
        Ok(venv_python)
    } else {
        Err(io::Error::other(format!("could not install qemu.qmp into {}", venv.display())))
    }
}

/// Runs the qemu.qmp script against `socket`; returns µs per serial call and its version.
pub fn qemu_qmp_serial_us(python: &Path, socket: &Path, count: usize) -> io::Result<(f64, String)> {
    let dir = tempfile::Builder::new().prefix("qmp-bench-py-").tempdir()?;
    let script = dir.path().join("qemu_qmp_serial.py");
    std::fs::write(&script, QEMU_QMP_SCRIPT)?;
    let out = Command::new(python)
        .arg(&script)
        .arg(socket)
        .arg(count.to_string())
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("the qemu.qmp script failed: {}", out.status)));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(io::Error::other)?;
    let us = v["serial_us"]
        .as_f64()
        .ok_or_else(|| io::Error::other("the qemu.qmp script printed no serial_us"))?;
    Ok((us, v["version"].as_str().unwrap_or("?").to_owned()))
}

/// The `qmp` binary: next to this one (`target/release/qmp`, or `target/debug/qmp` for a
/// debug build); see [`sibling_binary`].
pub fn qmp_binary() -> io::Result<PathBuf> {
    sibling_binary("qmp-cli", "qmp")
}

/// `qmp-bench-idle`, the small program whose memory is measured; see [`sibling_binary`].
pub fn idle_binary() -> io::Result<PathBuf> {
    sibling_binary("qmp-bench", "qmp-bench-idle")
}

/// A binary of the workspace next to this one. When run by cargo (`cargo run --release -p
/// qmp-bench` builds only the bench itself; so does `cargo test -p qmp-bench`), it is
/// (re)built first with the profile this binary was built with, the directory it lies in
/// (`cargo build [--release] -p PACKAGE --bin BIN`); if that build fails, an existing binary
/// is still used. A missing one is an error that names it and how to build it.
fn sibling_binary(package: &str, bin: &str) -> io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name(bin);
    let profile = exe.parent().and_then(Path::file_name).and_then(|d| d.to_str()).unwrap_or("");
    let release = match profile {
        "release" => Some(true),
        "debug" => Some(false),
        // Another profile or layout: use what is there.
        _ => None,
    };
    let build = format!(
        "cargo build{} -p {package} --bin {bin}",
        if release == Some(true) { " --release" } else { "" }
    );
    if let (Some(release), Some(cargo), Some(manifest)) =
        (release, std::env::var_os("CARGO"), std::env::var_os("CARGO_MANIFEST_DIR"))
    {
        let workspace = Path::new(&manifest).join("../../Cargo.toml");
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", package, "--bin", bin, "--manifest-path"]).arg(&workspace);
        if release {
            cmd.arg("--release");
        }
        if !matches!(cmd.status(), Ok(s) if s.success()) {
            eprintln!("qmp-bench: `{build}` failed; using the existing binary if any");
        }
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::new(io::ErrorKind::NotFound, format!("{} not found: run `{build}`", path.display())))
    }
}

/// Median wall time in ms of `PROGRAM ARGS... -s SOCKET query-status`, over `runs` runs
/// (each must succeed).
pub fn oneshot_ms(program: &Path, args: &[&str], socket: &Path, runs: usize) -> io::Result<f64> {
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs + 2 {
        let t = Instant::now();
        let status = Command::new(program)
            .args(args)
            .arg("--socket")
            .arg(socket)
            .arg("query-status")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if !status.success() {
            return Err(io::Error::other(format!(
                "`qmp -s {} query-status` failed: {status}",
                socket.display()
            )));
        }
        if i >= 2 {
            times.push(ms); // the first two warm the page cache
        }
    }
    Ok(crate::stats::median(&mut times))
}
