//! Simulated block layer: nodes (`file`, `raw`, `qcow2`, `null-co`, `null-aio`) and block
//! jobs (stream, commit, mirror, in [`jobs`]) that progress at their `speed` in simulated
//! time, with QEMU 7.2's event sequences.

mod inline;
mod jobs;
mod perms;

use std::collections::BTreeMap;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{json, Map, Value};

use super::bitmap::Bitmaps;
use super::image::{file_length, image_info, Qcow2};
use super::raw;
use crate::server::{Args, Reply};
use perms::Perms;

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
    /// Its `detect-zeroes` option, as QEMU reports it.
    detect_zeroes: String,
    /// What it needs of its file child and does not let others do.
    perms: Perms,
    /// Made by the monitor (`blockdev-add`), not inline as another node's child.
    owned: bool,
    /// Its `cache.direct` and `cache.no-flush`.
    cache: (bool, bool),
}

impl Node {
    /// Its backing child (a format node's second child).
    fn backing(&self) -> Option<&String> {
        self.children.get(1)
    }

    /// The child QEMU shows below it in a whole chain: a format node's backing, a filter's
    /// only child.
    fn chain_child(&self) -> Option<&String> {
        if is_filter(&self.driver) {
            self.children.first()
        } else {
            self.backing()
        }
    }
}

/// The driver of the filter node QEMU puts above a streamed node while the job runs.
const COPY_ON_READ: &str = "copy-on-read";
/// The driver of the filter node QEMU puts above a mirrored node while the job runs.
const MIRROR_TOP: &str = "mirror_top";

/// Whether `driver` is one of the filters jobs insert.
fn is_filter(driver: &str) -> bool {
    matches!(driver, COPY_ON_READ | MIRROR_TOP)
}

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
    /// Off: the job stops at `pending` (BLOCK_JOB_PENDING) until job-finalize.
    auto_finalize: bool,
    /// Cancelled while it ran: it aborts at the next tick, after the reply, as in QEMU.
    cancelling: bool,
    /// Goes on to READY instead of finishing (mirror, active commit).
    needs_complete: bool,
    /// Set by block-job-complete (or a cancel once ready): finish at the next tick.
    finishing: bool,
    error: Option<String>,
    /// The filter node a stream (copy-on-read) or a mirror (mirror_top) puts above its
    /// node, while the job runs.
    filter: Option<String>,
    /// A mirror's target node, which the job holds.
    target: Option<String>,
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

impl Block {
    /// `blockdev-add`.
    pub fn add(&mut self, args: &Args) -> Reply {
        // QEMU reads the whole request, inline children included, before opening anything.
        inline::check(args)?;
        let Some(name) = args.get("node-name").and_then(Value::as_str) else {
            return Err(generic("'node-name' must be specified for the root node"));
        };
        let before = self.next_seq;
        match self.open(args, Some(name), true, 0) {
            Ok(_) => Ok(json!({})),
            Err(e) => {
                // The inline children opened for it go with it.
                self.nodes.retain(|_, n| n.owned || n.seq <= before);
                Err(e)
            }
        }
    }

    /// Opens a node (and first its inline children), named `name` or implicitly; `owned`
    /// when the monitor made it (not an inline child). Returns its name.
    fn open(
        &mut self,
        args: &Map<String, Value>,
        name: Option<&str>,
        owned: bool,
        depth: usize,
    ) -> Result<String, QmpError> {
        let driver = args["driver"].as_str().unwrap_or_default().to_string();
        let read_only = args.get("read-only").and_then(Value::as_bool).unwrap_or(false);
        let flag = |name: &str| args.get("cache").and_then(|c| c.get(name)).and_then(Value::as_bool);
        let cache = (flag("direct").unwrap_or(false), flag("no-flush").unwrap_or(false));
        // A format's `file` child is opened before the node's own name is checked; its
        // backing child after.
        let is_format = matches!(driver.as_str(), "qcow2" | "raw");
        let file = if is_format { Some(self.child(args.get("file"), args, depth)?) } else { None };
        let detect_zeroes = args.get("detect-zeroes").and_then(Value::as_str).unwrap_or("off").to_string();
        if detect_zeroes == "unmap" && args.get("discard").and_then(Value::as_str) != Some("unmap") {
            return Err(generic(
                "setting detect-zeroes to unmap is not allowed without setting discard operation to unmap",
            ));
        }
        let name = match name {
            Some(name) => {
                if !id_wellformed(name) {
                    return Err(generic(format!("Invalid node-name: '{name}'")));
                }
                if self.nodes.contains_key(name) {
                    return Err(generic(format!("Duplicate nodes with node-name='{name}'")));
                }
                if name.len() >= NODE_NAME_SIZE {
                    return Err(generic("Node name too long"));
                }
                name.to_string()
            }
            None => self.implicit_name(),
        };
        if self.nodes.len() >= MAX_NODES {
            return Err(generic(format!("The simulator holds at most {MAX_NODES} block nodes")));
        }
        let mut children = Vec::new();
        let mut qcow2 = None;
        let mut perms = Perms::default();
        let (filename, path, options, size) = match driver.as_str() {
            "file" => {
                let filename = args["filename"].as_str().unwrap_or_default().to_string();
                let meta = std::fs::metadata(&filename)
                    .map_err(|e| generic(format!("Could not open '{filename}': {}", super::strerror(&e))))?;
                // Checked once the file is open.
                if args.get("aio").and_then(Value::as_str) == Some("native") && !cache.0 {
                    return Err(generic(
                        "aio=native was specified, but it requires cache.direct=on, which was not specified.",
                    ));
                }
                let options = qjson_text(&json!({"driver": "file", "filename": filename}));
                (filename.clone(), filename, options, file_length(&meta))
            }
            "null-co" | "null-aio" => match args.get("size").and_then(Value::as_u64) {
                // QEMU names a null node given options by them.
                Some(size) => {
                    let options = qjson_text(&json!({"driver": driver, "size": size}));
                    (format!("json:{options}"), String::new(), options, size)
                }
                None => {
                    (format!("{driver}://"), String::new(), qjson_text(&json!({"driver": driver})), 1 << 30)
                }
            },
            "raw" => {
                let file = file.unwrap_or_default();
                let window = raw::Window::read(args)?;
                perms = Perms::of("raw", read_only, !window.shares_resize());
                self.check_file_perms(&file, &name, perms)?;
                let child = &self.nodes[&file];
                let opened = raw::open(
                    window,
                    raw::Child {
                        filename: &child.filename,
                        options: &child.options,
                        size: child.size,
                        protocol: is_protocol(&child.driver),
                    },
                )?;
                let path = child.path.clone();
                children.push(file);
                let (filename, options, size) = opened;
                (filename, path, options, size)
            }
            "qcow2" => {
                let file = file.unwrap_or_default();
                perms = Perms::of("qcow2", read_only, false);
                self.check_file_perms(&file, &name, perms)?;
                let (path, file_options) =
                    (self.nodes[&file].path.clone(), self.nodes[&file].options.clone());
                let header = Qcow2::read(&path).ok_or_else(|| generic("Image is not in qcow2 format"))?;
                let size = header.size;
                children.push(file);
                if let Some(b) = args.get("backing").filter(|b| !b.is_null()) {
                    children.push(self.child(Some(b), args, depth)?);
                }
                let protocol = is_protocol(&self.nodes[&children[0]].driver);
                let (filename, options) = self.qcow2_names(
                    &path,
                    &file_options,
                    protocol,
                    children.get(1),
                    header.backing.as_ref(),
                );
                qcow2 = Some(header);
                (filename, path, options, size)
            }
            other => return Err(generic(format!("Driver '{other}' is not supported by the simulator"))),
        };
        self.next_seq += 1;
        let seq = self.next_seq;
        let node = Node {
            driver,
            filename,
            path,
            options,
            size,
            children,
            seq,
            qcow2,
            read_only,
            detect_zeroes,
            perms,
            owned,
            cache,
        };
        self.nodes.insert(name.clone(), node);
        Ok(name)
    }

    /// QEMU's name for a node it makes itself: `#block`, its counter, two random digits.
    fn implicit_name(&mut self) -> String {
        let name = format!("#block{}{:02}", self.implicit, (self.implicit * 37 + 11) % 100);
        self.implicit += 1;
        name
    }

    /// A child given by node name, or inline: opened now, inheriting `read-only` and the
    /// `cache` flags from `parent` (its own arguments) where it sets none of its own.
    fn child(
        &mut self,
        r: Option<&Value>,
        parent: &Map<String, Value>,
        depth: usize,
    ) -> Result<String, QmpError> {
        let Some(Value::Object(inline)) = r else { return self.child_ref(r) };
        let name = inline.get("node-name").and_then(Value::as_str).map(str::to_owned);
        let mut inherited = inline.clone();
        if let Some(ro) = parent.get("read-only").filter(|_| !inline.contains_key("read-only")) {
            inherited.insert("read-only".into(), ro.clone());
        }
        if let Some(Value::Object(cache)) = parent.get("cache") {
            let own = inherited.entry("cache").or_insert_with(|| json!({}));
            if let Value::Object(own) = own {
                for (flag, v) in cache {
                    own.entry(flag.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        self.open(&inherited, name.as_deref(), false, depth + 1)
    }

    /// A qcow2 node's filename and open options. QEMU's bdrv_backing_overridden: when the
    /// backing is not the one the header names (its string as stored, against the backing
    /// node's filename), or the header names one and there is none, only a `json:` filename
    /// says how the node was opened.
    fn qcow2_names(
        &self,
        path: &str,
        file_options: &str,
        file_is_protocol: bool,
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
        // Only a protocol child's name is the format node's own (QEMU's bdrv_refresh_filename).
        let filename =
            if overridden || !file_is_protocol { format!("json:{options}") } else { path.to_string() };
        (filename, options)
    }

    /// [`perms::check`] of a new node `name` over `file` against the nodes already using it.
    fn check_file_perms(&self, file: &str, name: &str, new: Perms) -> Result<(), QmpError> {
        let mut users: Vec<(&String, &Node)> =
            self.nodes.iter().filter(|(_, n)| n.children.first().is_some_and(|c| c == file)).collect();
        users.sort_by_key(|(_, n)| std::cmp::Reverse(n.seq));
        perms::check(file, name, new, users.into_iter().map(|(u, n)| (u.as_str(), n.perms)))
    }

    fn child_ref(&self, r: Option<&Value>) -> Result<String, QmpError> {
        match r {
            Some(Value::String(n)) if self.nodes.contains_key(n) => Ok(n.clone()),
            Some(Value::String(n)) => Err(generic(format!("Cannot find device='{n}' nor node-name='{n}'"))),
            _ => Err(generic("Invalid parameter type for 'file', expected: BlockdevRef")),
        }
    }

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
        if !self.nodes[name].owned {
            return Err(generic(format!("Node {name} is not owned by the monitor")));
        }
        if self.nodes.values().any(|n| n.children.iter().any(|c| c == name)) {
            return Err(generic(format!("Block device {name} is in use")));
        }
        // Its inline children go with it, and theirs, unless another node holds them.
        let mut gone = vec![name.to_string()];
        while let Some(node) = gone.pop() {
            let Some(n) = self.nodes.remove(&node) else { continue };
            self.bitmaps.node_deleted(&node);
            for child in n.children {
                let held = self.nodes.values().any(|p| p.children.contains(&child));
                if !held && self.nodes.get(&child).is_some_and(|c| !c.owned) {
                    gone.push(child);
                }
            }
        }
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
        // A mirror (or active commit) lets go of its nodes as it ends; other jobs hold them
        // until they are dismissed.
        let holds = |j: &&Job| !(j.needs_complete && j.status == "concluded");
        let busy = |j: &&Job| holds(j) && (busy(j) || j.target.as_deref() == Some(node));
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
        if is_filter(&n.driver) {
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
        v.insert("detect_zeroes".into(), json!(n.detect_zeroes));
        for limit in ["bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr"] {
            v.insert(limit.into(), json!(0));
        }
        v.insert("image".into(), self.image(n, !flat));
        v.insert("cache".into(), json!({"writeback": true, "direct": n.cache.0, "no-flush": n.cache.1}));
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
}

pub(crate) use jobs::Verbs as JobVerbs;
pub(crate) use Kind as JobKind;

/// Whether nodes of `driver` open a protocol (QEMU's `bdrv_file_open`), rather than a format
/// or a filter over another node.
fn is_protocol(driver: &str) -> bool {
    matches!(driver, "file" | "null-co" | "null-aio")
}

/// `value` as QEMU prints it.
fn qjson_text(value: &Value) -> String {
    let mut out = Vec::new();
    crate::qjson::write_value(&mut out, value);
    String::from_utf8(out).unwrap_or_default()
}
