//! One command, one connection: `qmp COMMAND [ARG...]` and `qmp hmp COMMAND-LINE`.
//!
//! The work is: parse the arguments (before touching the network, so a usage error costs
//! nothing), start a current-thread runtime, connect and negotiate, check the arguments
//! against the server's schema (unless `--no-check`), run the command, print.
//!
//! The check costs a `query-qmp-schema` round trip (QEMU 7.2 takes ~15 ms to build its
//! 200 KB answer), so it is made only when there are arguments to check: `qmp query-status`
//! sends at once, and a command run without the arguments it requires is refused by QEMU
//! itself. A command the schema does not have is sent as well, for QEMU's own
//! `CommandNotFound`; so is everything when the server has no usable schema.
//!
//! With `--pass-fd N`, descriptor N goes with the command (SCM_RIGHTS), over a unix socket
//! only; the check that the connection is one is made before connecting.
//!
//! With `--then-wait EVENT`, the event is subscribed to before the command is sent, and
//! waited for (and printed) after its reply, within the same limit. With `-v`, the request
//! and the reply are printed on stderr as the shell's `-v` prints requests (the library has
//! no tap on the wire; `RUST_LOG` shows its own logs).

use std::ffi::OsString;
use std::io::{self, IsTerminal, Write};
use std::os::fd::BorrowedFd;

use qmp::Client;
use serde_json::{Map, Value};

use crate::connect::{check_pass_fds, connect, within_timeout};
use crate::error::CliError;
use crate::events::{next_event, EventPrinter};
use crate::shell::output::{error_json, json_text};
use crate::shell::parse::Request;
use crate::{args, block_on, GlobalOpts, HmpArgs};

/// `qmp COMMAND [ARG...]`: runs a QMP command and prints its return value as JSON.
pub fn run_qmp(global: &GlobalOpts, words: Vec<OsString>) -> Result<(), CliError> {
    let (name, arguments) = command_line(words)?;
    let check = !global.no_check && !arguments.is_empty();
    execute(global, &name, arguments, check, |result| print_json(global, &result))
}

/// COMMAND and its arguments from the words after the options: a usage error for words that
/// are not UTF-8, an empty name, an option of `qmp`'s among the arguments, or arguments that
/// do not read.
pub fn command_line(words: Vec<OsString>) -> Result<(String, Map<String, Value>), CliError> {
    let mut words = words.into_iter().map(|w| {
        w.into_string().map_err(|w| CliError::Usage(format!("not valid UTF-8: {}", w.to_string_lossy())))
    });
    let name = words.next().ok_or_else(|| CliError::Usage("no command given".into()))??;
    if name.trim().is_empty() {
        return Err(CliError::Usage("the command name is empty (try `qmp --help`)".into()));
    }
    let tokens = words.collect::<Result<Vec<String>, CliError>>()?;
    if let Some(misplaced) = crate::hints::misplaced_option(&name, &tokens) {
        return Err(misplaced);
    }
    let arguments = args::parse_command_line(&tokens)?;
    Ok((name, arguments))
}

/// `qmp hmp COMMAND-LINE`: runs `human-monitor-command` and prints its text as it is.
pub fn run_hmp(global: &GlobalOpts, hmp: HmpArgs) -> Result<(), CliError> {
    let mut arguments = Map::new();
    arguments.insert("command-line".into(), Value::String(hmp.command_line.join(" ")));
    if let Some(cpu) = hmp.cpu_index {
        arguments.insert("cpu-index".into(), cpu.into());
    }
    execute(global, "human-monitor-command", arguments, false, |result| match result {
        Value::String(text) => print_text(&text),
        other => Err(CliError::Connection(format!("human-monitor-command returned {other}, not text"))),
    })
}

/// Connects, checks the arguments when `check` says so, runs one command and hands its
/// result to `print`, then waits for the `--then-wait` event and prints it; all within
/// `--timeout`.
fn execute(
    global: &GlobalOpts,
    name: &str,
    arguments: Map<String, Value>,
    check: bool,
    print: impl FnOnce(Value) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let request = global.verbose.then(|| {
        Request {
            execute: name.to_owned(),
            arguments: arguments.clone(),
            oob: false,
            force: false,
            json: false,
        }
        .to_json()
    });
    let arguments = if arguments.is_empty() { Value::Null } else { Value::Object(arguments) };
    let printer = EventPrinter::new(global);
    check_pass_fds(global)?;
    let fds: Vec<BorrowedFd<'static>> = global.pass_fd.iter().map(|p| p.borrow()).collect();
    block_on(within_timeout(global, async {
        let client = connect(global).await?;
        if check {
            check_arguments(&client, name, &arguments).await?;
        }
        // Subscribed before the command is sent: the event it causes cannot be missed.
        let mut then = global.then_wait.as_ref().map(|spec| client.subscribe(spec.filter()));
        if let Some(request) = &request {
            show(global, request);
        }
        tracing::debug!(command = name, "sending");
        let result = client.call_raw(name, arguments).fds(&fds).send().await;
        if global.verbose {
            match &result {
                Ok(value) => show(global, &serde_json::json!({ "return": value })),
                Err(qmp::Error::Qmp(q)) => show(global, &error_json(q)),
                Err(_) => {}
            }
        }
        print(result?)?;
        if let Some(events) = &mut then {
            let event = next_event(events).await?;
            printer.print(&event)?;
        }
        Ok(())
    }))
}

/// `-v`: a message on stderr, laid out as the shell's `-v` lays it out.
pub(crate) fn show(global: &GlobalOpts, message: &Value) {
    let _ = writeln!(io::stderr(), "{}", json_text(message, global.pretty));
}

/// The arguments against the server's schema: a problem is a usage error naming each one. A
/// server without a usable schema (no `query-qmp-schema`, or an answer that does not read),
/// or a command it does not list, is left to answer for itself.
pub async fn check_arguments(client: &Client, name: &str, arguments: &Value) -> Result<(), CliError> {
    let schema = match client.schema().await {
        Ok(schema) => schema,
        Err(qmp::Error::Qmp(_) | qmp::Error::Json { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if !schema.has_command(name) {
        return Ok(());
    }
    schema.validate_arguments(name, arguments).map_err(|problems| {
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        CliError::Usage(format!("{name}: {} (--no-check sends it anyway)", text.join("; ")))
    })
}

/// Prints a JSON value: pretty on a terminal or with `--pretty`, one line otherwise.
pub fn print_json(global: &GlobalOpts, value: &Value) -> Result<(), CliError> {
    let stdout = io::stdout();
    let pretty = global.pretty || (!global.compact && stdout.is_terminal());
    let mut out = io::BufWriter::new(stdout.lock());
    let written = if pretty {
        serde_json::to_writer_pretty(&mut out, value)
    } else {
        serde_json::to_writer(&mut out, value)
    };
    finish(written.map_err(io::Error::from).and_then(|()| writeln!(out)).and_then(|()| out.flush()))
}

/// Prints the human monitor's text with Unix line ends, ending in a newline when not empty.
fn print_text(text: &str) -> Result<(), CliError> {
    let text = text.replace("\r\n", "\n");
    let mut out = io::stdout().lock();
    let mut written = out.write_all(text.as_bytes());
    if !text.is_empty() && !text.ends_with('\n') {
        written = written.and_then(|()| out.write_all(b"\n"));
    }
    finish(written.and_then(|()| out.flush()))
}

/// A reader that went away (`qmp ... | head -c1`) is not a failure.
fn finish(written: io::Result<()>) -> Result<(), CliError> {
    match written {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Output(e)),
        _ => Ok(()),
    }
}
