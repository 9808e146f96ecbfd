//! Serialisation of argument structs (generated, and built with the hand-written extras) to
//! the exact JSON QEMU expects, and decoding of returns captured from QEMU 7.2 (the live check
//! is `tests/typed_real_qemu.rs`; other versions' shapes are `tests/version_skew.rs`).

use serde_json::{json, Map, Value};

use super::*;
// Named: `SchemaInfo` and `SchemaMeta` are in both globs (hand-written here, generated there).
use super::{QueryQmpSchema, SchemaInfo, SchemaMeta};
use crate::types::*;
use crate::Command;

/// The `arguments` a command sends, as JSON.
fn args<C: Command>(cmd: &C) -> Value {
    serde_json::to_value(cmd).expect("arguments serialise")
}

/// Decodes a return the way the client does.
fn ret<C: Command>(value: Value) -> C::Output {
    serde_json::from_value(value).expect("return decodes")
}

#[test]
fn commands_without_arguments_send_none() {
    assert_eq!(args(&QueryStatus), Value::Null);
    assert_eq!(args(&QueryVersion), Value::Null);
    assert_eq!(args(&QueryName), Value::Null);
    assert_eq!(args(&QueryCommands), Value::Null);
    assert_eq!(args(&QueryQmpSchema), Value::Null);
    assert_eq!(args(&Stop), Value::Null);
    assert_eq!(args(&Cont), Value::Null);
    assert_eq!(args(&SystemReset), Value::Null);
    assert_eq!(args(&SystemPowerdown), Value::Null);
    assert_eq!(args(&Quit), Value::Null);
    assert_eq!(args(&QueryFdsets), Value::Null);
    assert_eq!(args(&QueryBlock), Value::Null);
    assert_eq!(args(&QueryBlockJobs), Value::Null);
    assert_eq!(args(&QueryJobs), Value::Null);
    assert_eq!(args(&QueryMigrate), Value::Null);
    assert_eq!(args(&QueryYank), Value::Null);
}

#[test]
fn names_and_oob_flags() {
    assert_eq!(QmpCapabilities::NAME, "qmp_capabilities");
    assert_eq!(SystemReset::NAME, "system_reset");
    assert_eq!(HumanMonitorCommand::NAME, "human-monitor-command");
    assert_eq!(DeviceAdd::NAME, "device_add");
    assert_eq!(BlockdevMirror::NAME, "blockdev-mirror");
    const { assert!(QueryYank::ALLOW_OOB) };
    const { assert!(!QueryStatus::ALLOW_OOB) };
}

#[test]
fn control_and_misc_arguments() {
    assert_eq!(args(&QmpCapabilities::new()), json!({}));
    assert_eq!(args(&QmpCapabilities::with_oob()), json!({"enable": ["oob"]}));
    assert_eq!(args(&HumanMonitorCommand::new("info status")), json!({"command-line": "info status"}));
    let hmp = HumanMonitorCommand::new("info registers").cpu_index(1);
    assert_eq!(args(&hmp), json!({"command-line": "info registers", "cpu-index": 1}));
    assert_eq!(args(&Getfd::new("fd0")), json!({"fdname": "fd0"}));
    assert_eq!(args(&Closefd::new("fd0")), json!({"fdname": "fd0"}));
    assert_eq!(args(&AddFd::new()), json!({}));
    let add = AddFd::new().fdset_id(2).opaque("rdonly");
    assert_eq!(args(&add), json!({"fdset-id": 2, "opaque": "rdonly"}));
    assert_eq!(args(&RemoveFd::new(2)), json!({"fdset-id": 2}));
    assert_eq!(args(&RemoveFd::new(2).fd(9)), json!({"fdset-id": 2, "fd": 9}));
}

#[test]
fn device_and_qom_arguments() {
    assert_eq!(args(&DeviceAdd::new("usb-kbd")), json!({"driver": "usb-kbd"}));
    let dev = DeviceAdd::new("usb-kbd").id("kbd0").bus("xhci.0").property("port", "1");
    assert_eq!(args(&dev), json!({"driver": "usb-kbd", "id": "kbd0", "bus": "xhci.0", "port": "1"}));
    assert_eq!(args(&DeviceDel::new("kbd0")), json!({"id": "kbd0"}));
    assert_eq!(args(&QomList::new("/machine")), json!({"path": "/machine"}));
    assert_eq!(args(&QomGet::new("/machine", "type")), json!({"path": "/machine", "property": "type"}));
    assert_eq!(
        args(&QomSet::new("/objects/m", "size", 1024)),
        json!({"path": "/objects/m", "property": "size", "value": 1024})
    );
}

#[test]
fn block_arguments() {
    assert_eq!(
        args(&BlockdevAdd::file("f0", "/tmp/a.qcow2")),
        json!({"driver": "file", "node-name": "f0", "filename": "/tmp/a.qcow2"})
    );
    assert_eq!(
        args(&BlockdevAdd::raw("r0", "f0")),
        json!({"driver": "raw", "node-name": "r0", "file": "f0"})
    );
    assert_eq!(
        args(&BlockdevAdd::null_co("n0", 1 << 20)),
        json!({"driver": "null-co", "node-name": "n0", "size": 1048576, "read-zeroes": true})
    );
    assert_eq!(
        args(&BlockdevAdd::qcow2("q0", "f0").read_only(true)),
        json!({"driver": "qcow2", "node-name": "q0", "file": "f0", "read-only": true})
    );
    // A node defined inline rather than referred to by name.
    let file = BlockdevOptions::of(BlockdevOptionsBranch::File(BlockdevOptionsFile::new("/x")));
    let nested = BlockdevAdd::qcow2("q0", file);
    assert_eq!(args(&nested)["file"], json!({"driver": "file", "filename": "/x"}));
    // Any driver through its generated options.
    let debug = BlockdevOptionsBlkdebug::new(BlockdevRef::from("f0"))
        .inject_error(vec![BlkdebugInjectErrorOptions::new(BlkdebugEvent::ReadAio).errno(5)]);
    let debug = BlockdevAdd::node("dbg", BlockdevOptionsBranch::Blkdebug(Box::new(debug)));
    assert_eq!(
        args(&debug),
        json!({"driver": "blkdebug", "node-name": "dbg", "image": "f0",
               "inject-error": [{"event": "read_aio", "errno": 5}]})
    );
    assert_eq!(args(&BlockdevDel::new("q0")), json!({"node-name": "q0"}));
    assert_eq!(args(&QueryNamedBlockNodes::new()), json!({}));
    assert_eq!(args(&QueryNamedBlockNodes::new().flat(true)), json!({"flat": true}));
}

#[test]
fn job_arguments() {
    assert_eq!(args(&BlockStream::new("top0")), json!({"device": "top0"}));
    let stream = BlockStream::new("top0")
        .job_id("job0")
        .base_node("base0")
        .backing_file("base.qcow2")
        .bottom("mid0")
        .speed(1 << 20)
        .on_error(BlockdevOnError::Stop)
        .filter_node_name("flt")
        .auto_finalize(false)
        .auto_dismiss(false);
    assert_eq!(
        args(&stream),
        json!({"job-id": "job0", "device": "top0", "base-node": "base0", "backing-file": "base.qcow2",
               "bottom": "mid0", "speed": 1048576, "on-error": "stop", "filter-node-name": "flt",
               "auto-finalize": false, "auto-dismiss": false})
    );
    let commit = BlockCommit::new("top0").job_id("c0").base_node("base0").top_node("mid0").speed(0);
    assert_eq!(
        args(&commit),
        json!({"job-id": "c0", "device": "top0", "base-node": "base0", "top-node": "mid0", "speed": 0})
    );
    let mirror = BlockdevMirror::new("top0", "dst0", MirrorSyncMode::Full)
        .job_id("m0")
        .granularity(65536u32)
        .buf_size(1 << 20)
        .on_source_error(BlockdevOnError::Report)
        .on_target_error(BlockdevOnError::Enospc)
        .copy_mode(MirrorCopyMode::WriteBlocking);
    assert_eq!(
        args(&mirror),
        json!({"job-id": "m0", "device": "top0", "target": "dst0", "sync": "full", "granularity": 65536,
               "buf-size": 1048576, "on-source-error": "report", "on-target-error": "enospc",
               "copy-mode": "write-blocking"})
    );
    assert_eq!(args(&BlockJobCancel::new("j")), json!({"device": "j"}));
    assert_eq!(args(&BlockJobCancel::new("j").force(true)), json!({"device": "j", "force": true}));
    assert_eq!(args(&BlockJobPause::new("j")), json!({"device": "j"}));
    assert_eq!(args(&BlockJobResume::new("j")), json!({"device": "j"}));
    assert_eq!(args(&BlockJobSetSpeed::new("j", 5)), json!({"device": "j", "speed": 5}));
    assert_eq!(args(&JobFinalize::new("j")), json!({"id": "j"}));
    assert_eq!(args(&BlockJobComplete::new("j")), json!({"device": "j"}));
    assert_eq!(args(&BlockJobSetSpeed::new("j", 0)), json!({"device": "j", "speed": 0}));
    assert_eq!(args(&JobDismiss::new("j")), json!({"id": "j"}));
    assert_eq!(args(&DeviceDel::new("d")), json!({"id": "d"}));
    assert_eq!(args(&QomList::new("/")), json!({"path": "/"}));
    assert_eq!(args(&Getfd::new("f")), json!({"fdname": "f"}));
    assert_eq!(args(&Closefd::new("f")), json!({"fdname": "f"}));
}

#[test]
fn migration_and_transaction_arguments() {
    assert_eq!(args(&Migrate::new().uri("unix:/tmp/m")), json!({"uri": "unix:/tmp/m"}));
    assert_eq!(args(&Migrate::new().uri("tcp:h:1").resume(true)), json!({"uri": "tcp:h:1", "resume": true}));
    let tx = Transaction::new(vec![
        TransactionAction::abort(),
        TransactionAction::block_dirty_bitmap_add("n", "b"),
        TransactionAction::block_dirty_bitmap_remove("n", "b"),
        TransactionAction::block_dirty_bitmap_clear("n", "b"),
        TransactionAction::blockdev_snapshot_sync("n", "/s.qcow2", "qcow2"),
        TransactionAction::blockdev_snapshot("n", "o"),
        TransactionAction::blockdev_snapshot_internal_sync("d", "snap"),
        TransactionAction::blockdev_backup("b0", "n", "t", MirrorSyncMode::Full),
    ])
    .completion_mode(ActionCompletionMode::Grouped);
    assert_eq!(
        args(&tx),
        json!({
            "actions": [
                {"type": "abort", "data": {}},
                {"type": "block-dirty-bitmap-add", "data": {"node": "n", "name": "b"}},
                {"type": "block-dirty-bitmap-remove", "data": {"node": "n", "name": "b"}},
                {"type": "block-dirty-bitmap-clear", "data": {"node": "n", "name": "b"}},
                {"type": "blockdev-snapshot-sync",
                 "data": {"node-name": "n", "snapshot-file": "/s.qcow2", "format": "qcow2"}},
                {"type": "blockdev-snapshot", "data": {"node": "n", "overlay": "o"}},
                {"type": "blockdev-snapshot-internal-sync", "data": {"device": "d", "name": "snap"}},
                {"type": "blockdev-backup",
                 "data": {"job-id": "b0", "device": "n", "target": "t", "sync": "full"}},
            ],
            "properties": {"completion-mode": "grouped"},
        })
    );
    assert_eq!(args(&Transaction::new(vec![])), json!({"actions": []}));
}

#[test]
#[allow(deprecated)] // `singlestep`, which QEMU 8.1 deprecated
fn decodes_captured_run_state_returns() {
    let status = ret::<QueryStatus>(json!({"status": "running", "singlestep": false, "running": true}));
    assert_eq!(
        status,
        StatusInfo {
            running: true,
            singlestep: Some(false),
            status: RunState::Running,
            unknown_members: Map::new()
        }
    );
    assert_eq!(ret::<QueryName>(json!({})), NameInfo { name: None, unknown_members: Map::new() });
    assert_eq!(ret::<QueryName>(json!({"name": "vm1"})).name.as_deref(), Some("vm1"));
    let version = ret::<QueryVersion>(
        json!({"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}),
    );
    assert_eq!((version.qemu.major, version.qemu.minor, version.qemu.micro), (7, 2, 22));
    assert_eq!(ret::<HumanMonitorCommand>(json!("VM status: running\r\n")), "VM status: running\r\n");
    assert_eq!(ret::<Stop>(json!({})), crate::Empty);
}

#[test]
#[allow(deprecated)]
fn unknown_members_and_values_are_tolerated() {
    // A newer QEMU: an unknown run state, an extra member, `singlestep` dropped.
    let status = ret::<QueryStatus>(json!({"status": "hibernating", "running": false, "new-member": [1]}));
    assert_eq!(status.status, RunState::Other("hibernating".into()));
    assert_eq!(status.status.to_string(), "hibernating");
    assert_eq!(status.singlestep, None);
    assert_eq!(status.unknown_members["new-member"], json!([1]));
    // Unknown values and members round-trip unchanged.
    assert_eq!(serde_json::to_value(&status.status).unwrap(), json!("hibernating"));
    assert_eq!(
        serde_json::to_value(&status).unwrap(),
        json!({"status": "hibernating", "running": false, "new-member": [1]})
    );
    let jobs = ret::<QueryJobs>(json!([{"current-progress": 1, "status": "teleporting", "total-progress": 2,
                                        "type": "quantum", "id": "j", "extra": {"x": 1}}]));
    assert_eq!(jobs[0].type_, JobType::Other("quantum".into()));
    assert_eq!(jobs[0].status, JobStatus::Other("teleporting".into()));
    assert_eq!(jobs[0].unknown_members["extra"], json!({"x": 1}));
    let yank = ret::<QueryYank>(json!([{"type": "chardev", "id": "compat_monitor0"},
                                       {"type": "block-node", "node-name": "n0"},
                                       {"type": "migration"},
                                       {"type": "gpu", "slot": 3}]));
    assert!(matches!(&yank[0].branch, YankInstanceBranch::Chardev(c) if c.id == "compat_monitor0"));
    assert!(matches!(&yank[1].branch, YankInstanceBranch::BlockNode(b) if b.node_name == "n0"));
    assert_eq!(yank[2].branch, YankInstanceBranch::Migration);
    assert!(
        matches!(&yank[3].branch, YankInstanceBranch::Other { tag, members } if tag == "gpu" && members["slot"] == 3)
    );
    assert_eq!(serde_json::to_value(&yank[1]).unwrap(), json!({"type": "block-node", "node-name": "n0"}));
    assert_eq!(serde_json::to_value(&yank[3]).unwrap(), json!({"type": "gpu", "slot": 3}));
}

#[test]
fn wrong_types_are_errors_not_panics() {
    assert!(serde_json::from_value::<StatusInfo>(json!({"status": 3, "running": true})).is_err());
    assert!(serde_json::from_value::<Vec<YankInstance>>(json!([{"id": "x"}])).is_err());
    assert!(serde_json::from_value::<Vec<YankInstance>>(json!([{"type": "chardev"}])).is_err());
    assert!(serde_json::from_value::<Vec<SchemaInfo>>(json!([{"name": "x"}])).is_err());
}

#[test]
fn decodes_captured_block_returns() {
    // `query-named-block-nodes` from qemu-storage-daemon 7.2 (a qcow2 over its file node).
    let nodes = ret::<QueryNamedBlockNodes>(json!([{"iops_rd": 0, "detect_zeroes": "off", "image": {
        "backing-image": {"virtual-size": 67108864, "filename": "base.qcow2", "cluster-size": 65536,
            "format": "qcow2", "actual-size": 33820672, "format-specific": {"type": "qcow2", "data": {
            "compat": "1.1", "compression-type": "zlib", "lazy-refcounts": false, "refcount-bits": 16,
            "corrupt": false, "extended-l2": false}}, "dirty-flag": false},
        "backing-filename-format": "qcow2", "virtual-size": 67108864, "filename": "top.qcow2",
        "cluster-size": 65536, "format": "qcow2", "actual-size": 200704, "full-backing-filename": "base.qcow2",
        "backing-filename": "base.qcow2", "dirty-flag": false},
        "iops_wr": 0, "ro": false, "node-name": "top0", "backing_file_depth": 1, "drv": "qcow2", "iops": 0,
        "bps_wr": 0, "write_threshold": 0, "backing_file": "base.qcow2", "encrypted": false, "bps": 0,
        "bps_rd": 0, "cache": {"no-flush": false, "direct": false, "writeback": true}, "file": "top.qcow2"}]));
    let top = &nodes[0];
    assert_eq!(top.node_name.as_deref(), Some("top0"));
    assert_eq!(top.detect_zeroes, BlockdevDetectZeroesOptions::Off);
    assert_eq!(top.backing_file_depth, 1);
    assert!(top.cache.writeback && !top.cache.no_flush);
    assert_eq!((top.bps_max, top.iops_size, top.group.as_deref()), (None, None, None));
    assert!(top.unknown_members.is_empty(), "{:?}", top.unknown_members);
    let backing = top.image.backing_image.as_ref().expect("backing image");
    assert_eq!((backing.filename.as_str(), backing.virtual_size), ("base.qcow2", 67108864));
    let specific = backing.format_specific.as_ref().map(|s| &s.branch);
    assert!(
        matches!(specific, Some(ImageInfoSpecificBranch::Qcow2(q)) if q.data.compat == "1.1"),
        "{specific:?}"
    );

    let jobs = ret::<QueryBlockJobs>(json!([{"auto-finalize": true, "io-status": "ok", "device": "job0",
        "auto-dismiss": true, "busy": false, "len": 67108864, "offset": 524288, "status": "running",
        "paused": false, "speed": 1048576, "ready": false, "type": "stream"}]));
    assert_eq!(jobs[0].branch, BlockJobInfoBranch::Stream);
    assert_eq!(
        (jobs[0].status.clone(), jobs[0].io_status.clone()),
        (Some(JobStatus::Running), Some(BlockDeviceIoStatus::QapiOk))
    );
}

#[test]
fn decodes_migration_info() {
    assert_eq!(ret::<QueryMigrate>(json!({})), MigrationInfo::default());
    let info = ret::<QueryMigrate>(json!({"status": "completed", "total-time": 120, "downtime": 5,
        "setup-time": 1, "blocked-reasons": [],
        "ram": {"transferred": 10, "remaining": 0, "total": 10, "duplicate": 2, "skipped": 0, "normal": 1,
                "normal-bytes": 4096, "dirty-pages-rate": 0, "mbps": 12.5, "dirty-sync-count": 2,
                "postcopy-requests": 0, "page-size": 4096, "multifd-bytes": 0, "pages-per-second": 3,
                "precopy-bytes": 10, "downtime-bytes": 0, "postcopy-bytes": 0,
                "dirty-sync-missed-zero-copy": 0}}));
    assert_eq!(info.status, Some(MigrationStatus::Completed));
    assert_eq!(info.ram.as_ref().map(|r| r.mbps), Some(12.5));
}

#[test]
fn decodes_schema_entries_by_meta_type() {
    let schema = ret::<QueryQmpSchema>(json!([
        {"name": "query-status", "ret-type": "7", "meta-type": "command", "arg-type": "0"},
        {"name": "query-yank", "ret-type": "9", "meta-type": "command", "arg-type": "0", "allow-oob": true},
        {"name": "STOP", "meta-type": "event", "arg-type": "0"},
        {"name": "0", "members": [], "meta-type": "object"},
        {"name": "5", "members": [{"name": "enable", "default": null, "type": "[6]"},
                                   {"name": "x", "type": "int", "features": ["unstable"]}],
         "meta-type": "object", "tag": "x", "variants": [{"case": "a", "type": "0"}]},
        {"name": "6", "meta-type": "enum", "values": ["oob"], "members": [{"name": "oob"}]},
        {"name": "[6]", "element-type": "6", "meta-type": "array"},
        {"name": "int", "json-type": "int", "meta-type": "builtin"},
        {"name": "8", "members": [{"type": "str"}, {"type": "null"}], "meta-type": "alternate"},
        {"name": "drive-backup", "ret-type": "0", "meta-type": "command", "arg-type": "0",
         "features": ["deprecated"], "future": 1},
        {"name": "z", "meta-type": "hologram", "depth": 3},
    ]));
    assert!(matches!(&schema[0].meta, SchemaMeta::Command(c) if c.arg_type == "0" && !c.allow_oob));
    assert!(matches!(&schema[1].meta, SchemaMeta::Command(c) if c.allow_oob));
    assert!(matches!(&schema[2].meta, SchemaMeta::Event(e) if e.arg_type == "0"));
    let SchemaMeta::Object(obj) = &schema[4].meta else { panic!("object") };
    assert!(obj.members[0].is_optional() && !obj.members[1].is_optional());
    assert_eq!(obj.members[1].features, ["unstable"]);
    assert_eq!((obj.tag.as_deref(), obj.variants[0].case.as_str()), (Some("x"), "a"));
    assert!(matches!(&schema[5].meta, SchemaMeta::Enum(e) if e.values == ["oob"]));
    assert!(matches!(&schema[6].meta, SchemaMeta::Array(a) if a.element_type == "6"));
    assert!(matches!(&schema[7].meta, SchemaMeta::Builtin(b) if b.json_type == "int"));
    assert!(matches!(&schema[8].meta, SchemaMeta::Alternate(a) if a.members.len() == 2));
    assert!(schema[9].has_feature("deprecated"));
    assert!(matches!(&schema[9].meta, SchemaMeta::Command(c) if c.extra["future"] == 1));
    assert_eq!(schema[10].meta_type(), "hologram");
    assert!(matches!(&schema[10].meta, SchemaMeta::Other { members, .. } if members["depth"] == 3));
    // Serialising gives back what was decoded.
    let again: Vec<SchemaInfo> = serde_json::from_value(serde_json::to_value(&schema).unwrap()).unwrap();
    assert_eq!(again, schema);
}

#[test]
fn fdsets_and_qom_returns() {
    let sets = ret::<QueryFdsets>(json!([{"fdset-id": 1, "fds": [{"fd": 20, "opaque": "ro"}, {"fd": 21}]}]));
    assert_eq!((sets[0].fds[1].fd, sets[0].fds[1].opaque.as_deref()), (21, None));
    let added = ret::<AddFd>(json!({"fdset-id": 1, "fd": 20}));
    assert_eq!((added.fdset_id, added.fd), (1, 20));
    let props = ret::<QomList>(json!([{"name": "type", "type": "string"},
                                      {"name": "machine", "type": "child<none-machine>", "description": "d",
                                       "default-value": 0}]));
    assert_eq!(props[1].type_, "child<none-machine>");
    assert_eq!(props[1].default_value, Some(json!(0)));
    assert_eq!(ret::<QomGet>(json!("none-machine")), json!("none-machine"));
}
