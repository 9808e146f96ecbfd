//! The fast peer: a minimal QMP responder, so that what the benchmarks measure is the client's
//! own cost. It sends a canned greeting and answers each request with a pre-encoded reply
//! carrying the request's `id`, found by a byte search rather than a JSON parse. Requests are
//! cut from the stream with `qmp_proto::Framer` (no newline needed, as QEMU accepts), and the
//! replies to one read go out in one write.
//!
//! Commands it knows (anything else gets the `query-status` reply):
//! - `qmp_capabilities` → `{}`;
//! - `query-qmp-schema` → the schema loaded with `--schema FILE` (an empty list without one);
//! - `bench-burst` with `{"count": N}` → N events, then `{}`.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;

use qmp_proto::Framer;

/// QEMU 7.2's greeting, as real QEMU sends it.
pub const GREETING: &[u8] =
    b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, \
\"package\": \"Debian 1:7.2+dfsg-7+deb12u18+b3\"}, \"capabilities\": [\"oob\"]}}\r\n";

/// The body of QEMU's reply to `query-status` on a running VM.
const STATUS: &[u8] = b"{\"status\": \"running\", \"singlestep\": false, \"running\": true}";

/// One event of a burst: a realistic job event, as QEMU formats it.
pub const EVENT: &[u8] = b"{\"timestamp\": {\"seconds\": 1764063000, \"microseconds\": 123456}, \
\"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"running\", \"id\": \"job0\"}}\r\n";

/// Serves `listener` until the process ends: one thread per connection.
pub fn serve(listener: UnixListener, schema: Option<&Path>) -> io::Result<()> {
    let schema: Arc<Vec<u8>> = Arc::new(match schema {
        Some(p) => {
            let text = std::fs::read(p)?;
            return_body_of(&text).ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: not a {{\"return\": ...}} reply", p.display()),
                )
            })?
        }
        None => b"[]".to_vec(),
    });
    for stream in listener.incoming() {
        let stream = stream?;
        let schema = Arc::clone(&schema);
        std::thread::spawn(move || {
            // A client that goes away mid-write is the normal end of a benchmark run.
            let _ = Conn::new(stream, schema).run();
        });
    }
    Ok(())
}

/// The `return` member's raw bytes of a captured `{"return": ..., "id": ...}` reply.
fn return_body_of(reply: &[u8]) -> Option<Vec<u8>> {
    let v: serde_json::Value = serde_json::from_slice(reply).ok()?;
    serde_json::to_vec(v.get("return")?).ok()
}

struct Conn {
    stream: UnixStream,
    framer: Framer,
    out: Vec<u8>,
    schema: Arc<Vec<u8>>,
}

impl Conn {
    fn new(stream: UnixStream, schema: Arc<Vec<u8>>) -> Self {
        Conn { stream, framer: Framer::new(), out: Vec::with_capacity(64 * 1024), schema }
    }

    fn run(mut self) -> io::Result<()> {
        self.stream.write_all(GREETING)?;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match self.stream.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.framer.extend(&buf[..n]);
            while let Some(frame) = self.framer.next_frame().map_err(|e| io::Error::other(e.to_string()))? {
                let req = frame.bytes;
                let id = field(req, b"\"id\"");
                if contains(req, b"\"bench-burst\"") {
                    let count =
                        field(req, b"\"count\"").and_then(|c| std::str::from_utf8(c).ok()?.parse().ok());
                    let count: usize = count.unwrap_or(0);
                    // Replies already queued go first, then the burst, then this reply.
                    self.stream.write_all(&self.out)?;
                    self.out.clear();
                    burst(&mut self.stream, count)?;
                    reply(&mut self.out, b"{}", id);
                } else if contains(req, b"\"qmp_capabilities\"") {
                    reply(&mut self.out, b"{}", id);
                } else if contains(req, b"\"query-qmp-schema\"") {
                    reply(&mut self.out, &self.schema, id);
                } else {
                    reply(&mut self.out, STATUS, id);
                }
            }
            if !self.out.is_empty() {
                self.stream.write_all(&self.out)?;
                self.out.clear();
            }
        }
    }
}

/// Writes `count` events in 64 KiB batches.
fn burst(stream: &mut UnixStream, count: usize) -> io::Result<()> {
    let per_batch = (64 * 1024) / EVENT.len();
    let batch: Vec<u8> = EVENT.repeat(per_batch);
    let mut left = count;
    while left > 0 {
        let n = left.min(per_batch);
        stream.write_all(&batch[..n * EVENT.len()])?;
        left -= n;
    }
    Ok(())
}

/// Appends `{"return": BODY, "id": ID}\r\n` (QEMU's member order and line end).
fn reply(out: &mut Vec<u8>, body: &[u8], id: Option<&[u8]>) {
    out.extend_from_slice(b"{\"return\": ");
    out.extend_from_slice(body);
    if let Some(id) = id {
        out.extend_from_slice(b", \"id\": ");
        out.extend_from_slice(id);
    }
    out.extend_from_slice(b"}\r\n");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The raw bytes of the value after `key` (a quoted member name): a string with its quotes,
/// or a scalar up to the next delimiter. Objects and arrays as ids are not needed here. This
/// is a byte search, not a parse: good enough for the requests the benchmark clients send
/// (the key is not expected inside another string).
pub fn field<'a>(req: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = find(req, key)? + key.len();
    let rest = &req[at..];
    let colon = rest.iter().position(|&b| b == b':')?;
    let rest = &rest[colon + 1..];
    let start = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &rest[start..];
    match rest.first()? {
        q @ (b'"' | b'\'') => {
            let mut i = 1;
            while i < rest.len() {
                match rest[i] {
                    b'\\' => i += 2,
                    b if b == *q => return Some(&rest[..=i]),
                    _ => i += 1,
                }
            }
            None
        }
        _ => {
            let end = rest.iter().position(|&b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace());
            Some(&rest[..end.unwrap_or(rest.len())])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ids_of_each_shape() {
        assert_eq!(field(br#"{"execute":"query-status","id":17}"#, b"\"id\""), Some(&b"17"[..]));
        assert_eq!(
            field(br#"{"execute": "x", "id": "__qmp#00001"}"#, b"\"id\""),
            Some(&br#""__qmp#00001""#[..])
        );
        assert_eq!(field(br#"{"id": "a\"b", "execute": "x"}"#, b"\"id\""), Some(&br#""a\"b""#[..]));
        assert_eq!(field(br#"{"execute":"x"}"#, b"\"id\""), None);
        assert_eq!(field(br#"{"arguments": {"count": 1000}}"#, b"\"count\""), Some(&b"1000"[..]));
    }

    #[test]
    fn replies_in_qemu_order() {
        let mut out = Vec::new();
        reply(&mut out, STATUS, Some(b"3"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["return"]["status"], "running");
        assert!(out.ends_with(b"}\r\n"));
    }
}
