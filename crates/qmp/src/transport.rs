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

    /// Reads what the socket has into `buf`'s spare capacity without waiting (`WouldBlock`
    /// when nothing is there). Unlike `try_read_buf`, a short read clears tokio's cached
    /// readiness (tokio issue #5866), so no extra `read` is needed to learn the socket is
    /// drained: one syscall per wake-up instead of two.
    pub(crate) fn read_some(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        use std::task::{Context, Poll};
        use tokio::io::{AsyncRead, ReadBuf};
        // The connection waits on `ready()`, not on this waker: a no-op one will do.
        let mut cx = Context::from_waker(noop_waker());
        let spare = buf.spare_capacity_mut();
        let mut rb = ReadBuf::uninit(spare);
        let r = match self {
            Transport::Unix(s) => std::pin::Pin::new(s).poll_read(&mut cx, &mut rb),
            Transport::Tcp(s) => std::pin::Pin::new(s).poll_read(&mut cx, &mut rb),
        };
        match r {
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                // SAFETY: poll_read initialised the first n bytes of the spare capacity.
                unsafe { buf.set_len(buf.len() + n) };
                Ok(n)
            }
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
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

/// A waker that does nothing (`Waker::noop` needs Rust 1.85; the crate supports 1.82).
fn noop_waker() -> &'static std::task::Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: std::sync::Arc<Self>) {}
    }
    static WAKER: std::sync::OnceLock<std::task::Waker> = std::sync::OnceLock::new();
    WAKER.get_or_init(|| std::task::Waker::from(std::sync::Arc::new(Noop)))
}
