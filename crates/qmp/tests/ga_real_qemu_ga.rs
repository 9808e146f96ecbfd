//! Both clients against real qemu-ga (Debian's qemu-guest-agent 7.2), run on this host with
//! every command that could harm it blocked (`qmp_testkit::GA_BLOCKED`): synchronising with
//! `guest-sync-delimited` (whose reply starts with 0xFF), typed commands, a blocked command's
//! error, and resynchronising through a channel that holds garbage and a stale reply; and
//! programs run through the agent (`qmp::ga::Agent::exec`).

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use qmp::ga::commands::{GuestGetOsinfo, GuestGetTime, GuestInfo, GuestPing, GuestShutdown};
use qmp_testkit::Peer;

async fn agent(path: &Path) -> qmp::Client {
    let client = qmp::Client::builder().negotiate(false).await_greeting(false).connect(path).await.unwrap();
    client.guest_sync().await.unwrap();
    client
}

#[tokio::test]
async fn the_async_client_syncs_and_runs_typed_guest_commands() {
    let ga = Peer::qemu_ga();
    let client = agent(ga.socket(0)).await;
    client.execute(GuestPing {}).await.unwrap();
    let info = client.execute(GuestInfo {}).await.unwrap();
    assert!(info.version.starts_with("7.2"), "{info:?}");
    let ping = info.supported_commands.iter().find(|c| c.name == "guest-ping").unwrap();
    assert!(ping.enabled && ping.success_response);
    let shutdown = info.supported_commands.iter().find(|c| c.name == "guest-shutdown").unwrap();
    assert!(!shutdown.enabled && !shutdown.success_response, "{shutdown:?}");
    let os = client.execute(GuestGetOsinfo {}).await.unwrap();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(os.kernel_release.as_deref(), Some(release.trim()), "{os:?}");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let time = client.execute(GuestGetTime {}).await.unwrap();
    assert!((time - now).abs() < 60_000_000_000, "agent time {time}, ours {now}");
    // A second sync on the same connection works as the first did.
    client.guest_sync().await.unwrap();
    client.execute(GuestPing {}).await.unwrap();
}

#[tokio::test]
async fn a_blocked_command_is_the_agents_error_and_the_connection_goes_on() {
    let ga = Peer::qemu_ga();
    let client = agent(ga.socket(0)).await;
    let err = client.execute(GuestShutdown::default()).await.unwrap_err();
    let qmp = err.qmp_error().unwrap_or_else(|| panic!("not the agent's error: {err:?}"));
    assert!(qmp.desc.contains("has been disabled"), "{qmp:?}");
    let unknown = client.call_raw("guest-no-such-command", serde_json::json!({})).send().await.unwrap_err();
    assert!(unknown.qmp_error().is_some_and(|e| e.desc.contains("guest-no-such-command")), "{unknown:?}");
    client.execute(GuestPing {}).await.unwrap();
}

#[test]
fn the_blocking_client_syncs_and_runs_typed_guest_commands() {
    let ga = Peer::qemu_ga();
    let client = qmp::blocking::Client::connect_with(
        qmp::Client::builder().negotiate(false).await_greeting(false),
        ga.socket(0),
    )
    .unwrap();
    client.guest_sync().unwrap();
    client.execute(GuestPing {}).unwrap();
    let info = client.execute(GuestInfo {}).unwrap();
    assert!(info.supported_commands.iter().any(|c| c.name == "guest-sync-delimited" && c.enabled));
    let err = client.execute(GuestShutdown::default()).unwrap_err();
    assert!(err.qmp_error().is_some_and(|e| e.desc.contains("has been disabled")), "{err:?}");
    client.guest_sync().unwrap();
}

/// A relay in front of the agent that first hands the client what an earlier client left in
/// the channel: garbage, a half message, and a reply to a call the new client never made, with
/// the id the new client's first call will use (1).
fn stale_channel(agent: &Path, dir: &Path) -> PathBuf {
    let path = dir.join("relay.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let agent = agent.to_path_buf();
    std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let upstream = UnixStream::connect(&agent).unwrap();
        client.write_all(b"\x01garbage{\"return\": 7, \"id\": 1}\n{\"return\": {\"half").unwrap();
        let (mut up_r, mut cl_w) = (upstream.try_clone().unwrap(), client.try_clone().unwrap());
        let down = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = up_r.read(&mut buf) {
                if n == 0 || cl_w.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let mut up_w = upstream;
        let mut buf = [0u8; 4096];
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 || up_w.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = up_w.shutdown(std::net::Shutdown::Both);
        let _ = down.join();
    });
    path
}

#[tokio::test]
async fn sync_skips_garbage_and_a_stale_reply_left_in_the_channel() {
    let ga = Peer::qemu_ga();
    let dir = qmp_testkit::tempdir();
    let relay = stale_channel(ga.socket(0), dir.path());
    let client = agent(&relay).await;
    // Only our own replies from here on.
    client.execute(GuestPing {}).await.unwrap();
    let info = client.execute(GuestInfo {}).await.unwrap();
    assert!(info.version.starts_with("7.2"), "{info:?}");
}

#[test]
fn the_blocking_client_skips_a_stale_channel_too() {
    let ga = Peer::qemu_ga();
    let dir = qmp_testkit::tempdir();
    let relay = stale_channel(ga.socket(0), dir.path());
    let client = qmp::blocking::Client::connect_with(
        qmp::Client::builder().negotiate(false).await_greeting(false),
        &relay,
    )
    .unwrap();
    client.guest_sync().unwrap();
    client.execute(GuestPing {}).unwrap();
    assert!(client.execute(GuestInfo {}).unwrap().version.starts_with("7.2"));
}

#[tokio::test]
async fn exec_returns_the_programs_output_and_exit_code() {
    use qmp::ga::{Exec, ExitStatus};
    let ga = Peer::qemu_ga();
    let client = qmp::ga::Agent::connect(ga.socket(0)).await.unwrap();
    let sh = |script: &str| Exec::new("/bin/sh").args(["-c", script]);
    let out = client.exec(&sh("printf out; printf err >&2; exit 3")).await.unwrap();
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out"[..], &b"err"[..]));
    assert_eq!(out.status, ExitStatus::Code(3));
    assert!(!out.truncated);
    // Killed by a signal: the shell's way of saying so is 128 + 15.
    let out = client.exec(&sh("kill -TERM $$")).await.unwrap();
    assert_eq!((out.status, out.status.shell_code()), (ExitStatus::Signal(15), 143));
    // More output than one read of a pipe, input data, the environment given.
    let out = client.exec(&sh("yes 0123456789 | head -c 300000")).await.unwrap();
    assert_eq!(out.stdout.len(), 300_000);
    assert!(out.stdout.starts_with(b"0123456789\n0123456789\n"));
    let input: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let out = client.exec(&Exec::new("/bin/cat").input(input.clone())).await.unwrap();
    assert_eq!(out.stdout, input);
    let out = client.exec(&sh("printf %s \"$GREETING\"").env(["GREETING=hello there"])).await.unwrap();
    assert_eq!(out.stdout, b"hello there");
    // A missing program is the agent's error.
    let err = client.exec(&Exec::new("/nonexistent/program")).await.unwrap_err();
    assert!(err.qmp_error().is_some(), "{err:?}");
}

#[tokio::test]
async fn an_exec_past_its_timeout_fails_and_the_next_call_is_answered() {
    use std::time::Duration;
    let ga = Peer::qemu_ga();
    let client = qmp::ga::Agent::connect(ga.socket(0)).await.unwrap();
    let slow = qmp::ga::Exec::new("/bin/sleep").args(["3"]).timeout(Duration::from_millis(200));
    let err = client.exec(&slow).await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    client.execute(GuestPing {}).await.unwrap();
    let out = client.exec(&qmp::ga::Exec::new("/bin/echo").args(["next"])).await.unwrap();
    assert_eq!(out.stdout, b"next\n");
}

#[test]
fn the_blocking_client_runs_programs_too() {
    let ga = Peer::qemu_ga();
    let client = qmp::blocking::Agent::connect(ga.socket(0)).unwrap();
    let run = qmp::ga::Exec::new("/bin/sh").args(["-c", "cat; printf x >&2; exit 7"]).input(b"in".to_vec());
    let out = client.exec(&run).unwrap();
    assert_eq!(
        (out.stdout, out.stderr, out.status),
        (b"in".to_vec(), b"x".to_vec(), qmp::ga::ExitStatus::Code(7))
    );
}
