//! How progress is shown: a bar on stderr when it is a terminal (cleared at the end), one
//! JSON line a second on stderr otherwise (`{"progress": {...}}`), so that stdout holds only
//! the final state.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

/// The bar's layout: with the rate and ETA indicatif works out from the position (jobs), or
/// with the ETA only, the message carrying QEMU's own rate (migrations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Bytes done of total, rate, ETA, then the message.
    Job,
    /// Bytes done of total, ETA, then the message (QEMU's rate, dirty rate, downtime).
    Migration,
}

/// Where progress goes.
pub struct Render {
    bar: Option<ProgressBar>,
    /// The bar has been drawn (it is from the first sample on).
    drawn: bool,
    /// Taken off the screen while a question is asked.
    hidden: bool,
}

impl Render {
    /// A bar when stderr is a terminal, labelled `prefix`; JSON lines otherwise.
    pub fn new(prefix: &str, layout: Layout) -> Render {
        let bar = std::io::stderr().is_terminal().then(|| new_bar(prefix, layout));
        Render { bar, drawn: false, hidden: false }
    }

    /// Shows one sample: `line` (a JSON object) on a line of its own when there is no bar,
    /// else `done` of `total` bytes and `message` on the bar.
    pub fn progress(&mut self, line: Value, done: u64, total: u64, message: String) {
        match &self.bar {
            Some(bar) => {
                if !self.drawn && !self.hidden {
                    // Drawn from the first sample on: not as an empty bar before it.
                    self.drawn = true;
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                    bar.enable_steady_tick(Duration::from_millis(200));
                }
                bar.set_length(total);
                bar.set_position(done.min(total));
                bar.set_message(message);
            }
            None => {
                let _ = writeln!(std::io::stderr(), "{}", json!({ "progress": line }));
            }
        }
    }

    /// Relabels the bar (the job's kind is known once QEMU lists it).
    pub fn set_prefix(&self, prefix: &str) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(prefix.to_owned());
        }
    }

    /// A line of text on stderr, above the bar when there is one.
    pub fn note(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("qmp: {text}")),
            None => eprintln!("qmp: {text}"),
        }
    }

    /// Takes the bar off the screen (while a question is asked).
    pub fn hide(&mut self) {
        self.hidden = true;
        if let Some(bar) = self.bar.as_ref().filter(|_| self.drawn) {
            bar.set_draw_target(ProgressDrawTarget::hidden());
            let _ = write!(std::io::stderr(), "\r\x1b[2K");
        }
    }

    /// Puts the bar back.
    pub fn show(&mut self) {
        self.hidden = false;
        if let Some(bar) = self.bar.as_ref().filter(|_| self.drawn) {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    /// Clears the bar for good (the end).
    pub fn clear(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Render {
    fn drop(&mut self) {
        self.clear();
    }
}

fn new_bar(prefix: &str, layout: Layout) -> ProgressBar {
    let template = match layout {
        Layout::Job => "{prefix} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta} {msg}",
        Layout::Migration => "{prefix} {bar:30} {bytes}/{total_bytes} eta {eta} {msg}",
    };
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.set_prefix(prefix.to_owned());
    bar
}

/// Bytes for a person: `4.1 MiB`.
pub fn bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}
