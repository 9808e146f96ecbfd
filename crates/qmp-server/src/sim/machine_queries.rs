//! The queries QEMU 7.2 answers from its machine and configuration alone, as
//! `qemu-system-x86_64 -machine none` (or `-machine pc -S -accel tcg`) with no `-uuid`, no
//! display, no TPM, no record/replay, no balloon and no memory devices answers them; and the
//! `/objects` queries (`query-iothreads`, `query-memdev`), read off the QOM tree.

use serde_json::{json, Value};

use qmp_proto::{ErrorClass, QmpError};

use super::qom::Qom;
use super::Machine;
use crate::server::Reply;

fn generic(desc: &str) -> QmpError {
    QmpError::new(ErrorClass::GenericError, desc)
}

/// A query's name and how it is answered (from nothing, or from the machine type).
type Constant = (&'static str, fn() -> Reply);
type OfMachine = (&'static str, fn(Machine) -> Reply);

/// The queries whose answer does not depend on the machine, and their answers.
pub const CONSTANT: &[Constant] = &[
    // KVM is built in, and not in use: the simulator runs like `-accel tcg`.
    ("query-kvm", || Ok(json!({"enabled": false, "present": true}))),
    ("query-target", || Ok(json!({"arch": "x86_64"}))),
    ("query-uuid", || Ok(json!({"UUID": "00000000-0000-0000-0000-000000000000"}))),
    ("query-vnc", || Ok(json!({"enabled": false}))),
    ("query-display-options", || Ok(json!({"type": "none"}))),
    ("query-replay", || Ok(json!({"icount": 0, "mode": "none"}))),
    ("query-dump", || Ok(json!({"total": 0, "status": "none", "completed": 0}))),
    ("query-tpm", || Ok(json!([]))),
    ("query-memory-devices", || Ok(json!([]))),
    ("query-balloon", || {
        Err(QmpError::new(ErrorClass::DeviceNotActive, "No balloon device has been activated"))
    }),
    ("query-vm-generation-id", || Err(generic("VM Generation ID device not found"))),
];

/// The pc's one CPU, as QEMU places it (before any device is added).
fn cpu_props() -> Value {
    json!({"core-id": 0, "thread-id": 0, "socket-id": 0})
}

const CPU_PATH: &str = "/machine/unattached/device[0]";

/// The queries answered by the machine type, and their answers.
pub const OF_MACHINE: &[OfMachine] = &[
    ("query-current-machine", |m| Ok(json!({"wakeup-suspend-support": m == Machine::Pc}))),
    ("query-memory-size-summary", |m| {
        let base = if m == Machine::Pc { 128u64 << 20 } else { 0 };
        Ok(json!({"base-memory": base, "plugged-memory": 0}))
    }),
    ("query-acpi-ospm-status", |m| match m {
        Machine::Pc => Ok(json!([])),
        Machine::None => Err(generic("command is not supported, missing ACPI device")),
    }),
    // The vCPU thread's id: the simulator has no vCPU threads, so its own process id.
    ("query-cpus-fast", |m| match m {
        Machine::Pc => Ok(json!([{
            "thread-id": std::process::id(), "props": cpu_props(), "qom-path": CPU_PATH,
            "cpu-index": 0, "target": "x86_64",
        }])),
        Machine::None => Ok(json!([])),
    }),
    ("query-hotpluggable-cpus", |m| match m {
        Machine::Pc => Ok(json!([{
            "props": cpu_props(), "vcpus-count": 1, "qom-path": CPU_PATH, "type": "qemu64-x86_64-cpu",
        }])),
        Machine::None => Err(generic("The feature 'query-hotpluggable-cpus' is not enabled")),
    }),
];

/// `query-iothreads`: each `iothread` object with its polling parameters, in the order QEMU
/// walks `/objects`. The thread's id is the simulator's process id (it runs no such thread).
pub fn iothreads(qom: &Qom) -> Reply {
    let list = qom.objects_of("iothread").map(|(id, values)| {
        let int = |name: &str| values.get(name).cloned().unwrap_or(json!(0));
        json!({
            "poll-shrink": int("poll-shrink"), "thread-id": std::process::id(),
            "aio-max-batch": int("aio-max-batch"), "poll-grow": int("poll-grow"),
            "poll-max-ns": int("poll-max-ns"), "id": id,
        })
    });
    Ok(Value::Array(list.collect()))
}

/// `query-memdev`: each memory backend with its settings, in the reverse of the order QEMU
/// walks `/objects` (it prepends each to its list).
pub fn memdevs(qom: &Qom) -> Reply {
    let mut list: Vec<Value> = qom
        .objects_of("memory-backend-ram")
        .map(|(id, values)| {
            let get = |name: &str| values.get(name).cloned().unwrap_or(Value::Null);
            json!({
                "share": get("share"), "reserve": get("reserve"), "prealloc": get("prealloc"),
                "host-nodes": get("host-nodes"), "size": get("size"), "merge": get("merge"),
                "dump": get("dump"), "policy": get("policy"), "id": id,
            })
        })
        .collect();
    list.reverse();
    Ok(Value::Array(list))
}
