//! The server: registered commands and events, and listeners that serve them.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use qmp_proto::{QmpError, Timestamp};
use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{broadcast, watch};

use crate::qjson;
use crate::schema::{SchemaWriter, Struct, Ty};

/// A command's arguments, already checked against its declared [`Struct`].
pub type Args = Map<String, Value>;
/// What a command answers: its return value, or an error.
pub type Reply = Result<Value, QmpError>;
/// The future an async command returns.
pub type ReplyFuture = Pin<Box<dyn Future<Output = Reply> + Send + 'static>>;

pub(crate) enum Handler {
    Sync(Box<dyn Fn(Args) -> Reply + Send + Sync>),
    Async(Box<dyn Fn(Args) -> ReplyFuture + Send + Sync>),
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

    /// Accepts arguments beyond the declared ones (handed to the handler unchecked).
    pub fn allow_extra(mut self) -> Self {
        self.args = self.args.allow_extra();
        self
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
    channel: broadcast::Sender<Arc<[u8]>>,
    /// Whether `events()` handed out the channel (its capacity is then fixed).
    events_taken: bool,
}

impl ServerBuilder {
    fn new() -> Self {
        let mut b = ServerBuilder {
            commands: HashMap::new(),
            order: Vec::new(),
            events: Vec::new(),
            version: VersionInfo { triple: (7, 2, 22), package: String::new() },
            oob: true,
            max_message_size: 16 << 20,
            channel: broadcast::channel(4096).0,
            events_taken: false,
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
                events,
                shutdown,
                version: self.version,
            }),
        }
    }
}

pub(crate) struct Inner {
    pub commands: HashMap<String, Arc<Command>>,
    pub greeting: Vec<u8>,
    pub oob: bool,
    pub max_message_size: usize,
    pub events: broadcast::Sender<Arc<[u8]>>,
    pub shutdown: watch::Sender<bool>,
    pub version: VersionInfo,
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
    /// as `quit` does in QEMU.
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
    pub async fn serve_stream<S>(&self, stream: S) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        crate::conn::serve(self.inner.clone(), stream).await
    }

    /// Accepts connections on `listener`, one task each, until shutdown.
    pub async fn serve_unix(&self, listener: UnixListener) -> io::Result<()> {
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            tokio::select! {
                r = listener.accept() => {
                    let (stream, _) = r?;
                    let inner = self.inner.clone();
                    tokio::spawn(async move {
                        let (rd, wr) = stream.into_split();
                        let _ = crate::conn::serve_halves(inner, rd, wr).await;
                    });
                }
                _ = stop.wait_for(|v| *v) => return Ok(()),
            }
        }
    }

    /// Accepts TCP connections on `listener`, one task each, until shutdown.
    pub async fn serve_tcp(&self, listener: TcpListener) -> io::Result<()> {
        let mut stop = self.inner.shutdown.subscribe();
        loop {
            tokio::select! {
                r = listener.accept() => {
                    let (stream, _) = r?;
                    let _ = stream.set_nodelay(true);
                    let inner = self.inner.clone();
                    tokio::spawn(async move {
                        let (rd, wr) = stream.into_split();
                        let _ = crate::conn::serve_halves(inner, rd, wr).await;
                    });
                }
                _ = stop.wait_for(|v| *v) => return Ok(()),
            }
        }
    }
}

/// Binds a unix socket at `path` with mode 0600 (owner only), with no window in which it
/// has a wider mode: it is bound inside a fresh private directory beside `path`, restricted,
/// then renamed into place. An existing socket at `path` is replaced (as QEMU does); any
/// other existing file is an error.
pub fn bind_unix(path: &Path) -> io::Result<UnixListener> {
    bind_unix_mode(path, 0o600)
}

/// [`bind_unix`] with another mode.
pub fn bind_unix_mode(path: &Path, mode: u32) -> io::Result<UnixListener> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let private = parent.join(format!(".qmp-bind-{}-{}", std::process::id(), unique()));
    std::fs::DirBuilder::new().mode_0700().create(&private)?;
    let tmp = private.join("s");
    let result = (|| {
        let listener = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                // Never replace a file that is not a socket.
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        std::fs::rename(&tmp, path)?;
        Ok(listener)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&private);
    result
}

trait DirMode {
    fn mode_0700(&mut self) -> &mut Self;
}

impl DirMode for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o700)
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
