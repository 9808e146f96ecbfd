//! `qmp ga`: the guest agent (qemu-ga) from the command line. `qmp ga COMMAND [ARG...]` runs
//! one agent command with `qmp`'s argument syntax and output rules; `exec` runs a program in
//! the guest and passes its output and exit code through; `cp` copies files in and out; `ping`,
//! `info` and `shell` are what they say.

mod copy;
mod exec;
mod info;

use std::ffi::OsString;
use std::time::Duration;

use clap::{Args, Subcommand};
use qmp::ga::Agent;

use crate::error::{CliError, TimedOut};
use crate::TimeoutSource;

/// What `qmp ga --help` ends with.
const GA_HELP: &str = "\
Address (ADDR):
  /path/to/sock, unix:PATH   the host side of the guest's agent channel (QEMU's
                             -chardev socket,path=PATH,server=on,wait=off,id=qga0 with
                             -device virtio-serial -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0),
                             or qemu-ga's own unix-listen socket
  vsock:CID:PORT             qemu-ga's vsock-listen, from the host
  serial:PATH, /dev/...      a serial device (a tty) the agent listens on
  Without -s, the environment's QMP_GA_SOCKET is used.

Commands: any qemu-ga command, with the same arguments as `qmp` takes (key=value,
--args JSON); the guest- prefix may be left out (`qmp ga get-osinfo`).

Exit codes: as `qmp`'s (1: the agent's error, 2: usage, 3: connection, 4: --timeout);
`qmp ga exec` exits with the program's code (128+N for signal N).

Examples:
  qmp ga -s /run/vm1-qga.sock ping
  qmp ga -s /run/vm1-qga.sock get-osinfo
  qmp ga -s /run/vm1-qga.sock exec -- /bin/sh -c 'uname -a; df -h /'
  qmp ga -s /run/vm1-qga.sock cp guest:/var/log/syslog ./syslog
  qmp ga -s /run/vm1-qga.sock cp ./tool guest:/usr/local/bin/tool";

/// `qmp ga`'s options and command.
#[derive(Args, Debug)]
#[command(after_help = GA_HELP, subcommand_value_name = "COMMAND", disable_help_subcommand = true)]
pub struct GaArgs {
    /// The agent's channel: a unix socket path, unix:PATH, vsock:CID:PORT, or serial:PATH
    /// [default: $QMP_GA_SOCKET]
    #[arg(short = 's', long = "socket", value_name = "ADDR")]
    pub socket: Option<String>,

    /// Give up after this many seconds, connecting included (exit code 4); 0 waits forever
    /// [default: $QMP_TIMEOUT, else 60; `exec` and `cp` run as long as they take, each call
    /// to the agent bounded by 30 s]
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_timeout, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,

    /// Retry connecting for up to SECONDS while the socket does not exist or is refused
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_timeout, allow_negative_numbers = true)]
    pub wait: Option<Duration>,

    /// Pretty-print JSON even when stdout is not a terminal
    #[arg(long, conflicts_with = "compact")]
    pub pretty: bool,

    /// Print JSON on one line even on a terminal
    #[arg(long)]
    pub compact: bool,

    #[command(subcommand)]
    pub command: GaCommand,
}

impl GaArgs {
    /// The output options: these, else those given before `ga`.
    pub fn output(&self) -> crate::GlobalOpts {
        let mut global = crate::globals().clone();
        if self.pretty || self.compact {
            (global.pretty, global.compact) = (self.pretty, self.compact);
        }
        global
    }
}

/// The agent's subcommands; any other word is an agent command.
#[derive(Subcommand, Debug)]
pub enum GaCommand {
    /// Run a program in the guest: its output as it wrote it, its exit code as ours
    Exec(exec::ExecArgs),
    /// Copy a file into or out of the guest (one side written guest:PATH)
    Cp(copy::CpArgs),
    /// Check that the agent answers
    Ping,
    /// The agent's version and commands (a table on a terminal, JSON otherwise)
    Info,
    /// An interactive shell on the agent
    Shell(crate::shell::AgentShellArgs),
    /// An agent command and its arguments
    #[command(external_subcommand)]
    Raw(Vec<OsString>),
}

/// Runs `qmp ga`.
pub fn run(args: GaArgs) -> Result<std::process::ExitCode, CliError> {
    use std::process::ExitCode;
    let ok = |r: Result<(), CliError>| r.map(|()| ExitCode::SUCCESS);
    match &args.command {
        GaCommand::Exec(exec) => exec::run(&args, exec),
        GaCommand::Cp(cp) => ok(copy::run(&args, cp)),
        GaCommand::Ping => ok(crate::block_on(bounded(&args, false, async {
            connect(&args).await?.execute(qmp::ga::commands::GuestPing {}).await?;
            Ok(())
        }))),
        GaCommand::Info => ok(info::run(&args)),
        GaCommand::Shell(shell) => Ok(crate::shell::run_agent(&args, shell.clone())),
        GaCommand::Raw(words) => ok(run_raw(&args, words)),
    }
}

/// `qmp ga COMMAND [ARG...]`: one agent command, its return printed as `qmp` prints one.
fn run_raw(args: &GaArgs, words: &[OsString]) -> Result<(), CliError> {
    let mut words = words.iter().map(|w| {
        w.to_str()
            .map(str::to_owned)
            .ok_or_else(|| CliError::Usage(format!("not valid UTF-8: {}", w.to_string_lossy())))
    });
    let name = words.next().ok_or_else(|| CliError::Usage("no agent command given".into()))??;
    let name = command_name(&name)?;
    let tokens = words.collect::<Result<Vec<String>, CliError>>()?;
    let arguments = crate::args::parse_command_line(&tokens)?;
    let arguments =
        if arguments.is_empty() { serde_json::Value::Null } else { serde_json::Value::Object(arguments) };
    let result = crate::block_on(bounded(args, false, async {
        Ok(connect(args).await?.call_raw(&name, arguments).send().await?)
    }))?;
    crate::oneshot::print_json(&args.output(), &result)
}

/// The agent command a word names: as given, or with `guest-` put before it when the word
/// lacks it (every qemu-ga command has it).
pub fn command_name(word: &str) -> Result<String, CliError> {
    if word.is_empty() {
        return Err(CliError::Usage("an empty agent command name".into()));
    }
    Ok(if word.starts_with("guest-") { word.to_owned() } else { format!("guest-{word}") })
}

/// Where the agent is: `-s`, else `$QMP_GA_SOCKET`.
pub fn resolve_address(socket: Option<&str>) -> Result<qmp::Address, CliError> {
    let text = match socket {
        Some(s) => s.to_owned(),
        None => std::env::var("QMP_GA_SOCKET").ok().filter(|v| !v.is_empty()).ok_or_else(|| {
            CliError::Usage("no guest agent address: use `qmp ga -s ADDR ...` or set QMP_GA_SOCKET".into())
        })?,
    };
    let address = text.parse().map_err(|e: qmp::AddressError| CliError::Usage(e.to_string()))?;
    // A plain path may name the host side of a serial chardev (a pty): the file tells.
    Ok(match address {
        qmp::Address::Unix(path) if !text.starts_with("unix:") => qmp::Address::detect_path(path),
        other => other,
    })
}

/// Connects to the agent and synchronises; an agent that does not answer is a connection
/// error (exit code 3).
pub async fn connect_agent(socket: Option<&str>, wait: Option<Duration>) -> Result<Agent, CliError> {
    let address = resolve_address(socket)?;
    let mut builder = qmp::Client::builder();
    if let Some(wait) = wait {
        builder = builder.wait(wait);
    }
    Agent::connect_with(builder, address.clone()).await.map_err(|e| match (&address, e) {
        (_, qmp::Error::Qmp(q)) => {
            CliError::Connection(format!("the guest agent refused to synchronise: {q}"))
        }
        (qmp::Address::Unix(path), qmp::Error::Connect { source, .. })
            if source.kind() != std::io::ErrorKind::TimedOut =>
        {
            crate::hints::unix_connect_error(path, &source, crate::hints::Listener::Agent)
        }
        (_, other) => CliError::Connection(other.to_string()),
    })
}

async fn connect(args: &GaArgs) -> Result<Agent, CliError> {
    connect_agent(args.socket.as_deref(), args.wait).await
}

/// Runs `fut` within `--timeout`; without one, within `$QMP_TIMEOUT` or the default unless
/// `long_running` (exec, cp), which are bounded by each agent call's own limit instead.
async fn bounded<T>(
    args: &GaArgs,
    long_running: bool,
    fut: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    if long_running && args.timeout.is_none() {
        return fut.await;
    }
    within(args.timeout, fut).await
}

/// Runs `fut` within `timeout` (0: forever), else within `$QMP_TIMEOUT` or the default.
pub async fn within<T>(
    timeout: Option<Duration>,
    fut: impl std::future::Future<Output = Result<T, CliError>>,
) -> Result<T, CliError> {
    let limit = match timeout {
        Some(t) => Some((t, TimeoutSource::Option)),
        None => crate::globals().command_timeout()?,
    };
    match limit.filter(|(t, _)| !t.is_zero()) {
        Some((limit, source)) => tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| CliError::Timeout(Some(TimedOut { after: limit, source })))?,
        None => fut.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_prefix_may_be_left_out() {
        assert_eq!(command_name("get-osinfo").unwrap(), "guest-get-osinfo");
        assert_eq!(command_name("guest-ping").unwrap(), "guest-ping");
        assert!(command_name("").is_err());
    }
}
