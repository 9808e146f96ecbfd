//! Descriptor passing, simulator against real `qemu-system-x86_64 -machine none`: `getfd`,
//! `closefd`, `add-fd`, `remove-fd` and `query-fdsets` with real SCM_RIGHTS, and whether each
//! passed descriptor is still open in the server, seen from this side: the descriptors
//! passed are the read ends of pipes, so writing to a pipe fails with EPIPE once the server
//! closed its end.

mod common;

use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use common::{assert_same, Peer, Raw};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

/// One step of a descriptor transcript.
enum Act {
    /// Sends a request with this many fresh pipe read ends attached (0: none). `$FD0`,
    /// `$FD1`... in it stand for the descriptor numbers `add-fd` returned so far.
    Send(&'static str, usize),
    /// The client leaves and a new one connects and negotiates (same monitor).
    Reconnect,
    /// Whether the server still holds pipe `i` (in the order passed) open.
    Open(usize),
}

use Act::*;

struct Session {
    conn: Raw,
    /// Write ends of the pipes whose read ends were passed, in order.
    pipes: Vec<std::fs::File>,
    /// Descriptor numbers `add-fd` returned, in order (they are the server's own).
    added: Vec<i64>,
}

fn negotiated(peer: &Peer) -> Raw {
    let mut c = peer.connect();
    c.greeting();
    c.send(b"{\"execute\": \"qmp_capabilities\"}");
    let lines = c.read_until(Duration::from_secs(10), |l| !l.is_empty());
    assert_eq!(lines[0].trim(), "{\"return\": {}}");
    c
}

/// The reply to the request just sent, events (from `stop`) kept before it.
fn answer(c: &mut Raw) -> Vec<String> {
    let lines = c.read_until(Duration::from_secs(10), |l| l.iter().any(|x| !x.contains("\"event\"")));
    assert!(lines.iter().any(|x| !x.contains("\"event\"")), "no reply: {lines:?}");
    lines.iter().map(|l| common::normalize(l.trim_end())).collect()
}

/// Sends `request` with `n` new pipe read ends attached; this side's copies are closed.
fn send_with_fds(s: &mut Session, request: &str, n: usize) {
    let mut reads: Vec<OwnedFd> = Vec::new();
    for _ in 0..n {
        let (r, w) = nix::unistd::pipe().unwrap();
        reads.push(r);
        s.pipes.push(std::fs::File::from(w));
    }
    let raw: Vec<i32> = reads.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let iov = [std::io::IoSlice::new(request.as_bytes())];
    let sock = s.conn.stream.as_raw_fd();
    sendmsg::<()>(sock, &iov, if n > 0 { &cmsg } else { &[] }, MsgFlags::empty(), None).unwrap();
}

/// Replaces each server descriptor number in `line` by its place among those seen.
fn number_fds(line: &str, added: &[i64]) -> String {
    let mut out = line.to_string();
    for (i, fd) in added.iter().enumerate().rev() {
        for end in ["}", ","] {
            out = out.replace(&format!("\"fd\": {fd}{end}"), &format!("\"fd\": FD{i}{end}"));
        }
        out = out.replace(&format!("fd:{fd}'"), &format!("fd:FD{i}'"));
    }
    out
}

fn run(peer: &Peer, acts: &[Act]) -> Vec<String> {
    let mut s = Session { conn: negotiated(peer), pipes: Vec::new(), added: Vec::new() };
    let mut out = Vec::new();
    for act in acts {
        match act {
            Send(template, n) => {
                let mut request = template.to_string();
                for (i, fd) in s.added.iter().enumerate() {
                    request = request.replace(&format!("$FD{i}"), &fd.to_string());
                }
                out.push(format!("> {template} (+{n} fds)"));
                send_with_fds(&mut s, &request, *n);
                for line in answer(&mut s.conn) {
                    let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                    if let Some(fd) = v["return"]["fd"].as_i64() {
                        s.added.push(fd);
                    }
                    out.push(number_fds(&line, &s.added));
                }
            }
            Reconnect => {
                out.push("> reconnect".into());
                // One client per monitor: the next is served once this one has gone.
                s.conn.stream.shutdown(std::net::Shutdown::Both).unwrap();
                s.conn = negotiated(peer);
            }
            Open(i) => {
                let open = match s.pipes[*i].write_all(b"x") {
                    Ok(()) => "open",
                    Err(e) if e.kind() == ErrorKind::BrokenPipe => "closed",
                    Err(e) => panic!("writing to pipe {i}: {e}"),
                };
                out.push(format!("pipe {i}: {open}"));
            }
        }
    }
    out
}

fn compare(acts: &[Act]) {
    let want = run(&Peer::qemu_system(), acts);
    let got = run(&Peer::sim(), acts);
    assert_same(&want, &got);
}

const GETFD_A: &str = r#"{"execute": "getfd", "arguments": {"fdname": "a"}}"#;
const CLOSEFD_A: &str = r#"{"execute": "closefd", "arguments": {"fdname": "a"}}"#;

#[test]
fn getfd_and_closefd() {
    compare(&[
        Send(GETFD_A, 0),
        Send(r#"{"execute": "getfd", "arguments": {"fdname": "1a"}}"#, 1),
        Open(0),
        Send(GETFD_A, 1),
        Open(1),
        // The same name again replaces the first descriptor, which is closed.
        Send(GETFD_A, 1),
        Open(1),
        Open(2),
        Send(CLOSEFD_A, 0),
        Open(2),
        Send(CLOSEFD_A, 0),
        Send(r#"{"execute": "getfd", "arguments": {"fdname": ""}}"#, 1),
        Send(r#"{"execute": "closefd", "arguments": {"fdname": ""}}"#, 0),
        Open(3),
        Send(r#"{"execute": "closefd", "arguments": {"fdname": "a", "x": 1}}"#, 0),
        Send(r#"{"execute": "getfd"}"#, 0),
    ]);
}

#[test]
fn a_descriptor_waits_for_a_command_that_takes_it() {
    compare(&[
        // Passed with a command that takes none, it is held for the next one.
        Send(r#"{"execute": "query-status"}"#, 1),
        Open(0),
        Send(r#"{"execute": "getfd", "arguments": {"fdname": "b", "extra": 1}}"#, 0),
        Send(r#"{"exec-oob": "getfd", "arguments": {"fdname": "b"}}"#, 0),
        Send(r#"{"execute": "getfd", "arguments": {"fdname": "b"}}"#, 0),
        Send(r#"{"execute": "getfd", "arguments": {"fdname": "c"}}"#, 0),
        // A later message's descriptors replace those held.
        Send(r#"{"execute": "query-status"}"#, 1),
        Send(r#"{"execute": "query-status"}"#, 1),
        Open(1),
        Open(2),
        // Of two in one message the first is taken, the other closed.
        Send(r#"{"execute": "getfd", "arguments": {"fdname": "d"}}"#, 2),
        Open(2),
        Open(3),
        Open(4),
        Send(r#"{"execute": "getfd", "arguments": {"fdname": "e"}}"#, 0),
        // Named descriptors outlive the client; held unnamed ones do not.
        Send(r#"{"execute": "query-status"}"#, 1),
        Reconnect,
        Open(5),
        Send(r#"{"execute": "closefd", "arguments": {"fdname": "d"}}"#, 0),
        Open(3),
        Send(r#"{"execute": "closefd", "arguments": {"fdname": "b"}}"#, 0),
    ]);
}

#[test]
fn fd_sets_while_running() {
    compare(&[
        Send(r#"{"execute": "add-fd"}"#, 0),
        Send(r#"{"execute": "add-fd", "arguments": {"fdset-id": -1}}"#, 1),
        Open(0),
        Send(r#"{"execute": "add-fd", "arguments": {"fdset-id": 2, "opaque": "x"}}"#, 1),
        Send(r#"{"execute": "add-fd"}"#, 1),
        Send(r#"{"execute": "add-fd"}"#, 1),
        Send(r#"{"execute": "add-fd", "arguments": {"fdset-id": 2}}"#, 1),
        Send(r#"{"execute": "add-fd"}"#, 1),
        Send(r#"{"execute": "query-fdsets"}"#, 0),
        Send(r#"{"execute": "remove-fd", "arguments": {"fdset-id": 9}}"#, 0),
        Send(r#"{"execute": "remove-fd", "arguments": {"fdset-id": 2, "fd": 999}}"#, 0),
        Send(r#"{"execute": "remove-fd", "arguments": {"fdset-id": 0}}"#, 0),
        Open(2),
        Send(r#"{"execute": "remove-fd", "arguments": {"fdset-id": 2, "fd": $FD0}}"#, 0),
        Open(1),
        Open(4),
        Send(r#"{"execute": "query-fdsets"}"#, 0),
        // The lowest free id again.
        Send(r#"{"execute": "add-fd", "arguments": {"opaque": ""}}"#, 1),
        Send(r#"{"execute": "query-fdsets"}"#, 0),
        Send(r#"{"execute": "add-fd", "arguments": {"fdset-id": 5, "opaque": 5}}"#, 1),
        Send(r#"{"execute": "remove-fd", "arguments": {"fdset-id": "0"}}"#, 0),
        // With no client left, every descriptor of every set is closed.
        Reconnect,
        Open(3),
        Open(6),
        Open(7),
        Send(r#"{"execute": "query-fdsets"}"#, 0),
    ]);
}

#[test]
fn fd_sets_while_paused() {
    compare(&[
        Send(r#"{"execute": "stop"}"#, 0),
        Send(r#"{"execute": "add-fd"}"#, 1),
        Send(r#"{"execute": "add-fd", "arguments": {"fdset-id": 0}}"#, 1),
        // Not running, QEMU marks descriptors removed but closes none.
        Send(r#"{"execute": "remove-fd", "arguments": {"fdset-id": 0, "fd": $FD0}}"#, 0),
        Send(r#"{"execute": "remove-fd", "arguments": {"fdset-id": 0, "fd": $FD0}}"#, 0),
        Open(0),
        Send(r#"{"execute": "query-fdsets"}"#, 0),
        Reconnect,
        Open(0),
        Open(1),
        Send(r#"{"execute": "query-fdsets"}"#, 0),
        Send(r#"{"execute": "cont"}"#, 0),
        Send(r#"{"execute": "query-fdsets"}"#, 0),
        // Running again, the next clean-up closes what was marked.
        Send(r#"{"execute": "remove-fd", "arguments": {"fdset-id": 0, "fd": $FD1}}"#, 0),
        Open(0),
        Open(1),
        Send(r#"{"execute": "query-fdsets"}"#, 0),
    ]);
}

/// `migrate` to `fd:NAME` takes the monitor's descriptor of that name: `closefd` no longer
/// finds it. (The VM is paused first so that no STOP races with the replies.)
#[test]
fn a_migration_takes_its_named_descriptor() {
    compare(&[
        Send(r#"{"execute": "stop"}"#, 0),
        Send(r#"{"execute": "migrate", "arguments": {"uri": "fd:a"}}"#, 0),
        Send(GETFD_A, 1),
        Send(r#"{"execute": "migrate", "arguments": {"uri": "fd:a"}}"#, 0),
        Send(CLOSEFD_A, 0),
    ]);
}

/// Named descriptors belong to a monitor: another monitor's client does not see them.
#[test]
fn named_descriptors_are_per_monitor() {
    fn run_two(peer: &Peer, second: Raw) -> Vec<String> {
        let mut first = Session { conn: negotiated(peer), pipes: Vec::new(), added: Vec::new() };
        let mut second = Session { conn: second, pipes: Vec::new(), added: Vec::new() };
        second.conn.greeting();
        second.conn.send(b"{\"execute\": \"qmp_capabilities\"}");
        answer(&mut second.conn);
        let mut out = Vec::new();
        send_with_fds(&mut first, GETFD_A, 1);
        out.extend(answer(&mut first.conn));
        send_with_fds(&mut second, CLOSEFD_A, 0);
        out.extend(answer(&mut second.conn));
        // fd sets are the process's: the other monitor's client sees them.
        send_with_fds(&mut first, r#"{"execute": "add-fd", "arguments": {"fdset-id": 3}}"#, 1);
        answer(&mut first.conn);
        send_with_fds(&mut second, r#"{"execute": "remove-fd", "arguments": {"fdset-id": 3}}"#, 0);
        out.extend(answer(&mut second.conn));
        send_with_fds(&mut first, CLOSEFD_A, 0);
        out.extend(answer(&mut first.conn));
        out
    }
    let qemu = Peer::qemu_system_monitors(2);
    let want = run_two(&qemu, qemu.monitor(1));
    // The simulator's `qmp.sock` and `qmp1.sock` are monitors of their own.
    let sim = Peer::sim();
    let got = run_two(&sim, sim.monitor(1));
    assert_same(&want, &got);
}
