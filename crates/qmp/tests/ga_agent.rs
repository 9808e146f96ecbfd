//! `qmp::ga::Agent` and `qmp::blocking::Agent` against real qemu-ga (Debian's 7.2, run on this
//! host with every command that could harm it blocked: `qmp_testkit::GA_BLOCKED`), and against
//! relays in front of it that behave as a guest's channel can: one that outlives its clients
//! and keeps what the agent writes while no client is there, one that is slow to pass replies.
//! Files are read and written only inside each test's temp directory.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qmp::ga::commands::{GuestGetTime, GuestInfo, GuestNetworkGetInterfaces, GuestPing, GuestShutdown};
use qmp::ga::Agent;
use qmp_testkit::Peer;

#[tokio::test]
async fn connecting_synchronises_and_typed_commands_answer() {
    let ga = Peer::qemu_ga();
    let agent = Agent::connect(ga.socket(0)).await.unwrap();
    agent.execute(GuestPing {}).await.unwrap();
    let interfaces = agent.execute(GuestNetworkGetInterfaces {}).await.unwrap();
    let lo = interfaces.iter().find(|i| i.name == "lo").unwrap_or_else(|| panic!("no lo in {interfaces:?}"));
    let addresses = lo.ip_addresses.as_deref().unwrap_or_default();
    assert!(addresses.iter().any(|a| a.ip_address == "127.0.0.1"), "{lo:?}");
    assert!(agent.execute(GuestGetTime {}).await.unwrap() > 0);
    let info = agent.info().await.unwrap();
    assert!(info.version.starts_with("7.2"), "{info:?}");
    assert!(
        info.is_enabled("guest-exec")
            && info.supports("guest-shutdown")
            && !info.is_enabled("guest-shutdown")
    );
    assert!(!info.supports("guest-no-such-command"));
    assert!(info.enabled().any(|c| c == "guest-file-read"));
}

#[tokio::test]
async fn calls_from_many_tasks_take_turns() {
    let ga = Peer::qemu_ga();
    let agent = Agent::connect(ga.socket(0)).await.unwrap();
    let calls = (0..32).map(|i| {
        let agent = agent.clone();
        tokio::spawn(async move {
            if i % 2 == 0 {
                agent.execute(GuestPing {}).await.map(|_| ())
            } else {
                agent.execute(GuestInfo {}).await.map(|_| ())
            }
        })
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_command_that_answers_only_on_failure_reports_the_agents_error() {
    let ga = Peer::qemu_ga();
    let agent = Agent::connect(ga.socket(0)).await.unwrap();
    // guest-shutdown is blocked (-b): the agent answers with its error, which the call
    // returns; the sync sent after it keeps the channel in step.
    let err = agent.execute(GuestShutdown::default()).await.unwrap_err();
    assert!(err.qmp_error().is_some_and(|e| e.desc.contains("has been disabled")), "{err:?}");
    agent.execute(GuestPing {}).await.unwrap();
}

// qemu-ga's unix-listen serves one client at a time: the blocking agents get agents of their
// own.
#[test]
fn the_blocking_agent_reports_the_error_of_a_command_that_answers_only_on_failure() {
    let ga = Peer::qemu_ga();
    let blocking = qmp::blocking::Agent::connect(ga.socket(0)).unwrap();
    let err = blocking.execute(GuestShutdown::default()).unwrap_err();
    assert!(err.qmp_error().is_some_and(|e| e.desc.contains("has been disabled")), "{err:?}");
    blocking.execute(GuestPing {}).unwrap();
}

/// An agent of our own that answers the syncs and pings, and says nothing to guest-shutdown
/// (as qemu-ga does when the shutdown goes ahead), so the success path can run on this host.
fn silent_shutdown_agent(dir: &Path) -> PathBuf {
    let path = dir.join("fake-ga.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                let mut lines = BufReader::new(stream);
                let mut line = Vec::new();
                while lines.read_until(b'}', &mut line).is_ok_and(|n| n > 0) {
                    // One request per read_until is enough for this client's requests, which
                    // have no nested objects except the sync's arguments.
                    if line.contains(&b'{')
                        && line.iter().filter(|&&b| b == b'{').count()
                            > line.iter().filter(|&&b| b == b'}').count()
                    {
                        continue;
                    }
                    let text =
                        String::from_utf8_lossy(&line).trim_start_matches(['\u{fffd}', '\n']).to_string();
                    line.clear();
                    let Ok(req) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                    let id = req.get("id").cloned().unwrap_or_default();
                    let reply = match req["execute"].as_str() {
                        Some("guest-sync-delimited") => {
                            format!("\u{ff}{{\"return\": {}, \"id\": {id}}}\n", req["arguments"]["id"])
                        }
                        Some("guest-shutdown") => continue,
                        _ => format!("{{\"return\": {{}}, \"id\": {id}}}\n"),
                    };
                    let bytes: Vec<u8> =
                        reply.chars().map(|c| if c == '\u{ff}' { 0xFF } else { c as u8 }).collect();
                    if out.write_all(&bytes).is_err() {
                        return;
                    }
                }
            });
        }
    });
    path
}

#[tokio::test]
async fn a_command_that_answers_nothing_succeeds_when_the_sync_after_it_is_answered() {
    let dir = qmp_testkit::tempdir();
    let path = silent_shutdown_agent(dir.path());
    let agent = Agent::connect(&path).await.unwrap();
    agent.with_timeout(Duration::from_secs(5)).execute(GuestShutdown::default()).await.unwrap();
    agent.execute(GuestPing {}).await.unwrap();
    let blocking = qmp::blocking::Agent::connect(&path).unwrap();
    blocking.execute(GuestShutdown::default()).unwrap();
    blocking.execute(GuestPing {}).unwrap();
}

/// A relay in front of the agent that passes replies `delay` late, as a slow guest would.
fn slow_channel(agent: &Path, dir: &Path, delay: Duration) -> PathBuf {
    let path = dir.join("slow.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let agent = agent.to_path_buf();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let upstream = UnixStream::connect(&agent).unwrap();
            pump(client.try_clone().unwrap(), upstream.try_clone().unwrap(), Duration::ZERO);
            pump(upstream, client, delay);
        }
    });
    path
}

/// Copies `from` to `to` on a thread, each read `delay` late.
fn pump(mut from: UnixStream, mut to: UnixStream, delay: Duration) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = from.read(&mut buf) {
            std::thread::sleep(delay);
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

#[tokio::test]
async fn a_call_that_timed_out_leaves_no_trace_in_the_next() {
    let ga = Peer::qemu_ga();
    let dir = qmp_testkit::tempdir();
    let relay = slow_channel(ga.socket(0), dir.path(), Duration::from_millis(400));
    let agent = Agent::connect(&relay).await.unwrap();
    let err = agent.call(GuestInfo {}).timeout(Duration::from_millis(100)).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    // The late guest-info reply is still on its way; the next call synchronises past it and
    // gets its own answer, typed as its own.
    assert!(agent.execute(GuestGetTime {}).await.unwrap() > 0);
    assert!(agent.execute(GuestInfo {}).await.unwrap().version.starts_with("7.2"));
}

#[test]
fn a_blocking_call_that_timed_out_leaves_no_trace_in_the_next() {
    let ga = Peer::qemu_ga();
    let dir = qmp_testkit::tempdir();
    let relay = slow_channel(ga.socket(0), dir.path(), Duration::from_millis(400));
    let blocking = qmp::blocking::Agent::connect(&relay).unwrap();
    let err = blocking.call(GuestInfo {}).timeout(Duration::from_millis(100)).send().unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(blocking.execute(GuestGetTime {}).unwrap() > 0);
}

/// A channel like a guest's virtio-serial port behind QEMU's chardev: one connection to the
/// agent that outlives its clients, taking one client at a time; what the agent writes while
/// no client is connected waits for the next one. Replies pass `delay` late (a busy guest).
/// Returns the path and a flag raised once a client's request has reached the agent.
fn lasting_channel(agent: &Path, dir: &Path, delay: Duration) -> (PathBuf, Arc<Mutex<usize>>) {
    let path = dir.join("channel.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let upstream = UnixStream::connect(agent).unwrap();
    let client_now: Arc<Mutex<Option<UnixStream>>> = Arc::default();
    let held: Arc<Mutex<Vec<u8>>> = Arc::default();
    let requests = Arc::new(Mutex::new(0usize));
    {
        let (mut from_agent, client_now, held) =
            (upstream.try_clone().unwrap(), client_now.clone(), held.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n @ 1..) = from_agent.read(&mut buf) {
                std::thread::sleep(delay);
                let mut client = client_now.lock().unwrap();
                let delivered = client.as_mut().is_some_and(|c| c.write_all(&buf[..n]).is_ok());
                if !delivered {
                    held.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
    }
    let seen = requests.clone();
    std::thread::spawn(move || {
        let mut to_agent = upstream;
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            {
                let mut held = held.lock().unwrap();
                let _ = client.write_all(&held);
                held.clear();
                *client_now.lock().unwrap() = Some(client.try_clone().unwrap());
            }
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n @ 1..) = client.read(&mut buf) {
                to_agent.write_all(&buf[..n]).unwrap();
                *seen.lock().unwrap() += buf[..n].windows(7).filter(|w| w == b"execute").count();
            }
            *client_now.lock().unwrap() = None;
        }
    });
    (path, requests)
}

#[tokio::test]
async fn a_client_killed_before_its_reply_leaves_the_next_client_only_its_own_replies() {
    let ga = Peer::qemu_ga();
    let dir = qmp_testkit::tempdir();
    let (channel, requests) = lasting_channel(ga.socket(0), dir.path(), Duration::from_millis(300));
    // Another process sends guest-info with the id our client's first request (its sync)
    // will carry, and half of a second request, and is killed before any reply reaches it.
    let script = format!(
        "import socket, time\ns = socket.socket(socket.AF_UNIX)\ns.connect({:?})\n\
         s.sendall(b'{{\"execute\": \"guest-info\", \"id\": 1}}\\n{{\"execute\": \"guest-ping\", \"argu')\ntime.sleep(60)\n",
        channel.to_str().unwrap()
    );
    let mut killed = std::process::Command::new("python3").arg("-c").arg(script).spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while *requests.lock().unwrap() < 2 {
        assert!(std::time::Instant::now() < deadline, "the first client's requests never reached the agent");
        std::thread::sleep(Duration::from_millis(5));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    let agent = Agent::connect(&channel).await.unwrap();
    // The stale reply came first, with our sync's id: taken for the sync's answer it would
    // have been a wrong token, and taken for a later call's, a guest-info answer where
    // another was asked for.
    assert!(agent.execute(GuestGetTime {}).await.unwrap() > 0);
    agent.execute(GuestPing {}).await.unwrap();
    assert!(agent.info().await.unwrap().version.starts_with("7.2"));
}

#[tokio::test]
async fn files_of_many_chunks_go_in_and_out_byte_for_byte() {
    let ga = Peer::qemu_ga();
    let dir = qmp_testkit::tempdir();
    let agent = Agent::connect(ga.socket(0)).await.unwrap();
    // Two and a half chunks, every byte value, so no chunk boundary or base64 padding hides.
    let data: Vec<u8> = (0..qmp::ga::file::CHUNK * 5 / 2 + 7).map(|i| (i * 7 + i / 251) as u8).collect();
    let path = dir.path().join("in.bin");
    let mut seen = Vec::new();
    let sent = agent.upload(path.to_str().unwrap(), data.as_slice(), |p| seen.push(p.done)).await.unwrap();
    assert_eq!(sent, data.len() as u64);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let mut progress = Vec::new();
    let mut back = Vec::new();
    agent.download(path.to_str().unwrap(), &mut back, |p| progress.push(p)).await.unwrap();
    assert!(back == data, "the copy out differs");
    assert!(progress.iter().all(|p| p.total == Some(data.len() as u64)), "{progress:?}");
    assert_eq!(progress.last().unwrap().done, data.len() as u64);
    // Empty files, a missing one (the agent's error), and the connection still in step.
    let empty = dir.path().join("empty");
    agent.write_file(empty.to_str().unwrap(), b"").await.unwrap();
    assert_eq!(agent.read_file(empty.to_str().unwrap()).await.unwrap(), b"");
    let missing = dir.path().join("missing");
    let err = agent.read_file(missing.to_str().unwrap()).await.unwrap_err();
    assert!(err.qmp_error().is_some(), "{err:?}");
    agent.execute(GuestPing {}).await.unwrap();
}

#[test]
fn the_blocking_agent_moves_files_too() {
    let ga = Peer::qemu_ga();
    let dir = qmp_testkit::tempdir();
    let agent = qmp::blocking::Agent::connect(ga.socket(0)).unwrap();
    let data: Vec<u8> = (0..qmp::ga::file::CHUNK + 3).map(|i| (i % 253) as u8).collect();
    let path = dir.path().join("b.bin");
    agent.write_file(path.to_str().unwrap(), &data).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    assert!(agent.read_file(path.to_str().unwrap()).unwrap() == data);
    assert!(agent.info().unwrap().is_enabled("guest-file-open"));
}
