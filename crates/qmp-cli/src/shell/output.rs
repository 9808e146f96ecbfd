//! What the shell prints: JSON as qmp-shell prints it, command lists in columns, and the
//! event task that prints events above the prompt, in order with the commands' output.

use std::io::Write;
use std::sync::{Arc, Mutex};

use qmp::{RecvError, Subscription};
use rustyline::ExternalPrinter;
use serde_json::Value;

/// Where events go: above the prompt through rustyline, or plain stdout without a terminal.
pub type Printer = Arc<Mutex<Option<Box<dyn ExternalPrinter + Send>>>>;

/// A lock that survives a panic elsewhere (the data stays usable for printing).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// JSON as the shell prints it: on one line with Python's `", "` and `": "` separators, or
/// indented by 4 with `-p` (as qmp-shell prints).
pub fn json_text(value: &Value, pretty: bool) -> String {
    let mut out = Vec::new();
    let written = if pretty {
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
        serde::Serialize::serialize(value, &mut serde_json::Serializer::with_formatter(&mut out, fmt))
    } else {
        serde::Serialize::serialize(
            value,
            &mut serde_json::Serializer::with_formatter(&mut out, SpacedFormatter),
        )
    };
    // Serializing a Value into a Vec cannot fail, and serde_json writes UTF-8.
    match written {
        Ok(()) => String::from_utf8(out).unwrap_or_else(|_| value.to_string()),
        Err(_) => value.to_string(),
    }
}

/// A QMP error as the server sent it: `{"error": {"class": ..., "desc": ..., ...}}`.
pub fn error_json(error: &qmp::QmpError) -> Value {
    let mut err = serde_json::Map::new();
    err.insert("class".into(), Value::String(error.class.as_str().to_owned()));
    err.insert("desc".into(), Value::String(error.desc.clone()));
    err.extend(error.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    serde_json::json!({ "error": err })
}

/// One-line JSON with a space after `,` and `:` (Python's `json.dumps` default).
struct SpacedFormatter;

impl serde_json::ser::Formatter for SpacedFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

/// Names in columns read top to bottom, as `ls` lists them, within `width` characters.
pub fn columns(names: &[&str], width: usize) -> String {
    let cell = names.iter().map(|n| n.len()).max().unwrap_or(0) + 2;
    let per_line = (width / cell).max(1);
    let rows = names.len().div_ceil(per_line);
    let mut out = String::new();
    for row in 0..rows {
        let line: String = names.iter().skip(row).step_by(rows).map(|n| format!("{n:cell$}")).collect();
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// A command's output, printed by the event task once the events that came before the reply
/// are out; the sender waits for the acknowledgement before the next prompt.
pub type Output = (String, std::sync::mpsc::Sender<()>);

/// Prints each event (its JSON, timestamp included) as it arrives, and the commands' output
/// in order with them: an event sent before a reply (STOP before `stop`'s) prints first.
pub async fn print_events(
    mut events: Subscription,
    mut outputs: tokio::sync::mpsc::UnboundedReceiver<Output>,
    printer: Printer,
    pretty: bool,
    all_printed: Arc<tokio::sync::Notify>,
) {
    let mut events_open = true;
    loop {
        let text = tokio::select! {
            biased;
            event = events.recv(), if events_open => match event {
                Ok(event) => json_text(&event.to_json(), pretty),
                Err(RecvError::Lagged(n)) => format!("({n} events were lost: the shell fell behind)"),
                Err(_) => {
                    events_open = false;
                    all_printed.notify_one();
                    continue;
                }
            },
            output = outputs.recv() => match output {
                Some((text, done)) => {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                    let _ = done.send(());
                    continue;
                }
                None => return,
            },
        };
        let mut guard = lock(&printer);
        match guard.as_mut() {
            // In raw mode a bare \n does not return the carriage; outside it (while a command
            // runs) rustyline writes the text as it is, so the line end is ours to add.
            Some(p) => {
                let _ = p.print(format!("{}\r\n", text.replace('\n', "\r\n")));
            }
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_in_columns() {
        let names = ["a", "bb", "c", "d", "e"];
        assert_eq!(columns(&names, 8), "a   d\nbb  e\nc\n");
        assert_eq!(columns(&names, 1), "a\nbb\nc\nd\ne\n");
        assert_eq!(columns(&[], 80), "");
    }

    #[test]
    fn json_as_qmp_shell_prints_it() {
        let v = json!({"return": {"a": [1, 2], "b": {}}});
        assert_eq!(json_text(&v, false), r#"{"return": {"a": [1, 2], "b": {}}}"#);
        assert_eq!(
            json_text(&v, true),
            "{\n    \"return\": {\n        \"a\": [\n            1,\n            2\n        ],\n        \"b\": {}\n    }\n}"
        );
    }
}
