//! The queries answered from the machine and configuration (`query-kvm`, `query-cpus-fast`,
//! `query-memory-size-summary`, ...) and the `/objects` ones (`query-iothreads`,
//! `query-memdev`), sent to real QEMU and to the simulator, for `-machine none` and
//! `-machine pc` (whose RAM is the backend object `pc.ram`). Thread ids are masked: they are
//! the host's.

mod common;

use common::{s, Peer, Step};
use qmp_server::sim::{Machine, SimOptions};
use serde_json::json;

const QUERIES: &[&str] = &[
    "query-kvm",
    "query-target",
    "query-uuid",
    "query-vnc",
    "query-display-options",
    "query-replay",
    "query-dump",
    "query-tpm",
    "query-memory-devices",
    "query-balloon",
    "query-vm-generation-id",
    "query-current-machine",
    "query-memory-size-summary",
    "query-acpi-ospm-status",
    "query-cpus-fast",
    "query-hotpluggable-cpus",
    "query-iothreads",
    "query-memdev",
];

fn steps() -> Vec<Step> {
    let mut steps = vec![s(b"{\"execute\": \"qmp_capabilities\"}")];
    steps.extend(QUERIES.iter().map(|q| s(json!({"execute": q}).to_string())));
    steps
}

fn both(qemu: &Peer, sim: &Peer, steps: &[Step]) {
    let masked = |peer| common::mask_numbers(common::transcript(peer, steps), &["\"thread-id\": "]);
    common::assert_same(&masked(qemu), &masked(sim));
}

#[test]
fn machine_none_answers_as_qemu() {
    both(&Peer::qemu_system(), &Peer::sim(), &steps());
}

#[test]
fn machine_pc_answers_as_qemu() {
    let qemu = Peer::qemu_system_with(&["-machine", "pc", "-S", "-accel", "tcg"]);
    let sim = Peer::sim_with(
        tempfile::tempdir().unwrap(),
        SimOptions { machine: Machine::Pc, ..Default::default() },
    );
    // The machine's RAM is a backend object of its own, listed with the others, in use.
    let mut steps = steps();
    for line in [
        json!({"execute": "qom-list", "arguments": {"path": "/objects/pc.ram"}}),
        json!({"execute": "object-add", "arguments": {"qom-type": "iothread", "id": "io1"}}),
        json!({"execute": "object-add", "arguments": {"qom-type": "memory-backend-ram", "id": "m1", "size": 4096}}),
        json!({"execute": "qom-list", "arguments": {"path": "/objects"}}),
        json!({"execute": "query-memdev"}),
        json!({"execute": "object-del", "arguments": {"id": "pc.ram"}}),
        json!({"execute": "object-del", "arguments": {"id": "m1"}}),
        json!({"execute": "query-memdev"}),
    ] {
        steps.push(s(line.to_string()));
    }
    both(&qemu, &sim, &steps);
}

/// Iothreads are listed in the order QEMU walks `/objects`, memory backends in its reverse;
/// each with the settings it was made with.
#[test]
fn objects_are_listed_with_their_settings() {
    let add = |args: serde_json::Value| s(json!({"execute": "object-add", "arguments": args}).to_string());
    let mut steps = vec![
        s(b"{\"execute\": \"qmp_capabilities\"}"),
        add(json!({"qom-type": "iothread", "id": "io1"})),
        add(
            json!({"qom-type": "iothread", "id": "io2", "poll-max-ns": 7, "poll-grow": 2, "aio-max-batch": 3}),
        ),
        add(json!({"qom-type": "iothread", "id": "abc"})),
        add(json!({"qom-type": "memory-backend-ram", "id": "mem1", "size": 1048576})),
        add(
            json!({"qom-type": "memory-backend-ram", "id": "m2", "size": 4096, "dump": false, "merge": false}),
        ),
        add(json!({"qom-type": "memory-backend-ram", "id": "zz", "size": 8192, "prealloc": true})),
        s(b"{\"execute\": \"query-iothreads\"}"),
        s(b"{\"execute\": \"query-memdev\"}"),
        s(b"{\"execute\": \"object-del\", \"arguments\": {\"id\": \"io1\"}}"),
        s(b"{\"execute\": \"object-del\", \"arguments\": {\"id\": \"mem1\"}}"),
    ];
    steps.push(s(b"{\"execute\": \"query-iothreads\"}"));
    steps.push(s(b"{\"execute\": \"query-memdev\"}"));
    both(&Peer::qemu_system(), &Peer::sim(), &steps);
}
