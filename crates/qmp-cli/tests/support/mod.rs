//! Helpers for the end-to-end tests: a real QEMU per test, and the built `qmp` binary run
//! with a deadline so that a hang fails the test instead of stalling the suite.

#![allow(dead_code)] // each test binary uses a different part

pub mod pty;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use qmp_testkit::Listener;

/// The QEMU binary the tests start.
pub const QEMU: &str = "qemu-system-x86_64";

/// A QEMU with no VM (`-machine none`), its monitor on a socket in its own temp dir.
/// Killed when dropped.
pub struct Qemu {
    child: Child,
    dir: tempfile::TempDir,
    sock: String,
    reaped: bool,
}

impl Qemu {
    /// Starts QEMU with a QMP server socket at `<tempdir>/qmp.sock`, ready to accept.
    pub fn start() -> Qemu {
        Self::start_with_monitor_option("-qmp")
    }

    /// Starts QEMU with a QMP monitor on TCP 127.0.0.1:`port`, ready to accept; `sock()` is
    /// then meaningless.
    pub fn start_on_tcp(port: u16) -> Qemu {
        Self::spawn_in(tempdir(), &["-qmp", &qmp_testkit::waiting_tcp(port)], &[Listener::Tcp(port)])
    }

    /// Starts QEMU with `OPTION unix:<tempdir>/qmp.sock,server=on,wait=on` (`-qmp` or
    /// `-monitor`), ready to accept.
    pub fn start_with_monitor_option(option: &str) -> Qemu {
        let dir = tempdir();
        let sock = dir.path().join("qmp.sock");
        Self::spawn_in(dir, &[option, &qmp_testkit::waiting_unix(&sock)], &[Listener::Unix(&sock)])
    }

    /// Starts QEMU with two QMP monitors, `sock()` and `sock2()`: a test can watch one while
    /// it acts on the other (QEMU serves one client per monitor).
    pub fn start_with_two_monitors() -> Qemu {
        let dir = tempdir();
        let (sock, sock2) = (dir.path().join("qmp.sock"), dir.path().join("qmp2.sock"));
        let args = ["-qmp", &qmp_testkit::waiting_unix(&sock), "-qmp", &qmp_testkit::waiting_unix(&sock2)];
        Self::spawn_in(dir, &args, &[Listener::Unix(&sock), Listener::Unix(&sock2)])
    }

    /// Starts QEMU with `monitor_args`, whose monitors wait for a first client at `monitors`,
    /// and returns once each has greeted one (see `qmp_testkit::greet_monitors` for the
    /// start-up race in QEMU 7.2 that this avoids).
    fn spawn_in(dir: tempfile::TempDir, monitor_args: &[&str], monitors: &[Listener<'_>]) -> Qemu {
        let sock = dir.path().join("qmp.sock").to_str().unwrap().to_owned();
        let mut cmd = Command::new(QEMU);
        cmd.args(["-machine", "none", "-nodefaults", "-display", "none"]).args(monitor_args);
        let mut child = qmp_testkit::spawn_quiet(cmd);
        qmp_testkit::greet_monitors(&mut child, monitors);
        Qemu { child, dir, sock, reaped: false }
    }

    /// The QMP socket path.
    pub fn sock(&self) -> &str {
        &self.sock
    }

    /// The second monitor's socket path (`start_with_two_monitors`).
    pub fn sock2(&self) -> String {
        self.dir.path().join("qmp2.sock").to_str().unwrap().to_owned()
    }

    /// The test's temp dir (for paths that must not exist, say).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Sends `signal` to QEMU.
    pub fn signal(&mut self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for QEMU to exit (after a kill).
    pub fn reap(&mut self) -> ExitStatus {
        let status = self.child.wait().unwrap();
        self.reaped = true;
        status
    }

    /// Waits up to `limit` for QEMU to exit by itself (after `quit`).
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.reaped = true;
                return status;
            }
            assert!(Instant::now() < deadline, "{QEMU} did not exit within {limit:?}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("qmp-cli-test-").tempdir().unwrap()
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a run of `qmp` did.
#[derive(Debug)]
pub struct Output {
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output, as text.
    pub stdout: String,
    /// Standard error, as text.
    pub stderr: String,
}

impl Output {
    /// Fails the test, showing everything, unless the exit code is `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) {
        assert_eq!(self.code, Some(code), "exit code; stdout {:?}, stderr {:?}", self.stdout, self.stderr);
    }
}

/// The built `qmp` binary with `args`, without the address variables of the test's own
/// environment.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qmp"));
    cmd.args(args).env_remove("QMP_SOCKET").env_remove("QMP_PATH").stdin(Stdio::null());
    cmd
}

/// Runs `qmp ARGS` (20 s at most) and collects what it printed.
pub fn qmp(args: &[&str]) -> Output {
    qmp_env(args, &[])
}

/// Runs `qmp ARGS` with extra environment variables.
pub fn qmp_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = command(args);
    cmd.envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
    finish(cmd.spawn().unwrap(), Duration::from_secs(20))
}

/// Waits for `child` (killing it and failing after `limit`), reading its piped outputs.
pub fn finish(mut child: Child, limit: Duration) -> Output {
    let readers: Vec<_> = [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_string(&mut text).unwrap();
            }
            text
        })
    })
    .collect();
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("qmp did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let mut texts = readers.into_iter().map(|r| r.join().unwrap());
    Output { code: status.code(), stdout: texts.next().unwrap(), stderr: texts.next().unwrap() }
}

/// A TCP port nothing listens on right now (bound, then released).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `qmp ARGS` with stdout on a pseudo-terminal; returns what it printed there, with the
/// terminal's CRLF line ends turned back into LF.
pub fn run_on_pty(args: &[&str]) -> String {
    run_on_pty_env(args, &[])
}

/// [`run_on_pty`] with extra environment variables.
pub fn run_on_pty_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let pty = nix::pty::openpty(None, None).unwrap();
    let child = command(args)
        .envs(env.iter().copied())
        .stdout(Stdio::from(pty.slave))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The parent's copy of the slave end went into the child's Stdio and is closed here, so
    // reading the master ends (EIO) once the child exits.
    let mut master = std::fs::File::from(pty.master);
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match master.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        bytes
    });
    let out = finish(child, Duration::from_secs(20));
    out.assert_code(0);
    String::from_utf8(reader.join().unwrap()).unwrap().replace("\r\n", "\n")
}
