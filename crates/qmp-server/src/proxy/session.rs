//! One downstream client: its own negotiation, ids and policy, with its requests forwarded
//! to a [`Backend`] (the upstream QEMU, or a recording being replayed).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use qmp_proto::{ErrorClass, QmpError};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::unix::OwnedReadHalf;
use tokio::net::UnixStream;

use super::policy::Policy;
use super::record::{Direction, Peer, Recorder};
pub(crate) use super::upstream::{Answer, Upward};
use crate::conn::{check_members, write_reply};
use crate::input::{Input, Item};
use crate::parse::parse_value;
use crate::qjson;
use crate::schema::{Struct, Ty};

/// Requests of one client in flight (forwarded or waiting their turn); reading its input
/// pauses beyond this.
const MAX_INFLIGHT: usize = 1024;

/// How long output still owed is given once the session has to end (upstream gone).
const FINAL_FLUSH: Duration = Duration::from_millis(50);

/// What a session forwards to.
pub(crate) trait Backend: Send + 'static {
    /// The greeting line to send first.
    fn greeting(&self) -> Vec<u8>;
    /// Whether the greeting offers `oob`.
    fn offers_oob(&self) -> bool;
    /// The client negotiated: events go to it from now on.
    fn negotiated(&mut self);
    /// Sends request number `call`, in order, with the fds the client passed for it.
    fn call(
        &mut self,
        call: u64,
        name: &str,
        args: Option<&Map<String, Value>>,
        oob: bool,
        fds: Vec<OwnedFd>,
    );
    /// The next event or answer, in the order the server sent them; `None` when the
    /// session must end (the server went away, a strict replay's mismatch).
    fn next(&mut self) -> impl Future<Output = Option<Upward>> + Send + '_;
    /// The next event or answer if one is already there, without waiting.
    fn try_next(&mut self) -> Option<Upward> {
        None
    }
    /// True when a message for this session had to be dropped (it could not keep up).
    fn lost(&self) -> bool;
}

/// Per-listener settings a session needs.
#[derive(Clone)]
pub(crate) struct SessionConfig {
    pub policy: Arc<Policy>,
    pub backlog: usize,
    pub max_message_size: usize,
    pub record: Option<Arc<Recorder>>,
    /// The proxy's call numbers: the ids forwarded requests are rewritten to.
    pub calls: Arc<AtomicU64>,
    /// Clients served at once on the socket; the next is refused with a QMP error.
    pub max_clients: usize,
}

enum Pending {
    /// An answer made by the proxy itself, to go out in its turn.
    Ready(Vec<u8>, Option<Value>),
    /// A forwarded in-band request: its call number and the client's id.
    Call(u64, Option<Value>),
}

struct Session<B> {
    backend: B,
    cfg: SessionConfig,
    peer: Peer,
    out: Vec<u8>,
    pos: usize,
    queue: VecDeque<Pending>,
    /// Forwarded `exec-oob` requests: call number → the client's id.
    oob_calls: HashMap<u64, Option<Value>>,
    negotiated: bool,
    oob: bool,
    /// Descriptors the client passed (SCM_RIGHTS), for its next `getfd` or `add-fd`.
    fds: Vec<OwnedFd>,
}

/// How many events and answers already waiting are taken at once, after the first.
const UPWARD_BATCH: usize = 256;

/// Serves one client until it goes, falls too far behind, or the backend ends.
pub(crate) async fn run<B: Backend>(backend: B, stream: UnixStream, cfg: SessionConfig, peer: Peer) {
    let (rd, mut wr) = stream.into_split();
    let mut input = Input::new(cfg.max_message_size);
    let mut s = Session {
        out: Vec::new(),
        pos: 0,
        queue: VecDeque::new(),
        oob_calls: HashMap::new(),
        negotiated: false,
        oob: false,
        fds: Vec::new(),
        peer,
        cfg,
        backend,
    };
    let greeting = s.backend.greeting();
    s.emit(&greeting, None, None);
    let mut eof = false;
    loop {
        s.take_input(&mut input);
        s.flush_ready();
        let owed = s.out.len() - s.pos;
        if owed > s.cfg.backlog || s.backend.lost() {
            tracing::warn!(
                client = s.peer.client,
                uid = s.peer.uid,
                pid = s.peer.pid,
                "QMP proxy: client {} is not reading ({owed} bytes owed, the backlog is {}); disconnecting it",
                s.peer.client,
                s.cfg.backlog
            );
            break;
        }
        if eof && s.queue.is_empty() && s.oob_calls.is_empty() && owed == 0 {
            break;
        }
        let want_read = !eof && s.inflight() < MAX_INFLIGHT;
        // Unbiased: a flood of events must not starve the writes, nor writes the events.
        tokio::select! {
            up = s.backend.next() => match up {
                Some(up) => {
                    s.upward(up);
                    // perf: what else has come goes out in the same write (64 in flight
                    // through the proxy to the fast peer: 6.3-6.9 µs a call before).
                    for _ in 0..UPWARD_BATCH {
                        let Some(up) = s.backend.try_next() else { break };
                        s.upward(up);
                    }
                }
                None => {
                    let _ = tokio::time::timeout(FINAL_FLUSH, wr.write_all(&s.out[s.pos..])).await;
                    break;
                }
            },
            r = wr.write(&s.out[s.pos..]), if s.pos < s.out.len() => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => s.wrote(n),
            },
            r = read_some(&rd, &mut input, &mut s.fds), if want_read => if matches!(r, Ok(0) | Err(_)) {
                eof = true;
            },
        }
    }
    let _ = wr.shutdown().await;
}

/// Reads what the client sent, and any descriptors passed with it (SCM_RIGHTS; more than
/// [`MAX_FDS`](crate::fds::MAX_FDS) waiting are closed).
async fn read_some(rd: &OwnedReadHalf, input: &mut Input, fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    crate::fds::read_unix(rd.as_ref(), input, fds).await
}

impl<B: Backend> Session<B> {
    fn inflight(&self) -> usize {
        self.queue.len() + self.oob_calls.len()
    }

    /// Appends a message for the client (and to the record).
    fn upward(&mut self, up: Upward) {
        match up {
            Upward::Event(ev) => self.emit(&ev, None, None),
            Upward::Reply(call, answer) => self.answer(call, answer),
        }
    }

    fn emit(&mut self, bytes: &[u8], id: Option<&Value>, call: Option<u64>) {
        if let Some(rec) = &self.cfg.record {
            rec.write_bytes(&self.peer, Direction::Out, id, call, bytes);
        }
        self.out.extend_from_slice(bytes);
    }

    fn wrote(&mut self, n: usize) {
        self.pos += n;
        if self.pos == self.out.len() {
            self.out.clear();
            self.pos = 0;
            if self.out.capacity() > 1 << 20 {
                self.out.shrink_to(64 << 10);
            }
        } else if self.pos > 1 << 20 {
            self.out.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Answers made by the proxy go out once everything before them has.
    fn flush_ready(&mut self) {
        while let Some(Pending::Ready(..)) = self.queue.front() {
            if let Some(Pending::Ready(bytes, id)) = self.queue.pop_front() {
                self.emit(&bytes, id.as_ref(), None);
            }
        }
    }

    /// Request `call` was answered: the reply goes out with the client's own id.
    fn answer(&mut self, call: u64, answer: Answer) {
        let id = if let Some(id) = self.oob_calls.remove(&call) {
            id
        } else {
            let at = self.queue.iter().position(|p| matches!(p, Pending::Call(c, _) if *c == call));
            match at.and_then(|i| self.queue.remove(i)) {
                Some(Pending::Call(_, id)) => id,
                _ => return,
            }
        };
        let mut reply = Vec::new();
        match answer {
            Answer::Return(raw) => {
                reply.extend_from_slice(b"{\"return\": ");
                reply.extend_from_slice(&raw);
                if let Some(id) = &id {
                    reply.extend_from_slice(b", \"id\": ");
                    qjson::write_value(&mut reply, id);
                }
                reply.push(b'}');
            }
            Answer::Error(raw) => {
                reply.push(b'{');
                if let Some(id) = &id {
                    reply.extend_from_slice(b"\"id\": ");
                    qjson::write_value(&mut reply, id);
                    reply.extend_from_slice(b", ");
                }
                reply.extend_from_slice(b"\"error\": ");
                reply.extend_from_slice(&raw);
                reply.push(b'}');
            }
        }
        reply.extend_from_slice(b"\r\n");
        self.emit(&reply, id.as_ref(), Some(call));
        self.flush_ready();
    }

    fn take_input(&mut self, input: &mut Input) {
        while self.inflight() < MAX_INFLIGHT {
            let (value, bad) = match input.next_item() {
                None => return,
                Some(Item::Error(e)) => (None, e),
                Some(Item::Value { bytes, single_quoted }) => match parse_value(bytes, single_quoted) {
                    Ok(v) => (Some(v), String::new()),
                    Err(e) => (None, e),
                },
            };
            match value {
                Some(v) => self.request(v),
                None => {
                    if let Some(rec) = &self.cfg.record {
                        rec.write(
                            &self.peer,
                            Direction::In,
                            None,
                            None,
                            serde_json::json!({"bad-input": bad}),
                        );
                    }
                    self.local(Err(generic(bad)), None);
                }
            }
        }
    }

    /// Queues an answer of the proxy's own.
    fn local(&mut self, reply: Result<Value, QmpError>, id: Option<Value>) {
        let mut bytes = Vec::new();
        write_reply(&mut bytes, &reply, id.as_ref());
        self.queue.push_back(Pending::Ready(bytes, id));
    }

    /// One request, checked in QEMU's order; forwarded, or answered here.
    fn request(&mut self, req: Value) {
        let record = |s: &Self, id: Option<&Value>, call: Option<u64>, req: &Option<Value>| {
            if let (Some(rec), Some(req)) = (&s.cfg.record, req) {
                rec.write(&s.peer, Direction::In, id, call, req.clone());
            }
        };
        let Value::Object(mut obj) = req else {
            record(self, None, None, &Some(req));
            return self.local(Err(generic("QMP input must be a JSON object")), None);
        };
        let id = obj.get("id").cloned();
        // The request as sent, for the record only.
        let whole = self.cfg.record.is_some().then(|| Value::Object(obj.clone()));
        obj.remove("id");
        if let Err(desc) = check_members(&obj, id.is_some(), self.oob) {
            record(self, id.as_ref(), None, &whole);
            return self.local(Err(generic(desc)), id);
        }
        let (name, is_oob) = match (obj.get("execute"), obj.get("exec-oob")) {
            (Some(Value::String(s)), _) => (s.clone(), false),
            (_, Some(Value::String(s))) => (s.clone(), true),
            // check_members saw to one of them being a string.
            _ => return self.local(Err(generic("QMP input lacks member 'execute'")), id),
        };
        let args = match obj.remove("arguments") {
            Some(Value::Object(a)) => Some(a),
            _ => None,
        };
        if name == "qmp_capabilities" || !self.negotiated {
            record(self, id.as_ref(), None, &whole);
            let reply = self.capabilities(&name, is_oob, args.unwrap_or_default());
            return self.local(reply, id);
        }
        if !self.cfg.policy.permits(&name) {
            record(self, id.as_ref(), None, &whole);
            let desc =
                format!("The command {name} has been refused by the QMP proxy's policy for this socket");
            return self.local(Err(generic(desc)), id);
        }
        let call = self.cfg.calls.fetch_add(1, Ordering::Relaxed) + 1;
        record(self, id.as_ref(), Some(call), &whole);
        // QEMU takes passed descriptors with getfd and add-fd; others leave them waiting.
        let fds =
            if name == "getfd" || name == "add-fd" { std::mem::take(&mut self.fds) } else { Vec::new() };
        self.backend.call(call, &name, args.as_ref(), is_oob, fds);
        if is_oob {
            self.oob_calls.insert(call, id);
        } else {
            self.queue.push_back(Pending::Call(call, id));
        }
    }

    /// Negotiation, per client, as QEMU does it.
    fn capabilities(
        &mut self,
        name: &str,
        is_oob: bool,
        args: Map<String, Value>,
    ) -> Result<Value, QmpError> {
        let not_found = |desc: &str| Err(QmpError::new(ErrorClass::CommandNotFound, desc));
        if !self.negotiated && name != "qmp_capabilities" {
            return not_found("Expecting capabilities negotiation with 'qmp_capabilities'");
        }
        if is_oob {
            return Err(generic(format!("The command {name} does not support OOB")));
        }
        if self.negotiated {
            return not_found("Capabilities negotiation is already complete, command ignored");
        }
        let caps = Ty::array(Ty::enumeration("QMPCapability", ["oob"]));
        Struct::new().optional("enable", caps).check(&args)?;
        let wanted = args.get("enable").and_then(Value::as_array).map_or(0, Vec::len);
        if wanted > 0 && !self.backend.offers_oob() {
            return Err(generic(format!("Capability {} not available", vec!["oob"; wanted].join(", "))));
        }
        self.oob = wanted > 0;
        self.negotiated = true;
        self.backend.negotiated();
        Ok(Value::Object(Map::new()))
    }
}

fn generic(desc: impl Into<String>) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}
