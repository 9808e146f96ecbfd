//! The private sockets and files, checked the way an attacker on the same machine would try
//! them: with the umask wide open, watching the directory for the moment a socket appears,
//! and with symlinks and FIFOs planted where a log is about to be written.

use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::{umask, Mode};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o777
}

/// Every tests here wants the widest umask, so that a mode not set on purpose shows.
fn open_umask() {
    umask(Mode::empty());
}

#[test]
fn the_socket_never_exists_at_its_path_with_the_umasks_mode() {
    open_umask();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let watch = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    watch
        .add_watch(
            dir.path(),
            AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_ATTRIB,
        )
        .unwrap();
    let listener = qmp_unix::bind_unix(&path, 0o600).unwrap();
    let events = watch.read_events().unwrap();
    // In the socket's directory only two things happen: the private staging directory is
    // made, and the finished socket is renamed in. bind(2) at the path itself (a socket
    // created with mode 0777 & ~umask, then chmod-ed) would show as IN_CREATE of its name.
    for e in &events {
        let name = e.name.as_ref().unwrap().to_str().unwrap().to_owned();
        if e.mask.contains(AddWatchFlags::IN_CREATE) {
            assert!(e.mask.contains(AddWatchFlags::IN_ISDIR) && name.starts_with(".qmp-"), "created {name}");
        } else if name == "qmp.sock" {
            assert!(e.mask.contains(AddWatchFlags::IN_MOVED_TO), "{:?} on the socket", e.mask);
        }
    }
    assert!(
        events
            .iter()
            .any(|e| e.mask.contains(AddWatchFlags::IN_MOVED_TO)
                && e.name.as_deref() == Some("qmp.sock".as_ref())),
        "{events:?}"
    );
    assert_eq!(mode(&path), 0o600);
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_socket());
    // It listens, and the staging directory is gone.
    let _client = UnixStream::connect(&path).unwrap();
    listener.accept().unwrap();
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["qmp.sock"]);
}

#[test]
fn the_mode_asked_for_is_the_mode_given() {
    open_umask();
    let dir = tempfile::tempdir().unwrap();
    for m in [0o600, 0o660, 0o700] {
        let path = dir.path().join(format!("s{m:o}"));
        let _l = qmp_unix::bind_unix(&path, m).unwrap();
        assert_eq!(mode(&path), m);
    }
}

#[test]
fn a_stale_socket_is_replaced_but_no_other_file_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    drop(qmp_unix::bind_unix(&path, 0o600).unwrap());
    let _second = qmp_unix::bind_unix(&path, 0o600).expect("a stale socket is replaced");
    UnixStream::connect(&path).unwrap();

    let file = dir.path().join("precious");
    std::fs::write(&file, "keep me").unwrap();
    let err = qmp_unix::bind_unix(&file, 0o600).unwrap_err();
    assert!(err.to_string().contains("not a socket"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");

    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    assert!(qmp_unix::bind_unix(&link, 0o600).is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    let mut left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["link", "precious", "qmp.sock"], "no staging directory left behind");
}

#[test]
fn a_path_near_the_limit_binds_although_its_staging_path_would_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let room = 107 - dir.path().as_os_str().len() - 1;
    let path = dir.path().join("s".repeat(room));
    assert_eq!(path.as_os_str().len(), 107);
    let _l = qmp_unix::bind_unix(&path, 0o600).unwrap();
    assert_eq!(mode(&path), 0o600);
    UnixStream::connect(&path).unwrap();

    let too_long = dir.path().join("s".repeat(room + 1));
    let err = qmp_unix::bind_unix(&too_long, 0o600).unwrap_err();
    assert!(err.to_string().contains("at most 107 bytes"), "{err}");
}

#[test]
fn a_private_file_is_created_0600_and_appended_to() {
    open_umask();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    qmp_unix::open_private_append(&path).unwrap().write_all(b"one\n").unwrap();
    assert_eq!(mode(&path), 0o600);
    qmp_unix::open_private_append(&path).unwrap().write_all(b"two\n").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");

    // A file of ours with a wider mode keeps its contents and is narrowed.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    qmp_unix::open_private_append(&path).unwrap().write_all(b"three\n").unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\nthree\n");
}

#[test]
fn a_planted_symlink_is_neither_followed_nor_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    std::fs::write(&target, "the victim's file").unwrap();
    let link = dir.path().join("log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = qmp_unix::open_private_append(&link).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "the victim's file");
    assert!(qmp_unix::read_private_tail(&link, 1024).is_err());
}

#[test]
fn a_fifo_or_a_directory_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let err = qmp_unix::open_private_append(&fifo).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    assert!(qmp_unix::read_private_tail(&fifo, 10).is_err());
    assert!(qmp_unix::open_private_append(dir.path()).is_err());
}

#[test]
fn a_huge_file_is_read_only_as_far_as_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history");
    assert_eq!(qmp_unix::read_private_tail(&path, 10).unwrap(), None);
    std::fs::write(&path, "0123456789abcdef").unwrap();
    assert_eq!(qmp_unix::read_private_tail(&path, 6).unwrap().unwrap(), b"abcdef");
    qmp_unix::replace_private(&path, b"short").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"short");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn a_private_dir_is_0700_whatever_the_umask() {
    open_umask();
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("d");
    qmp_unix::create_private_dir(&p).unwrap();
    assert_eq!(mode(&p), 0o700);
    assert!(qmp_unix::create_private_dir(&p).is_err(), "an existing directory might not be ours");
}
