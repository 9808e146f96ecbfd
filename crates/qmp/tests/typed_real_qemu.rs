//! Typed commands and events against real QEMU 7.2: every query's live return decodes into
//! its type, every argument struct matches the live schema, and the events QEMU sends decode
//! into their types. Each test starts its own `qemu-system-x86_64` or `qemu-storage-daemon`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use qmp::commands::*;
use qmp::events::{self, EventData, EventExt, QemuEvent};
use qmp::{Client, Command, Subscription};
use qmp_testkit::Peer;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);

async fn connect(peer: &Peer) -> Client {
    // The socket file exists from QEMU's bind(), a moment before its listen(): a connection
    // refused in between is retried (briefly), anything else fails the test.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Client::builder().timeout(T).connect(peer.socket(0)).await {
            Ok(client) => return client,
            Err(qmp::Error::Connect { source, .. })
                if source.kind() == std::io::ErrorKind::ConnectionRefused && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("connect to QEMU: {e:?}"),
        }
    }
}

/// The next event of type `E` on `sub`, skipping others. Every event seen on the way must
/// decode into its typed variant when this crate knows its name.
async fn next<E: EventData>(sub: &mut Subscription) -> E {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = sub.next_within(left).await.unwrap_or_else(|e| panic!("waiting for {}: {e}", E::NAME));
        let typed = QemuEvent::from_event(&event);
        if let QemuEvent::Other { name, data } = &typed {
            assert!(!KNOWN.contains(&name.as_str()), "{name} did not decode: {data}");
        }
        if let Some(parsed) = event.parse::<E>() {
            return parsed.unwrap_or_else(|e| panic!("{} data {:?}: {e}", E::NAME, event.data_value()));
        }
    }
}

/// The event names `QemuEvent` has a variant for.
const KNOWN: &[&str] = &[
    "SHUTDOWN",
    "POWERDOWN",
    "RESET",
    "STOP",
    "RESUME",
    "SUSPEND",
    "SUSPEND_DISK",
    "WAKEUP",
    "RTC_CHANGE",
    "WATCHDOG",
    "DEVICE_DELETED",
    "DEVICE_TRAY_MOVED",
    "BLOCK_IO_ERROR",
    "BLOCK_JOB_COMPLETED",
    "BLOCK_JOB_CANCELLED",
    "BLOCK_JOB_ERROR",
    "BLOCK_JOB_READY",
    "BALLOON_CHANGE",
    "VNC_CONNECTED",
    "VNC_INITIALIZED",
    "VNC_DISCONNECTED",
    "SPICE_CONNECTED",
    "SPICE_INITIALIZED",
    "SPICE_DISCONNECTED",
    "SPICE_MIGRATE_COMPLETED",
    "JOB_STATUS_CHANGE",
];

#[tokio::test]
async fn queries_decode_from_qemu_system() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu).await;

    let version = client.execute(QueryVersion).await.unwrap();
    assert_eq!(&version, &client.greeting().unwrap().version);
    assert_eq!((version.qemu.major, version.qemu.minor), (7, 2));

    let status = client.execute(QueryStatus).await.unwrap();
    assert_eq!(status, StatusInfo { running: true, singlestep: false, status: RunState::Running });
    assert_eq!(client.execute(QueryName).await.unwrap().name.as_deref(), Some("testvm"));

    let commands = client.execute(QueryCommands).await.unwrap();
    assert!(commands.len() > 150, "{} commands", commands.len());
    assert!(commands.iter().any(|c| c.name == "query-status"));

    assert_eq!(client.execute(QueryBlock).await.unwrap(), vec![]);
    assert_eq!(client.execute(QueryBlockJobs).await.unwrap(), vec![]);
    assert_eq!(client.execute(QueryJobs).await.unwrap(), vec![]);
    assert_eq!(client.execute(QueryMigrate).await.unwrap(), MigrationInfo::default());
    let yank = client.execute_oob(QueryYank).await.unwrap();
    assert!(yank.iter().all(|y| matches!(y, YankInstance::Chardev { .. })), "{yank:?}");

    let out = client.execute(HumanMonitorCommand::new("info status")).await.unwrap();
    assert_eq!(out, "VM status: running\r\n");

    let props = client.execute(QomList { path: "/machine".into() }).await.unwrap();
    assert!(props.iter().any(|p| p.name == "type" && p.kind == "string"), "{props:?}");
    assert_eq!(client.execute(QomGet::new("/machine", "type")).await.unwrap(), json!("none-machine"));
    client.execute(QomSet::new("/machine", "dump-guest-core", false)).await.unwrap();
    assert_eq!(client.execute(QomGet::new("/machine", "dump-guest-core")).await.unwrap(), json!(false));
}

#[tokio::test]
async fn fd_passing_commands_round_trip() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu).await;
    let file = tempfile::tempfile().unwrap();

    assert_eq!(client.execute(QueryFdsets).await.unwrap(), vec![]);
    let add = AddFd { fdset_id: None, opaque: Some("scratch".into()) };
    let info = client.execute_with_fds(add, &[file.as_fd()]).await.unwrap();
    let sets = client.execute(QueryFdsets).await.unwrap();
    assert_eq!(
        sets,
        vec![FdsetInfo {
            fdset_id: info.fdset_id,
            fds: vec![FdsetFdInfo { fd: info.fd, opaque: Some("scratch".into()) }]
        }]
    );
    client.execute(RemoveFd { fdset_id: info.fdset_id, fd: None }).await.unwrap();
    assert_eq!(client.execute(QueryFdsets).await.unwrap(), vec![]);

    client.execute_with_fds(Getfd { fdname: "fd0".into() }, &[file.as_fd()]).await.unwrap();
    client.execute(Closefd { fdname: "fd0".into() }).await.unwrap();
    let err = client.execute(Closefd { fdname: "fd0".into() }).await.unwrap_err();
    assert!(err.qmp_error().is_some(), "{err}");
}

#[tokio::test]
async fn run_state_commands_cause_typed_events() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu).await;
    let mut sub = client.events();

    client.execute(Stop).await.unwrap();
    let _: events::Stop = next(&mut sub).await;
    assert_eq!(client.execute(QueryStatus).await.unwrap().status, RunState::Paused);
    client.execute(Cont).await.unwrap();
    let _: events::Resume = next(&mut sub).await;
    client.execute(SystemReset).await.unwrap();
    let reset: events::Reset = next(&mut sub).await;
    assert_eq!(reset, events::Reset { guest: false, reason: events::ShutdownCause::HostQmpSystemReset });
    client.execute(SystemPowerdown).await.unwrap();
    let _: events::Powerdown = next(&mut sub).await;
    client.execute(Quit).await.unwrap();
    let shutdown: events::Shutdown = next(&mut sub).await;
    assert_eq!(shutdown, events::Shutdown { guest: false, reason: events::ShutdownCause::HostQmpQuit });
}

/// A `-machine pc` (never started: `-S`) with a USB controller, a CD drive and a VNC server
/// on a Unix socket under `dir`.
fn pc_with_devices(dir: &Path) -> Peer {
    let vnc = format!("unix:{}", dir.join("vnc").display());
    Peer::qemu_with(
        1,
        &[
            "-machine",
            "pc",
            "-S",
            "-vnc",
            &vnc,
            "-device",
            "qemu-xhci,id=xhci",
            "-drive",
            "if=none,id=cd0",
            "-device",
            "ide-cd,drive=cd0,id=cdrom0",
        ],
    )
}

#[tokio::test]
async fn device_commands_and_events() {
    let dir = qmp_testkit::tempdir();
    let qemu = pc_with_devices(dir.path());
    let client = connect(&qemu).await;
    let mut sub = client.events();

    client.execute(DeviceAdd::new("usb-kbd").id("kbd0").bus("xhci.0")).await.unwrap();
    let path = client.execute(QomGet::new("/machine/peripheral/kbd0", "type")).await.unwrap();
    assert_eq!(path, json!("usb-kbd"));
    client.execute(DeviceDel { id: "kbd0".into() }).await.unwrap();
    let deleted: events::DeviceDeleted = next(&mut sub).await;
    assert_eq!(deleted.device.as_deref(), Some("kbd0"));
    assert_eq!(deleted.path, "/machine/peripheral/kbd0");

    client.execute_raw("blockdev-open-tray", json!({"id": "cdrom0"})).await.unwrap();
    let tray: events::DeviceTrayMoved = next(&mut sub).await;
    assert_eq!(tray, events::DeviceTrayMoved { device: "cd0".into(), id: "cdrom0".into(), tray_open: true });
    let block = client.execute(QueryBlock).await.unwrap();
    let cd = block.iter().find(|b| b.device == "cd0").expect("cd0 in query-block");
    assert_eq!((cd.removable, cd.tray_open, cd.inserted.is_none()), (true, Some(true), true));
    assert_eq!(cd.qdev.as_deref(), Some("cdrom0"));

    // A VNC client that goes through the RFB handshake with no authentication.
    let vnc = dir.path().join("vnc");
    tokio::task::spawn_blocking(move || vnc_handshake(&vnc)).await.unwrap();
    let connected: events::VncConnected = next(&mut sub).await;
    assert_eq!(connected.server.auth.as_deref(), Some("none"));
    assert_eq!(connected.client.family, events::NetworkAddressFamily::Unix);
    let init: events::VncInitialized = next(&mut sub).await;
    assert_eq!(init.client.base, connected.client);
    let _: events::VncDisconnected = next(&mut sub).await;
}

/// Speaks RFB 3.8 up to ServerInit, then hangs up.
fn vnc_handshake(path: &Path) {
    let mut s = std::os::unix::net::UnixStream::connect(path).expect("connect to VNC");
    s.set_read_timeout(Some(T)).unwrap();
    let mut version = [0u8; 12];
    s.read_exact(&mut version).unwrap();
    assert_eq!(&version, b"RFB 003.008\n");
    s.write_all(b"RFB 003.008\n").unwrap();
    let mut types = [0u8; 2];
    s.read_exact(&mut types).unwrap();
    assert_eq!(types, [1, 1], "one security type: None");
    s.write_all(&[1]).unwrap();
    let mut result = [0u8; 4];
    s.read_exact(&mut result).unwrap();
    assert_eq!(result, [0; 4], "security handshake OK");
    s.write_all(&[1]).unwrap(); // ClientInit, shared
    let mut init = [0u8; 24];
    s.read_exact(&mut init).unwrap();
}

#[tokio::test]
async fn migration_to_a_file_reports_typed_progress() {
    let dir = qmp_testkit::tempdir();
    let qemu = Peer::qemu_with(1, &["-machine", "pc", "-S", "-m", "32"]);
    let client = connect(&qemu).await;
    let target = dir.path().join("state");
    client.execute(Migrate::new(format!("exec:cat > {}", target.display()))).await.unwrap();
    let deadline = Instant::now() + T;
    let info = loop {
        let info = client.execute(QueryMigrate).await.unwrap();
        match &info.status {
            Some(MigrationStatus::Completed) => break info,
            Some(MigrationStatus::Failed) => panic!("migration failed: {info:?}"),
            _ => assert!(Instant::now() < deadline, "migration did not complete: {info:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let ram = info.ram.clone().expect("ram statistics");
    assert!(ram.total >= 32 << 20 && ram.transferred > 0, "{ram:?}");
    assert_eq!(ram.page_size, 4096);
    assert!(info.total_time.is_some() && info.downtime.is_some(), "{info:?}");
    assert!(std::fs::metadata(&target).unwrap().len() > 0);
    assert_eq!(client.execute(QueryStatus).await.unwrap().status, RunState::Postmigrate);
}

/// The live schema, by name.
async fn schema(client: &Client) -> HashMap<SchemaStr, SchemaInfo> {
    let entries = client.execute(QueryQmpSchema).await.unwrap();
    entries.into_iter().map(|e| (e.name.clone(), e)).collect()
}

/// QEMU's own schema replies (qemu-system-x86_64 and qemu-storage-daemon) decode to the same
/// entries by `QueryQmpSchema`'s scanner as by serde's path, which every other command takes.
#[tokio::test]
async fn the_schema_scanner_agrees_with_serde_on_qemus_replies() {
    for peer in [Peer::qemu(1), Peer::storage_daemon(1)] {
        let client = connect(&peer).await;
        let raw = client.execute_raw_json("query-qmp-schema", &Value::Null).await.unwrap();
        // The reply as QEMU framed it (the client hands over only the `return`).
        let frame = format!("{{\"return\": {}, \"id\": 7}}", raw.get());
        let scanned = QueryQmpSchema::decode_reply(frame.as_bytes()).unwrap();
        let by_serde: Vec<SchemaInfo> = serde_json::from_str(raw.get()).unwrap();
        assert!(scanned.len() > 300, "{} entries", scanned.len());
        assert_eq!(scanned, by_serde);
        assert_eq!(client.execute(QueryQmpSchema).await.unwrap(), by_serde);
    }
}

/// The members of object type `name`, with whether each is optional.
fn members(schema: &HashMap<SchemaStr, SchemaInfo>, name: &str) -> Vec<(SchemaStr, bool)> {
    match &schema[name].meta {
        SchemaMeta::Object(o) => o.members.iter().map(|m| (m.name.clone(), m.is_optional())).collect(),
        other => panic!("{name} is not an object: {other:?}"),
    }
}

/// Checks `cmd` (with as many members set as possible) against the live schema: the name
/// exists, `ALLOW_OOB` matches, every member sent is one QEMU knows, every required member
/// is sent.
fn check<C: Command>(schema: &HashMap<SchemaStr, SchemaInfo>, cmd: &C) {
    let entry = schema.get(C::NAME).unwrap_or_else(|| panic!("{} is not in the schema", C::NAME));
    let SchemaMeta::Command(info) = &entry.meta else { panic!("{} is not a command", C::NAME) };
    assert_eq!(info.allow_oob, C::ALLOW_OOB, "{}: allow-oob", C::NAME);
    let sent = match serde_json::to_value(cmd).unwrap() {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map,
        other => panic!("{}: arguments must be an object: {other}", C::NAME),
    };
    let known = members(schema, &info.arg_type);
    for key in sent.keys() {
        assert!(known.iter().any(|(m, _)| m == key), "{}: QEMU has no member {key}", C::NAME);
    }
    for (m, optional) in &known {
        assert!(*optional || sent.contains_key(m.as_str()), "{}: required member {m} not sent", C::NAME);
    }
}

#[tokio::test]
async fn argument_structs_match_the_live_schema() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu).await;
    let s = schema(&client).await;
    assert!(s.len() > 1000, "{} schema entries", s.len());

    check(&s, &QmpCapabilities::with_oob());
    for_unit_commands(&s);
    check(&s, &HumanMonitorCommand { cpu_index: Some(0), ..HumanMonitorCommand::new("info status") });
    check(&s, &Getfd { fdname: "f".into() });
    check(&s, &Closefd { fdname: "f".into() });
    check(&s, &AddFd { fdset_id: Some(1), opaque: Some("o".into()) });
    check(&s, &RemoveFd { fdset_id: 1, fd: Some(3) });
    check(&s, &DeviceAdd::new("usb-kbd").id("k").bus("b"));
    check(&s, &DeviceDel { id: "k".into() });
    check(&s, &BlockdevDel::new("n"));
    check(&s, &QueryNamedBlockNodes { flat: Some(true) });
    let stream = BlockStream::new("d").job_id("j").base("b").base_node("b").backing_file("f").bottom("b");
    check(
        &s,
        &stream
            .speed(1)
            .on_error(BlockdevOnError::Stop)
            .filter_node_name("f")
            .auto_finalize(true)
            .auto_dismiss(true),
    );
    let commit = BlockCommit::new("d").job_id("j").base_node("b").base("b").top_node("t").top("t");
    check(
        &s,
        &commit
            .backing_file("f")
            .speed(1)
            .on_error(BlockdevOnError::Report)
            .filter_node_name("f")
            .auto_finalize(true)
            .auto_dismiss(true),
    );
    let mirror = BlockdevMirror::new("d", "t", MirrorSyncMode::Full)
        .job_id("j")
        .replaces("r")
        .speed(1)
        .granularity(512);
    let mirror =
        mirror.buf_size(1).on_source_error(BlockdevOnError::Ignore).on_target_error(BlockdevOnError::Auto);
    check(
        &s,
        &mirror
            .filter_node_name("f")
            .copy_mode(MirrorCopyMode::Background)
            .auto_finalize(true)
            .auto_dismiss(true),
    );
    check(&s, &BlockJobCancel::new("j").force(true));
    check(&s, &BlockJobPause { device: "j".into() });
    check(&s, &BlockJobResume { device: "j".into() });
    check(&s, &BlockJobSetSpeed { device: "j".into(), speed: 1 });
    check(&s, &BlockJobComplete { device: "j".into() });
    check(&s, &JobDismiss { id: "j".into() });
    check(&s, &Migrate::new("exec:true").blk(false).inc(false).detach(true).resume(false));
    check(&s, &QomList { path: "/".into() });
    check(&s, &QomGet::new("/", "type"));
    check(&s, &QomSet::new("/", "p", 1));
    check(
        &s,
        &Transaction::new(vec![TransactionAction::abort()]).completion_mode(ActionCompletionMode::Grouped),
    );

    // blockdev-add's arguments are a union over `driver`: check the helpers' members
    // against the common members and each driver's variant.
    let SchemaMeta::Command(add) = &s[BlockdevAdd::NAME].meta else { panic!("blockdev-add") };
    let SchemaMeta::Object(union) = &s[&add.arg_type].meta else { panic!("BlockdevOptions") };
    for cmd in [
        BlockdevAdd::file("n", "/f").read_only(true),
        BlockdevAdd::qcow2("n", "f"),
        BlockdevAdd::raw("n", "f"),
        BlockdevAdd::null_co("n", 1),
    ] {
        let driver = cmd.options["driver"].as_str().unwrap();
        let variant = union.variants.iter().find(|v| v.case == driver).expect("a driver QEMU knows");
        let mut known = members(&s, &add.arg_type);
        known.extend(members(&s, &variant.kind));
        for key in cmd.options.keys() {
            assert!(known.iter().any(|(m, _)| m == key), "blockdev-add {driver}: no member {key}");
        }
        for (m, optional) in &known {
            assert!(*optional || cmd.options.contains_key(m.as_str()), "blockdev-add {driver}: {m} missing");
        }
    }

    // Transaction actions: each helper's type is a case of the union, its data fits the
    // variant's `data` object.
    let SchemaMeta::Command(tx) = &s[Transaction::NAME].meta else { panic!("transaction") };
    let actions = members(&s, &tx.arg_type);
    assert!(actions.iter().any(|(m, opt)| m == "actions" && !opt));
    let SchemaMeta::Object(args) = &s[&tx.arg_type].meta else { panic!("transaction arguments") };
    let SchemaMeta::Array(list) = &s[&args.members[0].kind].meta else { panic!("actions list") };
    let SchemaMeta::Object(action) = &s[&list.element_type].meta else { panic!("TransactionAction") };
    for a in [
        TransactionAction::abort(),
        TransactionAction::block_dirty_bitmap_add("n", "b"),
        TransactionAction::block_dirty_bitmap_remove("n", "b"),
        TransactionAction::block_dirty_bitmap_clear("n", "b"),
        TransactionAction::blockdev_snapshot("n", "o"),
        TransactionAction::blockdev_snapshot_sync("n", "/f", "qcow2"),
        TransactionAction::blockdev_snapshot_internal_sync("d", "s"),
        TransactionAction::blockdev_backup("j", "d", "t", MirrorSyncMode::Full),
    ] {
        let variant = action.variants.iter().find(|v| v.case == a.kind).expect("an action QEMU knows");
        let wrapper = members(&s, &variant.kind);
        let SchemaMeta::Object(w) = &s[&variant.kind].meta else { panic!("wrapper") };
        assert_eq!(wrapper.len(), 1, "{}: a `data` wrapper", a.kind);
        let data = members(&s, &w.members[0].kind);
        for key in a.data.keys() {
            assert!(data.iter().any(|(m, _)| m == key), "{}: no member {key}", a.kind);
        }
        for (m, optional) in &data {
            assert!(*optional || a.data.contains_key(m.as_str()), "{}: {m} missing", a.kind);
        }
    }
}

/// The commands without arguments: each must exist with no required member.
fn for_unit_commands(s: &HashMap<SchemaStr, SchemaInfo>) {
    check(s, &QueryVersion);
    check(s, &QueryStatus);
    check(s, &QueryName);
    check(s, &QueryCommands);
    check(s, &QueryQmpSchema);
    check(s, &Stop);
    check(s, &Cont);
    check(s, &SystemReset);
    check(s, &SystemPowerdown);
    check(s, &Quit);
    check(s, &QueryFdsets);
    check(s, &QueryBlock);
    check(s, &QueryBlockJobs);
    check(s, &QueryJobs);
    check(s, &QueryMigrate);
    check(s, &QueryYank);
}

/// A value of schema type `name` with every member present (optional ones too, down to a
/// depth that stops recursive types), each of the simplest value of its type, the first
/// value of enums, and the first case of unions.
fn synth(s: &HashMap<SchemaStr, SchemaInfo>, name: &str, depth: usize) -> Value {
    match &s[name].meta {
        SchemaMeta::Builtin(b) => match b.json_type.as_str() {
            "int" => json!(7),
            "number" => json!(1.5),
            "string" => json!("x"),
            "boolean" => json!(true),
            "null" => Value::Null,
            _ => json!({"any": [1]}),
        },
        SchemaMeta::Enum(e) => json!(e.values[0]),
        SchemaMeta::Array(a) => json!([synth(s, &a.element_type, depth + 1)]),
        SchemaMeta::Alternate(a) => synth(s, &a.members[0].kind, depth),
        SchemaMeta::Object(o) => {
            let mut map = serde_json::Map::new();
            for m in &o.members {
                if !m.is_optional() || depth < 3 {
                    map.insert(m.name.to_string(), synth(s, &m.kind, depth + 1));
                }
            }
            if let Some(tag) = &o.tag {
                let case = map[tag.as_str()].as_str().unwrap().to_owned();
                if let Some(v) = o.variants.iter().find(|v| v.case == case) {
                    if let Value::Object(more) = synth(s, &v.kind, depth) {
                        map.extend(more);
                    }
                }
            }
            Value::Object(map)
        }
        other => panic!("{name}: not a type: {other:?}"),
    }
}

/// `C`'s output type decodes a return with every member QEMU 7.2 may send and encodes it
/// back unchanged: the type has exactly the schema's members, with compatible types.
fn check_return<C: Command>(s: &HashMap<SchemaStr, SchemaInfo>)
where
    C::Output: serde::Serialize,
{
    let SchemaMeta::Command(info) = &s[C::NAME].meta else { panic!("{} is not a command", C::NAME) };
    let sent = synth(s, &info.ret_type, 0);
    let decoded: C::Output =
        serde_json::from_value(sent.clone()).unwrap_or_else(|e| panic!("{} return {sent}: {e}", C::NAME));
    assert_eq!(serde_json::to_value(&decoded).unwrap(), sent, "{} return", C::NAME);
}

/// As [`check_return`], for an event's data, decoded through [`QemuEvent::from_event`].
fn check_event<E: EventData + serde::Serialize>(s: &HashMap<SchemaStr, SchemaInfo>) {
    let SchemaMeta::Event(info) = &s[E::NAME].meta else { panic!("{} is not an event", E::NAME) };
    let data = synth(s, &info.arg_type, 0);
    let line = json!({"event": E::NAME, "data": data, "timestamp": {"seconds": 1, "microseconds": 2}});
    let Ok(qmp::proto::Message::Event(event)) = qmp::proto::Message::from_slice(line.to_string().as_bytes())
    else {
        panic!("not an event: {line}")
    };
    assert!(!matches!(QemuEvent::from_event(&event), QemuEvent::Other { .. }), "{} data {data}", E::NAME);
    let typed: E = event.parse().unwrap().unwrap();
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, data, "{} data", E::NAME);
}

#[tokio::test]
async fn return_and_event_types_have_the_live_schema_members() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu).await;
    let s = schema(&client).await;

    check_return::<QueryVersion>(&s);
    check_return::<QueryStatus>(&s);
    check_return::<QueryName>(&s);
    check_return::<QueryCommands>(&s);
    check_return::<QueryQmpSchema>(&s);
    check_return::<HumanMonitorCommand>(&s);
    check_return::<AddFd>(&s);
    check_return::<QueryFdsets>(&s);
    check_return::<QueryYank>(&s);
    check_return::<QueryBlock>(&s);
    check_return::<QueryNamedBlockNodes>(&s);
    check_return::<QueryBlockJobs>(&s);
    check_return::<QueryJobs>(&s);
    check_return::<QueryMigrate>(&s);
    check_return::<QomList>(&s);
    check_return::<QomGet>(&s);

    check_event::<events::Shutdown>(&s);
    check_event::<events::Powerdown>(&s);
    check_event::<events::Reset>(&s);
    check_event::<events::Stop>(&s);
    check_event::<events::Resume>(&s);
    check_event::<events::Suspend>(&s);
    check_event::<events::SuspendDisk>(&s);
    check_event::<events::Wakeup>(&s);
    check_event::<events::RtcChange>(&s);
    check_event::<events::Watchdog>(&s);
    check_event::<events::DeviceDeleted>(&s);
    check_event::<events::DeviceTrayMoved>(&s);
    check_event::<events::BlockIoError>(&s);
    check_event::<events::BlockJobCompleted>(&s);
    check_event::<events::BlockJobCancelled>(&s);
    check_event::<events::BlockJobError>(&s);
    check_event::<events::BlockJobReady>(&s);
    check_event::<events::BalloonChange>(&s);
    check_event::<events::VncConnected>(&s);
    check_event::<events::VncInitialized>(&s);
    check_event::<events::VncDisconnected>(&s);
    check_event::<events::SpiceConnected>(&s);
    check_event::<events::SpiceInitialized>(&s);
    check_event::<events::SpiceDisconnected>(&s);
    check_event::<events::SpiceMigrateCompleted>(&s);
    check_event::<events::JobStatusChange>(&s);
    assert_eq!(KNOWN.len(), 26);
}

#[tokio::test]
async fn block_nodes_and_jobs_on_the_storage_daemon() {
    let qsd = Peer::storage_daemon(1);
    let client = connect(&qsd).await;
    let mut sub = client.events();

    let nodes = client.execute(QueryNamedBlockNodes::default()).await.unwrap();
    let top = nodes.iter().find(|n| n.node_name.as_deref() == Some("top0")).expect("top0");
    assert_eq!((top.drv.as_str(), top.ro, top.backing_file_depth), ("qcow2", false, 1));
    assert_eq!(top.image.virtual_size, 64 << 20);
    let backing = top.image.backing_image.as_ref().expect("the backing chain");
    assert_eq!(backing.format, "qcow2");
    assert!(backing.filename.ends_with("base.qcow2"));
    let flat = client.execute(QueryNamedBlockNodes { flat: Some(true) }).await.unwrap();
    assert!(flat.iter().all(|n| n.image.backing_image.is_none()));
    assert_eq!(client.execute(QueryBlock).await.unwrap(), vec![]);

    // Stream, rate-limited so it is still running while paused, resumed and cancelled.
    client.execute(BlockStream::new("top0").job_id("job0").speed(1 << 20)).await.unwrap();
    let change: events::JobStatusChange = next(&mut sub).await;
    assert_eq!((change.id.as_str(), change.status), ("job0", JobStatus::Created));
    let jobs = client.execute(QueryBlockJobs).await.unwrap();
    assert_eq!((jobs[0].device.as_str(), jobs[0].kind.as_str()), ("job0", JobType::Stream.as_str()));
    assert_eq!(
        (jobs[0].len, jobs[0].speed, jobs[0].io_status.clone()),
        (64 << 20, 1 << 20, BlockDeviceIoStatus::Ok)
    );
    let jobs = client.execute(QueryJobs).await.unwrap();
    assert_eq!((jobs[0].id.as_str(), jobs[0].kind.clone()), ("job0", JobType::Stream));
    client.execute(BlockJobSetSpeed { device: "job0".into(), speed: 1 << 19 }).await.unwrap();
    client.execute(BlockJobPause { device: "job0".into() }).await.unwrap();
    assert!(client.execute(QueryBlockJobs).await.unwrap()[0].paused);
    client.execute(BlockJobResume { device: "job0".into() }).await.unwrap();
    client.execute(BlockJobCancel::new("job0")).await.unwrap();
    let cancelled: events::BlockJobCancelled = next(&mut sub).await;
    assert_eq!(
        (cancelled.device.as_str(), cancelled.kind, cancelled.len),
        ("job0", JobType::Stream, 64 << 20)
    );
    assert_eq!(cancelled.speed, 1 << 19);

    // Mirror between two null nodes: ready at once, then completed on request.
    client.execute(BlockdevAdd::null_co("n0", 1 << 20)).await.unwrap();
    client.execute(BlockdevAdd::null_co("n1", 1 << 20)).await.unwrap();
    client.execute(BlockdevMirror::new("n0", "n1", MirrorSyncMode::Full).job_id("m0")).await.unwrap();
    let ready: events::BlockJobReady = next(&mut sub).await;
    assert_eq!((ready.device.as_str(), ready.kind, ready.len), ("m0", JobType::Mirror, 1 << 20));
    client.execute(BlockJobComplete { device: "m0".into() }).await.unwrap();
    let done: events::BlockJobCompleted = next(&mut sub).await;
    assert_eq!((done.device.as_str(), done.kind, done.error), ("m0", JobType::Mirror, None));

    // Active commit kept after it concludes, then dismissed.
    let commit = BlockCommit::new("top0").job_id("c0").auto_dismiss(false);
    client.execute(commit).await.unwrap();
    let _: events::BlockJobReady = next(&mut sub).await;
    client.execute(BlockJobComplete { device: "c0".into() }).await.unwrap();
    loop {
        let change: events::JobStatusChange = next(&mut sub).await;
        if change.id == "c0" && change.status == JobStatus::Concluded {
            break;
        }
    }
    assert_eq!(client.execute(QueryJobs).await.unwrap()[0].status, JobStatus::Concluded);
    client.execute(JobDismiss { id: "c0".into() }).await.unwrap();
    assert_eq!(client.execute(QueryJobs).await.unwrap(), vec![]);

    // Transactions: all or nothing.
    let failing = Transaction::new(vec![
        TransactionAction::block_dirty_bitmap_add("n0", "b0"),
        TransactionAction::abort(),
    ]);
    assert!(client.execute(failing).await.unwrap_err().qmp_error().is_some());
    let bitmaps = |nodes: Vec<BlockDeviceInfo>| {
        let n0 = nodes.into_iter().find(|n| n.node_name.as_deref() == Some("n0")).expect("n0");
        n0.dirty_bitmaps.unwrap_or_default()
    };
    assert!(bitmaps(client.execute(QueryNamedBlockNodes::default()).await.unwrap()).is_empty());
    let adding = Transaction::new(vec![
        TransactionAction::block_dirty_bitmap_add("n0", "b0"),
        TransactionAction::block_dirty_bitmap_clear("n0", "b0"),
    ]);
    client.execute(adding).await.unwrap();
    let found = bitmaps(client.execute(QueryNamedBlockNodes::default()).await.unwrap());
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].name.as_deref(), found[0].count, found[0].recording), (Some("b0"), 0, true));
    client
        .execute(Transaction::new(vec![TransactionAction::block_dirty_bitmap_remove("n0", "b0")]))
        .await
        .unwrap();

    client.execute(BlockdevDel::new("n1")).await.unwrap();
    let err = client.execute(BlockdevDel::new("n1")).await.unwrap_err();
    assert!(err.qmp_error().is_some(), "{err}");
}

#[tokio::test]
async fn a_failing_block_job_reports_typed_errors() {
    let qsd = Peer::storage_daemon(1);
    let client = connect(&qsd).await;
    let mut sub = client.events();
    let base = qsd.dir().join("base.qcow2");
    let top = qsd.dir().join("top.qcow2");
    // A second view of the chain whose base reads fail (blkdebug injects EIO).
    client.execute(BlockdevAdd::file("bf", base.to_str().unwrap()).read_only(true)).await.unwrap();
    let failing = BlockdevAdd::new("blkdebug", "dbg")
        .set("image", "bf")
        .set("inject-error", json!([{"event": "read_aio", "errno": 5, "immediately": false}]));
    client.execute(failing).await.unwrap();
    client.execute(BlockdevAdd::qcow2("base1", "dbg").read_only(true)).await.unwrap();
    client.execute(BlockdevAdd::file("tf", top.to_str().unwrap()).set("locking", "off")).await.unwrap();
    let top1 = BlockdevAdd::qcow2("top1", "tf").set("backing", "base1");
    client.execute(top1).await.unwrap();

    client.execute(BlockStream::new("top1").job_id("err0").on_error(BlockdevOnError::Report)).await.unwrap();
    let error: events::BlockJobError = next(&mut sub).await;
    assert_eq!(
        error,
        events::BlockJobError {
            device: "err0".into(),
            operation: events::IoOperationType::Read,
            action: events::BlockErrorAction::Report,
        }
    );
    let done: events::BlockJobCompleted = next(&mut sub).await;
    assert_eq!((done.device.as_str(), done.kind), ("err0", JobType::Stream));
    assert_eq!(done.error.as_deref(), Some("Input/output error"));
}
