//! The server: registered commands and events, and listeners that serve them.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use qmp_proto::{QmpError, Timestamp};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::sync::{broadcast, watch, Notify};

use crate::fds::{BytesOnly, ClientEvent, ConnRead, Context, MonitorId};
use crate::qjson;
use crate::schema::{SchemaWriter, Struct, Ty};

/// A command's arguments, already checked against its declared [`Struct`].
pub type Args = Map<String, Value>;
/// What a command answers: its return value, or an error.
pub type Reply = Result<Value, QmpError>;
/// The future an async command returns.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send + 'static>>;

/// A sync handler that is given its connection's [`Context`].
pub(crate) type ContextHandler = dyn Fn(Args, &mut Context<'_>) -> Reply + Send + Sync;

pub(crate) enum Handler {
    Sync(Box<dyn Fn(Args) -> Reply + Send + Sync>),
    Async(Box<dyn Fn(Args) -> ReplyFuture + Send + Sync>),
    /// Sync, with the connection's [`Context`] (passed descriptors, monitor).
    WithContext(Box<ContextHandler>),
    /// `qmp_capabilities`, handled by the connection itself.
    Capabilities,
}

/// A registered command.
pub(crate) struct Command {
    pub args: Struct,
    pub ret: Ty,
    pub allow_oob: bool,
    pub handler: Handler,
}

/// Describes a command to register: its name, arguments and return type.
///
/// ```
/// use qmp_server::{CommandSpec, schema::Ty};
/// let spec = CommandSpec::new("block-job-pause").arg("device", Ty::Str);
/// ```
pub struct CommandSpec {
    name: String,
    args: Struct,
    ret: Ty,
    allow_oob: bool,
}

impl CommandSpec {
    /// The command's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command without arguments, returning anything.
    pub fn new(name: &str) -> Self {
        CommandSpec { name: name.into(), args: Struct::new(), ret: Ty::Any, allow_oob: false }
    }

    /// Adds a required argument.
    pub fn arg(mut self, name: &str, ty: Ty) -> Self {
        self.args = self.args.member(name, ty);
        self
    }

    /// Adds an optional argument.
    pub fn opt(mut self, name: &str, ty: Ty) -> Self {
        self.args = self.args.optional(name, ty);
        self
    }

    /// Hands the arguments to the handler unchecked, as QEMU does for its `'gen': false`
    /// commands (`device_add` takes any property of the device); they are still declared.
    pub fn unchecked(mut self) -> Self {
        self.args = self.args.unchecked();
        self
    }

    /// The argument type.
    pub(crate) fn argument_type(&self) -> &Struct {
        &self.args
    }

    /// Replaces the argument type wholesale (for flat unions).
    pub fn args(mut self, args: Struct) -> Self {
        self.args = args;
        self
    }

    /// Declares the return type (shown by `query-qmp-schema`).
    pub fn returns(mut self, ty: Ty) -> Self {
        self.ret = ty;
        self
    }

    /// Allows `exec-oob` for this command (it must not wait on in-band work).
    pub fn allow_oob(mut self) -> Self {
        self.allow_oob = true;
        self
    }
}

/// The greeting's version and package string.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    /// (major, minor, micro).
    pub triple: (i64, i64, i64),
    /// The package string.
    pub package: String,
}

/// Builds a [`Server`]: register commands and events, then [`build`](ServerBuilder::build).
pub struct ServerBuilder {
    commands: HashMap<String, Arc<Command>>,
    order: Vec<String>,
    events: Vec<(String, Struct)>,
    version: VersionInfo,
    oob: bool,
    max_message_size: usize,
    max_connections: usize,
    channel: broadcast::Sender<Arc<[u8]>>,
    /// Whether `events()` handed out the channel (its capacity is then fixed).
    events_taken: bool,
    client_hooks: Vec<ClientHook>,
}

type ClientHook = Box<dyn Fn(ClientEvent) + Send + Sync>;

impl ServerBuilder {
    fn new() -> Self {
        let mut b = ServerBuilder {
            commands: HashMap::new(),
            order: Vec::new(),
            events: Vec::new(),
            version: VersionInfo { triple: (7, 2, 22), package: String::new() },
            oob: true,
            max_message_size: 16 << 20,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            channel: broadcast::channel(4096).0,
            events_taken: false,
            client_hooks: Vec::new(),
        };
        let caps = Ty::array(Ty::enumeration("QMPCapability", ["oob"]));
        b.insert(CommandSpec::new("qmp_capabilities").opt("enable", caps), Handler::Capabilities);
        b
    }

    fn insert(&mut self, spec: CommandSpec, handler: Handler) {
        let cmd = Command { args: spec.args, ret: spec.ret, allow_oob: spec.allow_oob, handler };
        if self.commands.insert(spec.name.clone(), Arc::new(cmd)).is_none() {
            self.order.push(spec.name);
        }
    }

    /// Registers a command answered synchronously on the connection's task (keep it quick).
    pub fn command<F>(mut self, spec: CommandSpec, handler: F) -> Self
    where
        F: Fn(Args) -> Reply + Send + Sync + 'static,
    {
        self.insert(spec, Handler::Sync(Box::new(handler)));
        self
    }

    /// Registers a command answered by a future; replies stay in request order.
    pub fn command_async<F, Fut>(mut self, spec: CommandSpec, handler: F) -> Self
    where
        F: Fn(Args) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        self.insert(spec, Handler::Async(Box::new(move |a| Box::pin(handler(a)))));
        self
    }

    /// Registers a command answered synchronously with its connection's [`Context`] at hand:
    /// the descriptors the client passed over a unix socket (SCM_RIGHTS), and the monitor
    /// the connection belongs to. How descriptors are held and taken follows QEMU; see
    /// [`Context::take_fd`].
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// use qmp_server::{CommandSpec, QmpError, ErrorClass, Server, schema::Ty};
    /// use serde_json::json;
    ///
    /// # #[tokio::main(flavor = "multi_thread", worker_threads = 1)] async fn main() -> std::io::Result<()> {
    /// let server = Server::builder()
    ///     .command_with_context(CommandSpec::new("take-fd").arg("name", Ty::Str), |_args, cx| {
    ///         let fd = cx.take_fd().ok_or_else(|| {
    ///             QmpError::new(ErrorClass::GenericError, "No file descriptor supplied via SCM_RIGHTS")
    ///         })?;
    ///         // Keep `fd` (an OwnedFd) somewhere; here it is closed on return.
    ///         Ok(json!({"fd": fd.as_raw_fd()}))
    ///     })
    ///     .build();
    ///
    /// let (client, conn) = tokio::net::UnixStream::pair()?;
    /// tokio::spawn({ let s = server.clone(); async move { s.serve_unix_stream(conn).await } });
    /// // Send the request with a descriptor (here: the client's own socket) attached, and
    /// // read the replies blocking (the server runs on the runtime's worker).
    /// let client = client.into_std()?;
    /// client.set_nonblocking(false)?;
    /// use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    /// let req = b"{'execute': 'qmp_capabilities'}{'execute': 'take-fd', 'arguments': {'name': 'x'}}";
    /// let fds = [client.as_raw_fd()];
    /// sendmsg::<()>(client.as_raw_fd(), &[std::io::IoSlice::new(req)], &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)?;
    /// use std::io::{BufRead, BufReader};
    /// let mut lines = BufReader::new(&client).lines();
    /// let _greeting = lines.next().unwrap()?;
    /// assert_eq!(lines.next().unwrap()?, "{\"return\": {}}");
    /// assert!(lines.next().unwrap()?.starts_with("{\"return\": {\"fd\": "));
    /// # Ok(()) }
    /// ```
    pub fn command_with_context<F>(mut self, spec: CommandSpec, handler: F) -> Self
    where
        F: Fn(Args, &mut Context<'_>) -> Reply + Send + Sync + 'static,
    {
        self.insert(spec, Handler::WithContext(Box::new(handler)));
        self
    }

    /// Calls `hook` as clients come and go and monitors end (see [`ClientEvent`]), on the
    /// connection's task, in order for each monitor: for state kept per monitor (named
    /// descriptors, as QEMU's `getfd` keeps them) or per client. Keep it quick; it must
    /// not panic.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    /// use qmp_server::{ClientEvent, Server};
    ///
    /// let clients = Arc::new(AtomicUsize::new(0));
    /// let counter = clients.clone();
    /// let server = Server::builder()
    ///     .on_client(move |event| match event {
    ///         ClientEvent::Connected(_) => drop(counter.fetch_add(1, Ordering::AcqRel)),
    ///         ClientEvent::Disconnected(_) => drop(counter.fetch_sub(1, Ordering::AcqRel)),
    ///         _ => {}
    ///     })
    ///     .build();
    /// ```
    pub fn on_client<F>(mut self, hook: F) -> Self
    where
        F: Fn(ClientEvent) + Send + Sync + 'static,
    {
        self.client_hooks.push(Box::new(hook));
        self
    }

    /// Declares an event (for `query-qmp-schema`); emitting undeclared events works too.
    pub fn event(mut self, name: &str, data: Struct) -> Self {
        self.events.push((name.into(), data));
        self
    }

    /// Sets the version the greeting reports.
    pub fn version(mut self, major: i64, minor: i64, micro: i64, package: &str) -> Self {
        self.version = VersionInfo { triple: (major, minor, micro), package: package.into() };
        self
    }

    /// Whether to offer the `oob` capability (default: yes).
    pub fn oob(mut self, offer: bool) -> Self {
        self.oob = offer;
        self
    }

    /// Caps one incoming message's size (default 16 MiB); larger ones get QEMU's
    /// "JSON token size limit exceeded".
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Caps how many clients are served at once (default [`DEFAULT_MAX_CONNECTIONS`]).
    ///
    /// A client that connects to a listener ([`Server::serve_unix`], [`Server::serve_tcp`])
    /// while [`Server::connections`] is at the cap is refused instead of greeted: it is sent
    /// one error object in QEMU's shape and then closed, for example
    ///
    /// ```text
    /// {"error": {"class": "GenericError", "desc": "Too many QMP connections: this server serves at most 512 at once; try again later"}}
    /// ```
    ///
    /// Clients already connected are unaffected, and once one leaves the next is served.
    /// Connections handed to [`Server::serve_stream`] count towards the cap but are never
    /// refused. Each client costs a file descriptor, so keep the cap well below the process's
    /// `RLIMIT_NOFILE` (often 1024); a cap of 0 refuses every client.
    /// [`Server::set_max_connections`] changes it later.
    ///
    /// ```
    /// let server = qmp_server::Server::builder().max_connections(64).build();
    /// assert_eq!(server.max_connections(), 64);
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// How many events a slow client may fall behind before it loses some (default 4096).
    /// Call it before [`events`](ServerBuilder::events); afterwards it has no effect.
    pub fn event_capacity(mut self, n: usize) -> Self {
        if self.events_taken {
            tracing::warn!("event_capacity() after events() is ignored");
        } else {
            self.channel = broadcast::channel(n.max(1)).0;
        }
        self
    }

    /// The event handle of the server being built, for handlers (or state they share) to
    /// capture before [`build`](ServerBuilder::build); [`Server::events`] returns the same.
    pub fn events(&mut self) -> Events {
        self.events_taken = true;
        Events { tx: self.channel.clone() }
    }

    /// Finishes: adds `query-commands` and `query-qmp-schema` built from what is registered.
    pub fn build(mut self) -> Server {
        let mut names: Vec<String> = self.order.clone();
        names.push("query-commands".into());
        names.push("query-qmp-schema".into());
        let commands_list: Value = names.iter().map(|n| serde_json::json!({"name": n})).collect();
        self.insert(
            CommandSpec::new("query-commands"),
            Handler::Sync(Box::new(move |_| Ok(commands_list.clone()))),
        );
        // The schema is rendered after query-qmp-schema itself is registered, so it lists itself.
        let slot: Arc<std::sync::OnceLock<Value>> = Arc::default();
        let reader = slot.clone();
        self.insert(
            CommandSpec::new("query-qmp-schema"),
            Handler::Sync(Box::new(move |_| Ok(reader.get().cloned().unwrap_or(Value::Array(vec![]))))),
        );
        let mut w = SchemaWriter::default();
        for name in &self.order {
            let c = &self.commands[name];
            w.command(name, &c.args, &c.ret, c.allow_oob);
        }
        for (name, data) in &self.events {
            w.event(name, data);
        }
        let _ = slot.set(Value::Array(w.finish()));

        let events = self.channel;
        let (shutdown, _) = watch::channel(false);
        let (v, p) = (self.version.triple, &self.version.package);
        let mut greeting = Vec::new();
        // QEMU's member order: {"QMP": {"version": {"qemu": {"micro", "minor", "major"}, "package"}, "capabilities"}}.
        greeting.extend_from_slice(b"{\"QMP\": {\"version\": {\"qemu\": ");
        greeting.extend_from_slice(
            format!("{{\"micro\": {}, \"minor\": {}, \"major\": {}}}", v.2, v.1, v.0).as_bytes(),
        );
        greeting.extend_from_slice(b", \"package\": ");
        qjson::write_str(&mut greeting, p);
        greeting.extend_from_slice(if self.oob {
            b"}, \"capabilities\": [\"oob\"]}}\r\n"
        } else {
            b"}, \"capabilities\": []}}\r\n"
        });
        Server {
            inner: Arc::new(Inner {
                commands: self.commands,
                greeting,
                oob: self.oob,
                max_message_size: self.max_message_size,
                max_connections: AtomicUsize::new(self.max_connections),
                connections: AtomicUsize::new(0),
                slot_freed: Notify::new(),
                events,
                shutdown,
                version: self.version,
                client_hooks: self.client_hooks,
                monitors: AtomicU64::new(1),
            }),
        }
    }
}

pub(crate) struct Inner {
    pub commands: HashMap<String, Arc<Command>>,
    pub greeting: Vec<u8>,
    pub oob: bool,
    pub max_message_size: usize,
    /// The cap on [`connections`](Inner::connections) that listeners enforce.
    pub max_connections: AtomicUsize,
    /// Connections being served (listeners' and `serve_stream`'s).
    pub connections: AtomicUsize,
    /// Woken whenever a connection ends, refused ones too (an accept loop short of
    /// descriptors waits on it).
    pub slot_freed: Notify,
    pub events: broadcast::Sender<Arc<[u8]>>,
    pub shutdown: watch::Sender<bool>,
    pub version: VersionInfo,
    client_hooks: Vec<ClientHook>,
    /// The next [`MonitorId`].
    monitors: AtomicU64,
}

impl Inner {
    /// Tells the hooks.
    pub(crate) fn client_event(&self, event: ClientEvent) {
        for hook in &self.client_hooks {
            hook(event);
        }
    }

    fn new_monitor(self: &Arc<Self>) -> Monitor {
        Monitor { id: MonitorId(self.monitors.fetch_add(1, Ordering::Relaxed)), inner: self.clone() }
    }
}

/// A monitor being served: [`ClientEvent::MonitorClosed`] when dropped.
struct Monitor {
    id: MonitorId,
    inner: Arc<Inner>,
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.inner.client_event(ClientEvent::MonitorClosed(self.id));
    }
}

/// A QMP server: cheap to clone; every clone serves the same commands and shares events.
#[derive(Clone)]
pub struct Server {
    pub(crate) inner: Arc<Inner>,
}

/// Emits events to every negotiated client. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct Events {
    tx: broadcast::Sender<Arc<[u8]>>,
}

impl Events {
    /// Sends `name` with `data` (an object, or `None` for no data), stamped with the time now.
    pub fn emit(&self, name: &str, data: Option<Value>) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let ts = Timestamp { seconds: now.as_secs() as i64, microseconds: now.subsec_micros() as i64 };
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(
            format!(
                "{{\"timestamp\": {{\"seconds\": {}, \"microseconds\": {}}}, \"event\": ",
                ts.seconds, ts.microseconds
            )
            .as_bytes(),
        );
        qjson::write_str(&mut out, name);
        if let Some(data) = data {
            out.extend_from_slice(b", \"data\": ");
            qjson::write_value(&mut out, &data);
        }
        out.extend_from_slice(b"}\r\n");
        // No receiver (no negotiated client) is not an error: QEMU drops the event too.
        let _ = self.tx.send(out.into());
    }
}

impl Server {
    /// Starts building a server.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::new()
    }

    /// The handle for emitting events.
    pub fn events(&self) -> Events {
        Events { tx: self.inner.events.clone() }
    }

    /// The version the greeting reports.
    pub fn version(&self) -> &VersionInfo {
        &self.inner.version
    }

    /// Closes every connection (after the reply being written) and stops every listener,
    /// as `quit` does in QEMU. A client that is not reading what it is sent gets one second
    /// more to take it and is then disconnected.
    pub fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// True once [`shutdown`](Server::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        *self.inner.shutdown.borrow()
    }

    /// Waits until [`shutdown`](Server::shutdown) is called.
    pub async fn wait_shutdown(&self) {
        let mut rx = self.inner.shutdown.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Serves one connection on `stream` until the client leaves or the server shuts down.
    /// It counts towards [`connections`](Server::connections) but is never refused, and is a
    /// monitor of its own. No descriptors can be passed on it: for a unix socket use
    /// [`serve_unix_stream`](Server::serve_unix_stream).
    pub async fn serve_stream<S>(&self, stream: S) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
        let _slot = Slot(self.inner.clone());
        let monitor = self.inner.new_monitor();
        crate::conn::serve(self.inner.clone(), stream, monitor.id).await
    }

    /// [`serve_stream`](Server::serve_stream) on a connected unix socket, which also
    /// receives the descriptors the client passes (SCM_RIGHTS) for commands registered with
    /// [`command_with_context`](ServerBuilder::command_with_context).
    pub async fn serve_unix_stream(&self, stream: UnixStream) -> io::Result<()> {
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
        let _slot = Slot(self.inner.clone());
        let monitor = self.inner.new_monitor();
        let (rd, wr) = stream.into_split();
        crate::conn::serve_halves(self.inner.clone(), rd, wr, monitor.id).await
    }

    /// Accepts connections on `listener`, one task each, until shutdown.
    ///
    /// A failed `accept()` never ends it: when the process or the system is out of file
    /// descriptors or memory (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) it pauses (10 ms,
    /// doubling up to 1 s, or until one of its connections closes) and tries again, with one
    /// `tracing` warning when such an episode starts and one info line when it recovers;
    /// errors about one aborted connection are retried at once; anything else is logged and
    /// retried after the same pause. Clients beyond
    /// [`max_connections`](ServerBuilder::max_connections) are refused with a QMP error.
    /// It returns `Ok(())` at [`shutdown`](Server::shutdown).
    pub async fn serve_unix(&self, listener: UnixListener) -> io::Result<()> {
        accept_loop(&self.inner, listener, Clients::Many).await;
        Ok(())
    }

    /// Serves `listener` as one QEMU monitor: one client at a time, the next accepted only
    /// when the one before has left (until then its connection waits, greeted by nothing).
    /// Failed accepts are handled as [`serve_unix`](Server::serve_unix) handles them.
    pub async fn serve_unix_monitor(&self, listener: UnixListener) -> io::Result<()> {
        accept_loop(&self.inner, listener, Clients::OneAtATime).await;
        Ok(())
    }

    /// [`serve_unix_monitor`](Server::serve_unix_monitor) on TCP (with `TCP_NODELAY`).
    pub async fn serve_tcp_monitor(&self, listener: TcpListener) -> io::Result<()> {
        accept_loop(&self.inner, listener, Clients::OneAtATime).await;
        Ok(())
    }

    /// Accepts TCP connections on `listener` (with `TCP_NODELAY`), as
    /// [`serve_unix`](Server::serve_unix) does, until shutdown.
    pub async fn serve_tcp(&self, listener: TcpListener) -> io::Result<()> {
        accept_loop(&self.inner, listener, Clients::Many).await;
        Ok(())
    }

    /// How many connections are being served right now (refused clients not included).
    pub fn connections(&self) -> usize {
        self.inner.connections.load(Ordering::Acquire)
    }

    /// The cap on connections listeners serve at once
    /// (see [`ServerBuilder::max_connections`]).
    pub fn max_connections(&self) -> usize {
        self.inner.max_connections.load(Ordering::Acquire)
    }

    /// Changes the cap on connections; clients already served stay connected even when
    /// more than `n` are.
    ///
    /// ```
    /// let server = qmp_server::Server::builder().build();
    /// assert_eq!(server.max_connections(), qmp_server::DEFAULT_MAX_CONNECTIONS);
    /// server.set_max_connections(8);
    /// assert_eq!(server.max_connections(), 8);
    /// ```
    pub fn set_max_connections(&self, n: usize) {
        self.inner.max_connections.store(n, Ordering::Release);
    }
}

/// The default of [`ServerBuilder::max_connections`]: half the usual `RLIMIT_NOFILE` of
/// 1024, leaving descriptors for everything else the process opens.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// One connection being served: counted in [`Inner::connections`] while it lives.
struct Slot(Arc<Inner>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
        self.0.slot_freed.notify_waiters();
    }
}

/// A listener the accept loop takes connections from, as read and write halves.
trait Accept {
    type Read: ConnRead + AsyncRead + 'static;
    type Write: AsyncWrite + Unpin + Send + 'static;
    fn poll_conn(&self, cx: &mut TaskContext<'_>) -> Poll<io::Result<(Self::Read, Self::Write)>>;
}

impl Accept for UnixListener {
    type Read = tokio::net::unix::OwnedReadHalf;
    type Write = tokio::net::unix::OwnedWriteHalf;
    fn poll_conn(&self, cx: &mut TaskContext<'_>) -> Poll<io::Result<(Self::Read, Self::Write)>> {
        self.poll_accept(cx).map_ok(|(stream, _)| stream.into_split())
    }
}

impl Accept for TcpListener {
    type Read = BytesOnly<tokio::net::tcp::OwnedReadHalf>;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    fn poll_conn(&self, cx: &mut TaskContext<'_>) -> Poll<io::Result<(Self::Read, Self::Write)>> {
        self.poll_accept(cx).map_ok(|(stream, _)| {
            let _ = stream.set_nodelay(true);
            let (rd, wr) = stream.into_split();
            (BytesOnly(rd), wr)
        })
    }
}

/// What to do about a failed `accept()`.
#[derive(Debug, PartialEq, Eq)]
enum AcceptFailure {
    /// One connection went wrong before it was taken (aborted, reset, a signal): try again
    /// at once.
    Transient,
    /// Out of descriptors or memory: wait for some to be freed.
    Exhausted,
    /// Anything else: log it and try again after a pause (never spin on it).
    Other,
}

fn classify(e: &io::Error) -> AcceptFailure {
    use nix::errno::Errno;
    match e.kind() {
        io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::ConnectionReset => return AcceptFailure::Transient,
        io::ErrorKind::OutOfMemory => return AcceptFailure::Exhausted,
        _ => {}
    }
    let Some(code) = e.raw_os_error() else { return AcceptFailure::Other };
    match Errno::from_raw(code) {
        Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM => AcceptFailure::Exhausted,
        // accept(2): Linux passes a new connection's pending network errors to accept();
        // they concern that connection only.
        Errno::EPROTO
        | Errno::ENOPROTOOPT
        | Errno::ENETDOWN
        | Errno::ENETUNREACH
        | Errno::EHOSTDOWN
        | Errno::EHOSTUNREACH
        | Errno::ENONET
        | Errno::EOPNOTSUPP
        | Errno::EPERM => AcceptFailure::Transient,
        _ => AcceptFailure::Other,
    }
}

/// The pauses of an episode of failing accepts (10 ms doubling to 1 s), and its log: one
/// warning when it starts and one info line when accepts first succeed again. Failures
/// within [`Backoff::QUIET`] of that recovery (a listener taking a backlog with every
/// descriptor but one in use fails every other accept) belong to the same episode and are
/// logged at debug level only.
#[derive(Default)]
struct Backoff {
    /// Failed accepts in a row (0: accepts are succeeding).
    failures: u32,
    delay: Duration,
    /// When the episode started, and how many accepts failed in it.
    episode: Option<(Instant, u64)>,
    /// When accepts last succeeded again after failing.
    recovered: Option<Instant>,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(10);
    const MAX: Duration = Duration::from_secs(1);
    const QUIET: Duration = Duration::from_secs(10);

    /// Counts a failure; returns how long to wait before the next try.
    fn failed(&mut self, e: &io::Error, kind: &AcceptFailure) -> Duration {
        if self.failures == 0 {
            self.delay = Self::FIRST;
            let relapse = self.recovered.is_some_and(|t| t.elapsed() < Self::QUIET);
            if relapse {
                tracing::debug!("QMP listener: accept failed again ({e})");
            } else {
                self.episode = Some((Instant::now(), 0));
                self.recovered = None;
                match kind {
                    AcceptFailure::Exhausted => tracing::warn!(
                        "QMP listener cannot accept connections ({e}); pausing new clients until \
                         descriptors are freed"
                    ),
                    _ => tracing::warn!("QMP listener: accept failed ({e}); retrying"),
                }
            }
        } else {
            self.delay = (self.delay * 2).min(Self::MAX);
        }
        self.failures += 1;
        if let Some((_, n)) = &mut self.episode {
            *n += 1;
        }
        self.delay
    }

    /// An accept succeeded.
    fn succeeded(&mut self) {
        if self.failures == 0 {
            return;
        }
        self.failures = 0;
        if self.recovered.is_none() {
            if let Some((started, n)) = self.episode {
                let took = started.elapsed();
                tracing::info!("QMP listener accepting again after {n} failed accepts over {took:.2?}");
            }
        }
        self.recovered = Some(Instant::now());
    }
}

/// Accepts on `listener` until shutdown, whatever accept() fails with.
async fn accept_loop<L: Accept>(inner: &Arc<Inner>, listener: L, clients: Clients) {
    // One monitor for the listener's clients, one after another; ended when the loop stops
    // (or its task is aborted).
    let listener_monitor = match clients {
        Clients::OneAtATime => Some(inner.new_monitor()),
        Clients::Many => None,
    };
    let mut stop = inner.shutdown.subscribe();
    let mut backoff = Backoff::default();
    let mut refusing = false;
    loop {
        let accepted = tokio::select! {
            r = std::future::poll_fn(|cx| listener.poll_conn(cx)) => r,
            _ = stop.wait_for(|v| *v) => return,
        };
        let (rd, wr) = match accepted {
            Ok(halves) => halves,
            Err(e) => {
                let kind = classify(&e);
                if kind == AcceptFailure::Transient {
                    tracing::debug!("QMP listener: a connection failed before it was accepted ({e})");
                    continue;
                }
                // Registered before the pause, so that a connection closing during it ends it.
                let freed = inner.slot_freed.notified();
                let pause = backoff.failed(&e, &kind);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = freed, if kind == AcceptFailure::Exhausted => {}
                    _ = stop.wait_for(|v| *v) => return,
                }
                continue;
            }
        };
        backoff.succeeded();
        let max = inner.max_connections.load(Ordering::Acquire);
        let taken = inner
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1));
        if taken.is_err() {
            if !refusing {
                tracing::warn!("QMP listener: {max} clients connected; refusing more until one leaves");
                refusing = true;
            }
            let inner = inner.clone();
            tokio::spawn(async move {
                refuse(rd, wr, max).await;
                // Its descriptor is free again, for a loop waiting for one.
                inner.slot_freed.notify_waiters();
            });
            continue;
        }
        refusing = false;
        let slot = Slot(inner.clone());
        // Many clients: each connection is a monitor of its own.
        let (own_monitor, monitor) = match &listener_monitor {
            Some(m) => (None, m.id),
            None => {
                let m = inner.new_monitor();
                let id = m.id;
                (Some(m), id)
            }
        };
        let inner = inner.clone();
        let serve = async move {
            let _slot = slot;
            let _own = own_monitor;
            let _ = crate::conn::serve_halves(inner, rd, wr, monitor).await;
        };
        match clients {
            Clients::Many => drop(tokio::spawn(serve)),
            // The next connection waits in the listen backlog, greeted by nothing.
            Clients::OneAtATime => serve.await,
        }
    }
}

/// How a listener takes its clients.
#[derive(Clone, Copy)]
enum Clients {
    /// Each in a task of its own, up to the cap.
    Many,
    /// One after another, as a QEMU monitor does.
    OneAtATime,
}

/// The one line a client over the cap gets instead of a greeting.
pub(crate) fn refusal(max: usize) -> Vec<u8> {
    let desc = format!("Too many QMP connections: this server serves at most {max} at once; try again later");
    let mut out = Vec::with_capacity(160);
    crate::conn::write_reply(&mut out, &Err(QmpError::new(qmp_proto::ErrorClass::GenericError, desc)), None);
    out
}

/// Sends a client over the cap [`refusal`] and closes the connection. Input the client
/// sent is read and dropped until it hangs up (for a second at most), so that the close
/// is not turned into a reset that could discard the error before the client reads it.
pub(crate) async fn refuse<R, W>(mut rd: R, mut wr: W, max: usize)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        wr.write_all(&refusal(max)).await?;
        wr.shutdown().await?;
        let mut sink = [0u8; 4096];
        while rd.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// Binds a unix socket at `path` with mode 0600 (owner only), with no moment in which it
/// exists there with a wider mode (see [`qmp_unix::bind_unix`], which every listener of the
/// toolkit uses). An existing socket at `path` is replaced (as QEMU does); any other existing
/// file is an error. Call it within a tokio runtime.
pub fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    bind_unix_mode(path, 0o600)
}

/// [`bind_unix`] with another mode.
pub fn bind_unix_mode(path: &Path, mode: u32) -> io::Result<UnixListener> {
    let listener = qmp_unix::bind_unix(path, mode)?;
    listener.set_nonblocking(true)?;
    UnixListener::from_std(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: nix::errno::Errno) -> io::Error {
        io::Error::from_raw_os_error(errno as i32)
    }

    #[test]
    fn accept_errors_are_sorted_by_what_to_do() {
        use nix::errno::Errno;
        for e in [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM] {
            assert_eq!(classify(&os(e)), AcceptFailure::Exhausted, "{e}");
        }
        for e in [Errno::ECONNABORTED, Errno::EINTR, Errno::EPROTO, Errno::ENETDOWN, Errno::EHOSTUNREACH] {
            assert_eq!(classify(&os(e)), AcceptFailure::Transient, "{e}");
        }
        for e in [Errno::EBADF, Errno::EINVAL, Errno::ENOTSOCK] {
            assert_eq!(classify(&os(e)), AcceptFailure::Other, "{e}");
        }
        assert_eq!(classify(&io::Error::other("no errno")), AcceptFailure::Other);
    }

    #[test]
    fn the_pause_doubles_from_10_ms_to_1_s_and_starts_again_after_a_success() {
        let mut b = Backoff::default();
        let e = os(nix::errno::Errno::EMFILE);
        let pauses: Vec<u128> =
            (0..10).map(|_| b.failed(&e, &AcceptFailure::Exhausted).as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert_eq!(b.episode.map(|(_, n)| n), Some(10));
        b.succeeded();
        assert!(b.recovered.is_some());
        // A relapse soon after belongs to the same episode, with short pauses again.
        assert_eq!(b.failed(&e, &AcceptFailure::Exhausted), Duration::from_millis(10));
        assert_eq!(b.episode.map(|(_, n)| n), Some(11));
    }

    #[test]
    fn the_refusal_is_one_qmp_error_line() {
        let line = String::from_utf8(refusal(7)).unwrap();
        assert_eq!(
            line,
            "{\"error\": {\"class\": \"GenericError\", \"desc\": \"Too many QMP connections: this server \
             serves at most 7 at once; try again later\"}}\r\n"
        );
    }
}
