//! Unix sockets, directories and files that are private from the moment they exist.
//!
//! Every listener of the qmp toolkit (the client's server mode, the server framework, the
//! simulator, `qmp launch`, the proxy) binds its unix socket with [`bind_unix`], and every
//! file that holds a session's contents (the shell's `-l` log, its history, recordings) is
//! opened with [`open_private_append`]. Both close the usual holes:
//!
//! - `bind(2)` creates the socket file with the process's umask, so binding and then
//!   `chmod`-ing leaves a moment in which anyone may connect. [`bind_unix`] binds inside a
//!   fresh directory of mode 0700 beside the target, sets the mode there, and renames the
//!   socket into place: it is never reachable with a wider mode than asked.
//! - A log opened with `File::create` follows a symlink planted at its path and truncates
//!   the target. [`open_private_append`] refuses symlinks (`O_NOFOLLOW`), anything but a
//!   regular file of ours, creates with mode 0600 (and narrows an existing file to it), and
//!   appends.
//!
//! ```no_run
//! use std::path::Path;
//! let listener = qmp_unix::bind_unix(Path::new("/run/vm/qmp.sock"), 0o600)?;
//! let log = qmp_unix::open_private_append(Path::new("/home/me/qmp.log"))?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![warn(missing_docs)]

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// The longest path `bind(2)` takes (`sun_path` is 108 bytes, the last one a NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Binds a unix socket at `path` with permission bits `mode` (e.g. `0o600`), with no moment in
/// which the socket exists at `path` with other bits.
///
/// The socket is bound inside a fresh directory of mode 0700 made beside `path`, given
/// `mode` there, and renamed into place; the directory is then removed. An existing socket
/// at `path` is replaced (a stale one left by a process that died, as QEMU replaces them);
/// any other kind of file there is an error, and is left alone.
///
/// The returned listener is blocking; tokio users call `set_nonblocking(true)` and
/// `tokio::net::UnixListener::from_std`.
pub fn bind_unix(path: &Path, mode: u32) -> io::Result<UnixListener> {
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: a unix socket path may have at most {MAX_SOCKET_PATH} bytes, this one has {}",
                path.display(),
                path.as_os_str().len()
            ),
        ));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let private = PrivateDir::create_beside(&parent)?;
    let staged = private.path.join("s");
    let result = (|| {
        // A long target can make the staged path too long for bind(2) although the target
        // fits; then bind through /proc's link to the open directory, which is short.
        let dir = File::open(&private.path)?;
        let bind_at = if staged.as_os_str().len() > MAX_SOCKET_PATH {
            PathBuf::from(format!("/proc/self/fd/{}/s", dir.as_raw_fd()))
        } else {
            staged.clone()
        };
        let listener = UnixListener::bind(&bind_at)?;
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(mode))?;
        refuse_unless_socket_or_absent(path)?;
        // rename(2) replaces a stale socket atomically: there is always a listener or none.
        std::fs::rename(&staged, path)?;
        Ok(listener)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result
}

/// An error unless `path` is absent or a socket (never replace a regular file, a directory
/// or a symlink with a socket).
fn refuse_unless_socket_or_absent(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => Ok(()),
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; not replacing it", path.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// A fresh directory of mode 0700, removed (with what is left in it) when dropped.
struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    /// Makes `.qmp-PID-N` (N counting up) in `parent`.
    fn create_beside(parent: &Path) -> io::Result<PrivateDir> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = parent.join(format!(".qmp-{}-{n}", std::process::id()));
            match create_private_dir(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                // Left by an earlier process with our pid: take the next name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Creates the directory `path` with mode 0700 whatever the umask (an existing one is an
/// error: it might not be ours).
pub fn create_private_dir(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(path)?;
    // The umask can only narrow 0700; a wider mode would mean another creator won a race.
    let mode = std::fs::symlink_metadata(path)?.mode() & 0o777;
    if mode != 0o700 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Opens `path` for appending, creating it with mode 0600, for a file that holds a session's
/// contents (requests and replies may carry passwords and keys).
///
/// Refused, with an error that says why: a symlink at `path` (never followed, so a link
/// planted there cannot redirect the writes or truncate its target), anything but a regular
/// file (a FIFO would block the writer), and a file owned by another user. An existing file
/// of ours is kept and appended to, its mode narrowed to 0600 if it was wider.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    let opened = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        // O_NONBLOCK: opening a FIFO for writing would otherwise wait for a reader.
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).bits())
        .open(path);
    let file = match opened {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a symbolic link; refusing to follow it", path.display()),
            ))
        }
        Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => return Err(not_regular(path)),
        Err(e) => return Err(e),
    };
    check_private_file(path, &file)?;
    // Writes to a regular file never block; clear the flag so the file behaves as usual.
    nix::fcntl::fcntl(file.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(OFlag::O_APPEND))
        .map_err(io::Error::from)?;
    Ok(file)
}

/// Reads at most the last `limit` bytes of the private file `path`, refusing symlinks and
/// anything but a regular file of ours as [`open_private_append`] does; `None` when it does
/// not exist. For a history that must not be read whole when it has grown huge.
pub fn read_private_tail(path: &Path, limit: u64) -> io::Result<Option<Vec<u8>>> {
    use std::io::{Read, Seek, SeekFrom};
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).bits())
        .open(path);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::libc::ELOOP) => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a symbolic link; refusing to follow it", path.display()),
            ))
        }
        Err(e) => return Err(e),
    };
    check_private_file(path, &file)?;
    let len = file.metadata()?.len();
    if len > limit {
        file.seek(SeekFrom::Start(len - limit))?;
    }
    let mut bytes = Vec::with_capacity(len.min(limit) as usize);
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(Some(bytes))
}

/// Replaces the private file `path` with `contents`, atomically: written to a fresh file of
/// mode 0600 beside it, then renamed over it (a symlink at `path` is replaced, not followed).
pub fn replace_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut staged: OsString = path.as_os_str().to_owned();
    staged.push(format!(".{}.new", std::process::id()));
    let staged = PathBuf::from(staged);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits())
            .open(&staged)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&staged, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    result
}

/// Checks that an opened file is a regular file owned by us, and narrows its mode to 0600.
fn check_private_file(path: &Path, file: &File) -> io::Result<()> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(path));
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} belongs to another user (uid {}); refusing to use it", path.display(), meta.uid()),
        ));
    }
    if meta.mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

fn not_regular(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a regular file", path.display()))
}
