//! One connection: a task that owns the socket, cuts input, checks requests in QEMU's order,
//! runs commands, and writes replies and events in one batched write per turn.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinSet;

use crate::fds::{BytesOnly, ClientEvent, ConnRead, Context, MonitorId, Passed};
use crate::input::{Input, Item};
use crate::parse::parse_value;
use crate::qjson;
use crate::server::{Command, Handler, Inner, Reply, ReplyFuture};

/// In-band requests read ahead of the one running; reading pauses beyond this.
const MAX_QUEUED: usize = 64;

/// Output a turn may produce before it is written: beyond this no more requests are taken
/// until the client has read what is pending. Reading input stops while output is blocked,
/// as QEMU's monitor does, so a client that sends without reading holds at most this (plus
/// one reply, plus the events it lags by) and the input it sent, not every reply.
const MAX_PENDING_OUT: usize = 1 << 20;

/// How long a connection may still take to write what it owes once the server shuts down;
/// a client that is not reading is dropped after this instead of holding its task forever.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// An in-band item waiting its turn, with the stream offset just past its last byte (the
/// descriptors passed before that are due when it runs).
enum Job {
    /// A request to dispatch.
    Request(Value, u64),
    /// Input rejected before parsing finished (no id).
    Error(String, u64),
}

struct Conn {
    inner: Arc<Inner>,
    negotiated: bool,
    oob: bool,
    out: Vec<u8>,
    events: Option<broadcast::Receiver<Arc<[u8]>>>,
    queue: VecDeque<Job>,
    /// Whether `take_input` stopped with input possibly left in the buffer (the queue or
    /// the output was full); nothing more is read until it is taken.
    input_left: bool,
    /// The in-band command running, with its id.
    running: Option<(ReplyFuture, Option<Value>)>,
    oob_running: JoinSet<(Reply, Option<Value>)>,
    /// Descriptors the client passed (unix sockets only).
    passed: Passed,
    monitor: MonitorId,
}

/// What dispatching a request led to.
enum Outcome {
    Done(Reply, Option<Value>),
    Pending(ReplyFuture, Option<Value>),
}

pub(crate) async fn serve<S>(inner: Arc<Inner>, stream: S, monitor: MonitorId) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    serve_halves(inner, BytesOnly(rd), wr, monitor).await
}

/// Tells the server's [`ClientEvent`] hooks that a client left when dropped (a handler
/// that panics ends the connection too).
struct Served(Arc<Inner>, MonitorId);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.client_event(ClientEvent::Disconnected(self.1));
    }
}

/// Serves on separate read and write halves (lock-free `into_split` halves for sockets),
/// as a client of `monitor`.
pub(crate) async fn serve_halves<R, W>(
    inner: Arc<Inner>,
    mut rd: R,
    mut wr: W,
    monitor: MonitorId,
) -> io::Result<()>
where
    R: ConnRead,
    W: AsyncWrite + Unpin,
{
    inner.client_event(ClientEvent::Connected(monitor));
    // Dropped after `c` (declared before it): held descriptors are closed first.
    let _served = Served(inner.clone(), monitor);
    let mut stop = inner.shutdown.subscribe();
    let mut input = Input::new(inner.max_message_size);
    let mut c = Conn {
        out: inner.greeting.clone(),
        inner,
        negotiated: false,
        oob: false,
        events: None,
        queue: VecDeque::new(),
        input_left: false,
        running: None,
        oob_running: JoinSet::new(),
        passed: Passed::default(),
        monitor,
    };
    let mut eof = false;
    loop {
        // Input left buffered while the queue was full is taken as the queue drains.
        c.take_input(&mut input);
        c.run_queue();
        if !c.out.is_empty() {
            if !write_out(&mut wr, &c.out, &mut stop).await? {
                break;
            }
            c.out.clear();
            if c.out.capacity() > 1 << 20 {
                c.out.shrink_to(64 << 10);
            }
        }
        if *stop.borrow() {
            // Events emitted before the shutdown (SHUTDOWN itself) still go out.
            c.drain_events();
            write_out(&mut wr, &c.out, &mut stop).await?;
            break;
        }
        // The output was full and has been written: go on with what is waiting.
        let queue_ready = c.running.is_none() && !c.queue.is_empty();
        if queue_ready || (c.input_left && c.queue.len() < MAX_QUEUED) {
            continue;
        }
        if eof && c.running.is_none() && c.queue.is_empty() && c.oob_running.is_empty() {
            break;
        }
        let can_read = !eof && !c.input_left;
        tokio::select! {
            r = read_some(&mut rd, &mut input, &mut c.passed), if can_read => {
                match r {
                    Ok(0) | Err(_) => eof = true,
                    Ok(_) => {}
                }
            }
            (reply, id) = poll_running(&mut c.running), if c.running.is_some() => {
                c.running = None;
                c.drain_events();
                write_reply(&mut c.out, &reply, id.as_ref());
            }
            Some(done) = c.oob_running.join_next(), if !c.oob_running.is_empty() => {
                if let Ok((reply, id)) = done {
                    c.drain_events();
                    write_reply(&mut c.out, &reply, id.as_ref());
                }
            }
            ev = recv_event(&mut c.events), if c.events.is_some() => {
                if let Some(ev) = ev {
                    c.out.extend_from_slice(&ev);
                }
                c.drain_events();
            }
            _ = stop.wait_for(|v| *v) => {}
        }
    }
    let _ = wr.shutdown().await;
    Ok(())
}

/// Writes `out` whole. Once the server shuts down, a write that cannot finish gets
/// [`SHUTDOWN_GRACE`] more; then it is given up and `false` returned.
async fn write_out<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &[u8],
    stop: &mut watch::Receiver<bool>,
) -> io::Result<bool> {
    let write = wr.write_all(out);
    tokio::pin!(write);
    // The guard wait_for returns is dropped here, not held across the grace period.
    let stopped = async { drop(stop.wait_for(|v| *v).await) };
    tokio::select! {
        biased;
        r = &mut write => return r.map(|()| true),
        () = stopped => {}
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, write).await {
        Ok(r) => r.map(|()| true),
        Err(_) => Ok(false),
    }
}

/// Reads some input, and the descriptors passed with it (due from where that read began).
async fn read_some<R: ConnRead>(rd: &mut R, input: &mut Input, passed: &mut Passed) -> io::Result<usize> {
    let at = input.received();
    let mut fds = Vec::new();
    let read = rd.read_into(input, &mut fds).await;
    passed.arrive(at, fds);
    read
}

async fn poll_running(running: &mut Option<(ReplyFuture, Option<Value>)>) -> (Reply, Option<Value>) {
    match running {
        Some((fut, id)) => {
            let reply = fut.await;
            (reply, id.take())
        }
        None => std::future::pending().await,
    }
}

async fn recv_event(rx: &mut Option<broadcast::Receiver<Arc<[u8]>>>) -> Option<Arc<[u8]>> {
    let rx = rx.as_mut()?;
    loop {
        match rx.recv().await {
            Ok(ev) => return Some(ev),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!("a slow QMP client lost {n} events");
            }
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}

impl Conn {
    /// Cuts what was read into jobs; `exec-oob` requests run at once when oob is on. Stops
    /// (setting `input_left`) while the queue or the output is full.
    fn take_input(&mut self, input: &mut Input) {
        self.input_left = false;
        loop {
            if self.queue.len() >= MAX_QUEUED {
                self.run_queue();
            }
            if self.queue.len() >= MAX_QUEUED || self.out.len() >= MAX_PENDING_OUT {
                // Leave the rest buffered until the queue drains and the output is written.
                self.input_left = true;
                return;
            }
            let Some(item) = input.next_item() else { return };
            let parsed = match item {
                Item::Error(e) => Err(e),
                Item::Value { bytes, single_quoted } => parse_value(bytes, single_quoted),
            };
            let end = input.scanned();
            let job = match parsed {
                Ok(v) => Job::Request(v, end),
                Err(e) => Job::Error(e, end),
            };
            let is_oob = |v: &Value| v.get("exec-oob").is_some() && v.get("execute").is_none();
            match job {
                Job::Request(req, end) if self.oob && is_oob(&req) => match self.dispatch(req, end) {
                    Outcome::Done(reply, id) => {
                        self.drain_events();
                        write_reply(&mut self.out, &reply, id.as_ref());
                    }
                    Outcome::Pending(fut, id) => {
                        self.oob_running.spawn(async move { (fut.await, id) });
                    }
                },
                job => self.queue.push_back(job),
            }
        }
    }

    /// Runs queued in-band jobs in order until one has to wait or the output is full.
    fn run_queue(&mut self) {
        while self.running.is_none() && self.out.len() < MAX_PENDING_OUT {
            let Some(job) = self.queue.pop_front() else { break };
            match job {
                Job::Error(desc, end) => {
                    self.passed.due(end);
                    let err = QmpError::new(ErrorClass::GenericError, desc);
                    write_reply(&mut self.out, &Err(err), None);
                }
                Job::Request(req, end) => match self.dispatch(req, end) {
                    Outcome::Done(reply, id) => {
                        self.drain_events();
                        write_reply(&mut self.out, &reply, id.as_ref());
                    }
                    Outcome::Pending(fut, id) => self.running = Some((fut, id)),
                },
            }
        }
    }

    /// Events already emitted go out before the reply being written (QEMU sends STOP
    /// before `stop`'s reply).
    fn drain_events(&mut self) {
        if let Some(rx) = &mut self.events {
            loop {
                match rx.try_recv() {
                    Ok(ev) => self.out.extend_from_slice(&ev),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        tracing::warn!("a slow QMP client lost {n} events");
                    }
                    Err(_) => break,
                }
            }
        }
    }

    /// QEMU's `qmp_dispatch`, check for check, for a request that ended just before stream
    /// offset `end`.
    fn dispatch(&mut self, req: Value, end: u64) -> Outcome {
        self.passed.due(end);
        let Value::Object(mut obj) = req else {
            return Outcome::Done(Err(generic("QMP input must be a JSON object")), None);
        };
        let id = obj.remove("id");
        let fail = |desc: String, id| Outcome::Done(Err(generic(desc)), id);
        if let Err(desc) = check_members(&obj, id.is_some(), self.oob) {
            return fail(desc, id);
        }
        let (name, oob) = match obj.get("execute") {
            Some(Value::String(s)) => (s.as_str(), false),
            _ => match obj.get("exec-oob") {
                Some(Value::String(s)) => (s.as_str(), true),
                _ => return fail("QMP input lacks member 'execute'".to_string(), id),
            },
        };
        let cmd = match self.find(name) {
            Some(cmd) => cmd,
            None => {
                let desc = if self.negotiated {
                    format!("The command {name} has not been found")
                } else {
                    "Expecting capabilities negotiation with 'qmp_capabilities'".into()
                };
                return Outcome::Done(Err(QmpError::new(ErrorClass::CommandNotFound, desc)), id);
            }
        };
        if oob && !cmd.allow_oob {
            return fail(format!("The command {name} does not support OOB"), id);
        }
        let args = match obj.remove("arguments") {
            Some(Value::Object(args)) => args,
            _ => Map::new(),
        };
        if let Err(e) = cmd.args.check(&args) {
            return Outcome::Done(Err(e), id);
        }
        match &cmd.handler {
            Handler::Sync(f) => Outcome::Done(f(args), id),
            Handler::Async(f) => Outcome::Pending(f(args), id),
            Handler::WithContext(f) => {
                let mut cx = Context { passed: &mut self.passed, monitor: self.monitor };
                Outcome::Done(f(args, &mut cx), id)
            }
            Handler::Capabilities => Outcome::Done(self.capabilities(&args), id),
        }
    }

    fn find(&self, name: &str) -> Option<Arc<Command>> {
        if !self.negotiated && name != "qmp_capabilities" {
            return None;
        }
        self.inner.commands.get(name).cloned()
    }

    fn capabilities(&mut self, args: &Map<String, Value>) -> Reply {
        if self.negotiated {
            return Err(QmpError::new(
                ErrorClass::CommandNotFound,
                "Capabilities negotiation is already complete, command ignored",
            ));
        }
        // The schema allows only "oob" here; QEMU names each unavailable one, repeats included.
        let wanted = args.get("enable").and_then(Value::as_array).map_or(0, Vec::len);
        let wants_oob = wanted > 0;
        if wants_oob && !self.inner.oob {
            let list = vec!["oob"; wanted].join(", ");
            return Err(generic(format!("Capability {list} not available")));
        }
        self.oob = wants_oob;
        self.negotiated = true;
        self.events = Some(self.inner.events.subscribe());
        Ok(Value::Object(Map::new()))
    }
}

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

/// QEMU's `qmp_dispatch_check_obj`: members in `QDict` order, first problem wins.
pub(crate) fn check_members(obj: &Map<String, Value>, has_id: bool, allow_oob: bool) -> Result<(), String> {
    let mut members: Vec<(u32, &str, &Value)> =
        obj.iter().map(|(k, v)| (qjson::qdict_bucket(k), k.as_str(), v)).collect();
    if has_id {
        // "id" is skipped wherever it sits.
        static NULL: Value = Value::Null;
        members.push((qjson::qdict_bucket("id"), "id", &NULL));
    }
    members.sort_by_key(|m| m.0);
    let mut exec_key: Option<&str> = None;
    for (_, key, value) in members {
        match key {
            "execute" | "exec-oob" if key == "execute" || allow_oob => {
                if !value.is_string() {
                    return Err(format!("QMP input member '{key}' must be a string"));
                }
                if let Some(first) = exec_key {
                    return Err(format!("QMP input member '{key}' clashes with '{first}'"));
                }
                exec_key = Some(key);
            }
            "arguments" => {
                if !value.is_object() {
                    return Err("QMP input member 'arguments' must be an object".into());
                }
            }
            "id" => {}
            _ => return Err(format!("QMP input member '{key}' is unexpected")),
        }
    }
    if exec_key.is_none() {
        return Err("QMP input lacks member 'execute'".into());
    }
    Ok(())
}

/// Writes `{"return": v, "id": id}` or `{"id": id, "error": {...}}` in QEMU's format.
pub(crate) fn write_reply(out: &mut Vec<u8>, reply: &Reply, id: Option<&Value>) {
    match reply {
        Ok(v) => {
            out.extend_from_slice(b"{\"return\": ");
            qjson::write_value(out, v);
            if let Some(id) = id {
                out.extend_from_slice(b", \"id\": ");
                qjson::write_value(out, id);
            }
        }
        Err(e) => {
            out.push(b'{');
            if let Some(id) = id {
                out.extend_from_slice(b"\"id\": ");
                qjson::write_value(out, id);
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(b"\"error\": ");
            let mut err = Map::with_capacity(2 + e.extra.len());
            err.insert("class".into(), Value::String(e.class.as_str().into()));
            err.insert("desc".into(), Value::String(e.desc.clone()));
            for (k, v) in e.extra.iter() {
                err.insert(k.clone(), v.clone());
            }
            qjson::write_object(out, &err);
        }
    }
    out.extend_from_slice(b"}\r\n");
}
