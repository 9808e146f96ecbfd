//! Puts the git commit this binary is built from into `QMP_BUILD_COMMIT` for `qmp --version`
//! (empty outside a git checkout, as in a crates.io package).

use std::process::Command;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let dirty = !commit.is_empty()
        && Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.is_empty());
    println!("cargo:rustc-env=QMP_BUILD_COMMIT={commit}{}", if dirty { "-dirty" } else { "" });
    // Rebuilt when HEAD moves (a commit or a checkout); the path is relative to this crate.
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/index");
}
