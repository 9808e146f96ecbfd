//! A QMP server in a child process, for fault tests that must measure it (its RSS) or
//! starve it (of file descriptors) without touching the test process.
//!
//! The child is the test binary itself, re-run with only its `fault_server_child` test and
//! `QMP_FAULT_CHILD` set; that test calls [`child_main_if_asked`], which serves until its
//! stdin closes. Each test file using this module declares that test.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qmp_server::schema::Ty;
use qmp_server::{CommandSpec, Server};
use serde_json::json;

/// How large `big`'s reply is (a string of this many bytes).
pub const BIG_REPLY: usize = 256 << 10;

/// In the child (`QMP_FAULT_CHILD` set): lowers `RLIMIT_NOFILE` to `$QMP_FAULT_NOFILE`,
/// serves the fault server on `$QMP_FAULT_SOCKET` (cap `$QMP_FAULT_MAX_CONNECTIONS` when
/// set), logs `qmp_server`'s info and warnings to stderr, and exits when stdin closes.
/// Elsewhere it returns at once.
pub fn child_main_if_asked() {
    if std::env::var_os("QMP_FAULT_CHILD").is_none() {
        return;
    }
    let var = |name: &str| std::env::var(name).ok();
    if let Some(n) = var("QMP_FAULT_NOFILE") {
        let n: u64 = n.parse().unwrap();
        nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, n, n).unwrap();
    }
    tracing::subscriber::set_global_default(StderrLog).unwrap();
    std::thread::spawn(|| {
        // The parent holds our stdin; when it goes (or dies), so do we.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut builder = fault_server_builder();
        if let Some(n) = var("QMP_FAULT_MAX_CONNECTIONS") {
            builder = builder.max_connections(n.parse().unwrap());
        }
        let server = builder.build();
        let path = PathBuf::from(var("QMP_FAULT_SOCKET").unwrap());
        let listener = qmp_server::bind_unix(&path).unwrap();
        server.serve_unix(listener).await.unwrap();
    });
}

/// The fault server's commands: `query-status`, `big` (a [`BIG_REPLY`]-byte string) and
/// `flood` (emits `n` TICK events, then answers).
pub fn fault_server_builder() -> qmp_server::ServerBuilder {
    let mut builder = Server::builder();
    let events = builder.events();
    let big = serde_json::Value::String("x".repeat(BIG_REPLY));
    builder
        .command(CommandSpec::new("query-status"), |_| {
            Ok(json!({"running": true, "singlestep": false, "status": "running"}))
        })
        .command(CommandSpec::new("big"), move |_| Ok(big.clone()))
        .command(CommandSpec::new("flood").arg("n", Ty::Uint), move |a| {
            let n = a["n"].as_u64().unwrap_or(0);
            for i in 0..n {
                events.emit("TICK", Some(json!({"n": i, "pad": "0123456789abcdef0123456789abcdef"})));
            }
            Ok(json!({}))
        })
}

/// The child server, killed when dropped.
pub struct ServerProcess {
    child: Child,
    _dir: tempfile::TempDir,
    path: PathBuf,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl ServerProcess {
    /// Starts the child with `env` (besides its socket) and waits until it accepts.
    pub fn start(env: &[(&str, &str)]) -> ServerProcess {
        let dir = tempfile::Builder::new().prefix("qmp-fault-").tempdir().unwrap();
        let path = dir.path().join("qmp.sock");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["fault_server_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("QMP_FAULT_CHILD", "1")
            .env("QMP_FAULT_SOCKET", &path)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut pipe = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        });
        let mut server = ServerProcess { child, _dir: dir, path, stderr: Some(stderr) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut probe) = UnixStream::connect(&server.path) {
                // Wait for its greeting, so the probe's slot is surely taken and then freed.
                let mut line = String::new();
                probe.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = BufReader::new(&mut probe).read_line(&mut line);
                break;
            }
            if let Some(status) = server.child.try_wait().unwrap() {
                panic!("the server child exited at start-up: {status}; {}", server.stop_log());
            }
            assert!(Instant::now() < deadline, "the server child did not listen within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the child is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The child's resident set size, in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS in /proc/PID/status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Stops the child (closing its stdin) and returns what it logged.
    pub fn stop_log(&mut self) -> String {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stderr.take().map(|t| t.join().unwrap()).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw blocking client: lines in, bytes out.
pub struct Raw {
    pub reader: BufReader<UnixStream>,
    pub writer: UnixStream,
}

impl Raw {
    /// Connects (reads nothing yet).
    pub fn connect(path: &Path) -> std::io::Result<Raw> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(Raw { writer: stream.try_clone()?, reader: BufReader::new(stream) })
    }

    /// Connects and negotiates, connecting again while the server refuses (for 5 s): clients
    /// that just hung up may still be counted against the cap for a moment.
    pub fn connect_negotiated(path: &Path) -> Raw {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut raw = Raw::connect(path).expect("the listener accepts");
            let greeting = raw.line();
            if greeting.starts_with("{\"QMP\": ") {
                raw.send(b"{\"execute\": \"qmp_capabilities\"}");
                assert_eq!(raw.line(), "{\"return\": {}}\r\n");
                return raw;
            }
            assert!(greeting.contains("Too many QMP connections"), "{greeting:?}");
            assert!(Instant::now() < deadline, "still refused after 5 s: {greeting:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Reads one line (empty at EOF).
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Reads the greeting and negotiates.
    pub fn negotiate(&mut self) {
        let greeting = self.line();
        assert!(greeting.starts_with("{\"QMP\": "), "{greeting:?}");
        self.send(b"{\"execute\": \"qmp_capabilities\"}");
        assert_eq!(self.line(), "{\"return\": {}}\r\n");
    }

    /// Writes `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// Sends `query-status` and reads lines up to its reply (skipping events).
    pub fn query_status(&mut self) -> String {
        self.send(b"{\"execute\": \"query-status\", \"id\": \"qs\"}");
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "EOF before query-status's reply");
            if line.contains("\"id\": \"qs\"") {
                return line;
            }
        }
    }
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit; returns the new limit.
pub fn raise_own_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    hard
}

/// Logs `tracing` events at info level and above to stderr, one line each:
/// `LEVEL message`.
struct StderrLog;

impl tracing::Subscriber for StderrLog {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        eprintln!("{} {}", event.metadata().level(), message.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
