//! Shared helpers: start real QEMU or the simulator on a private socket, and talk raw bytes.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// A QMP peer on a unix socket: real QEMU (killed on drop) or the in-process simulator.
pub struct Peer {
    pub path: PathBuf,
    child: Option<Child>,
    sim: Option<SimThread>,
    pub dir: tempfile::TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The simulator, served by its own runtime on a thread; stopped on drop.
pub struct SimThread {
    server: qmp_server::Server,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SimThread {
    fn drop(&mut self) {
        self.server.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts qemu-system-x86_64 with `args` (its monitors `server=on,wait=on` on `sockets`), once
/// each monitor has greeted a first client (QEMU 7.2's start-up race: `qmp_testkit::greet_monitors`).
/// Fails (never skips) when QEMU is missing.
fn spawn_qemu_system(args: &[String], sockets: &[PathBuf]) -> Child {
    let mut cmd = Command::new(qmp_testkit::require("qemu-system-x86_64"));
    cmd.args(args);
    let mut child = qmp_testkit::spawn_quiet(cmd);
    let monitors: Vec<_> = sockets.iter().map(|s| qmp_testkit::Listener::Unix(s)).collect();
    qmp_testkit::greet_monitors(&mut child, &monitors);
    child
}

impl Peer {
    /// `qemu-system-x86_64 -machine none`.
    pub fn qemu_system() -> Peer {
        Peer::qemu_system_with(&["-machine", "none"])
    }

    /// `qemu-system-x86_64 -nodefaults -display none` with `machine` (e.g. `["-machine",
    /// "pc", "-S", "-accel", "tcg"]`).
    pub fn qemu_system_with(machine: &[&str]) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let args: Vec<String> = machine
            .iter()
            .chain(&["-nodefaults", "-display", "none", "-qmp"])
            .map(|s| s.to_string())
            .chain([qmp_testkit::waiting_unix(&path)])
            .collect();
        let child = spawn_qemu_system(&args, std::slice::from_ref(&path));
        Peer { path, child: Some(child), sim: None, dir }
    }

    /// `qemu-system-x86_64 -machine none` with `n` QMP monitors; `self.path` is the first,
    /// [`monitor`](Peer::monitor) gives the others.
    pub fn qemu_system_monitors(n: usize) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> =
            ["-machine", "none", "-nodefaults", "-display", "none"].iter().map(|s| s.to_string()).collect();
        let sockets: Vec<PathBuf> = (0..n).map(|i| dir.path().join(format!("qmp{i}.sock"))).collect();
        for socket in &sockets {
            args.push("-qmp".into());
            args.push(qmp_testkit::waiting_unix(socket));
        }
        let child = spawn_qemu_system(&args, &sockets);
        Peer { path: dir.path().join("qmp0.sock"), child: Some(child), sim: None, dir }
    }

    /// A connection to monitor `i` of a multi-monitor QEMU, or to the simulator's one socket
    /// (which serves any number of clients).
    pub fn monitor(&self, i: usize) -> Raw {
        let peer = Peer {
            path: self.dir.path().join(format!("qmp{i}.sock")),
            child: None,
            sim: None,
            dir: tempfile::tempdir().unwrap(),
        };
        peer.connect()
    }

    /// `qemu-storage-daemon` with `extra` arguments, in `dir`.
    pub fn storage_daemon(dir: tempfile::TempDir, extra: &[String]) -> Peer {
        let path = dir.path().join("qmp.sock");
        // The chardev's id shows in the QOM tree: the simulator names its monitor's so.
        let mut cmd = Command::new("qemu-storage-daemon");
        cmd.args(qmp_testkit::storage_daemon_monitor(&path, "compat_monitor0")).args(extra);
        let child = qmp_testkit::spawn_storage_daemon(cmd, std::slice::from_ref(&path));
        Peer { path, child: Some(child), sim: None, dir }
    }

    /// The simulator on a fresh socket.
    pub fn sim() -> Peer {
        Self::sim_in(tempfile::tempdir().unwrap())
    }

    /// The simulator on a fresh socket in `dir`.
    pub fn sim_in(dir: tempfile::TempDir) -> Peer {
        Self::sim_with(dir, qmp_server::sim::SimOptions::default())
    }

    /// The simulator answering as the storage daemon, on a fresh socket.
    pub fn sim_storage_daemon() -> Peer {
        let options =
            qmp_server::sim::SimOptions { like: qmp_server::sim::Like::StorageDaemon, ..Default::default() };
        Self::sim_with(tempfile::tempdir().unwrap(), options)
    }

    /// The simulator with `options` on a fresh socket in `dir`.
    pub fn sim_with(dir: tempfile::TempDir, options: qmp_server::sim::SimOptions) -> Peer {
        let path = dir.path().join("qmp.sock");
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let thread = std::thread::spawn(move || {
            let rt =
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let sim = qmp_server::sim::Simulator::with_options(options);
                // One client per monitor, as in QEMU: `qmp.sock`, and `qmp0.sock`...
                // `qmp3.sock` for the tests that want several monitors ([`Peer::monitor`]).
                let dir = p.parent().unwrap().to_path_buf();
                let mut tasks = vec![sim.listen_unix(&p).unwrap()];
                for i in 0..4 {
                    tasks.push(sim.listen_unix(&dir.join(format!("qmp{i}.sock"))).unwrap());
                }
                tx.send(sim.server().clone()).unwrap();
                sim.server().wait_shutdown().await;
                // Let connections flush their last replies.
                tokio::time::sleep(Duration::from_millis(50)).await;
                for task in tasks {
                    task.abort();
                }
            });
        });
        let server = rx.recv().unwrap();
        Peer { path, child: None, sim: Some(SimThread { server, thread: Some(thread) }), dir }
    }

    pub fn connect(&self) -> Raw {
        // QEMU creates the socket file before it listens: retry a refused connection.
        let deadline = Instant::now() + Duration::from_secs(10);
        let stream = loop {
            match UnixStream::connect(&self.path) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline && e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("cannot connect to {}: {e}", self.path.display()),
            }
        };
        stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        Raw { stream, buf: Vec::new() }
    }
}

/// A raw byte connection.
pub struct Raw {
    pub stream: UnixStream,
    pub buf: Vec<u8>,
}

impl Raw {
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Reads complete lines until `done(lines)` holds or `timeout` passes; returns the lines.
    pub fn read_until(&mut self, timeout: Duration, done: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                lines.push(String::from_utf8_lossy(&line).into_owned());
            }
            if done(&lines) || Instant::now() > deadline {
                return lines;
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    if !self.buf.is_empty() {
                        lines.push(String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned());
                    }
                    lines.push("<EOF>".into());
                    return lines;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => {
                    lines.push(format!("<error {e}>"));
                    return lines;
                }
            }
        }
    }

    /// Reads the greeting line.
    pub fn greeting(&mut self) -> String {
        self.read_until(Duration::from_secs(10), |l| !l.is_empty()).remove(0)
    }

    /// Sends `bytes`, then a marker request, and returns every line up to the marker's reply.
    pub fn step(&mut self, bytes: &[u8], marker: usize) -> Vec<String> {
        self.step_until(bytes, marker, None)
    }

    /// Like [`step`](Raw::step), but also waits for a line containing `until` (for events
    /// that follow a reply asynchronously); the marker's reply is dropped wherever it lands.
    pub fn step_until(&mut self, bytes: &[u8], marker: usize, until: Option<&str>) -> Vec<String> {
        self.send(bytes);
        let id = format!("\"id\": \"sync-{marker}\"");
        self.send(format!("{{\"execute\": \"query-version\", \"id\": \"sync-{marker}\"}}").as_bytes());
        let done = |l: &[String]| {
            l.iter().any(|x| x.contains(&id)) && until.is_none_or(|u| l.iter().any(|x| x.contains(u)))
        };
        let lines = self.read_until(Duration::from_secs(10), done);
        assert!(done(&lines), "no reply to the marker (or no {until:?}) after {bytes:?}: {lines:?}");
        lines.into_iter().filter(|l| !l.contains(&id)).collect()
    }
}

/// The `return` of `command` (no arguments) on a fresh, negotiated connection to `peer`.
pub fn query(peer: &Peer, command: &str) -> serde_json::Value {
    let mut c = peer.connect();
    c.greeting();
    c.step(b"{\"execute\":\"qmp_capabilities\"}", 0);
    c.send(format!("{{\"execute\":\"{command}\"}}").as_bytes());
    let lines = c.read_until(Duration::from_secs(10), |l| !l.is_empty());
    let mut v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    v["return"].take()
}

/// Masks what legitimately differs between QEMU and the simulator: timestamps, version
/// strings, and job progress counters.
pub fn normalize(line: &str) -> String {
    let mut s = line.to_string();
    s = replace_between(&s, "\"timestamp\": {\"seconds\": ", "}", "0, \"microseconds\": 0");
    s = replace_between(&s, "{\"micro\": ", "\"package\": \"", "");
    s = replace_between(&s, "\"package\": \"", "\"", "PKG");
    s = s.replace("\"busy\": true", "\"busy\": B").replace("\"busy\": false", "\"busy\": B");
    for key in ["\"offset\": ", "\"current-progress\": "] {
        s = replace_between(&s, key, ",", "N");
    }
    s
}

fn replace_between(s: &str, start: &str, end: &str, with: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(start) {
        out.push_str(&rest[..i + start.len()]);
        rest = &rest[i + start.len()..];
        match rest.find(end) {
            Some(j) => {
                out.push_str(with);
                rest = &rest[j..];
            }
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// One step of a transcript: bytes to send, and optionally text to wait for.
pub struct Step {
    pub bytes: Vec<u8>,
    pub until: Option<String>,
    /// Resend until an answer contains this (QEMU settles some states asynchronously).
    pub settle: Option<String>,
}

/// A step that needs only the marker.
pub fn s(bytes: impl AsRef<[u8]>) -> Step {
    Step { bytes: bytes.as_ref().to_vec(), until: None, settle: None }
}

/// A query step resent until its answer contains `settled` (for at most 5 s); only the last
/// answer is kept. For states QEMU reaches a moment after the event that announces them
/// (`finish-migrate` turns into `postmigrate` after MIGRATION `completed`).
pub fn s_settle(bytes: impl AsRef<[u8]>, settled: &str) -> Step {
    Step { bytes: bytes.as_ref().to_vec(), until: None, settle: Some(settled.into()) }
}

/// A step that waits until a line contains `until`; events and replies within it are
/// compared as two sequences, not interleaved.
pub fn s_until(bytes: impl AsRef<[u8]>, until: &str) -> Step {
    Step { bytes: bytes.as_ref().to_vec(), until: Some(until.into()), settle: None }
}

/// Runs `steps` on a fresh connection and returns the normalized transcript.
pub fn transcript(peer: &Peer, steps: &[Step]) -> Vec<String> {
    let mut c = peer.connect();
    let mut out = vec![format!("greeting: {}", normalize(&c.greeting()))];
    for (i, step) in steps.iter().enumerate() {
        out.push(format!("--- step {i}: {}", String::from_utf8_lossy(&step.bytes).escape_debug()));
        let mut lines = c.step_until(&step.bytes, i, step.until.as_deref());
        if let Some(settled) = &step.settle {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while !lines.iter().any(|l| l.contains(settled.as_str())) && std::time::Instant::now() < deadline
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
                lines = c.step_until(&step.bytes, i, None);
            }
        }
        let mut lines: Vec<String> = lines.iter().map(|l| normalize(l)).collect();
        if step.until.is_some() {
            // A job's events race with the command's reply in QEMU: compare the event
            // sequence, and the replies, but not how they interleave.
            lines.sort_by_key(|l| !l.contains("\"event\": "));
        }
        out.extend(lines);
    }
    out
}

/// Runs `steps` against both peers and fails with a side-by-side report when they differ.
pub fn compare(qemu: &Peer, sim: &Peer, steps: &[Step]) {
    let want = transcript(qemu, steps);
    let got = transcript(sim, steps);
    assert_same(&want, &got);
}

/// Runs `steps` against a fresh qemu-storage-daemon (stopped after) and then the simulator,
/// and fails when the transcripts differ; returns the simulator, still running, and its
/// transcript.
pub fn compare_with_storage_daemon(steps: &[Step]) -> (Peer, Vec<String>) {
    let qemu = Peer::storage_daemon(tempfile::tempdir().unwrap(), &[]);
    let want = transcript(&qemu, steps);
    drop(qemu);
    let sim = Peer::sim();
    let got = transcript(&sim, steps);
    assert_same(&want, &got);
    (sim, got)
}

/// Fails with a side-by-side report when two transcripts differ.
pub fn assert_same(want: &[String], got: &[String]) {
    if std::env::var_os("QMP_DIFF_DUMP").is_some() {
        eprintln!("{}", want.join("\n"));
    }
    if want != got {
        let mut report = String::new();
        for i in 0..want.len().max(got.len()) {
            let (w, g) = (want.get(i).map_or("", |s| s.trim_end()), got.get(i).map_or("", |s| s.trim_end()));
            let mark = if w == g { "  " } else { "!!" };
            report.push_str(&format!("{mark} qemu: {w}\n{mark} sim:  {g}\n"));
        }
        panic!("transcripts differ ({} vs {} lines):\n{report}", want.len(), got.len());
    }
}

/// Runs a QEMU tool, failing the test when it is missing or fails.
pub fn run_tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (install it with scripts/install-deps.sh): {e}"));
    assert!(out.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    // The files it wrote, flushed: until the kernel writes them back, a file's block count
    // (`actual-size`) can be 4 KiB short, so QEMU and the simulator would read it apart.
    for path in args.iter().map(Path::new).filter(|p| p.is_file()) {
        if let Ok(f) = std::fs::File::open(path) {
            let _ = f.sync_all();
        }
    }
}

/// base.qcow2 (64 MiB, 32 MiB written), top.qcow2 backed by it, and an empty tgt.qcow2;
/// made anew where they exist (a file rewritten in place can keep a block more than a new
/// one, and `actual-size` counts blocks).
pub fn make_images(dir: &Path) {
    let p = |n: &str| dir.join(n).display().to_string();
    for name in ["base.qcow2", "top.qcow2", "tgt.qcow2"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    run_tool("qemu-img", &["create", "-q", "-f", "qcow2", &p("base.qcow2"), "64M"]);
    run_tool("qemu-io", &["-c", "write 0 32M", &p("base.qcow2")]);
    run_tool(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", "-b", &p("base.qcow2"), "-F", "qcow2", &p("top.qcow2")],
    );
    run_tool("qemu-img", &["create", "-q", "-f", "qcow2", &p("tgt.qcow2"), "64M"]);
}

/// The numbers after each of `keys` replaced by `N`: figures that differ between runs (a
/// file's `actual-size`, which the filesystem can change by a block between QEMU's reading
/// and the simulator's; a `thread-id`).
pub fn mask_numbers(lines: Vec<String>, keys: &[&str]) -> Vec<String> {
    lines
        .into_iter()
        .map(|mut out| {
            for key in keys {
                let mut masked = String::new();
                let mut rest = out.as_str();
                while let Some(i) = rest.find(key) {
                    masked.push_str(&rest[..i + key.len()]);
                    rest = rest[i + key.len()..].trim_start_matches(|c: char| c.is_ascii_digit());
                    masked.push('N');
                }
                masked.push_str(rest);
                out = masked;
            }
            out
        })
        .collect()
}
