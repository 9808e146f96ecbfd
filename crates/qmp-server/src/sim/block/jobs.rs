//! Block jobs: stream, commit and mirror, started on the simulator's nodes and moved on by
//! its clock at their `speed`, with QEMU 7.2's JOB_STATUS_CHANGE and BLOCK_JOB_* sequences.

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use super::{generic, id_wellformed, is_protocol, Block, Job, Kind, Node, COPY_ON_READ, MIRROR_TOP};
use crate::server::{Args, Events, Reply};

/// The copy rate of a job with `speed: 0` (QEMU's "unlimited"), in bytes per simulated second.
const UNLIMITED_RATE: f64 = 4.0 * 1024.0 * 1024.0 * 1024.0;

/// The job moves to `status`, and says so.
fn status_change(ev: &Events, job: &mut Job, status: &'static str) {
    job.status = status;
    ev.emit("JOB_STATUS_CHANGE", Some(json!({"status": status, "id": job.id})));
}

/// A BLOCK_JOB_* event about `job`.
fn job_event(ev: &Events, name: &str, job: &Job) {
    let data = json!({"device": job.id, "len": job.len, "offset": job.offset as u64, "speed": job.speed, "type": job.kind.as_str()});
    ev.emit(name, Some(data));
}

impl Block {
    /// block-stream, block-commit and blockdev-mirror.
    pub fn start_job(&mut self, ev: &Events, kind: Kind, args: &Args) -> Reply {
        let device = args["device"].as_str().unwrap_or_default().to_string();
        let Some(node) = self.nodes.get(&device) else {
            return Err(generic(format!("Cannot find device='{device}' nor node-name='{device}'")));
        };
        let mut len = node.size;
        if kind == Kind::Stream && node.backing().is_none() {
            // Nothing below to copy up: the job ends at once, having done nothing.
            len = 0;
        }
        let mut needs_complete = kind == Kind::Mirror;
        let mut target = None;
        if kind == Kind::Mirror {
            let name = args["target"].as_str().unwrap_or_default();
            if !self.nodes.contains_key(name) {
                return Err(generic(format!("Cannot find device='{name}' nor node-name='{name}'")));
            }
            target = Some(name.to_string());
        }
        if kind == Kind::Commit {
            // block-commit takes a root node only.
            if self.nodes.values().any(|n| n.children.contains(&device)) {
                return Err(generic("Need a root block node"));
            }
            if node.children.len() < 2 {
                return Err(generic("cannot commit an image into itself"));
            }
            let top = args.get("top-node").and_then(Value::as_str).unwrap_or(&device);
            if top != device && self.nodes.get(top).is_some_and(|t| t.backing().is_none()) {
                // The base defaults to the bottom of the chain: here the top node itself.
                return Err(generic("cannot commit an image into itself"));
            }
            if top == device {
                // Committing the active layer is a mirror of nothing new: ready at once.
                needs_complete = true;
                len = 0;
            }
        }
        self.check_not_busy(&device)?;
        if let Some(t) = &target {
            self.check_not_busy(t)?;
        }
        // Without a job-id QEMU takes the node's device name: the simulator's nodes have no
        // BlockBackend, so it is empty, and refused as an id.
        let id = args.get("job-id").and_then(Value::as_str).unwrap_or_default().to_string();
        if !id_wellformed(&id) {
            return Err(generic(format!("Invalid job ID '{id}'")));
        }
        if self.jobs.iter().any(|j| j.id == id) {
            return Err(generic(format!("Job ID '{id}' already in use")));
        }
        let speed = args.get("speed").and_then(Value::as_i64).unwrap_or(0);
        if speed < 0 {
            return Err(generic("Parameter 'speed' expects a non-negative value"));
        }
        let auto_dismiss = args.get("auto-dismiss").and_then(Value::as_bool).unwrap_or(true);
        let auto_finalize = args.get("auto-finalize").and_then(Value::as_bool).unwrap_or(true);
        let mut job = Job {
            id,
            kind,
            node: device,
            len,
            offset: 0.0,
            speed,
            status: "created",
            paused: false,
            auto_dismiss,
            auto_finalize,
            cancelling: false,
            needs_complete,
            finishing: false,
            error: None,
            filter: None,
            target,
            base: args.get("base-node").and_then(Value::as_str).map(str::to_string),
        };
        match kind {
            Kind::Stream => job.filter = Some(self.add_filter(&job.node, COPY_ON_READ)),
            Kind::Mirror => {
                job.filter = Some(self.add_filter(&job.node, MIRROR_TOP));
                let granularity = args.get("granularity").and_then(Value::as_u64).unwrap_or_else(|| {
                    // QEMU's default: the target's cluster size (at least 4 KiB), else 64 KiB.
                    let target = job.target.as_ref().and_then(|t| self.nodes.get(t));
                    let cluster =
                        target.and_then(|t| t.qcow2.as_ref()).map(|q| 1u64 << q.cluster_bits.min(31));
                    cluster.map_or(65536, |c| c.max(4096))
                });
                self.bitmaps.add_anonymous(&job.node, granularity);
            }
            Kind::Commit => {}
        }
        ev.emit("JOB_STATUS_CHANGE", Some(json!({"status": "created", "id": job.id})));
        status_change(ev, &mut job, "running");
        if len == 0 && needs_complete {
            status_change(ev, &mut job, "ready");
            job_event(ev, "BLOCK_JOB_READY", &job);
        }
        // A job with nothing to do never yields in QEMU: it ends inside the command, its
        // events all before the reply.
        let leftover = if len == 0 && !needs_complete { finish(ev, &mut job) } else { None };
        if job.status != "null" {
            self.jobs.push(job);
        }
        if let Some(leftover) = leftover {
            self.clean_up(leftover);
        }
        Ok(json!({}))
    }

    /// The job named `id`, or the error of the command family asking.
    fn job(&mut self, verbs: Verbs, id: &str) -> Result<&mut Job, QmpError> {
        let found = self.jobs.iter_mut().find(|j| j.id == id);
        found.ok_or_else(|| match verbs {
            Verbs::Block => QmpError::new(ErrorClass::DeviceNotActive, format!("Block job '{id}' not found")),
            Verbs::Job => generic("Job not found"),
        })
    }

    fn verb_error(job: &Job, verb: &str) -> QmpError {
        generic(format!("Job '{}' in state '{}' cannot accept command verb '{verb}'", job.id, job.status))
    }

    /// block-job-cancel (`force` as asked) and job-cancel (always forced). A paused job is
    /// resumed first. A mirror (or active commit) says it is aborting after the reply, as
    /// QEMU's waits for its copying to stop; a stream or commit aborts within the command, as
    /// does any job waiting at `pending`.
    pub fn cancel(&mut self, ev: &Events, verbs: Verbs, args: &Args) -> Reply {
        let force = verbs == Verbs::Job || args.get("force").and_then(Value::as_bool).unwrap_or(false);
        let job = self.job(verbs, verbs.id(args))?;
        if matches!(job.status, "concluded" | "null" | "waiting" | "aborting") || job.cancelling {
            return Err(Self::verb_error(job, "cancel"));
        }
        if job.status == "ready" && !force {
            // A ready mirror cancelled without force completes without pivoting.
            job.finishing = true;
            return Ok(json!({}));
        }
        if job.paused {
            job.paused = false;
            let next = if job.status == "standby" { "ready" } else { "running" };
            status_change(ev, job, next);
        }
        if job.needs_complete && job.status != "pending" {
            job.cancelling = true;
            return Ok(json!({}));
        }
        let leftover = abort(ev, job);
        self.jobs.retain(|j| j.status != "null");
        self.clean_up(leftover);
        Ok(json!({}))
    }

    pub fn complete(&mut self, verbs: Verbs, args: &Args) -> Reply {
        let job = self.job(verbs, verbs.id(args))?;
        if job.status != "ready" {
            return Err(Self::verb_error(job, "complete"));
        }
        job.finishing = true;
        Ok(json!({}))
    }

    /// block-job-finalize and job-finalize: a job held at `pending` by `auto-finalize: false`
    /// completes within the command.
    pub fn finalize(&mut self, ev: &Events, verbs: Verbs, args: &Args) -> Reply {
        let job = self.job(verbs, args["id"].as_str().unwrap_or_default())?;
        if job.status != "pending" {
            return Err(Self::verb_error(job, "finalize"));
        }
        let leftover = finalize(ev, job);
        self.jobs.retain(|j| j.status != "null");
        self.clean_up(leftover);
        Ok(json!({}))
    }

    pub fn pause(&mut self, ev: &Events, verbs: Verbs, args: &Args) -> Reply {
        let job = self.job(verbs, verbs.id(args))?;
        if !matches!(job.status, "created" | "running" | "paused" | "ready" | "standby") {
            return Err(Self::verb_error(job, "pause"));
        }
        if job.paused {
            return Err(generic("Job is already paused"));
        }
        job.paused = true;
        let next = if job.status == "ready" { "standby" } else { "paused" };
        status_change(ev, job, next);
        Ok(json!({}))
    }

    pub fn resume(&mut self, ev: &Events, verbs: Verbs, args: &Args) -> Reply {
        let job = self.job(verbs, verbs.id(args))?;
        if !matches!(job.status, "created" | "running" | "paused" | "ready" | "standby") {
            return Err(Self::verb_error(job, "resume"));
        }
        if !job.paused {
            return Err(generic("Can't resume a job that was not paused"));
        }
        job.paused = false;
        let next = if job.status == "standby" { "ready" } else { "running" };
        status_change(ev, job, next);
        Ok(json!({}))
    }

    pub fn set_speed(&mut self, args: &Args) -> Reply {
        let speed = args["speed"].as_i64().unwrap_or(0);
        let job = self.job(Verbs::Block, Verbs::Block.id(args))?;
        if speed < 0 {
            return Err(generic("Parameter 'speed' expects a non-negative value"));
        }
        job.speed = speed;
        Ok(json!({}))
    }

    /// block-job-dismiss and job-dismiss (both name the job `id`).
    pub fn dismiss(&mut self, ev: &Events, verbs: Verbs, args: &Args) -> Reply {
        let job = self.job(verbs, args["id"].as_str().unwrap_or_default())?;
        if job.status != "concluded" {
            return Err(Self::verb_error(job, "dismiss"));
        }
        status_change(ev, job, "null");
        self.jobs.retain(|j| j.status != "null");
        Ok(json!({}))
    }

    pub fn query_block_jobs(&self) -> Reply {
        // QEMU lists its jobs newest first.
        let list: Vec<Value> = self
            .jobs
            .iter()
            .rev()
            .map(|j| {
                // A mirror that has finished keeps its source drained until it is finalized,
                // which QEMU counts as paused.
                let paused = j.paused || (j.needs_complete && j.status == "pending");
                let mut v = json!({
                    "auto-finalize": j.auto_finalize, "io-status": "ok", "device": j.id, "auto-dismiss": j.auto_dismiss,
                    "busy": false, "len": j.len, "offset": j.offset as u64,
                    "status": j.status, "paused": paused, "speed": j.speed,
                    "ready": matches!(j.status, "ready" | "standby"), "type": j.kind.as_str(),
                });
                if let Some(e) = &j.error {
                    v["error"] = json!(e);
                }
                v
            })
            .collect();
        Ok(Value::Array(list))
    }

    pub fn query_jobs(&self) -> Reply {
        let list: Vec<Value> = self
            .jobs
            .iter()
            .rev()
            .map(|j| {
                let mut v = json!({"current-progress": j.offset as u64, "status": j.status,
                    "total-progress": j.len, "type": j.kind.as_str(), "id": j.id});
                if let Some(e) = &j.error {
                    v["error"] = json!(e);
                }
                v
            })
            .collect();
        Ok(Value::Array(list))
    }

    /// True while a tick would change something: a job runs or finishes, or a dismissed one
    /// is still to be removed.
    pub fn busy(&self) -> bool {
        self.jobs.iter().any(|j| {
            j.status == "null" || j.cancelling || (!j.paused && (j.finishing || j.status == "running"))
        })
    }

    /// The filter QEMU puts above `node` for a stream (copy-on-read) or a mirror
    /// (mirror_top): listed among the nodes, named as QEMU names the nodes it makes
    /// (`#block`, a counter, two digits QEMU picks at random: here from the counter).
    fn add_filter(&mut self, node: &str, driver: &str) -> String {
        let name = self.implicit_name();
        let below = &self.nodes[node];
        let options = format!("{{\"driver\": \"{driver}\", \"file\": {}}}", below.options);
        self.next_seq += 1;
        let filter = Node {
            driver: driver.into(),
            filename: below.filename.clone(),
            path: below.path.clone(),
            options,
            size: below.size,
            children: vec![node.to_string()],
            seq: self.next_seq,
            qcow2: None,
            read_only: below.read_only,
            detect_zeroes: "off".into(),
            perms: Default::default(),
            owned: false,
            cache: (false, false),
        };
        self.nodes.insert(name.clone(), filter);
        name
    }

    /// A stream finished: its filter goes, and the node is backed by the stream's base (or
    /// nothing), which its header now names.
    fn stream_done(&mut self, node: &str, filter: Option<String>, base: Option<String>) {
        if let Some(f) = filter {
            self.nodes.remove(&f);
        }
        let base_filename = base.as_ref().and_then(|b| self.nodes.get(b)).map(|b| b.filename.clone());
        let Some(n) = self.nodes.get_mut(node) else { return };
        n.children.truncate(1);
        n.children.extend(base.filter(|_| base_filename.is_some()));
        if let Some(q) = n.qcow2.as_mut() {
            q.backing = base_filename;
        }
        // Its filename follows (a parent's `json:` name, made before, is kept as it was).
        let n = &self.nodes[node];
        let file = n.children.first().and_then(|f| self.nodes.get(f));
        let file = file.map(|f| (f.options.clone(), is_protocol(&f.driver)));
        if let (Some((file_options, protocol)), Some(q)) = (file, n.qcow2.as_ref()) {
            let (filename, options) =
                self.qcow2_names(&n.path, &file_options, protocol, n.backing(), q.backing.as_ref());
            if let Some(n) = self.nodes.get_mut(node) {
                (n.filename, n.options) = (filename, options);
            }
        }
    }

    /// Advances every running job by `dt` simulated seconds.
    pub fn tick(&mut self, ev: &Events, dt: f64) {
        let mut leftovers = Vec::new();
        for job in &mut self.jobs {
            if job.cancelling {
                leftovers.push(abort(ev, job));
                continue;
            }
            if job.paused {
                continue;
            }
            if job.status == "running" {
                let rate = if job.speed > 0 { job.speed as f64 } else { UNLIMITED_RATE };
                job.offset = (job.offset + rate * dt).min(job.len as f64);
                if job.offset >= job.len as f64 {
                    if job.needs_complete {
                        status_change(ev, job, "ready");
                        job_event(ev, "BLOCK_JOB_READY", job);
                    } else {
                        job.finishing = true;
                    }
                }
            }
            if job.finishing {
                leftovers.extend(finish(ev, job));
            }
        }
        self.jobs.retain(|j| j.status != "null");
        for leftover in leftovers {
            self.clean_up(leftover);
        }
    }

    /// What a finished job's nodes become.
    fn clean_up(&mut self, leftover: Leftover) {
        match leftover {
            Leftover::Stream { node, filter, base } => self.stream_done(&node, filter, base),
            Leftover::Filter { filter, node } => {
                if let Some(filter) = filter {
                    self.nodes.remove(&filter);
                    self.bitmaps.remove_anonymous(&node);
                }
            }
        }
    }
}

/// What a job that has ended leaves to be done to the nodes once it is out of the list.
enum Leftover {
    /// A stream: its node's new backing is its base, and its filter goes.
    Stream { node: String, filter: Option<String>, base: Option<String> },
    /// A mirror or commit: its filter, if it has one, and with it the anonymous bitmap the
    /// job kept on `node`.
    Filter { filter: Option<String>, node: String },
}

/// Which family of commands names a job: `block-job-*` (by `device`, except dismiss and
/// finalize, unknown jobs DeviceNotActive) or `job-*` (by `id`, unknown jobs GenericError).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verbs {
    Block,
    Job,
}

impl Verbs {
    /// The job named in `args`.
    fn id(self, args: &Args) -> &str {
        let key = match self {
            Verbs::Block => "device",
            Verbs::Job => "id",
        };
        args[key].as_str().unwrap_or_default()
    }
}

/// `job` has done its work: waiting and pending, then on to [`finalize`] unless it waits
/// there for job-finalize (BLOCK_JOB_PENDING), as QEMU 7.2 says them.
fn finish(ev: &Events, job: &mut Job) -> Option<Leftover> {
    job.finishing = false;
    status_change(ev, job, "waiting");
    status_change(ev, job, "pending");
    if !job.auto_finalize {
        ev.emit("BLOCK_JOB_PENDING", Some(json!({"type": job.kind.as_str(), "id": job.id})));
        return None;
    }
    Some(finalize(ev, job))
}

/// BLOCK_JOB_COMPLETED, concluded, and null when the job dismisses itself.
fn finalize(ev: &Events, job: &mut Job) -> Leftover {
    job_event(ev, "BLOCK_JOB_COMPLETED", job);
    let leftover = match job.kind {
        Kind::Stream => {
            Leftover::Stream { node: job.node.clone(), filter: job.filter.take(), base: job.base.clone() }
        }
        _ => Leftover::Filter { filter: job.filter.take(), node: job.node.clone() },
    };
    status_change(ev, job, "concluded");
    if job.auto_dismiss {
        status_change(ev, job, "null");
    }
    leftover
}

/// A cancelled job: aborting, BLOCK_JOB_CANCELLED, concluded with QEMU's error, and null
/// when it dismisses itself; its filter goes and the chain is left as it was.
fn abort(ev: &Events, job: &mut Job) -> Leftover {
    job.cancelling = false;
    job.finishing = false;
    status_change(ev, job, "aborting");
    job_event(ev, "BLOCK_JOB_CANCELLED", job);
    job.error = Some("Operation canceled".into());
    status_change(ev, job, "concluded");
    if job.auto_dismiss {
        status_change(ev, job, "null");
    }
    Leftover::Filter { filter: job.filter.take(), node: job.node.clone() }
}
