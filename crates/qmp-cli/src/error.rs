//! What can make `qmp` fail, and the exit code each failure gets.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use qmp_proto::QmpError;

use crate::TimeoutSource;

/// The exit codes, as `--help` documents them.
pub mod code {
    /// The command ran and its result was printed.
    pub const SUCCESS: u8 = 0;
    /// The server answered with a QMP error (or the result could not be written).
    pub const QMP_ERROR: u8 = 1;
    /// Bad options or arguments, or no server address.
    pub const USAGE: u8 = 2;
    /// No connection: cannot connect, negotiation failed, or the server went away.
    pub const CONNECTION: u8 = 3;
    /// `--timeout` ran out.
    pub const TIMEOUT: u8 = 4;
    /// Interrupted (SIGINT, Ctrl-C) while following a job or a migration: 128 + 2.
    pub const INTERRUPTED: u8 = 130;
}

/// A limit that ran out: how long, and whose it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimedOut {
    /// The limit.
    pub after: Duration,
    /// Where it came from.
    pub source: TimeoutSource,
}

/// A failure of the `qmp` command, sorted by the exit code it gets.
#[derive(Debug)]
pub enum CliError {
    /// The server answered the command with an error: printed as `CLASS: desc`.
    Qmp(QmpError),
    /// The command line is wrong.
    Usage(String),
    /// The server could not be reached, or the connection broke.
    Connection(String),
    /// The operation took longer than its limit (when known, which limit).
    Timeout(Option<TimedOut>),
    /// Writing the result failed (other than a closed pipe, which is success).
    Output(std::io::Error),
    /// What the command started failed: a job's or a migration's error, as QEMU gave it.
    Failed(String),
    /// Ctrl-C (SIGINT) ended the run: what became of the job or migration.
    Interrupted(String),
}

impl CliError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Qmp(_) | CliError::Output(_) | CliError::Failed(_) => code::QMP_ERROR,
            CliError::Interrupted(_) => code::INTERRUPTED,
            CliError::Usage(_) => code::USAGE,
            CliError::Connection(_) => code::CONNECTION,
            CliError::Timeout(_) => code::TIMEOUT,
        })
    }

    /// Prints the failure on stderr: a QMP error as `CLASS: desc`, others as `qmp: message`.
    /// A stderr that cannot be written to is ignored (the exit code still tells).
    pub fn report(&self) {
        use std::io::Write;
        let mut stderr = std::io::stderr().lock();
        let _ = match self {
            CliError::Qmp(e) => writeln!(stderr, "{}: {}", e.class, e.desc),
            other => writeln!(stderr, "qmp: {other}"),
        };
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Qmp(e) => write!(f, "{}: {}", e.class, e.desc),
            CliError::Usage(m) | CliError::Connection(m) | CliError::Failed(m) | CliError::Interrupted(m) => {
                f.write_str(m)
            }
            CliError::Timeout(Some(TimedOut { after, source })) => {
                write!(f, "timed out after {}", humanize(*after))?;
                match source {
                    TimeoutSource::Option => Ok(()),
                    TimeoutSource::Environment => f.write_str(" (QMP_TIMEOUT; 0 waits forever)"),
                    TimeoutSource::Default => f.write_str(
                        " (the default limit; --timeout SECONDS or QMP_TIMEOUT to change it, 0 to wait forever)",
                    ),
                }
            }
            CliError::Timeout(None) => f.write_str("timed out"),
            CliError::Output(e) => write!(f, "cannot write the result: {e}"),
        }
    }
}

impl std::error::Error for CliError {}

impl From<qmp::Error> for CliError {
    fn from(e: qmp::Error) -> Self {
        match e {
            qmp::Error::Qmp(q) => CliError::Qmp(q),
            qmp::Error::Address(a) => CliError::Usage(a.to_string()),
            qmp::Error::Unsupported(m) => CliError::Usage(m),
            qmp::Error::Timeout => CliError::Timeout(None),
            // Found before sending (the client's check_arguments): the command line is wrong.
            e @ qmp::Error::InvalidArguments { .. } => CliError::Usage(e.to_string()),
            other => CliError::Connection(other.to_string()),
        }
    }
}

impl From<crate::args::ArgError> for CliError {
    fn from(e: crate::args::ArgError) -> Self {
        CliError::Usage(e.to_string())
    }
}

/// `1.5s`, `250ms`: a duration as a person would write it.
fn humanize(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}
