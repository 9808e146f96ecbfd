//! Server mode's listening socket (the async `Listener` and the blocking `accept_with`) is
//! never reachable with the umask's mode: watched with inotify while it is made, under a
//! wide-open umask, the socket only ever appears at its path already restricted (renamed in
//! from a private directory), never created there and chmod-ed afterwards.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::{umask, Mode};

/// Watches `dir`, runs `bind`, and checks what happened in `dir` while it ran.
fn assert_never_created_in_place(dir: &Path, name: &str, bind: impl FnOnce()) {
    let watch = Inotify::init(InitFlags::IN_NONBLOCK).unwrap();
    watch.add_watch(dir, AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO).unwrap();
    bind();
    let events = watch.read_events().unwrap();
    let on_socket: Vec<_> = events.iter().filter(|e| e.name.as_deref() == Some(name.as_ref())).collect();
    assert!(!on_socket.is_empty(), "{events:?}");
    for e in on_socket {
        assert!(
            !e.mask.contains(AddWatchFlags::IN_CREATE),
            "the socket was created at its path (with the umask's mode) before being restricted"
        );
    }
}

#[tokio::test]
async fn the_async_listener_socket_never_has_the_umasks_mode() {
    umask(Mode::empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let mut listener = None;
    assert_never_created_in_place(dir.path(), "qmp.sock", || {
        listener = Some(qmp::Client::builder().listen(path.as_path()).unwrap());
    });
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    drop(listener);
    assert!(!path.exists(), "removed with the listener");
}

#[test]
fn the_blocking_accept_socket_never_has_the_umasks_mode() {
    umask(Mode::empty());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("qmp.sock");
    let (p, d) = (path.clone(), dir.path().to_path_buf());
    assert_never_created_in_place(&d, "qmp.sock", || {
        let accepting = std::thread::spawn(move || {
            // No peer will greet: the accept itself is what is checked here.
            qmp::blocking::Client::accept_with(
                qmp::Client::builder().negotiation_timeout(Duration::from_millis(100)),
                p.as_path(),
            )
        });
        // The mode is read before connecting: once a peer is accepted, the path is removed.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let mode = loop {
            match std::fs::metadata(&path) {
                Ok(m) => break m.mode() & 0o777,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => panic!("never listened: {e}"),
            }
        };
        assert_eq!(mode, 0o600);
        let peer = std::os::unix::net::UnixStream::connect(&path).expect("connect to the listener");
        assert!(accepting.join().unwrap().is_err(), "no greeting came");
        drop(peer);
    });
    assert!(!path.exists(), "removed once accepted");
}
