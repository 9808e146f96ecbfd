//! The audit record: every message in both directions, one JSON object per line.

use std::io::{self, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

/// Who a recorded message was from or to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer {
    /// The proxy's number for the client, from 1 in the order they connected.
    pub client: u64,
    /// The client's user id (`SO_PEERCRED`), when known.
    pub uid: Option<u32>,
    /// The client's process id (`SO_PEERCRED`), when known.
    pub pid: Option<i32>,
}

/// Which way a recorded message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the proxy (`"in"`).
    In,
    /// From the proxy to the client (`"out"`).
    Out,
}

/// Writes the record to a file of mode 0600, a line per message:
///
/// ```text
/// {"time": 1764743523.123456, "client": 1, "uid": 1000, "pid": 4242, "dir": "in", "id": 1, "call": 7, "msg": {"execute": "stop", "id": 1}}
/// {"time": 1764743523.123701, "client": 1, "uid": 1000, "pid": 4242, "dir": "out", "msg": {"timestamp": {...}, "event": "STOP"}}
/// {"time": 1764743523.123790, "client": 1, "uid": 1000, "pid": 4242, "dir": "out", "id": 1, "call": 7, "msg": {"return": {}, "id": 1}}
/// ```
///
/// `id` is the client's own id (absent when it gave none); `call` is the proxy's number for
/// a request it forwarded upstream, the id it was rewritten to, on the request and on its
/// reply; requests the proxy answered itself (negotiation, policy, bad input) have none.
/// `msg` is the message as sent or received (a client's unparsable input is recorded as
/// `{"unparsed": "..."}`). Each line is written whole, under a lock, as it happens.
///
/// ```no_run
/// use qmp_server::proxy::Recorder;
/// let rec = Recorder::create("/var/log/vm1-qmp.jsonl".as_ref())?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Recorder {
    file: Mutex<io::BufWriter<std::fs::File>>,
}

impl Recorder {
    /// Creates (or truncates) `path` with mode 0600; a symlink there is refused.
    pub fn create(path: &Path) -> io::Result<Recorder> {
        let file = qmp_unix::open_private_append(path)?;
        file.set_len(0)?;
        Ok(Recorder { file: Mutex::new(io::BufWriter::new(file)) })
    }

    /// Appends one message.
    pub fn write(&self, peer: &Peer, dir: Direction, id: Option<&Value>, call: Option<u64>, msg: Value) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let mut line = Map::new();
        line.insert("time".into(), json!(now.as_secs_f64()));
        line.insert("client".into(), json!(peer.client));
        if let Some(uid) = peer.uid {
            line.insert("uid".into(), json!(uid));
        }
        if let Some(pid) = peer.pid {
            line.insert("pid".into(), json!(pid));
        }
        line.insert("dir".into(), json!(if dir == Direction::In { "in" } else { "out" }));
        if let Some(id) = id {
            line.insert("id".into(), id.clone());
        }
        if let Some(call) = call {
            line.insert("call".into(), json!(call));
        }
        line.insert("msg".into(), msg);
        let mut text = serde_json::to_vec(&Value::Object(line)).unwrap_or_default();
        text.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = file.write_all(&text).and_then(|()| file.flush()) {
            tracing::warn!("cannot write the QMP record: {e}");
        }
    }

    /// Appends one message given as the bytes sent (parsed for the record).
    pub(crate) fn write_bytes(
        &self,
        peer: &Peer,
        dir: Direction,
        id: Option<&Value>,
        call: Option<u64>,
        msg: &[u8],
    ) {
        let value = serde_json::from_slice(msg).unwrap_or_else(|_| unparsed(msg));
        self.write(peer, dir, id, call, value);
    }
}

/// How input that is not JSON is recorded.
pub(crate) fn unparsed(bytes: &[u8]) -> Value {
    json!({"unparsed": String::from_utf8_lossy(bytes)})
}
