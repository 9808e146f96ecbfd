//! A blocking client for programs without tokio: scripts, test harnesses, tools that make one
//! call after another. It runs no thread and no runtime of its own. The thread that waits for
//! something reads the socket itself, so a call costs what a hand-written socket loop costs:
//! one write and one blocking read.
//!
//! ```no_run
//! # fn demo() -> Result<(), qmp::Error> {
//! use std::time::Duration;
//! use qmp::EventFilter;
//!
//! let client = qmp::blocking::Client::connect("/run/qemu/vm1.qmp")?;
//! let status = client.call_raw("query-status", serde_json::Value::Null).send()?;
//! println!("{status}");
//!
//! // Subscribe before causing the event.
//! let mut stops = client.subscribe(EventFilter::name("STOP"));
//! client.call_raw("stop", serde_json::Value::Null).send()?;
//! let stop = stops.recv_timeout(Duration::from_secs(5))?;
//! println!("stopped at {:?}", stop.timestamp);
//! # Ok(()) }
//! ```
//!
//! # Behaviour
//! - **Events are read while someone waits.** With no thread of its own, the client reads the
//!   socket only while a call, a subscription's `recv`, or [`Client::is_closed`] is under way.
//!   Events that arrive in between wait in the socket (QEMU keeps them) and reach every
//!   subscription made before they are read. A program that only listens waits in
//!   [`Subscription::recv`]. This is how qemu.qmp's synchronous client and the `postgres`
//!   crate behave too.
//! - **Many threads**: the client is `Clone + Send + Sync`. Calls from several threads are
//!   pipelined; one waiting thread reads for all of them and hands each reply to its caller.
//! - **Timeouts** bound the wait for the reply; a late reply is discarded, never handed to
//!   another call.
//! - **Disconnect**: when the peer closes or dies, every waiting call fails with
//!   [`Error::Disconnected`] and every subscription ends with [`RecvError::Closed`] once its
//!   queue is empty.
//!
//! For an application that must react to events at once while it does other work, use the
//! async [`crate::Client`], whose connection task reads all the time.

mod agent;
mod conn;
mod stream;

pub use agent::Agent;

use std::net::{TcpListener, TcpStream};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use qmp_proto::{Event, Greeting};
use serde::Serialize;

use crate::address::{Address, IntoAddress};
use crate::builder::negotiation_expired;
use crate::call::{Call, Json, Returns, Typed};
use crate::commands::QueryQmpSchema;
use crate::error::{Error, NegotiationStep, Result};
use crate::schema::Schema;
use crate::subscription::{EventFilter, RecvError};
use crate::ClientBuilder;
use crate::Command;
use conn::{Conn, Got, Reply, Stream};

/// A blocking handle to one QMP connection; cheap to clone, usable from many threads. The
/// connection closes when the last client handle and subscription are dropped.
#[derive(Clone)]
pub struct Client {
    conn: Arc<Conn>,
    timeout: Option<Duration>,
    schema: Arc<SchemaState>,
}

/// The connection's schema, once fetched, and whether calls are checked against it.
struct SchemaState {
    schema: OnceLock<Arc<Schema>>,
    /// Held while fetching, so that threads asking at once share one fetch.
    fetching: Mutex<()>,
    check_arguments: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Client")
            .field("oob", &self.oob_enabled())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// Connects with the default settings: waits for the greeting, negotiates, and enables
    /// out-of-band execution when the server offers it.
    pub fn connect(addr: impl IntoAddress) -> Result<Client> {
        Self::connect_with(ClientBuilder::new(), addr)
    }

    /// Connects with the builder's settings: a unix socket path, a TCP `host:port`, TLS at
    /// `tls:host:port` ([`ClientBuilder::tls`]), or, for the guest agent, `vsock:CID:PORT` or
    /// a serial device at `serial:PATH` (see [`Address`]); waiting for a server that is
    /// starting when [`ClientBuilder::wait`] says so. Call timeouts hold on every kind: a
    /// serial device has no receive timeout, so the reads on it wait with `poll()` instead.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// let tls = qmp::TlsConfig::builder().ca_file("/etc/pki/qemu/ca-cert.pem").build()?;
    /// let builder = qmp::Client::builder().tls(tls).wait(Duration::from_secs(30));
    /// let client = qmp::blocking::Client::connect_with(builder, "tls:127.0.0.1:4444")?;
    /// # Ok(()) }
    /// ```
    ///
    /// Over TLS a thread of the connection's own runs the TLS session (the blocking reads and
    /// writes go to it through a socket pair), and no file descriptors can be passed.
    pub fn connect_with(builder: ClientBuilder, addr: impl IntoAddress) -> Result<Client> {
        let addr = addr.into_address()?;
        let stream = match crate::wait::dial_blocking(&addr, &builder)? {
            crate::wait::StdStream::Unix(s) if matches!(addr, Address::Tls(_)) => Stream::TlsRelay(s),
            crate::wait::StdStream::Unix(s) => Stream::Unix(s),
            crate::wait::StdStream::Tcp(s) => Stream::Tcp(s),
            crate::wait::StdStream::Vsock(fd) => Stream::Vsock(fd),
            crate::wait::StdStream::Serial(fd) => Stream::Serial(fd),
        };
        Self::start(builder, stream)
    }

    /// Runs the protocol over a connected stream socket handed in as a file descriptor (unix
    /// or TCP); one that is not a connected stream socket fails with [`Error::Connect`] saying
    /// what it is.
    ///
    /// ```
    /// # fn demo() -> Result<(), qmp::Error> {
    /// let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    /// # drop(theirs); // a real program hands `theirs` to QEMU (or a simulator) first
    /// let builder = qmp::Client::builder();
    /// let result = qmp::blocking::Client::from_fd(builder, ours);
    /// # assert!(result.is_err()); // nobody at the other end
    /// # Ok(()) }
    /// ```
    pub fn from_fd(builder: ClientBuilder, fd: impl Into<std::os::fd::OwnedFd>) -> Result<Client> {
        match crate::fd::connected(fd.into())? {
            crate::fd::Connected::Unix(s) => Self::start(builder, Stream::Unix(s)),
            crate::fd::Connected::Tcp(s) => Self::start(builder, Stream::Tcp(s)),
        }
    }

    /// Server mode on a listening socket handed in as a file descriptor: waits for one peer to
    /// connect and runs the protocol with it. The descriptor is closed once the peer is accepted
    /// (hand in a duplicate, `try_clone()`, to accept again later); a socket file is left in
    /// place.
    pub fn accept_fd(builder: ClientBuilder, fd: impl Into<std::os::fd::OwnedFd>) -> Result<Client> {
        let err = |source| Error::Connect { address: "the given fd".into(), source };
        let stream = match crate::fd::listening(fd.into())? {
            crate::fd::Listening::Unix(l) => Stream::Unix(l.accept().map_err(err)?.0),
            crate::fd::Listening::Tcp(l) => Stream::Tcp(l.accept().map_err(err)?.0),
        };
        Self::start(builder, stream)
    }

    /// Runs the protocol over an already connected unix stream.
    pub fn from_unix_stream(builder: ClientBuilder, stream: UnixStream) -> Result<Client> {
        Self::start(builder, Stream::Unix(stream))
    }

    /// Runs the protocol over an already connected TCP stream.
    pub fn from_tcp_stream(builder: ClientBuilder, stream: TcpStream) -> Result<Client> {
        Self::start(builder, Stream::Tcp(stream))
    }

    /// Server mode: listens on `addr` (a unix socket is made with mode 0600), waits for one
    /// peer to connect (QEMU started with `-qmp unix:PATH` without `server=on`), stops
    /// listening, and runs the protocol as a client.
    pub fn accept_with(builder: ClientBuilder, addr: impl IntoAddress) -> Result<Client> {
        let addr = addr.into_address()?;
        let err = |source| Error::Connect { address: addr.to_string(), source };
        let stream = match &addr {
            Address::Unix(path) => {
                // Mode 0600 from the first moment the socket exists at `path`.
                let listener = qmp_unix::bind_unix(path, 0o600).map_err(err)?;
                // Removed however the accept ends.
                struct Unlink<'a>(&'a std::path::Path);
                impl Drop for Unlink<'_> {
                    fn drop(&mut self) {
                        let _ = std::fs::remove_file(self.0);
                    }
                }
                let _unlink = Unlink(path);
                Stream::Unix(listener.accept().map_err(err)?.0)
            }
            Address::Tcp(hp) => {
                Stream::Tcp(TcpListener::bind(hp.as_str()).map_err(err)?.accept().map_err(err)?.0)
            }
            Address::Tls(_) => {
                return Err(Error::Unsupported(format!("cannot listen on {addr}: server mode has no TLS")))
            }
            Address::Vsock { .. } | Address::Serial(_) => {
                return Err(Error::Unsupported(format!(
                    "cannot listen on {addr}: server mode is for unix and TCP sockets"
                )))
            }
        };
        Self::start(builder, stream)
    }

    fn start(builder: ClientBuilder, stream: Stream) -> Result<Client> {
        stream.prepare().map_err(Error::Io)?;
        let conn =
            Arc::new(Conn::new(stream, builder.handshake(), builder.max_message_size, builder.event_queue));
        let schema = Arc::new(SchemaState {
            schema: OnceLock::new(),
            fetching: Mutex::new(()),
            check_arguments: builder.check_arguments,
        });
        let client = Client { conn, timeout: builder.timeout, schema };
        // The core runs the handshake; the greeting and the reply to qmp_capabilities are
        // bounded together.
        let bound = builder.negotiation_bound();
        match client.conn.handshake(Instant::now() + bound) {
            Ok(()) => {}
            Err(Error::Timeout) => {
                let step = match client.greeting() {
                    None if builder.await_greeting => NegotiationStep::Greeting,
                    _ => NegotiationStep::Capabilities,
                };
                return Err(negotiation_expired(step, bound));
            }
            Err(e) => return Err(e),
        }
        Ok(client)
    }

    /// The server's greeting (`None` when the builder was told not to wait for one).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.conn.greeting.get()
    }

    /// True when out-of-band execution was negotiated.
    pub fn oob_enabled(&self) -> bool {
        self.conn.oob.load(Ordering::Relaxed)
    }

    /// A handle to the same connection whose calls time out after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client { conn: Arc::clone(&self.conn), timeout: Some(timeout), schema: Arc::clone(&self.schema) }
    }

    /// A handle to the same connection whose calls wait as long as it takes.
    pub fn without_timeout(&self) -> Client {
        Client { conn: Arc::clone(&self.conn), timeout: None, schema: Arc::clone(&self.schema) }
    }

    /// Runs a typed command: the common case of [`call`](Self::call).
    pub fn execute<C: Command>(&self, cmd: C) -> Result<C::Output> {
        let reply = self.call_with(C::NAME, &cmd, false, &[], self.timeout)?;
        decode_as::<Typed<C>>(C::NAME, reply)
    }

    /// A call of a typed command, with options to set before [`Call::send`]:
    /// `client.call(cmd).oob().timeout(d).send()`.
    pub fn call<C: Command>(&self, cmd: C) -> Call<'_, Client, C, Typed<C>> {
        Call::new(self, C::NAME, cmd)
    }

    /// A call of any command by name, with any `Serialize` arguments (a JSON object, or
    /// `Value::Null` / `()` for none), returning a [`serde_json::Value`] (or raw JSON, with
    /// [`Call::raw_json`]).
    ///
    /// ```no_run
    /// # fn demo(client: qmp::blocking::Client) -> Result<(), qmp::Error> {
    /// let status = client.call_raw("query-status", ()).send()?;
    /// assert!(status["running"].is_boolean());
    /// # Ok(()) }
    /// ```
    pub fn call_raw<'a, A: Serialize>(&'a self, name: &'a str, args: A) -> Call<'a, Client, A, Json> {
        Call::new(self, name, args)
    }

    /// The server's schema (`query-qmp-schema`), fetched by the first call on this
    /// connection and kept for every handle of it; threads asking at once share one fetch. A
    /// fetch that fails is tried again by the next call.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), qmp::Error> {
    /// let client = qmp::blocking::Client::connect("/run/qemu/vm1.qmp")?;
    /// let schema = client.schema()?;
    /// println!("{} commands", schema.command_names().count());
    /// # Ok(()) }
    /// ```
    pub fn schema(&self) -> Result<Arc<Schema>> {
        if let Some(s) = self.schema.schema.get() {
            return Ok(Arc::clone(s));
        }
        let _fetching = self.schema.fetching.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = self.schema.schema.get() {
            return Ok(Arc::clone(s));
        }
        let reply = self.send(QueryQmpSchema::NAME, &QueryQmpSchema, false, &[], self.timeout)?;
        let schema =
            Arc::new(Schema::from_entries(decode_as::<Typed<QueryQmpSchema>>(QueryQmpSchema::NAME, reply)?));
        Ok(Arc::clone(self.schema.schema.get_or_init(|| schema)))
    }

    fn call_with<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<Reply> {
        if self.schema.check_arguments && !crate::client::UNCHECKED.contains(&name) {
            let schema = self.schema().map_err(|e| crate::client::unchecked(name, e))?;
            crate::client::check_against(&schema, name, args)?;
        }
        self.send(name, args, oob, fds, timeout)
    }

    fn send<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<Reply> {
        if oob && !self.oob_enabled() {
            return Err(Error::Unsupported(format!(
                "cannot run {name} out of band: oob was not negotiated on this connection"
            )));
        }
        if !fds.is_empty() && !self.conn.supports_fds() {
            return Err(Error::Unsupported("passing file descriptors needs a unix socket".into()));
        }
        let deadline = timeout.map(|t| Instant::now() + t);
        self.conn.call(name, args, oob, fds, deadline)
    }

    /// Synchronises with the guest agent, as [`Client::guest_sync`](crate::Client::guest_sync)
    /// does: a 0xFF byte, then `guest-sync-delimited` with a random token until the reply
    /// carries it.
    ///
    /// ```no_run
    /// # fn demo() -> Result<(), qmp::Error> {
    /// let agent = qmp::blocking::Client::connect_with(qmp::Client::builder().negotiate(false).await_greeting(false), "/run/qga.sock")?;
    /// agent.guest_sync()?;
    /// # Ok(()) }
    /// ```
    pub fn guest_sync(&self) -> Result<()> {
        use crate::ga::sync;
        self.conn.send_bytes(&[sync::RESET])?;
        let mut last = (0, serde_json::Value::Null);
        for attempt in 1..=sync::ATTEMPTS {
            let token = sync::token();
            let answer = self.call_raw("guest-sync-delimited", serde_json::json!({"id": token})).send();
            if sync::answered(attempt, token, answer, &mut last)? {
                return Ok(());
            }
        }
        Err(sync::out_of_sync(last))
    }

    /// Subscribes to the events `filter` selects, from those read after this call on
    /// (including every event caused by a command sent after it).
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        let id = self.conn.subscribe(filter);
        Subscription { conn: Arc::clone(&self.conn), id, ended: false }
    }

    /// Subscribes to every event.
    pub fn events(&self) -> Subscription {
        self.subscribe(EventFilter::any())
    }

    /// Waits up to `timeout` for the next event `filter` selects, from now on. To catch an
    /// event a command of yours causes, [`subscribe`](Self::subscribe) before the command and
    /// [`recv_timeout`](Subscription::recv_timeout) after it.
    pub fn wait_for(&self, filter: EventFilter, timeout: Duration) -> Result<Arc<Event>> {
        self.subscribe(filter).recv_timeout(timeout)
    }

    /// True once the connection has ended. Reads what has arrived (without waiting), so a
    /// peer that hung up since the last call is noticed.
    pub fn is_closed(&self) -> bool {
        self.conn.poll_closed()
    }
}

/// A reply decoded as `R` says: a frame in one pass, a parsed reply by its `return`.
fn decode_as<R: Returns>(name: &str, reply: Reply) -> Result<R::Output> {
    match reply {
        Reply::Frame(bytes) => R::from_frame(name, &bytes),
        Reply::Parsed(resp) => R::from_parsed(name, *resp),
    }
}

impl<A: Serialize, R: Returns> Call<'_, Client, A, R> {
    /// Sends the call and waits for its return.
    pub fn send(self) -> Result<R::Output> {
        let timeout = self.timeout_or(self.client.timeout);
        let reply = self.client.call_with(self.name, &self.args, self.oob, self.fds, timeout)?;
        decode_as::<R>(self.name, reply)
    }
}

/// A blocking event subscription: the events one filter selects, queued until taken, in the
/// order the server sent them. Dropping it unsubscribes. It keeps the connection open.
pub struct Subscription {
    conn: Arc<Conn>,
    id: u64,
    /// The iterator has yielded the end ([`RecvError::Closed`]); it yields nothing more.
    ended: bool,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("blocking::Subscription").field("id", &self.id).finish()
    }
}

impl Subscription {
    /// The next event, waiting as long as it takes; `Err(Lagged(n))` once after `n` events
    /// were dropped for lack of room, `Err(Closed)` when the connection is gone and the queue
    /// is empty.
    pub fn recv(&mut self) -> std::result::Result<Arc<Event>, RecvError> {
        // Without a deadline the wait ends only with an event, a notice or the end.
        got_event(self.conn.next_event(self.id, None))
            .unwrap_or(Err(RecvError::Closed(qmp_proto::client::CloseReason::DriverStopped)))
    }

    /// The next event within `timeout`, skipping lost-event notices.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Arc<Event>> {
        let deadline = Instant::now() + timeout;
        loop {
            match got_event(self.conn.next_event(self.id, Some(deadline))) {
                Some(Ok(ev)) => return Ok(ev),
                Some(Err(RecvError::Lagged(_))) => continue,
                Some(Err(RecvError::Closed(why))) => return Err(Error::Disconnected(why)),
                None => return Err(Error::Timeout),
            }
        }
    }

    /// The next event if one has arrived, without waiting; `None` when there is none.
    pub fn try_recv(&mut self) -> Option<std::result::Result<Arc<Event>, RecvError>> {
        got_event(self.conn.next_event(self.id, Some(Instant::now())))
    }

    /// How many events are queued now (read from the socket, not yet taken).
    pub fn len(&self) -> usize {
        self.conn.queued(self.id)
    }

    /// True when no event is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn got_event(got: Got) -> Option<std::result::Result<Arc<Event>, RecvError>> {
    match got {
        Got::Event(ev) => Some(Ok(ev)),
        Got::Lagged(n) => Some(Err(RecvError::Lagged(n))),
        Got::Closed(why) => Some(Err(RecvError::Closed(why))),
        Got::Reply(_) | Got::Nothing => None,
    }
}

impl Subscription {
    /// The next item as the [`Iterator`] yields it, waiting at most `timeout`: `None` when
    /// nothing came in time (or after the end was yielded).
    ///
    /// ```no_run
    /// # fn demo(client: qmp::blocking::Client) {
    /// use std::time::Duration;
    /// let mut events = client.events();
    /// while let Some(item) = events.next_timeout(Duration::from_secs(1)) {
    ///     println!("{item:?}");
    /// }
    /// # }
    /// ```
    pub fn next_timeout(&mut self, timeout: Duration) -> Option<std::result::Result<Arc<Event>, RecvError>> {
        if self.ended {
            return None;
        }
        let item = got_event(self.conn.next_event(self.id, Some(Instant::now() + timeout)))?;
        self.ended = matches!(item, Err(RecvError::Closed(_)));
        Some(item)
    }
}

/// The events, waiting for each: each item is what [`Subscription::recv`] returns, lost-event
/// notices included; after the connection closes it yields `Err(Closed(reason))` once, then
/// ends.
///
/// ```no_run
/// # fn demo(client: qmp::blocking::Client) {
/// for event in client.subscribe(qmp::EventFilter::name("STOP")).filter_map(Result::ok).take(2) {
///     println!("stopped at {:?}", event.timestamp);
/// }
/// # }
/// ```
impl Iterator for Subscription {
    type Item = std::result::Result<Arc<Event>, RecvError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        let item = self.recv();
        self.ended = matches!(item, Err(RecvError::Closed(_)));
        Some(item)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.conn.unsubscribe(self.id);
    }
}
