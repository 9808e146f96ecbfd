//! The client's settings, and connecting with them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use qmp_proto::client::Handshake;
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{oneshot, Notify};

use crate::address::IntoAddress;
use crate::client::{Alive, Client, Shared};
use crate::connection::{Connection, Outbox};
use crate::error::{Error, NegotiationStep, ProtocolFault, Result};
use crate::listener::Listener;
use crate::subscription::CloseSlot;
use crate::transport::Transport;

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
    /// unix socket (or serial device) does not exist or the connection is refused (nothing
    /// listens yet; for vsock also while no machine has the CID or the guest resets or does
    /// not answer the connection),
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

    /// Connects to a unix socket path, a TCP `host:port`, TLS at `tls:host:port` (with
    /// [`tls`](Self::tls)), or, for the guest agent, `vsock:CID:PORT` or a serial device at
    /// `serial:PATH` (see [`Address`](crate::Address)), waiting for the server when
    /// [`wait`](Self::wait) says so. Over vsock and serial no file descriptors can be passed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), qmp::Error> {
    /// // QEMU: -chardev pty,id=qga0 -device virtio-serial -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0
    /// let agent = qmp::Client::builder().negotiate(false).await_greeting(false).connect("serial:/dev/pts/5").await?;
    /// agent.guest_sync().await?;
    /// # Ok(()) }
    /// ```
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
        Listener::from_fd(fd.into(), self)
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
            skipped: AtomicU64::new(0),
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
