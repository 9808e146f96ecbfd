//! The floor: a plain blocking loop over a raw unix socket with no JSON decoding. It writes
//! the same request bytes our client writes and reads until the reply's line end. Nothing can
//! do a round trip over this socket much faster, so it is the yardstick for the client.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// A connected, negotiated raw connection.
pub struct Floor {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Bytes in `buf` not yet consumed.
    filled: usize,
    next_id: u64,
    req: Vec<u8>,
}

impl Floor {
    /// Connects, reads the greeting and negotiates (without oob, as a minimal client would).
    pub fn connect(path: &Path) -> io::Result<Floor> {
        let stream = UnixStream::connect(path)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut f =
            Floor { stream, buf: vec![0; 1 << 20], filled: 0, next_id: 1, req: Vec::with_capacity(64) };
        f.read_lines(1)?; // the greeting
        f.stream.write_all(b"{\"execute\":\"qmp_capabilities\"}\n")?;
        f.read_lines(1)?;
        Ok(f)
    }

    /// Encodes a request exactly as `qmp_proto::encode_request` does.
    fn push_request(&mut self, name: &str) {
        use std::io::Write as _;
        let id = self.next_id;
        self.next_id += 1;
        // Writing into a Vec cannot fail.
        let _ = writeln!(self.req, "{{\"execute\":\"{name}\",\"id\":{id}}}");
    }

    /// One request, one reply.
    pub fn round_trip(&mut self, name: &str) -> io::Result<()> {
        self.req.clear();
        self.push_request(name);
        self.stream.write_all(&self.req)?;
        self.read_lines(1)
    }

    /// `n` requests in one write, then their `n` replies.
    pub fn pipelined(&mut self, name: &str, n: usize) -> io::Result<()> {
        self.req.clear();
        for _ in 0..n {
            self.push_request(name);
        }
        self.stream.write_all(&self.req)?;
        self.read_lines(n)
    }

    /// One request and its whole reply (for a large one), returned.
    pub fn fetch(&mut self, name: &str) -> io::Result<Vec<u8>> {
        self.req.clear();
        self.push_request(name);
        self.stream.write_all(&self.req)?;
        loop {
            let mut line = Vec::new();
            loop {
                if let Some(nl) = self.buf[..self.filled].iter().position(|&b| b == b'\n') {
                    line.extend_from_slice(&self.buf[..=nl]);
                    self.buf.copy_within(nl + 1..self.filled, 0);
                    self.filled -= nl + 1;
                    break;
                }
                line.extend_from_slice(&self.buf[..self.filled]);
                self.filled = 0;
                self.fill()?;
            }
            if !is_event(&line) {
                return Ok(line);
            }
            note_event(&line);
        }
    }

    /// Reads until `n` replies have arrived (one line each), skipping any event line (QEMU
    /// sends events to every monitor). Bytes after the last line end are kept for the next call.
    fn read_lines(&mut self, n: usize) -> io::Result<()> {
        self.read_lines_where(n, true)
    }

    /// Reads until `n` line ends have arrived; event lines count when `skip_events` is false
    /// (the event burst measure counts them).
    fn read_lines_where(&mut self, mut n: usize, skip_events: bool) -> io::Result<()> {
        let mut scanned = 0;
        loop {
            while n > 0 {
                match self.buf[scanned..self.filled].iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        let line = &self.buf[scanned..scanned + i + 1];
                        // An event (QEMU sends them to every monitor) is not a reply.
                        if skip_events && is_event(line) {
                            note_event(line);
                        } else {
                            n -= 1;
                        }
                        scanned += i + 1;
                    }
                    None => break,
                }
            }
            if n == 0 {
                self.buf.copy_within(scanned..self.filled, 0);
                self.filled -= scanned;
                return Ok(());
            }
            if self.filled == self.buf.len() {
                // A reply larger than the buffer: drop what was scanned.
                self.buf.copy_within(scanned..self.filled, 0);
                self.filled -= scanned;
                scanned = 0;
                if self.filled == self.buf.len() {
                    self.buf.resize(self.buf.len() * 2, 0);
                }
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        loop {
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection",
                    ))
                }
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// True for an event line: QEMU writes events with `timestamp` first, replies never.
fn is_event(line: &[u8]) -> bool {
    line.starts_with(b"{\"timestamp\"")
}

/// Says on stderr which event a floor skipped, as the bench's peers are
/// expected to be quiet.
fn note_event(line: &[u8]) {
    let text = String::from_utf8_lossy(&line[..line.len().min(300)]);
    eprintln!("qmp-bench: the floor skipped an event: {}", text.trim_end());
}

/// `qmp-bench oneshot-floor --socket P`: what `qmp -s P query-status` does, done the floor's
/// way (connect, greeting, negotiation, one command, print the reply line): the reference
/// for the one-shot measure, in a process of about the same size.
pub fn oneshot(path: &Path) -> io::Result<()> {
    let mut f = Floor::connect(path)?;
    let reply = f.fetch("query-status")?;
    io::stdout().write_all(&reply)
}

impl Floor {
    /// Mean µs per serial `query-status` round trip over `n` calls.
    pub fn serial_us(&mut self, n: usize) -> io::Result<f64> {
        let t = Instant::now();
        for _ in 0..n {
            self.round_trip("query-status")?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
    }

    /// Commands per second with `depth` requests written before their replies are read.
    pub fn pipelined_per_s(&mut self, depth: usize, total: usize) -> io::Result<f64> {
        let rounds = (total / depth).max(1);
        let t = Instant::now();
        for _ in 0..rounds {
            self.pipelined("query-status", depth)?;
        }
        Ok((rounds * depth) as f64 / t.elapsed().as_secs_f64())
    }

    /// Mean µs per round trip of a large reply (`query-qmp-schema`), read to its line end.
    pub fn fetch_us(&mut self, name: &str, n: usize) -> io::Result<f64> {
        let t = Instant::now();
        for _ in 0..n {
            self.req.clear();
            self.push_request(name);
            self.stream.write_all(&self.req)?;
            self.read_lines(1)?;
        }
        Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
    }

    /// Asks the fast peer for a burst of `count` events; events per second until the reply
    /// after the last one has arrived (lines counted, nothing decoded).
    pub fn burst_per_s(&mut self, count: usize) -> io::Result<f64> {
        let t = Instant::now();
        let req = format!("{{\"execute\":\"bench-burst\",\"arguments\":{{\"count\":{count}}},\"id\":0}}\n");
        self.stream.write_all(req.as_bytes())?;
        self.read_lines_where(count + 1, false)?;
        Ok(count as f64 / t.elapsed().as_secs_f64())
    }
}

/// The floor's loop on tokio (current-thread runtime, readiness then a non-blocking read), no
/// JSON decoding: what any tokio-based client pays for its runtime, before its own work.
pub struct TokioFloor {
    rt: tokio::runtime::Runtime,
    stream: tokio::net::UnixStream,
    buf: Vec<u8>,
    next_id: u64,
}

impl TokioFloor {
    /// Connects, reads the greeting and negotiates.
    pub fn connect(path: &Path) -> io::Result<TokioFloor> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let stream = rt.block_on(tokio::net::UnixStream::connect(path))?;
        let mut f = TokioFloor { rt, stream, buf: Vec::with_capacity(64 * 1024), next_id: 1 };
        f.rt.block_on(read_line(&f.stream, &mut f.buf))?;
        f.rt.block_on(write_all(&f.stream, b"{\"execute\":\"qmp_capabilities\"}\n"))?;
        f.rt.block_on(read_line(&f.stream, &mut f.buf))?;
        Ok(f)
    }

    /// Mean µs per serial `query-status` round trip over `n` calls.
    pub fn serial_us(&mut self, n: usize) -> io::Result<f64> {
        let TokioFloor { rt, stream, buf, next_id } = self;
        rt.block_on(async {
            let mut req = Vec::with_capacity(64);
            let t = Instant::now();
            for _ in 0..n {
                req.clear();
                let _ = writeln!(req, "{{\"execute\":\"query-status\",\"id\":{next_id}}}");
                *next_id += 1;
                write_all(stream, &req).await?;
                read_line(stream, buf).await?;
            }
            Ok(t.elapsed().as_secs_f64() * 1e6 / n as f64)
        })
    }
}

async fn write_all(stream: &tokio::net::UnixStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => stream.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads until the buffer ends with a line end (one reply at a time, so nothing follows it).
async fn read_line(stream: &tokio::net::UnixStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    loop {
        stream.readable().await?;
        match stream.try_read_buf(buf) {
            Ok(0) => {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection"))
            }
            Ok(_) if buf.ends_with(b"\n") => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}
