//! The async client's driver: the connection task, the one owner of the socket, over the
//! protocol core ([`qmp_proto::client::ClientCore`]). It writes requests queued by client
//! handles, reads into the core, and delivers what the core routes: each reply to its caller's
//! channel, the greeting and the end of the handshake to `start`. Events reach subscribers
//! inside the core. Reads are serviced before writes on every turn, and no step blocks on a
//! caller or subscriber, so a slow consumer can never stall the socket.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use qmp_proto::client::{ClientCore, CloseReason, Handshake, Input, IoStage, Reply};
use qmp_proto::Response;
use tokio::io::Interest;
use tokio::sync::oneshot;

use crate::client::Shared;
use crate::error::Error;
use crate::reply::log_unplaced;
use crate::subscription::{SubHandle, Subscriber};
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
/// Where a call's answer comes.
pub(crate) type AnswerRx = oneshot::Receiver<Result<Answer, Box<Error>>>;

/// The end of the handshake, for `start`: whether oob was negotiated, or why the connection
/// closed first. (The greeting is published in `Shared` as soon as it comes.)
pub(crate) type ReadyTx = oneshot::Sender<Result<bool, CloseReason>>;

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
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            next_id: 1,
            out: Vec::new(),
            fd_marks: VecDeque::new(),
            calls: Vec::new(),
            subscribers: Vec::new(),
        }
    }
}

/// Bytes to read per call at least; a large reply (query-qmp-schema) arrives in few reads.
const READ_CHUNK: usize = 64 * 1024;

pub(crate) struct Connection {
    io: Transport,
    core: ClientCore<ReplyTx, SubHandle>,
    /// When the pending calls grow past this, calls whose caller gave up are purged.
    purge_at: usize,
    out: Vec<u8>,
    /// Offsets into `out` where a request that carries fds begins, with its fds.
    fd_marks: VecDeque<(usize, Vec<OwnedFd>)>,
    ready: Option<ReadyTx>,
    shared: Arc<Shared>,
}

impl Connection {
    pub(crate) fn new(
        io: Transport,
        handshake: Handshake,
        max_message_size: usize,
        ready: ReadyTx,
        shared: Arc<Shared>,
    ) -> Self {
        Connection {
            io,
            core: ClientCore::new(handshake, max_message_size),
            purge_at: 1024,
            out: Vec::with_capacity(4096),
            fd_marks: Default::default(),
            ready: Some(ready),
            shared,
        }
    }

    /// Runs until the peer goes away, a fatal fault, or every client handle is dropped.
    pub(crate) async fn run(mut self) {
        let reason = match self.drive().await {
            Ok(()) => CloseReason::ClientDropped,
            Err(reason) => reason,
        };
        self.shutdown(reason);
    }

    async fn drive(&mut self) -> Result<(), CloseReason> {
        // A handshake without a greeting negotiates, or is over, at once.
        self.handshake_step();
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
                    let ready = ready.map_err(|e| CloseReason::io(IoStage::Wait, &e))?;
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
    fn take_outbox(&mut self) -> Result<(), CloseReason> {
        let mut ob = self.shared.lock_outbox();
        if let Some(why) = self.shared.closed.get() {
            // A request's encoding panicked (see `Shared::lock_outbox`).
            return Err(why.clone());
        }
        for sub in ob.subscribers.drain(..) {
            self.core.subscribe(SubHandle(sub));
        }
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
        self.core.register_all(ob.calls.drain(..));
        drop(ob);
        if self.core.pending() > self.purge_at {
            // Calls whose caller gave up (timeout, dropped future) whose replies never came.
            self.core.retain_calls(|tx| !tx.is_closed());
            self.purge_at = (self.core.pending() * 2).max(1024);
        }
        Ok(())
    }

    /// Reads what the socket has, then handles every complete message.
    fn read(&mut self) -> Result<(), CloseReason> {
        for _ in 0..16 {
            let buf = self.core.read_buffer(READ_CHUNK);
            let spare = buf.capacity() - buf.len();
            match self.io.read_some(buf) {
                Ok(n) if n > 0 && n < spare => {
                    // A short read drained the socket (and cleared its readiness).
                    self.dispatch()?;
                    return Ok(());
                }
                Ok(0) => return Err(self.core.peer_closed().clone()),
                Ok(_) => self.dispatch()?,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(CloseReason::io(IoStage::Read, &e)),
            }
        }
        Ok(())
    }

    /// Delivers what the core makes of every complete message.
    fn dispatch(&mut self) -> Result<(), CloseReason> {
        if self.shared.new_subscribers.load(Ordering::Relaxed) {
            // A subscription made before these bytes were read sees their events.
            let mut ob = self.shared.lock_outbox();
            for sub in ob.subscribers.drain(..) {
                self.core.subscribe(SubHandle(sub));
            }
            self.shared.new_subscribers.store(false, Ordering::Relaxed);
        }
        loop {
            match self.core.next_input()? {
                None => {
                    self.shared.skipped.store(self.core.skipped(), Ordering::Relaxed);
                    return Ok(());
                }
                Some(Input::Reply { to, reply, .. }) => {
                    let answer = match reply {
                        // The one copy of a reply: out of the read buffer, for its caller.
                        Reply::Frame(bytes) => Answer::Frame(bytes.to_vec()),
                        Reply::Parsed(resp) => Answer::Parsed(resp),
                    };
                    // Published before the reply, so its caller sees what came before it.
                    self.shared.skipped.store(self.core.skipped(), Ordering::Relaxed);
                    let _ = to.send(Ok(answer));
                }
                Some(Input::Unplaced(u)) => log_unplaced(&u),
                Some(Input::Greeting | Input::Ready { .. }) => self.handshake_step(),
                // Perhaps a greeting the handshake did not wait for: published all the same.
                Some(Input::Other) => self.publish_greeting(),
                Some(_) => {}
            }
        }
    }

    /// Takes the handshake's next step: sends `qmp_capabilities` when it is due, tells `start`
    /// when the handshake is over.
    fn handshake_step(&mut self) {
        self.publish_greeting();
        if self.core.wants_capabilities() {
            let id = {
                let mut ob = self.shared.lock_outbox();
                ob.next_id += 1;
                ob.next_id - 1
            };
            self.core.send_capabilities(&mut self.out, id);
        } else if self.core.is_ready() {
            if let Some(tx) = self.ready.take() {
                let _ = tx.send(Ok(self.core.oob()));
            }
        }
    }

    /// Makes the greeting, once it came, what [`Client::greeting`](crate::Client::greeting) gives.
    fn publish_greeting(&mut self) {
        if let Some(g) = self.core.greeting() {
            if self.shared.greeting.get().is_none() {
                let _ = self.shared.greeting.set(g.clone());
            }
        }
    }

    /// Writes as much queued output as the socket takes now.
    fn write(&mut self) -> Result<(), CloseReason> {
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
                Ok(0) => break Err(CloseReason::io(IoStage::Write, &ErrorKind::WriteZero.into())),
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => break Err(CloseReason::io(IoStage::Write, &e)),
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
    fn shutdown(&mut self, reason: CloseReason) {
        // One reason: the core's first, published once for every handle and subscriber.
        let reason = self.core.close(reason).clone();
        let reason = self.shared.closed.get_or_init(|| reason).clone();
        tracing::debug!(%reason, "qmp connection ended");
        if let Some(tx) = self.ready.take() {
            let _ = tx.send(Err(reason.clone()));
        }
        let (calls, subs) = {
            let mut ob = self.shared.lock_outbox();
            ob.out = Vec::new();
            ob.fd_marks.clear();
            (std::mem::take(&mut ob.calls), std::mem::take(&mut ob.subscribers))
        };
        let gone = || Err(Box::new(Error::Disconnected(reason.clone())));
        for (_, tx) in calls.into_iter().chain(self.core.drain_calls()) {
            let _ = tx.send(gone());
        }
        for sub in subs {
            sub.wake();
        }
        for sub in self.core.drain_subscribers() {
            sub.0.wake();
        }
        self.shared.closed_flag.store(true, Ordering::Release);
        self.shared.closed_notify.notify_waiters();
    }
}
