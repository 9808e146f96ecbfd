//! Opening the connection an address names, for both clients: unix, TCP, TLS over TCP,
//! vsock, or a serial device; and with [`ClientBuilder::wait`] retrying while the server is
//! not there yet (the socket file or device does not exist, nothing listens: a QEMU or a
//! guest that is starting). Retries back off from 10 ms, doubling to 100 ms, until the wait
//! runs out; then the error names the address and the wait.

use std::future::Future;
use std::io;
use std::net::ToSocketAddrs;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use crate::address::Address;
use crate::error::{Error, Result};
use crate::transport::Transport;
use crate::ClientBuilder;

/// The first pause between tries, doubled after each up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(10);
/// The longest pause between tries: a socket that appears is found within this.
const MAX_DELAY: Duration = Duration::from_millis(100);

/// What is dialled, for what counts as "not there yet" and how a wait's end reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// A unix or TCP socket.
    Socket,
    /// A vsock socket.
    Vsock,
    /// A serial device.
    Device,
}

impl Target {
    fn of(addr: &Address) -> Target {
        match addr {
            Address::Unix(_) | Address::Tcp(_) | Address::Tls(_) => Target::Socket,
            Address::Vsock { .. } => Target::Vsock,
            Address::Serial(_) => Target::Device,
        }
    }

    /// True for the failures of a server that is not there *yet*: no socket file or device,
    /// nothing listening, a unix listener's backlog full. For vsock also a reset (nothing
    /// listens on the port: the guest's agent has not started), no such device (no machine
    /// has the CID yet: the VM is starting) and a connect nobody answered (the guest's kernel
    /// has no vsock driver up yet).
    fn not_there_yet(self, e: &io::Error) -> bool {
        use io::ErrorKind::*;
        matches!(e.kind(), NotFound | ConnectionRefused | WouldBlock)
            || (self == Target::Vsock
                && (matches!(e.kind(), ConnectionReset | TimedOut)
                    || e.raw_os_error() == Some(nix::libc::ENODEV)))
    }

    /// What a missing file is, in a wait's error.
    fn missing(self) -> &'static str {
        match self {
            Target::Device => "the device does not exist",
            _ => "the socket does not exist",
        }
    }
}

/// The error for a wait that ran out, from the last try's.
fn expired(target: Target, wait: Duration, last: &io::Error) -> io::Error {
    let what = match last.kind() {
        io::ErrorKind::NotFound => target.missing().to_owned(),
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        _ => last.to_string(),
    };
    io::Error::new(io::ErrorKind::TimedOut, format!("no server after waiting {} ({what})", humanize(wait)))
}

/// `1.5s`, `250ms`.
fn humanize(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// The pauses between tries, bounded by the deadline.
struct Backoff {
    target: Target,
    wait: Duration,
    deadline: Instant,
    delay: Duration,
}

impl Backoff {
    fn new(target: Target, wait: Duration) -> Backoff {
        Backoff { target, wait, deadline: Instant::now() + wait, delay: FIRST_DELAY }
    }

    /// After a failed try: the pause before the next, or the error to give up with.
    fn after(&mut self, e: io::Error) -> Result<Duration, io::Error> {
        if !self.target.not_there_yet(&e) {
            return Err(e);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(expired(self.target, self.wait, &e));
        }
        let pause = self.delay.min(left);
        self.delay = (self.delay * 2).min(MAX_DELAY);
        Ok(pause)
    }

    fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Tries `attempt` until it succeeds, fails for another reason, or the wait runs out.
async fn retry<T, F, Fut>(target: Target, wait: Option<Duration>, mut attempt: F) -> io::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let Some(wait) = wait else { return attempt().await };
    let mut backoff = Backoff::new(target, wait);
    loop {
        let e = match tokio::time::timeout(backoff.left().max(Duration::from_millis(1)), attempt()).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(expired(
                    target,
                    wait,
                    &io::Error::new(io::ErrorKind::TimedOut, "no answer to connect"),
                ))
            }
        };
        tokio::time::sleep(backoff.after(e)?).await;
    }
}

/// [`retry`] for blocking tries.
fn retry_blocking<T>(
    target: Target,
    wait: Option<Duration>,
    mut attempt: impl FnMut(Option<Duration>) -> io::Result<T>,
) -> io::Result<T> {
    let Some(wait) = wait else { return attempt(None) };
    let mut backoff = Backoff::new(target, wait);
    loop {
        match attempt(Some(backoff.left().max(Duration::from_millis(1)))) {
            Ok(s) => return Ok(s),
            Err(e) => std::thread::sleep(backoff.after(e)?),
        }
    }
}

/// The async client's connection for `addr`, as the builder says (waiting, TLS).
pub(crate) async fn dial(addr: &Address, b: &ClientBuilder) -> Result<Transport> {
    let connect_err = |source| Error::Connect { address: addr.to_string(), source };
    let target = Target::of(addr);
    match addr {
        Address::Unix(path) => {
            let s =
                retry(target, b.wait, || tokio::net::UnixStream::connect(path)).await.map_err(connect_err)?;
            Ok(Transport::Unix(s))
        }
        Address::Tcp(hp) => {
            let s = retry(target, b.wait, || tokio::net::TcpStream::connect(hp.as_str()))
                .await
                .map_err(connect_err)?;
            let _ = s.set_nodelay(true);
            Ok(Transport::Tcp(s))
        }
        Address::Tls(hp) => {
            let tls = b.tls.as_ref().ok_or_else(|| no_tls(addr))?;
            let s = retry(target, b.wait, || tokio::net::TcpStream::connect(hp.as_str()))
                .await
                .map_err(connect_err)?;
            crate::tls::connect_async(s, tls, addr, b.await_greeting, b.negotiation_bound()).await
        }
        Address::Vsock { cid, port } => {
            let fd =
                retry(target, b.wait, || crate::vsock::connect(*cid, *port)).await.map_err(connect_err)?;
            Ok(Transport::Vsock(fd))
        }
        Address::Serial(path) => {
            let open = || async { crate::fd::register(crate::serial::open(path)?) };
            let fd = retry(target, b.wait, open).await.map_err(connect_err)?;
            Ok(Transport::Serial(fd))
        }
    }
}

/// A blocking connection: what the blocking client runs on.
pub(crate) enum StdStream {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
    /// A vsock socket, in blocking mode.
    Vsock(OwnedFd),
    /// A terminal in raw mode, in blocking mode.
    Serial(OwnedFd),
}

/// The blocking client's connection for `addr`, as the builder says. TLS is relayed by a
/// thread of its own over a socket pair (see [`crate::tls`]).
pub(crate) fn dial_blocking(addr: &Address, b: &ClientBuilder) -> Result<StdStream> {
    let connect_err = |source| Error::Connect { address: addr.to_string(), source };
    let target = Target::of(addr);
    match addr {
        Address::Unix(path) => {
            let s = retry_blocking(target, b.wait, |_| std::os::unix::net::UnixStream::connect(path))
                .map_err(connect_err)?;
            Ok(StdStream::Unix(s))
        }
        Address::Tcp(hp) => {
            let s = retry_blocking(target, b.wait, |limit| tcp_connect(hp, limit)).map_err(connect_err)?;
            Ok(StdStream::Tcp(s))
        }
        Address::Tls(hp) => {
            let tls = b.tls.as_ref().ok_or_else(|| no_tls(addr))?;
            let s = retry_blocking(target, b.wait, |limit| tcp_connect(hp, limit)).map_err(connect_err)?;
            let plain = crate::tls::relay_blocking(s, tls, addr, b.await_greeting, b.negotiation_bound())?;
            Ok(StdStream::Unix(plain))
        }
        Address::Vsock { cid, port } => {
            let fd =
                retry_blocking(target, b.wait, |limit| crate::vsock::connect_blocking(*cid, *port, limit))
                    .map_err(connect_err)?;
            Ok(StdStream::Vsock(fd))
        }
        Address::Serial(path) => {
            let open = |_| {
                let fd = crate::serial::open(path)?;
                crate::fd::set_blocking(&fd)?;
                Ok(fd)
            };
            let fd = retry_blocking(target, b.wait, open).map_err(connect_err)?;
            Ok(StdStream::Serial(fd))
        }
    }
}

/// A TCP connect, each address within `limit` when there is one.
fn tcp_connect(hp: &str, limit: Option<Duration>) -> io::Result<std::net::TcpStream> {
    let Some(limit) = limit else { return std::net::TcpStream::connect(hp) };
    let mut last = None;
    for a in hp.to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&a, limit) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the name resolved to no address")))
}

fn no_tls(addr: &Address) -> Error {
    Error::Unsupported(format!(
        "{addr} needs a TLS configuration (ClientBuilder::tls with the CA that signed the server's certificate)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_stop_at_the_deadline() {
        let mut b = Backoff::new(Target::Socket, Duration::from_secs(10));
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        let pauses: Vec<u128> = (0..6).map(|_| b.after(refused()).unwrap().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 100, 100]);

        let mut b = Backoff::new(Target::Socket, Duration::ZERO);
        let e = b.after(io::Error::from(io::ErrorKind::NotFound)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "no server after waiting 0ms (the socket does not exist)");
        let mut b = Backoff::new(Target::Device, Duration::ZERO);
        let e = b.after(io::Error::from(io::ErrorKind::NotFound)).unwrap_err();
        assert_eq!(e.to_string(), "no server after waiting 0ms (the device does not exist)");
    }

    #[test]
    fn a_vsock_peer_that_is_not_up_yet_is_waited_for() {
        let enodev = io::Error::from_raw_os_error(nix::libc::ENODEV);
        let reset = || io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(Target::Vsock.not_there_yet(&enodev) && Target::Vsock.not_there_yet(&reset()));
        assert!(Target::Vsock.not_there_yet(&io::Error::from(io::ErrorKind::TimedOut)));
        assert!(!Target::Socket.not_there_yet(&enodev) && !Target::Socket.not_there_yet(&reset()));
        assert!(!Target::Vsock.not_there_yet(&io::Error::from(io::ErrorKind::PermissionDenied)));
        // A path that is no terminal is not waited for: it will not become one.
        let not_a_tty = crate::serial::open(std::path::Path::new("/dev/null")).unwrap_err();
        assert!(!Target::Device.not_there_yet(&not_a_tty));
    }

    #[test]
    fn other_failures_are_not_retried() {
        let mut b = Backoff::new(Target::Socket, Duration::from_secs(10));
        let e = b.after(io::Error::from(io::ErrorKind::PermissionDenied)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn a_blocking_wait_runs_out_with_the_address_and_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let addr = Address::Unix(dir.path().join("never.sock"));
        let started = Instant::now();
        let b = ClientBuilder::new().wait(Duration::from_millis(300));
        let Err(e) = dial_blocking(&addr, &b) else { panic!("connected to nothing") };
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_secs(3), "{waited:?}");
        let text = e.to_string();
        assert!(text.contains("never.sock") && text.contains("after waiting 300ms"), "{text}");
        assert!(text.contains("the socket does not exist"), "{text}");
    }
}
