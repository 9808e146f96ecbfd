//! A QMP proxy: many clients on one QEMU monitor, each seeing a QEMU of its own.
//!
//! The proxy holds one connection to QEMU (unix or TCP, negotiated once, with `oob` when
//! offered) and serves any number of clients on unix sockets. Each client gets QEMU's
//! own greeting, negotiates by itself, and uses ids of its own (any JSON value, or none): the
//! proxy forwards each request under a number of its own as the id and puts the client's id
//! back on the reply, so replies are routed by the proxy's id alone.
//!
//! ```no_run
//! use qmp_server::proxy::{Listen, Policy, Proxy};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let qemu = qmp::Address::Unix("/run/vm1/qmp.sock".into());
//! let proxy = Proxy::connect(&qemu).await?
//!     .listen(Listen::new("/run/vm1/admin.sock"))
//!     .listen(Listen::new("/run/vm1/monitoring.sock").policy(Policy::read_only()).mode(0o660))
//!     .bind()?;                  // the sockets exist from here
//! proxy.serve().await;           // until QEMU goes away
//! # Ok(()) }
//! ```
//!
//! # Behaviour
//! - Requests are checked as QEMU checks them, with QEMU's errors: bad JSON, members, a
//!   command before `qmp_capabilities`, a second `qmp_capabilities`. Then the listener's
//!   [`Policy`]: a refused command gets a `GenericError` saying so. The rest go upstream.
//! - Replies go out in the order QEMU answers; `exec-oob` requests are forwarded out of band
//!   and their replies go out as soon as they come. Events go to every negotiated client, an
//!   event QEMU sent before a reply going out before it.
//! - A client whose unwritten output passes the backlog ([`Proxy::backlog`], 8 MiB by default)
//!   is disconnected, with a `tracing` warning; the others never wait for it. A client that
//!   goes away mid-command has its reply dropped when it comes.
//! - When QEMU goes away every client is disconnected at once and [`Bound::serve`] returns.
//! - Each client's peer credentials (`SO_PEERCRED` uid and pid) are logged and recorded.
//! - With a [`Recorder`], every message in both directions is written to the record.

mod policy;
mod record;
pub(crate) mod session;
mod upstream;

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::net::UnixListener;

pub use policy::{glob_match, Policy};
pub use record::{Direction, Peer, Recorder};
use session::{Backend, SessionConfig};
use upstream::Upstream as Link;

/// The default for [`Proxy::backlog`].
pub const DEFAULT_BACKLOG: usize = 8 << 20;

/// One socket the proxy serves clients on.
///
/// ```
/// use qmp_server::proxy::{Listen, Policy};
/// let l = Listen::new("/run/vm1/ro.sock").policy(Policy::read_only()).mode(0o660).group(1000);
/// ```
#[derive(Debug, Clone)]
pub struct Listen {
    path: PathBuf,
    mode: u32,
    group: Option<u32>,
    policy: Policy,
}

impl Listen {
    /// A socket at `path`, mode 0600, every command allowed.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Listen { path: path.into(), mode: 0o600, group: None, policy: Policy::allow_all() }
    }

    /// The socket's permission bits (default 0600).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// The socket's group (by id).
    pub fn group(mut self, gid: u32) -> Self {
        self.group = Some(gid);
        self
    }

    /// What clients on this socket may run.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How the proxy reaches QEMU, beyond its address.
///
/// ```
/// use std::time::Duration;
/// # fn demo(tls: qmp::TlsConfig) {
/// let how = qmp_server::proxy::Upstream::default().tls(tls).reconnect(Duration::from_secs(60));
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Upstream {
    tls: Option<qmp::TlsConfig>,
    reconnect: Option<Duration>,
}

impl Upstream {
    /// The TLS configuration for a `tls:HOST:PORT` address.
    pub fn tls(mut self, tls: qmp::TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// When QEMU goes away, hold the clients and reconnect to the same address for at most
    /// `limit`; then send each negotiated client the event `__qmp_proxy.UPSTREAM_RECONNECTED`
    /// (data: `disconnected`, the timestamp from which events may have been missed, and
    /// `failed-requests`, how many of its requests were answered with an error because QEMU
    /// went away). Requests made meanwhile get a `GenericError`. Without it, every client is
    /// disconnected when QEMU goes away.
    pub fn reconnect(mut self, limit: Duration) -> Self {
        self.reconnect = Some(limit);
        self
    }
}

/// Builds a proxy over a connection to QEMU: add listeners, then [`bind`](Proxy::bind).
///
/// ```no_run
/// use qmp_server::proxy::{Listen, Policy, Proxy, Recorder, Upstream};
///
/// # async fn demo() -> std::io::Result<()> {
/// let qemu = qmp::Address::Tcp("127.0.0.1:4444".into());
/// Proxy::connect_with(&qemu, Upstream::default().reconnect(std::time::Duration::from_secs(60)))
///     .await?
///     .listen(Listen::new("/run/vm1/ro.sock").policy(Policy::read_only()))
///     .record(Recorder::create("/var/log/vm1.jsonl".as_ref())?)
///     .backlog(1 << 20)
///     .bind()?
///     .serve()
///     .await;
/// # Ok(()) }
/// ```
pub struct Proxy {
    upstream: Arc<Link>,
    listeners: Vec<Listen>,
    record: Option<Arc<Recorder>>,
    backlog: usize,
    max_message_size: usize,
    max_clients: usize,
}

impl Proxy {
    /// Connects to QEMU at `address` (a unix socket, TCP, or TLS with
    /// [`Upstream::tls`]), reads its greeting and negotiates, with `oob` when offered,
    /// within 30 s.
    pub async fn connect(address: &qmp::Address) -> io::Result<Proxy> {
        Self::connect_with(address, Upstream::default()).await
    }

    /// As [`connect`](Proxy::connect), with TLS or reconnection (see [`Upstream`]).
    pub async fn connect_with(address: &qmp::Address, how: Upstream) -> io::Result<Proxy> {
        let upstream = upstream::connect(address, how.tls, Duration::from_secs(30), how.reconnect).await?;
        Ok(Proxy {
            upstream,
            listeners: Vec::new(),
            record: None,
            backlog: DEFAULT_BACKLOG,
            max_message_size: 16 << 20,
            max_clients: crate::DEFAULT_MAX_CONNECTIONS,
        })
    }

    /// Adds a socket to serve clients on.
    pub fn listen(mut self, listen: Listen) -> Self {
        self.listeners.push(listen);
        self
    }

    /// Records every message to `recorder`.
    pub fn record(mut self, recorder: Recorder) -> Self {
        self.record = Some(Arc::new(recorder));
        self
    }

    /// How many bytes of output a client may leave unread before it is disconnected.
    pub fn backlog(mut self, bytes: usize) -> Self {
        self.backlog = bytes;
        self
    }

    /// How many clients each socket serves at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`](crate::DEFAULT_MAX_CONNECTIONS)); one more is sent a QMP
    /// `GenericError` saying so and disconnected.
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = n.max(1);
        self
    }

    /// Binds every listener (replacing stale sockets); the proxy serves from [`Bound::serve`].
    pub fn bind(self) -> io::Result<Bound> {
        let mut bound = Vec::new();
        for l in &self.listeners {
            bound.push((bind(l)?, l.clone()));
        }
        Ok(Bound { proxy: self, bound })
    }
}

/// A proxy whose sockets are bound.
pub struct Bound {
    proxy: Proxy,
    bound: Vec<(UnixListener, Listen)>,
}

impl Bound {
    /// Serves clients until QEMU goes away; every client is then disconnected, and the
    /// sockets are removed.
    pub async fn serve(self) {
        let calls = Arc::new(AtomicU64::new(0));
        let clients = Arc::new(AtomicU64::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        let mut paths = Vec::new();
        for (listener, l) in self.bound {
            paths.push(l.path.clone());
            let cfg = SessionConfig {
                policy: Arc::new(l.policy.clone()),
                backlog: self.proxy.backlog,
                max_message_size: self.proxy.max_message_size,
                record: self.proxy.record.clone(),
                calls: calls.clone(),
                max_clients: self.proxy.max_clients,
            };
            let up = self.proxy.upstream.clone();
            let clients = clients.clone();
            tasks.spawn(accept_loop(listener, cfg, clients, move |n| ProxyBackend::new(up.clone(), n)));
        }
        self.proxy.upstream.closed().await;
        tracing::info!("QMP proxy: the upstream QEMU went away; disconnecting every client");
        tasks.abort_all();
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Accepts clients and runs a session for each, with the backend `make` gives.
pub(crate) async fn accept_loop<B: Backend>(
    listener: UnixListener,
    cfg: SessionConfig,
    clients: Arc<AtomicU64>,
    make: impl Fn(u64) -> B,
) {
    let mut sessions = tokio::task::JoinSet::new();
    let mut refusing = false;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if sessions.len() >= cfg.max_clients => {
                    if !refusing {
                        tracing::warn!("QMP proxy: {} clients connected; refusing more until one leaves", cfg.max_clients);
                        refusing = true;
                    }
                    let (rd, wr) = stream.into_split();
                    tokio::spawn(crate::server::refuse(rd, wr, cfg.max_clients));
                }
                Ok((stream, _)) => {
                    refusing = false;
                    let client = clients.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    let cred = stream.peer_cred().ok();
                    let peer = Peer { client, uid: cred.map(|c| c.uid()), pid: cred.and_then(|c| c.pid()) };
                    tracing::info!(client, uid = peer.uid, pid = peer.pid, "QMP proxy: client {client} connected");
                    sessions.spawn(session::run(make(client), stream, cfg.clone(), peer));
                }
                Err(e) => {
                    tracing::warn!("QMP proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
}

pub(crate) fn bind(l: &Listen) -> io::Result<UnixListener> {
    let std = qmp_unix::bind_unix(&l.path, l.mode)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", l.path.display())))?;
    if let Some(gid) = l.group {
        std::os::unix::fs::chown(&l.path, None, Some(gid)).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot give {} to group {gid}: {e}", l.path.display()))
        })?;
        // chown may clear nothing on a socket, but keep the mode asked for all the same.
        std::fs::set_permissions(&l.path, std::fs::Permissions::from_mode(l.mode))?;
    }
    std.set_nonblocking(true)?;
    UnixListener::from_std(std)
}

struct ProxyBackend {
    up: Arc<Link>,
    session: u64,
    rx: tokio::sync::mpsc::Receiver<session::Upward>,
    lost: Arc<std::sync::atomic::AtomicBool>,
}

impl ProxyBackend {
    fn new(up: Arc<Link>, session: u64) -> Self {
        let (rx, lost) = up.attach(session);
        ProxyBackend { up, session, rx, lost }
    }
}

impl Drop for ProxyBackend {
    fn drop(&mut self) {
        self.up.detach(self.session);
    }
}

impl Backend for ProxyBackend {
    fn greeting(&self) -> Vec<u8> {
        self.up.greeting.clone()
    }

    fn offers_oob(&self) -> bool {
        self.up.oob
    }

    fn negotiated(&mut self) {
        self.up.start_events(self.session);
    }

    fn call(
        &mut self,
        call: u64,
        name: &str,
        args: Option<&Map<String, Value>>,
        oob: bool,
        fds: Vec<std::os::fd::OwnedFd>,
    ) {
        let mut req = Vec::with_capacity(64);
        req.extend_from_slice(if oob { b"{\"exec-oob\": " } else { b"{\"execute\": " });
        crate::qjson::write_str(&mut req, name);
        if let Some(args) = args {
            req.extend_from_slice(b", \"arguments\": ");
            crate::qjson::write_object(&mut req, args);
        }
        req.extend_from_slice(format!(", \"id\": {call}}}").as_bytes());
        self.up.send(self.session, call, req, fds);
    }

    fn next(&mut self) -> impl std::future::Future<Output = Option<session::Upward>> + Send + '_ {
        self.rx.recv()
    }

    fn try_next(&mut self) -> Option<session::Upward> {
        self.rx.try_recv().ok()
    }

    fn lost(&self) -> bool {
        self.lost.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The greeting line in QEMU's format for `g`.
pub(crate) fn greeting_line(g: &qmp::Greeting) -> Vec<u8> {
    let v = &g.version.qemu;
    let mut out = format!(
        "{{\"QMP\": {{\"version\": {{\"qemu\": {{\"micro\": {}, \"minor\": {}, \"major\": {}}}, \"package\": ",
        v.micro, v.minor, v.major
    )
    .into_bytes();
    crate::qjson::write_str(&mut out, &g.version.package);
    out.extend_from_slice(b"}, \"capabilities\": [");
    for (i, c) in g.capabilities.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        crate::qjson::write_str(&mut out, c);
    }
    out.extend_from_slice(b"]}}\r\n");
    out
}
