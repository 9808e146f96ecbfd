//! Following a migration: `MIGRATION` events (sent when the `events` migration capability is
//! on) and `query-migrate` once a second, for the RAM transferred, remaining and total, QEMU's
//! rate, the dirty-page rate and the expected downtime; at the end, `query-migrate`'s answer
//! is the final state.

use std::time::Duration;

use qmp::{Client, EventFilter, Subscription};
use serde_json::{json, Value};

use super::render::{bytes, Layout, Render};
use super::{call, deadline, wait_timed_out, Interrupted, Interrupts};
use crate::error::CliError;
use crate::events::next_event;
use crate::GlobalOpts;

/// The statuses a migration ends in.
const ENDS: &[&str] = &["completed", "failed", "cancelled"];

/// A migration, as far as it is known.
pub struct Follower<'a> {
    global: &'a GlobalOpts,
    client: &'a Client,
    /// The last answer of `query-migrate`.
    info: Value,
}

impl<'a> Follower<'a> {
    /// A follower of the migration the command starts, or that is running.
    pub fn new(global: &'a GlobalOpts, client: &'a Client) -> Self {
        Follower { global, client, info: Value::Null }
    }

    /// The subscription to make before anything is sent.
    pub fn subscribe(&self) -> Subscription {
        self.client.subscribe(EventFilter::name("MIGRATION"))
    }

    /// Follows the migration to its end, prints `query-migrate`'s final answer on stdout and
    /// says how it went; `limit` bounds the whole (exit code 4). With `sent` false (`qmp
    /// migration wait`), no migration at all is an error.
    pub async fn run(
        &mut self,
        mut events: Subscription,
        interrupts: &mut Interrupts,
        limit: Option<Duration>,
        sent: bool,
    ) -> Result<(), CliError> {
        let mut render = Render::new("migrate", Layout::Migration);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let timeout = deadline(limit);
        tokio::pin!(timeout);
        let mut first = true;
        loop {
            tokio::select! {
                biased;
                event = next_event(&mut events) => {
                    let status = event?.data_value()["status"].as_str().unwrap_or_default().to_owned();
                    if ENDS.contains(&status.as_str()) {
                        break;
                    }
                }
                _ = tick.tick() => {
                    self.info = call(self.global, self.client, "query-migrate", Value::Null).await?;
                    let status = self.status();
                    if status == "none" && !sent && first {
                        return Err(CliError::Failed("no migration is running (query-migrate says none)".into()));
                    }
                    first = false;
                    if ENDS.contains(&status.as_str()) {
                        break;
                    }
                    let (line, done, total, message) = self.sample();
                    render.progress(line, done, total, message);
                    if status == "pre-switchover" {
                        render.clear();
                        eprintln!(
                            "qmp: the migration is paused before switchover (pause-before-switchover): \
                             continue it with `qmp migrate-continue state=pre-switchover`"
                        );
                        return crate::oneshot::print_json(self.global, &self.info);
                    }
                }
                what = interrupts.next("the migration", &mut render) => match what {
                    Interrupted::Asking => {}
                    Interrupted::Leave => {
                        render.clear();
                        return Err(CliError::Interrupted(
                            "interrupted; the migration is still running (follow it with `qmp migration wait`, \
                             cancel it with `qmp migrate_cancel`)"
                                .into(),
                        ));
                    }
                    Interrupted::Cancel => {
                        interrupts.cancelling = true;
                        render.note("cancelling the migration");
                        if let Err(e) = call(self.global, self.client, "migrate_cancel", Value::Null).await {
                            render.note(&format!("migrate_cancel: {e}"));
                        }
                    }
                },
                () = &mut timeout => {
                    render.clear();
                    render.note("the migration is still running");
                    return Err(wait_timed_out(limit.unwrap_or_default()));
                }
            }
        }
        interrupts.abandon_question();
        render.clear();
        self.info = call(self.global, self.client, "query-migrate", Value::Null).await?;
        crate::oneshot::print_json(self.global, &self.info)?;
        match self.status().as_str() {
            _ if interrupts.cancelling => {
                Err(CliError::Interrupted(format!("interrupted; the migration {}", self.status())))
            }
            "completed" => Ok(()),
            "cancelled" => Err(CliError::Failed("the migration was cancelled".into())),
            other => Err(CliError::Failed(format!(
                "migration {other}: {}",
                self.info["error-desc"].as_str().unwrap_or("no error given")
            ))),
        }
    }

    /// `query-migrate`'s status; `none` when it gives none (no migration yet).
    fn status(&self) -> String {
        self.info["status"].as_str().unwrap_or("none").to_owned()
    }

    /// The last answer as a progress line, bytes done and total, and the bar's message.
    fn sample(&self) -> (Value, u64, u64, String) {
        let ram = &self.info["ram"];
        let number = |v: &Value| v.as_u64().unwrap_or(0);
        let (transferred, remaining, total) =
            (number(&ram["transferred"]), number(&ram["remaining"]), number(&ram["total"]));
        let mbps = ram["mbps"].as_f64().unwrap_or(0.0);
        let dirty = number(&ram["dirty-pages-rate"]);
        let downtime = self.info["expected-downtime"].as_u64();
        let status = self.status();
        let line = json!({
            "migration": status,
            "transferred": transferred,
            "remaining": remaining,
            "total": total,
            "mbps": mbps,
            "dirty-pages-rate": dirty,
            "expected-downtime": downtime,
        });
        let mut message = format!("{mbps:.1} Mbps, dirty {dirty} pages/s, {} remaining", bytes(remaining));
        if let Some(ms) = downtime {
            message.push_str(&format!(", downtime ~{ms} ms"));
        }
        if status != "active" {
            message = format!("{status}: {message}");
        }
        (line, total.saturating_sub(remaining), total, message)
    }
}
