//! vsock stream sockets (`AF_VSOCK`), for the guest agent's `-m vsock-listen -p CID:PORT`:
//! tokio has no type for them, so the async client drives the bare descriptor through
//! `AsyncFd`, and the blocking client uses it as it uses any socket (its receive timeout
//! works as a unix socket's does).

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, VsockAddr};
use tokio::io::unix::AsyncFd;

/// Starts a non-blocking connect to `cid:port`: the socket, and whether the connection is
/// still being made (`EINPROGRESS`: the peer has to answer, another machine's kernel).
fn start(cid: u32, port: u32) -> io::Result<(OwnedFd, bool)> {
    let fd = socket::socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    match socket::connect(fd.as_raw_fd(), &VsockAddr::new(cid, port)) {
        Ok(()) => Ok((fd, false)),
        // A signal during a non-blocking connect leaves it going on, as EINPROGRESS does.
        Err(Errno::EINPROGRESS | Errno::EINTR) => Ok((fd, true)),
        Err(e) => Err(e.into()),
    }
}

/// How a connect that was in progress ended, once the socket is writable (or in error).
fn outcome(fd: &OwnedFd) -> io::Result<()> {
    match socket::getsockopt(fd, sockopt::SocketError)? {
        0 => Ok(()),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

/// Connects to `cid:port` for the async client: the socket, non-blocking, registered with
/// the runtime. The kernel bounds a connect nobody answers (2 s by default), so this ends.
pub(crate) async fn connect(cid: u32, port: u32) -> io::Result<AsyncFd<OwnedFd>> {
    let (fd, pending) = start(cid, port)?;
    let fd = crate::fd::register(fd)?;
    if pending {
        // Writable when connected; in error (read as writable too) when refused or timed out.
        let _ready = fd.writable().await?;
        outcome(fd.get_ref())?;
    }
    Ok(fd)
}

/// Connects to `cid:port` for the blocking client, waiting at most `limit` for the peer to
/// answer; the socket is left in blocking mode.
pub(crate) fn connect_blocking(cid: u32, port: u32, limit: Option<Duration>) -> io::Result<OwnedFd> {
    let (fd, pending) = start(cid, port)?;
    if pending {
        let deadline = limit.map(|l| Instant::now() + l);
        loop {
            let timeout = match deadline {
                None => PollTimeout::NONE,
                Some(d) => {
                    let ms = d.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000);
                    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            match nix::poll::poll(&mut fds, timeout) {
                Ok(0) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer to connect"))
                }
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => break,
                Err(e) => return Err(e.into()),
            }
        }
        outcome(&fd)?;
    }
    crate::fd::set_blocking(&fd)?;
    Ok(fd)
}

/// The socket's receive timeout (`SO_RCVTIMEO`), as `UnixStream::set_read_timeout` sets it.
pub(crate) fn set_read_timeout(fd: &OwnedFd, t: Option<Duration>) -> io::Result<()> {
    use nix::sys::time::TimeVal;
    let tv = match t {
        Some(t) => {
            let secs = t.as_secs().try_into().unwrap_or(i64::MAX);
            // Zero is "no timeout" to the kernel: under a microsecond becomes one.
            let micros = if secs == 0 { t.subsec_micros().max(1) } else { t.subsec_micros() };
            TimeVal::new(secs, micros.into())
        }
        None => TimeVal::new(0, 0),
    };
    socket::setsockopt(fd, sockopt::ReceiveTimeout, &tv)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receive_timeout_rounds_up_not_to_zero() {
        let fd = match socket::socket(AddressFamily::Vsock, SockType::Stream, SockFlag::SOCK_CLOEXEC, None) {
            Ok(fd) => fd,
            // No vsock in this kernel: nothing to check.
            Err(Errno::EAFNOSUPPORT) => return,
            Err(e) => panic!("{e}"),
        };
        set_read_timeout(&fd, Some(Duration::from_nanos(10))).unwrap();
        let tv = socket::getsockopt(&fd, sockopt::ReceiveTimeout).unwrap();
        assert!(tv.tv_sec() == 0 && tv.tv_usec() > 0, "{tv:?}");
        set_read_timeout(&fd, Some(Duration::from_millis(1500))).unwrap();
        let tv = socket::getsockopt(&fd, sockopt::ReceiveTimeout).unwrap();
        assert_eq!((tv.tv_sec(), tv.tv_usec()), (1, 500_000));
        set_read_timeout(&fd, None).unwrap();
        let tv = socket::getsockopt(&fd, sockopt::ReceiveTimeout).unwrap();
        assert_eq!((tv.tv_sec(), tv.tv_usec()), (0, 0));
    }
}
