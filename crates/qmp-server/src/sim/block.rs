//! Simulated block layer: nodes (`file`, `qcow2`, `null-co`) and block jobs (stream, commit,
//! mirror) that progress at their `speed` in simulated time, with QEMU 7.2's event sequences.

use std::collections::BTreeMap;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Value};

use super::bitmap::Bitmaps;
use super::image::{file_length, image_info, Qcow2};
use crate::server::{Args, Events, Reply};

/// The copy rate of a job with `speed: 0` (QEMU's "unlimited"), in bytes per simulated second.
const UNLIMITED_RATE: f64 = 4.0 * 1024.0 * 1024.0 * 1024.0;

pub(crate) struct Node {
    driver: String,
    /// As QEMU reports it: the image's path, or `json:{...}` when that does not say how the
    /// node was opened (see [`Block::add`]).
    filename: String,
    /// The path of the image on disk (empty for `null-co`).
    path: String,
    /// QEMU's "full open options" of the node, as the JSON text it prints them in: what a
    /// parent's `json:` filename nests.
    options: String,
    size: u64,
    /// Nodes this one holds (its `file` and `backing` children).
    children: Vec<String>,
    seq: u64,
    /// A qcow2 node's header.
    qcow2: Option<Qcow2>,
    /// Opened with `read-only`.
    read_only: bool,
}

impl Node {
    /// Its backing child (a format node's second child).
    fn backing(&self) -> Option<&String> {
        self.children.get(1)
    }

    /// The child QEMU shows below it in a whole chain: a format node's backing, a filter's
    /// only child.
    fn chain_child(&self) -> Option<&String> {
        match self.driver.as_str() {
            COPY_ON_READ => self.children.first(),
            _ => self.backing(),
        }
    }
}

/// The driver of the filter node QEMU puts above a streamed node while the job runs.
const COPY_ON_READ: &str = "copy-on-read";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Stream,
    Commit,
    Mirror,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Stream => "stream",
            Kind::Commit => "commit",
            Kind::Mirror => "mirror",
        }
    }
}

pub(crate) struct Job {
    id: String,
    kind: Kind,
    node: String,
    len: u64,
    offset: f64,
    speed: i64,
    status: &'static str,
    paused: bool,
    auto_dismiss: bool,
    /// Goes on to READY instead of finishing (mirror, active commit).
    needs_complete: bool,
    /// Set by block-job-complete (or a cancel once ready): finish at the next tick.
    finishing: bool,
    error: Option<String>,
    /// A stream's copy-on-read filter node, while the job runs.
    filter: Option<String>,
    /// A stream's `base-node`: what the node is left backed by.
    base: Option<String>,
}

#[derive(Default)]
pub(crate) struct Block {
    nodes: BTreeMap<String, Node>,
    jobs: Vec<Job>,
    next_seq: u64,
    bitmaps: Bitmaps,
    /// Nodes QEMU made and named itself (`#blockNNNRR`) so far.
    implicit: u64,
}

/// The block nodes the simulator holds at most. QEMU has no such limit, but a chain of
/// nodes whose `json:` filenames nest each other grows as its length squared, and a chain's
/// image info nests as deep as the chain (built and printed recursively).
const MAX_NODES: usize = 1024;

/// The room QEMU has for a node name, its terminating NUL included.
const NODE_NAME_SIZE: usize = 32;

/// QEMU's rule for ids and node names: an ASCII letter, then ASCII letters, digits, `-`,
/// `.` and `_`.
pub(crate) fn id_wellformed(id: &str) -> bool {
    let mut bytes = id.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

fn status_change(ev: &Events, job: &mut Job, status: &'static str) {
    job.status = status;
    ev.emit("JOB_STATUS_CHANGE", Some(json!({"status": status, "id": job.id})));
}

fn job_event(ev: &Events, name: &str, job: &Job) {
    let data = json!({"device": job.id, "len": job.len, "offset": job.offset as u64, "speed": job.speed, "type": job.kind.as_str()});
    ev.emit(name, Some(data));
}

impl Block {
    pub fn add(&mut self, args: &Args) -> Reply {
        let driver = args["driver"].as_str().unwrap_or_default().to_string();
        let name = match args.get("node-name").and_then(Value::as_str) {
            Some(n) => n.to_string(),
            None => return Err(generic("'node-name' must be specified for the root node")),
        };
        // A format's `file` child is opened before the node's own name is checked; its
        // backing child after.
        let file = if driver == "qcow2" { Some(self.child_ref(args.get("file"))?) } else { None };
        if !id_wellformed(&name) {
            return Err(generic(format!("Invalid node-name: '{name}'")));
        }
        if self.nodes.contains_key(&name) {
            return Err(generic(format!("Duplicate nodes with node-name='{name}'")));
        }
        if name.len() >= NODE_NAME_SIZE {
            return Err(generic("Node name too long"));
        }
        if self.nodes.len() >= MAX_NODES {
            return Err(generic(format!("The simulator holds at most {MAX_NODES} block nodes")));
        }
        let mut children = Vec::new();
        let mut qcow2 = None;
        let (filename, path, options, size) = match driver.as_str() {
            "file" => {
                let filename = args["filename"].as_str().unwrap_or_default().to_string();
                let meta = std::fs::metadata(&filename).map_err(|e| {
                    let text = std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(2)).to_string();
                    let text = text.split(" (os error").next().unwrap_or_default().to_string();
                    generic(format!("Could not open '{filename}': {text}"))
                })?;
                let options = qjson_text(&json!({"driver": "file", "filename": filename}));
                (filename.clone(), filename, options, file_length(&meta))
            }
            "null-co" => match args.get("size").and_then(Value::as_u64) {
                // QEMU names a null node given options by them.
                Some(size) => {
                    let options = qjson_text(&json!({"driver": "null-co", "size": size}));
                    (format!("json:{options}"), String::new(), options, size)
                }
                None => (
                    "null-co://".to_string(),
                    String::new(),
                    qjson_text(&json!({"driver": "null-co"})),
                    1 << 30,
                ),
            },
            "qcow2" => {
                let file = file.unwrap_or_default();
                let (path, file_options) =
                    (self.nodes[&file].path.clone(), self.nodes[&file].options.clone());
                let header = Qcow2::read(&path).ok_or_else(|| generic("Image is not in qcow2 format"))?;
                let size = header.size;
                children.push(file);
                if let Some(b) = args.get("backing").filter(|b| !b.is_null()) {
                    children.push(self.child_ref(Some(b))?);
                }
                let (filename, options) =
                    self.qcow2_names(&path, &file_options, children.get(1), header.backing.as_ref());
                qcow2 = Some(header);
                (filename, path, options, size)
            }
            other => return Err(generic(format!("Driver '{other}' is not supported by the simulator"))),
        };
        self.next_seq += 1;
        let read_only = args.get("read-only").and_then(Value::as_bool).unwrap_or(false);
        let node =
            Node { driver, filename, path, options, size, children, seq: self.next_seq, qcow2, read_only };
        self.nodes.insert(name, node);
        Ok(json!({}))
    }

    /// A qcow2 node's filename and open options. QEMU's bdrv_backing_overridden: when the
    /// backing is not the one the header names (its string as stored, against the backing
    /// node's filename), or the header names one and there is none, only a `json:` filename
    /// says how the node was opened.
    fn qcow2_names(
        &self,
        path: &str,
        file_options: &str,
        backing: Option<&String>,
        stored: Option<&String>,
    ) -> (String, String) {
        let backing = backing.and_then(|b| self.nodes.get(b));
        let overridden = match (backing, stored) {
            (Some(b), Some(stored)) => *stored != b.filename,
            (Some(_), None) | (None, Some(_)) => true,
            (None, None) => false,
        };
        // The members in QEMU's order (QDict buckets): backing, driver, file.
        let options = match (overridden, backing) {
            (false, _) => format!("{{\"driver\": \"qcow2\", \"file\": {file_options}}}"),
            (true, b) => format!(
                "{{\"backing\": {}, \"driver\": \"qcow2\", \"file\": {file_options}}}",
                b.map_or("null", |b| b.options.as_str())
            ),
        };
        let filename = if overridden { format!("json:{options}") } else { path.to_string() };
        (filename, options)
    }

    fn child_ref(&self, r: Option<&Value>) -> Result<String, QmpError> {
        match r {
            Some(Value::String(n)) if self.nodes.contains_key(n) => Ok(n.clone()),
            Some(Value::String(n)) => Err(generic(format!("Cannot find device='{n}' nor node-name='{n}'"))),
            _ => Err(generic("The simulator needs child nodes given by node-name")),
        }
    }

    /// Whether a node of that name exists.
    /// Whether node `name` was opened read-only; `None` when there is no such node.
    pub fn read_only(&self, name: &str) -> Option<bool> {
        self.nodes.get(name).map(|n| n.read_only)
    }

    pub fn del(&mut self, args: &Args) -> Reply {
        let name = args["node-name"].as_str().unwrap_or_default();
        if !self.nodes.contains_key(name) {
            return Err(generic(format!("Failed to find node with node-name='{name}'")));
        }
        self.check_not_busy(name)?;
        if self.nodes.values().any(|n| n.children.iter().any(|c| c == name)) {
            return Err(generic(format!("Block device {name} is in use")));
        }
        self.nodes.remove(name);
        self.bitmaps.node_deleted(name);
        Ok(json!({}))
    }

    /// `node` and every node below it.
    fn subtree(&self, node: &str, out: &mut Vec<String>) {
        if out.iter().any(|n| n == node) {
            return;
        }
        out.push(node.to_string());
        if let Some(n) = self.nodes.get(node) {
            for c in &n.children {
                self.subtree(c, out);
            }
        }
    }

    /// A job blocks its node and the whole chain below it until it is dismissed.
    fn check_not_busy(&self, node: &str) -> Result<(), QmpError> {
        let busy = |j: &&Job| {
            let mut chain = Vec::new();
            self.subtree(&j.node, &mut chain);
            chain.iter().any(|n| n == node)
        };
        match self.jobs.iter().find(busy) {
            Some(j) => Err(generic(format!(
                "Node '{node}' is busy: block device is in use by block job: {}",
                j.kind.as_str()
            ))),
            None => Ok(()),
        }
    }

    /// A node's `image`; with `whole`, its backing chain's images nested within it.
    fn image(&self, n: &Node, whole: bool) -> Value {
        // The chain is as long as the nodes are (each added after its backing): bounded.
        // Recursion as deep as the chain: at most MAX_NODES.
        let below = n.chain_child().filter(|_| whole).and_then(|b| self.nodes.get(b));
        if n.driver == COPY_ON_READ {
            // A filter: its child's cluster size, its child's chain below it.
            let mut info = image_info(&n.driver, &n.filename, &n.path, n.size, None, None);
            let child = n.children.first().and_then(|c| self.nodes.get(c));
            if let (Value::Object(m), Some(q)) = (&mut info, child.and_then(|c| c.qcow2.as_ref())) {
                m.insert("cluster-size".into(), json!(1u64 << q.cluster_bits.min(31)));
            }
            if let (Value::Object(m), Some(b)) = (&mut info, below) {
                m.insert("backing-image".into(), self.image(b, whole));
            }
            return info;
        }
        let backing = below.map(|b| self.image(b, whole));
        image_info(&n.driver, &n.filename, &n.path, n.size, n.qcow2.as_ref(), backing)
    }

    pub fn named_nodes(&self, args: &Args) -> Reply {
        let flat = args.get("flat").and_then(Value::as_bool).unwrap_or(false);
        let mut nodes: Vec<(&String, &Node)> = self.nodes.iter().collect();
        nodes.sort_by_key(|(_, n)| std::cmp::Reverse(n.seq));
        let list: Vec<Value> = nodes.into_iter().map(|(name, n)| self.device_info(name, n, flat)).collect();
        Ok(Value::Array(list))
    }

    /// A node as `query-named-block-nodes` lists it, and as `query-block` shows the node a
    /// device's backend has inserted (always with its whole chain there).
    fn device_info(&self, name: &str, n: &Node, flat: bool) -> Value {
        // QEMU walks the chain for its depth only when it shows the chain whole.
        let mut depth = 0;
        let mut at = n;
        while let Some(b) = at.chain_child().and_then(|b| self.nodes.get(b)).filter(|_| !flat) {
            depth += 1;
            at = b;
        }
        // Inserted in the schema's member order, which sets QEMU's output order.
        let mut v = serde_json::Map::new();
        v.insert("file".into(), json!(n.filename));
        v.insert("node-name".into(), json!(name));
        v.insert("ro".into(), json!(n.read_only));
        v.insert("drv".into(), json!(n.driver));
        // The backing node's filename (not the header's string), when there is one.
        if let Some(backing) = n.backing().and_then(|b| self.nodes.get(b)) {
            v.insert("backing_file".into(), json!(backing.filename));
        }
        v.insert("backing_file_depth".into(), json!(depth));
        v.insert("encrypted".into(), json!(false));
        v.insert("detect_zeroes".into(), json!("off"));
        for limit in ["bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"] {
            v.insert(limit.into(), json!(0));
        }
        v.insert("image".into(), self.image(n, !flat));
        v.insert("cache".into(), json!({"writeback": true, "direct": false, "no-flush": false}));
        v.insert("write_threshold".into(), json!(0));
        if let Some(bitmaps) = self.bitmaps.info(name) {
            v.insert("dirty-bitmaps".into(), bitmaps);
        }
        Value::Object(v)
    }

    /// `inserted` of `query-block` for a backend on `node`, if it exists.
    pub fn inserted(&self, node: &str) -> Option<Value> {
        self.nodes.get(node).map(|n| self.device_info(node, n, false))
    }

    /// The bitmaps, and a lookup of a node's driver beside them (borrowed apart).
    pub fn bitmaps(&mut self) -> (&mut Bitmaps, impl Fn(&str) -> Option<String> + '_) {
        let nodes = &self.nodes;
        (&mut self.bitmaps, move |n: &str| nodes.get(n).map(|x| x.driver.clone()))
    }

    /// block-stream, block-commit and blockdev-mirror.
    pub fn start_job(&mut self, ev: &Events, kind: Kind, args: &Args) -> Reply {
        let device = args["device"].as_str().unwrap_or_default().to_string();
        let Some(node) = self.nodes.get(&device) else {
            return Err(generic(format!("Cannot find device='{device}' nor node-name='{device}'")));
        };
        let mut len = node.size;
        let mut needs_complete = kind == Kind::Mirror;
        if kind == Kind::Mirror {
            let target = args["target"].as_str().unwrap_or_default();
            if !self.nodes.contains_key(target) {
                return Err(generic(format!("Cannot find device='{target}' nor node-name='{target}'")));
            }
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
            if top == device {
                // Committing the active layer is a mirror of nothing new: ready at once.
                needs_complete = true;
                len = 0;
            }
        }
        self.check_not_busy(&device)?;
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
            needs_complete,
            finishing: false,
            error: None,
            filter: None,
            base: args.get("base-node").and_then(Value::as_str).map(str::to_string),
        };
        if kind == Kind::Stream {
            job.filter = Some(self.add_filter(&job.node));
        }
        ev.emit("JOB_STATUS_CHANGE", Some(json!({"status": "created", "id": job.id})));
        status_change(ev, &mut job, "running");
        if len == 0 && needs_complete {
            status_change(ev, &mut job, "ready");
            job_event(ev, "BLOCK_JOB_READY", &job);
        }
        self.jobs.push(job);
        Ok(json!({}))
    }

    fn job(&mut self, id: &str) -> Result<&mut Job, QmpError> {
        self.jobs
            .iter_mut()
            .find(|j| j.id == id)
            .ok_or_else(|| QmpError::new(ErrorClass::DeviceNotActive, format!("Block job '{id}' not found")))
    }

    fn verb_error(job: &Job, verb: &str) -> QmpError {
        generic(format!("Job '{}' in state '{}' cannot accept command verb '{verb}'", job.id, job.status))
    }

    pub fn cancel(&mut self, ev: &Events, args: &Args) -> Reply {
        let force = args.get("force").and_then(Value::as_bool).unwrap_or(false);
        let job = self.job(args["device"].as_str().unwrap_or_default())?;
        if matches!(job.status, "concluded" | "null" | "waiting" | "pending" | "aborting") {
            return Err(Self::verb_error(job, "cancel"));
        }
        if job.status == "ready" && !force {
            // A ready mirror cancelled without force completes without pivoting.
            job.finishing = true;
            return Ok(json!({}));
        }
        status_change(ev, job, "aborting");
        job_event(ev, "BLOCK_JOB_CANCELLED", job);
        job.error = Some("Operation canceled".into());
        let filter = job.filter.take();
        status_change(ev, job, "concluded");
        if job.auto_dismiss {
            status_change(ev, job, "null");
        }
        if let Some(f) = filter {
            self.nodes.remove(&f);
        }
        self.jobs.retain(|j| j.status != "null");
        Ok(json!({}))
    }

    pub fn complete(&mut self, args: &Args) -> Reply {
        let job = self.job(args["device"].as_str().unwrap_or_default())?;
        if job.status != "ready" {
            return Err(Self::verb_error(job, "complete"));
        }
        job.finishing = true;
        Ok(json!({}))
    }

    pub fn pause(&mut self, ev: &Events, args: &Args) -> Reply {
        let job = self.job(args["device"].as_str().unwrap_or_default())?;
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

    pub fn resume(&mut self, ev: &Events, args: &Args) -> Reply {
        let job = self.job(args["device"].as_str().unwrap_or_default())?;
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
        let job = self.job(args["device"].as_str().unwrap_or_default())?;
        if speed < 0 {
            return Err(generic("Parameter 'speed' expects a non-negative value"));
        }
        job.speed = speed;
        Ok(json!({}))
    }

    pub fn dismiss(&mut self, ev: &Events, args: &Args) -> Reply {
        let id = args["id"].as_str().unwrap_or_default();
        let Some(job) = self.jobs.iter_mut().find(|j| j.id == id) else {
            return Err(generic("Job not found"));
        };
        if job.status != "concluded" {
            return Err(Self::verb_error(job, "dismiss"));
        }
        status_change(ev, job, "null");
        self.jobs.retain(|j| j.status != "null");
        Ok(json!({}))
    }

    pub fn query_block_jobs(&self) -> Reply {
        let list: Vec<Value> = self
            .jobs
            .iter()
            .map(|j| {
                let mut v = json!({
                    "auto-finalize": true, "io-status": "ok", "device": j.id, "auto-dismiss": j.auto_dismiss,
                    "busy": false, "len": j.len, "offset": j.offset as u64,
                    "status": j.status, "paused": j.paused, "speed": j.speed,
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
        self.jobs.iter().any(|j| j.status == "null" || (!j.paused && (j.finishing || j.status == "running")))
    }

    /// The copy-on-read filter QEMU puts above `node` for a stream: listed among the
    /// nodes, named as QEMU names the nodes it makes (`#block`, a counter, two digits QEMU
    /// picks at random: here from the counter).
    fn add_filter(&mut self, node: &str) -> String {
        let name = format!("#block{}{:02}", self.implicit, (self.implicit * 37 + 11) % 100);
        self.implicit += 1;
        let below = &self.nodes[node];
        let options = format!("{{\"driver\": \"{COPY_ON_READ}\", \"file\": {}}}", below.options);
        self.next_seq += 1;
        let filter = Node {
            driver: COPY_ON_READ.into(),
            filename: below.filename.clone(),
            path: below.path.clone(),
            options,
            size: below.size,
            children: vec![node.to_string()],
            seq: self.next_seq,
            qcow2: None,
            read_only: below.read_only,
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
        let file_options = n.children.first().and_then(|f| self.nodes.get(f)).map(|f| f.options.clone());
        if let (Some(file_options), Some(q)) = (file_options, n.qcow2.as_ref()) {
            let (filename, options) =
                self.qcow2_names(&n.path, &file_options, n.backing(), q.backing.as_ref());
            if let Some(n) = self.nodes.get_mut(node) {
                (n.filename, n.options) = (filename, options);
            }
        }
    }

    /// Advances every running job by `dt` simulated seconds.
    pub fn tick(&mut self, ev: &Events, dt: f64) {
        let mut streamed = Vec::new();
        for job in &mut self.jobs {
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
                job.finishing = false;
                status_change(ev, job, "waiting");
                status_change(ev, job, "pending");
                job_event(ev, "BLOCK_JOB_COMPLETED", job);
                if job.kind == Kind::Stream {
                    streamed.push((job.node.clone(), job.filter.take(), job.base.clone()));
                }
                status_change(ev, job, "concluded");
                if job.auto_dismiss {
                    status_change(ev, job, "null");
                }
            }
        }
        self.jobs.retain(|j| j.status != "null");
        for (node, filter, base) in streamed {
            self.stream_done(&node, filter, base);
        }
    }
}

pub(crate) use Kind as JobKind;

/// `value` as QEMU prints it.
fn qjson_text(value: &Value) -> String {
    let mut out = Vec::new();
    crate::qjson::write_value(&mut out, value);
    String::from_utf8(out).unwrap_or_default()
}
