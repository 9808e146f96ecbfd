//! The blocking client's socket.

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// The socket: unix (with fd passing) or TCP, in blocking mode; or the socket pair to the
/// thread that runs a TLS session, which carries bytes only (fds cannot cross TLS).
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    TlsRelay(UnixStream),
}

impl Stream {
    /// Blocking mode (a stream handed in may be non-blocking), and no Nagle delay on TCP.
    pub(crate) fn prepare(&self) -> io::Result<()> {
        match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.set_nonblocking(false),
            Stream::Tcp(s) => {
                s.set_nodelay(true)?;
                s.set_nonblocking(false)
            }
        }
    }

    pub(super) fn fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
        }
    }

    pub(super) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }

    pub(super) fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
}
