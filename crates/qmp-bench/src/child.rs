//! Helper processes: the bench binary re-executed with a hidden subcommand (a peer, the
//! simulator, an idle client), so that client and server never share a process where that
//! matters (memory, CPU). Each child prints one line when it is ready and is killed on drop.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A running helper process.
pub struct Helper {
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl Helper {
    /// Starts `qmp-bench ARGS...` and waits for its "ready" line.
    pub fn start(args: &[&str]) -> io::Result<Helper> {
        Helper::start_program(&std::env::current_exe()?, args)
    }

    /// Starts `PROGRAM ARGS...` and waits for its "ready" line.
    pub fn start_program(exe: &Path, args: &[&str]) -> io::Result<Helper> {
        let mut child = Command::new(exe).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            return Err(io::Error::other("no stdout from the helper"));
        };
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other(format!("helper {args:?} did not start (said {line:?})")));
        }
        Ok(Helper { child, _stdout: stdout })
    }

    /// Starts a helper that serves a unix socket at `socket` and waits for the socket.
    pub fn serving(args: &[&str], socket: &Path) -> io::Result<Helper> {
        let h = Helper::start(args)?;
        wait_for_path(socket)?;
        Ok(h)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its resident set size now, in KiB.
    pub fn rss_kb(&self) -> io::Result<u64> {
        status_kb(self.pid(), "VmRSS:")
    }

    /// The CPU time all its threads have used so far, in nanoseconds (the scheduler's own
    /// count, `/proc/PID/task/*/schedstat`: finer than the clock ticks of `/proc/PID/stat`).
    pub fn cpu_ns(&self) -> io::Result<u64> {
        cpu_ns(self.pid())
    }

    /// The anonymous part of its resident set (heap, stacks: the process's own memory, not
    /// the pages of its binary and shared libraries), in KiB.
    pub fn anon_kb(&self) -> io::Result<u64> {
        status_kb(self.pid(), "RssAnon:")
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CPU time all threads of process `pid` have used so far, in nanoseconds (the
/// scheduler's own count, `/proc/PID/task/*/schedstat`: finer than the clock ticks of
/// `/proc/PID/stat`).
pub fn cpu_ns(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let stat = match std::fs::read_to_string(task?.path().join("schedstat")) {
            Ok(stat) => stat,
            // A thread that ended meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let first = stat.split_whitespace().next().unwrap_or("");
        total += first.parse::<u64>().map_err(|_| io::Error::other(format!("bad schedstat {stat:?}")))?;
    }
    Ok(total)
}

/// A `kB` figure (`field` such as `VmRSS:`) from /proc/PID/status.
pub fn status_kb(pid: u32, field: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| io::Error::other(format!("no {field} in /proc/{pid}/status")))
}

/// Waits up to 10 s for `path` to exist.
pub fn wait_for_path(path: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        if Instant::now() > deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} did not appear", path.display()),
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Tells the parent (see [`Helper::start`]) this helper is up, and ends the process when the
/// parent closes our stdin or dies, so that no helper outlives a run.
pub fn ready_and_watch_parent() {
    use std::io::{Read, Write};
    println!("ready");
    let _ = io::stdout().flush();
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });
}

/// Where `binary` is on PATH.
pub fn on_path(binary: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(binary)).find(|p| p.is_file())
}
