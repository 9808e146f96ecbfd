//! The `qmp` command: run one QMP command against QEMU and print its result.
//!
//! `qmp [OPTIONS] COMMAND [ARG...]` connects, negotiates, runs COMMAND with the arguments and
//! prints the return value as JSON. Subcommands with their own behaviour (`hmp`, `events`,
//! `wait`, `shell`, `launch`, `sim`, `ga`) come first in the command table; any other name is
//! a QMP command, run by [`oneshot`]. `qmp --help` documents the arguments, addresses, output
//! and exit codes. With `RUST_LOG` set, logs go to stderr.
#![warn(missing_docs)]

mod args;
mod connect;
mod error;
mod events;
mod follow;
mod ga;
mod hints;
mod oneshot;
mod proxy;
mod pyliteral;
mod shell;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::OnceLock;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::error::CliError;

/// Exit codes and environment, shown at the end of `qmp --help` and `qmp help`.
const AFTER_HELP: &str = "\
Arguments (options go before COMMAND; after it, every word is an argument):
  key=value        qmp-shell's syntax: integers (42, -7, 1_000), decimal floats (1.5, 2e3),
                   true/false/null in any case, JSON objects and arrays ({\"a\": 1}, [1, 2]),
                   Python literals (['a', 'b'], {'x': True}); any other text is a string.
                   A dotted key nests: a.b=1 a.c=2 sends {\"a\": {\"b\": 1, \"c\": 2}}.
  --key=value      the same, written as a long option; --key alone means key=true.
  --args JSON      the whole arguments object (its members join any key=value).

Address (ADDR):
  /path/to/sock, unix:PATH   a unix socket
  HOST:PORT, tcp:HOST:PORT   a TCP socket
  tls:HOST:PORT              TLS over TCP (QEMU's tls-creds chardev), with --tls-ca FILE;
                             --tls-cert and --tls-key when QEMU has verify-peer=yes
  Without -s, the environment's QMP_SOCKET is used, then QMP_PATH. Instead of an address,
  --fd N talks on an inherited socket; --wait SECONDS waits for a QEMU that is starting.

Passing descriptors (unix sockets only):
  --pass-fd N sends this process's descriptor N with COMMAND (SCM_RIGHTS), for getfd and
  add-fd; repeat it to send several, in order:
    qmp -s /run/vm.qmp --pass-fd 3 getfd fdname=disk 3</path/to/disk.img
    qmp -s /run/vm.qmp --pass-fd 3 add-fd fdset-id=1 3<>/path/to/disk.img

Output:
  The return value as JSON on stdout: pretty on a terminal, compact otherwise.
  `qmp hmp` prints the human monitor's text as it is. A QMP error goes to stderr
  as `CLASS: desc`; other failures as `qmp: message`. -v also prints the request and
  the reply on stderr; RUST_LOG=debug (or any tracing filter) prints logs there.

Events:
  Each event prints as the JSON object QEMU sent ({\"event\": ..., \"data\": ...,
  \"timestamp\": ...}), one line each (pretty and coloured on a terminal; NO_COLOR turns
  colour off), flushed as it arrives. Names are matched upper case (stop means STOP);
  KEY=VALUE holds when the event's data has VALUE at KEY (a.b for nested members), VALUE
  read as JSON when it reads as JSON (42, true), else a string.
  qmp events      prints events until --count N came (0), its --timeout ran out (4; by
                  default it watches forever) or QEMU went away (3)
  qmp wait EVENT  prints the first such event (0), or gives up as any command (4), or
                  QEMU went away (3)
  --then-wait EVENT[,KEY=VALUE...] COMMAND
                  subscribes before sending COMMAND, prints its reply, then the event;
                  all within the command's limit (4); a QMP error ends it at once (1)

Jobs and migrations:
  --follow COMMAND  for a command that starts a job (block-stream, block-commit,
                  blockdev-mirror, drive-mirror, blockdev-backup, drive-backup,
                  blockdev-create, blockdev-amend, snapshot-save/-load/-delete) or migrate:
                  subscribes first, sends it, then shows progress until the end: a bar on
                  a terminal, else a {\"progress\": {...}} JSON line a second on stderr; the
                  final state is JSON on stdout. 0 when it succeeded, 1 with QEMU's error.
                  A job that becomes READY (a mirror) is left running, unless --complete.
                  Ctrl-C: --cancel-on-interrupt cancels and waits (130); on a terminal, a
                  question; else it is left running (130). --timeout bounds each command
                  sent, not the job.
  qmp job wait [JOB-ID]   the same for a job already running (the only one, by default)
  qmp migration wait      the same for the migration running

Exit codes:
  0  success
  1  the server answered with a QMP error (or the result could not be written)
  2  usage error: bad options or arguments, no address
  3  connection error: cannot connect (or --wait ran out), TLS refused, negotiation
     failed, disconnected
  4  --timeout ran out (or no event came in time: events, wait, --then-wait)
  130  interrupted (Ctrl-C) while following a job or a migration

Limits:
  A command may take 60 s, connecting included, unless --timeout or QMP_TIMEOUT says
  otherwise (0 waits forever). The greeting and negotiation may take 30 s of that: a
  server that accepts and then says nothing fails with exit code 3.

Examples:
  qmp -s /run/vm.qmp query-status
  qmp -s localhost:4444 block-job-cancel device=job0 force=true
  qmp -s /run/vm.qmp device_add --args '{\"driver\": \"virtio-rng-pci\", \"id\": \"rng0\"}'
  qmp -s tls:127.0.0.1:4444 --tls-ca /etc/pki/qemu/ca-cert.pem query-status
  qmp --wait 30 -s /run/vm.qmp query-status     # right after starting QEMU
  qmp -s /run/vm.qmp events --filter BLOCK_JOB_COMPLETED --data device=job0 --count 1
  qmp -s /run/vm.qmp wait SHUTDOWN reason=guest-shutdown --timeout 300
  qmp -s /run/vm.qmp --then-wait STOP stop      # the reply {}, then the STOP event
  qmp -s /run/vm.qmp --follow block-stream job-id=job0 device=drive0
  qmp -s /run/vm.qmp --follow --complete blockdev-mirror job-id=m0 device=d0 target=t0 sync=full
  qmp -s /run/vm.qmp --follow migrate uri=tcp:10.0.0.2:4444
  qmp -v -s /run/vm.qmp query-status            # the request and reply on stderr
  QMP_SOCKET=/run/vm.qmp qmp hmp info status";

/// `qmp --version`: what a bug report needs: the crate version, the commit it was built
/// from, and the QEMU versions the typed API covers.
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let range = |v: &[&str]| format!("{} to {}", v.first().unwrap_or(&"?"), v.last().unwrap_or(&"?"));
    format!(
        "{}\ntyped QAPI: QEMU {}; guest agent: qemu-ga {}",
        *SHORT_VERSION,
        range(qmp::generated::facts::SCHEMA.versions),
        range(qmp::ga::generated::facts::SCHEMA.versions),
    )
});

/// `qmp -V` and the man page: the crate version and the commit.
static SHORT_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let commit = option_env!("QMP_BUILD_COMMIT").filter(|c| !c.is_empty());
    format!("{}{}", env!("CARGO_PKG_VERSION"), commit.map(|c| format!(" (commit {c})")).unwrap_or_default())
});

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "qmp",
    version = SHORT_VERSION.as_str(),
    long_version = VERSION.as_str(),
    about = "Run QMP commands against QEMU",
    long_about = None,
    override_usage = "qmp [OPTIONS] <COMMAND> [ARG...]\n       qmp [OPTIONS] hmp <COMMAND-LINE>...\n       qmp [OPTIONS] events [--filter NAME]... [--data KEY=VALUE]... [--count N] [--timeout SECONDS]\n       qmp [OPTIONS] wait <EVENT> [KEY=VALUE]... [--timeout SECONDS]\n       qmp [OPTIONS] --then-wait EVENT[,KEY=VALUE...] <COMMAND> [ARG...]\n       qmp [OPTIONS] --follow [--complete] [--cancel-on-interrupt] <COMMAND> [ARG...]\n       qmp [OPTIONS] job wait [JOB-ID] | migration wait\n       qmp ga [-s ADDR] <COMMAND> [ARG...]\n       qmp shell | launch | sim [...]",
    after_help = AFTER_HELP,
    subcommand_value_name = "COMMAND",
    subcommand_help_heading = "Commands (any other name is a QMP command)",
    disable_help_subcommand = false,
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,

    #[command(subcommand)]
    command: Option<Command>,
}

/// Options given before the command; they apply to every subcommand that connects.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalOpts {
    /// The QMP server: a unix socket path, unix:PATH, HOST:PORT, tcp:HOST:PORT or
    /// tls:HOST:PORT [default: $QMP_SOCKET, then $QMP_PATH]
    #[arg(short = 's', long = "socket", visible_alias = "path", value_name = "ADDR")]
    pub socket: Option<String>,

    /// Give up after this many seconds, connecting included (exit code 4); 0 waits forever
    /// [default: $QMP_TIMEOUT, else 60; the greeting and negotiation alone: at most 30]
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout, allow_negative_numbers = true)]
    pub timeout: Option<Duration>,

    /// Pretty-print JSON even when stdout is not a terminal
    #[arg(long, conflicts_with = "compact")]
    pub pretty: bool,

    /// Print JSON on one line even on a terminal
    #[arg(long)]
    pub compact: bool,

    /// Run against an in-process simulated QEMU instead of a server
    #[arg(long, conflicts_with = "socket")]
    pub sim: bool,

    /// Send a command's arguments without checking them against the server's schema first
    /// (a problem found is a usage error, exit code 2; in the shell, as if each line began
    /// with '!')
    #[arg(long)]
    pub no_check: bool,

    /// Print the request and the reply of COMMAND (as JSON) on stderr; the result stays on
    /// stdout
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// After COMMAND (a QMP command or hmp), wait for this event and print it too: subscribed
    /// before the command is sent, so it cannot be missed; within the command's --timeout
    /// (exit code 4); not if the command fails (1). KEY=VALUE as for `qmp wait` (a VALUE
    /// cannot hold a comma)
    #[arg(long, value_name = "EVENT[,KEY=VALUE...]", value_parser = events::parse_spec)]
    pub then_wait: Option<events::EventSpec>,

    /// Send the descriptor N this process inherited with COMMAND (SCM_RIGHTS; repeatable, in
    /// the order given), for getfd and add-fd: `qmp --pass-fd 3 getfd fdname=disk 3<disk.img`.
    /// N must be open; the connection must be a unix socket (a usage error otherwise, exit 2)
    #[arg(long = "pass-fd", value_name = "N", value_parser = connect::parse_pass_fd, allow_negative_numbers = true)]
    pub pass_fd: Vec<connect::PassFd>,

    /// TLS, waiting for the server, an inherited socket.
    #[command(flatten)]
    pub connect: connect::ConnectOpts,

    /// --follow, --complete, --cancel-on-interrupt.
    #[command(flatten)]
    pub follow: follow::FollowOpts,
}

/// The subcommands with their own behaviour; any other word is a QMP command.
#[derive(Subcommand, Debug)]
enum Command {
    /// Run a human monitor (HMP) command and print its text: qmp hmp info status
    Hmp(HmpArgs),

    /// Print events as they arrive, one JSON object a line, until --count, --timeout or the
    /// end of QEMU: qmp events --filter STOP --count 1
    Events(events::EventsArgs),

    /// Wait for one event and print it: qmp wait BLOCK_JOB_COMPLETED device=job0
    Wait(events::WaitArgs),

    /// Jobs already running: qmp job wait [JOB-ID] follows one to its end
    Job(follow::JobArgs),

    /// The migration already running: qmp migration wait follows it to its end
    Migration(follow::MigrationArgs),

    /// An interactive QMP shell
    Shell(shell::ShellArgs),

    /// Start QEMU connected to us and open the shell on it: qmp launch -- qemu-system-x86_64 ...
    Launch(shell::LaunchArgs),

    /// Serve a simulated QEMU on a socket (until `quit`, Ctrl-C, SIGTERM or SIGHUP)
    Sim(SimArgs),

    /// The guest agent (qemu-ga): its commands, exec, cp, ping, info, shell
    Ga(ga::GaArgs),

    /// Serve many clients on one QEMU monitor, each with its own negotiation and ids, with
    /// per-socket policy and an optional record: qmp proxy --upstream QEMU.sock --listen P.sock
    Proxy(proxy::ProxyArgs),

    /// Serve a record made by `qmp proxy --record` as a fake QEMU: qmp replay FILE --socket P
    Replay(proxy::ReplayArgs),

    /// Print a shell completion script: qmp completions bash > /etc/bash_completion.d/qmp
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff): qmp man | man -l -
    Man,

    /// A QMP command and its arguments (key=value, --key=value, --args JSON)
    #[command(external_subcommand)]
    Qmp(Vec<OsString>),
}

/// `qmp hmp`: the human monitor command line, as one argument or several words.
#[derive(Args, Debug)]
pub struct HmpArgs {
    /// The CPU the command applies to (for commands like `info registers`)
    #[arg(long, value_name = "N")]
    pub cpu_index: Option<i64>,

    /// The HMP command line; several words are joined with spaces
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND-LINE")]
    pub command_line: Vec<String>,
}

/// `qmp sim`: where to serve the simulator (a fresh temp socket when neither is given).
#[derive(Args, Debug)]
struct SimArgs {
    /// Listen on this unix socket path: one monitor, serving one client at a time as QEMU's
    /// do (give it again for more monitors)
    #[arg(long, value_name = "PATH")]
    socket: Vec<PathBuf>,

    /// Listen on this TCP address (HOST:PORT; port 0 picks one)
    #[arg(long, value_name = "ADDR")]
    tcp: Option<String>,

    /// Without --socket and --tcp: make N monitor sockets in a new private directory
    /// (qmp.sock, qmp2.sock, ...)
    #[arg(long, value_name = "N", conflicts_with_all = ["socket", "tcp"], value_parser = clap::value_parser!(u64).range(1..=1024))]
    monitors: Option<u64>,

    /// The QEMU program to answer as: its commands, events and QOM tree
    #[arg(long, value_enum, value_name = "PROGRAM", default_value = "qemu-system-x86_64")]
    like: SimLike,

    /// The machine qemu-system-x86_64 runs, which decides what device_add can plug
    #[arg(long, value_enum, value_name = "TYPE", default_value = "none")]
    machine: SimMachine,

    /// Serve any number of clients at once on each socket, where QEMU serves one per monitor
    /// (the next one waits until the one before leaves)
    #[arg(long)]
    many_clients: bool,

    /// With --many-clients: serve at most N clients at once; one more is sent a QMP error and
    /// closed [default: 512]
    #[arg(
        long,
        value_name = "N",
        env = "QMP_SIM_MAX_CONNECTIONS",
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    max_connections: Option<u64>,
}

/// `qmp sim --like`.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum SimLike {
    /// qemu-system-x86_64 (-machine none)
    #[value(name = "qemu-system-x86_64")]
    QemuSystem,
    /// qemu-storage-daemon: block nodes, jobs, bitmaps and objects only
    QemuStorageDaemon,
}

/// `qmp sim --machine`.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum SimMachine {
    /// -machine none: no buses, so no device can be added
    None,
    /// -machine pc,usb=on: PCI and USB devices, SCSI disks on an added virtio-scsi-pci
    Pc,
}

/// `--timeout` and `$QMP_TIMEOUT`: seconds, fractions allowed; 0 (returned as zero) means no
/// limit.
pub(crate) fn parse_timeout(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} must be a number of seconds, 0 or more (0 waits forever)"));
    }
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

/// How long a command may take, connecting included, when neither `--timeout` nor
/// `$QMP_TIMEOUT` says: long enough for any command QEMU answers at once, short enough that
/// a script facing a stuck peer ends.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the limit on a command came from, for the message when it runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutSource {
    /// `--timeout`.
    Option,
    /// `$QMP_TIMEOUT`.
    Environment,
    /// [`DEFAULT_TIMEOUT`].
    Default,
}

impl GlobalOpts {
    /// The limit on one command, connecting included: `--timeout`, else `$QMP_TIMEOUT`, else
    /// [`DEFAULT_TIMEOUT`]; `None` when it is 0 (wait forever). A `$QMP_TIMEOUT` that is not a
    /// number of seconds is a usage error.
    pub fn command_timeout(&self) -> Result<Option<(Duration, TimeoutSource)>, CliError> {
        let (limit, source) = match self.timeout {
            Some(t) => (t, TimeoutSource::Option),
            None => match std::env::var("QMP_TIMEOUT").ok().filter(|v| !v.trim().is_empty()) {
                Some(v) => (
                    parse_timeout(&v).map_err(|e| CliError::Usage(format!("QMP_TIMEOUT: {e}")))?,
                    TimeoutSource::Environment,
                ),
                None => (DEFAULT_TIMEOUT, TimeoutSource::Default),
            },
        };
        Ok((!limit.is_zero()).then_some((limit, source)))
    }
}

/// The global options of this run, for subcommands that connect on their own (the shell):
/// `crate::globals()` gives `-s`, `--timeout`, `--sim` and the output options.
static GLOBALS: OnceLock<GlobalOpts> = OnceLock::new();

/// The options given before the subcommand (defaults before parsing).
pub fn globals() -> &'static GlobalOpts {
    GLOBALS.get_or_init(GlobalOpts::default)
}

fn main() -> ExitCode {
    init_logging();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print and succeed; errors exit with the usage code.
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(error::code::USAGE) } else { ExitCode::SUCCESS };
        }
    };
    let global = cli.global.clone();
    let _ = GLOBALS.set(cli.global);
    let result = match cli.command {
        None => Err(CliError::Usage("no command given (try `qmp --help`)".into())),
        Some(ref other)
            if global.then_wait.is_some() && !matches!(other, Command::Qmp(_) | Command::Hmp(_)) =>
        {
            Err(CliError::Usage("--then-wait goes with a QMP command or hmp".into()))
        }
        Some(ref other)
            if !global.pass_fd.is_empty() && !matches!(other, Command::Qmp(_) | Command::Hmp(_)) =>
        {
            Err(CliError::Usage(
                "--pass-fd goes with a QMP command or hmp (qmp --pass-fd 3 getfd fdname=x 3<FILE)".into(),
            ))
        }
        Some(Command::Qmp(words)) if asks_for_help(&words) => {
            let _ = Cli::command().print_long_help();
            return ExitCode::SUCCESS;
        }
        Some(Command::Qmp(words)) if global.follow.follow => follow::run_follow(&global, words),
        Some(ref other) if global.follow.follow => Err(CliError::Usage(format!(
            "--follow goes with a QMP command that starts a job or a migration, not {}",
            subcommand_name(other)
        ))),
        Some(Command::Qmp(_) | Command::Hmp(_))
            if global.follow.complete || global.follow.cancel_on_interrupt =>
        {
            Err(CliError::Usage(
                "--complete and --cancel-on-interrupt go with --follow (or qmp job wait, qmp migration wait)"
                    .into(),
            ))
        }
        Some(Command::Qmp(words)) => oneshot::run_qmp(&global, words),
        Some(Command::Hmp(hmp)) => oneshot::run_hmp(&global, hmp),
        Some(Command::Events(args)) => events::run_events(&global, args),
        Some(Command::Wait(args)) => events::run_wait(&global, args),
        Some(Command::Job(args)) => follow::run_job(&global, args),
        Some(Command::Migration(args)) => follow::run_migration(&global, args),
        Some(Command::Shell(args)) => return block_on(shell::run(args)),
        Some(Command::Launch(args)) => return block_on(shell::launch(args)),
        Some(Command::Sim(sim)) => run_sim(sim),
        Some(Command::Proxy(args)) => proxy::run_proxy(&global, args),
        Some(Command::Replay(args)) => proxy::run_replay(args),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(shell, &mut Cli::command(), "qmp", &mut std::io::stdout());
            Ok(())
        }
        Some(Command::Man) => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()).map_err(CliError::Output)
        }
        Some(Command::Ga(args)) => match ga::run(args) {
            Ok(code) => return code,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::from(error::code::SUCCESS),
        Err(e) => {
            e.report();
            e.exit_code()
        }
    }
}

/// The name of a subcommand, for messages.
fn subcommand_name(command: &Command) -> String {
    match command {
        Command::Qmp(words) => words.first().map(|w| w.to_string_lossy().into_owned()).unwrap_or_default(),
        other => format!("{other:?}").split(['(', ' ', '{']).next().unwrap_or_default().to_ascii_lowercase(),
    }
}

/// With `RUST_LOG` set (and not empty), logs (the library's and ours) go to stderr as its
/// filter says; without it nothing is installed, so the output and the start-up time are as
/// they were. A filter that does not read is said on stderr and leaves logging off.
fn init_logging() {
    use std::io::IsTerminal;
    if std::env::var_os("RUST_LOG").is_none_or(|v| v.is_empty()) {
        return;
    }
    match tracing_subscriber::EnvFilter::try_from_default_env() {
        Ok(filter) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init(),
        Err(e) => eprintln!("qmp: RUST_LOG: {e} (no logs)"),
    }
}

/// `qmp COMMAND --help`: `-h` or `--help` among the arguments (no QMP command takes an
/// argument named "help", and `-h` is no `key=value`).
fn asks_for_help(words: &[OsString]) -> bool {
    words.iter().skip(1).any(|w| w == "--help" || w == "-h")
}

/// The stack of the runtime's threads (the shell's line loop runs on one of its blocking
/// threads): arguments nested to the 1023-level limit are built, printed and dropped
/// recursively (serde_json's way), and an unoptimised build with `preserve_order`'s maps
/// needs over 2 MiB for it. Only the pages touched count against memory.
pub const WORKER_STACK: usize = 8 << 20;

/// Runs a future to completion on a current-thread runtime: one thread, started fast.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_stack_size(WORKER_STACK)
        .build()
        // Building a current-thread runtime only fails when the OS refuses an epoll or
        // timer fd, which leaves nothing sensible to do but stop.
        .expect("cannot start the async runtime")
        .block_on(fut)
}

/// `qmp sim`: serves crate qmp-server's simulated QEMU until `quit`, Ctrl-C, SIGTERM or
/// SIGHUP (its socket files removed on each), saying on stderr where it listens.
fn run_sim(sim: SimArgs) -> Result<(), CliError> {
    // The range above keeps the value well inside usize.
    let cli = qmp_server::sim::SimCli {
        sockets: sim.socket,
        tcp: sim.tcp,
        monitors: sim.monitors.unwrap_or(1) as usize,
        many_clients: sim.many_clients,
        like: match sim.like {
            SimLike::QemuSystem => qmp_server::sim::Like::QemuSystem,
            SimLike::QemuStorageDaemon => qmp_server::sim::Like::StorageDaemon,
        },
        machine: match sim.machine {
            SimMachine::None => qmp_server::sim::Machine::None,
            SimMachine::Pc => qmp_server::sim::Machine::Pc,
        },
        max_connections: sim.max_connections.map(|n| n as usize),
    };
    block_on(qmp_server::sim::run_sim_cli_with(cli))
        .map_err(|e| CliError::Connection(format!("qmp sim: {e}")))
}

#[cfg(test)]
#[path = "main_tests.rs"]
mod tests;
