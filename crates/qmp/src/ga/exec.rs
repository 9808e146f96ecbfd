//! Running a program through the guest agent: `guest-exec` starts it and returns a pid, and
//! `guest-exec-status` is polled until it has exited, its output base64-encoded. [`Exec`]
//! says what to run; [`ExecOutput`] is what came of it, decoded.

use std::time::Duration;

use base64::Engine as _;

use crate::ga::commands::{GuestExec, GuestExecStatus};
use crate::ga::types;
use crate::{Error, Result};

/// A program to run in the guest ([`Client::guest_exec`](crate::Client::guest_exec)).
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

    /// The whole-run bound, if any.
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.timeout
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

/// The `guest-exec-status` request for `pid`.
pub(crate) fn status_request(pid: i64) -> GuestExecStatus {
    GuestExecStatus::new(pid)
}

/// Polling `guest-exec-status`: quick at first (most programs are short), backing off.
pub(crate) fn next_poll(previous: Duration) -> Duration {
    (previous * 2).clamp(Duration::from_millis(1), Duration::from_millis(100))
}

/// The output, once the status says the program has exited (`None` before).
pub(crate) fn finished(status: types::GuestExecStatus) -> Option<Result<ExecOutput>> {
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
