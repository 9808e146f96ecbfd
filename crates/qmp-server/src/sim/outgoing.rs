//! Where an outgoing migration writes: its URI read and its connection made as QEMU 7.2
//! does, so that a migration to nowhere fails as it would. The simulator sends no
//! migration stream; it holds the connection (or the passed descriptor) for the length of
//! the simulated migration and closes it at the end.
//!
//! What QEMU does that a client can see, found by running it:
//! - a URI it cannot read fails at once: the `migrate` error, and the same text as
//!   `query-migrate`'s `error-desc` ("error parsing address 'X'", "invalid Unix socket
//!   address", "File descriptor named 'X' has not been found");
//! - an unknown protocol fails at once too, but leaves no `error-desc`;
//! - `tcp:`, `unix:` and `vsock:` connect after `migrate` has returned: the migration
//!   stays in `setup` until the connection is made, and a failure ("address resolution
//!   failed for H:P: …", "Failed to connect to 'H:P': …", a vsock CID or port that is not a
//!   number) comes as the `failed` status;
//! - `fd:NAME` takes the monitor's descriptor of that name (`closefd` no longer finds it);
//! - `exec:` runs a shell command, which the simulator does not: it migrates into nothing.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use super::strerror;

/// Where the migration writes.
pub(crate) enum Target {
    /// Being connected, on a thread of its own as QEMU connects asynchronously.
    Connecting(mpsc::Receiver<Result<OwnedFd, String>>),
    /// Open until the migration ends, when dropping it closes it (`None` for `exec:`).
    Open { _held: Option<OwnedFd> },
}

/// Why a URI could not be used at once.
pub(crate) enum Refused {
    /// Not a protocol QEMU 7.2 has: no `error-desc` is kept.
    Protocol,
    /// Any other: the text is also `query-migrate`'s `error-desc`.
    Other(String),
}

/// Reads `uri` and starts connecting; `named_fd` takes the monitor's descriptor of a name.
pub(crate) fn open(uri: &str, named_fd: impl FnOnce(&str) -> Option<OwnedFd>) -> Result<Target, Refused> {
    let refuse = |desc: String| Err(Refused::Other(desc));
    if let Some(addr) = uri.strip_prefix("tcp:") {
        let (host, port) = inet_parse(addr).map_err(Refused::Other)?;
        let has = |name: &str| addr.split(',').skip(1).any(|o| o == name || o == format!("{name}=on"));
        // (IPv4, IPv6): `ipv4` alone keeps IPv4 only, and so on; neither or both, any.
        let families = (!has("ipv6") || has("ipv4"), !has("ipv4") || has("ipv6"));
        return Ok(connect_in_background(move || tcp_connect(&host, &port, families)));
    }
    if let Some(path) = uri.strip_prefix("unix:") {
        if path.is_empty() {
            return refuse("invalid Unix socket address".into());
        }
        let path = path.to_owned();
        return Ok(connect_in_background(move || {
            UnixStream::connect(&path)
                .map(OwnedFd::from)
                .map_err(|e| format!("Failed to connect to '{path}': {}", strerror(&e)))
        }));
    }
    if let Some(addr) = uri.strip_prefix("vsock:") {
        let (cid, port) =
            vsock_parse(addr).ok_or_else(|| Refused::Other(format!("error parsing address '{addr}'")))?;
        return Ok(connect_in_background(move || vsock_connect(&cid, &port)));
    }
    if let Some(name) = uri.strip_prefix("fd:") {
        return match named_fd(name) {
            Some(fd) => Ok(Target::Open { _held: Some(fd) }),
            None => refuse(format!("File descriptor named '{name}' has not been found")),
        };
    }
    if uri.starts_with("exec:") {
        return Ok(Target::Open { _held: None });
    }
    if uri.starts_with("rdma:") {
        // What QEMU 7.2 says on a host without RDMA devices, where nearly every test runs.
        return refuse("RDMA ERROR: could not create CM channel".into());
    }
    Err(Refused::Protocol)
}

/// Connections being made at once, at most: each has a thread, and a client cancelling and
/// restarting migrations to a silent host must not pile them up.
const MAX_CONNECTING: usize = 16;

/// How long one address is tried (QEMU waits as long as the kernel does).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

static CONNECTING: AtomicUsize = AtomicUsize::new(0);

fn connect_in_background(connect: impl FnOnce() -> Result<OwnedFd, String> + Send + 'static) -> Target {
    let (tx, rx) = mpsc::channel();
    if CONNECTING.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTING {
        CONNECTING.fetch_sub(1, Ordering::SeqCst);
        let _ = tx.send(Err(format!("the simulator is already making {MAX_CONNECTING} connections")));
        return Target::Connecting(rx);
    }
    // A connection that never completes (a silent host) leaves the migration in `setup`,
    // as in QEMU, until the timeout; a result nobody waits for any more is dropped.
    std::thread::spawn(move || {
        let _ = tx.send(connect());
        CONNECTING.fetch_sub(1, Ordering::SeqCst);
    });
    Target::Connecting(rx)
}

/// QEMU's `inet_parse`: `HOST:PORT`, `[V6HOST]:PORT` or `:PORT`, options after a comma.
fn inet_parse(addr: &str) -> Result<(String, String), String> {
    let parsed = match addr.strip_prefix('[') {
        Some(v6) => v6.split_once("]:").ok_or("IPv6 address"),
        None => addr.split_once(':').ok_or("address"),
    };
    let port = |rest: &str| rest.split(',').next().unwrap_or_default().to_owned();
    match parsed {
        Ok((host, rest)) if !port(rest).is_empty() => Ok((host.to_owned(), port(rest))),
        Ok(_) if addr.starts_with('[') => Err(format!("error parsing IPv6 address '{addr}'")),
        Ok(_) => Err(format!("error parsing address '{addr}'")),
        Err(what) => Err(format!("error parsing {what} '{addr}'")),
    }
}

/// Resolves and connects as QEMU's `inet_connect_saddr` does, with its texts, to the
/// addresses of the families `(IPv4, IPv6)` allowed (the `ipv4`/`ipv6` options).
fn tcp_connect(host: &str, port: &str, (v4, v6): (bool, bool)) -> Result<OwnedFd, String> {
    let resolution = |why: &str| format!("address resolution failed for {host}:{port}: {why}");
    let number = match port.parse::<u32>() {
        // getaddrinfo keeps the low 16 bits of a numeric service.
        Ok(n) => n as u16,
        Err(_) => service_port(port).ok_or_else(|| resolution("Servname not supported for ai_socktype"))?,
    };
    let addrs = (host, number).to_socket_addrs().map_err(|e| {
        let text = e.to_string();
        resolution(text.strip_prefix("failed to lookup address information: ").unwrap_or(&text))
    })?;
    let mut last = None;
    for a in addrs.filter(|a| if a.is_ipv4() { v4 } else { v6 }) {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s.into()),
            Err(e) => last = Some(e),
        }
    }
    let why = last.map_or_else(|| "Name or service not known".to_string(), |e| strerror(&e));
    Err(format!("Failed to connect to '{host}:{port}': {why}"))
}

/// A service name's TCP port from /etc/services, as getaddrinfo finds it.
fn service_port(name: &str) -> Option<u16> {
    let services = std::fs::read_to_string("/etc/services").ok()?;
    services.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut words = line.split_whitespace();
        let (service, port) = (words.next()?, words.next()?);
        let port = port.strip_suffix("/tcp")?.parse().ok()?;
        (service == name || words.any(|alias| alias == name)).then_some(port)
    })
}

/// `CID:PORT`, options after a comma; the numbers are read when connecting.
fn vsock_parse(addr: &str) -> Option<(String, String)> {
    let (cid, port) = addr.split_once(':')?;
    let port = port.split(',').next()?;
    (!cid.is_empty() && !port.is_empty()).then(|| (cid.to_owned(), port.to_owned()))
}

fn vsock_connect(cid: &str, port: &str) -> Result<OwnedFd, String> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, VsockAddr};
    let cid_number = cid.parse().map_err(|_| format!("Failed to parse cid '{cid}'"))?;
    let port_number = port.parse().map_err(|_| format!("Failed to parse port '{port}'"))?;
    let failed = |e: nix::Error| {
        format!("Failed to connect to '{cid}:{port}': {}", strerror(&std::io::Error::from(e)))
    };
    let fd = socket(AddressFamily::Vsock, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).map_err(failed)?;
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &VsockAddr::new(cid_number, port_number))
        .map_err(failed)?;
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_read_as_qemu_reads_them() {
        let ok = |a: &str| inet_parse(a).unwrap();
        assert_eq!(ok("h:1"), ("h".into(), "1".into()));
        assert_eq!(ok(":1"), ("".into(), "1".into()));
        assert_eq!(ok("[::1]:1"), ("::1".into(), "1".into()));
        assert_eq!(ok("h:1,ipv4"), ("h".into(), "1".into()));
        assert_eq!(inet_parse("h").unwrap_err(), "error parsing address 'h'");
        assert_eq!(inet_parse("h:").unwrap_err(), "error parsing address 'h:'");
        assert_eq!(inet_parse("").unwrap_err(), "error parsing address ''");
        assert_eq!(inet_parse("[::1").unwrap_err(), "error parsing IPv6 address '[::1'");
        assert_eq!(inet_parse("[::1]:").unwrap_err(), "error parsing IPv6 address '[::1]:'");
        assert_eq!(inet_parse(":").unwrap_err(), "error parsing address ':'");
        assert_eq!(vsock_parse("3:1024"), Some(("3".into(), "1024".into())));
        assert_eq!(vsock_parse("3"), None);
        assert_eq!(vsock_connect("x", "1").unwrap_err(), "Failed to parse cid 'x'");
        assert_eq!(vsock_connect("3", "y").unwrap_err(), "Failed to parse port 'y'");
    }
}
