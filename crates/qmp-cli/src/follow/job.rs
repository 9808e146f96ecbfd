//! Following one job: its `JOB_STATUS_CHANGE` events (and `BLOCK_JOB_*` for block jobs,
//! which carry a job's error once QEMU has dismissed it), `query-jobs` once a second for the
//! progress, and at the end the job's error, read from `query-jobs` while it is still listed
//! (then it is dismissed) or from `BLOCK_JOB_COMPLETED`.

use std::time::{Duration, Instant};

use qmp::{Client, Event, EventFilter, Subscription};
use serde_json::{json, Value};

use super::render::{Layout, Render};
use super::{call, deadline, wait_timed_out, Interrupted, Interrupts};
use crate::error::CliError;
use crate::events::next_event;
use crate::GlobalOpts;

/// The events a job's follower reads (filtered by id as they come: the id of a job whose
/// `job-id` was not given is learned from its `created` event).
const EVENTS: &[&str] = &[
    "JOB_STATUS_CHANGE",
    "BLOCK_JOB_COMPLETED",
    "BLOCK_JOB_CANCELLED",
    "BLOCK_JOB_ERROR",
    "BLOCK_JOB_READY",
];

/// How following ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The job concluded (or is gone).
    Concluded,
    /// READY, and not to be completed: left running.
    Ready,
    /// PENDING, waiting for a manual `job-finalize`: left so.
    Pending,
}

/// One job, as far as it is known.
pub struct Follower<'a> {
    global: &'a GlobalOpts,
    client: &'a Client,
    id: String,
    /// The id is known for sure (given as `job-id`, or seen created).
    settled: bool,
    complete: bool,
    completing: bool,
    kind: Option<String>,
    status: String,
    current: u64,
    total: u64,
    sample: Option<(Instant, u64)>,
    rate: Option<f64>,
    error: Option<String>,
    /// `BLOCK_JOB_CANCELLED` came.
    cancelled: bool,
    /// The job has been seen, listed or in an event.
    seen: bool,
}

impl<'a> Follower<'a> {
    /// A follower of job `id` (`settled`: the id is sure); `complete`: complete it at READY.
    pub fn new(
        global: &'a GlobalOpts,
        client: &'a Client,
        id: String,
        settled: bool,
        complete: bool,
    ) -> Self {
        Follower {
            global,
            client,
            id,
            settled,
            complete,
            completing: false,
            kind: None,
            status: "created".into(),
            current: 0,
            total: 0,
            sample: None,
            rate: None,
            error: None,
            cancelled: false,
            seen: false,
        }
    }

    /// The job to follow, once known.
    pub fn set_id(&mut self, id: String) {
        self.id = id;
        self.settled = true;
    }

    /// The subscription to make before anything is sent.
    pub fn subscribe(&self) -> Subscription {
        self.client.subscribe(EventFilter::names(EVENTS.iter().copied()))
    }

    /// Follows the job to its end (or READY, or a manual PENDING), prints its final state
    /// on stdout and says how it went; `limit` bounds the whole (exit code 4).
    pub async fn run(
        &mut self,
        mut events: Subscription,
        interrupts: &mut Interrupts,
        limit: Option<Duration>,
    ) -> Result<(), CliError> {
        let mut render = Render::new(&format!("job {}", self.id), Layout::Job);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let timeout = deadline(limit);
        tokio::pin!(timeout);
        let end = loop {
            let what = format!("job {}", self.id);
            tokio::select! {
                biased;
                event = next_event(&mut events) => {
                    let event = event?;
                    if let Some(end) = self.on_event(&event, &render).await? {
                        break end;
                    }
                }
                _ = tick.tick() => {
                    if let Some(end) = self.poll(&mut events, &mut render).await? {
                        break end;
                    }
                }
                what = interrupts.next(&what, &mut render) => match what {
                    Interrupted::Asking => {}
                    Interrupted::Leave => {
                        render.clear();
                        let id = &self.id;
                        return Err(CliError::Interrupted(format!(
                            "interrupted; job {id} is still running (follow it with `qmp job wait {id}`, \
                             cancel it with `qmp job-cancel id={id}`)"
                        )));
                    }
                    Interrupted::Cancel => {
                        interrupts.cancelling = true;
                        render.note(&format!("cancelling job {}", self.id));
                        self.status = "cancelling".into();
                        if let Err(e) = call(self.global, self.client, "job-cancel", json!({"id": self.id})).await {
                            render.note(&format!("job-cancel: {e}"));
                        }
                    }
                },
                () = &mut timeout => {
                    render.clear();
                    render.note(&format!("job {} is still running", self.id));
                    return Err(wait_timed_out(limit.unwrap_or_default()));
                }
            }
        };
        interrupts.abandon_question();
        render.clear();
        self.finish(end, interrupts.cancelling)
    }

    /// One event; `Some` when it ends the following.
    async fn on_event(&mut self, event: &Event, render: &Render) -> Result<Option<End>, CliError> {
        let data = event.data_value();
        let text = |key: &str| data.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        if event.name == "JOB_STATUS_CHANGE" {
            let (id, status) = (text("id"), text("status"));
            if !self.settled && status == "created" {
                // The first job created after the command was sent is the command's.
                self.id = id.clone();
                self.settled = true;
            }
            if id != self.id {
                return Ok(None);
            }
            self.seen = true;
            self.status = status.clone();
            return self.on_status(&status, render).await;
        }
        if text("device") != self.id {
            return Ok(None);
        }
        let number = |key: &str| data.get(key).and_then(Value::as_u64);
        match event.name.as_str() {
            "BLOCK_JOB_COMPLETED" | "BLOCK_JOB_CANCELLED" => {
                self.current = number("offset").unwrap_or(self.current);
                self.total = number("len").unwrap_or(self.total);
                self.kind = data.get("type").and_then(Value::as_str).map(str::to_owned).or(self.kind.take());
                self.cancelled |= event.name == "BLOCK_JOB_CANCELLED";
                if let Some(error) = data.get("error").and_then(Value::as_str) {
                    self.error = Some(error.to_owned());
                }
            }
            "BLOCK_JOB_ERROR" => render.note(&format!(
                "job {}: an I/O error on {} ({})",
                self.id,
                text("operation"),
                text("action")
            )),
            _ => {}
        }
        Ok(None)
    }

    /// What a status means for the following.
    async fn on_status(&mut self, status: &str, render: &Render) -> Result<Option<End>, CliError> {
        match status {
            "ready" if !self.complete => Ok(Some(End::Ready)),
            "ready" if !self.completing => {
                self.completing = true;
                render.note(&format!("job {} is ready: completing it", self.id));
                call(self.global, self.client, "job-complete", json!({"id": self.id})).await?;
                Ok(None)
            }
            // QEMU finalizes a job with auto-finalize at once, so one still pending when our
            // next question is answered waits for a job-finalize.
            "pending" => match self.lookup().await? {
                Some(job) if job.get("status").and_then(Value::as_str) == Some("pending") => {
                    Ok(Some(End::Pending))
                }
                _ => Ok(None),
            },
            "concluded" => {
                self.conclude(render).await?;
                Ok(Some(End::Concluded))
            }
            "null" => Ok(Some(End::Concluded)),
            _ => Ok(None),
        }
    }

    /// The job as `query-jobs` lists it, if it does.
    async fn lookup(&mut self) -> Result<Option<Value>, CliError> {
        let jobs = call(self.global, self.client, "query-jobs", Value::Null).await?;
        let job = jobs.as_array().and_then(|jobs| jobs.iter().find(|j| j["id"] == self.id.as_str())).cloned();
        if let Some(job) = &job {
            self.seen = true;
            self.take(job);
        }
        Ok(job)
    }

    /// The progress, status and error of a `query-jobs` entry.
    fn take(&mut self, job: &Value) {
        let number = |key: &str| job.get(key).and_then(Value::as_u64);
        self.current = number("current-progress").unwrap_or(self.current);
        self.total = number("total-progress").unwrap_or(self.total);
        if let Some(kind) = job.get("type").and_then(Value::as_str) {
            self.kind = Some(kind.to_owned());
        }
        if let Some(error) = job.get("error").and_then(Value::as_str) {
            self.error = Some(error.to_owned());
        }
    }

    /// Concluded: its error while it is still listed, then dismissed (QEMU left it for
    /// someone to read).
    async fn conclude(&mut self, render: &Render) -> Result<(), CliError> {
        if self.lookup().await?.is_some() {
            if let Err(e) = call(self.global, self.client, "job-dismiss", json!({"id": self.id})).await {
                render.note(&format!("job-dismiss: {e}"));
            }
        }
        Ok(())
    }

    /// Once a second: the progress; `Some` when the job turns out to be over (or waiting).
    async fn poll(
        &mut self,
        events: &mut Subscription,
        render: &mut Render,
    ) -> Result<Option<End>, CliError> {
        match self.lookup().await? {
            Some(job) => {
                let now = Instant::now();
                if let Some((then, before)) = self.sample {
                    let secs = now.duration_since(then).as_secs_f64();
                    if secs > 0.0 {
                        self.rate = Some(self.current.saturating_sub(before) as f64 / secs);
                    }
                }
                self.sample = Some((now, self.current));
                let status = job.get("status").and_then(Value::as_str).unwrap_or("unknown").to_owned();
                if !matches!(self.status.as_str(), "cancelling") || status != "running" {
                    self.status = status.clone();
                }
                render.set_prefix(&format!("{} {}", self.kind.as_deref().unwrap_or("job"), self.id));
                render.progress(self.line(), self.current, self.total, self.message());
                // A status the events did not tell (`qmp job wait` on a job already there).
                match status.as_str() {
                    "ready" | "pending" | "concluded" => self.on_status(&status, render).await,
                    _ => Ok(None),
                }
            }
            None => {
                // Gone: the events queued before the answer tell how it ended.
                while let Some(event) = events.try_recv() {
                    let Ok(event) = event else { continue };
                    if let Some(end) = self.on_event(&event, render).await? {
                        return Ok(Some(end));
                    }
                }
                if self.seen {
                    Ok(Some(End::Concluded))
                } else {
                    Err(CliError::Failed(format!("no job {} (query-jobs does not list it)", self.id)))
                }
            }
        }
    }

    /// The progress as a JSON line.
    fn line(&self) -> Value {
        json!({
            "job": self.id,
            "type": self.kind,
            "status": self.status,
            "current": self.current,
            "total": self.total,
            "rate": self.rate.map(|r| r.round() as u64),
        })
    }

    /// The bar's message: the status when it is not plain running.
    fn message(&self) -> String {
        match self.status.as_str() {
            "running" if self.completing => "completing".into(),
            "running" => String::new(),
            other => other.to_owned(),
        }
    }

    /// Prints the final state and says how it went.
    fn finish(&self, end: End, cancelling: bool) -> Result<(), CliError> {
        let id = &self.id;
        let result = match end {
            End::Ready => "ready",
            End::Pending => "pending",
            End::Concluded if self.cancelled => "cancelled",
            End::Concluded if self.error.is_some() => {
                if cancelling {
                    "cancelled"
                } else {
                    "failed"
                }
            }
            End::Concluded => "completed",
        };
        let status = match end {
            End::Ready => "ready",
            End::Pending => "pending",
            End::Concluded => "concluded",
        };
        let mut state = json!({
            "job": id,
            "type": self.kind,
            "status": status,
            "result": result,
            "current": self.current,
            "total": self.total,
        });
        if let Some(error) = &self.error {
            state["error"] = json!(error);
        }
        crate::oneshot::print_json(self.global, &state)?;
        match (end, result) {
            (End::Ready, _) => {
                eprintln!(
                    "qmp: job {id} is ready and left running (a mirror goes on mirroring): complete it with \
                     `qmp job-complete id={id}`, or follow it to the end with `qmp job wait --complete {id}`"
                );
                Ok(())
            }
            (End::Pending, _) => {
                eprintln!("qmp: job {id} is pending, left waiting for `qmp job-finalize id={id}`");
                Ok(())
            }
            (_, _) if cancelling => Err(CliError::Interrupted(format!("interrupted; job {id} {result}"))),
            (_, "completed") => Ok(()),
            (_, "cancelled") => Err(CliError::Failed(format!("job {id} was cancelled"))),
            _ => Err(CliError::Failed(format!(
                "job {id} failed: {}",
                self.error.as_deref().unwrap_or("no error given")
            ))),
        }
    }
}

/// The job `qmp job wait` follows: `id` if listed, else the only one there is (the only
/// one not concluded, when there are several).
pub async fn pick(global: &GlobalOpts, client: &Client, id: Option<&str>) -> Result<String, CliError> {
    let jobs = call(global, client, "query-jobs", Value::Null).await?;
    let jobs = jobs.as_array().cloned().unwrap_or_default();
    let ids: Vec<&str> = jobs.iter().filter_map(|j| j["id"].as_str()).collect();
    let listed = if ids.is_empty() { "none".to_owned() } else { ids.join(", ") };
    if let Some(id) = id {
        return if ids.contains(&id) {
            Ok(id.to_owned())
        } else {
            Err(CliError::Failed(format!("no job {id} (query-jobs lists {listed})")))
        };
    }
    let live: Vec<&str> =
        jobs.iter().filter(|j| j["status"] != "concluded").filter_map(|j| j["id"].as_str()).collect();
    match (ids.as_slice(), live.as_slice()) {
        ([], _) => Err(CliError::Failed("no job to wait for (query-jobs lists none)".into())),
        ([only], _) | (_, [only]) => Ok((*only).to_owned()),
        _ => {
            Err(CliError::Usage(format!("there are several jobs ({listed}): say which, qmp job wait JOB-ID")))
        }
    }
}
