//! Version skew: replies and events in the shapes of QEMU 7.2, 8.x and 9.x decode into the
//! generated types, and so does what no version in the model has (an enum value, a member, a
//! union variant, an alternative), kept as sent. Each reply goes through the command's own
//! `decode_reply`, as the client's; each event through `QemuEvent::from_event` and
//! `EventExt::parse`. The JSON is written here, in the shape each version sends.

use qmp::commands::{QueryBlockJobs, QueryJobs, QueryMigrate, QueryStatus, QueryYank};
use qmp::events::{BlockIoError, EventExt, JobStatusChange, Migration, QemuEvent};
use qmp::proto::{Event, Message};
use qmp::serde_json::{self, json, Value};
use qmp::types::*;
use qmp::Command;

/// Decodes `ret` as the `return` of `C`, the way the client does.
fn reply<C: Command>(ret: Value) -> C::Output {
    let frame = json!({"return": ret, "id": 1}).to_string();
    C::decode_reply(frame.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", C::NAME))
}

/// An event as the client receives it.
fn event(name: &str, data: Value) -> Event {
    let line = json!({"timestamp": {"seconds": 1, "microseconds": 2}, "event": name, "data": data});
    match Message::from_slice(line.to_string().as_bytes()) {
        Ok(Message::Event(e)) => e,
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
#[allow(deprecated)] // `singlestep`
fn query_status_with_and_without_singlestep() {
    // 7.2 and 8.x send `singlestep` (deprecated in 8.1); 9.0 removed it.
    let old = reply::<QueryStatus>(json!({"status": "running", "singlestep": false, "running": true}));
    assert_eq!((old.running, old.singlestep, old.status.clone()), (true, Some(false), RunState::Running));
    let new = reply::<QueryStatus>(json!({"status": "paused", "running": false}));
    assert_eq!((new.running, new.singlestep, new.status.clone()), (false, None, RunState::Paused));
    assert!(old.unknown_members.is_empty() && new.unknown_members.is_empty());
    // Encoding leaves out what was absent: a 9.x reply round-trips as it came.
    assert_eq!(serde_json::to_value(&new).unwrap(), json!({"status": "paused", "running": false}));
}

#[test]
fn members_and_values_that_newer_versions_added() {
    // 9.1 added `postcopy-recover-setup`; 8.1 added the dirty-limit members.
    let info = reply::<QueryMigrate>(json!({"status": "postcopy-recover-setup",
        "dirty-limit-throttle-time-per-round": 10, "dirty-limit-ring-full-time": 20}));
    assert_eq!(info.status, Some(MigrationStatus::PostcopyRecoverSetup));
    assert_eq!(
        (info.dirty_limit_throttle_time_per_round, info.dirty_limit_ring_full_time),
        (Some(10), Some(20))
    );
    assert!(info.unknown_members.is_empty(), "{info:?}");
    // The same reply from 7.2, without them.
    let info = reply::<QueryMigrate>(json!({"status": "active"}));
    assert_eq!(
        (info.status, info.dirty_limit_throttle_time_per_round),
        (Some(MigrationStatus::Active), None)
    );

    // query-block-jobs became a union on `type` in 8.2: a mirror job carries `actively-synced`.
    let jobs =
        reply::<QueryBlockJobs>(json!([{"type": "mirror", "device": "m0", "len": 1024, "offset": 1024,
        "busy": false, "paused": false, "speed": 0, "io-status": "ok", "ready": true, "status": "ready",
        "auto-finalize": true, "auto-dismiss": true, "actively-synced": true}]));
    assert!(matches!(&jobs[0].branch, BlockJobInfoBranch::Mirror(m) if m.actively_synced), "{jobs:?}");
    assert_eq!((jobs[0].device.as_deref(), jobs[0].ready), (Some("m0"), Some(true)));
    // A 7.2 mirror job: BlockJobInfo was a plain struct then, without `actively-synced`. The
    // base members decode; the branch keeps the value under its tag.
    let old = json!({"type": "mirror", "device": "m0", "len": 1024, "offset": 1024, "busy": false,
        "paused": false, "speed": 0, "io-status": "ok", "ready": true, "status": "ready",
        "auto-finalize": true, "auto-dismiss": true});
    let jobs = reply::<QueryBlockJobs>(json!([old.clone()]));
    assert_eq!((jobs[0].device.as_deref(), jobs[0].ready), (Some("m0"), Some(true)));
    assert!(matches!(&jobs[0].branch, BlockJobInfoBranch::Other { tag, .. } if tag == "mirror"), "{jobs:?}");
    assert_eq!(serde_json::to_value(&jobs[0]).unwrap(), old, "sent back as it came");
    // A 7.2 stream job: the same members, no variant members.
    let jobs = reply::<QueryBlockJobs>(json!([{"type": "stream", "device": "s0", "len": 1024, "offset": 0,
        "busy": true, "paused": false, "speed": 0, "io-status": "ok", "ready": false, "status": "running",
        "auto-finalize": true, "auto-dismiss": true}]));
    assert_eq!(
        (&jobs[0].branch, jobs[0].status.clone()),
        (&BlockJobInfoBranch::Stream, Some(JobStatus::Running))
    );
}

#[test]
fn what_no_version_knows_is_kept() {
    // An enum value and a member that no QEMU in the model has.
    let status = reply::<QueryStatus>(json!({"status": "hibernating", "running": false, "temperature": 41}));
    assert_eq!(status.status, RunState::Other("hibernating".into()));
    assert_eq!(status.unknown_members["temperature"], 41);
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"status": "hibernating", "running": false, "temperature": 41}),
        "sent back as it came"
    );
    let jobs = reply::<QueryJobs>(json!([{"id": "j0", "type": "teleport", "status": "beaming",
        "current-progress": 1, "total-progress": 2, "eta": 5}]));
    assert_eq!(
        (&jobs[0].type_, &jobs[0].status),
        (&JobType::Other("teleport".into()), &JobStatus::Other("beaming".into()))
    );
    assert_eq!(jobs[0].unknown_members["eta"], 5);

    // A union variant no version has: its members kept with its tag.
    let yank = reply::<QueryYank>(json!([{"type": "gpu", "slot": 3}, {"type": "migration"}]));
    let YankInstanceBranch::Other { tag, members } = &yank[0].branch else { panic!("{yank:?}") };
    assert_eq!((tag.as_str(), &members["slot"]), ("gpu", &json!(3)));
    assert_eq!(yank[1].branch, YankInstanceBranch::Migration);
    assert_eq!(serde_json::to_value(&yank[0]).unwrap(), json!({"type": "gpu", "slot": 3}));
    // A block job of a type no version has: the union's base members decode, the rest is kept.
    let jobs = reply::<QueryBlockJobs>(json!([{"type": "defrag", "device": "d0", "len": 8, "offset": 1,
        "busy": true, "paused": false, "speed": 0, "io-status": "ok", "ready": false, "status": "running",
        "auto-finalize": true, "auto-dismiss": true, "fragments": 12}]));
    assert_eq!(jobs[0].device.as_deref(), Some("d0"));
    assert!(
        matches!(&jobs[0].branch, BlockJobInfoBranch::Other { tag, members } if tag == "defrag" && members["fragments"] == 12),
        "{jobs:?}"
    );

    // An alternative of no known JSON type.
    let r: BlockdevRef = serde_json::from_value(json!(17)).unwrap();
    assert_eq!(r, BlockdevRef::Other(json!(17)));
}

#[test]
fn an_older_qemus_event_without_a_later_member_is_still_typed() {
    // BLOCK_IO_ERROR gained `qom-path` late (optional in the model): 7.2 and 8.x send none.
    let old = event(
        "BLOCK_IO_ERROR",
        json!({"device": "d0", "node-name": "n0", "operation": "read", "action": "report", "reason": "EIO"}),
    );
    let QemuEvent::BlockIoError(e) = QemuEvent::from_event(&old) else { panic!("not typed: {old:?}") };
    assert_eq!((e.qom_path, e.device.as_str(), e.operation), (None, "d0", IoOperationType::Read));
    let new = event(
        "BLOCK_IO_ERROR",
        json!({"qom-path": "/machine/peripheral/disk0", "device": "", "node-name": "n0", "operation": "write",
               "action": "stop", "nospace": true, "reason": "ENOSPC"}),
    );
    let e: BlockIoError = new.parse().expect("the name").expect("the data");
    assert_eq!((e.qom_path.as_deref(), e.nospace), (Some("/machine/peripheral/disk0"), Some(true)));
    assert!(e.unknown_members.is_empty(), "{e:?}");
}

#[test]
fn events_keep_what_no_version_knows() {
    let e = event("JOB_STATUS_CHANGE", json!({"id": "j0", "status": "levitating", "reason": "magnets"}));
    let change: JobStatusChange = e.parse().unwrap().unwrap();
    assert_eq!(change.status, JobStatus::Other("levitating".into()));
    assert_eq!(change.unknown_members["reason"], "magnets");
    assert!(matches!(QemuEvent::from_event(&e), QemuEvent::JobStatusChange(_)));
    // A value 9.1 added, in an event.
    let m: Migration =
        event("MIGRATION", json!({"status": "postcopy-recover-setup"})).parse().unwrap().unwrap();
    assert_eq!(m.status, MigrationStatus::PostcopyRecoverSetup);
    // An event no version has.
    let e = event("TIME_TRAVEL", json!({"year": 1985}));
    assert_eq!(
        QemuEvent::from_event(&e),
        QemuEvent::Other { name: "TIME_TRAVEL".into(), data: json!({"year": 1985}) }
    );
}
