//! Following a job or a migration to its end: `qmp --follow COMMAND [ARG...]` for a command
//! that starts one, `qmp job wait [ID]` and `qmp migration wait` for one already running.
//!
//! Behaviour:
//! - the events are subscribed to (and Ctrl-C caught) before the command is sent, so nothing
//!   the command causes is missed; then the job's `JOB_STATUS_CHANGE` (and its block job
//!   events), or `MIGRATION`, are followed, with `query-jobs` / `query-migrate` once a second
//!   for the progress (QEMU sends `MIGRATION` only with the `events` migration capability on;
//!   without it the once-a-second query notices the end);
//! - progress: a bar on stderr when it is a terminal, cleared at the end; otherwise one JSON
//!   line a second on stderr, `{"progress": {...}}`. The final state is JSON on stdout;
//! - exit 0 when the job concluded without error or the migration completed, 1 with QEMU's
//!   error text when it failed or was cancelled by someone else, 130 after Ctrl-C;
//! - a concluded job still listed (created with `auto-dismiss=false`, or a kind QEMU never
//!   dismisses itself: blockdev-create, amend, snapshots) is read, then dismissed;
//! - a job that becomes READY (a mirror, an active commit) is completed with `--complete`,
//!   else left running (exit 0, saying how to complete it); a job waiting in PENDING for a
//!   manual `job-finalize` is left so too;
//! - Ctrl-C: with `--cancel-on-interrupt`, cancel and wait for the end (exit 130); on a
//!   terminal without it, ask; otherwise leave it running and say so (exit 130);
//! - `--timeout` bounds connecting and each command sent, not the job (`qmp job wait
//!   --timeout` bounds the wait, exit 4).

mod job;
mod migration;
mod render;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use qmp::Client;
use serde_json::{Map, Value};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::oneshot;

use crate::connect::{connect, within_timeout};
use crate::error::{CliError, TimedOut};
use crate::{block_on, GlobalOpts, TimeoutSource};

/// The commands that start a block job, whose id defaults to their `device`.
pub const BLOCK_JOB_COMMANDS: &[&str] =
    &["block-stream", "block-commit", "blockdev-mirror", "drive-mirror", "blockdev-backup", "drive-backup"];

/// The commands that start a job of another kind; `job-id` is required.
pub const OTHER_JOB_COMMANDS: &[&str] = &[
    "blockdev-create",
    "blockdev-amend",
    "x-blockdev-amend",
    "snapshot-save",
    "snapshot-load",
    "snapshot-delete",
];

/// The options given before COMMAND for following (in [`GlobalOpts`]).
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Jobs and migrations")]
pub struct FollowOpts {
    /// After COMMAND (one that starts a job or a migration: block-stream, block-commit,
    /// blockdev-mirror, drive-mirror, blockdev-backup, drive-backup, blockdev-create,
    /// blockdev-amend, snapshot-save/-load/-delete, migrate), follow it to its end with a
    /// progress bar (a JSON line a second on stderr when not a terminal); the final state is
    /// printed as JSON; exit 1 with QEMU's error if it failed
    #[arg(long, conflicts_with = "then_wait")]
    pub follow: bool,

    /// With --follow or `job wait`: complete a job that becomes READY (job-complete) and
    /// follow it to its end, instead of leaving it running
    #[arg(long)]
    pub complete: bool,

    /// With --follow, `job wait` or `migration wait`: on Ctrl-C, cancel the job (job-cancel)
    /// or migration (migrate_cancel) and wait for its end (exit code 130)
    #[arg(long)]
    pub cancel_on_interrupt: bool,
}

/// `qmp job`: jobs already running.
#[derive(clap::Args, Debug)]
pub struct JobArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: JobAction,
}

/// `qmp job` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum JobAction {
    /// Follow a running job to its end, as --follow does: qmp job wait job0
    Wait(WaitArgs),
}

/// `qmp migration`: a migration already running.
#[derive(clap::Args, Debug)]
pub struct MigrationArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: MigrationAction,
}

/// `qmp migration` subcommands.
#[derive(clap::Subcommand, Debug)]
pub enum MigrationAction {
    /// Follow the running migration to its end, as --follow migrate does (one that has
    /// ended: its final state, and the exit code it gets)
    Wait(MigrationWaitArgs),
}

/// `qmp migration wait`.
#[derive(clap::Args, Debug)]
pub struct MigrationWaitArgs {
    /// On Ctrl-C, cancel it (migrate_cancel) and wait for its end (exit code 130)
    #[arg(long)]
    pub cancel_on_interrupt: bool,

    /// Give up waiting after this many seconds, leaving it running (exit code 4); 0 waits
    /// forever [default: forever]
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_timeout)]
    pub timeout: Option<Duration>,
}

/// `qmp job wait`.
#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    /// The job's id [default: the only job there is; a job not concluded, of several]
    #[arg(value_name = "JOB-ID")]
    pub id: Option<String>,

    /// Complete a job that becomes READY and follow it to its end
    #[arg(long)]
    pub complete: bool,

    /// On Ctrl-C, cancel it (job-cancel) and wait for its end (exit code 130)
    #[arg(long)]
    pub cancel_on_interrupt: bool,

    /// Give up waiting after this many seconds, leaving it running (exit code 4); 0 waits
    /// forever [default: forever]
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_timeout)]
    pub timeout: Option<Duration>,
}

/// What a command starts, found from its name and arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A job, and its id as the arguments say it (`job-id`, else a block job's `device`).
    Job {
        /// `job-id`, or the `device` a block job's id defaults to.
        id: String,
        /// Whether the id was given as `job-id` (a `device` may name a node whose job gets
        /// another id: the id of the job the command creates is taken then).
        explicit: bool,
    },
    /// A migration.
    Migration,
}

/// The target of `command`, or a usage error naming what `--follow` supports.
pub fn target(command: &str, arguments: &Map<String, Value>) -> Result<Target, CliError> {
    let text = |key: &str| arguments.get(key).and_then(Value::as_str).map(str::to_owned);
    if command == "migrate" {
        return Ok(Target::Migration);
    }
    let block = BLOCK_JOB_COMMANDS.contains(&command);
    if !block && !OTHER_JOB_COMMANDS.contains(&command) {
        return Err(CliError::Usage(format!(
            "--follow: {command} starts no job or migration; it follows {}, {} and migrate",
            BLOCK_JOB_COMMANDS.join(", "),
            OTHER_JOB_COMMANDS.join(", ")
        )));
    }
    if let Some(id) = text("job-id") {
        return Ok(Target::Job { id, explicit: true });
    }
    match text("device").filter(|_| block) {
        Some(id) => Ok(Target::Job { id, explicit: false }),
        None => Err(CliError::Usage(format!("--follow {command}: give the job an id, job-id=ID"))),
    }
}

/// What Ctrl-C does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// `--cancel-on-interrupt`: cancel and follow to the end.
    Cancel,
    /// On a terminal: ask whether to cancel.
    Ask,
    /// Leave it running and stop following.
    Leave,
}

/// What to do after a Ctrl-C (or the answer to the question it asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupted {
    /// Cancel, then follow to the end.
    Cancel,
    /// Leave it running; stop now.
    Leave,
    /// A question is being asked; go on following meanwhile.
    Asking,
}

/// Ctrl-C while following: caught from before the command is sent.
pub struct Interrupts {
    sigint: Signal,
    policy: Policy,
    asking: Option<oneshot::Receiver<bool>>,
    /// Cancelling has been asked for.
    pub cancelling: bool,
}

impl Interrupts {
    fn new(cancel: bool) -> Result<Self, CliError> {
        let sigint = signal(SignalKind::interrupt())
            .map_err(|e| CliError::Connection(format!("cannot catch SIGINT: {e}")))?;
        let policy = if cancel {
            Policy::Cancel
        } else if std::io::stderr().is_terminal()
            && (std::io::stdin().is_terminal() || std::fs::File::open("/dev/tty").is_ok())
        {
            Policy::Ask
        } else {
            Policy::Leave
        };
        Ok(Interrupts { sigint, policy, asking: None, cancelling: false })
    }

    /// Waits for Ctrl-C (or the answer to the question it asked) and says what to do; `what`
    /// names the job or migration in the question. Never ends while already cancelling and
    /// nothing more comes; a second Ctrl-C while cancelling or asking leaves it running.
    pub async fn next(&mut self, what: &str, render: &mut render::Render) -> Interrupted {
        enum Got {
            Answer(bool),
            Signal,
        }
        let got = {
            let (asking, sigint) = (&mut self.asking, &mut self.sigint);
            let answer = async {
                match asking.as_mut() {
                    Some(rx) => rx.await.unwrap_or(false),
                    None => std::future::pending().await,
                }
            };
            let sig = async {
                if sigint.recv().await.is_none() {
                    // No more signals can come: never again.
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                yes = answer => Got::Answer(yes),
                () = sig => Got::Signal,
            }
        };
        match got {
            Got::Answer(yes) => {
                self.asking = None;
                render.show();
                if yes {
                    Interrupted::Cancel
                } else {
                    Interrupted::Leave
                }
            }
            Got::Signal if self.cancelling || self.asking.is_some() => {
                render.show();
                Interrupted::Leave
            }
            Got::Signal => match self.policy {
                Policy::Cancel => Interrupted::Cancel,
                Policy::Leave => Interrupted::Leave,
                Policy::Ask => {
                    render.hide();
                    self.asking = Some(ask(&format!("cancel {what}? [y/N] ")));
                    Interrupted::Asking
                }
            },
        }
    }

    /// Ends a question left unanswered (the job ended meanwhile).
    pub fn abandon_question(&mut self) {
        if self.asking.take().is_some() {
            let _ = writeln!(std::io::stderr());
        }
    }
}

/// Asks `question` on the terminal (read from stdin when it is one, else from /dev/tty); the
/// answer comes from a thread of its own (a read of the terminal cannot be given up), `true`
/// for y or yes.
fn ask(question: &str) -> oneshot::Receiver<bool> {
    let (tx, rx) = oneshot::channel();
    let _ = write!(std::io::stderr(), "\n{question}");
    let _ = std::io::stderr().flush();
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut line = String::new();
        let read = if std::io::stdin().is_terminal() {
            std::io::stdin().lock().read_line(&mut line)
        } else {
            std::fs::File::open("/dev/tty").and_then(|tty| std::io::BufReader::new(tty).read_line(&mut line))
        };
        let yes = read.is_ok() && matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes");
        let _ = tx.send(yes);
    });
    rx
}

/// One call to QEMU within the command's limit (`--timeout`), as the follower makes them.
/// With `-v`, each request and reply is shown on stderr, as the one-shot shows its own.
pub async fn call(global: &GlobalOpts, client: &Client, name: &str, args: Value) -> Result<Value, CliError> {
    if global.verbose {
        let mut request = serde_json::json!({ "execute": name });
        if !args.is_null() {
            request["arguments"] = args.clone();
        }
        crate::oneshot::show(global, &request);
    }
    let mut call = client.call_raw(name, args);
    if let Some((limit, _)) = global.command_timeout()? {
        call = call.timeout(limit);
    }
    let result = call.send().await;
    if global.verbose {
        match &result {
            Ok(value) => crate::oneshot::show(global, &serde_json::json!({ "return": value })),
            Err(qmp::Error::Qmp(q)) => crate::oneshot::show(global, &crate::shell::output::error_json(q)),
            Err(_) => {}
        }
    }
    match result {
        Err(qmp::Error::Timeout) => Err(CliError::Timeout(
            global.command_timeout()?.map(|(after, source)| TimedOut { after, source }),
        )),
        other => Ok(other?),
    }
}

/// `qmp --follow COMMAND [ARG...]`.
pub fn run_follow(global: &GlobalOpts, words: Vec<OsString>) -> Result<(), CliError> {
    let (name, arguments) = crate::oneshot::command_line(words)?;
    let target = target(&name, &arguments)?;
    let check = !global.no_check && !arguments.is_empty();
    let opts = &global.follow;
    block_on(async {
        let client = within_timeout(global, connect(global)).await?;
        let arguments = Value::Object(arguments);
        if check {
            within_timeout(global, crate::oneshot::check_arguments(&client, &name, &arguments)).await?;
        }
        let mut interrupts = Interrupts::new(opts.cancel_on_interrupt)?;
        match target {
            Target::Job { id, explicit } => {
                let mut follower = job::Follower::new(global, &client, id, explicit, opts.complete);
                let events = follower.subscribe();
                call(global, &client, &name, arguments).await?;
                follower.run(events, &mut interrupts, None).await
            }
            Target::Migration => {
                let mut follower = migration::Follower::new(global, &client);
                let events = follower.subscribe();
                call(global, &client, &name, arguments).await?;
                follower.run(events, &mut interrupts, None, true).await
            }
        }
    })
}

/// `qmp job wait [ID]`.
pub fn run_job(global: &GlobalOpts, args: JobArgs) -> Result<(), CliError> {
    let JobAction::Wait(wait) = args.action;
    let complete = wait.complete || global.follow.complete;
    let cancel = wait.cancel_on_interrupt || global.follow.cancel_on_interrupt;
    let limit = wait.timeout.filter(|t| !t.is_zero());
    block_on(async {
        let client = within_timeout(global, connect(global)).await?;
        let mut interrupts = Interrupts::new(cancel)?;
        // Subscribed before the first look at the jobs: nothing after it is missed.
        let mut follower = job::Follower::new(global, &client, String::new(), true, complete);
        let events = follower.subscribe();
        let id = job::pick(global, &client, wait.id.as_deref()).await?;
        follower.set_id(id);
        follower.run(events, &mut interrupts, limit).await
    })
}

/// `qmp migration wait`.
pub fn run_migration(global: &GlobalOpts, args: MigrationArgs) -> Result<(), CliError> {
    let MigrationAction::Wait(wait) = args.action;
    if global.follow.complete {
        return Err(CliError::Usage("--complete is for jobs, not migrations".into()));
    }
    let cancel = wait.cancel_on_interrupt || global.follow.cancel_on_interrupt;
    let limit = wait.timeout.filter(|t| !t.is_zero());
    block_on(async {
        let client = within_timeout(global, connect(global)).await?;
        let mut interrupts = Interrupts::new(cancel)?;
        let mut follower = migration::Follower::new(global, &client);
        let events = follower.subscribe();
        follower.run(events, &mut interrupts, limit, false).await
    })
}

/// The error for `qmp job wait --timeout` running out.
fn wait_timed_out(after: Duration) -> CliError {
    CliError::Timeout(Some(TimedOut { after, source: TimeoutSource::Option }))
}

/// A deadline as a future: never, without a limit.
async fn deadline(limit: Option<Duration>) {
    match limit {
        Some(after) => tokio::time::sleep(after).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_job_id_comes_from_job_id_else_device() {
        assert_eq!(
            target("block-stream", &args(json!({"job-id": "j", "device": "top0"}))).unwrap(),
            Target::Job { id: "j".into(), explicit: true }
        );
        assert_eq!(
            target("drive-mirror", &args(json!({"device": "drive0", "target": "/x"}))).unwrap(),
            Target::Job { id: "drive0".into(), explicit: false }
        );
        assert_eq!(
            target("blockdev-create", &args(json!({"job-id": "c", "options": {}}))).unwrap(),
            Target::Job { id: "c".into(), explicit: true }
        );
        assert_eq!(target("migrate", &args(json!({"uri": "exec:cat"}))).unwrap(), Target::Migration);
    }

    #[test]
    fn commands_that_start_nothing_are_usage_errors() {
        let Err(CliError::Usage(text)) = target("query-status", &Map::new()) else { panic!() };
        assert!(text.contains("block-stream") && text.contains("migrate"), "{text}");
        // A job command without an id QEMU would take.
        assert!(matches!(target("snapshot-save", &args(json!({"tag": "t"}))), Err(CliError::Usage(_))));
        assert!(matches!(target("blockdev-create", &args(json!({"device": "d"}))), Err(CliError::Usage(_))));
    }
}
