//! QEMU's own Python client (`qemu.qmp`, installed by scripts/install-deps.sh) against the
//! simulator. Python or the package missing is a failure, not a skip.

mod common;

use std::process::Command;

#[test]
fn qemu_qmp_python_client_against_the_simulator() {
    let sim = common::Peer::sim();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/qemu_qmp_client.py");
    let out = Command::new("python3").arg(script).arg(&sim.path).output().unwrap_or_else(|e| {
        panic!("cannot run python3 (install qemu.qmp with scripts/install-deps.sh): {e}")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "qemu.qmp client failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("then BLOCK_JOB_CANCELLED"), "{stdout}");
    assert!(stdout.contains("qom walk:") && stdout.contains("rolled back"), "{stdout}");
    assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
}
