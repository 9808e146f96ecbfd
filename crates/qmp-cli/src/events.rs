//! Events from the command line: `qmp events` prints them as they arrive, `qmp wait` waits
//! for one, and `--then-wait` (a global option, see [`crate::GlobalOpts`]) waits for one after
//! a command.
//!
//! Behaviour:
//! - each event prints as the JSON object QEMU sent (`event`, then `data` when it has some,
//!   then `timestamp`), one line each when stdout is not a terminal, pretty with the name in
//!   bold cyan on one (no colour with `NO_COLOR` set); stdout is flushed after every event;
//! - names are matched as QEMU sends them, upper case (`stop` is taken as `STOP`); a
//!   `KEY=VALUE` condition holds when the event's data has VALUE at KEY (`a.b` looks into
//!   nested objects), VALUE read as JSON when it reads (`42`, `true`, `null`), else a string;
//! - the subscription is made before anything that could cause the event is sent;
//! - events lost because this reader fell behind are counted on stderr, and watching goes on;
//! - QEMU going away ends the watch with exit code 3, a limit running out with 4.

use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use qmp::{Event, EventFilter, RecvError, Subscription, Timestamp};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::connect::{connect, within_timeout};
use crate::error::{CliError, TimedOut};
use crate::{block_on, GlobalOpts, TimeoutSource};

/// After the options in `qmp events --help`.
const EVENTS_HELP: &str = "\
Each event prints as the JSON object QEMU sent, {\"event\": ..., \"data\": ..., \"timestamp\":
{\"seconds\": ..., \"microseconds\": ...}}: one line each when stdout is not a terminal, pretty
with the name in colour on one (NO_COLOR: no colour); flushed after each event.
-s ADDR and the other connection options go before `events`: qmp -s /run/vm.qmp events

Exit codes:
  0  --count events came (or the reader of stdout went away)
  2  bad options
  3  cannot connect, or QEMU went away
  4  --timeout ran out (after printing what came)

Examples:
  qmp events --filter STOP --filter RESUME
  qmp events --filter BLOCK_JOB_COMPLETED --data device=job0 --count 1 --timeout 600";

/// After the options in `qmp wait --help`.
const WAIT_HELP: &str = "\
The event prints as `qmp events` prints it. -s ADDR and the other connection options go
before `wait`; so does --then-wait, to run a command and then wait, with no event missed.

Exit codes:
  0  the event came
  2  bad options
  3  cannot connect, or QEMU went away
  4  --timeout ran out

Examples:
  qmp wait SHUTDOWN --timeout 0
  qmp wait BLOCK_JOB_READY device=job0 --timeout 300";

/// `qmp events`: print events as they arrive.
#[derive(clap::Args, Debug)]
#[command(after_help = EVENTS_HELP)]
pub struct EventsArgs {
    /// Only events with this name; repeat for any of several (lower case is taken as upper)
    #[arg(long = "filter", value_name = "NAME")]
    pub filter: Vec<String>,

    /// Only events whose data holds VALUE at KEY (a.b looks into nested objects; VALUE is
    /// JSON when it reads as JSON, else a string); repeat for several, all of which must hold
    #[arg(long = "data", value_name = "KEY=VALUE", value_parser = parse_data)]
    pub data: Vec<DataMatch>,

    /// Stop after N events (exit code 0)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Watch for this many seconds, then stop with exit code 4 (after printing what came);
    /// 0 watches forever. This is how long to watch, not the one-shot's limit: the --timeout
    /// before `events` only bounds connecting [default: forever]
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_timeout)]
    pub timeout: Option<Duration>,
}

/// `qmp wait`: wait for one event and print it.
#[derive(clap::Args, Debug)]
#[command(after_help = WAIT_HELP)]
pub struct WaitArgs {
    /// The event's name, as QEMU sends it (lower case is taken as upper case)
    #[arg(value_name = "EVENT")]
    pub event: String,

    /// Conditions on the event's data, as `qmp events --data` takes them
    #[arg(value_name = "KEY=VALUE", value_parser = parse_data)]
    pub data: Vec<DataMatch>,

    /// Give up after this many seconds, connecting included (exit code 4); 0 waits forever
    /// [default: the --timeout before `wait`, else $QMP_TIMEOUT, else 60]
    #[arg(long, value_name = "SECONDS", value_parser = crate::parse_timeout)]
    pub timeout: Option<Duration>,
}

/// `KEY=VALUE`: the event's data must hold VALUE at KEY.
#[derive(Debug, Clone, PartialEq)]
pub struct DataMatch {
    /// A member of the data, dotted for nested objects (`a.b`).
    pub key: String,
    /// The value it must have.
    pub value: Value,
}

/// `KEY=VALUE`, VALUE read as JSON when it reads as JSON (`42`, `true`, `"x"`), else taken
/// as a string.
pub fn parse_data(s: &str) -> Result<DataMatch, String> {
    let Some((key, value)) = s.split_once('=') else {
        return Err(format!("{s:?} is not KEY=VALUE"));
    };
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(format!("{s:?}: KEY is empty (KEY=VALUE, a.b=VALUE for nested members)"));
    }
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok(DataMatch { key: key.to_owned(), value })
}

/// An event name as QEMU sends it: upper case.
fn event_name(s: &str) -> Result<String, String> {
    if s.is_empty() || s.contains(['=', ',']) || s.contains(char::is_whitespace) {
        return Err(format!("{s:?} is not an event name (such as STOP or SHUTDOWN)"));
    }
    Ok(s.to_ascii_uppercase())
}

/// One event to wait for: a name and conditions on its data.
#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    /// The name, upper case.
    pub name: String,
    /// Conditions on the data, all of which must hold.
    pub data: Vec<DataMatch>,
}

impl EventSpec {
    /// The subscription's filter.
    pub fn filter(&self) -> EventFilter {
        with_data(EventFilter::name(&self.name), &self.data)
    }
}

/// `--then-wait EVENT[,KEY=VALUE...]` (so a VALUE cannot hold a comma).
pub fn parse_spec(s: &str) -> Result<EventSpec, String> {
    let mut parts = s.split(',');
    // split always yields at least one part.
    let name = event_name(parts.next().unwrap_or_default())?;
    let data = parts.map(parse_data).collect::<Result<_, _>>()?;
    Ok(EventSpec { name, data })
}

fn with_data(filter: EventFilter, data: &[DataMatch]) -> EventFilter {
    data.iter().fold(filter, |f, d| f.data(d.key.clone(), d.value.clone()))
}

/// `qmp events`: prints the events the options select until `--count` of them came (exit
/// code 0), `--timeout` ran out (4) or QEMU went away (3). Connecting is bounded as for any
/// command; watching, only by `qmp events --timeout`.
pub fn run_events(global: &GlobalOpts, args: EventsArgs) -> Result<(), CliError> {
    let names = args.filter.iter().map(|n| event_name(n)).collect::<Result<Vec<_>, _>>();
    let names = names.map_err(|e| CliError::Usage(format!("--filter: {e}")))?;
    let filter = if names.is_empty() { EventFilter::any() } else { EventFilter::names(names) };
    let filter = with_data(filter, &args.data);
    let printer = EventPrinter::new(global);
    block_on(async {
        let client = within_timeout(global, connect(global)).await?;
        let mut events = client.subscribe(filter);
        tracing::debug!(?events, "subscribed");
        let watch = async {
            let mut seen = 0u64;
            while args.count.is_none_or(|n| seen < n) {
                let event = next_event(&mut events).await?;
                if !printer.print(&event)? {
                    // The reader went away (`qmp events | head -1`): nothing more to do.
                    break;
                }
                seen += 1;
            }
            Ok(())
        };
        match args.timeout.filter(|t| !t.is_zero()) {
            Some(after) => tokio::time::timeout(after, watch)
                .await
                .map_err(|_| CliError::Timeout(Some(TimedOut { after, source: TimeoutSource::Option })))?,
            None => watch.await,
        }
    })
}

/// `qmp wait`: the first event the arguments select, printed; within `qmp wait --timeout`,
/// else the command's limit, connecting included.
pub fn run_wait(global: &GlobalOpts, args: WaitArgs) -> Result<(), CliError> {
    let name = event_name(&args.event).map_err(CliError::Usage)?;
    let spec = EventSpec { name, data: args.data };
    let mut limits = global.clone();
    if let Some(timeout) = args.timeout {
        limits.timeout = Some(timeout);
    }
    let printer = EventPrinter::new(global);
    let event = block_on(within_timeout(&limits, async {
        let client = connect(&limits).await?;
        let mut sub = client.subscribe(spec.filter());
        tracing::debug!(?sub, "subscribed");
        next_event(&mut sub).await
    }))?;
    printer.print(&event).map(drop)
}

/// The next event of `sub`. Events lost because the queue was full are counted on stderr and
/// skipped over; the connection's end is a connection error (exit code 3).
pub async fn next_event(sub: &mut Subscription) -> Result<Arc<Event>, CliError> {
    loop {
        match sub.recv().await {
            Ok(event) => return Ok(event),
            Err(RecvError::Lagged(n)) => {
                let _ = writeln!(io::stderr(), "qmp: {n} events were lost: this reader fell behind");
            }
            Err(RecvError::Closed(why)) => return Err(qmp::Error::Disconnected(why).into()),
            Err(other) => return Err(CliError::Connection(other.to_string())),
        }
    }
}

/// Prints events on stdout: pretty (with colour, unless `NO_COLOR`) on a terminal or with
/// `--pretty`, one line each otherwise; flushed after each.
#[derive(Debug, Clone, Copy)]
pub struct EventPrinter {
    pretty: bool,
    colour: bool,
}

impl EventPrinter {
    /// As the output options and stdout say.
    pub fn new(global: &GlobalOpts) -> Self {
        let tty = io::stdout().is_terminal();
        // https://no-color.org: set and not empty.
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        EventPrinter { pretty: global.pretty || (!global.compact && tty), colour: tty && !no_color }
    }

    /// Prints one event and flushes; `false` when the reader has gone (a closed pipe, which
    /// is no failure).
    pub fn print(&self, event: &Event) -> Result<bool, CliError> {
        let mut text = render(event, self.pretty, self.colour);
        text.push('\n');
        let mut out = io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(CliError::Output(e)),
        }
    }
}

/// An event as QEMU sends it, with `event` first (QEMU itself puts `timestamp` first).
#[derive(Serialize)]
struct Wire<'a> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
    timestamp: Timestamp,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

/// The event's JSON text; with `colour`, its name in bold cyan.
fn render(event: &Event, pretty: bool, colour: bool) -> String {
    let wire = Wire {
        event: &event.name,
        data: event.data.is_some().then(|| event.data_value()),
        timestamp: event.timestamp,
        extra: &event.extra,
    };
    let text = if pretty { serde_json::to_string_pretty(&wire) } else { serde_json::to_string(&wire) };
    // Strings, numbers and Values always serialize; the fallback only keeps the event whole.
    let text = text.unwrap_or_else(|_| event.to_json().to_string());
    if colour {
        paint_name(&text, &event.name)
    } else {
        text
    }
}

/// `text` with the value of its first `"event"` member (the name) in bold cyan.
fn paint_name(text: &str, name: &str) -> String {
    let quoted = Value::String(name.to_owned()).to_string();
    let Some(key) = text.find("\"event\":") else { return text.to_owned() };
    let Some(at) = text[key..].find(&quoted).map(|i| key + i) else { return text.to_owned() };
    let end = at + quoted.len();
    format!("{}\x1b[1;36m{}\x1b[0m{}", &text[..at], &text[at..end], &text[end..])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(text: &str) -> Event {
        match qmp_proto::Message::from_slice(text.as_bytes()).unwrap() {
            qmp_proto::Message::Event(e) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn data_values_are_json_when_they_read_as_json() {
        let cases = [
            ("reason=host-qmp-quit", "reason", json!("host-qmp-quit")),
            ("guest=false", "guest", json!(false)),
            ("a.b=42", "a.b", json!(42)),
            ("x=\"42\"", "x", json!("42")),
            ("x=", "x", json!("")),
            ("x=a=b", "x", json!("a=b")),
            ("x=null", "x", json!(null)),
        ];
        for (text, key, value) in cases {
            assert_eq!(parse_data(text), Ok(DataMatch { key: key.into(), value }), "{text}");
        }
        for bad in ["reason", "=x", "a..b=1", ".a=1"] {
            assert!(parse_data(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn then_wait_specs() {
        assert_eq!(parse_spec("stop"), Ok(EventSpec { name: "STOP".into(), data: vec![] }));
        let spec = parse_spec("SHUTDOWN,reason=host-qmp-quit,guest=false").unwrap();
        assert_eq!(spec.name, "SHUTDOWN");
        assert_eq!(spec.data[1], DataMatch { key: "guest".into(), value: json!(false) });
        let shutdown = event(
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#,
        );
        assert!(spec.filter().matches(&shutdown));
        assert!(!parse_spec("SHUTDOWN,guest=true").unwrap().filter().matches(&shutdown));
        for bad in ["", "reason=x", "STOP,", "STOP,x", "a b"] {
            assert!(parse_spec(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn events_print_with_the_name_first() {
        let e = event(
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "SHUTDOWN", "data": {"reason": "x", "guest": false}}"#,
        );
        assert_eq!(
            render(&e, false, false),
            r#"{"event":"SHUTDOWN","data":{"reason":"x","guest":false},"timestamp":{"seconds":1,"microseconds":2}}"#
        );
        let stop = event(r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#);
        assert_eq!(
            render(&stop, false, false),
            r#"{"event":"STOP","timestamp":{"seconds":1,"microseconds":2}}"#
        );
        let pretty = render(&stop, true, false);
        assert!(pretty.starts_with("{\n  \"event\": \"STOP\",\n"), "{pretty}");
        assert_eq!(serde_json::from_str::<Value>(&pretty).unwrap(), stop.to_json());
    }

    #[test]
    fn colour_is_on_the_name_only() {
        let stop = event(r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}"#);
        assert_eq!(
            render(&stop, false, true),
            "{\"event\":\x1b[1;36m\"STOP\"\x1b[0m,\"timestamp\":{\"seconds\":1,\"microseconds\":2}}"
        );
        assert!(render(&stop, true, true).starts_with("{\n  \"event\": \x1b[1;36m\"STOP\"\x1b[0m,\n"));
    }
}
