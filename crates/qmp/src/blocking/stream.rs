//! The blocking client's connection.

use std::io;
use std::mem::MaybeUninit;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// The connection: unix (with fd passing) or TCP, in blocking mode; the socket pair to the
/// thread that runs a TLS session, which carries bytes only (fds cannot cross TLS); a vsock
/// socket; or a terminal (a serial device) in raw mode.
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    TlsRelay(UnixStream),
    Vsock(OwnedFd),
    Serial(OwnedFd),
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
            Stream::Vsock(fd) | Stream::Serial(fd) => crate::fd::set_blocking(fd),
        }
    }

    pub(super) fn fd(&self) -> RawFd {
        match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.as_raw_fd(),
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Vsock(fd) | Stream::Serial(fd) => fd.as_raw_fd(),
        }
    }

    /// The sockets' receive timeout. A terminal has none: its reads are bounded by the
    /// deadline given to [`Stream::read`] instead.
    pub(super) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Vsock(fd) => crate::vsock::set_read_timeout(fd, t),
            Stream::Serial(_) => Ok(()),
        }
    }

    /// One read into `spare`: 0 at the end, `WouldBlock` (or `TimedOut`) when the wait ended
    /// with nothing. `now_only` reads only what is there. A socket waits as its receive timeout
    /// says; a terminal, which has no such timeout, waits with `poll()` until `deadline`.
    pub(super) fn read(
        &self,
        spare: &mut [MaybeUninit<u8>],
        now_only: bool,
        deadline: Option<Instant>,
    ) -> io::Result<usize> {
        if let Stream::Serial(fd) = self {
            // One reader at a time (the reader role), so the bytes poll saw are still there
            // for the read, which then does not block.
            crate::serial::wait_readable(fd.as_fd(), if now_only { Some(Instant::now()) } else { deadline })?;
            return crate::fd::read_into(fd.as_fd(), spare);
        }
        let flags = if now_only { nix::libc::MSG_DONTWAIT } else { 0 };
        // SAFETY: recv writes at most `spare.len()` bytes into `spare`, which stays valid and
        // unaliased for the call; the caller keeps only the bytes it reports.
        let n = unsafe { nix::libc::recv(self.fd(), spare.as_mut_ptr().cast(), spare.len(), flags) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// One write of `bytes` (or their beginning). No SIGPIPE: sockets are written with
    /// MSG_NOSIGNAL, and a terminal raises none.
    pub(super) fn write(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Serial(fd) => crate::serial::write(fd.as_fd(), bytes),
            _ => {
                use nix::sys::socket::{send, MsgFlags};
                Ok(send(self.fd(), bytes, MsgFlags::MSG_NOSIGNAL)?)
            }
        }
    }

    /// Shuts a socket down both ways, so that a thread blocked reading it wakes. A terminal
    /// is left as it is: the channel belongs to the agent and outlives this connection (the
    /// descriptor is closed when the connection is dropped).
    pub(super) fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) | Stream::TlsRelay(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Vsock(fd) => nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both)
                .map_err(io::Error::from),
            Stream::Serial(_) => Ok(()),
        };
    }
}
