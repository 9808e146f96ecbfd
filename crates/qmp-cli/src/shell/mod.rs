//! `qmp shell` and `qmp launch`: an interactive QMP shell in qmp-shell's syntax, and the same
//! shell on the guest agent.
//!
//! `qmp shell [-s ADDR] [-H] [-p] [-v] [-N] [-l FILE]` connects to a running QEMU;
//! `qmp launch [-H] [-p] [-v] [-l FILE] -- qemu-system-x86_64 ARGS...` (also spelled
//! `qmp shell [OPTIONS] -- qemu-system-x86_64 ARGS...`) starts QEMU with a
//! QMP socket that connects back to us (we listen, as qmp-shell-wrap does), opens the shell,
//! removes the socket afterwards, and exits with QEMU's status.
//! `qmp ga [-s ADDR] shell [-p] [-v] [-l FILE]`, also spelled `qmp shell --ga [-s ADDR] ...`,
//! opens it on the guest agent (qemu-ga).
//!
//! Behaviour:
//! - lines read as qmp-shell reads them ([`parse`]); `help`, `help COMMAND`, Tab completion and
//!   argument checks come from the live `query-qmp-schema` ([`schema`], [`complete`]);
//! - events print above the prompt as they arrive, leaving the line being typed intact;
//! - history persists in `~/.qmp-shell_history`; Ctrl-C drops the line (and an open
//!   transaction), Ctrl-D leaves (under `qmp launch` it asks QEMU to quit);
//! - a lost connection ends the shell with one line on stderr and exit code 3;
//! - `-N` neither negotiates nor waits for a greeting (one that comes at once is shown), so
//!   `qmp_capabilities` is the user's to type, and a peer that never greets gets a prompt.
//!
//! On the guest agent (prompt `(QGA) `): no greeting, negotiation, events, HMP or transactions;
//! command names from its `guest-info` (`help` marks the disabled ones), the `guest-` prefix
//! optional as in `qmp ga`; `help COMMAND` and argument completion from the agent's generated
//! schema ([`ga_schema`]), with no argument check (the agent checks); calls go through
//! [`qmp::ga::Agent`], so a call given up leaves nothing in the next one's way; history in
//! `~/.qmp-ga-shell_history`.

mod complete;
mod finish;
mod ga_schema;
mod hmp;
mod launch;
pub(crate) mod output;
pub(crate) mod parse;
mod repl;
mod schema;

#[cfg(test)]
mod complete_tests;
#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod schema_tests;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use qmp::Client;

use crate::error::{code, CliError};
use repl::Peer;

pub use launch::{launch, LaunchArgs};

/// The options `qmp shell` and `qmp launch` share (qmp-shell's).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// HMP mode: each line is sent through human-monitor-command (`cpu N` picks the CPU)
    #[arg(short = 'H', long = "hmp")]
    pub hmp: bool,

    /// Pretty-print JSON
    #[arg(short = 'p', long = "pretty")]
    pub pretty: bool,

    /// Show each request before sending it
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// Log each request and response to FILE as JSON lines
    #[arg(short = 'l', long = "logfile", value_name = "FILE")]
    pub logfile: Option<PathBuf>,
}

/// The shell's syntax and keys, after the options in `qmp shell --help` and `qmp launch --help`.
const SHELL_HELP: &str = "\
Syntax (qmp-shell's):
  COMMAND key=value ...        values: 42, 1.5, true/false, null, \"quoted text\", {\"a\":1}, ['py','lit']
  a.b.c=1                      dotted keys build nested objects
  transaction(                 one action per line at the TRANS> prompt, ')' sends them as one transaction
  transaction( a k=v ; b k=v ) the same on one line
  {\"execute\": ...}             a JSON object line is sent as it is
  !COMMAND ...                 send without checking the arguments against the schema
  help, help COMMAND           the commands; one command's arguments, types and return value

Keys: Tab completes commands, arguments (nested ones after '.') and enum values; Up/Down walk
the history (~/.qmp-shell_history); Ctrl-C drops the line (or stops waiting for a reply);
Ctrl-D leaves. Events print above the prompt as they arrive.
A lost connection ends the shell with exit code 3; `qmp launch` exits with QEMU's status.

The guest agent (`qmp shell --ga`, `qmp ga shell`): prompt (QGA), commands from its guest-info
(the guest- prefix may be left out: `ping`), arguments as above, JSON lines as they are; no
events, transactions or HMP; history in ~/.qmp-ga-shell_history.";

/// What `qmp ga shell --help` ends with.
const AGENT_SHELL_HELP: &str = "\
The shell on the guest agent (qmp-shell's syntax, as `qmp shell`'s):
  COMMAND key=value ...        guest-exec path=/bin/echo arg=['hi'] capture-output=true
  ping, get-osinfo             the guest- prefix may be left out
  {\"execute\": ...}             a JSON object line is sent as it is
  help, help COMMAND           the agent's commands (disabled ones marked); one command's
                               arguments, types and return value (from qemu-ga's schema)

Keys: Tab completes the agent's enabled commands and their arguments; Up/Down walk the history
(~/.qmp-ga-shell_history); Ctrl-C drops the line (or stops waiting for a reply); Ctrl-D leaves.
No events, transactions or HMP (-H is a usage error). Each call is bounded by the agent's own
limit (30 s; longer for fs freeze and trim). A lost connection ends the shell with exit code 3.";

/// `qmp shell`'s own options.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(after_help = SHELL_HELP)]
pub struct ShellArgs {
    /// The QMP server: a unix socket path, unix:PATH, HOST:PORT, tcp:HOST:PORT or
    /// tls:HOST:PORT [default: the -s given before `shell`, then $QMP_SOCKET, then $QMP_PATH]
    #[arg(short = 's', long = "socket", value_name = "ADDR")]
    pub socket: Option<String>,

    /// The server's address as a plain argument, as qmp-shell takes it: `qmp shell /run/vm.qmp`
    /// is `qmp shell -s /run/vm.qmp`
    #[arg(value_name = "ADDR", conflicts_with_all = ["socket", "sim", "fd", "launch"])]
    pub address: Option<String>,

    /// Run against an in-process simulated QEMU (as `qmp --sim shell`)
    #[arg(long, conflicts_with = "socket")]
    pub sim: bool,

    /// Skip capabilities negotiation and do not wait for a greeting (one that comes is shown):
    /// type qmp_capabilities yourself. For the guest agent, --ga knows its commands
    #[arg(short = 'N', long = "skip-negotiation")]
    pub skip_negotiation: bool,

    /// The guest agent (qemu-ga) instead of QMP, as `qmp ga shell`: ADDR from -s (here or
    /// before `shell`), else $QMP_GA_SOCKET
    #[arg(long, conflicts_with_all = ["sim", "fd", "launch", "tls_ca", "tls_cert", "tls_key", "tls_server_name"])]
    pub ga: bool,

    #[command(flatten)]
    pub common: CommonArgs,

    /// TLS, waiting for the server, an inherited socket (as before `shell`).
    #[command(flatten)]
    pub connect: crate::connect::ConnectOpts,

    /// Start this QEMU command line instead of connecting, as `qmp launch` does
    #[arg(last = true, value_name = "QEMU-COMMAND")]
    pub launch: Vec<String>,
}

impl CommonArgs {
    fn options(&self, negotiated: bool) -> repl::Options {
        repl::Options {
            hmp: self.hmp,
            pretty: self.pretty || crate::globals().pretty,
            verbose: self.verbose || crate::globals().verbose,
            log: self.logfile.clone(),
            negotiated,
        }
    }
}

/// `qmp ga shell`'s own options.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(after_help = AGENT_SHELL_HELP)]
pub struct AgentShellArgs {
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Runs the shell on the guest agent `qmp ga` names, until Ctrl-D or the connection ends.
/// `qmp ga --timeout` bounds connecting (as for its other commands); calls have the agent's
/// own limits.
pub fn run_agent(ga: &crate::ga::GaArgs, args: AgentShellArgs) -> ExitCode {
    let to = AgentAddress { socket: ga.socket.clone(), wait: ga.wait, timeout: ga.timeout };
    crate::block_on(run_on_agent(to, args.common))
}

/// Where the agent shell connects, and how patiently.
struct AgentAddress {
    /// `-s`; without it, `$QMP_GA_SOCKET`.
    socket: Option<String>,
    /// `--wait`: retry while the socket is missing or refused.
    wait: Option<Duration>,
    /// `--timeout`: the bound on connecting (0: none; default `$QMP_TIMEOUT`, else 60 s).
    timeout: Option<Duration>,
}

async fn run_on_agent(to: AgentAddress, common: CommonArgs) -> ExitCode {
    if common.hmp {
        eprintln!("qmp: -H is for QEMU's human monitor: the guest agent has none");
        return ExitCode::from(code::USAGE);
    }
    let mut signals = match finish::Terminations::catch() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("qmp: cannot catch SIGTERM and SIGHUP: {e}");
            return ExitCode::FAILURE;
        }
    };
    let connecting = crate::ga::within(to.timeout, async {
        let agent = crate::ga::connect_agent(to.socket.as_deref(), to.wait).await?;
        let info = agent.info().await?;
        Ok(Peer::Agent { agent, info })
    });
    let connected = tokio::select! {
        c = connecting => c,
        signal = signals.next() => return ExitCode::from(finish::signal_code(signal)),
    };
    match connected {
        Ok(peer) => start(peer, common.options(true), None, signals).await,
        Err(e) => {
            e.report();
            e.exit_code()
        }
    }
}

/// Runs `qmp shell` until Ctrl-D or the connection ends; returns the exit code.
pub async fn run(mut args: ShellArgs) -> ExitCode {
    if let Some(address) = args.address.take() {
        args.socket = Some(address);
    }
    if !args.launch.is_empty() {
        return launch(LaunchArgs { common: args.common, command: args.launch }).await;
    }
    if args.ga {
        return match agent_address(&args) {
            Ok(to) => run_on_agent(to, args.common).await,
            Err(e) => {
                e.report();
                e.exit_code()
            }
        };
    }
    let mut signals = match finish::Terminations::catch() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("qmp: cannot catch SIGTERM and SIGHUP: {e}");
            return ExitCode::FAILURE;
        }
    };
    let connected = tokio::select! {
        c = connect(&args) => c,
        signal = signals.next() => return ExitCode::from(finish::signal_code(signal)),
    };
    let client = match connected {
        Ok(c) => c,
        Err(e) => {
            e.report();
            return e.exit_code();
        }
    };
    let options = args.common.options(!args.skip_negotiation);
    start(Peer::Qmp(client), options, None, signals).await
}

/// `qmp shell --ga`: the agent's address from `-s` here, else before `shell`, else
/// `$QMP_GA_SOCKET` (never QMP's variables: they name QEMU's monitor); `--wait` likewise.
fn agent_address(args: &ShellArgs) -> Result<AgentAddress, CliError> {
    let global = crate::globals();
    if global.sim || global.connect.fd.is_some() || global.connect.any_tls() {
        return Err(CliError::Usage(
            "--ga connects to the agent's socket (-s ADDR or QMP_GA_SOCKET): --sim, --fd and TLS are QMP's"
                .into(),
        ));
    }
    Ok(AgentAddress {
        socket: args.socket.clone().or_else(|| global.socket.clone()),
        wait: args.connect.wait.or(global.connect.wait),
        timeout: global.timeout,
    })
}

/// Connects as the options say: `-s` here, else before `shell`, else the environment;
/// `-N` leaves the negotiation to the user and does not wait for a greeting (the guest agent
/// sends none).
async fn connect(args: &ShellArgs) -> Result<Client, CliError> {
    let mut global = crate::globals().clone();
    if args.socket.is_some() {
        global.socket = args.socket.clone();
        global.sim = false;
        global.connect.fd = None;
    }
    if args.sim {
        global.sim = true;
        global.socket = None;
        global.connect.fd = None;
    }
    if args.connect.fd.is_some() {
        global.socket = None;
        global.sim = false;
    }
    global.connect = global.connect.overridden_by(&args.connect);
    if global.sim && !args.skip_negotiation {
        return crate::connect::connect(&global).await;
    }
    let builder = Client::builder().negotiate(!args.skip_negotiation).await_greeting(!args.skip_negotiation);
    let connecting = crate::connect::connect_with(&global, builder);
    crate::connect::within_timeout(&global, connecting).await
}

/// Runs the line loop on a blocking thread (rustyline blocks) beside the runtime's tasks.
async fn start(
    peer: Peer,
    options: repl::Options,
    launched: Option<finish::Launched>,
    mut signals: finish::Terminations,
) -> ExitCode {
    let finisher = Arc::new(finish::Finisher::new(launched));
    let on_signal = Arc::clone(&finisher);
    tokio::spawn(async move {
        let signal = signals.next().await;
        on_signal.terminated(signal);
    });
    let rt = tokio::runtime::Handle::current();
    let ending = Arc::clone(&finisher);
    match tokio::task::spawn_blocking(move || repl::run(rt, peer, options, finisher)).await {
        Ok(code) => code,
        Err(e) => {
            // A panic in the loop: still leave QEMU and the socket as `launch` promises.
            let _ = ending.end_launched(std::time::Duration::from_secs(5));
            eprintln!("qmp: the shell failed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(clap::Subcommand, Debug)]
    enum Sub {
        Shell(ShellArgs),
        Launch(LaunchArgs),
    }

    fn parse(argv: &[&str]) -> Sub {
        Cli::try_parse_from(std::iter::once("qmp").chain(argv.iter().copied())).unwrap().command
    }

    #[test]
    fn shell_options() {
        let Sub::Shell(a) = parse(&["shell", "-s", "/x", "-H", "-p", "-v", "-N", "-l", "log"]) else {
            panic!()
        };
        assert_eq!(a.socket.as_deref(), Some("/x"));
        assert!(a.skip_negotiation && a.common.hmp && a.common.pretty && a.common.verbose);
        assert_eq!(a.common.logfile, Some(PathBuf::from("log")));
        assert!(a.launch.is_empty());
        let Sub::Shell(a) = parse(&["shell", "-p", "--", "qemu-system-x86_64", "-m", "64"]) else { panic!() };
        assert_eq!(a.launch, ["qemu-system-x86_64", "-m", "64"]);
    }

    #[test]
    fn the_agent_spelling() {
        let Sub::Shell(a) = parse(&["shell", "--ga", "-s", "/x", "-p"]) else { panic!() };
        assert!(a.ga && a.common.pretty && !a.skip_negotiation);
        assert_eq!(a.socket.as_deref(), Some("/x"));
        let wrong =
            |argv: &[&str]| Cli::try_parse_from(std::iter::once("qmp").chain(argv.iter().copied())).is_err();
        assert!(wrong(&["shell", "--ga", "--sim"]));
        assert!(wrong(&["shell", "--ga", "--tls-ca", "ca.pem"]));
        assert!(wrong(&["shell", "--ga", "--", "qemu-system-x86_64"]));
    }

    #[test]
    fn launch_takes_the_qemu_command_line() {
        let Sub::Launch(a) = parse(&["launch", "-v", "--", "qemu-system-x86_64", "-machine", "none"]) else {
            panic!()
        };
        assert!(a.common.verbose);
        assert_eq!(a.command, ["qemu-system-x86_64", "-machine", "none"]);
        let Sub::Launch(a) = parse(&["launch", "qemu-system-x86_64", "-M", "q35"]) else { panic!() };
        assert_eq!(a.command, ["qemu-system-x86_64", "-M", "q35"]);
        let Sub::Launch(a) = parse(&["launch"]) else { panic!() };
        assert!(a.command.is_empty());
    }
}
