//! Leaving the shell: when the connection drops while the line editor waits for a key, the
//! process ends from the watcher task, so the terminal mode is restored by hand first.
//! Under `qmp launch`, leaving also waits for QEMU and takes its exit status.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::termios::{tcgetattr, tcsetattr, SetArg, Termios};

use crate::error::code;

/// The QEMU that `qmp launch` started, and the private directory holding its socket.
#[derive(Debug)]
pub struct Launched {
    /// The QEMU process.
    pub child: Child,
    /// The directory of the listening socket, removed when the shell ends.
    pub socket_dir: PathBuf,
}

impl Launched {
    /// Waits up to `limit` for QEMU to exit; kills it past that.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => {
                    let _ = self.child.kill();
                    // After a kill the wait returns promptly; an error means it was reaped already.
                    if let Ok(status) = self.child.wait() {
                        return status;
                    }
                    // No status to be had: report it as killed (wait status 9 = SIGKILL).
                    return std::os::unix::process::ExitStatusExt::from_raw(9);
                }
            }
        }
    }

    /// Removes the socket directory (the socket itself went with the listener).
    pub fn remove_socket(&self) {
        let _ = std::fs::remove_dir_all(&self.socket_dir);
    }

    /// Asks QEMU to exit (SIGTERM, which it takes as a clean shutdown), waits up to `limit`
    /// (killing it past that) and removes the socket directory.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
        }
        let status = self.wait(limit);
        self.remove_socket();
        status
    }
}

/// SIGTERM and SIGHUP (what systemd, docker, CI and a closed terminal send), caught from the
/// moment this is made, so that the shell and `qmp launch` end as Ctrl-D would (QEMU
/// stopped, the socket and its directory removed, the terminal restored) instead of dying
/// where they stand.
pub struct Terminations {
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Terminations {
    /// Starts catching the signals (call within the runtime).
    pub fn catch() -> std::io::Result<Terminations> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Terminations { term: signal(SignalKind::terminate())?, hup: signal(SignalKind::hangup())? })
    }

    /// The next of the signals to arrive.
    pub async fn next(&mut self) -> Signal {
        tokio::select! {
            _ = self.term.recv() => Signal::SIGTERM,
            _ = self.hup.recv() => Signal::SIGHUP,
        }
    }
}

/// The exit code for a process ended by `signal`, as shells report it (128+N).
pub fn signal_code(signal: Signal) -> u8 {
    128 + signal as u8
}

/// The exit code that mirrors a QEMU exit status (128+N for a signal, as shells do).
pub fn status_number(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let n = match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    };
    // Clamped into 0..=255 first, so the cast keeps the value.
    n.clamp(0, 255) as u8
}

/// How the shell ends; shared by the line loop and the connection watcher.
#[derive(Debug)]
pub struct Finisher {
    saved: Mutex<Option<Termios>>,
    launched: Mutex<Option<Launched>>,
    /// Taken by whoever ends the shell first; the other then waits for the process to exit.
    ending: Mutex<bool>,
}

impl Finisher {
    /// Remembers the terminal's mode as it is now (before the line editor changes it).
    pub fn new(launched: Option<Launched>) -> Self {
        let stdin = std::io::stdin();
        let saved = if stdin.is_terminal() { tcgetattr(&stdin).ok() } else { None };
        Finisher { saved: Mutex::new(saved), launched: Mutex::new(launched), ending: Mutex::new(false) }
    }

    /// Whether this session started its QEMU (`qmp launch`).
    pub fn is_launch(&self) -> bool {
        self.launched.lock().map(|l| l.is_some()).unwrap_or(false)
    }

    /// Marks the shell as ending normally, so a close seen afterwards is not reported as a
    /// lost connection. False when the other side already started ending it.
    pub fn begin_ending(&self) -> bool {
        let mut ending = self.ending.lock().unwrap_or_else(|p| p.into_inner());
        !std::mem::replace(&mut *ending, true)
    }

    /// The connection dropped: restore the terminal, say so in one line, end the process
    /// (with QEMU's status under `qmp launch`, else the connection exit code). Returns only
    /// when the shell is already ending another way (whoever began ending finishes it).
    pub fn connection_lost(&self, reason: &str) {
        if !self.begin_ending() {
            return;
        }
        self.restore_terminal();
        let code = match self.end_launched(Duration::from_secs(10)) {
            Some(status) => {
                println!("QEMU exited ({status})");
                status_number(status)
            }
            None => {
                eprintln!("qmp: connection lost: {reason}");
                code::CONNECTION
            }
        };
        let _ = std::io::stdout().flush();
        std::process::exit(i32::from(code))
    }

    /// SIGTERM or SIGHUP arrived: restore the terminal, stop the QEMU that `qmp launch`
    /// started and remove its socket, and end the process with 128+N. Returns only when the
    /// shell is already ending another way.
    pub fn terminated(&self, signal: Signal) {
        if !self.begin_ending() {
            return;
        }
        self.restore_terminal();
        let mut guard = self.launched.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(launched) = guard.as_mut() {
            let status = launched.terminate(Duration::from_secs(10));
            println!("QEMU exited ({status})");
        }
        eprintln!("qmp: ended by {signal}");
        let _ = std::io::stdout().flush();
        std::process::exit(i32::from(signal_code(signal)))
    }

    /// Under `qmp launch`: waits for QEMU (killing it after `limit`) and removes the socket.
    /// `None` when the shell did not launch QEMU.
    pub fn end_launched(&self, limit: Duration) -> Option<ExitStatus> {
        let mut guard = self.launched.lock().unwrap_or_else(|p| p.into_inner());
        let launched = guard.as_mut()?;
        let status = launched.wait(limit);
        launched.remove_socket();
        Some(status)
    }

    fn restore_terminal(&self) {
        if let Some(saved) = self.saved.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, saved);
        }
        // The cursor may be mid-line after the prompt.
        print!("\r\n");
    }
}
