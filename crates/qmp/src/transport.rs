//! The socket under a connection: unix (with fd passing), TCP, TLS over TCP, vsock, or a
//! terminal (a serial device), used through readiness and non-blocking `try_*` calls so that
//! one task can read and write without splitting it.

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use rustls::ClientConnection;
use tokio::io::unix::AsyncFd;
use tokio::io::{Interest, Ready};
use tokio::net::{TcpStream, UnixStream};

pub(crate) enum Transport {
    Unix(UnixStream),
    Tcp(TcpStream),
    Tls(Box<TlsIo>),
    /// A vsock stream socket ([`crate::vsock`]), non-blocking.
    Vsock(AsyncFd<OwnedFd>),
    /// A terminal in raw mode ([`crate::serial`]), non-blocking.
    Serial(AsyncFd<OwnedFd>),
}

impl Transport {
    /// A TLS transport over an established session (see [`crate::tls`]).
    pub(crate) fn tls(est: crate::tls::Established) -> Transport {
        let (tcp, conn) = est.stream.into_inner();
        Transport::Tls(Box::new(TlsIo {
            tcp,
            state: Mutex::new(TlsState {
                conn,
                first: est.first,
                first_at: 0,
                boundary: crate::tls::Boundary::default(),
                space_owed: false,
            }),
        }))
    }

    pub(crate) async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        match self {
            Transport::Unix(s) => s.ready(interest).await,
            Transport::Tcp(s) => s.ready(interest).await,
            Transport::Tls(t) => t.ready(interest).await,
            // The guard is dropped without clearing: readiness is cleared by the read or
            // write that finds the descriptor drained or full (see `fd_read_some`).
            Transport::Vsock(fd) | Transport::Serial(fd) => Ok(fd.ready(interest).await?.ready()),
        }
    }

    /// Reads what the socket has into `buf`'s spare capacity without waiting (`WouldBlock`
    /// when nothing is there). Unlike `try_read_buf`, a short read clears tokio's cached
    /// readiness (tokio issue #5866), so no extra `read` is needed to learn the socket is
    /// drained: one syscall per wake-up instead of two.
    pub(crate) fn read_some(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        use tokio::io::{AsyncRead, ReadBuf};
        // The connection waits on `ready()`, not on this waker: a no-op one will do.
        let mut cx = Context::from_waker(noop_waker());
        let spare = buf.spare_capacity_mut();
        let mut rb = ReadBuf::uninit(spare);
        let r = match self {
            Transport::Unix(s) => std::pin::Pin::new(s).poll_read(&mut cx, &mut rb),
            Transport::Tcp(s) => std::pin::Pin::new(s).poll_read(&mut cx, &mut rb),
            Transport::Tls(t) => return t.read_some(buf),
            Transport::Vsock(fd) | Transport::Serial(fd) => return fd_read_some(fd, buf),
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

    pub(crate) fn try_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Unix(s) => s.try_write(bytes),
            Transport::Tcp(s) => s.try_write(bytes),
            Transport::Tls(t) => t.try_write(bytes),
            Transport::Vsock(fd) => fd_try_write(fd, |fd| {
                use nix::sys::socket::{send, MsgFlags};
                Ok(send(fd.as_raw_fd(), bytes, MsgFlags::MSG_NOSIGNAL)?)
            }),
            // A terminal is no socket: write(2), which raises no SIGPIPE on a terminal.
            Transport::Serial(fd) => fd_try_write(fd, |fd| crate::serial::write(fd.as_fd(), bytes)),
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

/// Reads what a descriptor driven by `AsyncFd` has into `buf`'s spare capacity, as the
/// sockets' `read_some` does: `WouldBlock` when nothing is there. `AsyncFd` caches readiness
/// until told otherwise, so it is cleared here when the read finds the descriptor drained
/// (`WouldBlock`, or a read shorter than the room): the next `ready` then waits for the
/// kernel. The clearing is tick-checked by tokio, so readiness that arrived meanwhile stays.
fn fd_read_some(fd: &AsyncFd<OwnedFd>, buf: &mut Vec<u8>) -> io::Result<usize> {
    // The connection waits on `ready()`, not on this waker: a no-op one will do.
    let mut cx = Context::from_waker(noop_waker());
    let mut guard = match fd.poll_read_ready(&mut cx) {
        Poll::Ready(guard) => guard?,
        Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
    };
    let spare = buf.spare_capacity_mut();
    let room = spare.len();
    // try_io clears the readiness itself when the read says WouldBlock.
    match guard.try_io(|fd| crate::fd::read_into(fd.get_ref().as_fd(), spare)) {
        Ok(Ok(n)) => {
            if n > 0 && n < room {
                guard.clear_ready_matching(Ready::READABLE);
            }
            // SAFETY: read(2) initialised the first n bytes of the spare capacity.
            unsafe { buf.set_len(buf.len() + n) };
            Ok(n)
        }
        Ok(Err(e)) => Err(e),
        Err(_would_block) => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// One non-blocking write through `write` to a descriptor driven by `AsyncFd`: `WouldBlock`
/// (with the write readiness cleared) when it is full.
fn fd_try_write(
    fd: &AsyncFd<OwnedFd>,
    write: impl FnOnce(&AsyncFd<OwnedFd>) -> io::Result<usize>,
) -> io::Result<usize> {
    let mut cx = Context::from_waker(noop_waker());
    let mut guard = match fd.poll_write_ready(&mut cx) {
        Poll::Ready(guard) => guard?,
        Poll::Pending => return Err(io::ErrorKind::WouldBlock.into()),
    };
    match guard.try_io(write) {
        Ok(r) => r,
        Err(_would_block) => Err(io::ErrorKind::WouldBlock.into()),
    }
}

/// TLS over a TCP stream, driven the way the plain sockets are: the connection task asks for
/// readiness, then reads and writes without waiting. rustls holds the session: records read
/// from the socket are decrypted into its buffer and handed out as plaintext; plaintext written
/// is encrypted into records, sent as far as the socket takes them, and the rest is sent when
/// it is writable again (readiness asks for it while records wait).
///
/// Whenever what was written ends between two JSON values, a record holding one space follows
/// it (see [`crate::tls::Boundary`]): QEMU 7.2 leaves the last record it received unread until
/// another arrives, so without it a request would wait for the next one.
pub(crate) struct TlsIo {
    tcp: TcpStream,
    /// Locked only for a moment and never across an await: `ready` (which has `&self`)
    /// flushes records and looks for buffered plaintext; the rest has `&mut` and no lock cost.
    state: Mutex<TlsState>,
}

/// The most plaintext one TLS record carries.
const MAX_RECORD_PLAINTEXT: usize = 16 * 1024;

struct TlsState {
    conn: ClientConnection,
    /// Plaintext read before the connection task took over (the greeting's first bytes).
    first: Vec<u8>,
    first_at: usize,
    /// Where the plaintext written so far ends: inside a JSON value or between two.
    boundary: crate::tls::Boundary,
    /// A one-space record is to follow the records queued (when rustls had no room for it).
    space_owed: bool,
}

impl TlsIo {
    fn lock(&self) -> MutexGuard<'_, TlsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn state(&mut self) -> (&TcpStream, &mut TlsState) {
        (&self.tcp, self.state.get_mut().unwrap_or_else(|e| e.into_inner()))
    }

    async fn ready(&self, interest: Interest) -> io::Result<Ready> {
        loop {
            let records_wait = {
                let mut st = self.lock();
                if interest.is_readable() && st.has_plaintext() {
                    return Ok(Ready::READABLE);
                }
                st.flush(&self.tcp)?;
                st.conn.wants_write()
            };
            let want = if records_wait { interest | Interest::WRITABLE } else { interest };
            let ready = self.tcp.ready(want).await?;
            if ready.is_readable()
                || ready.is_read_closed()
                || (interest.is_writable() && ready.is_writable())
            {
                return Ok(ready);
            }
            // Writable only for records of our own: sent at the top of the loop.
        }
    }

    /// Plaintext into `buf`'s spare capacity, reading and decrypting records as needed;
    /// `WouldBlock` when the socket has nothing more, `Ok(0)` when the peer has closed.
    fn read_some(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let (tcp, st) = self.state();
        let at = buf.len();
        // At most a record's worth: rustls wants initialised memory, so this much is zeroed.
        let room = (buf.capacity() - at).min(MAX_RECORD_PLAINTEXT);
        if room == 0 {
            return Err(io::Error::other("internal: no room to read into"));
        }
        buf.resize(at + room, 0);
        let r = st.read_plain(tcp, &mut buf[at..]);
        buf.truncate(at + *r.as_ref().unwrap_or(&0));
        r
    }

    fn try_write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let (tcp, st) = self.state();
        st.flush(tcp)?;
        let n = st.conn.writer().write(bytes)?;
        st.boundary.feed(&bytes[..n]);
        st.space_owed |= n > 0 && st.boundary.between_values();
        st.flush(tcp)?;
        if n == 0 && !bytes.is_empty() {
            // rustls' buffer is full of records the socket has not taken: wait for it.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }
}

impl TlsState {
    /// True when a read would return at once: plaintext is buffered, or the peer's
    /// close_notify has come (a read then tells the end).
    fn has_plaintext(&mut self) -> bool {
        self.first_at < self.first.len()
            || self
                .conn
                .process_new_packets()
                .is_ok_and(|s| s.plaintext_bytes_to_read() > 0 || s.peer_has_closed())
    }

    fn read_plain(&mut self, tcp: &TcpStream, out: &mut [u8]) -> io::Result<usize> {
        if self.first_at < self.first.len() {
            let n = out.len().min(self.first.len() - self.first_at);
            out[..n].copy_from_slice(&self.first[self.first_at..self.first_at + n]);
            self.first_at += n;
            if self.first_at == self.first.len() {
                self.first = Vec::new();
                self.first_at = 0;
            }
            return Ok(n);
        }
        loop {
            match self.conn.reader().read(out) {
                // Ok(0): the peer's close_notify.
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The socket closed without close_notify (QEMU killed, say): closed all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.conn.read_tls(&mut TryIo(tcp)) {
                Ok(_) => {
                    if let Err(e) = self.conn.process_new_packets() {
                        // An alert for the peer may be queued: send it if the socket takes it.
                        let _ = self.flush(tcp);
                        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("TLS: {e}")));
                    }
                    // Records of our own (a key update's answer) go out at once.
                    self.flush(tcp)?;
                }
                // QEMU exiting with our last one-space record unread resets the connection
                // instead of closing it: for a QMP peer that is the end all the same.
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(0),
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends queued records as far as the socket takes them (`Ok` when it is full), the
    /// one-space record owed first.
    fn flush(&mut self, tcp: &TcpStream) -> io::Result<()> {
        if self.space_owed && self.conn.writer().write(b" ")? == 1 {
            self.space_owed = false;
        }
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut TryIo(tcp)) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the peer stopped reading")),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The socket's non-blocking `try_read`/`try_write` as `Read`/`Write` for rustls; a
/// `WouldBlock` clears tokio's cached readiness, so the next `ready` waits for real.
struct TryIo<'a>(&'a TcpStream);

impl Read for TryIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for TryIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
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
