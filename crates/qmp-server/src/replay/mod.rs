//! Replay: a recording made by the proxy ([`crate::proxy::Recorder`]) served as a
//! deterministic fake QEMU.
//!
//! Each client that connects gets the recorded greeting, negotiates as with QEMU, and is
//! answered from the recording: a request gets the recorded reply of the next recorded
//! request when it has the same command and arguments (its own id put on the reply), with
//! the events recorded around that request, in order (those QEMU sent before the reply
//! first, then the reply, then those that came after it, up to the next request). Each
//! client replays the recording from its start. A request that does not match gets a
//! `GenericError` naming what the recording expected, and with [`Replay::strict`] the
//! replay ends there.
//!
//! ```no_run
//! use qmp_server::replay::{Recording, Replay};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let recording = Recording::load("/var/log/vm1-qmp.jsonl".as_ref())?;
//! let server = Replay::new(recording).strict(true).bind("/tmp/fake-qemu.sock".as_ref())?;
//! server.serve().await?;   // Err at the first request the recording does not have
//! # Ok(()) }
//! ```

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::proxy::session::{Answer, Backend, SessionConfig, Upward};
use crate::proxy::{greeting_line, Listen, Policy};
use crate::qjson;

/// A recording, read and put in order for replay.
#[derive(Debug, Clone)]
pub struct Recording {
    greeting: Vec<u8>,
    oob: bool,
    /// Events recorded before the first request, sent after `qmp_capabilities`.
    prologue: Vec<Vec<u8>>,
    requests: Vec<Recorded>,
}

#[derive(Debug, Clone)]
struct Recorded {
    name: String,
    args: Map<String, Value>,
    before: Vec<Vec<u8>>,
    /// The reply's `return` or `error` member.
    answer: Option<Answer>,
    after: Vec<Vec<u8>>,
}

/// A recording that cannot be replayed, or a strict replay's mismatch.
#[derive(Debug)]
pub enum ReplayError {
    /// The file could not be read.
    Io(io::Error),
    /// A line is not what the proxy writes (1-based line number, what is wrong).
    Bad(usize, String),
    /// A strict replay got a request the recording does not have (the error sent for it).
    Mismatch(String),
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Io(e) => write!(f, "{e}"),
            ReplayError::Bad(line, what) => write!(f, "line {line}: {what}"),
            ReplayError::Mismatch(desc) => write!(f, "{desc}"),
        }
    }
}

impl std::error::Error for ReplayError {}

impl From<io::Error> for ReplayError {
    fn from(e: io::Error) -> Self {
        ReplayError::Io(e)
    }
}

impl Recording {
    /// Reads a record file.
    pub fn load(path: &Path) -> Result<Recording, ReplayError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display())))?;
        Recording::parse(&text)
    }

    /// Parses a record's lines.
    ///
    /// ```
    /// let rec = qmp_server::replay::Recording::parse(concat!(
    ///     r#"{"client": 1, "dir": "out", "msg": {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}}"#, "\n",
    ///     r#"{"client": 1, "dir": "in", "id": 1, "call": 1, "msg": {"execute": "query-status", "id": 1}}"#, "\n",
    ///     r#"{"client": 1, "dir": "out", "id": 1, "call": 1, "msg": {"return": {"status": "running"}, "id": 1}}"#, "\n",
    /// )).unwrap();
    /// assert_eq!(rec.len(), 1);
    /// ```
    pub fn parse(text: &str) -> Result<Recording, ReplayError> {
        let mut greeting = None;
        let mut prologue = Vec::new();
        let mut requests: Vec<Recorded> = Vec::new();
        let mut by_call: HashMap<u64, usize> = HashMap::new();
        let mut seen_events: HashSet<String> = HashSet::new();
        // Requests not answered yet (QEMU answers in-band requests in order, so an event
        // belongs before the first of them), and the last answered.
        let mut unanswered: BTreeSet<usize> = BTreeSet::new();
        let mut last_answered: Option<usize> = None;
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |what: &str| ReplayError::Bad(n + 1, what.to_string());
            let v: Value = serde_json::from_str(line).map_err(|e| bad(&format!("not JSON: {e}")))?;
            let msg = v.get("msg").ok_or_else(|| bad("no \"msg\""))?;
            let dir = v.get("dir").and_then(Value::as_str).ok_or_else(|| bad("no \"dir\""))?;
            let call = v.get("call").and_then(Value::as_u64);
            if let Some(g) = msg.get("QMP") {
                if greeting.is_none() {
                    let g: qmp::Greeting =
                        serde_json::from_value(g.clone()).map_err(|e| bad(&format!("bad greeting: {e}")))?;
                    greeting = Some((greeting_line(&g), g.offers_oob()));
                }
                continue;
            }
            match (dir, call) {
                ("in", Some(call)) => {
                    let name = msg
                        .get("execute")
                        .or_else(|| msg.get("exec-oob"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("a forwarded request without a command"))?;
                    let args = msg.get("arguments").and_then(Value::as_object).cloned().unwrap_or_default();
                    by_call.insert(call, requests.len());
                    unanswered.insert(requests.len());
                    requests.push(Recorded {
                        name: name.to_owned(),
                        args,
                        before: Vec::new(),
                        answer: None,
                        after: Vec::new(),
                    });
                }
                ("out", Some(call)) => {
                    let Some(&i) = by_call.get(&call) else { continue };
                    let mut raw = Vec::new();
                    let answer = if let Some(ret) = msg.get("return") {
                        qjson::write_value_as_read(&mut raw, ret);
                        Answer::Return(raw)
                    } else {
                        let err =
                            msg.get("error").ok_or_else(|| bad("a reply with neither return nor error"))?;
                        qjson::write_value_as_read(&mut raw, err);
                        Answer::Error(raw)
                    };
                    requests[i].answer = Some(answer);
                    unanswered.remove(&i);
                    last_answered = Some(i);
                }
                ("out", None) if msg.get("event").is_some() => {
                    // Every client was sent it: replay it once, where it first appears.
                    if !seen_events.insert(msg.to_string()) {
                        continue;
                    }
                    let mut bytes = Vec::new();
                    qjson::write_value_as_read(&mut bytes, msg);
                    bytes.extend_from_slice(b"\r\n");
                    match (unanswered.first(), last_answered) {
                        (Some(&i), _) => requests[i].before.push(bytes),
                        (None, Some(i)) => requests[i].after.push(bytes),
                        (None, None) => prologue.push(bytes),
                    }
                }
                _ => {}
            }
        }
        let Some((greeting, oob)) = greeting else {
            return Err(ReplayError::Bad(0, "the recording has no greeting".into()));
        };
        Ok(Recording { greeting, oob, prologue, requests })
    }

    /// How many forwarded requests it holds.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// True when it holds no request.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }
}

/// Serves a [`Recording`].
pub struct Replay {
    recording: Arc<Recording>,
    strict: bool,
}

impl Replay {
    /// A replay of `recording`.
    pub fn new(recording: Recording) -> Replay {
        Replay { recording: Arc::new(recording), strict: false }
    }

    /// End at the first request the recording does not have (default: answer it with an
    /// error and go on).
    pub fn strict(mut self, yes: bool) -> Replay {
        self.strict = yes;
        self
    }

    /// Binds the socket (mode 0600).
    pub fn bind(self, path: &Path) -> io::Result<ReplayServer> {
        let listener = crate::proxy::bind(&Listen::new(path))?;
        Ok(ReplayServer { replay: self, listener, path: path.to_path_buf() })
    }
}

/// A bound replay.
pub struct ReplayServer {
    replay: Replay,
    listener: tokio::net::UnixListener,
    path: std::path::PathBuf,
}

impl ReplayServer {
    /// Serves clients; returns (removing the socket) only in strict mode, at a mismatch.
    pub async fn serve(self) -> Result<(), ReplayError> {
        let mismatch = Arc::new(Mismatch { first: Mutex::new(None), notify: Notify::new() });
        let cfg = SessionConfig {
            policy: Arc::new(Policy::allow_all()),
            backlog: crate::proxy::DEFAULT_BACKLOG,
            max_message_size: 16 << 20,
            record: None,
            calls: Arc::new(AtomicU64::new(0)),
            max_clients: crate::DEFAULT_MAX_CONNECTIONS,
        };
        let (rec, strict, m) = (self.replay.recording.clone(), self.replay.strict, mismatch.clone());
        let make = move |_| ReplayBackend {
            rec: rec.clone(),
            cursor: 0,
            strict,
            mismatch: m.clone(),
            queue: VecDeque::new(),
            ended: false,
        };
        let serving = crate::proxy::accept_loop(self.listener, cfg, Arc::new(AtomicU64::new(0)), make);
        tokio::select! {
            () = serving => {}
            () = mismatch.notify.notified() => {}
        }
        // Let the client's session send the error before the socket goes.
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        let _ = std::fs::remove_file(&self.path);
        let first = mismatch.first.lock().unwrap_or_else(|p| p.into_inner()).take();
        Err(ReplayError::Mismatch(first.unwrap_or_default()))
    }
}

struct Mismatch {
    first: Mutex<Option<String>>,
    notify: Notify,
}

struct ReplayBackend {
    rec: Arc<Recording>,
    cursor: usize,
    strict: bool,
    mismatch: Arc<Mismatch>,
    /// What the server "sent", waiting for the session to take it.
    queue: VecDeque<Upward>,
    /// A strict replay's mismatch: the session ends once the queue is taken.
    ended: bool,
}

fn describe(name: &str, args: &Map<String, Value>) -> String {
    if args.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {}", Value::Object(args.clone()))
    }
}

fn events(list: &[Vec<u8>]) -> impl Iterator<Item = Upward> + '_ {
    list.iter().map(|e| Upward::Event(e.as_slice().into()))
}

impl Backend for ReplayBackend {
    fn greeting(&self) -> Vec<u8> {
        self.rec.greeting.clone()
    }

    fn offers_oob(&self) -> bool {
        self.rec.oob
    }

    fn negotiated(&mut self) {
        let rec = self.rec.clone();
        self.queue.extend(events(&rec.prologue));
    }

    fn call(
        &mut self,
        call: u64,
        name: &str,
        args: Option<&Map<String, Value>>,
        _oob: bool,
        _fds: Vec<std::os::fd::OwnedFd>,
    ) {
        let empty = Map::new();
        let args = args.unwrap_or(&empty);
        let rec = self.rec.clone();
        let next = rec.requests.get(self.cursor);
        match next {
            Some(r) if r.name == name && &r.args == args && r.answer.is_some() => {
                self.cursor += 1;
                self.queue.extend(events(&r.before));
                if let Some(answer) = r.answer.clone() {
                    self.queue.push_back(Upward::Reply(call, answer));
                }
                self.queue.extend(events(&r.after));
            }
            _ => {
                let expected = match next {
                    Some(r) => format!("the next recorded request is {}", describe(&r.name, &r.args)),
                    None => "the recording has no requests left".to_owned(),
                };
                let desc =
                    format!("Replay: {} is not in the recording here; {expected}", describe(name, args));
                if self.strict {
                    let mut first = self.mismatch.first.lock().unwrap_or_else(|p| p.into_inner());
                    first.get_or_insert_with(|| desc.clone());
                    self.mismatch.notify.notify_one();
                    self.ended = true;
                }
                let mut raw = Vec::new();
                let err = serde_json::json!({"class": "GenericError", "desc": desc});
                qjson::write_value(&mut raw, &err);
                self.queue.push_back(Upward::Reply(call, Answer::Error(raw)));
            }
        }
    }

    async fn next(&mut self) -> Option<Upward> {
        match self.queue.pop_front() {
            Some(up) => Some(up),
            None if self.ended => None,
            None => std::future::pending().await,
        }
    }

    fn lost(&self) -> bool {
        false
    }
}
