//! A simulated QEMU on the framework: run states, block nodes and jobs, devices, migration
//! and a small human monitor, with QEMU 7.2's replies, errors and event sequences.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = qmp_server::sim::Simulator::new();
//! let socket = sim.listen_unix_temp()?;     // a fresh socket in a private temp dir
//! println!("connect to {}", socket.path().display());
//! sim.server().wait_shutdown().await;       // until a client sends `quit`
//! # Ok(()) }
//! ```
//!
//! Time is simulated by a clock task ticking every 10 ms: block jobs copy `speed` bytes per
//! simulated second (4 GiB/s when `speed` is 0), migration copies 128 MiB of "RAM" at 1 GiB/s,
//! and a `device_del` is acknowledged by the "guest" at the next tick. With none of those under
//! way the clock sleeps until a command wakes it.
//!
//! Each listener is one monitor serving one client at a time, as QEMU's are, unless
//! [`SimOptions::many_clients`] is set.

mod bitmap;
mod block;
mod cnum;
mod commands;
mod devices;
pub use devices::DEVICE_MODELS;
mod fdsets;
mod ghash;
mod image;
mod machine_queries;
mod migration;
mod migration_params;
mod outgoing;
mod pci;
mod qapi;
mod qom;
mod qom_types;
mod raw;
mod secret;
mod transaction;
mod vm;

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::server::{bind_unix, Server};
use vm::State;

/// Options for a [`Simulator`].
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Simulated seconds per real second (default 1.0).
    pub time_scale: f64,
    /// The version reported: (major, minor, micro).
    pub version: (i64, i64, i64),
    /// The package string reported next to the version.
    pub package: String,
    /// The VM name `query-name` reports.
    pub name: Option<String>,
    /// Which QEMU program to answer as.
    pub like: Like,
    /// The machine `qemu-system-x86_64` was started with: its buses decide what
    /// `device_add` can plug.
    pub machine: Machine,
    /// Serve any number of clients at once on each listener. By default a listener is one
    /// monitor, as in QEMU: it serves one client at a time, and the next one's connection
    /// waits, with no greeting, until the one before leaves.
    pub many_clients: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            time_scale: 1.0,
            version: (7, 2, 22),
            package: " (qmp-sim)".into(),
            name: None,
            like: Like::QemuSystem,
            machine: Machine::None,
            many_clients: false,
        }
    }
}

/// Which QEMU program the simulator answers as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Like {
    /// `qemu-system-x86_64`: run states, devices, migration, block nodes and jobs, QOM.
    #[default]
    QemuSystem,
    /// `qemu-storage-daemon`: only the commands and events that program has (block nodes,
    /// jobs, bitmaps, transactions, QOM objects; no run state, devices or migration), and
    /// its QOM tree, which has no machine.
    StorageDaemon,
}

/// The machine type the simulated `qemu-system-x86_64` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Machine {
    /// `-machine none`: no buses, so `device_add` finds no bus for any device model, as
    /// QEMU says.
    #[default]
    None,
    /// `-machine pc,usb=on`: PCI devices plug into `pci.0`, USB devices into `usb-bus.0`,
    /// SCSI disks into the bus of a `virtio-scsi-pci` added before them; `device_del` is
    /// acknowledged at the next tick, as by a guest that cooperates. The QOM tree stays
    /// `-machine none`'s, with the devices added under `/machine/peripheral`.
    Pc,
}

/// A simulated QEMU. Dropping it stops its clock; listeners stop at `quit` or when their
/// handles drop.
pub struct Simulator {
    server: Server,
    clock: JoinHandle<()>,
    many_clients: bool,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.clock.abort();
    }
}

pub(crate) type Shared = Arc<Mutex<State>>;

/// Locks the state; a handler that panicked leaves it usable (every update is one step).
pub(crate) fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl Simulator {
    /// A simulator with default options. Call inside a tokio runtime: it spawns its clock.
    pub fn new() -> Self {
        Self::with_options(SimOptions::default())
    }

    /// A simulator with `options`. Call inside a tokio runtime.
    pub fn with_options(options: SimOptions) -> Self {
        let (server, state) = commands::build(&options);
        let scale = options.time_scale;
        let wake = lock(&state).wake.clone();
        let clock = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last = Instant::now();
            loop {
                // Idle, the clock sleeps until a command (which may start a job, a migration
                // or an unplug) wakes it: an idle simulator uses no CPU. The time asleep is
                // not simulated time that anything spent.
                if !lock(&state).busy() {
                    wake.notified().await;
                    last = Instant::now();
                    tick.reset();
                }
                tick.tick().await;
                let now = Instant::now();
                let dt = now.duration_since(last).as_secs_f64() * scale;
                last = now;
                lock(&state).tick(dt);
            }
        });
        Simulator { server, clock, many_clients: options.many_clients }
    }

    /// The server, to serve more listeners or emit events.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Serves one connection on `stream` until it closes.
    pub async fn serve_stream<S>(&self, stream: S) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.server.serve_stream(stream).await
    }

    /// Serves one connection on a connected unix socket until it closes, receiving the
    /// descriptors its client passes (SCM_RIGHTS) for `getfd` and `add-fd`.
    pub async fn serve_unix_stream(&self, stream: tokio::net::UnixStream) -> io::Result<()> {
        self.server.serve_unix_stream(stream).await
    }

    /// A connected in-process socket: the simulator serves one end, you get the other
    /// (hand it to `qmp::ClientBuilder::connect_unix_stream`). No file is created; it takes
    /// descriptors passed with SCM_RIGHTS (`getfd`, `add-fd`) like a socket file would.
    pub fn connect_pair(&self) -> io::Result<tokio::net::UnixStream> {
        let (ours, theirs) = tokio::net::UnixStream::pair()?;
        let server = self.server.clone();
        tokio::spawn(async move { server.serve_unix_stream(ours).await });
        Ok(theirs)
    }

    /// Listens on a fresh unix socket in a new private temporary directory (mode 0700,
    /// whatever the umask; the socket itself is 0600).
    pub fn listen_unix_temp(&self) -> io::Result<SimSocket> {
        let dir = private_temp_dir()?;
        let path = dir.path().join("qmp.sock");
        let task = self.listen_unix(&path)?;
        Ok(SimSocket { path, task, _dir: dir })
    }

    /// Listens on a unix socket at `path` (mode 0600); the task ends at `quit`. It is one
    /// monitor, serving one client at a time, unless the options say
    /// [`many_clients`](SimOptions::many_clients).
    pub fn listen_unix(&self, path: &Path) -> io::Result<JoinHandle<io::Result<()>>> {
        let listener = bind_unix(path)?;
        let server = self.server.clone();
        Ok(if self.many_clients {
            tokio::spawn(async move { server.serve_unix(listener).await })
        } else {
            tokio::spawn(async move { server.serve_unix_monitor(listener).await })
        })
    }

    /// Listens on TCP `addr` (`host:port`, port 0 for any); returns the bound address. One
    /// client at a time, as [`listen_unix`](Simulator::listen_unix).
    pub async fn listen_tcp(&self, addr: &str) -> io::Result<(SocketAddr, JoinHandle<io::Result<()>>)> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let server = self.server.clone();
        Ok(if self.many_clients {
            (local, tokio::spawn(async move { server.serve_tcp(listener).await }))
        } else {
            (local, tokio::spawn(async move { server.serve_tcp_monitor(listener).await }))
        })
    }
}

impl Default for Simulator {
    fn default() -> Self {
        Self::new()
    }
}

/// A new temporary directory only its owner can enter: created with mode 0700 and checked
/// afterwards (a umask can only take bits away; one that took the owner's is undone).
fn private_temp_dir() -> io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let private = || std::fs::Permissions::from_mode(0o700);
    let dir = tempfile::Builder::new().prefix("qmp-sim-").permissions(private()).tempdir()?;
    let mode = |dir: &tempfile::TempDir| -> io::Result<u32> {
        Ok(std::fs::metadata(dir.path())?.permissions().mode() & 0o7777)
    };
    if mode(&dir)? != 0o700 {
        std::fs::set_permissions(dir.path(), private())?;
        let now = mode(&dir)?;
        if now != 0o700 {
            return Err(io::Error::other(format!("{} has mode {now:o}, not 700", dir.path().display())));
        }
    }
    Ok(dir)
}

/// A listening unix socket in a private temp dir; dropping it stops listening and removes it.
pub struct SimSocket {
    path: PathBuf,
    task: JoinHandle<io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl SimSocket {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SimSocket {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The environment variable [`run_sim_cli`] reads the connection cap from (a number; see
/// [`ServerBuilder::max_connections`](crate::ServerBuilder::max_connections)).
pub const MAX_CONNECTIONS_ENV: &str = "QMP_SIM_MAX_CONNECTIONS";

/// `qmp sim`: serves a simulator on `socket` or `tcp` (a fresh temp socket when neither is
/// given), prints where to stderr, and returns after `quit` or a signal. The cap on clients
/// served at once is `$QMP_SIM_MAX_CONNECTIONS` when set, else
/// [`DEFAULT_MAX_CONNECTIONS`](crate::DEFAULT_MAX_CONNECTIONS); see [`run_sim_cli_with`].
pub async fn run_sim_cli(socket: Option<PathBuf>, tcp: Option<String>) -> io::Result<()> {
    run_sim_cli_with(SimCli { sockets: socket.into_iter().collect(), tcp, ..SimCli::default() }).await
}

/// What `qmp sim` serves, for [`run_sim_cli_with`].
#[derive(Debug, Clone, Default)]
pub struct SimCli {
    /// Unix sockets to listen on (mode 0600), one monitor each.
    pub sockets: Vec<PathBuf>,
    /// A TCP address to listen on (`HOST:PORT`, port 0 for any), one monitor.
    pub tcp: Option<String>,
    /// When neither is given: how many monitor sockets to make in a new private temporary
    /// directory, `qmp.sock`, then `qmp2.sock`, `qmp3.sock`... (0 counts as 1).
    pub monitors: usize,
    /// Every listener serves any number of clients at once ([`SimOptions::many_clients`]).
    pub many_clients: bool,
    /// The QEMU program to answer as.
    pub like: Like,
    /// The machine a `qemu-system-x86_64` runs ([`SimOptions::machine`]).
    pub machine: Machine,
    /// The cap on clients a many-clients listener serves at once (`None`:
    /// `$QMP_SIM_MAX_CONNECTIONS`, else the default).
    pub max_connections: Option<usize>,
}

/// [`run_sim_cli`] with every choice of [`SimCli`].
///
/// Each listener is one monitor serving one client at a time, as QEMU's are, unless
/// `many_clients` is set. On stderr it prints one line per listener, `qmp sim: listening on unix:PATH` or
/// `qmp sim: listening on tcp:HOST:PORT`, before accepting anyone. It runs until a client
/// sends `quit`, or until SIGINT (Ctrl-C), SIGTERM or SIGHUP, on which it prints
/// `qmp sim: stopping on SIGTERM` (or SIGINT, SIGHUP), closes every connection after the
/// reply being written, removes its socket files (the private directory too, when it made
/// one) and returns `Ok(())`, so `qmp sim` exits 0. A `--socket` path is removed only while
/// it is still the socket this run bound (not one another process put there since), and on
/// an error after binding as well.
///
/// Unless the process already has a `tracing` subscriber, the server's warnings and notes
/// are printed to stderr as they happen, one line each after `qmp sim: ` (a listener out of
/// file descriptors, and its recovery; the connection cap reached; a slow client that lost
/// events), for example
/// `qmp sim: warning: QMP listener cannot accept connections (Too many open files (os error
/// 24)); pausing new clients until descriptors are freed`.
pub async fn run_sim_cli_with(cli: SimCli) -> io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let max_connections = match cli.max_connections {
        Some(n) => Some(n),
        None => max_connections_from_env()?,
    };
    if !tracing::dispatcher::has_been_set() {
        // Another thread may have set one meanwhile; then that one is used.
        let _ = tracing::subscriber::set_global_default(StderrNotes);
    }
    // Handlers first: once a listener is announced, these signals already clean up.
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let options = SimOptions {
        many_clients: cli.many_clients,
        like: cli.like,
        machine: cli.machine,
        ..SimOptions::default()
    };
    let sim = Simulator::with_options(options);
    if let Some(n) = max_connections {
        sim.server().set_max_connections(n);
    }
    // Declared before the tasks: an error after binding still removes what was bound.
    let mut _bound = Vec::new();
    let mut _temp = None;
    let mut tasks = Vec::new();
    for path in &cli.sockets {
        tasks.push(sim.listen_unix(path)?);
        _bound.push(OwnSocket::new(path));
        eprintln!("qmp sim: listening on unix:{}", path.display());
    }
    if let Some(addr) = &cli.tcp {
        let (local, task) = sim.listen_tcp(addr).await?;
        tasks.push(task);
        eprintln!("qmp sim: listening on tcp:{local}");
    }
    if cli.sockets.is_empty() && cli.tcp.is_none() {
        let dir = _temp.insert(private_temp_dir()?);
        for i in 1..=cli.monitors.max(1) {
            let name = if i == 1 { "qmp.sock".to_owned() } else { format!("qmp{i}.sock") };
            let path = dir.path().join(name);
            tasks.push(sim.listen_unix(&path)?);
            eprintln!("qmp sim: listening on unix:{}", path.display());
        }
    }
    let stopped_by = tokio::select! {
        _ = sim.server().wait_shutdown() => None,
        _ = int.recv() => Some("SIGINT"),
        _ = term.recv() => Some("SIGTERM"),
        _ = hup.recv() => Some("SIGHUP"),
    };
    if let Some(name) = stopped_by {
        eprintln!("qmp sim: stopping on {name}");
        sim.server().shutdown();
    }
    // Give connections a moment to flush the last reply.
    tokio::time::sleep(Duration::from_millis(20)).await;
    for t in tasks {
        t.abort();
    }
    // `_bound` and `_temp` remove the socket (and the private directory) as they drop.
    Ok(())
}

/// Prints `qmp_server`'s warnings and info lines to stderr: `qmp sim: warning: MESSAGE`,
/// `qmp sim: MESSAGE`.
struct StderrNotes;

impl tracing::Subscriber for StderrNotes {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO && metadata.target().starts_with("qmp_server")
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        // Spans are not recorded; every span gets the same (unused) id.
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = if *event.metadata().level() <= tracing::Level::WARN { "warning: " } else { "" };
        eprintln!("qmp sim: {level}{}", message.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn max_connections_from_env() -> io::Result<Option<usize>> {
    match std::env::var(MAX_CONNECTIONS_ENV) {
        Ok(v) => v.trim().parse().map(Some).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("${MAX_CONNECTIONS_ENV} is {v:?}, not a number of connections"),
            )
        }),
        Err(_) => Ok(None),
    }
}

/// The socket file this process bound at a path: removed on drop while the path still
/// names that same socket.
struct OwnSocket {
    path: PathBuf,
    id: Option<(u64, u64)>,
}

impl OwnSocket {
    fn new(path: &Path) -> Self {
        OwnSocket { path: path.to_path_buf(), id: file_id(path) }
    }
}

impl Drop for OwnSocket {
    fn drop(&mut self) {
        if self.id.is_some() && file_id(&self.path) == self.id {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// C's `strerror` for an OS error, as QEMU prints it: Rust's text (the C library's) without
/// its " (os error N)".
pub(crate) fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}
