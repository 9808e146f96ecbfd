//! File descriptors clients pass (SCM_RIGHTS on a unix socket), and what a command handler
//! sees of its connection: [`Context`], [`MonitorId`], [`ClientEvent`].
//!
//! Descriptors are held as QEMU's monitor holds them (its socket chardev, 7.2):
//! - a read that brings descriptors replaces those held before, which are closed; a read
//!   without any leaves them held;
//! - a command takes them with [`Context::take_fd`]: the first of the batch, the others
//!   closed; commands that do not take them leave them held for a later one (`getfd` after
//!   a `query-version` that carried the descriptor still gets it);
//! - the client leaving closes what is still held.
//!
//! A command sees the descriptors that arrived with any read before its last byte: one
//! sent with a request's bytes is there when that request runs, even when requests before
//! it are still queued.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::{AsyncRead, AsyncReadExt, Interest};

use crate::input::Input;

/// Descriptors one message may carry; more are closed as they arrive (QEMU's socket chardev
/// takes 16 too).
pub(crate) const MAX_FDS: usize = 16;

/// How many bytes one read takes at most.
const READ_CHUNK: usize = 16 << 10;

/// `recvmsg` on `sock` into `buf`, appending descriptors passed with the bytes to `fds`
/// (close-on-exec; beyond [`MAX_FDS`] in all they are closed). Returns the bytes read and
/// whether descriptors came with them.
fn recv_with_fds(sock: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<(usize, bool)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    let bytes = msg.bytes;
    let mut carried = false;
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            if let ControlMessageOwned::ScmRights(raw) = c {
                carried |= !raw.is_empty();
                for fd in raw {
                    // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
                    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                    if fds.len() < MAX_FDS {
                        fds.push(fd);
                    }
                }
            }
        }
    }
    Ok((bytes, carried))
}

/// Reads what a unix socket's client sent into `input`, and the descriptors passed with it.
pub(crate) async fn read_unix(
    sock: &tokio::net::UnixStream,
    input: &mut Input,
    fds: &mut Vec<OwnedFd>,
) -> io::Result<usize> {
    thread_local! {
        // perf: one initialized buffer per thread, used only within the synchronous
        // recvmsg, instead of a fresh zeroed 16 KiB on the stack for every read (143 ns
        // each here, against the 16 KiB read it serves).
        static CHUNK: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0; READ_CHUNK].into());
    }
    loop {
        sock.readable().await?;
        let mut short = None;
        let r = sock.try_io(Interest::READABLE, || {
            CHUNK.with_borrow_mut(|chunk| {
                let (n, carried) = recv_with_fds(sock.as_raw_fd(), chunk, fds)?;
                input.buffer_mut().extend_from_slice(&chunk[..n]);
                // The kernel ends a read after the bytes that carried descriptors, whatever
                // follows: only a short read without any is known to have emptied the socket.
                if n > 0 && n < chunk.len() && !carried {
                    // perf: a short read emptied the socket; saying WouldBlock here clears the
                    // readiness now instead of costing a recvmsg that fails (half the proxy's
                    // recvmsg calls, 64 in flight).
                    short = Some(n);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            })
        });
        match (r, short) {
            (_, Some(n)) | (Ok(n), None) => return Ok(n),
            (Err(e), None) if e.kind() == io::ErrorKind::WouldBlock => continue,
            (Err(e), None) => return Err(e),
        }
    }
}

/// The read side of a connection the framework serves: unix sockets also take passed
/// descriptors, other streams only bytes.
pub(crate) trait ConnRead: Unpin + Send {
    /// Reads some bytes into `input` (0 at end of stream), and descriptors into `fds`.
    fn read_into<'a>(
        &'a mut self,
        input: &'a mut Input,
        fds: &'a mut Vec<OwnedFd>,
    ) -> impl Future<Output = io::Result<usize>> + Send + 'a;
}

impl ConnRead for tokio::net::unix::OwnedReadHalf {
    async fn read_into(&mut self, input: &mut Input, fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        read_unix(self.as_ref(), input, fds).await
    }
}

/// A stream that carries bytes only.
pub(crate) struct BytesOnly<R>(pub R);

impl<R: AsyncRead + Unpin> AsyncRead for BytesOnly<R> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<R: AsyncRead + Unpin + Send> ConnRead for BytesOnly<R> {
    async fn read_into(&mut self, input: &mut Input, _fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
        let buf = input.buffer_mut();
        buf.reserve(READ_CHUNK);
        self.0.read_buf(buf).await
    }
}

/// The descriptors of one connection: batches that arrived (at a stream offset) and are not
/// yet due, and the batch held for the next command that takes one.
#[derive(Default)]
pub(crate) struct Passed {
    arrived: VecDeque<(u64, Vec<OwnedFd>)>,
    held: Vec<OwnedFd>,
}

impl Passed {
    /// Descriptors that came with the read whose first byte is stream offset `at`.
    pub fn arrive(&mut self, at: u64, fds: Vec<OwnedFd>) {
        if !fds.is_empty() {
            self.arrived.push_back((at, fds));
        }
    }

    /// A request whose last byte is just before stream offset `end` is about to run: every
    /// batch that arrived with a read starting before `end` is due, each replacing (and
    /// closing) the one held before it.
    pub fn due(&mut self, end: u64) {
        while self.arrived.front().is_some_and(|(at, _)| *at < end) {
            if let Some((_, fds)) = self.arrived.pop_front() {
                self.held = fds;
            }
        }
    }

    /// The first descriptor held, the others closed.
    pub fn take_first(&mut self) -> Option<OwnedFd> {
        let mut fds = std::mem::take(&mut self.held).into_iter();
        fds.next()
    }

    /// Every descriptor held, in the order passed.
    pub fn take_all(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.held)
    }

    /// How many descriptors are held.
    pub fn held(&self) -> usize {
        self.held.len()
    }
}

/// Which monitor a connection belongs to.
///
/// A monitor is what QEMU keeps state per: a listener served by
/// [`serve_unix_monitor`](crate::Server::serve_unix_monitor) or
/// [`serve_tcp_monitor`](crate::Server::serve_tcp_monitor) is one monitor for every client it
/// serves, one after another; each connection of [`serve_unix`](crate::Server::serve_unix),
/// [`serve_tcp`](crate::Server::serve_tcp), [`serve_stream`](crate::Server::serve_stream) and
/// [`serve_unix_stream`](crate::Server::serve_unix_stream) is a monitor of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonitorId(pub(crate) u64);

impl MonitorId {
    /// The monitor's number (unique within the process).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What a handler registered with
/// [`command_with_context`](crate::ServerBuilder::command_with_context) knows of the
/// connection its command came on: the descriptors the client passed, and its monitor.
pub struct Context<'a> {
    pub(crate) passed: &'a mut Passed,
    pub(crate) monitor: MonitorId,
}

impl Context<'_> {
    /// Takes the descriptor the client passed (SCM_RIGHTS) with its latest message that
    /// carried any, as QEMU's `getfd` and `add-fd` do: the first of that message's
    /// descriptors; the others are closed. `None` when none is held (nothing was passed,
    /// the connection is not a unix socket, or a command took it already).
    pub fn take_fd(&mut self) -> Option<OwnedFd> {
        self.passed.take_first()
    }

    /// Takes every descriptor held, in the order they were passed.
    pub fn take_fds(&mut self) -> Vec<OwnedFd> {
        self.passed.take_all()
    }

    /// How many descriptors are held for the connection.
    pub fn fds_held(&self) -> usize {
        self.passed.held()
    }

    /// The monitor the connection belongs to.
    pub fn monitor(&self) -> MonitorId {
        self.monitor
    }
}

/// A client coming or going, for [`ServerBuilder::on_client`](crate::ServerBuilder::on_client).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A client is being served on the monitor (before its greeting is sent). Refused
    /// clients (over the connection cap) do not count.
    Connected(MonitorId),
    /// The client left or was disconnected; descriptors it had passed and no command took
    /// are closed already.
    Disconnected(MonitorId),
    /// The monitor ended: no client will be served on it again (its listener stopped, or
    /// its one connection ended).
    MonitorClosed(MonitorId),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    #[test]
    fn a_batch_is_due_for_requests_ending_after_it_arrived() {
        let mut p = Passed::default();
        p.arrive(10, vec![fd()]);
        p.due(10);
        assert_eq!(p.held(), 0, "a request that ended before the read began");
        p.due(11);
        assert_eq!(p.held(), 1);
    }

    #[test]
    fn a_later_batch_replaces_the_one_held_and_take_keeps_the_first() {
        let mut p = Passed::default();
        let (a, b, c) = (fd(), fd(), fd());
        let b_raw = b.as_raw_fd();
        p.arrive(0, vec![a]);
        p.arrive(5, vec![b, c]);
        p.due(100);
        assert_eq!(p.held(), 2);
        assert_eq!(p.take_first().map(|f| f.as_raw_fd()), Some(b_raw));
        assert_eq!(p.held(), 0, "the rest of the batch is closed");
        assert!(p.take_first().is_none());
    }
}
