//! Serial devices (terminals) as a connection, for the guest agent over a serial port: the
//! host end of a guest's serial channel (QEMU's `-chardev pty` makes a `/dev/pts/N`), or a
//! real serial line. tokio has no type for a terminal, so the async client drives the bare
//! descriptor through `AsyncFd` and the blocking client waits with `poll()`: a terminal has no
//! receive timeout to set, as a socket has.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::termios::{self, ControlFlags, LocalFlags, SetArg};

/// Opens the terminal at `path` for a connection: read-write, non-blocking, not as our
/// controlling terminal, in raw mode (no echo, no line editing, no byte translated, no signal
/// characters) so that the protocol's bytes pass as they are.
///
/// Nothing waiting in the channel is flushed: it is the agent's (replies meant for an earlier
/// client, half a message), and more may be on its way, so flushing would not make the
/// channel clean; `guest_sync` skips it instead. A path that is not a terminal fails with
/// `InvalidInput` saying what it is; one that does not exist with `NotFound` (waited for).
pub(crate) fn open(path: &Path) -> io::Result<OwnedFd> {
    let not_a_terminal =
        |what: &str| io::Error::new(io::ErrorKind::InvalidInput, format!("not a terminal ({what})"));
    // Looked at before opening: opening a FIFO or a socket has effects or fails obscurely.
    let file_type = std::fs::metadata(path)?.file_type();
    if !file_type.is_char_device() {
        return Err(not_a_terminal(file_type_name(&file_type)));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        // O_CLOEXEC is std's own.
        .custom_flags(nix::libc::O_NOCTTY | nix::libc::O_NONBLOCK)
        .open(path)?;
    let fd = OwnedFd::from(file);
    if !nix::unistd::isatty(fd.as_raw_fd()).unwrap_or(false) {
        return Err(not_a_terminal("a character device that is not a tty"));
    }
    make_raw(fd.as_fd())?;
    Ok(fd)
}

/// Raw mode, as `cfmakeraw` sets it, with every kind of echo off (cfmakeraw leaves the echo
/// flags that only act with ECHO on), the modem lines ignored (CLOCAL: a real serial line
/// without carrier neither blocks nor hangs up) and the receiver on.
fn make_raw(fd: BorrowedFd<'_>) -> io::Result<()> {
    let mut t = termios::tcgetattr(fd)?;
    termios::cfmakeraw(&mut t);
    t.local_flags.remove(
        LocalFlags::ECHO
            | LocalFlags::ECHOE
            | LocalFlags::ECHOK
            | LocalFlags::ECHONL
            | LocalFlags::ECHOCTL
            | LocalFlags::ECHOKE
            | LocalFlags::ECHOPRT,
    );
    t.control_flags.insert(ControlFlags::CLOCAL | ControlFlags::CREAD);
    termios::tcsetattr(fd, SetArg::TCSANOW, &t)?;
    Ok(())
}

fn file_type_name(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a regular file"
    } else if t.is_socket() {
        "a unix socket: use unix:PATH"
    } else if t.is_fifo() {
        "a pipe"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a device"
    }
}

/// One `write(2)`.
pub(crate) fn write(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    Ok(nix::unistd::write(fd, bytes)?)
}

/// Waits until the terminal has something to read (or has hung up), at most until
/// `deadline` (`None`: as long as it takes; a deadline past: only looks). `WouldBlock` when
/// the deadline came first, `Interrupted` for a signal.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> io::Result<()> {
    let timeout = match deadline {
        None => PollTimeout::NONE,
        Some(d) => {
            let left = d.saturating_duration_since(Instant::now());
            // Rounded up to the millisecond: rounding down would wake just before the
            // deadline and poll again for nothing.
            let ms = left.as_micros().div_ceil(1000);
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
        }
    };
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match nix::poll::poll(&mut fds, timeout)? {
        0 => Err(io::ErrorKind::WouldBlock.into()),
        // POLLIN, or POLLHUP/POLLERR: the read that follows tells which.
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_a_terminal_is_refused_with_what_it_is() {
        let e = open(Path::new("/dev/null")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(e.to_string(), "not a terminal (a character device that is not a tty)");
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert_eq!(open(&sock).unwrap_err().to_string(), "not a terminal (a unix socket: use unix:PATH)");
        assert_eq!(open(dir.path()).unwrap_err().to_string(), "not a terminal (a directory)");
        assert_eq!(open(&dir.path().join("none")).unwrap_err().kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_pty_opens_raw_and_carries_bytes_as_they_are() {
        let pty = nix::pty::openpty(None, None).unwrap();
        let path = nix::unistd::ttyname(&pty.slave).unwrap();
        let fd = open(&path).unwrap();
        let t = termios::tcgetattr(&fd).unwrap();
        assert!(!t.local_flags.intersects(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG));
        // \r, \n, 0xFF, ^C and ^D arrive as sent, with no echo back.
        let bytes = b"{\"execute\":\"guest-ping\"}\r\n\xff\x03\x04";
        nix::unistd::write(&pty.master, bytes).unwrap();
        wait_readable(fd.as_fd(), Some(Instant::now() + std::time::Duration::from_secs(5))).unwrap();
        let mut buf = Vec::with_capacity(64);
        let n = crate::fd::read_into(fd.as_fd(), buf.spare_capacity_mut()).unwrap();
        // SAFETY: read initialised the first n bytes.
        unsafe { buf.set_len(n) };
        assert_eq!(buf, bytes);
        let mut echo = [PollFd::new(pty.master.as_fd(), PollFlags::POLLIN)];
        assert_eq!(nix::poll::poll(&mut echo, PollTimeout::from(50u8)).unwrap(), 0, "echoed");
        // Nothing more: a wait up to a deadline ends with WouldBlock.
        let started = Instant::now();
        let e = wait_readable(fd.as_fd(), Some(started + std::time::Duration::from_millis(30))).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        assert!(started.elapsed() >= std::time::Duration::from_millis(30));
        // The other end hanging up reads as the end.
        drop(pty);
        wait_readable(fd.as_fd(), None).unwrap();
        assert_eq!(crate::fd::read_into(fd.as_fd(), buf.spare_capacity_mut()).unwrap(), 0);
    }
}
