//! `qmp sim` stopped the way service managers stop it: SIGTERM (systemd, docker, CI) and
//! SIGHUP as well as Ctrl-C must remove its socket (and the private directory it made) and
//! exit 0; the directory must be 0700 whatever the umask.

mod sim_child;
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use sim_child::Sim;

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Starts `qmp sim` without --socket under umask 000, checks its directory and socket, runs a
/// command against it, stops it with `signal` and checks everything it made is gone.
fn temp_sim_stopped_by(signal: Signal) {
    let mut sim = Sim::start(&[], &[], None);
    let dir = sim.socket.parent().unwrap().to_path_buf();
    assert_eq!(mode(&dir), 0o700, "{} under umask 000", dir.display());
    assert_eq!(mode(&sim.socket), 0o600, "{}", sim.socket.display());
    let out = support::qmp(&["-s", sim.socket.to_str().unwrap(), "query-status"]);
    out.assert_code(0);
    assert!(out.stdout.contains("running"), "{out:?}");

    sim.signal(signal);
    let (status, stderr) = sim.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{status}; stderr {stderr:?}");
    assert!(stderr.ends_with(&format!("qmp sim: stopping on {}\n", signal.as_str())), "{stderr:?}");
    assert!(!sim.socket.exists(), "{} left behind", sim.socket.display());
    assert!(!dir.exists(), "{} left behind", dir.display());
}

/// Before the fix SIGTERM killed `qmp sim` outright (status "signal 15"), leaving its socket
/// and directory in /tmp, and the directory had the umask's mode.
#[test]
fn sigterm_no_longer_leaves_the_sims_socket_and_directory_behind() {
    temp_sim_stopped_by(Signal::SIGTERM);
}

/// SIGHUP (a closed terminal, a reload request) likewise.
#[test]
fn sighup_no_longer_leaves_the_sims_socket_and_directory_behind() {
    temp_sim_stopped_by(Signal::SIGHUP);
}

/// Ctrl-C did clean up before; it still does, with the same message.
#[test]
fn sigint_cleans_up_as_before() {
    temp_sim_stopped_by(Signal::SIGINT);
}

/// With --socket PATH the socket is removed on every way out: `quit`, SIGTERM, SIGHUP; the
/// directory it is in is the caller's and stays.
#[test]
fn a_socket_given_with_socket_is_removed_on_sigterm_sighup_and_quit() {
    for how in ["SIGTERM", "SIGHUP", "quit"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.sock");
        let mut sim = Sim::start(&["--socket", path.to_str().unwrap()], &[], None);
        assert_eq!(sim.socket, path);
        assert_eq!(mode(&path), 0o600, "under umask 000");
        match how {
            "quit" => support::qmp(&["-s", path.to_str().unwrap(), "quit"]).assert_code(0),
            "SIGTERM" => sim.signal(Signal::SIGTERM),
            _ => sim.signal(Signal::SIGHUP),
        }
        let (status, stderr) = sim.wait(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{how}: {status}; stderr {stderr:?}");
        assert!(!path.exists(), "{how}: {} left behind", path.display());
        assert!(dir.path().exists());
    }
}

/// Before the fix a failure after the unix socket was bound (here: a bad --tcp address)
/// returned early and left the socket file behind.
#[test]
fn a_sim_that_fails_after_binding_its_socket_no_longer_leaves_it_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.sock");
    let out = support::qmp(&["sim", "--socket", path.to_str().unwrap(), "--tcp", "256.0.0.1:0"]);
    out.assert_code(3);
    assert!(out.stderr.contains("\nqmp: qmp sim: "), "{out:?}");
    assert!(!path.exists(), "{} left behind", path.display());
}

/// A socket at the --socket path that another process put there after us (it replaced
/// ours) is theirs: it is not removed when we stop.
#[test]
fn a_socket_replaced_by_another_process_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.sock");
    let mut first = Sim::start(&["--socket", path.to_str().unwrap()], &[], None);
    let mut second = Sim::start(&["--socket", path.to_str().unwrap()], &[], None);
    first.signal(Signal::SIGTERM);
    assert_eq!(first.wait(Duration::from_secs(10)).0.code(), Some(0));
    assert!(path.exists(), "the second sim's socket was removed by the first");
    support::qmp(&["-s", path.to_str().unwrap(), "query-status"]).assert_code(0);
    second.signal(Signal::SIGTERM);
    assert_eq!(second.wait(Duration::from_secs(10)).0.code(), Some(0));
    assert!(!path.exists());
}
