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

/// `migrate-set-parameters`: each member's type and width, then QEMU's checks of the whole
/// set in its order (whatever the request's order), nothing kept from a refused request,
/// what is kept shown by `query-migrate-parameters` in QEMU's member order.
#[test]
fn parameters_are_checked_and_kept_as_qemu_does() {
    use serde_json::json;
    let set = |args: serde_json::Value| {
        s(json!({"execute": "migrate-set-parameters", "arguments": args}).to_string())
    };
    let query = || s(b"{\"execute\": \"query-migrate-parameters\"}");
    let mut steps = vec![s(NEGOTIATE), query()];
    for (name, values) in [
        ("compress-level", json!([10, -1, 256])),
        ("compress-threads", json!([0, 256])),
        ("decompress-threads", json!([0])),
        ("cpu-throttle-initial", json!([0, 100])),
        ("cpu-throttle-increment", json!([0])),
        ("max-cpu-throttle", json!([19, 100])),
        ("throttle-trigger-threshold", json!([0, 101])),
        ("downtime-limit", json!([2000001, "x"])),
        ("multifd-channels", json!([0, 256])),
        ("xbzrle-cache-size", json!([1000, 0, 2048])),
        ("announce-initial", json!([100001])),
        ("announce-max", json!([100001])),
        ("announce-rounds", json!([1001])),
        ("announce-step", json!([10001, 0])),
        ("x-checkpoint-delay", json!([-1, 4294967296u64])),
        ("multifd-compression", json!(["lz4"])),
        ("cpu-throttle-tailslow", json!(["x"])),
        ("tls-creds", json!([5])),
        ("bogus", json!([1])),
    ] {
        for value in values.as_array().unwrap() {
            steps.push(set(json!({ name: value })));
        }
    }
    steps.extend([
        set(json!({})),
        // Two faults: QEMU's order of checks decides, not the request's.
        set(json!({"multifd-channels": 0, "compress-level": 10})),
        set(json!({"announce-step": 0, "downtime-limit": 500, "max-bandwidth": 1000})),
        query(),
        set(json!({
            "downtime-limit": 500, "max-bandwidth": -1, "max-postcopy-bandwidth": 7,
            "tls-creds": "tls0", "tls-hostname": null, "multifd-compression": "zlib",
            "compress-level": 0, "announce-step": 1, "xbzrle-cache-size": 8192,
            "block-incremental": true, "cpu-throttle-tailslow": true, "x-checkpoint-delay": 0,
            "cpu-throttle-initial": 99,
        })),
        // Taken but neither checked nor kept by QEMU 7.2.
        set(json!({"multifd-zlib-level": 10, "multifd-zstd-level": 21})),
        set(json!({"block-bitmap-mapping": []})),
        query(),
        // max-cpu-throttle is checked against the cpu-throttle-initial now kept (99).
        set(json!({"max-cpu-throttle": 98})),
        set(json!({"max-cpu-throttle": 98, "cpu-throttle-initial": 50})),
        set(json!({"tls-creds": null})),
        query(),
    ]);
    compare(&Peer::qemu_system(), &Peer::sim(), &steps);
}
