//! The blocking client's driver over the protocol core ([`qmp_proto::client::ClientCore`]),
//! with no thread of its own. Whichever calling thread needs something from the socket (its
//! reply, an event, the end of the handshake) reads it, one thread at a time: that thread is
//! the *reader* while it waits, and delivers everything the core routes (other threads'
//! replies, every subscriber's events) before it hands the role on. So a serial call costs one
//! write and one blocking read, as a hand-written socket loop does, and calls from several
//! threads still pipeline over the one socket.
//!
//! Locks, never held across I/O except their own: `writer` (the encode buffer, held while
//! one request is written), `reader` (the socket's read timeout, held only by the reader),
//! `state` (the core, the replies deposited, who reads). The reader borrows the core's read
//! buffer and reads into it without `state` held, so other threads register calls meanwhile.
//! A thread waiting while another reads sleeps on `turn`.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use qmp_proto::client::{
    ClientCore, CloseReason, EventQueue, Handshake, IdHasher, Input, IoStage, Offer, Queued, Subscriber,
};
use qmp_proto::{Event, Greeting, Response};
use serde::Serialize;

pub(crate) use super::stream::Stream;
use crate::error::{Error, Result};
use crate::reply::log_unplaced;
use crate::subscription::EventFilter;

/// Bytes to read per call at least; a large reply (query-qmp-schema) arrives in few reads.
const READ_CHUNK: usize = 64 * 1024;

/// A reply as the reader deposited it: the frame itself (QEMU's shape, decoded by its caller
/// in one pass) or parsed (any other shape).
pub(crate) enum Reply {
    Frame(Vec<u8>),
    Parsed(Box<Response>),
}

/// What a thread waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Reply(u64),
    Event(u64),
    /// The greeting, or the end of a handshake that has none.
    Greeting,
    /// The end of the handshake.
    Ready,
    /// Nothing in particular: read what has arrived (a poll).
    Anything,
}

/// What a wait ended with.
pub(crate) enum Got {
    Reply(Reply),
    Event(Arc<Event>),
    Lagged(u64),
    Closed(CloseReason),
    Nothing,
}

/// A subscriber, in the core under the state lock.
struct Sub {
    id: u64,
    filter: EventFilter,
    queue: EventQueue<Arc<Event>>,
}

impl Subscriber for Sub {
    fn offer(&mut self, event: &Arc<Event>) -> Offer {
        if !self.filter.matches(event) {
            return Offer::Declined;
        }
        self.queue.push(Arc::clone(event));
        Offer::Taken
    }
}

struct State {
    /// A thread is reading the socket; the others sleep on `turn`.
    reading: bool,
    sleepers: usize,
    /// The protocol: handshake, pending calls (nothing to deliver to: their replies are
    /// deposited in `replies`), subscribers, the close reason.
    core: ClientCore<(), Sub>,
    /// Replies read for calls whose thread has not taken them yet.
    replies: HashMap<u64, Reply, BuildHasherDefault<IdHasher>>,
    next_sub: u64,
}

impl State {
    /// Takes what `want` waits for, if it is there.
    fn take(&mut self, want: Want) -> Option<Result<Got>> {
        match want {
            Want::Reply(id) => {
                if let Some(r) = self.replies.remove(&id) {
                    return Some(Ok(Got::Reply(r)));
                }
                let why = self.core.close_reason()?;
                Some(Err(Error::Disconnected(why.clone())))
            }
            Want::Event(sid) => {
                let closed = self.core.close_reason().cloned();
                let Some(sub) = self.core.subscribers_mut().iter_mut().find(|s| s.id == sid) else {
                    // Only a dropped subscription's id is missing, and it waits no more.
                    return Some(Ok(Got::Closed(closed.unwrap_or(CloseReason::ClientDropped))));
                };
                match sub.queue.pop() {
                    Some(Queued::Lagged(n)) => Some(Ok(Got::Lagged(n))),
                    Some(Queued::Event(ev)) => Some(Ok(Got::Event(ev))),
                    None => closed.map(|why| Ok(Got::Closed(why))),
                }
            }
            Want::Greeting | Want::Ready | Want::Anything => {
                let ready = match want {
                    Want::Greeting => self.past_greeting(),
                    Want::Ready => self.core.is_ready(),
                    _ => false,
                };
                if ready {
                    return Some(Ok(Got::Nothing));
                }
                self.core.close_reason().map(|why| Err(Error::Disconnected(why.clone())))
            }
        }
    }

    /// True when `want` has what it waits for (or the connection has closed).
    fn met(&self, want: Want) -> bool {
        self.core.is_closed()
            || match want {
                Want::Reply(id) => self.replies.contains_key(&id),
                Want::Event(sid) => self.core.subscribers().iter().any(|s| s.id == sid && s.queue.has_next()),
                Want::Greeting => self.past_greeting(),
                Want::Ready => self.core.is_ready(),
                Want::Anything => false,
            }
    }

    /// True once the handshake is past waiting for the greeting (or never waited for one).
    fn past_greeting(&self) -> bool {
        !matches!(self.core.handshake(), Some(Handshake::Greeting(_)) | None)
    }

    fn wake_sleepers(&self, turn: &Condvar) {
        if self.sleepers > 0 {
            turn.notify_all();
        }
    }
}

/// The reader's own state.
struct Reader {
    /// The socket's receive timeout as last set.
    timeout: Option<Duration>,
}

/// How one read ended.
enum Read {
    /// Bytes came, or a timeout set for an earlier wait ended the read early: go on.
    More,
    /// The deadline has passed.
    Expired,
    /// The peer closed its end.
    Eof,
    Failed(CloseReason),
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
    pub(crate) fn new(
        stream: Stream,
        handshake: Handshake,
        max_message_size: usize,
        event_queue: usize,
    ) -> Conn {
        Conn {
            stream,
            writer: Mutex::new(Vec::with_capacity(1024)),
            reader: Mutex::new(Reader { timeout: None }),
            state: Mutex::new(State {
                reading: false,
                sleepers: 0,
                core: ClientCore::new(handshake, max_message_size),
                replies: HashMap::default(),
                next_sub: 1,
            }),
            turn: Condvar::new(),
            next_id: AtomicU64::new(1),
            greeting: OnceLock::new(),
            oob: AtomicBool::new(false),
            event_queue: event_queue.max(1),
        }
    }

    /// The core's count of inputs passed over (the guest agent's staleness signal).
    pub(crate) fn skipped(&self) -> u64 {
        lock(&self.state).core.skipped()
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
        if let Err(((), why)) = lock(&self.state).core.register(id, ()) {
            return Err(Error::Disconnected(why.clone()));
        }
        let _unwind = Forget { conn: self, id };
        let sent = self.send(fds, |buf| {
            qmp_proto::encode_request(buf, name, args, Some(&id), oob).map_err(|source| Error::Json {
                context: format!("cannot encode the arguments of {name}"),
                source,
            })
        });
        if let Err(e) = sent {
            lock(&self.state).core.forget(id);
            return Err(e);
        }
        match self.wait(Want::Reply(id), deadline)? {
            Got::Reply(r) => Ok(r),
            // A reply wait ends with its reply or an error (State::take).
            _ => unreachable!("a reply wait ended without a reply"),
        }
    }

    /// Sends a request without waiting for its reply, for the guest agent's commands that
    /// answer only when they fail; returns its id for [`Conn::take_reply`].
    pub(crate) fn send_only<A: Serialize + ?Sized>(&self, name: &str, args: &A) -> Result<u64> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Err(((), why)) = lock(&self.state).core.register(id, ()) {
            return Err(Error::Disconnected(why.clone()));
        }
        let sent = self.send(&[], |buf| {
            qmp_proto::encode_request(buf, name, args, Some(&id), false).map_err(|source| Error::Json {
                context: format!("cannot encode the arguments of {name}"),
                source,
            })
        });
        match sent {
            Ok(()) => Ok(id),
            Err(e) => {
                lock(&self.state).core.forget(id);
                Err(e)
            }
        }
    }

    /// The reply to a [`Conn::send_only`] request if it has come, without waiting; the call is
    /// forgotten either way.
    pub(crate) fn take_reply(&self, id: u64) -> Option<Reply> {
        let mut st = lock(&self.state);
        st.core.forget(id);
        st.replies.remove(&id)
    }

    /// Runs the handshake until `deadline`: waits for the greeting (when one is awaited), then
    /// sends `qmp_capabilities` and waits for its reply (when negotiating). The error for a
    /// deadline passed is `Timeout`; the greeting, once it came, is in `self.greeting`.
    pub(crate) fn handshake(&self, deadline: Instant) -> Result<()> {
        self.wait(Want::Greeting, Some(deadline))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut caps = Vec::new();
        if lock(&self.state).core.send_capabilities(&mut caps, id) {
            self.send(&[], |buf| {
                buf.extend_from_slice(&caps);
                Ok(())
            })?;
        }
        self.wait(Want::Ready, Some(deadline))?;
        self.oob.store(lock(&self.state).core.oob(), Ordering::Relaxed);
        Ok(())
    }

    /// Registers a subscriber; its events are those read from now on.
    pub(crate) fn subscribe(&self, filter: EventFilter) -> u64 {
        let mut st = lock(&self.state);
        let id = st.next_sub;
        st.next_sub += 1;
        st.core.subscribe(Sub { id, filter, queue: EventQueue::new(self.event_queue) });
        id
    }

    pub(crate) fn unsubscribe(&self, sub: u64) {
        lock(&self.state).core.retain_subscribers(|s| s.id != sub);
    }

    /// The subscriber's next event, lost-event notice or end, waiting until `deadline`
    /// (`Got::Nothing` when it passes).
    pub(crate) fn next_event(&self, sub: u64, deadline: Option<Instant>) -> Got {
        match self.wait(Want::Event(sub), deadline) {
            Ok(got) => got,
            Err(Error::Disconnected(why)) => Got::Closed(why),
            Err(_) => Got::Nothing,
        }
    }

    pub(crate) fn queued(&self, sub: u64) -> usize {
        lock(&self.state).core.subscribers().iter().find(|s| s.id == sub).map_or(0, |s| s.queue.len())
    }

    /// Reads whatever has arrived, without waiting (unless another thread is reading), and
    /// tells whether the connection has ended.
    pub(crate) fn poll_closed(&self) -> bool {
        let _ = self.wait(Want::Anything, Some(Instant::now()));
        lock(&self.state).core.is_closed()
    }

    /// The wait every blocking operation comes down to: take what `want` waits for; else read
    /// the socket if no other thread does; else sleep until the reader hands something over.
    fn wait(&self, want: Want, deadline: Option<Instant>) -> Result<Got> {
        let mut st = lock(&self.state);
        loop {
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
                            st.core.forget(id);
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

    /// As the reader: delivers what the core holds, then reads, until `want` is met (true),
    /// the deadline passes or nothing more has arrived for a poll (false), or the connection
    /// ends (true).
    fn read_until(&self, want: Want, deadline: Option<Instant>) -> bool {
        let mut rd = lock(&self.reader);
        let mut st = lock(&self.state);
        loop {
            self.dispatch(&mut st);
            if st.met(want) {
                return true;
            }
            let mut buf = st.core.lend_buffer(READ_CHUNK);
            drop(st);
            let read = self.read(&mut rd, &mut buf, deadline);
            st = lock(&self.state);
            st.core.restore_buffer(buf);
            match read {
                Read::More => {}
                Read::Expired => {
                    self.dispatch(&mut st);
                    return st.met(want);
                }
                Read::Eof => {
                    self.dispatch(&mut st);
                    let why = st.core.peer_closed().clone();
                    self.close(st, why);
                    return true;
                }
                Read::Failed(why) => {
                    self.close(st, why);
                    return true;
                }
            }
        }
    }

    /// One read into `buf`'s spare capacity. A deadline already past makes it a non-blocking
    /// read of what is there.
    fn read(&self, rd: &mut Reader, buf: &mut Vec<u8>, deadline: Option<Instant>) -> Read {
        let mut now_only = false;
        let set = match deadline {
            None => self.set_timeout(rd, None),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    now_only = true;
                    Ok(())
                } else {
                    let left = d - now;
                    // Reset the socket's timeout only when the one set would overshoot the
                    // deadline by more than a millisecond or wake far too early: a fixed
                    // per-call timeout costs no syscall per call. (A terminal takes the
                    // deadline itself.)
                    let reset = match rd.timeout {
                        None => true,
                        Some(t) => t > left + Duration::from_millis(1) || t < left / 2,
                    };
                    if reset {
                        self.set_timeout(rd, Some(left))
                    } else {
                        Ok(())
                    }
                }
            }
        };
        if let Err(why) = set {
            return Read::Failed(why);
        }
        loop {
            match self.stream.read(buf.spare_capacity_mut(), now_only, deadline) {
                Ok(0) => return Read::Eof,
                Ok(n) => {
                    // SAFETY: the read initialised the first n bytes of the spare capacity.
                    unsafe { buf.set_len(buf.len() + n) };
                    return Read::More;
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        let expired = now_only || deadline.is_some_and(|d| Instant::now() >= d);
                        return if expired { Read::Expired } else { Read::More };
                    }
                    _ => return Read::Failed(CloseReason::io(IoStage::Read, &e)),
                },
            }
        }
    }

    fn set_timeout(&self, rd: &mut Reader, t: Option<Duration>) -> Result<(), CloseReason> {
        if rd.timeout != t {
            self.stream.set_read_timeout(t).map_err(|e| CloseReason::io(IoStage::Setup, &e))?;
            rd.timeout = t;
        }
        Ok(())
    }

    /// Delivers everything the core makes of the messages it holds: replies deposited for
    /// their threads, events queued (inside the core), the greeting published. A fault closes.
    fn dispatch(&self, st: &mut MutexGuard<'_, State>) {
        let st = &mut **st;
        let mut woke = false;
        loop {
            match st.core.next_input() {
                Ok(None) => break,
                Ok(Some(Input::Reply { id, reply, .. })) => {
                    let reply = match reply {
                        // The one copy of a reply: out of the read buffer, for its caller.
                        qmp_proto::client::Reply::Frame(bytes) => Reply::Frame(bytes.to_vec()),
                        qmp_proto::client::Reply::Parsed(resp) => Reply::Parsed(resp),
                    };
                    st.replies.insert(id, reply);
                    woke = true;
                }
                Ok(Some(Input::Event { taken })) => woke |= taken > 0,
                Ok(Some(Input::Unplaced(u))) => log_unplaced(&u),
                Ok(Some(Input::Greeting | Input::Ready { .. })) => {
                    if let Some(g) = st.core.greeting() {
                        if self.greeting.get().is_none() {
                            let _ = self.greeting.set(g.clone());
                        }
                    }
                    woke = true;
                }
                Ok(Some(_)) => {}
                Err(why) => {
                    self.shut(st, why);
                    return;
                }
            }
        }
        if woke {
            st.wake_sleepers(&self.turn);
        }
    }

    /// Writes `bytes` as they are (the guest agent's 0xFF reset).
    pub(crate) fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.send(&[], |buf| {
            buf.extend_from_slice(bytes);
            Ok(())
        })
    }

    /// Encodes one request with `encode` and writes it (with `fds` on its first byte).
    fn send(&self, fds: &[BorrowedFd<'_>], encode: impl FnOnce(&mut Vec<u8>) -> Result<()>) -> Result<()> {
        let mut buf = lock(&self.writer);
        buf.clear();
        encode(&mut buf)?;
        let mut done = 0;
        if !fds.is_empty() {
            done = self.send_fds(&buf, fds).map_err(|e| self.write_failed(e, 0))?;
        }
        while done < buf.len() {
            match self.stream.write(&buf[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.write_failed(e, done)),
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
        let during = if written > 0 { IoStage::WriteAfterPartial } else { IoStage::Write };
        let st = lock(&self.state);
        Error::Disconnected(self.close(st, CloseReason::io(during, &e)))
    }

    /// Ends the connection (unless it has ended): every waiting call fails, every subscription
    /// ends after its queue. Returns the reason that stands.
    fn close(&self, mut st: MutexGuard<'_, State>, why: CloseReason) -> CloseReason {
        self.shut(&mut st, why)
    }

    fn shut(&self, st: &mut State, why: CloseReason) -> CloseReason {
        let why = st.core.close(why).clone();
        tracing::debug!(reason = %why, "qmp connection ended");
        st.core.drain_calls().for_each(drop);
        st.wake_sleepers(&self.turn);
        self.stream.shutdown();
        why
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
            st.core.forget(self.id);
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
