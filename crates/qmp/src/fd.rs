//! Sockets handed in as file descriptors: one a manager made and passed down (a socket pair
//! with QEMU, a connected or listening socket inherited across `exec`, systemd's socket
//! activation). [`socket_kind`] tells what a descriptor is, or why it is not one the clients
//! can use; [`ClientBuilder::connect_fd`](crate::ClientBuilder::connect_fd) and
//! [`ClientBuilder::listen_fd`](crate::ClientBuilder::listen_fd) take one. Also the bare
//! descriptor calls that the connections tokio and std have no type for (vsock, a terminal)
//! share.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::sys::socket::{self, sockopt, AddressFamily, SockType, SockaddrLike, SockaddrStorage};
use nix::sys::stat::{fstat, SFlag};

use crate::error::{Error, Result};

/// What a file descriptor is, as far as QMP goes: a stream socket, unix or TCP, connected or
/// listening.
///
/// ```
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
///
/// let (a, _b) = UnixStream::pair().unwrap();
/// assert_eq!(qmp::socket_kind(a.as_fd()).unwrap(), qmp::SocketKind::UnixStream);
///
/// let file = std::fs::File::open("/dev/null").unwrap();
/// let err = qmp::socket_kind(file.as_fd()).unwrap_err();
/// assert_eq!(err.to_string(), "not a socket (a character device)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SocketKind {
    /// A connected unix stream socket (fd passing works over it).
    UnixStream,
    /// A connected TCP socket.
    TcpStream,
    /// A listening unix stream socket.
    UnixListener,
    /// A listening TCP socket.
    TcpListener,
}

impl SocketKind {
    /// True for a listening socket (to accept from, not to talk on).
    pub fn is_listening(self) -> bool {
        matches!(self, SocketKind::UnixListener | SocketKind::TcpListener)
    }
}

/// What `fd` is, or why it is no QMP socket: not a socket at all (the error names what it is:
/// a regular file, a pipe, a terminal...), a datagram socket, another family than unix and
/// IP. The error's kind is `InvalidInput`.
pub fn socket_kind(fd: BorrowedFd<'_>) -> io::Result<SocketKind> {
    let unusable = |why: String| io::Error::new(io::ErrorKind::InvalidInput, why);
    let stat = fstat(fd.as_raw_fd())?;
    let file_type = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    if file_type != SFlag::S_IFSOCK {
        return Err(unusable(format!("not a socket ({})", file_type_name(file_type))));
    }
    let ty = socket::getsockopt(&fd, sockopt::SockType)?;
    if ty != SockType::Stream {
        return Err(unusable(format!("a {} socket, not a stream socket", sock_type_name(ty))));
    }
    let local: SockaddrStorage = socket::getsockname(fd.as_raw_fd())?;
    let listening = socket::getsockopt(&fd, sockopt::AcceptConn)?;
    match (local.family(), listening) {
        (Some(AddressFamily::Unix), false) => Ok(SocketKind::UnixStream),
        (Some(AddressFamily::Unix), true) => Ok(SocketKind::UnixListener),
        (Some(AddressFamily::Inet | AddressFamily::Inet6), false) => Ok(SocketKind::TcpStream),
        (Some(AddressFamily::Inet | AddressFamily::Inet6), true) => Ok(SocketKind::TcpListener),
        (family, _) => Err(unusable(format!(
            "a socket of family {}, not a unix or TCP socket",
            family.map_or_else(|| "unknown".to_owned(), |f| format!("{f:?}"))
        ))),
    }
}

fn file_type_name(t: SFlag) -> &'static str {
    match t {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a pipe",
        SFlag::S_IFCHR => "a character device",
        SFlag::S_IFBLK => "a block device",
        SFlag::S_IFLNK => "a symbolic link",
        _ => "an anonymous inode: an eventfd, epoll, timer or similar descriptor",
    }
}

fn sock_type_name(t: SockType) -> &'static str {
    match t {
        SockType::Datagram => "datagram",
        SockType::SeqPacket => "seqpacket",
        SockType::Raw => "raw",
        _ => "non-stream",
    }
}

/// `fd N`, for errors.
fn name(fd: &OwnedFd) -> String {
    format!("fd {}", fd.as_raw_fd())
}

/// One `read(2)` into `spare` (a vsock socket, a terminal): at most `spare.len()` bytes, 0
/// at the end.
pub(crate) fn read_into(fd: BorrowedFd<'_>, spare: &mut [std::mem::MaybeUninit<u8>]) -> io::Result<usize> {
    // read(2) itself: nix's wants initialised memory, and zeroing the 64 KiB read buffer on
    // every read costs more than the read.
    // SAFETY: read writes at most `spare.len()` bytes into `spare`, which stays valid and
    // unaliased for the call; the caller keeps only the bytes it reports.
    let n = unsafe { nix::libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// Clears `O_NONBLOCK` (for the blocking client, on a descriptor opened non-blocking).
pub(crate) fn set_blocking(fd: &OwnedFd) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    if flags.contains(OFlag::O_NONBLOCK) {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

/// `fd` (non-blocking) registered with the runtime, to be driven by readiness.
pub(crate) fn register(fd: OwnedFd) -> io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: an OwnedFd is an open descriptor that it alone closes, and its as_raw_fd is
    // the same number for as long as it lives: the AsyncFd owns it to the end.
    unsafe { tokio::io::unix::AsyncFd::register(fd) }.map_err(io::Error::from)
}

/// A connected socket, ready for a client.
pub(crate) enum Connected {
    Unix(std::os::unix::net::UnixStream),
    Tcp(std::net::TcpStream),
}

/// A listening socket.
pub(crate) enum Listening {
    Unix(std::os::unix::net::UnixListener),
    Tcp(std::net::TcpListener),
}

/// `fd` as a connected stream socket, or [`Error::Connect`] saying what it is instead.
pub(crate) fn connected(fd: OwnedFd) -> Result<Connected> {
    let err = |fd: &OwnedFd, source| Error::Connect { address: name(fd), source };
    match socket_kind(fd.as_fd()) {
        Ok(SocketKind::UnixStream) => Ok(Connected::Unix(fd.into())),
        Ok(SocketKind::TcpStream) => Ok(Connected::Tcp(fd.into())),
        Ok(_) => Err(err(
            &fd,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a listening socket, not a connected one (ClientBuilder::listen_fd accepts from it)",
            ),
        )),
        Err(e) => Err(err(&fd, e)),
    }
}

/// `fd` as a listening stream socket, or [`Error::Connect`] saying what it is instead.
pub(crate) fn listening(fd: OwnedFd) -> Result<Listening> {
    let err = |fd: &OwnedFd, source| Error::Connect { address: name(fd), source };
    match socket_kind(fd.as_fd()) {
        Ok(SocketKind::UnixListener) => Ok(Listening::Unix(fd.into())),
        Ok(SocketKind::TcpListener) => Ok(Listening::Tcp(fd.into())),
        Ok(_) => Err(err(
            &fd,
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a connected socket, not a listening one (ClientBuilder::connect_fd talks on it)",
            ),
        )),
        Err(e) => Err(err(&fd, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_eq!(socket_kind(a.as_fd()).unwrap(), SocketKind::UnixStream);
        let dir = tempfile::tempdir().unwrap();
        let l = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        assert_eq!(socket_kind(l.as_fd()).unwrap(), SocketKind::UnixListener);
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(socket_kind(t.as_fd()).unwrap(), SocketKind::TcpListener);
        let c = std::net::TcpStream::connect(t.local_addr().unwrap()).unwrap();
        assert_eq!(socket_kind(c.as_fd()).unwrap(), SocketKind::TcpStream);
        assert!(SocketKind::TcpListener.is_listening() && !SocketKind::TcpStream.is_listening());
    }

    #[test]
    fn what_is_not_a_stream_socket_says_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("f")).unwrap();
        assert_eq!(socket_kind(file.as_fd()).unwrap_err().to_string(), "not a socket (a regular file)");
        let (r, _w) = nix::unistd::pipe().unwrap();
        assert_eq!(socket_kind(r.as_fd()).unwrap_err().to_string(), "not a socket (a pipe)");
        let d = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let e = socket_kind(d.as_fd()).unwrap_err();
        assert_eq!(e.to_string(), "a datagram socket, not a stream socket");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn connected_and_listening_refuse_each_other() {
        let t = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = connected(t.into()).err().unwrap().to_string();
        assert!(e.starts_with("cannot connect to fd ") && e.contains("a listening socket"), "{e}");
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = listening(a.into()).err().unwrap().to_string();
        assert!(e.contains("a connected socket, not a listening one"), "{e}");
    }
}
