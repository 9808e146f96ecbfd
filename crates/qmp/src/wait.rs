//! Opening the socket an address names, for both clients: unix, TCP, or TLS over TCP, and
//! with [`ClientBuilder::wait`] retrying while the server is not there yet (the socket file
//! does not exist, or nothing listens: a QEMU that is starting). Retries back off from 10 ms,
//! doubling to 100 ms, until the wait runs out; then the error names the address and the wait.

use std::future::Future;
use std::io;
use std::net::ToSocketAddrs;
use std::time::{Duration, Instant};

use crate::address::Address;
use crate::error::{Error, Result};
use crate::transport::Transport;
use crate::ClientBuilder;

/// The first pause between tries, doubled after each up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(10);
/// The longest pause between tries: a socket that appears is found within this.
const MAX_DELAY: Duration = Duration::from_millis(100);

/// True for the failures of a server that is not there *yet*: no socket file, nothing
/// listening, a unix listener's backlog full.
fn not_there_yet(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused | io::ErrorKind::WouldBlock)
}

/// The error for a wait that ran out, from the last try's.
fn expired(wait: Duration, last: &io::Error) -> io::Error {
    let what = match last.kind() {
        io::ErrorKind::NotFound => "the socket does not exist".to_owned(),
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
    wait: Duration,
    deadline: Instant,
    delay: Duration,
}

impl Backoff {
    fn new(wait: Duration) -> Backoff {
        Backoff { wait, deadline: Instant::now() + wait, delay: FIRST_DELAY }
    }

    /// After a failed try: the pause before the next, or the error to give up with.
    fn after(&mut self, e: io::Error) -> Result<Duration, io::Error> {
        if !not_there_yet(&e) {
            return Err(e);
        }
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(expired(self.wait, &e));
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
async fn retry<T, F, Fut>(wait: Option<Duration>, mut attempt: F) -> io::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    let Some(wait) = wait else { return attempt().await };
    let mut backoff = Backoff::new(wait);
    loop {
        let e = match tokio::time::timeout(backoff.left().max(Duration::from_millis(1)), attempt()).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => e,
            Err(_) => {
                return Err(expired(wait, &io::Error::new(io::ErrorKind::TimedOut, "no answer to connect")))
            }
        };
        tokio::time::sleep(backoff.after(e)?).await;
    }
}

/// [`retry`] for blocking tries.
fn retry_blocking<T>(
    wait: Option<Duration>,
    mut attempt: impl FnMut(Option<Duration>) -> io::Result<T>,
) -> io::Result<T> {
    let Some(wait) = wait else { return attempt(None) };
    let mut backoff = Backoff::new(wait);
    loop {
        match attempt(Some(backoff.left().max(Duration::from_millis(1)))) {
            Ok(s) => return Ok(s),
            Err(e) => std::thread::sleep(backoff.after(e)?),
        }
    }
}

/// The async client's socket for `addr`, as the builder says (waiting, TLS).
pub(crate) async fn dial(addr: &Address, b: &ClientBuilder) -> Result<Transport> {
    let connect_err = |source| Error::Connect { address: addr.to_string(), source };
    match addr {
        Address::Unix(path) => {
            let s = retry(b.wait, || tokio::net::UnixStream::connect(path)).await.map_err(connect_err)?;
            Ok(Transport::Unix(s))
        }
        Address::Tcp(hp) => {
            let s =
                retry(b.wait, || tokio::net::TcpStream::connect(hp.as_str())).await.map_err(connect_err)?;
            let _ = s.set_nodelay(true);
            Ok(Transport::Tcp(s))
        }
        Address::Tls(hp) => {
            let tls = b.tls.as_ref().ok_or_else(|| no_tls(addr))?;
            let s =
                retry(b.wait, || tokio::net::TcpStream::connect(hp.as_str())).await.map_err(connect_err)?;
            crate::tls::connect_async(s, tls, addr, b.await_greeting, b.negotiation_bound()).await
        }
    }
}

/// A blocking socket: what the blocking client runs on.
pub(crate) enum StdStream {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
}

/// The blocking client's socket for `addr`, as the builder says. TLS is relayed by a thread
/// of its own over a socket pair (see [`crate::tls`]).
pub(crate) fn dial_blocking(addr: &Address, b: &ClientBuilder) -> Result<StdStream> {
    let connect_err = |source| Error::Connect { address: addr.to_string(), source };
    match addr {
        Address::Unix(path) => {
            let s = retry_blocking(b.wait, |_| std::os::unix::net::UnixStream::connect(path))
                .map_err(connect_err)?;
            Ok(StdStream::Unix(s))
        }
        Address::Tcp(hp) => {
            let s = retry_blocking(b.wait, |limit| tcp_connect(hp, limit)).map_err(connect_err)?;
            Ok(StdStream::Tcp(s))
        }
        Address::Tls(hp) => {
            let tls = b.tls.as_ref().ok_or_else(|| no_tls(addr))?;
            let s = retry_blocking(b.wait, |limit| tcp_connect(hp, limit)).map_err(connect_err)?;
            let plain = crate::tls::relay_blocking(s, tls, addr, b.await_greeting, b.negotiation_bound())?;
            Ok(StdStream::Unix(plain))
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
        let mut b = Backoff::new(Duration::from_secs(10));
        let refused = || io::Error::from(io::ErrorKind::ConnectionRefused);
        let pauses: Vec<u128> = (0..6).map(|_| b.after(refused()).unwrap().as_millis()).collect();
        assert_eq!(pauses, [10, 20, 40, 80, 100, 100]);

        let mut b = Backoff::new(Duration::ZERO);
        let e = b.after(io::Error::from(io::ErrorKind::NotFound)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(e.to_string(), "no server after waiting 0ms (the socket does not exist)");
    }

    #[test]
    fn other_failures_are_not_retried() {
        let mut b = Backoff::new(Duration::from_secs(10));
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
