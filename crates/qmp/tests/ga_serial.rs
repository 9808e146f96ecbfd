//! Both clients over a serial device (a terminal) to real qemu-ga (Debian's qemu-guest-agent
//! 7.2) started with `-m isa-serial` on a pseudo-terminal, with every command that could harm
//! this host blocked (`qmp_testkit::GA_BLOCKED`); the client opens the other end of a pty
//! pair joined to the agent's by a relay ([`Peer::qemu_ga_serial`]), as a guest's serial port
//! looks from the host. The channel outlives each client, so a new one meets replies meant for
//! an earlier one: `guest_sync` gets past them. And vsock, which this sandbox cannot reach
//! (no loopback transport): a clean connect error naming the address.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use qmp::ga::commands::{GuestInfo, GuestPing, GuestShutdown};
use qmp::{Client, ClientBuilder, Error};
use qmp_testkit::{Peer, SerialAgent};

/// The guest agent has no greeting and no negotiation.
fn agent_builder() -> ClientBuilder {
    Client::builder().negotiate(false).await_greeting(false)
}

fn serial(ga: &SerialAgent) -> String {
    format!("serial:{}", ga.path().display())
}

/// Waits (up to 10 s) until bytes the agent sent wait at the client's end and have stopped
/// coming: a reply no client has read.
fn wait_for_unread_reply(ga: &SerialAgent) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = ga.unread();
        if now > 0 && now == last {
            return now;
        }
        assert!(Instant::now() < deadline, "no reply arrived in the channel ({now} bytes)");
        last = now;
    }
}

#[tokio::test]
async fn the_async_client_syncs_and_runs_typed_guest_commands_over_a_serial_port() {
    let ga = Peer::qemu_ga_serial();
    let client = agent_builder().connect(serial(&ga)).await.unwrap();
    client.guest_sync().await.unwrap();
    client.execute(GuestPing {}).await.unwrap();
    let info = client.execute(GuestInfo {}).await.unwrap();
    assert!(info.version.starts_with("7.2"), "{info:?}");
    let shutdown = info.supported_commands.iter().find(|c| c.name == "guest-shutdown").unwrap();
    assert!(!shutdown.enabled, "{shutdown:?}");
    let err = client.execute(GuestShutdown::default()).await.unwrap_err();
    let qmp = err.qmp_error().unwrap_or_else(|| panic!("not the agent's error: {err:?}"));
    assert!(qmp.desc.contains("has been disabled"), "{qmp:?}");
    // Fds cannot cross a terminal.
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let fds = [std::os::fd::AsFd::as_fd(&a)];
    let fd_call = client.call_raw("guest-ping", serde_json::json!({})).fds(&fds).send().await;
    assert!(matches!(fd_call, Err(Error::Unsupported(_))), "{fd_call:?}");
    client.guest_sync().await.unwrap();
    client.execute(GuestPing {}).await.unwrap();
}

#[test]
fn the_blocking_client_syncs_and_runs_typed_guest_commands_over_a_serial_port() {
    let ga = Peer::qemu_ga_serial();
    let client = qmp::blocking::Client::connect_with(agent_builder(), serial(&ga)).unwrap();
    client.guest_sync().unwrap();
    client.execute(GuestPing {}).unwrap();
    let info = client.execute(GuestInfo {}).unwrap();
    assert!(info.supported_commands.iter().any(|c| c.name == "guest-sync-delimited" && c.enabled));
    let err = client.execute(GuestShutdown::default()).unwrap_err();
    assert!(err.qmp_error().is_some_and(|e| e.desc.contains("has been disabled")), "{err:?}");
    // A call with a timeout that the agent answers in time (the read waits in poll()).
    client.with_timeout(Duration::from_secs(10)).execute(GuestPing {}).unwrap();
    client.guest_sync().unwrap();
}

#[tokio::test]
async fn a_new_client_syncs_past_the_reply_to_a_request_sent_before_it() {
    let ga = Peer::qemu_ga_serial();
    // An earlier client sends a request and goes before the reply comes.
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_NOCTTY)
        .open(ga.path())
        .unwrap();
    tty.write_all(b"{\"execute\":\"guest-info\"}\n").unwrap();
    drop(tty);
    let stale = wait_for_unread_reply(&ga);
    assert!(stale > 1000, "guest-info's reply is a few kB: {stale} bytes");

    let client = agent_builder().connect(serial(&ga)).await.unwrap();
    client.guest_sync().await.unwrap();
    assert_eq!(ga.unread(), 0, "the stale reply was read and skipped");
    client.execute(GuestPing {}).await.unwrap();
    let info = client.execute(GuestInfo {}).await.unwrap();
    assert!(info.supported_commands.iter().any(|c| c.name == "guest-ping"));
}

#[tokio::test]
async fn an_async_call_times_out_on_a_silent_channel_and_its_late_reply_is_skipped() {
    let ga = Peer::qemu_ga_serial();
    let client = agent_builder().connect(serial(&ga)).await.unwrap();
    client.guest_sync().await.unwrap();
    ga.pause();
    let late = client.call(GuestInfo {}).timeout(Duration::from_millis(200)).send().await;
    assert!(matches!(late, Err(Error::Timeout)), "{late:?}");
    ga.resume();
    // The late reply comes first and is discarded (its id is no caller's).
    client.execute(GuestPing {}).await.unwrap();
    client.guest_sync().await.unwrap();
    client.execute(GuestPing {}).await.unwrap();
}

#[test]
fn a_blocking_call_times_out_on_a_silent_channel_and_the_next_client_syncs_past_its_reply() {
    let ga = Peer::qemu_ga_serial();
    let client = qmp::blocking::Client::connect_with(agent_builder(), serial(&ga)).unwrap();
    client.guest_sync().unwrap();
    ga.pause();
    let started = Instant::now();
    let err = client.with_timeout(Duration::from_millis(200)).execute(GuestInfo {}).unwrap_err();
    let waited = started.elapsed();
    assert!(matches!(err, Error::Timeout), "{err:?}");
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(3), "{waited:?}");
    assert!(!client.is_closed());
    drop(client);
    // The request goes to the agent now; its reply waits in the channel with nobody to read it.
    ga.resume();
    assert!(wait_for_unread_reply(&ga) > 1000);

    let client = qmp::blocking::Client::connect_with(agent_builder(), serial(&ga)).unwrap();
    client.guest_sync().unwrap();
    client.execute(GuestPing {}).unwrap();
    assert!(client.execute(GuestInfo {}).unwrap().supported_commands.iter().any(|c| c.name == "guest-ping"));
}

#[tokio::test]
async fn a_channel_that_hangs_up_ends_both_clients_connections() {
    let ga = Peer::qemu_ga_serial();
    let client = agent_builder().connect(serial(&ga)).await.unwrap();
    client.guest_sync().await.unwrap();
    let blocking = qmp::blocking::Client::connect_with(agent_builder(), serial(&ga)).unwrap();
    ga.pause();
    let pending = tokio::spawn({
        let client = client.clone();
        async move { client.execute(GuestPing {}).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The agent and the relay go: the terminals' other ends close (a hang-up).
    drop(ga);
    let ended = tokio::time::timeout(Duration::from_secs(10), pending).await.expect("the call hung").unwrap();
    assert!(matches!(ended, Err(Error::Disconnected(_))), "{ended:?}");
    assert!(client.is_closed());
    let started = Instant::now();
    let err = tokio::task::spawn_blocking(move || blocking.execute(GuestPing {})).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Disconnected(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_serial_device_that_appears_later_is_waited_for() {
    let ga = Peer::qemu_ga_serial();
    let dir = tempfile::tempdir().unwrap();
    // A link that appears after a while, as /dev/virtio-ports/NAME does when a port is added.
    let link = dir.path().join("org.qemu.guest_agent.0");
    let (target, at) = (ga.path().to_owned(), link.clone());
    let maker = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        std::os::unix::fs::symlink(target, at).unwrap();
    });
    let started = Instant::now();
    let client = agent_builder()
        .wait(Duration::from_secs(10))
        .connect(format!("serial:{}", link.display()))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    maker.join().unwrap();
    client.guest_sync().await.unwrap();
    client.execute(GuestPing {}).await.unwrap();
}

#[tokio::test]
async fn what_is_not_a_serial_device_is_a_connect_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-port");
    let addr = format!("serial:{}", missing.display());
    let started = Instant::now();
    let err = agent_builder().wait(Duration::from_millis(300)).connect(&addr).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let text = err.to_string();
    assert!(matches!(&err, Error::Connect { address, .. } if *address == addr), "{err:?}");
    assert!(text.contains("after waiting 300ms (the device does not exist)"), "{text}");

    // /dev/null is a character device but no terminal: refused at once, not waited for.
    for err in [
        agent_builder().wait(Duration::from_secs(10)).connect("serial:/dev/null").await.unwrap_err(),
        qmp::blocking::Client::connect_with(agent_builder(), "serial:/dev/null").unwrap_err(),
    ] {
        let text = err.to_string();
        assert_eq!(
            text,
            "cannot connect to serial:/dev/null: not a terminal (a character device that is not a tty)"
        );
    }
    let err =
        qmp::blocking::Client::connect_with(agent_builder(), format!("serial:{}", dir.path().display()))
            .unwrap_err();
    assert!(err.to_string().ends_with("not a terminal (a directory)"), "{err}");
}

/// This machine's own vsock CID (`IOCTL_VM_SOCKETS_GET_LOCAL_CID` on /dev/vsock), if it has
/// vsock. A connect to it fails at once in the kernel (ENODEV), with nothing sent to another
/// machine; with no vsock at all the socket itself fails.
fn own_cid() -> Option<u32> {
    use std::os::fd::AsRawFd;
    const IOCTL_VM_SOCKETS_GET_LOCAL_CID: nix::libc::c_ulong = 0x7b9;
    let dev = std::fs::File::open("/dev/vsock").ok()?;
    let mut cid: u32 = 0;
    // SAFETY: the ioctl writes one u32 through the pointer, valid for the call.
    let r = unsafe { nix::libc::ioctl(dev.as_raw_fd(), IOCTL_VM_SOCKETS_GET_LOCAL_CID, &mut cid) };
    (r == 0 && cid != u32::MAX).then_some(cid)
}

fn vsock_address() -> (String, bool) {
    match own_cid() {
        Some(cid) => (format!("vsock:{cid}:9"), true),
        // No vsock here: any CID fails at socket().
        None => ("vsock:3:9".to_owned(), false),
    }
}

#[tokio::test]
async fn a_vsock_peer_that_is_not_there_is_a_connect_error_naming_the_address() {
    let (addr, own) = vsock_address();
    let started = Instant::now();
    let err = agent_builder().connect(&addr).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(matches!(&err, Error::Connect { address, .. } if *address == addr), "{err:?}");
    assert!(err.to_string().starts_with(&format!("cannot connect to {addr}: ")), "{err}");

    let err = qmp::blocking::Client::connect_with(agent_builder(), &addr).unwrap_err();
    assert!(matches!(&err, Error::Connect { address, .. } if *address == addr), "{err:?}");

    if own {
        // No such device is what a VM that is starting looks like: waited for, then given up.
        let started = Instant::now();
        let err = agent_builder().wait(Duration::from_millis(300)).connect(&addr).await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(300));
        let Error::Connect { source, .. } = &err else { panic!("{err:?}") };
        assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{err}");
        assert!(err.to_string().contains("after waiting 300ms"), "{err}");
        let err =
            qmp::blocking::Client::connect_with(agent_builder().wait(Duration::from_millis(300)), &addr)
                .unwrap_err();
        assert!(err.to_string().contains("after waiting 300ms"), "{err}");
    }
}

#[test]
fn vsock_and_serial_cannot_be_listened_on() {
    for addr in ["vsock:3:9", "serial:/dev/pts/0"] {
        let err = Client::builder().listen(addr).unwrap_err();
        assert!(err.to_string().contains("server mode is for unix and TCP sockets"), "{err}");
        let err = qmp::blocking::Client::accept_with(Client::builder(), addr).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    }
}
