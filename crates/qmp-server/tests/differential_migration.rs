//! Outgoing migrations whose URI QEMU cannot use, simulator against real
//! `qemu-system-x86_64 -machine none`: refused at once (a URI it cannot read, an unknown
//! protocol, a descriptor name the monitor lacks), or failing after `migrate` returned (a
//! connection that cannot be made), each with QEMU's events, error text and
//! `query-migrate`'s `error-desc`; and a VM that a migration left paused refusing the next.

mod common;

use common::{compare, s, s_settle, s_until, Peer, Step};

const NEGOTIATE: &[u8] = b"{\"execute\": \"qmp_capabilities\"}";
const EVENTS_ON: &[u8] = b"{\"execute\": \"migrate-set-capabilities\", \"arguments\": {\"capabilities\": [{\"capability\": \"events\", \"state\": true}]}}";
const QUERY: &[u8] = b"{\"execute\": \"query-migrate\"}";

fn migrate(uri: &str) -> Vec<u8> {
    format!("{{\"execute\": \"migrate\", \"arguments\": {{\"uri\": \"{uri}\"}}}}").into_bytes()
}

/// A local TCP port nothing listens on (bound, then let go).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_uri_qemu_cannot_read_is_refused_at_once() {
    let mut steps = vec![s(NEGOTIATE), s(EVENTS_ON)];
    for uri in [
        "unix:",
        "tcp:",
        "tcp:127.0.0.1",
        "tcp:127.0.0.1:",
        "tcp:[::1",
        "tcp:[::1]:",
        "vsock:3",
        "fd:",
        "fd:nope",
        "fd:3",
        "rdma:127.0.0.1:1",
        "file:/tmp/x",
        "bogus:x",
    ] {
        steps.push(s(migrate(uri)));
        steps.push(s(QUERY));
    }
    steps.push(s(b"{\"execute\": \"query-status\"}"));
    compare(&Peer::qemu_system(), &Peer::sim(), &steps);
}

#[test]
fn a_connection_that_cannot_be_made_fails_the_migration_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_socket = dir.path().join("plain-file");
    std::fs::write(&not_a_socket, b"").unwrap();
    let port = closed_port();
    let uris = [
        "unix:/nonexistent/socket".to_string(),
        format!("unix:{}", not_a_socket.display()),
        format!("tcp:127.0.0.1:{port}"),
        format!("tcp:localhost:{port},ipv4"),
        "tcp:127.0.0.1:no-such-service".to_string(),
        format!("tcp::{port}"),
        "vsock:x:1".to_string(),
        "vsock:3:y".to_string(),
    ];
    let mut steps = vec![s(NEGOTIATE), s(EVENTS_ON)];
    for uri in &uris {
        steps.push(s_until(migrate(uri), "\"failed\""));
        steps.push(s(QUERY));
    }
    // Nothing was migrated: the VM still runs.
    steps.push(s(b"{\"execute\": \"query-status\"}"));
    compare(&Peer::qemu_system(), &Peer::sim(), &steps);
}

#[test]
fn a_vm_paused_by_a_migration_refuses_the_next_until_it_runs_again() {
    let steps: Vec<Step> = vec![
        s(NEGOTIATE),
        s(EVENTS_ON),
        s_until(migrate("exec:cat > /dev/null"), "\"completed\""),
        s_settle(b"{\"execute\": \"query-status\"}", "postmigrate"),
        s(migrate("unix:/nonexistent/socket")),
        s(migrate("bogus:x")),
        s(b"{\"execute\": \"cont\"}"),
        s(migrate("bogus:x")),
        s(QUERY),
    ];
    compare(&Peer::qemu_system(), &Peer::sim(), &steps);
}
