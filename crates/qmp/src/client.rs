//! The client handle, its builder, and the listener for server mode.

use std::future::Future;
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use qmp_proto::client::{CloseReason, Handshake};
use qmp_proto::{Event, Greeting};
use serde::Serialize;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{oneshot, Notify};

use crate::address::{Address, IntoAddress};
use crate::call::{Call, Json, Returns, Typed};
use crate::commands::QueryQmpSchema;
use crate::connection::{Answer, Connection, Outbox};
use crate::error::{Error, NegotiationStep, ProtocolFault, Result};
use crate::schema::Schema;
use crate::subscription::{CloseSlot, EventFilter, Subscriber, Subscription};
use crate::transport::Transport;
use crate::Command;

/// State every handle of one connection shares.
pub(crate) struct Shared {
    outbox: Mutex<Outbox>,
    /// Wakes the connection task: the outbox went from empty to not, or the handles are gone.
    pub(crate) wake: Notify,
    /// Set when subscribers wait in the outbox, so the task takes them before reading on.
    pub(crate) new_subscribers: AtomicBool,
    /// Set when the last client handle is dropped.
    pub(crate) clients_gone: AtomicBool,
    /// Set by the connection task when the greeting comes.
    pub(crate) greeting: OnceLock<Greeting>,
    oob: AtomicBool,
    fd_passing: bool,
    event_queue: usize,
    /// Why the connection closed: the core's reason, published once by the task (or by
    /// [`Shared::lock_outbox`] when a request's encoding panicked).
    pub(crate) closed: CloseSlot,
    pub(crate) closed_flag: AtomicBool,
    pub(crate) closed_notify: Notify,
    /// `query-qmp-schema`, fetched by the first [`Client::schema`] and kept.
    schema: tokio::sync::OnceCell<Arc<Schema>>,
    /// [`ClientBuilder::check_arguments`].
    check_arguments: bool,
}

impl Shared {
    /// The outbox. A panic while it was held (a caller's `Serialize` impl, mid-request) may
    /// have left a partial request in it, so a poisoned outbox ends the connection.
    pub(crate) fn lock_outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|poisoned| {
            let mut ob = poisoned.into_inner();
            ob.out.clear();
            let _ = self.closed.set(CloseReason::EncodingPanicked);
            ob
        })
    }

    /// Why the connection closed (a task that ended without saying is `DriverStopped`).
    fn closed_reason(&self) -> CloseReason {
        self.closed.get().cloned().unwrap_or(CloseReason::DriverStopped)
    }
}

/// A handle to one QMP connection: cheap to clone, and usable from many tasks at once. Every
/// call gets a unique `id`, so any number may be in flight (pipelined) and each reply reaches
/// its own caller.
///
/// ```no_run
/// # async fn demo() -> Result<(), qmp::Error> {
/// use qmp::commands::QueryStatus;
///
/// let client = qmp::Client::connect("/run/qemu/vm1.qmp").await?;
/// let status = client.call_raw("query-status", serde_json::Value::Null).send().await?;
/// println!("{status}");
/// # Ok(()) }
/// ```
///
/// # Behaviour
/// - One task, spawned on the current tokio runtime, owns the socket; it ends when the peer
///   hangs up or when the last handle is dropped.
/// - Dropping a call's future (or its timeout running out) never mismatches later replies:
///   replies are routed by `id` and a late one is discarded.
/// - When the connection ends, every pending call fails at once with
///   [`Error::Disconnected`] and every subscription ends with
///   [`RecvError::Closed`](crate::RecvError::Closed).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    /// Dropped with the last handle, which ends the connection task.
    _alive: Arc<Alive>,
    timeout: Option<Duration>,
}

/// Tells the connection task when the last client handle is gone.
struct Alive(Arc<Shared>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.clients_gone.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("oob", &self.oob_enabled())
            .field("closed", &self.is_closed())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Client {
    /// Connects with the default settings: waits for the greeting, negotiates, and enables
    /// out-of-band execution when the server offers it.
    pub async fn connect(addr: impl IntoAddress) -> Result<Client> {
        ClientBuilder::new().connect(addr).await
    }

    /// A builder for other settings.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// The server's greeting (`None` when the builder was told not to wait for one).
    pub fn greeting(&self) -> Option<&Greeting> {
        self.shared.greeting.get()
    }

    /// True when out-of-band execution was negotiated.
    pub fn oob_enabled(&self) -> bool {
        self.shared.oob.load(Ordering::Relaxed)
    }

    /// A handle to the same connection whose calls time out after `timeout`.
    pub fn with_timeout(&self, timeout: Duration) -> Client {
        Client { shared: Arc::clone(&self.shared), _alive: Arc::clone(&self._alive), timeout: Some(timeout) }
    }

    /// A handle to the same connection whose calls wait as long as it takes.
    pub fn without_timeout(&self) -> Client {
        Client { shared: Arc::clone(&self.shared), _alive: Arc::clone(&self._alive), timeout: None }
    }

    /// Runs a typed command: the common case of [`call`](Self::call).
    pub async fn execute<C: Command>(&self, cmd: C) -> Result<C::Output> {
        let answer = self.call_with(C::NAME, &cmd, false, &[], self.timeout).await?;
        decode_typed::<C>(answer)
    }

    /// A call of a typed command, with options to set before [`Call::send`]:
    /// `client.call(cmd).oob().timeout(d).send().await`.
    pub fn call<C: Command>(&self, cmd: C) -> Call<'_, Client, C, Typed<C>> {
        Call::new(self, C::NAME, cmd)
    }

    /// A call of any command by name, with any `Serialize` arguments (a JSON object, or
    /// `Value::Null` / `()` for none), returning a [`serde_json::Value`] (or raw JSON, with
    /// [`Call::raw_json`]).
    ///
    /// ```no_run
    /// # async fn demo(client: qmp::Client) -> Result<(), qmp::Error> {
    /// let status = client.call_raw("query-status", ()).send().await?;
    /// assert!(status["running"].is_boolean());
    /// # Ok(()) }
    /// ```
    pub fn call_raw<'a, A: Serialize>(&'a self, name: &'a str, args: A) -> Call<'a, Client, A, Json> {
        Call::new(self, name, args)
    }

    /// The server's schema (`query-qmp-schema`), fetched by the first call on this
    /// connection and kept for every handle of it; calls that run at the same time share one
    /// fetch. A fetch that fails is tried again by the next call.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp::Error> {
    /// let client = qmp::Client::connect("/run/qemu/vm1.qmp").await?;
    /// let schema = client.schema().await?;
    /// if schema.has_argument("blockdev-add", "locking") {
    ///     println!("file locking can be chosen");
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn schema(&self) -> Result<Arc<Schema>> {
        let fetch = || async {
            let answer = self.send(QueryQmpSchema::NAME, &QueryQmpSchema, false, &[], self.timeout).await?;
            Ok::<_, Error>(Arc::new(Schema::from_entries(decode_typed::<QueryQmpSchema>(answer)?)))
        };
        self.shared.schema.get_or_try_init(fetch).await.cloned()
    }

    pub(crate) async fn call_with<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<Answer> {
        if self.shared.check_arguments {
            // Boxed, so that an unchecked call's future stays as small as it was.
            Box::pin(self.check_arguments(name, args)).await?;
        }
        self.send(name, args, oob, fds, timeout).await
    }

    /// [`ClientBuilder::check_arguments`]: `args` against the schema, fetched first if need be.
    async fn check_arguments<A: Serialize + ?Sized>(&self, name: &str, args: &A) -> Result<()> {
        if UNCHECKED.contains(&name) {
            return Ok(());
        }
        let schema = self.schema().await.map_err(|e| unchecked(name, e))?;
        check_against(&schema, name, args)
    }

    async fn send<A: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &A,
        oob: bool,
        fds: &[BorrowedFd<'_>],
        timeout: Option<Duration>,
    ) -> Result<Answer> {
        if oob && !self.oob_enabled() {
            return Err(Error::Unsupported(format!(
                "cannot run {name} out of band: oob was not negotiated on this connection"
            )));
        }
        if !fds.is_empty() && !self.shared.fd_passing {
            return Err(Error::Unsupported("passing file descriptors needs a unix socket".into()));
        }
        let fds = if fds.is_empty() {
            Vec::new() // most calls: no fds, and no fallible collect to go through
        } else {
            fds.iter().map(|fd| fd.try_clone_to_owned()).collect::<std::io::Result<Vec<_>>>()?
        };
        let (reply, rx) = oneshot::channel();
        {
            let mut ob = self.shared.lock_outbox();
            if let Some(why) = self.shared.closed.get() {
                return Err(Error::Disconnected(why.clone()));
            }
            // Counted under the lock already held: no atomic of its own.
            let id = ob.next_id;
            ob.next_id += 1;
            let was_empty = ob.out.is_empty();
            let at = ob.out.len();
            // Encoded straight into the outbox; on error, encode_request leaves it as it was.
            qmp_proto::encode_request(&mut ob.out, name, args, Some(&id), oob).map_err(|source| {
                Error::Json { context: format!("cannot encode the arguments of {name}"), source }
            })?;
            if !fds.is_empty() {
                ob.fd_marks.push_back((at, fds));
            }
            ob.calls.push((id, reply));
            drop(ob);
            if was_empty {
                self.shared.wake.notify_one();
            }
        }
        let answer = match timeout {
            Some(t) => tokio::time::timeout(t, rx).await.map_err(|_| Error::Timeout)?,
            None => rx.await,
        };
        answer.map_err(|_| Error::Disconnected(self.shared.closed_reason()))?.map_err(|e| *e)
    }

    /// Subscribes to the events `filter` selects, from now on (including those caused by any
    /// command sent after this call).
    pub fn subscribe(&self, filter: EventFilter) -> Subscription {
        let sub = Subscriber::new(filter, self.shared.event_queue, Arc::clone(&self.shared.closed));
        let mut ob = self.shared.lock_outbox();
        // Once closed, the subscription sees the reason at once.
        if self.shared.closed.get().is_none() {
            ob.subscribers.push(Arc::clone(&sub));
            self.shared.new_subscribers.store(true, Ordering::Relaxed);
        }
        drop(ob);
        Subscription::new(sub)
    }

    /// Subscribes to every event.
    pub fn events(&self) -> Subscription {
        self.subscribe(EventFilter::any())
    }

    /// Waits up to `timeout` for the next event `filter` selects. The subscription is made
    /// when this is *called*, not when it is awaited, so an event caused by a command run in
    /// between is not missed:
    ///
    /// ```no_run
    /// # async fn demo(client: qmp::Client) -> Result<(), qmp::Error> {
    /// use std::time::Duration;
    /// use qmp::EventFilter;
    ///
    /// let stopped = client.wait_for(EventFilter::name("STOP"), Duration::from_secs(5));
    /// client.call_raw("stop", serde_json::Value::Null).send().await?;
    /// let event = stopped.await?;
    /// # Ok(()) }
    /// ```
    pub fn wait_for(
        &self,
        filter: EventFilter,
        timeout: Duration,
    ) -> impl Future<Output = Result<Arc<Event>>> + Send + 'static {
        let mut sub = self.subscribe(filter);
        async move { sub.next_within(timeout).await }
    }

    /// True once the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.shared.closed_flag.load(Ordering::Acquire)
    }

    /// Resolves when the connection ends; returns why.
    pub async fn closed(&self) -> CloseReason {
        loop {
            let notified = self.shared.closed_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_closed() {
                return self.shared.closed_reason();
            }
            notified.await;
        }
    }
}

/// Commands never checked against the schema: negotiation (the schema cannot be had before
/// it), and the schema itself.
pub(crate) const UNCHECKED: &[&str] = &["qmp_capabilities", "query-qmp-schema"];

/// A schema the server refuses (no `query-qmp-schema`: the guest agent, a small server) leaves
/// nothing to check against: [`Error::Unsupported`] saying so, not the refusal of a command
/// the caller never ran. Other failures (a disconnect, a timeout) stay as they are.
pub(crate) fn unchecked(name: &str, e: Error) -> Error {
    match e {
        Error::Qmp(q) => Error::Unsupported(format!(
            "cannot check the arguments of {name}: the server refused query-qmp-schema ({q})"
        )),
        other => other,
    }
}

/// Checks a call's arguments for [`ClientBuilder::check_arguments`]. A command the schema does
/// not have is left for the server to refuse (`CommandNotFound`, as without the check).
pub(crate) fn check_against<A: Serialize + ?Sized>(schema: &Schema, name: &str, args: &A) -> Result<()> {
    if !schema.has_command(name) {
        return Ok(());
    }
    let value = serde_json::to_value(args).map_err(|source| Error::Json {
        context: format!("cannot encode the arguments of {name}"),
        source,
    })?;
    schema
        .validate_arguments(name, &value)
        .map_err(|problems| Error::InvalidArguments { command: name.to_owned(), problems })
}

/// A typed command's answer: a frame goes to the command's own reply decoder.
fn decode_typed<C: Command>(answer: Answer) -> Result<C::Output> {
    decode_as::<Typed<C>>(C::NAME, answer)
}

fn decode_as<R: Returns>(name: &str, answer: Answer) -> Result<R::Output> {
    match answer {
        Answer::Frame(bytes) => R::from_frame(name, &bytes),
        Answer::Parsed(resp) => R::from_parsed(name, *resp),
    }
}

impl<A: Serialize, R: Returns> Call<'_, Client, A, R> {
    /// Sends the call and waits for its return.
    pub async fn send(self) -> Result<R::Output> {
        let timeout = self.timeout_or(self.client.timeout);
        let answer = self.client.call_with(self.name, &self.args, self.oob, self.fds, timeout).await?;
        decode_as::<R>(self.name, answer)
    }
}

/// Decodes one framed reply (`{"return": ...}` or `{"error": ...}`) straight into `T` in one
/// pass, as the client does with every reply in QEMU's shape: the server's error becomes
/// [`Error::Qmp`]. `name` is the command, for error messages. Useful to tools that frame a
/// stream themselves (a recording, a proxy). [`qmp_qapi::decode_reply`] with this crate's
/// error.
///
/// ```
/// let status: serde_json::Value =
///     qmp::decode_reply("query-status", br#"{"return": {"status": "running"}, "id": 1}"#).unwrap();
/// assert_eq!(status["status"], "running");
///
/// let err = qmp::decode_reply::<serde_json::Value>(
///     "nope",
///     br#"{"id": 2, "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}"#,
/// )
/// .unwrap_err();
/// assert_eq!(err.qmp_error().unwrap().class, qmp::ErrorClass::CommandNotFound);
/// ```
pub fn decode_reply<T: serde::de::DeserializeOwned>(name: &str, frame: &[u8]) -> Result<T> {
    Ok(qmp_qapi::decode_reply(name, frame)?)
}

/// Settings for a connection.
///
/// ```no_run
/// # async fn demo() -> Result<(), qmp::Error> {
/// use std::time::Duration;
///
/// let client = qmp::Client::builder()
///     .oob(false)                        // don't enable out-of-band execution
///     .timeout(Duration::from_secs(10))  // every call, and the greeting
///     .event_queue(4096)                 // events each subscriber may hold
///     .connect("localhost:4444")
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    pub(crate) await_greeting: bool,
    pub(crate) negotiate: bool,
    pub(crate) oob: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) negotiation_timeout: Option<Duration>,
    pub(crate) max_message_size: usize,
    pub(crate) event_queue: usize,
    pub(crate) check_arguments: bool,
    /// [`ClientBuilder::tls`].
    pub(crate) tls: Option<crate::TlsConfig>,
    /// [`ClientBuilder::wait`].
    pub(crate) wait: Option<Duration>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// How long the greeting and the answer to `qmp_capabilities` may take together when neither
/// [`ClientBuilder::negotiation_timeout`] nor [`ClientBuilder::timeout`] is set.
pub const DEFAULT_NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(30);

impl ClientBuilder {
    /// The bound on the whole negotiation: the negotiation timeout, else the call timeout,
    /// else [`DEFAULT_NEGOTIATION_TIMEOUT`].
    pub(crate) fn negotiation_bound(&self) -> Duration {
        self.negotiation_timeout.or(self.timeout).unwrap_or(DEFAULT_NEGOTIATION_TIMEOUT)
    }
}

/// The error for a negotiation that did not finish within `bound`: a peer that is not QEMU,
/// or one that is stuck, is a protocol failure (not a call timeout) and says which step it
/// missed.
pub(crate) fn negotiation_expired(step: NegotiationStep, bound: Duration) -> Error {
    Error::Protocol(ProtocolFault::NegotiationTimeout { step, bound })
}

impl ClientBuilder {
    /// The defaults: greeting, negotiation with oob when offered, no call timeout, a 16 MiB
    /// message cap, 1024 queued events per subscriber.
    pub fn new() -> Self {
        ClientBuilder {
            await_greeting: true,
            negotiate: true,
            oob: true,
            timeout: None,
            negotiation_timeout: None,
            max_message_size: qmp_proto::DEFAULT_MAX_MESSAGE_SIZE,
            event_queue: 1024,
            check_arguments: false,
            tls: None,
            wait: None,
        }
    }

    /// Whether to send `qmp_capabilities` (default true). `false` with
    /// [`await_greeting(false)`](Self::await_greeting) suits the guest agent, which has neither.
    pub fn negotiate(mut self, yes: bool) -> Self {
        self.negotiate = yes;
        self
    }

    /// Whether to wait for the greeting before anything else (default true).
    pub fn await_greeting(mut self, yes: bool) -> Self {
        self.await_greeting = yes;
        self
    }

    /// Whether to enable out-of-band execution when the server offers it (default true).
    pub fn oob(mut self, yes: bool) -> Self {
        self.oob = yes;
        self
    }

    /// A timeout for every call, and for the negotiation unless
    /// [`negotiation_timeout`](Self::negotiation_timeout) is set (default: none for calls).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// How long the greeting and the reply to `qmp_capabilities` may take together (default:
    /// the [`timeout`](Self::timeout) when set, else [`DEFAULT_NEGOTIATION_TIMEOUT`], 30 s).
    /// A peer that accepts the connection and then says nothing, or sends half a message, fails
    /// the connect with [`Error::Protocol`] after it instead of hanging.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp::Error> {
    /// use std::time::Duration;
    /// let client = qmp::Client::builder()
    ///     .negotiation_timeout(Duration::from_secs(5))
    ///     .connect("/run/vm.qmp")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub fn negotiation_timeout(mut self, bound: Duration) -> Self {
        self.negotiation_timeout = Some(bound);
        self
    }

    /// The cap on one message from the server (default 16 MiB); a larger one ends the
    /// connection with a protocol error.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// How many events each subscriber's queue holds before the oldest are dropped
    /// (default 1024).
    pub fn event_queue(mut self, events: usize) -> Self {
        self.event_queue = events;
        self
    }

    /// Whether every call's arguments are checked against the server's schema before they
    /// are sent (default false). When on, the first call fetches `query-qmp-schema` (kept for
    /// the connection, see [`Client::schema`]), and a call whose arguments do not fit fails
    /// with [`Error::InvalidArguments`], naming each problem, without sending anything. A
    /// command the schema does not have is sent as it is, for the server to answer
    /// `CommandNotFound`; `qmp_capabilities` is never checked. A server that refuses
    /// `query-qmp-schema` fails checked calls with [`Error::Unsupported`] (the fetch is tried
    /// again by the next call). Off, calls do no extra work.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp::Error> {
    /// use serde_json::json;
    /// let client = qmp::Client::builder().check_arguments(true).connect("/run/vm.qmp").await?;
    /// let err = client.call_raw("blockdev-add", json!({"driver": "null-co", "bogus": 1})).send().await;
    /// assert!(matches!(err, Err(qmp::Error::InvalidArguments { .. })));
    /// # Ok(()) }
    /// ```
    pub fn check_arguments(mut self, yes: bool) -> Self {
        self.check_arguments = yes;
        self
    }

    /// TLS for `tls:HOST:PORT` addresses: the CA to trust, and a client certificate when the
    /// server wants one (see [`TlsConfig`](crate::TlsConfig)). The handshake is bounded by
    /// the [`negotiation_timeout`](Self::negotiation_timeout). Used by both clients; other
    /// addresses ignore it. Over TLS no file descriptors can be passed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let tls = qmp::TlsConfig::builder().ca_file("/etc/pki/qemu/ca-cert.pem").build()?;
    /// let client = qmp::Client::builder().tls(tls).connect("tls:127.0.0.1:4444").await?;
    /// # Ok(()) }
    /// ```
    pub fn tls(mut self, config: crate::TlsConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Waits up to `wait` for a server that is starting: `connect` tries again while the
    /// unix socket does not exist or the connection is refused (nothing listens yet),
    /// pausing 10 ms, doubling to 100 ms, so a manager can spawn QEMU and connect at once.
    /// Other failures (permission denied, a TLS handshake that fails) end it at once; when
    /// the wait runs out the error ([`Error::Connect`], its source of kind `TimedOut`) names
    /// the address and the wait. Default: no wait, one try. Used by both clients.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp::Error> {
    /// use std::time::Duration;
    /// // std::process::Command::new("qemu-system-x86_64").args([..., "-qmp", "unix:/run/vm1.qmp,server=on,wait=off"]).spawn()?;
    /// let client = qmp::Client::builder().wait(Duration::from_secs(30)).connect("/run/vm1.qmp").await?;
    /// # Ok(()) }
    /// ```
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Connects to a unix socket path, a TCP `host:port`, or TLS at `tls:host:port` (with
    /// [`tls`](Self::tls)), waiting for the server when [`wait`](Self::wait) says so.
    pub async fn connect(self, addr: impl IntoAddress) -> Result<Client> {
        let addr = addr.into_address()?;
        let io = crate::wait::dial(&addr, &self).await?;
        self.start(io).await
    }

    /// Runs the protocol over a connected stream socket handed in as a file descriptor (unix
    /// or TCP: a socket pair's end, a socket inherited from a parent). A descriptor that is not
    /// a connected stream socket fails with [`Error::Connect`] saying what it is. Must be
    /// called within a tokio runtime.
    ///
    /// ```no_run
    /// # async fn demo(fd: std::os::fd::OwnedFd) -> Result<(), qmp::Error> {
    /// let client = qmp::Client::builder().connect_fd(fd).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_fd(self, fd: impl Into<std::os::fd::OwnedFd>) -> Result<Client> {
        let connect_err = |source| Error::Connect { address: "the given fd".into(), source };
        match crate::fd::connected(fd.into())? {
            crate::fd::Connected::Unix(s) => {
                s.set_nonblocking(true).map_err(connect_err)?;
                self.connect_unix_stream(UnixStream::from_std(s).map_err(connect_err)?).await
            }
            crate::fd::Connected::Tcp(s) => {
                s.set_nonblocking(true).map_err(connect_err)?;
                self.connect_tcp_stream(TcpStream::from_std(s).map_err(connect_err)?).await
            }
        }
    }

    /// Server mode on a listening socket handed in as a file descriptor (unix or TCP, made by
    /// a manager or systemd): [`Listener::accept`] takes the peers that connect. The listener
    /// does not remove a socket file it did not create.
    ///
    /// ```no_run
    /// # async fn demo(fd: std::os::fd::OwnedFd) -> Result<(), qmp::Error> {
    /// let listener = qmp::Client::builder().listen_fd(fd)?;
    /// let client = listener.accept().await?;
    /// # Ok(()) }
    /// ```
    pub fn listen_fd(self, fd: impl Into<std::os::fd::OwnedFd>) -> Result<Listener> {
        let err = |source| Error::Connect { address: "the given fd".into(), source };
        let inner = match crate::fd::listening(fd.into())? {
            crate::fd::Listening::Unix(l) => {
                l.set_nonblocking(true).map_err(err)?;
                ListenerInner::Unix(UnixListener::from_std(l).map_err(err)?, None)
            }
            crate::fd::Listening::Tcp(l) => {
                l.set_nonblocking(true).map_err(err)?;
                ListenerInner::Tcp(TcpListener::from_std(l).map_err(err)?)
            }
        };
        Ok(Listener { inner, builder: self })
    }

    /// Runs the protocol over an already connected unix stream.
    pub async fn connect_unix_stream(self, stream: UnixStream) -> Result<Client> {
        self.start(Transport::Unix(stream)).await
    }

    /// Runs the protocol over an already connected TCP stream.
    pub async fn connect_tcp_stream(self, stream: TcpStream) -> Result<Client> {
        let _ = stream.set_nodelay(true);
        self.start(Transport::Tcp(stream)).await
    }

    /// Server mode: listens on `addr` for the peer to connect to us (QEMU started with
    /// `-qmp unix:PATH` without `server=on`). Start the peer after this returns, then
    /// [`Listener::accept`].
    pub fn listen(self, addr: impl IntoAddress) -> Result<Listener> {
        Listener::bind(addr.into_address()?, self)
    }

    /// Server mode in one step: listens on `addr`, takes one connection, stops listening.
    pub async fn accept(self, addr: impl IntoAddress) -> Result<Client> {
        self.listen(addr)?.accept().await
    }

    /// The handshake the settings ask for.
    pub(crate) fn handshake(&self) -> Handshake {
        Handshake::new(self.await_greeting, self.negotiate, self.oob)
    }

    async fn start(self, io: Transport) -> Result<Client> {
        let (ready_tx, ready_rx) = oneshot::channel();
        let shared = Arc::new(Shared {
            outbox: Mutex::new(Outbox::default()),
            wake: Notify::new(),
            new_subscribers: AtomicBool::new(false),
            clients_gone: AtomicBool::new(false),
            greeting: OnceLock::new(),
            oob: AtomicBool::new(false),
            fd_passing: io.supports_fds(),
            event_queue: self.event_queue.max(1),
            closed: CloseSlot::default(),
            closed_flag: AtomicBool::new(false),
            closed_notify: Notify::new(),
            schema: tokio::sync::OnceCell::new(),
            check_arguments: self.check_arguments,
        });
        let conn =
            Connection::new(io, self.handshake(), self.max_message_size, ready_tx, Arc::clone(&shared));
        tokio::spawn(conn.run());
        let alive = Arc::new(Alive(Arc::clone(&shared)));
        let client = Client { shared, _alive: alive, timeout: self.timeout };

        // The connection task runs the handshake; the greeting and the reply to
        // qmp_capabilities are bounded together.
        let bound = self.negotiation_bound();
        match tokio::time::timeout(bound, ready_rx).await {
            Ok(Ok(Ok(oob))) => client.shared.oob.store(oob, Ordering::Relaxed),
            Ok(Ok(Err(why))) => return Err(Error::Disconnected(why)),
            Ok(Err(_)) => return Err(Error::Disconnected(client.shared.closed_reason())),
            Err(_) => {
                let step = match client.shared.greeting.get() {
                    None if self.await_greeting => NegotiationStep::Greeting,
                    _ => NegotiationStep::Capabilities,
                };
                return Err(negotiation_expired(step, bound));
            }
        }
        Ok(client)
    }
}

/// A listening socket for server mode: the peer (QEMU with `-qmp unix:PATH`) connects to us.
/// A unix socket is created with mode 0600 and removed when the listener is dropped.
pub struct Listener {
    inner: ListenerInner,
    builder: ClientBuilder,
}

enum ListenerInner {
    /// With the path to remove on drop (none for a listener handed in).
    Unix(UnixListener, Option<PathBuf>),
    Tcp(TcpListener),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("address", &self.address().to_string()).finish()
    }
}

impl Listener {
    fn bind(addr: Address, builder: ClientBuilder) -> Result<Listener> {
        let bind_err = |source| Error::Connect { address: addr.to_string(), source };
        let inner = match &addr {
            Address::Unix(path) => {
                // Mode 0600 from the first moment the socket exists at `path`.
                let listener = qmp_unix::bind_unix(path, 0o600).map_err(bind_err)?;
                listener.set_nonblocking(true).map_err(bind_err)?;
                ListenerInner::Unix(UnixListener::from_std(listener).map_err(bind_err)?, Some(path.clone()))
            }
            Address::Tls(_) => {
                return Err(Error::Unsupported(format!("cannot listen on {addr}: server mode has no TLS")))
            }
            Address::Tcp(hp) => {
                let std_listener = std::net::TcpListener::bind(hp.as_str()).map_err(bind_err)?;
                std_listener.set_nonblocking(true).map_err(bind_err)?;
                ListenerInner::Tcp(TcpListener::from_std(std_listener).map_err(bind_err)?)
            }
        };
        Ok(Listener { inner, builder })
    }

    /// The address the listener is bound to (with the real port for `host:0`).
    pub fn address(&self) -> Address {
        match &self.inner {
            ListenerInner::Unix(_, Some(path)) => Address::Unix(path.clone()),
            ListenerInner::Unix(l, None) => {
                let local = l.local_addr().ok();
                Address::Unix(
                    local.as_ref().and_then(|a| a.as_pathname()).map(PathBuf::from).unwrap_or_default(),
                )
            }
            ListenerInner::Tcp(l) => match l.local_addr() {
                Ok(a) => Address::Tcp(a.to_string()),
                Err(_) => Address::Tcp(String::new()),
            },
        }
    }

    /// Takes the next connection and runs the protocol on it as a client.
    pub async fn accept(&self) -> Result<Client> {
        let builder = self.builder.clone();
        let err = |source| Error::Connect { address: self.address().to_string(), source };
        match &self.inner {
            ListenerInner::Unix(l, _) => {
                let (stream, _) = l.accept().await.map_err(err)?;
                builder.connect_unix_stream(stream).await
            }
            ListenerInner::Tcp(l) => {
                let (stream, _) = l.accept().await.map_err(err)?;
                builder.connect_tcp_stream(stream).await
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let ListenerInner::Unix(_, Some(path)) = &self.inner {
            let _ = std::fs::remove_file(path);
        }
    }
}
