//! The generated API against real QEMU 7.2: every side-effect-free query the live QEMU has,
//! sent with no arguments on three kinds of peer (`qemu-system-x86_64 -machine pc -S -accel
//! tcg` with a few devices, `-machine none`, and the storage daemon with nodes, a job and an
//! export), and each successful reply decoded into the generated return type. A reply that
//! does not decode fails the test; the counts are printed.

use qmp::blocking::Client;
use qmp::generated::registry;
use qmp_testkit::Peer;
use serde_json::Value;

fn connect(peer: &Peer) -> Client {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match Client::connect(peer.socket(0)) {
            Ok(c) => return c,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10))
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
}

/// Runs every query without required arguments that `client`'s QEMU has; returns how many
/// answered and decoded, and the names that failed to decode.
fn decode_every_query(client: &Client, what: &str) -> usize {
    let live: Vec<String> = client
        .call_raw("query-commands", Value::Null)
        .send()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    let (mut decoded, mut refused, mut bad) = (0, 0, Vec::new());
    for info in registry::COMMANDS {
        let name = info.name;
        let is_query = name.starts_with("query-") || name.starts_with("x-query-");
        // Queries that need an argument are not run here.
        let no_arguments = registry::decode_arguments(name, Value::Null).is_some_and(|r| r.is_ok());
        if !is_query || !no_arguments || !live.iter().any(|l| l == name) {
            continue;
        }
        match client.call_raw(name, Value::Null).send() {
            Ok(ret) => match registry::decode_return(name, ret.clone()) {
                Some(Ok(_)) => decoded += 1,
                Some(Err(e)) => bad.push(format!("{name}: {e}: {ret}")),
                None => unreachable!("in the registry"),
            },
            // Not available on this machine (no balloon, no SEV...): QEMU's own error.
            Err(qmp::Error::Qmp(_)) => refused += 1,
            Err(e) => panic!("{name}: {e}"),
        }
    }
    eprintln!("{what}: {decoded} queries decoded, {refused} refused by QEMU");
    assert!(bad.is_empty(), "{what}: replies that did not decode:\n{}", bad.join("\n"));
    decoded
}

#[test]
fn every_query_of_a_pc_machine_decodes_into_its_generated_type() {
    let peer = Peer::qemu_with(
        1,
        &[
            "-machine",
            "pc",
            "-S",
            "-accel",
            "tcg",
            "-m",
            "128",
            "-device",
            "virtio-rng-pci,id=rng0",
            "-device",
            "virtio-balloon-pci,id=balloon0",
            "-blockdev",
            "driver=null-co,node-name=null0,size=1048576",
            "-device",
            "virtio-blk-pci,drive=null0,id=disk0",
            "-netdev",
            "user,id=net0",
            "-device",
            "virtio-net-pci,netdev=net0,id=nic0",
        ],
    );
    let client = connect(&peer);
    assert!(decode_every_query(&client, "pc machine") >= 40);
}

#[test]
fn every_query_of_a_machineless_qemu_decodes_into_its_generated_type() {
    let peer = Peer::qemu(1);
    let client = connect(&peer);
    assert!(decode_every_query(&client, "machine none") >= 30);
}

#[test]
fn every_query_of_the_storage_daemon_decodes_into_its_generated_type() {
    let peer = Peer::storage_daemon(1);
    let client = connect(&peer);
    let sock = peer.dir().join("nbd.sock");
    client
        .call_raw(
            "nbd-server-start", // 7.2 takes the legacy address form here.
            serde_json::json!({"addr": {"type": "unix", "data": {"path": sock.to_str().unwrap()}}}),
        )
        .send()
        .unwrap();
    client
        .call_raw("block-export-add", serde_json::json!({"type": "nbd", "id": "exp0", "node-name": "top0"}))
        .send()
        .unwrap();
    client
        .call_raw("block-dirty-bitmap-add", serde_json::json!({"node": "top0", "name": "bm0"}))
        .send()
        .unwrap();
    client
        .call_raw("block-stream", serde_json::json!({"job-id": "job0", "device": "top0", "speed": 1}))
        .send()
        .unwrap();
    assert!(decode_every_query(&client, "storage daemon") >= 9);
}
