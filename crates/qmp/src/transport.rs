//! The socket under a connection: unix (with fd passing) or TCP, used through readiness and
//! non-blocking `try_*` calls so that one task can read and write without splitting it.

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use tokio::io::{Interest, Ready};
use tokio::net::{TcpStream, UnixStream};

pub(crate) enum Transport {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Transport {
    pub(crate) async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        match self {
            Transport::Unix(s) => s.ready(interest).await,
            Transport::Tcp(s) => s.ready(interest).await,
        }
    }

    pub(crate) fn try_read_buf(&self, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Transport::Unix(s) => s.try_read_buf(buf),
            Transport::Tcp(s) => s.try_read_buf(buf),
        }
    }

    pub(crate) fn try_write(&self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Unix(s) => s.try_write(bytes),
            Transport::Tcp(s) => s.try_write(bytes),
        }
    }

    pub(crate) fn supports_fds(&self) -> bool {
        matches!(self, Transport::Unix(_))
    }

    /// Writes `bytes` with `fds` attached to the first byte (SCM_RIGHTS). The fds travel with
    /// the first successful write, however short.
    pub(crate) fn try_write_with_fds(&self, bytes: &[u8], fds: &[OwnedFd]) -> io::Result<usize> {
        let Transport::Unix(s) = self else {
            return Err(io::Error::new(io::ErrorKind::Unsupported, "fd passing needs a unix socket"));
        };
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        s.try_io(Interest::WRITABLE, || {
            use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
            let iov = [IoSlice::new(bytes)];
            let cmsg = [ControlMessage::ScmRights(&raw)];
            sendmsg::<()>(s.as_raw_fd(), &iov, &cmsg, MsgFlags::MSG_NOSIGNAL, None).map_err(io::Error::from)
        })
    }
}
