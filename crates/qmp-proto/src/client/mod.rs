//! The client's protocol core, with no I/O: one state machine that owns the framer, the
//! handshake, the calls awaiting replies (by the id each was sent with), the subscribers and
//! their lost-event counts, and the one reason the connection closed. A driver (the async
//! client's connection task, the blocking client's reader) reads bytes into it, takes what
//! they came to with [`ClientCore::next_input`], and writes what its callers send.
//!
//! The core is generic over what a pending call's reply goes to (`R`: a channel, a slot in a
//! table) and what a subscriber is (`S`, a [`Subscriber`]), so each driver keeps its own
//! delivery with no allocation of the core's per call or per event.
//!
//! ```
//! use qmp_proto::client::{ClientCore, Handshake, Input, Offer, Reply, Subscriber};
//!
//! struct Ignore;
//! impl Subscriber for Ignore {
//!     fn offer(&mut self, _: &std::sync::Arc<qmp_proto::Event>) -> Offer { Offer::Declined }
//! }
//!
//! let mut core: ClientCore<&str, Ignore> = ClientCore::new(Handshake::qmp(true), 1 << 20);
//! core.feed(br#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}"#);
//! assert!(matches!(core.next_input(), Ok(Some(Input::Greeting))));
//! let mut out = Vec::new();
//! core.send_capabilities(&mut out, 1);
//! core.feed(b"{\"return\": {}, \"id\": 1}\r\n");
//! assert!(matches!(core.next_input(), Ok(Some(Input::Ready { oob: true }))));
//!
//! core.register(2, "caller two");
//! core.feed(b"{\"return\": {\"status\": \"running\"}, \"id\": 2}\r\n");
//! let Ok(Some(Input::Reply { id: 2, to, reply: Reply::Frame(bytes) })) = core.next_input() else { panic!() };
//! assert_eq!(to, "caller two");
//! assert!(bytes.starts_with(b"{\"return\""));
//! ```
//!
//! # Behaviour
//! - A reply goes only to the call whose id it carries as sent (an unsigned integer); any
//!   other id, or none, or a call that gave up, makes it [`Input::Unplaced`].
//! - Replies in QEMU's exact shape are handed over as their frame ([`Reply::Frame`]), not
//!   parsed, for the caller to decode once into its own type.
//! - The first close reason sticks: after it, [`ClientCore::next_input`] returns it again and
//!   [`ClientCore::register`] refuses calls.

mod close;
mod events;
mod handshake;
mod ids;

use std::sync::Arc;

pub use close::{CloseReason, IoStage};
pub use events::{EventQueue, Offer, Queued, Subscriber};
pub use handshake::{AwaitCapabilities, AwaitGreeting, Handshake, Ready, SendCapabilities};
pub use ids::{fast_reply_id, our_call_id, IdHasher};

use crate::{FrameError, Framer, Greeting, Message, Response};
use ids::CallMap;

/// What one message from the server came to.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<'a, R> {
    /// The greeting came; `qmp_capabilities` is to be sent next
    /// ([`ClientCore::send_capabilities`]) unless no negotiation was asked for, in which case
    /// [`Input::Ready`] follows at once.
    Greeting,
    /// The handshake is over: command mode.
    Ready {
        /// True when out-of-band execution was negotiated.
        oob: bool,
    },
    /// A reply to a pending call, removed from the pending calls.
    Reply {
        /// The id the call was sent with.
        id: u64,
        /// Where its reply goes, as registered.
        to: R,
        /// The reply.
        reply: Reply<'a>,
    },
    /// An event, offered to every subscriber.
    Event {
        /// How many subscribers took it.
        taken: usize,
    },
    /// A reply no pending call takes (for the driver to log): its caller gave up, or its id
    /// is none we sent.
    Unplaced(Unplaced),
    /// A message of another shape (kept for forward compatibility, ignored); from the guest
    /// agent, also a value that is not a message at all (garbage an earlier client left).
    Other,
}

/// A reply as the core hands it over.
#[derive(Debug)]
pub enum Reply<'a> {
    /// QEMU's exact shape, `{"return"|"error": ..., "id": N}`, not parsed: the frame, borrowed
    /// from the core's buffer until the next call into it.
    Frame(&'a [u8]),
    /// Any other shape, parsed (boxed: a parsed reply is rare and large).
    Parsed(Box<Response>),
}

/// A reply that completes no call.
#[derive(Debug)]
#[non_exhaustive]
pub enum Unplaced {
    /// One of our ids whose call is not pending: its caller gave up (a timeout, a dropped
    /// future), or it was answered already.
    GaveUp {
        /// The id.
        id: u64,
    },
    /// An id we never send (`"1"`, `null`, `1.5`...), or none.
    Foreign(Box<Response>),
}

/// The protocol state of one client connection. See the [module docs](self).
pub struct ClientCore<R, S> {
    framer: Framer,
    /// `None` once closed, or while a step is being taken.
    handshake: Option<Handshake>,
    greeting: Option<Greeting>,
    calls: CallMap<R>,
    subscribers: Vec<S>,
    closed: Option<CloseReason>,
    /// The read buffer is out with the driver ([`ClientCore::lend_buffer`]).
    lent: bool,
    /// Stray bytes and undecodable values are skipped, not fatal: a core without a
    /// handshake talks to the guest agent, whose `guest-sync-delimited` reply starts with
    /// 0xFF and whose channel may hold the garbage of an earlier client.
    lenient: bool,
    /// What the core passed over: replies no call waits for and, when lenient, stray bytes
    /// and undecodable values.
    skipped: u64,
}

impl<R, S> std::fmt::Debug for ClientCore<R, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCore")
            .field("handshake", &self.handshake)
            .field("pending", &self.calls.len())
            .field("subscribers", &self.subscribers.len())
            .field("closed", &self.closed)
            .finish()
    }
}

impl<R, S: Subscriber> ClientCore<R, S> {
    /// A core that starts with `handshake`, refusing messages over `max_message_size` bytes.
    pub fn new(handshake: Handshake, max_message_size: usize) -> Self {
        let lenient = matches!(handshake, Handshake::Ready(_));
        ClientCore {
            lenient,
            skipped: 0,
            framer: Framer::with_limits(max_message_size, crate::DEFAULT_MAX_DEPTH),
            handshake: Some(handshake),
            greeting: None,
            calls: CallMap::default(),
            subscribers: Vec::new(),
            closed: None,
            lent: false,
        }
    }

    // ---- the handshake ----

    /// Where the handshake stands (`None` once closed).
    pub fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_ref()
    }

    /// True in command mode.
    pub fn is_ready(&self) -> bool {
        self.handshake.as_ref().is_some_and(Handshake::is_ready)
    }

    /// True when out-of-band execution was negotiated.
    pub fn oob(&self) -> bool {
        matches!(&self.handshake, Some(Handshake::Ready(r)) if r.oob())
    }

    /// The server's greeting, once it came (also when the handshake did not wait for one).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.greeting.as_ref()
    }

    /// True when `qmp_capabilities` is to be sent now.
    pub fn wants_capabilities(&self) -> bool {
        matches!(self.handshake, Some(Handshake::Capabilities(_)))
    }

    /// Appends `qmp_capabilities` to `out`, sent with `id` (an id no call uses); false, with
    /// nothing appended, when the handshake is not at that step.
    pub fn send_capabilities(&mut self, out: &mut Vec<u8>, id: u64) -> bool {
        match self.handshake.take() {
            Some(Handshake::Capabilities(send)) => {
                self.handshake = Some(Handshake::Negotiating(send.encode(out, id)));
                true
            }
            other => {
                self.handshake = other;
                false
            }
        }
    }

    // ---- calls and subscribers ----

    /// Registers a call sent (or about to be sent) with `id`, whose reply goes to `to`; when
    /// the connection has closed, hands `to` back with the reason.
    pub fn register(&mut self, id: u64, to: R) -> Result<(), (R, &CloseReason)> {
        match &self.closed {
            Some(why) => Err((to, why)),
            None => {
                self.calls.insert(id, to);
                Ok(())
            }
        }
    }

    /// Registers many calls at once (as [`register`](Self::register) each); after a close
    /// they are dropped (their callers see the channel end).
    pub fn register_all(&mut self, calls: impl IntoIterator<Item = (u64, R)>) {
        if self.closed.is_none() {
            self.calls.extend(calls);
        }
    }

    /// Forgets a pending call (its caller gave up); its reply, if one comes, is
    /// [`Unplaced::GaveUp`].
    pub fn forget(&mut self, id: u64) -> Option<R> {
        self.calls.remove(&id)
    }

    /// True while the call with `id` awaits its reply.
    pub fn is_pending(&self, id: u64) -> bool {
        self.calls.contains_key(&id)
    }

    /// How many inputs were passed over so far: replies no call waits for and, without a
    /// handshake, runs of stray bytes and undecodable values. A guest-agent client that sees
    /// this grow knows its channel held something it did not ask for, and synchronises again.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// How many calls await replies.
    pub fn pending(&self) -> usize {
        self.calls.len()
    }

    /// Keeps only the pending calls `keep` accepts (to purge calls whose callers gave up).
    pub fn retain_calls(&mut self, mut keep: impl FnMut(&R) -> bool) {
        self.calls.retain(|_, to| keep(to));
    }

    /// Adds a subscriber; it is offered the events read from now on.
    pub fn subscribe(&mut self, sub: S) {
        self.subscribers.push(sub);
    }

    /// The subscribers.
    pub fn subscribers(&self) -> &[S] {
        &self.subscribers
    }

    /// The subscribers, to find or change one.
    pub fn subscribers_mut(&mut self) -> &mut [S] {
        &mut self.subscribers
    }

    /// Keeps only the subscribers `keep` accepts.
    pub fn retain_subscribers(&mut self, keep: impl FnMut(&S) -> bool) {
        self.subscribers.retain(keep);
    }

    // ---- input ----

    /// Appends bytes read from the peer (a copy; drivers read into
    /// [`read_buffer`](Self::read_buffer) instead).
    pub fn feed(&mut self, bytes: &[u8]) {
        self.framer.extend(bytes);
    }

    /// The buffer to read into (append only), with at least `min_spare` bytes spare.
    pub fn read_buffer(&mut self, min_spare: usize) -> &mut Vec<u8> {
        self.framer.buffer_mut(min_spare)
    }

    /// Lends the read buffer out (at least `min_spare` bytes spare), for a driver that reads
    /// without holding the core (the blocking client reads while other threads register
    /// calls). Until [`restore_buffer`](Self::restore_buffer), no input is taken.
    pub fn lend_buffer(&mut self, min_spare: usize) -> Vec<u8> {
        debug_assert!(!self.lent, "the read buffer is already lent");
        self.lent = true;
        std::mem::take(self.framer.buffer_mut(min_spare))
    }

    /// Gives the lent buffer back, with the bytes read appended.
    pub fn restore_buffer(&mut self, buf: Vec<u8>) {
        debug_assert!(self.lent, "the read buffer was not lent");
        self.lent = false;
        *self.framer.buffer_mut(0) = buf;
    }

    /// The next message's outcome: `Ok(None)` when more bytes are needed, `Err` with the reason
    /// once the connection has closed (a fault in the input closes it, with that reason).
    pub fn next_input(&mut self) -> Result<Option<Input<'_, R>>, CloseReason> {
        if let Some(why) = &self.closed {
            return Err(why.clone());
        }
        if self.lent {
            return Ok(None);
        }
        let range = loop {
            match self.framer.next_range() {
                Err(FrameError::Stray { .. }) if self.lenient => self.skipped += 1,
                other => break other,
            }
        };
        let frame = match range {
            Ok(Some(range)) => self.framer.frame_at(range),
            Ok(None) => return Ok(None),
            Err(e) => return Err(shut(&mut self.closed, &mut self.handshake, CloseReason::frame(e))),
        };
        let bytes = frame.bytes;
        if let Some(id) = fast_reply_id(bytes) {
            if !matches!(&self.handshake, Some(Handshake::Negotiating(n)) if n.id() == id) {
                return Ok(Some(match self.calls.remove(&id) {
                    Some(to) => Input::Reply { id, to, reply: Reply::Frame(bytes) },
                    None => {
                        self.skipped += 1;
                        Input::Unplaced(Unplaced::GaveUp { id })
                    }
                }));
            }
        }
        let msg = match Message::from_slice(bytes) {
            Ok(msg) => msg,
            Err(_) if self.lenient => {
                self.skipped += 1;
                return Ok(Some(Input::Other));
            }
            Err(e) => {
                let excerpt = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
                let why = CloseReason::Undecodable { error: e.to_string(), excerpt };
                return Err(shut(&mut self.closed, &mut self.handshake, why));
            }
        };
        let input = match msg {
            Message::Response(resp) => {
                let input = reply(&mut self.handshake, &mut self.calls, &mut self.closed, resp)?;
                if matches!(input, Input::Unplaced(_)) {
                    self.skipped += 1;
                }
                return Ok(Some(input));
            }
            Message::Event(event) => {
                let event = Arc::new(event);
                let mut taken = 0;
                self.subscribers.retain_mut(|s| match s.offer(&event) {
                    Offer::Taken => {
                        taken += 1;
                        true
                    }
                    Offer::Declined => true,
                    Offer::Gone => false,
                });
                Input::Event { taken }
            }
            Message::Greeting(g) => match self.handshake.take() {
                Some(Handshake::Greeting(wait)) => {
                    let next = wait.greeted(&g);
                    self.greeting = Some(g);
                    let ready = match &next {
                        Handshake::Ready(r) => Some(r.oob()),
                        _ => None,
                    };
                    self.handshake = Some(next);
                    match ready {
                        // No negotiation: the greeting is the whole handshake.
                        Some(oob) => Input::Ready { oob },
                        None => Input::Greeting,
                    }
                }
                // A greeting not waited for (the handshake skipped it) is kept for those who
                // show it, and changes nothing else; so does a second one.
                other => {
                    self.handshake = other;
                    if self.greeting.is_none() {
                        self.greeting = Some(g);
                    }
                    Input::Other
                }
            },
            _ => Input::Other,
        };
        Ok(Some(input))
    }

    // ---- the end ----

    /// The peer closed its end: closes with the reason that fits the stage (before the
    /// greeting, in the middle of a message, or between messages). Call it once every
    /// complete message has been taken.
    pub fn peer_closed(&mut self) -> &CloseReason {
        let why = if self.framer.in_partial_value() {
            CloseReason::ClosedMidMessage
        } else if matches!(self.handshake, Some(Handshake::Greeting(_))) {
            CloseReason::NoGreeting
        } else {
            CloseReason::PeerClosed
        };
        self.close(why)
    }

    /// Closes the connection with `why`, unless it closed already; returns the reason that
    /// stands (the first). Pending calls stay for [`drain_calls`](Self::drain_calls).
    pub fn close(&mut self, why: CloseReason) -> &CloseReason {
        self.handshake = None;
        self.closed.get_or_insert(why)
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<&CloseReason> {
        self.closed.as_ref()
    }

    /// True once the connection has closed.
    pub fn is_closed(&self) -> bool {
        self.closed.is_some()
    }

    /// Takes every pending call (to tell each the connection closed).
    pub fn drain_calls(&mut self) -> impl Iterator<Item = (u64, R)> + '_ {
        self.calls.drain()
    }

    /// Takes every subscriber (to tell each the connection closed).
    pub fn drain_subscribers(&mut self) -> std::vec::Drain<'_, S> {
        self.subscribers.drain(..)
    }
}

/// A parsed reply: the handshake's, a pending call's, or unplaced. (Free of `self`: the
/// caller holds a borrow of the framer.)
fn reply<R>(
    handshake: &mut Option<Handshake>,
    calls: &mut CallMap<R>,
    closed: &mut Option<CloseReason>,
    resp: Response,
) -> Result<Input<'static, R>, CloseReason> {
    let id = our_call_id(resp.id.as_ref());
    if let Some(Handshake::Negotiating(n)) = handshake {
        if id == Some(n.id()) {
            // Matched just above.
            let Some(Handshake::Negotiating(n)) = handshake.take() else { unreachable!() };
            return match n.answered(resp) {
                Ok(ready) => {
                    let oob = ready.oob();
                    *handshake = Some(Handshake::Ready(ready));
                    Ok(Input::Ready { oob })
                }
                Err(e) => Err(shut(closed, handshake, CloseReason::NegotiationRefused(e))),
            };
        }
    }
    Ok(match id {
        Some(id) => match calls.remove(&id) {
            Some(to) => Input::Reply { id, to, reply: Reply::Parsed(Box::new(resp)) },
            None => Input::Unplaced(Unplaced::GaveUp { id }),
        },
        None => Input::Unplaced(Unplaced::Foreign(Box::new(resp))),
    })
}

/// Closes with `why` unless closed already; the reason that stands.
fn shut(
    closed: &mut Option<CloseReason>,
    handshake: &mut Option<Handshake>,
    why: CloseReason,
) -> CloseReason {
    *handshake = None;
    closed.get_or_insert(why).clone()
}
