//! The blocking client's connection, with no thread of its own. Whichever calling thread needs
//! something from the socket (its reply, an event, the greeting) reads it, one thread at a
//! time: that thread is the *reader* while it waits, and routes everything it reads (other
//! threads' replies, every subscriber's events) before it hands the role on. So a serial call
//! costs one write and one blocking read, as a hand-written socket loop does, and calls from
//! several threads still pipeline over the one socket.
//!
//! Locks, never held across I/O except their own: `writer` (the encode buffer, held while
//! one request is written), `reader` (the framer, held only by the reader), `state` (replies,
//! subscriber queues, who reads). A thread waiting while another reads sleeps on `turn`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasherDefault;
use std::io::{self, IoSlice};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use qmp_proto::{Event, Framer, Greeting, Message, Response};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::reply::{fast_reply_id, log_unplaced, our_call_id, IdHasher};
use crate::subscription::EventFilter;

/// Bytes to read per call at least; a large reply (query-qmp-schema) arrives in few reads.
const READ_CHUNK: usize = 64 * 1024;

/// The socket: unix (with fd passing) or TCP, in blocking mode; or the socket pair to the
/// thread that runs a TLS session, which carries bytes only (fds cannot cross TLS).
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    TlsRelay(UnixStream),
}

impl Stream {
    /// Blocking mode (a stream handed in may be non-blocking), and no Nagle delay on TCP.
    pub(crate) fn prepare(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.set_nonblocking(false),
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(false)
            }
        }
    }

    fn fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }

    fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}

/// A reply as the reader deposited it: the frame itself (QEMU's shape, decoded by its caller
/// in one pass) or parsed (any other shape).
pub(crate) enum Reply {
    Frame(Vec<u8>),
    Parsed(Response),
}

/// What a thread waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Reply(u64),
    Event(u64),
    Greeting,
    /// Nothing in particular: read what has arrived (a poll).
    Anything,
}

/// What a wait ended with.
pub(crate) enum Got {
    Reply(Reply),
    Event(Arc<Event>),
    Lagged(u64),
    Closed(String),
    Nothing,
}

struct Sub {
    id: u64,
    filter: EventFilter,
    queue: VecDeque<Arc<Event>>,
    lost: u64,
}

type IdSet = HashSet<u64, BuildHasherDefault<IdHasher>>;

#[derive(Default)]
struct State {
    /// A thread is reading the socket; the others sleep on `turn`.
    reading: bool,
    sleepers: usize,
    /// Calls whose caller still waits; a reply for any other id is discarded.
    pending: IdSet,
    replies: HashMap<u64, Reply, BuildHasherDefault<IdHasher>>,
    subs: Vec<Sub>,
    next_sub: u64,
    closed: Option<String>,
}

impl State {
    /// Takes what `want` waits for, if it is there.
    fn take(&mut self, want: Want) -> Option<Result<Got>> {
        match want {
            Want::Reply(id) => {
                if let Some(r) = self.replies.remove(&id) {
                    return Some(Ok(Got::Reply(r)));
                }
                let why = self.closed.as_ref()?;
                self.pending.remove(&id);
                Some(Err(Error::Disconnected(why.clone())))
            }
            Want::Event(sid) => {
                let Some(sub) = self.subs.iter_mut().find(|s| s.id == sid) else {
                    return Some(Ok(Got::Closed("the subscription was dropped".into())));
                };
                if sub.lost > 0 {
                    return Some(Ok(Got::Lagged(std::mem::take(&mut sub.lost))));
                }
                if let Some(ev) = sub.queue.pop_front() {
                    return Some(Ok(Got::Event(ev)));
                }
                self.closed.as_ref().map(|why| Ok(Got::Closed(why.clone())))
            }
            Want::Greeting | Want::Anything => {
                self.closed.as_ref().map(|why| Err(Error::Disconnected(why.clone())))
            }
        }
    }

    fn wake_sleepers(&self, turn: &Condvar) {
        if self.sleepers > 0 {
            turn.notify_all();
        }
    }
}

/// The reader's own state.
struct Reader {
    framer: Framer,
    /// The socket's receive timeout as last set.
    timeout: Option<Duration>,
}

pub(crate) struct Conn {
    stream: Stream,
    /// The encode buffer; holding it is the right to write.
    writer: Mutex<Vec<u8>>,
    reader: Mutex<Reader>,
    state: Mutex<State>,
    turn: Condvar,
    next_id: AtomicU64,
    pub(crate) greeting: OnceLock<Greeting>,
    pub(crate) oob: AtomicBool,
    event_queue: usize,
}

/// Locks `m`, carrying on after a panic elsewhere: every critical section here leaves its data
/// consistent (the encode buffer is cleared before each use).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Conn {
    pub(crate) fn new(stream: Stream, max_message_size: usize, event_queue: usize) -> Conn {
        Conn {
            stream,
            writer: Mutex::new(Vec::with_capacity(1024)),
            reader: Mutex::new(Reader {
                framer: Framer::with_limits(max_message_size, qmp_proto::DEFAULT_MAX_DEPTH),
                timeout: None,
            }),
            state: Mutex::new(State { next_sub: 1, ..State::default() }),
            turn: Condvar::new(),
            next_id: AtomicU64::new(1),
            greeting: OnceLock::new(),
            oob: AtomicBool::new(false),
            event_queue: event_queue.max(1),
        }
    }

    pub(crate) fn supports_fds(&self) -> bool {
        matches!(self.stream, Stream::Unix(_))
    }

    /// Sends one request and waits for its reply until `deadline`.
    pub(crate) fn call<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        deadline: Option<Instant>,
    ) -> Result<Reply> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = lock(&self.state);
            if let Some(why) = &st.closed {
                return Err(Error::Disconnected(why.clone()));
            }
            st.pending.insert(id);
        }
        let _unwind = Forget { conn: self, id };
        if let Err(e) = self.send(name, args, id, oob, fds) {
            lock(&self.state).pending.remove(&id);
            return Err(e);
        }
        match self.wait(Want::Reply(id), deadline)? {
            Got::Reply(r) => Ok(r),
            _ => Err(Error::Protocol("internal: a reply wait ended without a reply".into())),
        }
    }

    /// Waits for the greeting until `deadline`.
    pub(crate) fn wait_greeting(&self, deadline: Instant) -> Result<()> {
        self.wait(Want::Greeting, Some(deadline)).map(|_| ())
    }

    /// Registers a subscriber; its events are those read from now on.
    pub(crate) fn subscribe(&self, filter: EventFilter) -> u64 {
        let mut st = lock(&self.state);
        let id = st.next_sub;
        st.next_sub += 1;
        st.subs.push(Sub { id, filter, queue: VecDeque::new(), lost: 0 });
        id
    }

    pub(crate) fn unsubscribe(&self, sub: u64) {
        lock(&self.state).subs.retain(|s| s.id != sub);
    }

    /// The subscriber's next event, lost-event notice or end, waiting until `deadline`
    /// (`Got::Nothing` when it passes).
    pub(crate) fn next_event(&self, sub: u64, deadline: Option<Instant>) -> Got {
        match self.wait(Want::Event(sub), deadline) {
            Ok(got) => got,
            Err(Error::Timeout) => Got::Nothing,
            Err(e) => Got::Closed(e.to_string()),
        }
    }

    pub(crate) fn queued(&self, sub: u64) -> usize {
        lock(&self.state).subs.iter().find(|s| s.id == sub).map_or(0, |s| s.queue.len())
    }

    /// Reads whatever has arrived, without waiting (unless another thread is reading), and
    /// tells whether the connection has ended.
    pub(crate) fn poll_closed(&self) -> bool {
        let _ = self.wait(Want::Anything, Some(Instant::now()));
        lock(&self.state).closed.is_some()
    }

    /// The wait every blocking operation comes down to: take what `want` waits for; else read
    /// the socket if no other thread does; else sleep until the reader hands something over.
    fn wait(&self, want: Want, deadline: Option<Instant>) -> Result<Got> {
        let mut st = lock(&self.state);
        loop {
            if want == Want::Greeting && self.greeting.get().is_some() {
                return Ok(Got::Nothing);
            }
            if let Some(got) = st.take(want) {
                return got;
            }
            if !st.reading {
                st.reading = true;
                drop(st);
                let role = ReaderRole(self);
                let met = self.read_until(want, deadline);
                drop(role);
                st = lock(&self.state);
                if met {
                    continue;
                }
                if want == Want::Anything {
                    return Ok(Got::Nothing);
                }
                if let Some(got) = st.take(want) {
                    return got;
                }
            }
            match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        if let Want::Reply(id) = want {
                            st.pending.remove(&id);
                        }
                        return Err(Error::Timeout);
                    }
                    st.sleepers += 1;
                    st = self.turn.wait_timeout(st, d - now).unwrap_or_else(|e| e.into_inner()).0;
                    st.sleepers -= 1;
                }
                None => {
                    st.sleepers += 1;
                    st = self.turn.wait(st).unwrap_or_else(|e| e.into_inner());
                    st.sleepers -= 1;
                }
            }
        }
    }

    /// As the reader: handles what is buffered, then reads, until `want` is met (true), the
    /// deadline passes or nothing more has arrived for a poll (false), or the connection ends.
    fn read_until(&self, want: Want, deadline: Option<Instant>) -> bool {
        let mut rd = lock(&self.reader);
        loop {
            match self.dispatch(&mut rd.framer, want) {
                Ok(true) => return true,
                Ok(false) => {}
                Err(reason) => {
                    self.close(&reason);
                    return true;
                }
            }
            match self.read(&mut rd, deadline) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(reason) => {
                    self.close(&reason);
                    return true;
                }
            }
        }
    }

    /// One read into the framer: Ok(true) to go on (bytes came, or a timeout set for an
    /// earlier wait ended the read early), Ok(false) when the deadline has passed. A deadline
    /// already past makes it a non-blocking read of what is there.
    fn read(&self, rd: &mut Reader, deadline: Option<Instant>) -> Result<bool, String> {
        let mut flags = 0;
        match deadline {
            None => self.set_timeout(rd, None)?,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    flags = nix::libc::MSG_DONTWAIT;
                } else {
                    let left = d - now;
                    // Reset the socket's timeout only when the one set would overshoot the
                    // deadline by more than a millisecond or wake far too early: a fixed
                    // per-call timeout costs no syscall per call.
                    let reset = match rd.timeout {
                        None => true,
                        Some(t) => t > left + Duration::from_millis(1) || t < left / 2,
                    };
                    if reset {
                        self.set_timeout(rd, Some(left))?;
                    }
                }
            }
        }
        let fd = self.stream.fd();
        loop {
            let buf = rd.framer.buffer_mut(READ_CHUNK);
            let spare = buf.spare_capacity_mut();
            // SAFETY: recv writes at most `spare.len()` bytes into the spare capacity, which
            // stays valid and unaliased for the call; only the bytes it reports are kept.
            let n = unsafe { nix::libc::recv(fd, spare.as_mut_ptr().cast(), spare.len(), flags) };
            if n > 0 {
                let n = n as usize;
                // SAFETY: recv initialised the first n bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n) };
                return Ok(true);
            }
            if n == 0 {
                return Err(if rd.framer.in_partial_value() {
                    "the peer closed the connection in the middle of a message".to_owned()
                } else {
                    "the peer closed the connection".to_owned()
                });
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    let expired = flags != 0 || deadline.is_some_and(|d| Instant::now() >= d);
                    return Ok(!expired);
                }
                _ => return Err(format!("read error: {e}")),
            }
        }
    }

    fn set_timeout(&self, rd: &mut Reader, t: Option<Duration>) -> Result<(), String> {
        if rd.timeout != t {
            self.stream.set_read_timeout(t).map_err(|e| format!("cannot set the read timeout: {e}"))?;
            rd.timeout = t;
        }
        Ok(())
    }

    /// Routes every complete frame the framer holds; true when one met `want`.
    fn dispatch(&self, framer: &mut Framer, want: Want) -> Result<bool, String> {
        let mut met = false;
        loop {
            let frame = match framer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(met),
                Err(e) => return Err(format!("protocol error: {e}")),
            };
            if let Some(id) = fast_reply_id(frame.bytes) {
                let mut st = lock(&self.state);
                if st.pending.remove(&id) {
                    st.replies.insert(id, Reply::Frame(frame.bytes.to_vec()));
                    met |= want == Want::Reply(id);
                    st.wake_sleepers(&self.turn);
                }
                continue;
            }
            let msg = Message::from_slice(frame.bytes).map_err(|e| {
                let shown = String::from_utf8_lossy(&frame.bytes[..frame.bytes.len().min(200)]).into_owned();
                format!("protocol error: {e} in message {shown:?}")
            })?;
            match msg {
                Message::Response(resp) => met |= self.route(resp, want),
                Message::Event(event) => {
                    let event = Arc::new(event);
                    let mut st = lock(&self.state);
                    let cap = self.event_queue;
                    for sub in st.subs.iter_mut().filter(|s| s.filter.matches(&event)) {
                        if sub.queue.len() >= cap {
                            sub.queue.pop_front();
                            sub.lost += 1;
                        }
                        sub.queue.push_back(Arc::clone(&event));
                        met |= want == Want::Event(sub.id);
                    }
                    st.wake_sleepers(&self.turn);
                }
                Message::Greeting(g) => {
                    let _ = self.greeting.set(g);
                    met |= want == Want::Greeting;
                }
                Message::Unknown(obj) => tracing::debug!(?obj, "ignoring a message of unknown shape"),
                _ => {}
            }
        }
    }

    /// Hands a parsed reply to the call that sent its id; true when that call is `want`'s. A
    /// reply with any other id, or none, completes no call (see [`our_call_id`]).
    fn route(&self, resp: Response, want: Want) -> bool {
        let mut st = lock(&self.state);
        let Some(id) = our_call_id(resp.id.as_ref()).filter(|id| st.pending.remove(id)) else {
            drop(st);
            log_unplaced(&resp);
            return false;
        };
        st.replies.insert(id, Reply::Parsed(resp));
        st.wake_sleepers(&self.turn);
        want == Want::Reply(id)
    }

    /// Encodes and writes one request (with `fds` on its first byte).
    fn send<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        id: u64,
        oob: bool,
        fds: &[BorrowedFd<'_>],
    ) -> Result<()> {
        let mut buf = lock(&self.writer);
        buf.clear();
        qmp_proto::encode_request(&mut buf, name, args, Some(&id), oob).map_err(|source| Error::Json {
            context: format!("cannot encode the arguments of {name}"),
            source,
        })?;
        let mut done = 0;
        if !fds.is_empty() {
            done = self.send_fds(&buf, fds).map_err(|e| self.write_failed(e, 0))?;
        }
        while done < buf.len() {
            use nix::sys::socket::{send, MsgFlags};
            match send(self.stream.fd(), &buf[done..], MsgFlags::MSG_NOSIGNAL) {
                Ok(n) => done += n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(self.write_failed(e.into(), done)),
            }
        }
        Ok(())
    }

    fn send_fds(&self, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<usize> {
        use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        loop {
            let iov = [IoSlice::new(bytes)];
            let cmsg = [ControlMessage::ScmRights(&raw)];
            match sendmsg::<()>(self.stream.fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => return r.map_err(io::Error::from),
            }
        }
    }

    /// A failed write ends the connection: the peer is gone, or part of a request is out.
    fn write_failed(&self, e: io::Error, written: usize) -> Error {
        let reason = if written > 0 {
            format!("write error after part of a request was sent: {e}")
        } else {
            format!("write error: {e}")
        };
        self.close(&reason);
        Error::Disconnected(lock(&self.state).closed.clone().unwrap_or(reason))
    }

    /// Ends the connection: every waiting call fails, every subscription ends after its queue.
    fn close(&self, reason: &str) {
        tracing::debug!(%reason, "qmp connection ended");
        let mut st = lock(&self.state);
        st.closed.get_or_insert_with(|| reason.to_owned());
        st.pending.clear();
        st.wake_sleepers(&self.turn);
        drop(st);
        self.stream.shutdown();
    }
}

/// Forgets a call whose thread panics while waiting (in an event filter's predicate, say), so
/// its reply is discarded rather than kept for no one.
struct Forget<'a> {
    conn: &'a Conn,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut st = lock(&self.conn.state);
            st.pending.remove(&self.id);
            st.replies.remove(&self.id);
        }
    }
}

/// Held by the thread reading the socket: gives the role back (and wakes the threads waiting
/// for it) however the reading ends, a panic in an event filter's predicate included.
struct ReaderRole<'a>(&'a Conn);

impl Drop for ReaderRole<'_> {
    fn drop(&mut self) {
        let mut st = lock(&self.0.state);
        st.reading = false;
        st.wake_sleepers(&self.0.turn);
    }
}
