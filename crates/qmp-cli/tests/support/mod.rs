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

/// The QEMU binary the tests start.
pub const QEMU: &str = "qemu-system-x86_64";

/// A QEMU with no VM (`-machine none`), its QMP monitor on a socket in its own temp dir.
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
        Self::start_with_monitor_option("-qmp", "unix:{},server=on,wait=off")
    }

    /// Starts QEMU with `-qmp MONITOR` (a TCP monitor, say); `sock()` is then meaningless.
    pub fn start_with_monitor(monitor: &str) -> Qemu {
        Self::spawn("-qmp", monitor.to_owned(), false, false)
    }

    /// Starts QEMU with `OPTION SPEC`, `{}` in SPEC replaced by the socket path.
    pub fn start_with_monitor_option(option: &str, spec: &str) -> Qemu {
        Self::spawn(option, spec.to_owned(), true, false)
    }

    /// Starts QEMU with two QMP monitors, `sock()` and `sock2()`: a test can watch one while
    /// it acts on the other (QEMU serves one client per monitor).
    pub fn start_with_two_monitors() -> Qemu {
        Self::spawn("-qmp", "unix:{},server=on,wait=off".to_owned(), true, true)
    }

    fn spawn(option: &str, spec: String, unix: bool, second: bool) -> Qemu {
        let dir = tempfile::Builder::new().prefix("qmp-cli-test-").tempdir().unwrap();
        let sock = dir.path().join("qmp.sock").to_str().unwrap().to_owned();
        let spec = spec.replace("{}", &sock);
        let mut args = vec!["-machine", "none", "-nodefaults", "-display", "none", option, &spec];
        let sock2 = dir.path().join("qmp2.sock").to_str().unwrap().to_owned();
        let spec2 = format!("unix:{sock2},server=on,wait=off");
        if second {
            args.extend(["-qmp", &spec2]);
        }
        let child = Command::new(QEMU)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {QEMU} ({e}): these tests need QEMU; run scripts/install-deps.sh")
            });
        let mut qemu = Qemu { child, dir, sock, reaped: false };
        if unix {
            // The path appears at bind(), a moment before listen(): wait until a connection
            // is taken. QEMU frees the monitor again when this probe hangs up.
            qemu.wait_until(|q| {
                Path::new(&q.sock).exists() && std::os::unix::net::UnixStream::connect(&q.sock).is_ok()
            });
        }
        if second {
            qemu.wait_until(|_| {
                Path::new(&sock2).exists() && std::os::unix::net::UnixStream::connect(&sock2).is_ok()
            });
        }
        qemu
    }

    /// Waits (up to 10 s) for a TCP monitor to listen on `port`.
    pub fn wait_for_tcp(&mut self, port: u16) {
        self.wait_until(|_| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        // That probe took the monitor for a moment; QEMU frees it when we hang up.
    }

    fn wait_until(&mut self, mut ready: impl FnMut(&Qemu) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready(self) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{QEMU} exited at start-up: {status}");
            }
            assert!(Instant::now() < deadline, "{QEMU} did not start listening within 10 s");
            std::thread::sleep(Duration::from_millis(5));
        }
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
