//! Decoding of events captured from QEMU 7.2 (and, for events a VM-less QEMU cannot be
//! made to send, data in their QAPI shape) into the generated event types.

use serde_json::{json, Map, Value};

use super::*;
use crate::proto::{Event, Message};
use crate::types::*;

/// No unknown members.
fn none() -> Map<String, Value> {
    Map::new()
}

/// An event as the client receives it.
fn event(name: &str, data: Option<Value>) -> Event {
    let mut msg = json!({"timestamp": {"seconds": 1800000000, "microseconds": 123456}, "event": name});
    if let Some(data) = data {
        msg["data"] = data;
    }
    match Message::from_slice(msg.to_string().as_bytes()) {
        Ok(Message::Event(e)) => e,
        other => panic!("not an event: {other:?}"),
    }
}

fn decode(name: &str, data: Value) -> QemuEvent {
    QemuEvent::from_event(&event(name, Some(data)))
}

#[test]
fn events_without_data_decode() {
    for (name, expected) in [
        ("STOP", QemuEvent::Stop(Stop)),
        ("RESUME", QemuEvent::Resume(Resume)),
        ("POWERDOWN", QemuEvent::Powerdown(Powerdown)),
        ("SUSPEND", QemuEvent::Suspend(Suspend)),
        ("SUSPEND_DISK", QemuEvent::SuspendDisk(SuspendDisk)),
        ("WAKEUP", QemuEvent::Wakeup(Wakeup)),
        ("SPICE_MIGRATE_COMPLETED", QemuEvent::SpiceMigrateCompleted(SpiceMigrateCompleted)),
    ] {
        let decoded = QemuEvent::from_event(&event(name, None));
        assert_eq!(decoded, expected);
        assert_eq!(decoded.name(), name);
    }
}

#[test]
fn run_state_events_captured_from_qemu() {
    assert_eq!(
        decode("RESET", json!({"guest": false, "reason": "host-qmp-system-reset"})),
        QemuEvent::Reset(Reset {
            guest: false,
            reason: ShutdownCause::HostQmpSystemReset,
            unknown_members: none()
        })
    );
    assert_eq!(
        decode("SHUTDOWN", json!({"guest": false, "reason": "host-qmp-quit"})),
        QemuEvent::Shutdown(Shutdown {
            guest: false,
            reason: ShutdownCause::HostQmpQuit,
            unknown_members: none()
        })
    );
    // Data in their QAPI shape.
    assert_eq!(
        decode("RTC_CHANGE", json!({"offset": 42, "qom-path": "/machine/unattached/device[0]"})),
        QemuEvent::RtcChange(RtcChange {
            offset: 42,
            qom_path: "/machine/unattached/device[0]".into(),
            unknown_members: none()
        })
    );
    assert_eq!(
        decode("WATCHDOG", json!({"action": "reset"})),
        QemuEvent::Watchdog(Watchdog { action: WatchdogAction::Reset, unknown_members: none() })
    );
    assert_eq!(
        decode("BALLOON_CHANGE", json!({"actual": 536870912})),
        QemuEvent::BalloonChange(BalloonChange { actual: 536870912, unknown_members: none() })
    );
}

#[test]
fn device_events_captured_from_qemu() {
    assert_eq!(
        decode("DEVICE_DELETED", json!({"device": "kbd0", "path": "/machine/peripheral/kbd0"})),
        QemuEvent::DeviceDeleted(DeviceDeleted {
            device: Some("kbd0".into()),
            path: "/machine/peripheral/kbd0".into(),
            unknown_members: none(),
        })
    );
    // `device` is optional: devices without an id.
    assert_eq!(
        decode("DEVICE_DELETED", json!({"path": "/machine/peripheral-anon/device[0]"})),
        QemuEvent::DeviceDeleted(DeviceDeleted {
            device: None,
            path: "/machine/peripheral-anon/device[0]".into(),
            unknown_members: none(),
        })
    );
    assert_eq!(
        decode("DEVICE_TRAY_MOVED", json!({"device": "cd0", "tray-open": true, "id": "cdrom0"})),
        QemuEvent::DeviceTrayMoved(DeviceTrayMoved {
            device: "cd0".into(),
            id: "cdrom0".into(),
            tray_open: true,
            unknown_members: none(),
        })
    );
}

#[test]
fn block_events_captured_from_qemu() {
    assert_eq!(
        decode(
            "BLOCK_JOB_COMPLETED",
            json!({"device": "err0", "len": 67108864, "offset": 1048576, "speed": 0,
                                             "type": "stream", "error": "Input/output error"})
        ),
        QemuEvent::BlockJobCompleted(BlockJobCompleted {
            type_: JobType::Stream,
            device: "err0".into(),
            len: 67108864,
            offset: 1048576,
            speed: 0,
            error: Some("Input/output error".into()),
            unknown_members: none(),
        })
    );
    assert_eq!(
        decode(
            "BLOCK_JOB_READY",
            json!({"device": "m0", "len": 1048576, "offset": 1048576, "speed": 0, "type": "mirror"})
        ),
        QemuEvent::BlockJobReady(BlockJobReady {
            type_: JobType::Mirror,
            device: "m0".into(),
            len: 1048576,
            offset: 1048576,
            speed: 0,
            unknown_members: none(),
        })
    );
    assert_eq!(
        decode(
            "BLOCK_JOB_CANCELLED",
            json!({"device": "job0", "len": 67108864, "offset": 524288, "speed": 1048576, "type": "stream"})
        ),
        QemuEvent::BlockJobCancelled(BlockJobCancelled {
            type_: JobType::Stream,
            device: "job0".into(),
            len: 67108864,
            offset: 524288,
            speed: 1048576,
            unknown_members: none(),
        })
    );
    assert_eq!(
        decode("BLOCK_JOB_ERROR", json!({"device": "err0", "operation": "read", "action": "report"})),
        QemuEvent::BlockJobError(BlockJobError {
            device: "err0".into(),
            operation: IoOperationType::Read,
            action: BlockErrorAction::Report,
            unknown_members: none(),
        })
    );
    assert_eq!(
        decode("JOB_STATUS_CHANGE", json!({"status": "null", "id": "err0"})),
        QemuEvent::JobStatusChange(JobStatusChange {
            id: "err0".into(),
            status: JobStatus::Null,
            unknown_members: none()
        })
    );
    // A write error that stopped the VM (`qom-path` is only sent by QEMU 9.1 and later).
    assert_eq!(
        decode(
            "BLOCK_IO_ERROR",
            json!({"device": "ide0-hd1", "node-name": "#block212", "operation": "write",
                                        "action": "stop", "reason": "No space left on device"})
        ),
        QemuEvent::BlockIoError(BlockIoError {
            qom_path: None,
            device: "ide0-hd1".into(),
            node_name: Some("#block212".into()),
            operation: IoOperationType::Write,
            action: BlockErrorAction::Stop,
            nospace: None,
            reason: "No space left on device".into(),
            unknown_members: none(),
        })
    );
}

#[test]
fn vnc_events_captured_from_qemu() {
    let server =
        json!({"auth": "none", "family": "unix", "service": "/tmp/vnc", "host": "", "websocket": false});
    let client = json!({"family": "unix", "service": "", "host": "", "websocket": false});
    let QemuEvent::VncConnected(c) = decode("VNC_CONNECTED", json!({"server": server, "client": client}))
    else {
        panic!("VNC_CONNECTED")
    };
    assert_eq!(c.server.auth.as_deref(), Some("none"));
    assert_eq!(c.server.family, NetworkAddressFamily::Unix);
    assert_eq!(c.server.service, "/tmp/vnc");
    assert_eq!(c.client.family, NetworkAddressFamily::Unix);
    let QemuEvent::VncInitialized(i) = decode("VNC_INITIALIZED", json!({"server": server, "client": client}))
    else {
        panic!("VNC_INITIALIZED")
    };
    assert_eq!((i.client.x509_dname, i.client.sasl_username), (None, None));
    assert!(matches!(
        decode("VNC_DISCONNECTED", json!({"server": server, "client": client})),
        QemuEvent::VncDisconnected(_)
    ));
}

#[test]
fn spice_events_in_their_qapi_shape() {
    let basic = json!({"port": "5930", "family": "ipv4", "host": "127.0.0.1"});
    let QemuEvent::SpiceConnected(c) = decode("SPICE_CONNECTED", json!({"server": basic, "client": basic}))
    else {
        panic!("SPICE_CONNECTED")
    };
    assert_eq!((c.server.port.as_str(), c.client.family.clone()), ("5930", NetworkAddressFamily::Ipv4));
    let QemuEvent::SpiceInitialized(i) = decode(
        "SPICE_INITIALIZED",
        json!({"server": {"auth": "spice", "port": "5930", "family": "ipv4", "host": "127.0.0.1"},
               "client": {"port": "50100", "family": "ipv4", "channel-type": 3, "connection-id": 77,
                          "host": "127.0.0.1", "channel-id": 0, "tls": true}}),
    ) else {
        panic!("SPICE_INITIALIZED")
    };
    assert_eq!(i.server.auth.as_deref(), Some("spice"));
    assert_eq!(
        (i.client.connection_id, i.client.channel_type, i.client.channel_id, i.client.tls),
        (77, 3, 0, true)
    );
    assert!(matches!(
        decode("SPICE_DISCONNECTED", json!({"server": basic, "client": basic})),
        QemuEvent::SpiceDisconnected(_)
    ));
}

#[test]
fn unknown_members_and_values_are_tolerated() {
    assert_eq!(
        decode("JOB_STATUS_CHANGE", json!({"status": "hibernating", "id": "j", "new-member": {"a": 1}})),
        QemuEvent::JobStatusChange(JobStatusChange {
            id: "j".into(),
            status: JobStatus::Other("hibernating".into()),
            unknown_members: [("new-member".to_owned(), json!({"a": 1}))].into_iter().collect(),
        })
    );
    assert_eq!(
        decode("SHUTDOWN", json!({"guest": true, "reason": "cosmic-ray"})),
        QemuEvent::Shutdown(Shutdown {
            guest: true,
            reason: ShutdownCause::Other("cosmic-ray".into()),
            unknown_members: none(),
        })
    );
    // Data on an event that has none is ignored too.
    assert_eq!(decode("STOP", json!({"why": "because"})), QemuEvent::Stop(Stop));
}

#[test]
fn unknown_names_and_undecodable_data_become_other() {
    assert_eq!(
        decode("WORMHOLE_OPENED", json!({"recipient": "hypervisor"})),
        QemuEvent::Other { name: "WORMHOLE_OPENED".into(), data: json!({"recipient": "hypervisor"}) }
    );
    // A known name missing required members (`MEMORY_FAILURE` needs `action` and `flags`).
    assert!(matches!(
        decode("MEMORY_FAILURE", json!({"recipient": "hypervisor"})),
        QemuEvent::Other { name, .. } if name == "MEMORY_FAILURE"
    ));
    assert_eq!(
        QemuEvent::from_event(&event("NEW_EVENT", None)),
        QemuEvent::Other { name: "NEW_EVENT".into(), data: Value::Null }
    );
    // A known name with a member of the wrong type, or a required member missing.
    let bad = json!({"status": 7, "id": "j"});
    assert_eq!(
        decode("JOB_STATUS_CHANGE", bad.clone()),
        QemuEvent::Other { name: "JOB_STATUS_CHANGE".into(), data: bad }
    );
    assert!(
        matches!(decode("RESET", json!({"guest": false})), QemuEvent::Other { name, .. } if name == "RESET")
    );
    assert!(matches!(decode("BALLOON_CHANGE", json!([1, 2])), QemuEvent::Other { .. }));
}

#[test]
fn parse_selects_by_name() {
    let e = event("BLOCK_JOB_ERROR", Some(json!({"device": "j", "operation": "write", "action": "stop"})));
    let err: BlockJobError = e.parse().expect("the same name").expect("valid data");
    assert_eq!(err.operation, IoOperationType::Write);
    assert!(e.parse::<BlockJobReady>().is_none());
    let bad = event("BLOCK_JOB_ERROR", Some(json!({"device": 1})));
    assert!(bad.parse::<BlockJobError>().expect("the same name").is_err());
    assert_eq!(<Stop as EventData>::NAME, "STOP");
    assert_eq!(<JobStatusChange as EventData>::NAME, "JOB_STATUS_CHANGE");
}
