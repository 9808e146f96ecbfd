//! Helpers for the proxy tests: `qmp proxy` / `qmp replay` run as child processes in front
//! of a real QEMU, and a raw socket client that reads QEMU's lines.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use qmp_testkit::Peer;

/// A `qmp` child process, killed when dropped; its stderr goes to a file in `log`.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    /// Runs `qmp ARGS`, then waits until it says it is serving and each of `sockets` exists
    /// (10 s at most). /proc/net/unix cannot tell: it names the path a socket was bound at,
    /// and these are bound in a private directory and renamed into place.
    pub fn start(args: &[&str], sockets: &[&Path], log: PathBuf) -> Proc {
        let err = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_qmp"))
            .args(args)
            .env("RUST_LOG", "qmp_server=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let mut p = Proc { child, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(p.stderr().contains(": serving ") && sockets.iter().all(|s| s.exists())) {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!("qmp {args:?} exited ({status}) before listening:\n{}", p.stderr());
            }
            assert!(Instant::now() < deadline, "qmp {args:?} did not listen on {sockets:?}:\n{}", p.stderr());
            std::thread::sleep(Duration::from_millis(5));
        }
        p
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (up to `timeout`) for it to exit; its exit code.
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `qmp proxy --upstream QEMU's monitor 0` with `listen` options (paths in the peer's dir).
pub fn proxy(peer: &Peer, extra: &[&str], sockets: &[&Path]) -> Proc {
    let up = peer.socket(0).to_str().unwrap().to_owned();
    let mut args = vec!["proxy", "--upstream", &up];
    args.extend_from_slice(extra);
    Proc::start(&args, sockets, peer.dir().join(format!("proxy-{}.log", std::process::id())))
}

/// A raw client: bytes in, QEMU's lines out, every read bounded.
pub struct Raw {
    pub sock: UnixStream,
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(path: &Path) -> Raw {
        let sock = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { sock, buf: Vec::new() }
    }

    /// Connects and negotiates; returns the greeting line.
    pub fn negotiated(path: &Path) -> Raw {
        let mut r = Raw::connect(path);
        r.line();
        r.send(b"{\"execute\": \"qmp_capabilities\"}");
        assert_eq!(r.line(), "{\"return\": {}}");
        r
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.sock.write_all(bytes).unwrap();
    }

    /// The next line, without its `\r\n`; panics at EOF or after 10 s.
    pub fn line(&mut self) -> String {
        self.try_line().expect("EOF before a line")
    }

    /// The next line, or `None` at EOF.
    pub fn try_line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let text = String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned();
                return Some(text);
            }
            let mut chunk = [0u8; 65536];
            match self.sock.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("reading: {e}"),
            }
        }
    }

    /// Lines up to and including the first that contains `marker`.
    pub fn until(&mut self, marker: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let l = self.line();
            let done = l.contains(marker);
            lines.push(l);
            if done {
                return lines;
            }
        }
    }

    /// Reads and discards until EOF; how long that took.
    pub fn eof_within(&mut self, limit: Duration) -> Duration {
        let start = Instant::now();
        self.sock.set_read_timeout(Some(limit)).unwrap();
        let mut chunk = [0u8; 65536];
        loop {
            match self.sock.read(&mut chunk) {
                Ok(0) => return start.elapsed(),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return start.elapsed(),
                Err(e) => panic!("no EOF within {limit:?}: {e}"),
            }
        }
    }
}

/// `line` with every `"timestamp": {...}` member blanked.
pub fn untimed(line: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
    if let Some(o) = v.as_object_mut() {
        if o.contains_key("timestamp") {
            o.insert("timestamp".into(), serde_json::Value::Null);
        }
    }
    v.to_string()
}
