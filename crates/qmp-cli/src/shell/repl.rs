//! The read-eval-print loop: rustyline reads lines (history, completion), requests go out
//! to the peer (a QMP server through the client, or the guest agent through the library's
//! agent), and events are printed above the prompt the moment they arrive.
//!
//! rustyline blocks, so the loop runs on a blocking thread and drives each request with
//! `Handle::block_on`; the event printer and the connection watcher are tasks on the runtime.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qmp::ga::{Agent, AgentInfo};
use qmp::{Client, Error};
use rustyline::config::{Config, Configurer};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Editor};
use serde_json::{json, Value};
use tokio::runtime::Handle;

use super::complete::{CompletionData, ShellHelper};
use super::finish::{status_number, Finisher};
use super::hmp;
use super::output::{columns, error_json, json_text, lock, print_events, Output, Printer};
use super::parse::{opens_transaction, LineParser, Parsed, Request, AGENT_PROMPT, PROMPT};
use super::schema;
use qmp::Schema;

/// Whom the shell talks to.
pub enum Peer {
    /// A QMP server: QEMU, qemu-storage-daemon, the simulator.
    Qmp(Client),
    /// The guest agent (qemu-ga): no greeting, events, HMP or transactions. Its calls go
    /// through [`Agent`], so one given up (Ctrl-C, a timeout) leaves no reply in the next
    /// one's way.
    Agent {
        /// The agent.
        agent: Agent,
        /// What `guest-info` said when the shell connected.
        info: AgentInfo,
    },
}

impl Peer {
    /// The connection under either peer.
    fn client(&self) -> &Client {
        match self {
            Peer::Qmp(client) => client,
            Peer::Agent { agent, .. } => agent.client(),
        }
    }

    fn is_agent(&self) -> bool {
        matches!(self, Peer::Agent { .. })
    }
}

/// The options shared by `qmp shell` and `qmp launch`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `-H`: HMP mode.
    pub hmp: bool,
    /// `-p`: pretty JSON.
    pub pretty: bool,
    /// `-v`: show each request before sending it.
    pub verbose: bool,
    /// `-l FILE`: log each request and response as JSON lines.
    pub log: Option<PathBuf>,
    /// Whether the client negotiated (with `-N` the schema waits for `qmp_capabilities`).
    pub negotiated: bool,
}

/// Kept across lines: the connection, the parser's transaction state, the schema, the log.
struct Shell {
    rt: Handle,
    peer: Peer,
    opts: Options,
    parser: LineParser,
    completion: Arc<Mutex<CompletionData>>,
    /// The live schema, or on the agent the one built from its generated facts (for help and
    /// completion only: nothing is checked against it).
    schema: Option<Arc<Schema>>,
    log: Option<File>,
    /// The CPU chosen with `cpu N` (none: QEMU's default, which works without CPUs too).
    cpu_index: Option<i64>,
    finisher: Arc<Finisher>,
    /// To the event task, which prints command output in order with the events.
    output: Option<tokio::sync::mpsc::UnboundedSender<Output>>,
}

/// The history file: qmp-shell's `~/.qmp-shell_history`, or on the guest agent
/// `~/.qmp-ga-shell_history` (its commands are no use at QEMU's prompt, nor QEMU's at its).
pub fn history_path(agent: bool) -> Option<PathBuf> {
    let name = if agent { ".qmp-ga-shell_history" } else { ".qmp-shell_history" };
    std::env::var_os("HOME").filter(|h| !h.is_empty()).map(|h| PathBuf::from(h).join(name))
}

/// How many entries the line editor keeps, and the history file at most after it is tidied.
const HISTORY_SIZE: usize = 1024;

/// The history file in qmp-shell's format (what Python's readline writes: one entry a line),
/// so either shell reads the other's. Entries are appended as they are typed, to a file of
/// mode 0600 opened without following symlinks; it is rewritten only when it has grown to
/// several times [`HISTORY_SIZE`] (or has the `#V2` header of older versions), keeping the
/// newest entries.
struct History {
    path: PathBuf,
    entries: Vec<String>,
    /// Opened at the first entry typed: a session that types none leaves no file.
    file: Option<File>,
}

impl History {
    /// Reads and opens the history at `path`; `None` (said on stderr) when it cannot be used.
    fn open(path: PathBuf) -> Option<History> {
        match Self::try_open(&path) {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!("qmp: not using the history {}: {e}", path.display());
                None
            }
        }
    }

    fn try_open(path: &Path) -> std::io::Result<History> {
        // A huge file is read only as far as its newest entries.
        let bytes = qmp_unix::read_private_tail(path, 1 << 20)?.unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        let legacy_header = lines.first() == Some(&"#V2");
        let mut entries: Vec<String> = lines
            .iter()
            .skip(usize::from(legacy_header))
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.to_string())
            .collect();
        if legacy_header || entries.len() > 4 * HISTORY_SIZE {
            entries.drain(..entries.len().saturating_sub(HISTORY_SIZE));
            let mut tidy = entries.join("\n");
            tidy.push('\n');
            qmp_unix::replace_private(path, tidy.as_bytes())?;
        }
        Ok(History { path: path.to_path_buf(), entries, file: None })
    }

    fn append(&mut self, line: &str) -> std::io::Result<()> {
        // One entry, one line: a pasted newline would split it.
        let mut entry = line.replace(['\n', '\r'], " ");
        entry.push('\n');
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(qmp_unix::open_private_append(&self.path)?),
        };
        file.write_all(entry.as_bytes())
    }
}

/// Runs the shell until Ctrl-D (or the connection ends, which exits the process from the
/// watcher). Call on a blocking thread of the runtime `rt`.
pub fn run(rt: Handle, peer: Peer, opts: Options, finisher: Arc<Finisher>) -> ExitCode {
    // Subscribed first, so no event between connecting and the first prompt is missed (the
    // agent sends none: its subscription stays empty).
    let events = peer.client().events();
    let mut shell = Shell {
        rt,
        peer,
        opts,
        parser: LineParser::new(),
        completion: Arc::default(),
        schema: None,
        log: None,
        cpu_index: None,
        finisher,
        output: None,
    };
    if let Some(path) = shell.opts.log.clone() {
        // It holds every request and reply (passwords and keys included): 0600, appended to,
        // and never through a symlink planted at its path.
        match qmp_unix::open_private_append(&path) {
            Ok(f) => shell.log = Some(f),
            Err(e) => {
                eprintln!("qmp: cannot open the log file {}: {e}", path.display());
                return shell.leave(Some(ExitCode::from(crate::error::code::USAGE)));
            }
        }
    }
    shell.banner();
    if shell.peer.is_agent() {
        shell.load_agent_schema();
    } else if shell.opts.hmp {
        shell.load_hmp_completions();
    } else if shell.opts.negotiated {
        shell.load_schema();
    }
    let mut editor = match new_editor(&shell.completion) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("qmp: cannot set up the terminal: {e}");
            return shell.leave(Some(ExitCode::FAILURE));
        }
    };
    // A piped script is not the user's typing: it neither reads nor extends the history.
    let mut history = if std::io::stdin().is_terminal() {
        history_path(shell.peer.is_agent()).and_then(History::open)
    } else {
        None
    };
    if let Some(h) = &history {
        for entry in &h.entries {
            let _ = editor.add_history_entry(entry.as_str());
        }
    }
    let printer: Printer = Arc::new(Mutex::new(None));
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        if let Ok(p) = editor.create_external_printer() {
            *lock(&printer) = Some(Box::new(p));
        }
    }
    let (output_tx, output_rx) = tokio::sync::mpsc::unbounded_channel();
    shell.output = Some(output_tx);
    let all_printed = Arc::new(tokio::sync::Notify::new());
    let printing =
        print_events(events, output_rx, Arc::clone(&printer), shell.opts.pretty, all_printed.clone());
    shell.rt.spawn(printing);
    let (watched, finisher) = (shell.peer.client().clone(), Arc::clone(&shell.finisher));
    shell.rt.spawn(async move {
        let reason = watched.closed().await;
        // The last events (SHUTDOWN) come out before the process ends: the event task has
        // handed them all over, and the line editor gets a moment to draw them.
        let _ = tokio::time::timeout(Duration::from_secs(1), all_printed.notified()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        finisher.connection_lost(&reason.to_string());
    });

    loop {
        lock(&shell.completion).in_transaction = shell.parser.in_transaction();
        let prompt = if shell.peer.is_agent() {
            AGENT_PROMPT
        } else if shell.opts.hmp {
            PROMPT
        } else {
            shell.parser.prompt()
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                    if let Some(h) = &mut history {
                        if let Err(e) = h.append(&line) {
                            // Said once: the session goes on without saving.
                            eprintln!("qmp: cannot save the history {}: {e}", h.path.display());
                            history = None;
                        }
                    }
                }
                shell.handle_line(&line);
            }
            Err(ReadlineError::Interrupted) => {
                if shell.parser.in_transaction() {
                    shell.parser.cancel_transaction();
                    println!("(transaction dropped)");
                }
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("qmp: cannot read the terminal: {e}");
                break;
            }
        }
    }
    shell.leave(None)
}

fn new_editor(data: &Arc<Mutex<CompletionData>>) -> rustyline::Result<Editor<ShellHelper, FileHistory>> {
    let config = Config::builder()
        .max_history_size(1024)?
        .history_ignore_dups(true)?
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor = Editor::with_config(config)?;
    // Some terminals (tmux) hold the screen back until a later update otherwise.
    editor.enable_synchronized_output(false);
    editor.set_helper(Some(ShellHelper { data: Arc::clone(data) }));
    Ok(editor)
}

/// How long `-N` waits for a greeting it does not require: QEMU sends one at once.
const GREETING_GRACE: Duration = Duration::from_millis(200);

impl Shell {
    fn banner(&self) {
        let client = match &self.peer {
            Peer::Agent { info, .. } => {
                println!("Welcome to the guest agent shell!");
                println!("Connected to qemu-ga {}", info.version);
                println!(
                    "Type 'help' for the commands, 'help COMMAND' for one; Tab completes; Ctrl-D leaves."
                );
                println!();
                return;
            }
            Peer::Qmp(client) => client,
        };
        println!(
            "{}",
            if self.opts.hmp { "Welcome to the HMP shell!" } else { "Welcome to the QMP low-level shell!" }
        );
        if client.greeting().is_none() {
            // -N: connected without waiting for the greeting; it is shown if it comes soon.
            self.rt.block_on(async {
                let deadline = tokio::time::Instant::now() + GREETING_GRACE;
                while client.greeting().is_none() && tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        }
        match client.greeting() {
            Some(g) => {
                let v = &g.version.qemu;
                println!("Connected to QEMU {}.{}.{}", v.major, v.minor, v.micro);
            }
            None => {
                println!("Connected (no greeting; for the guest agent, `qmp shell --ga` knows its commands)")
            }
        }
        if !self.opts.hmp {
            println!("Type 'help' for the commands, 'help COMMAND' for one; Tab completes; Ctrl-D leaves.");
        }
        println!();
    }

    fn load_schema(&mut self) {
        // The client fetches it once per connection and keeps it.
        match self.rt.block_on(self.peer.client().schema()) {
            Ok(schema) => {
                lock(&self.completion).schema = Some(Arc::clone(&schema));
                self.schema = Some(schema);
            }
            Err(e) if e.is_disconnect() => self.lost(&e),
            Err(e) => eprintln!("qmp: no schema ({e}): completion, help and checks are off"),
        }
    }

    /// The agent's commands (enabled ones) for completion, and its generated schema for
    /// arguments and `help COMMAND`.
    fn load_agent_schema(&mut self) {
        let Peer::Agent { info, .. } = &self.peer else { return };
        let schema = Arc::new(super::ga_schema::for_agent(info));
        let mut data = lock(&self.completion);
        data.agent_commands = Some(info.enabled().map(str::to_owned).collect());
        data.schema = Some(Arc::clone(&schema));
        drop(data);
        self.schema = Some(schema);
    }

    fn load_hmp_completions(&mut self) {
        let text = |line: &str| match self.rt.block_on(
            self.peer.client().call_raw("human-monitor-command", hmp::request_args(line, None)).send(),
        ) {
            Ok(Value::String(s)) => s,
            _ => String::new(),
        };
        let help = text("help");
        let info = text("info");
        lock(&self.completion).hmp = Some(hmp::completions(&help, &info));
    }

    fn handle_line(&mut self, line: &str) {
        if self.opts.hmp {
            return self.handle_hmp(line);
        }
        if self.peer.is_agent() && opens_transaction(line) {
            return eprintln!("The guest agent has no transactions: send each command on its own line.");
        }
        match self.parser.parse(line) {
            Err(e) => eprintln!(
                "Error while parsing command line: {e}\n\
                 command format: <command-name> [arg-name1=arg1] ... [arg-nameN=argN]"
            ),
            Ok(Parsed::Nothing) => {}
            Ok(Parsed::Help(None)) => self.help_list(),
            Ok(Parsed::Help(Some(cmd))) => self.help_command(&cmd),
            Ok(Parsed::Request(req)) => self.send(req),
        }
    }

    fn help_list(&self) {
        if let Peer::Agent { info, .. } = &self.peer {
            return help_agent(info);
        }
        let Some(schema) = &self.schema else {
            return println!("No schema from the server: 'help' has nothing to show.");
        };
        let names: Vec<&str> = schema.command_names().collect();
        print!("{}", columns(&names, 120));
        let events: Vec<&str> = schema.event_names().collect();
        println!("\nEvents: {}", events.join(" "));
        println!(
            "\n'help COMMAND' shows its arguments; 'transaction(' starts a transaction (one action per line, ')' sends it);\n\
             a line starting with '!' is sent without checking it; a line that is a JSON object is sent as it is."
        );
    }

    fn help_command(&self, cmd: &str) {
        if let Peer::Agent { info, .. } = &self.peer {
            return help_agent_command(info, self.schema.as_deref(), cmd);
        }
        match self.schema.as_ref().map(|s| schema::describe_command(s, cmd)) {
            None => println!("No schema from the server: no help for {cmd}."),
            Some(None) => println!("Unknown command '{cmd}' (see 'help')."),
            Some(Some(text)) => print!("{text}"),
        }
    }

    fn send(&mut self, mut req: Request) {
        if let Peer::Agent { .. } = &self.peer {
            if req.oob {
                return eprintln!("The guest agent has no out-of-band commands: use \"execute\".");
            }
            // `ping` is `guest-ping`; a JSON line names its command in full.
            if !req.json {
                req.execute = crate::ga::command_name(&req.execute).unwrap_or(req.execute);
            }
        }
        // The agent's schema comes from the model, not from the agent: nothing is checked.
        let live = if let Peer::Qmp(_) = &self.peer { self.schema.as_ref() } else { None };
        if let (false, false, Some(live)) = (req.force, crate::globals().no_check, live) {
            // Moved into a Value and back: a copy of arguments nested 1024 deep would recurse.
            let args = Value::Object(std::mem::take(&mut req.arguments));
            let problems = schema::check_command(live, &req.execute, &args);
            if let Value::Object(args) = args {
                req.arguments = args;
            }
            if !problems.is_empty() {
                eprintln!("Not sent: {}", problems.join("; "));
                eprintln!("(start the line with '!' to send it anyway)");
                return;
            }
        }
        let request = req.to_json();
        if self.opts.verbose {
            println!("{}", json_text(&request, self.opts.pretty));
        }
        let args = if req.arguments.is_empty() { Value::Null } else { Value::Object(req.arguments.clone()) };
        let result = match &self.peer {
            Peer::Qmp(client) if req.oob => {
                self.interruptible(client.call_raw(&req.execute, args).oob().send())
            }
            Peer::Qmp(client) => self.interruptible(client.call_raw(&req.execute, args).send()),
            Peer::Agent { agent, .. } => self.interruptible(agent.call_raw(&req.execute, args).send()),
        };
        let Some(result) = result else { return };
        let response = match result {
            Ok(value) => json!({"return": value}),
            Err(Error::Qmp(q)) => error_json(&q),
            Err(e) if e.is_disconnect() => self.lost(&e),
            Err(e) => return eprintln!("qmp: {e}"),
        };
        self.emit(format!("{}\n", json_text(&response, self.opts.pretty)));
        self.write_log(&request, &response);
        let negotiated = req.execute == "qmp_capabilities" && response.get("return").is_some();
        if negotiated && !self.peer.is_agent() && self.schema.is_none() {
            self.load_schema();
        }
    }

    fn handle_hmp(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        match hmp::cpu_switch(line) {
            Some(Err(msg)) => return println!("{msg}"),
            Some(Ok(index)) => {
                let check = self
                    .peer
                    .client()
                    .call_raw("human-monitor-command", hmp::request_args("info version", Some(index)))
                    .send();
                match self.rt.block_on(check) {
                    Ok(_) => self.cpu_index = Some(index),
                    Err(e) if e.is_disconnect() => self.lost(&e),
                    Err(_) => return println!("bad CPU index"),
                }
            }
            None => {}
        }
        let args = hmp::request_args(line, self.cpu_index);
        let request = json!({"execute": "human-monitor-command", "arguments": args.clone()});
        if self.opts.verbose {
            println!("{}", json_text(&request, self.opts.pretty));
        }
        let Some(result) =
            self.interruptible(self.peer.client().call_raw("human-monitor-command", args).send())
        else {
            return;
        };
        let response = match result {
            Ok(value) => {
                if let Value::String(text) = &value {
                    self.emit(hmp::display_text(text));
                }
                json!({"return": value})
            }
            Err(Error::Qmp(q)) => {
                self.emit(format!("{}: {}\n", q.class.as_str(), q.desc));
                json!({"error": {"class": q.class.as_str(), "desc": q.desc}})
            }
            Err(e) if e.is_disconnect() => self.lost(&e),
            Err(e) => return eprintln!("qmp: {e}"),
        };
        self.write_log(&request, &response);
    }

    /// Waits for a reply; Ctrl-C stops waiting (`None`), and the late reply is then dropped.
    /// Without a terminal (a piped script) Ctrl-C keeps its usual meaning: it ends the shell.
    fn interruptible<T>(&self, call: impl std::future::Future<Output = T>) -> Option<T> {
        if !std::io::stdin().is_terminal() {
            return Some(self.rt.block_on(call));
        }
        let outcome = self.rt.block_on(async {
            tokio::select! {
                result = call => Some(result),
                _ = tokio::signal::ctrl_c() => None,
            }
        });
        if outcome.is_none() {
            println!("\n(interrupted: no longer waiting for the reply)");
        }
        outcome
    }

    /// Prints a command's output after the events received before it.
    fn emit(&self, text: String) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        match &self.output {
            Some(tx) if tx.send((text.clone(), done_tx)).is_ok() => {
                // The event task acknowledges once printed; it only ends with the runtime.
                let _ = done_rx.recv();
            }
            _ => {
                print!("{text}");
                let _ = std::io::stdout().flush();
            }
        }
    }

    /// `-l`: the request and its response, one JSON object per line.
    fn write_log(&mut self, request: &Value, response: &Value) {
        if let Some(file) = &mut self.log {
            let written = writeln!(file, "{request}\n{response}").and_then(|()| file.flush());
            if let Err(e) = written {
                eprintln!("qmp: cannot write the log: {e}");
                self.log = None;
            }
        }
    }

    /// The connection ended during a request: the watcher (or this call) ends the process.
    fn lost(&self, e: &Error) -> ! {
        let reason = match e {
            Error::Disconnected(r) => r.to_string(),
            other => other.to_string(),
        };
        self.finisher.connection_lost(&reason);
        // The shell is already ending elsewhere; that path exits the process.
        loop {
            std::thread::park();
        }
    }

    /// Ctrl-D (or a failure, with its `code`): under `qmp launch`, QEMU is asked to quit, and
    /// its status becomes ours unless a failure code is given.
    fn leave(self, code: Option<ExitCode>) -> ExitCode {
        if !self.finisher.begin_ending() {
            // The watcher is reporting a lost connection and exits the process.
            loop {
                std::thread::park();
            }
        }
        if self.finisher.is_launch() {
            if !self.peer.client().is_closed() {
                let quit = self.peer.client().with_timeout(Duration::from_secs(5));
                let _ = self.rt.block_on(quit.call_raw("quit", Value::Null).send());
            }
            if let Some(status) = self.finisher.end_launched(Duration::from_secs(30)) {
                return code.unwrap_or(ExitCode::from(status_number(status)));
            }
        }
        code.unwrap_or(ExitCode::SUCCESS)
    }
}

/// `help` on the agent: every command it has, the disabled ones marked.
fn help_agent(info: &AgentInfo) {
    let names: Vec<String> = info
        .commands
        .iter()
        .map(|c| if c.enabled { c.name.clone() } else { format!("{} (disabled)", c.name) })
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    print!("{}", columns(&names, 120));
    println!(
        "\n'help COMMAND' shows its arguments; the guest- prefix may be left out ('ping');\n\
         a line that is a JSON object is sent as it is. The agent sends no events and has no transactions."
    );
}

/// `help COMMAND` on the agent: the command's arguments and return from the generated schema,
/// and whether this agent has it enabled.
fn help_agent_command(info: &AgentInfo, schema: Option<&Schema>, word: &str) {
    let name = crate::ga::command_name(word).unwrap_or_else(|_| word.to_owned());
    let Some(state) = info.command(&name) else {
        return println!("The agent has no command '{name}' (see 'help').");
    };
    match schema.and_then(|s| schema::describe_command(s, &name)) {
        Some(text) => print!("{text}"),
        None => println!("{name}\n  (not in the guest agent schema this qmp knows: no description)"),
    }
    if !state.enabled {
        println!("(disabled on this agent)");
    }
}
