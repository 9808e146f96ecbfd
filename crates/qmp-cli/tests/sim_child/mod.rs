//! `qmp sim` as a child process for the fault tests: started with a umask of 000 (and, when
//! asked, a lowered `RLIMIT_NOFILE`), the address it announces read from its stderr.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A running `qmp sim`; killed when dropped.
pub struct Sim {
    child: Child,
    /// The unix socket it announced.
    pub socket: PathBuf,
    stderr: Option<std::thread::JoinHandle<String>>,
    status: Option<ExitStatus>,
}

impl Sim {
    /// Runs `qmp sim ARGS` with `env`, its open files limited to `fd_limit` when given,
    /// under umask 000, and waits for its `listening on unix:PATH` line.
    pub fn start(args: &[&str], env: &[(&str, &str)], fd_limit: Option<u32>) -> Sim {
        let qmp = env!("CARGO_BIN_EXE_qmp");
        let mut cmd = match fd_limit {
            // The shell lowers the limit, then becomes qmp (same pid, for signals).
            Some(n) => {
                let mut c = Command::new("/bin/sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), qmp, "sim"]);
                c
            }
            None => {
                let mut c = Command::new(qmp);
                c.arg("sim");
                c
            }
        };
        cmd.args(args)
            .envs(env.iter().copied())
            .env_remove("QMP_SOCKET")
            .env_remove("QMP_PATH")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: umask(2) is async-signal-safe and touches no memory of this process.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::stat::umask(nix::sys::stat::Mode::empty());
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let socket = line
            .trim_end()
            .strip_prefix("qmp sim: listening on unix:")
            .unwrap_or_else(|| panic!("qmp sim said {line:?}"))
            .into();
        let rest = std::thread::spawn(move || {
            let mut text = line;
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Sim { child, socket, stderr: Some(rest), status: None }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends it `signal`.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits (up to `limit`) for it to exit; returns its status and everything it printed
    /// on stderr.
    pub fn wait(&mut self, limit: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("qmp sim did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.status = Some(status);
        (status, self.stderr.take().map(|t| t.join().unwrap()).unwrap_or_default())
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// This process's soft and hard `RLIMIT_NOFILE`, from /proc/self/limits.
pub fn own_fd_limits() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    let mut numbers = line.split_whitespace().filter_map(|w| w.parse::<u64>().ok());
    (numbers.next().unwrap(), numbers.next().unwrap())
}

/// Makes sure this process may open `needed` files, raising its soft limit to the hard one
/// with util-linux's `prlimit` when it is lower.
pub fn need_fds(needed: u64) {
    let (soft, hard) = own_fd_limits();
    if soft < needed {
        let spec = format!("--nofile={hard}:{hard}");
        let status = Command::new("prlimit")
            .args(["--pid", &std::process::id().to_string(), &spec])
            .status()
            .expect("prlimit (util-linux) raises this test's fd limit");
        assert!(status.success(), "prlimit {spec}");
    }
    let (soft, _) = own_fd_limits();
    assert!(soft >= needed, "this test needs {needed} open files; the hard limit is {hard}");
}
