//! Server monitors that hold a peer's start-up until a first client has come
//! (`server=on,wait=on`), and that first client, which reads the greeting and leaves.
//!
//! QEMU 7.2, qemu-system-x86_64 and qemu-storage-daemon alike, has a race at start-up: a
//! client that connects while QEMU is moving its QMP monitor to the monitor thread can have
//! its input read by two threads at once. The daemon then answers "JSON parse error", stops
//! answering, or aborts in its JSON parser: about 1 start in 100 here when connecting as soon
//! as the socket exists, and its pid file is written too early to wait for. qemu-system-x86_64
//! died of SIGSEGV in 1 start of 600 with both CPUs busy, after a probe that connected and hung
//! up at once. With `wait=on` QEMU accepts its first client before it creates the monitor, and
//! once that client has been greeted the monitor is settled: any client may come. Under the
//! same load, 0 starts of 1200 failed that way.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::INSTALL_HINT;

/// How long a peer may take to listen on its monitors and greet.
const START_LIMIT: Duration = Duration::from_secs(20);

/// `unix:PATH,server=on,wait=on`: a `-qmp` or `-monitor` option whose QEMU waits for a first
/// client on `path` (see [`greet_monitors`]).
pub fn waiting_unix(path: &Path) -> String {
    format!("unix:{},server=on,wait=on", path.display())
}

/// `tcp:127.0.0.1:PORT,server=on,wait=on`: a `-qmp` or `-monitor` option whose QEMU waits for
/// a first client on `port` (see [`greet_monitors`]).
pub fn waiting_tcp(port: u16) -> String {
    format!("tcp:127.0.0.1:{port},server=on,wait=on")
}

/// Where a monitor that waits for its first client listens.
#[derive(Debug, Clone, Copy)]
pub enum Listener<'a> {
    /// A unix socket at this path.
    Unix(&'a Path),
    /// TCP on 127.0.0.1, this port.
    Tcp(u16),
}

impl std::fmt::Display for Listener<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listener::Unix(path) => write!(f, "{}", path.display()),
            Listener::Tcp(port) => write!(f, "127.0.0.1:{port}"),
        }
    }
}

/// Returns once each of `child`'s monitors (each `server=on,wait=on`, given in the order of
/// the command line) has greeted a first client that then left: from then on any client may
/// connect, and QEMU frees each monitor again for the next one.
///
/// QEMU opens its waiting sockets one after another, each after the one before has a client,
/// and greets only once all are taken, so every monitor is connected before any greeting is
/// read. The greeting is QMP's `{"QMP": ...}` or HMP's banner, whichever the monitor speaks.
pub fn greet_monitors(child: &mut Child, monitors: &[Listener<'_>]) {
    let deadline = Instant::now() + START_LIMIT;
    let mut streams: Vec<Box<dyn Read>> = Vec::with_capacity(monitors.len());
    for monitor in monitors {
        let stream: Box<dyn Read> = loop {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("the peer (pid {}) exited at start-up: {status}", child.id());
            }
            assert!(Instant::now() < deadline, "nothing listened on {monitor} within {START_LIMIT:?}");
            let connected: std::io::Result<Box<dyn Read>> = match monitor {
                Listener::Unix(path) => UnixStream::connect(path).and_then(|s| {
                    s.set_read_timeout(Some(START_LIMIT))?;
                    Ok(Box::new(s) as Box<dyn Read>)
                }),
                Listener::Tcp(port) => TcpStream::connect(("127.0.0.1", *port)).and_then(|s| {
                    s.set_read_timeout(Some(START_LIMIT))?;
                    Ok(Box::new(s) as Box<dyn Read>)
                }),
            };
            match connected {
                Ok(stream) => break stream,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        streams.push(stream);
    }
    for (stream, monitor) in streams.into_iter().zip(monitors) {
        let mut greeting = String::new();
        BufReader::new(stream)
            .read_line(&mut greeting)
            .unwrap_or_else(|e| panic!("no greeting on {monitor}: {e}"));
        assert!(
            greeting.starts_with("{\"QMP\"") || greeting.starts_with("QEMU "),
            "not a monitor's greeting on {monitor}: {greeting:?}"
        );
    }
}

/// Spawns `cmd` with standard input and output null and standard error passed on, less the
/// "QEMU waiting for connection" notices of its waiting monitors.
pub fn spawn_quiet(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child =
        cmd.spawn().unwrap_or_else(|e| panic!("cannot start {:?}: {e}; {INSTALL_HINT}", cmd.get_program()));
    let stderr = child.stderr.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !line.contains("QEMU waiting for connection") {
                eprintln!("{line}");
            }
        }
    });
    child
}

/// The `--chardev` and `--monitor` options of a storage-daemon QMP monitor on `path` that
/// waits for its first client, to be started with [`spawn_storage_daemon`].
pub fn storage_daemon_monitor(path: &Path, id: &str) -> [String; 4] {
    [
        "--chardev".into(),
        format!("socket,path={},server=on,wait=on,id={id}", path.display()),
        "--monitor".into(),
        format!("chardev={id}"),
    ]
}

/// Starts qemu-storage-daemon whose monitors on `sockets` are [`storage_daemon_monitor`]s, in
/// order, and returns once each has greeted a first client that then left
/// ([`greet_monitors`]).
pub fn spawn_storage_daemon(cmd: Command, sockets: &[impl AsRef<Path>]) -> Child {
    let mut child = spawn_quiet(cmd);
    let monitors: Vec<Listener<'_>> = sockets.iter().map(|s| Listener::Unix(s.as_ref())).collect();
    greet_monitors(&mut child, &monitors);
    child
}
