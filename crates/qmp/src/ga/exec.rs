//! Running a program through the guest agent: `guest-exec` starts it and returns a pid, and
//! `guest-exec-status` is polled until it has exited, its output base64-encoded. [`Exec`]
//! says what to run; [`ExecOutput`] is what came of it, decoded.

use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::ga::commands::{GuestExec, GuestExecStatus};
use crate::ga::types;
use crate::{Error, Result};

/// A program to run in the guest ([`Agent::exec`](crate::ga::Agent::exec)).
///
/// ```
/// use std::time::Duration;
/// let run = qmp::ga::Exec::new("/bin/sh")
///     .args(["-c", "cat; echo done"])
///     .env(["LANG=C"])
///     .input(b"to stdin\n".to_vec())
///     .timeout(Duration::from_secs(10));
/// ```
#[derive(Debug, Clone)]
pub struct Exec {
    program: String,
    args: Vec<String>,
    env: Vec<String>,
    input: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

impl Exec {
    /// Runs `program` (a path in the guest; the agent does not search `PATH` for you).
    pub fn new(program: impl Into<String>) -> Self {
        Exec { program: program.into(), args: Vec::new(), env: Vec::new(), input: None, timeout: None }
    }

    /// Its arguments, after the program's name.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Environment entries, `KEY=VALUE` each (the program gets only these).
    pub fn env<I: IntoIterator<Item = S>, S: Into<String>>(mut self, env: I) -> Self {
        self.env.extend(env.into_iter().map(Into::into));
        self
    }

    /// Data for its standard input (which is closed after it).
    pub fn input(mut self, data: Vec<u8>) -> Self {
        self.input = Some(data);
        self
    }

    /// How long the whole run may take, start to exit; past it the call fails with
    /// [`Error::Timeout`] and the program is left running.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The `guest-exec` request: output captured, input base64-encoded.
    pub(crate) fn request(&self) -> GuestExec {
        let mut cmd = GuestExec::new(self.program.clone()).capture_output(serde_json::Value::Bool(true));
        if !self.args.is_empty() {
            cmd = cmd.arg(self.args.clone());
        }
        if !self.env.is_empty() {
            cmd = cmd.env(self.env.clone());
        }
        if let Some(data) = &self.input {
            cmd = cmd.input_data(base64::engine::general_purpose::STANDARD.encode(data));
        }
        cmd
    }
}

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i64),
    /// A signal ended it.
    Signal(i64),
}

impl ExitStatus {
    /// The status as a shell reports it: the code, or 128 + the signal's number.
    pub fn shell_code(self) -> i64 {
        match self {
            ExitStatus::Code(c) => c,
            ExitStatus::Signal(s) => 128 + s,
        }
    }
}

/// What came of a program run in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// How it ended.
    pub status: ExitStatus,
    /// Its standard output, as it wrote it.
    pub stdout: Vec<u8>,
    /// Its standard error.
    pub stderr: Vec<u8>,
    /// True when the agent cut the output short (it keeps a bounded amount of each stream).
    pub truncated: bool,
}

/// Waiting for a started program to exit: what each `guest-exec-status` answer means, and
/// how long to sleep before the next (1 ms doubling to 100 ms: most programs are short).
pub(crate) struct Waiting {
    pid: i64,
    started: Instant,
    wait: Duration,
    limit: Option<Duration>,
}

/// What to do after a `guest-exec-status` answer.
pub(crate) enum Step {
    /// The program has exited.
    Done(ExecOutput),
    /// Ask again after this long.
    Sleep(Duration),
}

impl Waiting {
    /// Starts waiting for `pid`, started by `run` just now.
    pub(crate) fn new(run: &Exec, pid: i64) -> Self {
        Waiting { pid, started: Instant::now(), wait: Duration::ZERO, limit: run.timeout }
    }

    /// The next `guest-exec-status` request.
    pub(crate) fn request(&self) -> GuestExecStatus {
        GuestExecStatus::new(self.pid)
    }

    /// The step after `status`: done, or sleep; past the run's bound, [`Error::Timeout`]
    /// (the last look is at the bound, not one poll before it).
    pub(crate) fn after(&mut self, status: types::GuestExecStatus) -> Result<Step> {
        if let Some(done) = finished(status) {
            return done.map(Step::Done);
        }
        self.wait = (self.wait * 2).clamp(Duration::from_millis(1), Duration::from_millis(100));
        if let Some(limit) = self.limit {
            match limit.checked_sub(self.started.elapsed()) {
                Some(left) if !left.is_zero() => self.wait = self.wait.min(left),
                _ => return Err(Error::Timeout),
            }
        }
        Ok(Step::Sleep(self.wait))
    }
}

/// The output, once the status says the program has exited (`None` before).
fn finished(status: types::GuestExecStatus) -> Option<Result<ExecOutput>> {
    if !status.exited {
        return None;
    }
    let decode = |data: Option<String>, what: &str| -> Result<Vec<u8>> {
        data.map_or(Ok(Vec::new()), |d| {
            base64::engine::general_purpose::STANDARD.decode(d.as_bytes()).map_err(|e| {
                Error::Protocol(crate::ProtocolFault::MalformedReply(format!(
                    "guest-exec-status: the {what} is not base64: {e}"
                )))
            })
        })
    };
    let status_of = match (status.exitcode, status.signal) {
        (_, Some(sig)) => ExitStatus::Signal(sig),
        (Some(code), None) => ExitStatus::Code(code),
        (None, None) => {
            return Some(Err(Error::Protocol(crate::ProtocolFault::MalformedReply(
                "guest-exec-status: exited, with neither an exit code nor a signal".into(),
            ))))
        }
    };
    let truncated = status.out_truncated.unwrap_or(false) || status.err_truncated.unwrap_or(false);
    Some((|| {
        Ok(ExecOutput {
            status: status_of,
            stdout: decode(status.out_data, "output")?,
            stderr: decode(status.err_data, "error output")?,
            truncated,
        })
    })())
}
