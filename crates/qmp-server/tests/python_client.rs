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
    assert!(stdout.contains("fd passing: getfd/closefd, add-fd"), "{stdout}");
    assert!(stdout.trim_end().ends_with("OK"), "{stdout}");
}

/// `qemu_qmp_client.py --storage-daemon` against `peer`: its lines, one per step.
fn storage_daemon_session(peer: &common::Peer) -> Vec<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/qemu_qmp_client.py");
    let out =
        Command::new("python3").arg(script).arg("--storage-daemon").arg(&peer.path).output().unwrap_or_else(
            |e| panic!("cannot run python3 (install qemu.qmp with scripts/install-deps.sh): {e}"),
        );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "qemu.qmp storage-daemon session failed:\n{stdout}\n{stderr}");
    stdout.lines().map(str::to_string).collect()
}

/// The same qemu.qmp session (greeting, query-version, a null-co node, a dirty bitmap, what
/// the daemon lacks, QOM types, blockdev-del) against real `qemu-storage-daemon` and the
/// simulator answering as it: the same results, only the package string masked.
#[test]
fn qemu_qmp_storage_daemon_session_as_the_real_daemon() {
    let qemu = common::Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]);
    let want = storage_daemon_session(&qemu);
    drop(qemu);
    let got = storage_daemon_session(&common::Peer::sim_storage_daemon());
    common::assert_same(&want, &got);
    assert_eq!(want.len(), 16, "{want:?}");
    assert!(want.iter().any(|l| l.contains("CommandNotFound")), "{want:?}");
    assert!(want.iter().any(|l| l.contains("\"b0\"")), "{want:?}");
}
