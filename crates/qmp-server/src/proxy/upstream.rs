//! The proxy's one connection to QEMU: negotiated once, every request sent under an id of
//! the proxy's own, and what QEMU sends routed back in the order it came: a reply to the
//! session that made the request, an event to every negotiated session. One channel per
//! session carries both, so an event QEMU sent before a reply reaches the client before it.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qmp_proto::Framer;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, Interest};
use tokio::sync::{mpsc, watch};

/// What a session receives from upstream, in QEMU's order.
#[derive(Debug)]
pub(crate) enum Upward {
    /// An event line, as QEMU sent it.
    Event(Arc<[u8]>),
    /// The answer to request number `call`.
    Reply(u64, Answer),
}

/// What a forwarded request came to.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// The `return` member, as JSON text.
    Return(Vec<u8>),
    /// The `error` member, as JSON text.
    Error(Vec<u8>),
}

/// How many messages a session's channel holds; a session always drains it into its own
/// (bounded) output, so only a session that cannot keep up at all fills it, and is dropped.
const CHANNEL: usize = 1 << 16;

/// A session's end of the routing.
pub(crate) struct Route {
    pub tx: mpsc::Sender<Upward>,
    /// Set when a message could not be queued: the session must end.
    pub lost: Arc<AtomicBool>,
}

#[derive(Default)]
struct Routes {
    /// Requests in flight: upstream id → session number.
    calls: HashMap<u64, u64>,
    /// Sessions: number → route, and whether it takes events (negotiated).
    sessions: HashMap<u64, (Route, bool)>,
    /// Where requests go; `None` while reconnecting.
    out: Option<mpsc::UnboundedSender<(Vec<u8>, Vec<OwnedFd>)>>,
}

/// The connection to QEMU, shared by every session.
pub(crate) struct Upstream {
    pub greeting: Vec<u8>,
    pub oob: bool,
    routes: Mutex<Routes>,
    closed_tx: watch::Sender<bool>,
    closed: watch::Receiver<bool>,
    address: qmp::Address,
    tls: Option<qmp::TlsConfig>,
    /// How long to try to reconnect to a QEMU that went away (`None`: do not).
    reconnect: Option<Duration>,
}

/// A connected, negotiated link to QEMU.
struct Link {
    rd: Reader,
    wr: Writer,
    framer: Framer,
    greeting: qmp::Greeting,
}

/// The members of a QEMU reply or event, unparsed.
#[derive(Deserialize)]
struct Parts<'a> {
    #[serde(borrow, rename = "return")]
    ret: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;

/// A TLS session's write half.
type TlsWriter = tokio::io::WriteHalf<Box<dyn TlsStream>>;

/// What a TLS session is to us.
trait TlsStream: AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + tokio::io::AsyncWrite + Unpin + Send> TlsStream for T {}

/// The write side: a unix socket can carry descriptors, TCP and TLS cannot.
enum Writer {
    Unix(tokio::net::unix::OwnedWriteHalf),
    Tcp(tokio::net::tcp::OwnedWriteHalf),
    Tls(TlsWriter),
}

impl Writer {
    /// Writes whole requests.
    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Writer::Unix(w) => w.write_all(bytes).await,
            Writer::Tcp(w) => w.write_all(bytes).await,
            Writer::Tls(w) => {
                // QEMU 7.2 reads a TLS record only when the next arrives: one space follows.
                w.write_all(bytes).await?;
                w.write_all(b" ").await?;
                w.flush().await
            }
        }
    }

    /// Writes `bytes` with `fds` attached to the first of them (SCM_RIGHTS).
    async fn write_with_fds(&mut self, bytes: &[u8], fds: &[OwnedFd]) -> io::Result<()> {
        let Writer::Unix(w) = self else {
            tracing::warn!("QMP proxy: descriptors passed by a client dropped: QEMU is not on a unix socket");
            return self.write_all(bytes).await;
        };
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let sent = loop {
            w.writable().await?;
            let sock = w.as_ref();
            let r = sock.try_io(Interest::WRITABLE, || {
                use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
                let iov = [std::io::IoSlice::new(bytes)];
                let cmsg = [ControlMessage::ScmRights(&raw)];
                sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None)
                    .map_err(io::Error::from)
            });
            match r {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        w.write_all(&bytes[sent..]).await
    }
}

/// Connects to QEMU at a unix path or TCP `host:port`, reads its greeting and negotiates
/// (with `oob` when offered), within `timeout`; with `reconnect`, a QEMU that goes away is
/// reconnected to for that long while the sessions wait.
pub(crate) async fn connect(
    address: &qmp::Address,
    tls: Option<qmp::TlsConfig>,
    timeout: Duration,
    reconnect: Option<Duration>,
) -> io::Result<Arc<Upstream>> {
    let link = open(address, tls.as_ref(), timeout).await?;
    let (closed_tx, closed) = watch::channel(false);
    let up = Arc::new(Upstream {
        greeting: super::greeting_line(&link.greeting),
        oob: link.greeting.offers_oob(),
        routes: Mutex::new(Routes::default()),
        closed_tx,
        closed,
        address: address.clone(),
        tls,
        reconnect,
    });
    up.start(link);
    Ok(up)
}

async fn open(address: &qmp::Address, tls: Option<&qmp::TlsConfig>, timeout: Duration) -> io::Result<Link> {
    let (rd, wr): (Reader, Writer) = match address {
        qmp::Address::Tls(hp) => {
            let Some(tls) = tls else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("tls:{hp} needs a TLS configuration"),
                ));
            };
            let stream: Box<dyn TlsStream> = Box::new(qmp::tls::connect_stream(hp, tls, timeout).await?);
            let (r, w) = tokio::io::split(stream);
            (Box::new(r), Writer::Tls(w))
        }
        qmp::Address::Unix(p) => {
            let (r, w) = tokio::net::UnixStream::connect(p).await?.into_split();
            (Box::new(r), Writer::Unix(w))
        }
        qmp::Address::Tcp(hp) => {
            let s = tokio::net::TcpStream::connect(hp).await?;
            s.set_nodelay(true)?;
            let (r, w) = s.into_split();
            (Box::new(r), Writer::Tcp(w))
        }
        other => {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("the proxy reaches QEMU over a unix socket, TCP or TLS, not {other}"),
            ))
        }
    };
    match tokio::time::timeout(timeout, handshake(rd, wr)).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "QEMU did not greet and negotiate in time")),
    }
}

async fn next_frame(rd: &mut Reader, framer: &mut Framer) -> io::Result<Vec<u8>> {
    loop {
        match framer.next_frame() {
            Ok(Some(f)) => return Ok(f.bytes.to_vec()),
            Ok(None) => {}
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
        }
        if rd.read_buf(framer.buffer_mut(16 << 10)).await? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "QEMU closed the connection"));
        }
    }
}

async fn handshake(mut rd: Reader, mut wr: Writer) -> io::Result<Link> {
    let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
    let mut framer = Framer::with_limits(64 << 20, qmp_proto::DEFAULT_MAX_DEPTH);
    let first = next_frame(&mut rd, &mut framer).await?;
    #[derive(Deserialize)]
    struct Hello {
        #[serde(rename = "QMP")]
        qmp: qmp::Greeting,
    }
    let hello: Hello = serde_json::from_slice(&first)
        .map_err(|e| bad(format!("QEMU's first message is not a greeting: {e}")))?;
    let oob = hello.qmp.offers_oob();
    let req: &[u8] = if oob {
        br#"{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": 0}"#
    } else {
        br#"{"execute": "qmp_capabilities", "id": 0}"#
    };
    wr.write_all(req).await?;
    loop {
        let frame = next_frame(&mut rd, &mut framer).await?;
        let parts: Parts =
            serde_json::from_slice(&frame).map_err(|e| bad(format!("undecodable message: {e}")))?;
        if parts.event.is_some() {
            continue;
        }
        if let Some(err) = parts.error {
            return Err(bad(format!("QEMU refused qmp_capabilities: {err}")));
        }
        break;
    }
    Ok(Link { rd, wr, framer, greeting: hello.qmp })
}

async fn write_loop(mut wr: Writer, mut rx: mpsc::UnboundedReceiver<(Vec<u8>, Vec<OwnedFd>)>) {
    let mut batch = Vec::new();
    let mut next = None;
    loop {
        let taken = match next.take() {
            Some(held) => Some(held),
            None => rx.recv().await,
        };
        let Some((first, fds)) = taken else { return };
        if !fds.is_empty() {
            // Alone, so that the descriptors travel with this request's bytes.
            if wr.write_with_fds(&first, &fds).await.is_err() {
                return;
            }
            continue;
        }
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 256 << 10 {
            match rx.try_recv() {
                Ok((more, fds)) if fds.is_empty() => batch.extend_from_slice(&more),
                Ok(with_fds) => {
                    next = Some(with_fds);
                    break;
                }
                Err(_) => break,
            }
        }
        if wr.write_all(&batch).await.is_err() {
            return;
        }
    }
}

async fn read_loop(up: Arc<Upstream>, mut rd: Reader, mut framer: Framer) {
    loop {
        match next_frame(&mut rd, &mut framer).await {
            Ok(frame) => up.route(&frame),
            Err(e) => {
                tracing::info!("QMP proxy: the upstream connection ended: {e}");
                break;
            }
        }
    }
    match up.reconnect {
        Some(limit) => up.clone().reconnect(limit).await,
        None => up.close(),
    }
}

/// An error object in QEMU's shape, as JSON text.
fn error_text(desc: &str) -> Vec<u8> {
    let mut raw = Vec::new();
    crate::qjson::write_value(&mut raw, &serde_json::json!({"class": "GenericError", "desc": desc}));
    raw
}

impl Upstream {
    fn start(self: &Arc<Self>, link: Link) {
        let (out, out_rx) = mpsc::unbounded_channel();
        self.routes().out = Some(out);
        tokio::spawn(write_loop(link.wr, out_rx));
        tokio::spawn(read_loop(self.clone(), link.rd, link.framer));
    }

    /// For good: every sender goes, so each session's channel ends at once.
    fn close(&self) {
        *self.routes() = Routes::default();
        let _ = self.closed_tx.send(true);
    }

    /// QEMU went away: requests in flight are answered with an error, and the sessions
    /// wait while QEMU is reconnected to, for at most `limit`. Each negotiated session is
    /// then sent `__qmp_proxy.UPSTREAM_RECONNECTED` with when the link was lost (events QEMU
    /// emitted from then until the reconnection cannot be known) and how many of its
    /// requests failed.
    async fn reconnect(self: Arc<Self>, limit: Duration) {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut failed: HashMap<u64, u64> = HashMap::new();
        {
            let mut routes = self.routes();
            routes.out = None;
            let err = error_text("QEMU went away before answering; the QMP proxy is reconnecting");
            for (call, session) in std::mem::take(&mut routes.calls) {
                if let Some((route, _)) = routes.sessions.get(&session) {
                    send(route, Upward::Reply(call, Answer::Error(err.clone())));
                    *failed.entry(session).or_default() += 1;
                }
            }
        }
        tracing::warn!("QMP proxy: QEMU went away; reconnecting to {} for up to {limit:?}", self.address);
        let deadline = tokio::time::Instant::now() + limit;
        let mut pause = Duration::from_millis(10);
        let link = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                tracing::warn!("QMP proxy: could not reconnect to {} within {limit:?}", self.address);
                return self.close();
            }
            match open(&self.address, self.tls.as_ref(), left.min(Duration::from_secs(5))).await {
                Ok(link) => break link,
                Err(_) => tokio::time::sleep(pause.min(left)).await,
            }
            pause = (pause * 2).min(Duration::from_millis(100));
        };
        tracing::info!("QMP proxy: reconnected to {}", self.address);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        {
            let routes = self.routes();
            for (session, (route, negotiated)) in &routes.sessions {
                if !*negotiated {
                    continue;
                }
                let line = format!(
                    "{{\"timestamp\": {{\"seconds\": {}, \"microseconds\": {}}}, \"event\": \"__qmp_proxy.UPSTREAM_RECONNECTED\", \"data\": {{\"disconnected\": {{\"seconds\": {}, \"microseconds\": {}}}, \"failed-requests\": {}}}}}\r\n",
                    now.as_secs(),
                    now.subsec_micros(),
                    since.as_secs(),
                    since.subsec_micros(),
                    failed.get(session).copied().unwrap_or(0)
                );
                send(route, Upward::Event(line.into_bytes().into()));
            }
        }
        self.start(link);
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn route(&self, frame: &[u8]) {
        let parts: Parts = match serde_json::from_slice(frame) {
            Ok(p) => p,
            Err(e) => return tracing::warn!("QMP proxy: undecodable message from QEMU dropped: {e}"),
        };
        let mut routes = self.routes();
        if parts.event.is_some() {
            let mut line = Vec::with_capacity(frame.len() + 2);
            line.extend_from_slice(frame);
            line.extend_from_slice(b"\r\n");
            let line: Arc<[u8]> = line.into();
            for (route, negotiated) in routes.sessions.values() {
                if *negotiated {
                    send(route, Upward::Event(line.clone()));
                }
            }
            return;
        }
        let Some(call) = parts.id.and_then(|id| id.get().parse::<u64>().ok()) else {
            return tracing::warn!("QMP proxy: a reply from QEMU without one of our ids dropped");
        };
        let answer = match (parts.ret, parts.error) {
            (Some(r), _) => Answer::Return(r.get().as_bytes().to_vec()),
            (None, Some(e)) => Answer::Error(e.get().as_bytes().to_vec()),
            (None, None) => {
                return tracing::warn!("QMP proxy: a reply from QEMU with no return nor error dropped")
            }
        };
        // A session that has gone leaves no route: its reply is dropped here.
        if let Some(session) = routes.calls.remove(&call) {
            if let Some((route, _)) = routes.sessions.get(&session) {
                send(route, Upward::Reply(call, answer));
            }
        }
    }

    /// Registers a session; its channel's receiving end.
    pub fn attach(&self, session: u64) -> (mpsc::Receiver<Upward>, Arc<AtomicBool>) {
        let (tx, rx) = mpsc::channel(CHANNEL);
        let lost = Arc::new(AtomicBool::new(false));
        if !*self.closed.borrow() {
            self.routes().sessions.insert(session, (Route { tx, lost: lost.clone() }, false));
        }
        (rx, lost)
    }

    /// The session negotiated: events go to it from now on.
    pub fn start_events(&self, session: u64) {
        if let Some(entry) = self.routes().sessions.get_mut(&session) {
            entry.1 = true;
        }
    }

    pub fn detach(&self, session: u64) {
        let mut routes = self.routes();
        routes.sessions.remove(&session);
        routes.calls.retain(|_, s| *s != session);
    }

    /// Sends request `call` (already encoded with that id) for `session`.
    pub fn send(&self, session: u64, call: u64, request: Vec<u8>, fds: Vec<OwnedFd>) {
        let mut routes = self.routes();
        let Some(out) = routes.out.clone() else {
            let err = error_text("QEMU is not connected; the QMP proxy is reconnecting");
            if let Some((route, _)) = routes.sessions.get(&session) {
                send(route, Upward::Reply(call, Answer::Error(err)));
            }
            return;
        };
        routes.calls.insert(call, session);
        let _ = out.send((request, fds));
    }

    /// Resolves when the connection to QEMU has ended.
    pub async fn closed(&self) {
        let mut rx = self.closed.clone();
        let _ = rx.wait_for(|c| *c).await;
    }
}

fn send(route: &Route, msg: Upward) {
    if route.tx.try_send(msg).is_err() {
        route.lost.store(true, Ordering::Relaxed);
    }
}
