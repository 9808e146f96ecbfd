//! `qmp sim` serves each monitor socket to one client at a time, as QEMU does: a second
//! client's connection is queued, greeted by nothing, until the first leaves. Checked side by
//! side with real QEMU, and `--monitors N` and `--many-clients` for more clients.

mod support;

use std::io::{BufRead, BufReader, ErrorKind};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A raw client: whether a greeting comes within `wait`.
struct Raw(BufReader<UnixStream>);

impl Raw {
    fn connect(path: &Path) -> Raw {
        let s = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        Raw(BufReader::new(s))
    }

    fn greeted_within(&mut self, wait: Duration) -> bool {
        self.0.get_ref().set_read_timeout(Some(wait)).unwrap();
        let mut line = String::new();
        match self.0.read_line(&mut line) {
            Ok(n) => {
                assert!(n > 0 && line.contains("\"QMP\""), "not a greeting: {line:?}");
                true
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// A `qmp sim` child, killed if a failing test leaves it running (it would hold the test's
/// output pipe open).
struct SimChild(Child);

impl Drop for SimChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `qmp sim ARGS`, returned once it has said where it listens (the paths it printed).
fn sim(args: &[&str]) -> (SimChild, Vec<PathBuf>) {
    let mut child = support::command(&[&["sim"][..], args].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let child = SimChild(child);
    let mut paths = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut line = String::new();
    // One line per listener, then nothing until it stops: read what the options promise.
    let expected = args.iter().position(|a| *a == "--monitors").map_or(1, |i| args[i + 1].parse().unwrap());
    while paths.len() < expected {
        assert!(Instant::now() < deadline, "qmp sim did not listen");
        line.clear();
        assert!(err.read_line(&mut line).unwrap() > 0, "qmp sim ended: {paths:?}");
        if let Some(p) = line.trim().strip_prefix("qmp sim: listening on unix:") {
            paths.push(PathBuf::from(p));
        }
    }
    // The rest of its stderr is read (and dropped), so its last line has somewhere to go.
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    (child, paths)
}

/// SIGTERM, as a user's Ctrl-C or service manager would, and its exit.
fn stop(child: &mut SimChild) {
    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(child.0.wait().unwrap().success());
}

const QUIET: Duration = Duration::from_millis(300);
const SOON: Duration = Duration::from_secs(10);

/// The first client has the monitor; the second is greeted only once the first leaves.
fn second_waits_for_the_first(path: &Path) {
    let mut first = Raw::connect(path);
    assert!(first.greeted_within(SOON), "the first client is greeted");
    let mut second = Raw::connect(path);
    assert!(!second.greeted_within(QUIET), "the second client waits while the first is connected");
    drop(first);
    assert!(second.greeted_within(SOON), "the second client is greeted once the first leaves");
}

#[test]
fn one_client_at_a_time_as_real_qemu() {
    let qemu = qmp_testkit::Peer::qemu(1);
    second_waits_for_the_first(qemu.socket(0));
    let (mut child, paths) = sim(&[]);
    second_waits_for_the_first(&paths[0]);
    stop(&mut child);
}

#[test]
fn monitors_gives_more_sockets_each_with_its_own_client() {
    let (mut child, paths) = sim(&["--monitors", "3"]);
    let names: Vec<_> = paths.iter().map(|p| p.file_name().unwrap().to_str().unwrap().to_owned()).collect();
    assert_eq!(names, ["qmp.sock", "qmp2.sock", "qmp3.sock"]);
    let mut clients: Vec<Raw> = paths.iter().map(|p| Raw::connect(p)).collect();
    for c in &mut clients {
        assert!(c.greeted_within(SOON), "every monitor greets its own client at once");
    }
    drop(clients);
    second_waits_for_the_first(&paths[1]);
    stop(&mut child);
    assert!(!paths[0].parent().unwrap().exists(), "its private directory goes with it");
}

#[test]
fn many_clients_serves_them_all_at_once() {
    let (mut child, paths) = sim(&["--many-clients"]);
    let mut clients: Vec<Raw> = (0..4).map(|_| Raw::connect(&paths[0])).collect();
    for c in &mut clients {
        assert!(c.greeted_within(SOON), "every client is greeted at once");
    }
    stop(&mut child);
}

#[test]
fn monitors_with_a_socket_is_a_usage_error() {
    let out = support::qmp(&["sim", "--monitors", "2", "--socket", "/tmp/x.sock"]);
    out.assert_code(2);
    assert!(out.stderr.contains("cannot be used with"), "{out:?}");
    let out = support::qmp(&["sim", "--monitors", "0"]);
    out.assert_code(2);
}

/// `--machine pc` gives the simulated QEMU a pc's buses; by default it is `-machine none`'s,
/// which has none.
#[test]
fn machine_pc_has_buses_for_devices_and_none_has_none() {
    let (mut none, paths) = sim(&[]);
    let sock = paths[0].to_str().unwrap();
    let out = support::qmp(&["-s", sock, "device_add", "driver=e1000", "id=n0"]);
    out.assert_code(1);
    assert!(out.stderr.contains("No 'PCI' bus found for device 'e1000'"), "{}", out.stderr);
    stop(&mut none);

    let (mut pc, paths) = sim(&["--machine", "pc"]);
    let sock = paths[0].to_str().unwrap();
    support::qmp(&["-s", sock, "device_add", "driver=e1000", "id=n0"]).assert_code(0);
    let out = support::qmp(&["-s", sock, "device_add", "driver=e1000", "id=n0"]);
    out.assert_code(1);
    assert!(out.stderr.contains("Duplicate device ID 'n0'"), "{}", out.stderr);
    let out = support::qmp(&["-s", sock, "qom-list", "path=/machine/peripheral"]);
    out.assert_code(0);
    assert!(out.stdout.contains("child<e1000>"), "{}", out.stdout);
    stop(&mut pc);

    let out = support::qmp(&["sim", "--machine", "q35"]);
    out.assert_code(2);
    assert!(out.stderr.contains("q35"), "{}", out.stderr);
}
