//! Typed commands and events (generated from QEMU's QAPI schema, with the hand-written
//! extras) against real QEMU 7.2: returns decode into their types, argument structs match the
//! live schema, and the events QEMU sends in real flows (run state, devices, block jobs,
//! backup with a manual finalize, migration) decode into their typed variants. Each test
//! starts its own `qemu-system-x86_64` or `qemu-storage-daemon`.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use qmp::commands::*;
// Named: the schema types are both hand-written (commands) and generated (types).
use qmp::commands::{QueryQmpSchema, SchemaInfo, SchemaMeta, SchemaStr};
// Named: a boxed command (commands) wraps its arguments' type of the same name (types).
use qmp::commands::BlockdevBackup;
use qmp::events::{self, EventData, EventExt, QemuEvent};
use qmp::types::*;
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
/// decode into its typed variant: the generated events cover every event QEMU 7.2 has.
async fn next<E: EventData>(sub: &mut Subscription) -> E {
    let deadline = Instant::now() + T;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = sub.next_within(left).await.unwrap_or_else(|e| panic!("waiting for {}: {e}", E::NAME));
        if let QemuEvent::Other { name, data } = QemuEvent::from_event(&event) {
            panic!("{name} did not decode into its typed variant: {data}");
        }
        if let Some(parsed) = event.parse::<E>() {
            return parsed.unwrap_or_else(|e| panic!("{} data {:?}: {e}", E::NAME, event.data_value()));
        }
    }
}

/// The next event on `sub`, decoded (it must not be `Other`).
async fn next_any(sub: &mut Subscription) -> QemuEvent {
    let event = sub.next_within(T).await.unwrap_or_else(|e| panic!("waiting for an event: {e}"));
    let typed = QemuEvent::from_event(&event);
    assert!(!matches!(typed, QemuEvent::Other { .. }), "{typed:?} did not decode");
    typed
}

#[tokio::test]
async fn queries_decode_from_qemu_system() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu).await;

    let version = client.execute(QueryVersion).await.unwrap();
    let greeting = &client.greeting().unwrap().version;
    assert_eq!(
        (version.qemu.major, version.qemu.minor, version.qemu.micro, version.package.as_str()),
        (greeting.qemu.major, greeting.qemu.minor, greeting.qemu.micro, greeting.package.as_str())
    );
    assert_eq!((version.qemu.major, version.qemu.minor), (7, 2));

    let status = client.execute(QueryStatus).await.unwrap();
    // 7.2 still sends `singlestep` (removed in 9.0): present, and nothing unknown.
    #[allow(deprecated)]
    let singlestep = status.singlestep;
    assert_eq!((status.running, singlestep, status.status.clone()), (true, Some(false), RunState::Running));
    assert!(status.unknown_members.is_empty(), "{status:?}");
    assert_eq!(client.execute(QueryName).await.unwrap().name.as_deref(), Some("testvm"));

    let commands = client.execute(QueryCommands).await.unwrap();
    assert!(commands.len() > 150, "{} commands", commands.len());
    assert!(commands.iter().any(|c| c.name == "query-status"));

    assert_eq!(client.execute(QueryBlock).await.unwrap(), vec![]);
    assert_eq!(client.execute(QueryBlockJobs).await.unwrap(), vec![]);
    assert_eq!(client.execute(QueryJobs).await.unwrap(), vec![]);
    assert_eq!(client.execute(QueryMigrate).await.unwrap(), MigrationInfo::default());
    let yank = client.call(QueryYank).oob().send().await.unwrap();
    assert!(yank.iter().all(|y| matches!(y.branch, YankInstanceBranch::Chardev(_))), "{yank:?}");

    let out = client.execute(HumanMonitorCommand::new("info status")).await.unwrap();
    assert_eq!(out, "VM status: running\r\n");

    let props = client.execute(QomList::new("/machine")).await.unwrap();
    assert!(props.iter().any(|p| p.name == "type" && p.type_ == "string"), "{props:?}");
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
    let add = AddFd::new().opaque("scratch");
    let info = client.call(add).fds(&[file.as_fd()]).send().await.unwrap();
    let sets = client.execute(QueryFdsets).await.unwrap();
    let fds: Vec<_> = sets.iter().map(|s| (s.fdset_id, s.fds.len())).collect();
    assert_eq!(fds, [(info.fdset_id, 1)], "{sets:?}");
    assert_eq!((sets[0].fds[0].fd, sets[0].fds[0].opaque.as_deref()), (info.fd, Some("scratch")));
    client.execute(RemoveFd::new(info.fdset_id)).await.unwrap();
    assert_eq!(client.execute(QueryFdsets).await.unwrap(), vec![]);

    client.call(Getfd::new("fd0")).fds(&[file.as_fd()]).send().await.unwrap();
    client.execute(Closefd::new("fd0")).await.unwrap();
    let err = client.execute(Closefd::new("fd0")).await.unwrap_err();
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
    assert_eq!((reset.guest, reset.reason), (false, ShutdownCause::HostQmpSystemReset));
    client.execute(SystemPowerdown).await.unwrap();
    let _: events::Powerdown = next(&mut sub).await;
    client.execute(Quit).await.unwrap();
    let shutdown: events::Shutdown = next(&mut sub).await;
    assert_eq!((shutdown.guest, shutdown.reason), (false, ShutdownCause::HostQmpQuit));
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
    // A USB device unplugs without the guest's help: DEVICE_DELETED comes at once.
    client.execute(DeviceDel::new("kbd0")).await.unwrap();
    let deleted: events::DeviceDeleted = next(&mut sub).await;
    assert_eq!(deleted.device.as_deref(), Some("kbd0"));
    assert_eq!(deleted.path, "/machine/peripheral/kbd0");
    assert!(deleted.unknown_members.is_empty(), "{deleted:?}");
    let gone = client.execute(QomGet::new("/machine/peripheral/kbd0", "type")).await.unwrap_err();
    assert!(gone.qmp_error().is_some(), "{gone}");

    client.call_raw("blockdev-open-tray", json!({"id": "cdrom0"})).send().await.unwrap();
    let tray: events::DeviceTrayMoved = next(&mut sub).await;
    assert_eq!((tray.device.as_str(), tray.id.as_str(), tray.tray_open), ("cd0", "cdrom0", true));
    let block = client.execute(QueryBlock).await.unwrap();
    let cd = block.iter().find(|b| b.device == "cd0").expect("cd0 in query-block");
    assert_eq!((cd.removable, cd.tray_open, cd.inserted.is_none()), (true, Some(true), true));
    assert_eq!(cd.qdev.as_deref(), Some("cdrom0"));

    // A VNC client that goes through the RFB handshake with no authentication.
    let vnc = dir.path().join("vnc");
    tokio::task::spawn_blocking(move || vnc_handshake(&vnc)).await.unwrap();
    let connected: events::VncConnected = next(&mut sub).await;
    assert_eq!(connected.server.auth.as_deref(), Some("none"));
    assert_eq!(connected.client.family, NetworkAddressFamily::Unix);
    let init: events::VncInitialized = next(&mut sub).await;
    let (c, i) = (&connected.client, &init.client);
    assert_eq!((&i.host, &i.service, &i.family, i.websocket), (&c.host, &c.service, &c.family, c.websocket));
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
    client.execute(Migrate::new().uri(format!("exec:cat > {}", target.display()))).await.unwrap();
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

/// With the `events` capability, a migration reports each state as a typed MIGRATION event
/// and each RAM pass as a typed MIGRATION_PASS; `query-migrate` decodes at the end.
#[tokio::test]
async fn migration_with_the_events_capability_sends_typed_events() {
    let qemu = Peer::qemu_with(1, &["-machine", "pc", "-S", "-accel", "tcg", "-m", "32"]);
    let client = connect(&qemu).await;
    let caps = vec![MigrationCapabilityStatus::new(MigrationCapability::Events, true)];
    client.execute(MigrateSetCapabilities::new(caps)).await.unwrap();
    let on = client.execute(QueryMigrateCapabilities).await.unwrap();
    assert!(on.iter().any(|c| c.capability == MigrationCapability::Events && c.state), "{on:?}");

    let mut sub = client.subscribe(qmp::EventFilter::names(["MIGRATION", "MIGRATION_PASS"]));
    client.execute(Migrate::new().uri("exec:cat > /dev/null")).await.unwrap();
    let (mut states, mut passes) = (Vec::new(), Vec::new());
    while states.last() != Some(&MigrationStatus::Completed) {
        match next_any(&mut sub).await {
            QemuEvent::Migration(m) => {
                assert!(m.unknown_members.is_empty(), "{m:?}");
                assert!(m.status != MigrationStatus::Failed, "migration failed after {states:?}");
                states.push(m.status);
            }
            QemuEvent::MigrationPass(p) => passes.push(p.pass),
            other => panic!("not asked for: {other:?}"),
        }
    }
    // QEMU 7.2 on a stopped guest: setup, active, device (the final stage), completed.
    assert_eq!(states.first(), Some(&MigrationStatus::Setup), "{states:?}");
    assert!(states.contains(&MigrationStatus::Active), "{states:?}");
    assert!(states.iter().all(|s| !matches!(s, MigrationStatus::Other(_))), "{states:?}");
    assert!(!passes.is_empty() && passes[0] == 1, "passes {passes:?}");
    assert!(passes.windows(2).all(|w| w[1] == w[0] + 1), "passes {passes:?}");

    let info = client.execute(QueryMigrate).await.unwrap();
    assert_eq!(info.status, Some(MigrationStatus::Completed));
    let ram = info.ram.expect("ram statistics");
    assert!(ram.total >= 32 << 20 && ram.transferred > 0, "{ram:?}");
    assert_eq!(ram.dirty_sync_count, *passes.last().unwrap(), "one dirty sync per pass");
    assert!(info.total_time.is_some() && info.unknown_members.is_empty());
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
        let raw = client.call_raw("query-qmp-schema", &Value::Null).raw_json().send().await.unwrap();
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
#[allow(deprecated)] // `migrate`'s `blk` and `inc`, deprecated in 8.2 but still in 7.2
async fn argument_structs_match_the_live_schema() {
    let qemu = Peer::qemu(1);
    let client = connect(&qemu).await;
    let s = schema(&client).await;
    assert!(s.len() > 1000, "{} schema entries", s.len());

    check(&s, &QmpCapabilities::with_oob());
    for_unit_commands(&s);
    check(&s, &HumanMonitorCommand::new("info status").cpu_index(0));
    check(&s, &Getfd::new("f"));
    check(&s, &Closefd::new("f"));
    check(&s, &AddFd::new().fdset_id(1).opaque("o"));
    check(&s, &RemoveFd::new(1).fd(3));
    check(&s, &DeviceAdd::new("usb-kbd").id("k").bus("b"));
    check(&s, &DeviceDel::new("k"));
    check(&s, &BlockdevDel::new("n"));
    check(&s, &QueryNamedBlockNodes::new().flat(true));
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
        .granularity(512u32);
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
    check(&s, &BlockJobPause::new("j"));
    check(&s, &BlockJobResume::new("j"));
    check(&s, &BlockJobSetSpeed::new("j", 1));
    check(&s, &BlockJobComplete::new("j"));
    check(&s, &JobDismiss::new("j"));
    check(&s, &JobFinalize::new("j"));
    let backup = qmp::types::BlockdevBackup::new("d", MirrorSyncMode::Full, "t").job_id("j");
    check(&s, &BlockdevBackup(backup.auto_finalize(false).auto_dismiss(true)));
    check(
        &s,
        &MigrateSetCapabilities::new(vec![MigrationCapabilityStatus::new(MigrationCapability::Events, true)]),
    );
    check(&s, &Migrate::new().uri("exec:true").blk(false).inc(false).detach(true).resume(false));
    check(&s, &QomList::new("/"));
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
        let Value::Object(options) = serde_json::to_value(&cmd).unwrap() else { panic!("an object") };
        let driver = options["driver"].as_str().unwrap();
        let variant = union.variants.iter().find(|v| v.case == driver).expect("a driver QEMU knows");
        let mut known = members(&s, &add.arg_type);
        known.extend(members(&s, &variant.kind));
        for key in options.keys() {
            assert!(known.iter().any(|(m, _)| m == key), "blockdev-add {driver}: no member {key}");
        }
        for (m, optional) in &known {
            assert!(*optional || options.contains_key(m.as_str()), "blockdev-add {driver}: {m} missing");
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
        let sent = serde_json::to_value(&a).unwrap();
        let kind = sent["type"].as_str().expect("a type").to_owned();
        let Some(Value::Object(sent_data)) = sent.get("data") else { panic!("{kind}: data {sent}") };
        let variant = action.variants.iter().find(|v| v.case == kind).expect("an action QEMU knows");
        let wrapper = members(&s, &variant.kind);
        let SchemaMeta::Object(w) = &s[&variant.kind].meta else { panic!("wrapper") };
        assert_eq!(wrapper.len(), 1, "{kind}: a `data` wrapper");
        let data = members(&s, &w.members[0].kind);
        for key in sent_data.keys() {
            assert!(data.iter().any(|(m, _)| m == key), "{kind}: no member {key}");
        }
        for (m, optional) in &data {
            assert!(*optional || sent_data.contains_key(m.as_str()), "{kind}: {m} missing");
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
    // An event without data is a unit struct, which encodes as `null`.
    let data = if data == json!({}) && back.is_null() { Value::Null } else { data };
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
    check_event::<events::BlockJobPending>(&s);
    check_event::<events::Migration>(&s);
    check_event::<events::MigrationPass>(&s);

    // Every event this QEMU has decodes into its typed variant (none is `Other`).
    let mut names = 0;
    for (name, entry) in &s {
        let SchemaMeta::Event(info) = &entry.meta else { continue };
        let line = json!({"event": name.as_str(), "data": synth(&s, &info.arg_type, 0),
                          "timestamp": {"seconds": 1, "microseconds": 2}});
        let Ok(qmp::proto::Message::Event(event)) =
            qmp::proto::Message::from_slice(line.to_string().as_bytes())
        else {
            panic!("not an event: {line}")
        };
        let typed = QemuEvent::from_event(&event);
        assert!(!matches!(typed, QemuEvent::Other { .. }), "{line}");
        assert_eq!(typed.name(), name.as_str());
        names += 1;
    }
    assert!(names >= 50, "{names} events");
}

#[tokio::test]
async fn block_nodes_and_jobs_on_the_storage_daemon() {
    let qsd = Peer::storage_daemon(1);
    let client = connect(&qsd).await;
    let mut sub = client.events();

    let nodes = client.execute(QueryNamedBlockNodes::new()).await.unwrap();
    let top = nodes.iter().find(|n| n.node_name.as_deref() == Some("top0")).expect("top0");
    assert_eq!((top.drv.as_str(), top.ro, top.backing_file_depth), ("qcow2", false, 1));
    assert_eq!(top.image.virtual_size, 64 << 20);
    let backing = top.image.backing_image.as_ref().expect("the backing chain");
    assert_eq!(backing.format, "qcow2");
    assert!(backing.filename.ends_with("base.qcow2"));
    let flat = client.execute(QueryNamedBlockNodes::new().flat(true)).await.unwrap();
    assert!(flat.iter().all(|n| n.image.backing_image.is_none()));
    assert_eq!(client.execute(QueryBlock).await.unwrap(), vec![]);

    // Stream, rate-limited so it is still running while paused, resumed and cancelled.
    client.execute(BlockStream::new("top0").job_id("job0").speed(1 << 20)).await.unwrap();
    let change: events::JobStatusChange = next(&mut sub).await;
    assert_eq!((change.id.as_str(), change.status), ("job0", JobStatus::Created));
    let jobs = client.execute(QueryBlockJobs).await.unwrap();
    assert_eq!((jobs[0].device.as_deref(), &jobs[0].branch), (Some("job0"), &BlockJobInfoBranch::Stream));
    assert_eq!(
        (jobs[0].len, jobs[0].speed, jobs[0].io_status.clone()),
        (Some(64 << 20), Some(1 << 20), Some(BlockDeviceIoStatus::QapiOk))
    );
    let jobs = client.execute(QueryJobs).await.unwrap();
    assert_eq!((jobs[0].id.as_str(), jobs[0].type_.clone()), ("job0", JobType::Stream));
    client.execute(BlockJobSetSpeed::new("job0", 1 << 19)).await.unwrap();
    client.execute(BlockJobPause::new("job0")).await.unwrap();
    assert_eq!(client.execute(QueryBlockJobs).await.unwrap()[0].paused, Some(true));
    client.execute(BlockJobResume::new("job0")).await.unwrap();
    client.execute(BlockJobCancel::new("job0")).await.unwrap();
    let cancelled: events::BlockJobCancelled = next(&mut sub).await;
    assert_eq!(
        (cancelled.device.as_str(), cancelled.type_, cancelled.len),
        ("job0", JobType::Stream, 64 << 20)
    );
    assert_eq!(cancelled.speed, 1 << 19);

    // Mirror between two null nodes: ready at once, then completed on request.
    client.execute(BlockdevAdd::null_co("n0", 1 << 20)).await.unwrap();
    client.execute(BlockdevAdd::null_co("n1", 1 << 20)).await.unwrap();
    client.execute(BlockdevMirror::new("n0", "n1", MirrorSyncMode::Full).job_id("m0")).await.unwrap();
    let ready: events::BlockJobReady = next(&mut sub).await;
    assert_eq!((ready.device.as_str(), ready.type_, ready.len), ("m0", JobType::Mirror, 1 << 20));
    // 7.2's mirror job has no `actively-synced` (8.2 made BlockJobInfo a union that has it):
    // the reply still decodes, the mirror's branch kept under its tag.
    let jobs = client.execute(QueryBlockJobs).await.unwrap();
    assert_eq!((jobs[0].device.as_deref(), jobs[0].ready), (Some("m0"), Some(true)));
    assert!(matches!(&jobs[0].branch, BlockJobInfoBranch::Other { tag, .. } if tag == "mirror"), "{jobs:?}");
    client.execute(BlockJobComplete::new("m0")).await.unwrap();
    let done: events::BlockJobCompleted = next(&mut sub).await;
    assert_eq!((done.device.as_str(), done.type_, done.error), ("m0", JobType::Mirror, None));

    // Active commit kept after it concludes, then dismissed.
    let commit = BlockCommit::new("top0").job_id("c0").auto_dismiss(false);
    client.execute(commit).await.unwrap();
    let _: events::BlockJobReady = next(&mut sub).await;
    client.execute(BlockJobComplete::new("c0")).await.unwrap();
    loop {
        let change: events::JobStatusChange = next(&mut sub).await;
        if change.id == "c0" && change.status == JobStatus::Concluded {
            break;
        }
    }
    assert_eq!(client.execute(QueryJobs).await.unwrap()[0].status, JobStatus::Concluded);
    client.execute(JobDismiss::new("c0")).await.unwrap();
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
    assert!(bitmaps(client.execute(QueryNamedBlockNodes::new()).await.unwrap()).is_empty());
    let adding = Transaction::new(vec![
        TransactionAction::block_dirty_bitmap_add("n0", "b0"),
        TransactionAction::block_dirty_bitmap_clear("n0", "b0"),
    ]);
    client.execute(adding).await.unwrap();
    let found = bitmaps(client.execute(QueryNamedBlockNodes::new()).await.unwrap());
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
    let inject = BlkdebugInjectErrorOptions::new(BlkdebugEvent::ReadAio).errno(5).immediately(false);
    let failing = BlockdevOptionsBlkdebug::new("bf".into()).inject_error(vec![inject]);
    client
        .execute(BlockdevAdd::node("dbg", BlockdevOptionsBranch::Blkdebug(Box::new(failing))))
        .await
        .unwrap();
    client.execute(BlockdevAdd::qcow2("base1", "dbg").read_only(true)).await.unwrap();
    let tf = BlockdevOptionsFile::new(top.to_str().unwrap()).locking(OnOffAuto::Off);
    client.execute(BlockdevAdd::node("tf", BlockdevOptionsBranch::File(tf))).await.unwrap();
    let top1 = BlockdevOptionsQcow2::new("tf".into()).backing(BlockdevRefOrNull::from("base1"));
    client.execute(BlockdevAdd::node("top1", BlockdevOptionsBranch::Qcow2(Box::new(top1)))).await.unwrap();

    client.execute(BlockStream::new("top1").job_id("err0").on_error(BlockdevOnError::Report)).await.unwrap();
    let error: events::BlockJobError = next(&mut sub).await;
    assert_eq!(
        (error.device.as_str(), &error.operation, &error.action),
        ("err0", &IoOperationType::Read, &BlockErrorAction::Report)
    );
    assert!(error.unknown_members.is_empty(), "{error:?}");
    let done: events::BlockJobCompleted = next(&mut sub).await;
    assert_eq!((done.device.as_str(), done.type_), ("err0", JobType::Stream));
    assert_eq!(done.error.as_deref(), Some("Input/output error"));
}

/// A backup job that waits for a manual finalize: JOB_STATUS_CHANGE through `pending`, then
/// BLOCK_JOB_PENDING; `job-finalize` completes it (BLOCK_JOB_COMPLETED) and it concludes and
/// goes away. All typed.
#[tokio::test]
async fn a_backup_job_waits_for_finalize_with_typed_events() {
    let qsd = Peer::storage_daemon(1);
    let client = connect(&qsd).await;
    client.execute(BlockdevAdd::null_co("src", 4 << 20)).await.unwrap();
    client.execute(BlockdevAdd::null_co("dst", 4 << 20)).await.unwrap();
    let names = ["JOB_STATUS_CHANGE", "BLOCK_JOB_PENDING", "BLOCK_JOB_COMPLETED"];
    let mut sub = client.subscribe(qmp::EventFilter::names(names));

    let backup = qmp::types::BlockdevBackup::new("src", MirrorSyncMode::Full, "dst").job_id("b0");
    client.execute(BlockdevBackup(backup.auto_finalize(false))).await.unwrap();
    let mut seen = Vec::new();
    loop {
        match next_any(&mut sub).await {
            QemuEvent::JobStatusChange(c) => {
                assert_eq!(c.id, "b0");
                seen.push(c.status.to_string());
            }
            QemuEvent::BlockJobPending(p) => {
                assert_eq!((p.id.as_str(), p.type_), ("b0", JobType::Backup));
                seen.push("BLOCK_JOB_PENDING".into());
                break;
            }
            other => panic!("before finalize: {other:?} after {seen:?}"),
        }
    }
    // A drain may pause and resume the job on the way (QEMU 7.2 does, once).
    let mut steady: Vec<&str> = seen.iter().map(String::as_str).filter(|s| *s != "paused").collect();
    steady.dedup();
    assert_eq!(steady, ["created", "running", "waiting", "pending", "BLOCK_JOB_PENDING"], "{seen:?}");
    // It waits: pending until finalized.
    let jobs = client.execute(QueryJobs).await.unwrap();
    assert_eq!(
        (jobs[0].id.as_str(), &jobs[0].type_, &jobs[0].status),
        ("b0", &JobType::Backup, &JobStatus::Pending)
    );
    let block_jobs = client.execute(QueryBlockJobs).await.unwrap();
    assert_eq!(
        (&block_jobs[0].branch, block_jobs[0].auto_finalize, block_jobs[0].status.clone()),
        (&BlockJobInfoBranch::Backup, Some(false), Some(JobStatus::Pending))
    );

    client.execute(JobFinalize::new("b0")).await.unwrap();
    let mut after = Vec::new();
    while after.last().map(String::as_str) != Some("null") {
        match next_any(&mut sub).await {
            QemuEvent::JobStatusChange(c) => after.push(c.status.to_string()),
            QemuEvent::BlockJobCompleted(done) => {
                assert_eq!((done.device.as_str(), done.type_, done.error), ("b0", JobType::Backup, None));
                assert_eq!((done.len, done.offset), (4 << 20, 4 << 20));
                after.push("BLOCK_JOB_COMPLETED".into());
            }
            other => panic!("after finalize: {other:?} after {after:?}"),
        }
    }
    assert_eq!(after, ["BLOCK_JOB_COMPLETED", "concluded", "null"]);
    assert_eq!(client.execute(QueryJobs).await.unwrap(), vec![]);
}
