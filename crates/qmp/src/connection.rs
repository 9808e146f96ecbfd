//! The connection task: the one owner of the socket. It writes requests queued by client
//! handles, reads and frames the server's output, routes each reply to its caller by `id`, and
//! fans events out to subscribers. Reads are serviced before writes on every turn, and no step
//! blocks on a caller or subscriber, so a slow consumer can never stall the socket.

use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasherDefault;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use qmp_proto::{Framer, Greeting, Message, Response};
use tokio::io::Interest;
use tokio::sync::oneshot;

use crate::client::Shared;
use crate::error::Error;
use crate::reply::{fast_reply_id, log_unplaced, our_call_id, IdHasher};
use crate::subscription::Subscriber;
use crate::transport::Transport;

/// A reply as handed to its caller: parsed, or (fast path) the frame itself, decoded by the
/// caller in one pass into its own type.
pub(crate) enum Answer {
    Parsed(Box<Response>),
    Frame(Vec<u8>),
}

/// Where a call's answer goes. Boxed, the rare shapes keep the channel's allocation small
/// (80 bytes, not 184: a size glibc's malloc serves from its fast bins).
pub(crate) type ReplyTx = oneshot::Sender<Result<Answer, Box<Error>>>;

/// What client handles hand the task, under one lock: requests encoded straight into `out`
/// (no buffer or queue message per call), the calls awaiting replies, new subscribers. The
/// task takes everything at once, so a burst of calls costs one wake-up and one write.
pub(crate) struct Outbox {
    /// The id of the next call.
    pub(crate) next_id: u64,
    pub(crate) out: Vec<u8>,
    /// Offsets into `out` where a request that carries fds begins, with its fds.
    pub(crate) fd_marks: VecDeque<(usize, Vec<OwnedFd>)>,
    pub(crate) calls: Vec<(u64, ReplyTx)>,
    pub(crate) subscribers: Vec<Arc<Subscriber>>,
    /// Why the connection ended, once it has: nothing more is taken.
    pub(crate) closed: Option<String>,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            next_id: 1,
            out: Vec::new(),
            fd_marks: VecDeque::new(),
            calls: Vec::new(),
            subscribers: Vec::new(),
            closed: None,
        }
    }
}

/// Bytes to read per call at least; a large reply (query-qmp-schema) arrives in few reads.
const READ_CHUNK: usize = 64 * 1024;

pub(crate) struct Connection {
    io: Transport,
    framer: Framer,
    pending: HashMap<u64, ReplyTx, BuildHasherDefault<IdHasher>>,
    /// When `pending` grows past this, calls whose caller gave up are purged.
    purge_at: usize,
    subscribers: Vec<Arc<Subscriber>>,
    out: Vec<u8>,
    /// Offsets into `out` where a request that carries fds begins, with its fds.
    fd_marks: VecDeque<(usize, Vec<OwnedFd>)>,
    greeting: Option<oneshot::Sender<Greeting>>,
    shared: Arc<Shared>,
}

impl Connection {
    pub(crate) fn new(
        io: Transport,
        max_message_size: usize,
        greeting: oneshot::Sender<Greeting>,
        shared: Arc<Shared>,
    ) -> Self {
        Connection {
            io,
            framer: Framer::with_limits(max_message_size, qmp_proto::DEFAULT_MAX_DEPTH),
            pending: HashMap::default(),
            purge_at: 1024,
            subscribers: Vec::new(),
            out: Vec::with_capacity(4096),
            fd_marks: Default::default(),
            greeting: Some(greeting),
            shared,
        }
    }

    /// Runs until the peer goes away, a fatal fault, or every client handle is dropped.
    pub(crate) async fn run(mut self) {
        let reason = match self.drive().await {
            Ok(()) => "client dropped".to_owned(),
            Err(reason) => reason,
        };
        tracing::debug!(%reason, "qmp connection ended");
        self.shutdown(&reason);
    }

    async fn drive(&mut self) -> Result<(), String> {
        loop {
            self.take_outbox()?;
            if !self.out.is_empty() {
                // Write at once: most of the time the socket has room.
                self.write()?;
            }
            if self.shared.clients_gone.load(Ordering::Acquire) {
                return Ok(());
            }
            let interest = if self.out.is_empty() {
                Interest::READABLE
            } else {
                Interest::READABLE | Interest::WRITABLE
            };
            tokio::select! {
                biased;
                ready = self.io.ready(interest) => {
                    let ready = ready.map_err(|e| format!("socket error: {e}"))?;
                    if ready.is_readable() || ready.is_read_closed() {
                        self.read()?;
                    }
                    if ready.is_writable() {
                        self.write()?;
                    }
                }
                () = self.shared.wake.notified() => {}
            }
        }
    }

    /// Takes what client handles have queued: requests, calls, subscribers.
    fn take_outbox(&mut self) -> Result<(), String> {
        let mut ob = self.shared.lock_outbox();
        if let Some(why) = &ob.closed {
            return Err(why.clone());
        }
        self.subscribers.append(&mut ob.subscribers);
        self.shared.new_subscribers.store(false, Ordering::Relaxed);
        if ob.calls.is_empty() && ob.out.is_empty() {
            return Ok(());
        }
        let base = self.out.len();
        if base == 0 {
            // Double buffering: the handles get our empty buffer, capacity and all.
            std::mem::swap(&mut self.out, &mut ob.out);
        } else {
            self.out.extend_from_slice(&ob.out);
            ob.out.clear();
        }
        self.fd_marks.extend(ob.fd_marks.drain(..).map(|(at, fds)| (at + base, fds)));
        self.pending.extend(ob.calls.drain(..));
        drop(ob);
        if self.pending.len() > self.purge_at {
            // Calls whose caller gave up (timeout, dropped future) whose replies never came.
            self.pending.retain(|_, tx| !tx.is_closed());
            self.purge_at = (self.pending.len() * 2).max(1024);
        }
        Ok(())
    }

    /// Reads what the socket has, then handles every complete message.
    fn read(&mut self) -> Result<(), String> {
        for _ in 0..16 {
            let buf = self.framer.buffer_mut(READ_CHUNK);
            let spare = buf.capacity() - buf.len();
            match self.io.read_some(buf) {
                Ok(n) if n > 0 && n < spare => {
                    // A short read drained the socket (and cleared its readiness).
                    self.dispatch_frames()?;
                    return Ok(());
                }
                Ok(0) => {
                    return Err(if self.framer.in_partial_value() {
                        "the peer closed the connection in the middle of a message".to_owned()
                    } else {
                        "the peer closed the connection".to_owned()
                    });
                }
                Ok(_) => self.dispatch_frames()?,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
        Ok(())
    }

    fn dispatch_frames(&mut self) -> Result<(), String> {
        if self.shared.new_subscribers.load(Ordering::Relaxed) {
            // A subscription made before these bytes were read sees their events.
            let mut ob = self.shared.lock_outbox();
            self.subscribers.append(&mut ob.subscribers);
            self.shared.new_subscribers.store(false, Ordering::Relaxed);
        }
        loop {
            let frame = match self.framer.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e) => return Err(format!("protocol error: {e}")),
            };
            if let Some(id) = fast_reply_id(frame.bytes) {
                if let Some(tx) = self.pending.remove(&id) {
                    let _ = tx.send(Ok(Answer::Frame(frame.bytes.to_vec())));
                    continue;
                }
            }
            let msg = Message::from_slice(frame.bytes).map_err(|e| {
                let shown = String::from_utf8_lossy(&frame.bytes[..frame.bytes.len().min(200)]).into_owned();
                format!("protocol error: {e} in message {shown:?}")
            })?;
            match msg {
                Message::Response(resp) => self.route(resp),
                Message::Event(event) => {
                    let event = Arc::new(event);
                    // Subscriptions whose handle was dropped hold the only reference left.
                    self.subscribers.retain(|s| Arc::strong_count(s) > 1);
                    for sub in &self.subscribers {
                        sub.offer(&event);
                    }
                }
                Message::Greeting(g) => {
                    if let Some(tx) = self.greeting.take() {
                        let _ = tx.send(g);
                    }
                }
                Message::Unknown(obj) => {
                    tracing::debug!(?obj, "ignoring a message of unknown shape");
                }
                _ => {}
            }
        }
    }

    /// Hands a parsed reply to the call that sent its id. A reply with any other id, or none,
    /// completes no call (see [`our_call_id`]).
    fn route(&mut self, resp: Response) {
        match our_call_id(resp.id.as_ref()).and_then(|id| self.pending.remove(&id)) {
            Some(tx) => {
                let _ = tx.send(Ok(Answer::Parsed(Box::new(resp))));
            }
            None => log_unplaced(&resp),
        }
    }

    /// Writes as much queued output as the socket takes now.
    fn write(&mut self) -> Result<(), String> {
        let mut done = 0;
        let result = loop {
            if done == self.out.len() {
                break Ok(());
            }
            let next_mark = self.fd_marks.front().map(|(at, _)| *at);
            let r = match next_mark {
                Some(at) if at == done => {
                    let end = self.fd_marks.get(1).map_or(self.out.len(), |(next, _)| *next);
                    let (_, fds) = &self.fd_marks[0];
                    let r = self.io.try_write_with_fds(&self.out[done..end], fds);
                    if matches!(r, Ok(n) if n > 0) {
                        self.fd_marks.pop_front();
                    }
                    r
                }
                Some(at) => self.io.try_write(&self.out[done..at]),
                None => self.io.try_write(&self.out[done..]),
            };
            match r {
                Ok(0) => break Err("the peer stopped reading (write returned 0)".to_owned()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(format!("write error: {e}")),
            }
        };
        if done > 0 {
            self.out.drain(..done);
            for (at, _) in self.fd_marks.iter_mut() {
                *at -= done;
            }
        }
        result
    }

    /// Ends every pending call and subscription with the reason, and refuses new calls.
    fn shutdown(&mut self, reason: &str) {
        self.shared.set_closed(reason);
        let (calls, subs) = {
            let mut ob = self.shared.lock_outbox();
            ob.closed.get_or_insert_with(|| reason.to_owned());
            ob.out = Vec::new();
            ob.fd_marks.clear();
            (std::mem::take(&mut ob.calls), std::mem::take(&mut ob.subscribers))
        };
        let gone = || Err(Box::new(Error::Disconnected(reason.to_owned())));
        for (_, tx) in calls.into_iter().chain(self.pending.drain()) {
            let _ = tx.send(gone());
        }
        for sub in subs.into_iter().chain(self.subscribers.drain(..)) {
            sub.close(reason);
        }
        self.shared.closed_flag.store(true, Ordering::Release);
        self.shared.closed_notify.notify_waiters();
    }
}
