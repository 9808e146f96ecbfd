//! Our client (crate `qmp`) against the simulator, for every command the simulator offers.

mod common;

use std::time::Duration;

use qmp::commands::{QueryBlockJobs, QueryJobs, QueryMigrate};
use qmp::{Client, ErrorClass, EventFilter};
use qmp_server::sim::{Machine, SimOptions, Simulator};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(10);

async fn connect(sim: &Simulator) -> Client {
    let stream = sim.connect_pair().unwrap();
    Client::builder().timeout(T).connect_unix_stream(stream).await.unwrap()
}

async fn ok(c: &Client, name: &str, args: Value) -> Value {
    c.call_raw(name, args).send().await.unwrap_or_else(|e| panic!("{name} failed: {e}"))
}

async fn err(c: &Client, name: &str, args: Value) -> (ErrorClass, String) {
    let e = c.call_raw(name, args).send().await.expect_err(name);
    let q = e.qmp_error().unwrap_or_else(|| panic!("{name}: not a QMP error: {e}"));
    (q.class.clone(), q.desc.clone())
}

#[tokio::test]
async fn queries_and_introspection() {
    let sim = Simulator::new();
    let c = connect(&sim).await;
    assert!(c.oob_enabled(), "the simulator offers oob and the client takes it");
    assert_eq!(c.greeting().unwrap().version.qemu.major, 7);
    assert_eq!(
        ok(&c, "query-status", Value::Null).await,
        json!({"status": "running", "singlestep": false, "running": true})
    );
    assert_eq!(
        ok(&c, "query-version", Value::Null).await["qemu"],
        json!({"major": 7, "minor": 2, "micro": 22})
    );
    assert_eq!(ok(&c, "query-name", Value::Null).await, json!({}));
    let commands = ok(&c, "query-commands", Value::Null).await;
    let names: Vec<&str> = commands.as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    for n in [
        "stop",
        "cont",
        "block-stream",
        "blockdev-mirror",
        "device_add",
        "migrate",
        "query-qmp-schema",
        "yank",
    ] {
        assert!(names.contains(&n), "{n} missing from query-commands");
    }
    let schema = ok(&c, "query-qmp-schema", Value::Null).await;
    let schema = schema.as_array().unwrap();
    assert!(schema.iter().any(|e| e["name"] == "BLOCK_JOB_CANCELLED" && e["meta-type"] == "event"));
    assert!(schema.iter().any(|e| e["name"] == "query-yank" && e["allow-oob"] == true));
    assert_eq!(ok(&c, "query-block", Value::Null).await, json!([]));
    assert_eq!(
        c.call_raw("query-yank", Value::Null).oob().send().await.unwrap(),
        json!([{"type": "chardev", "id": "compat_monitor0"}])
    );
    let (class, desc) = err(&c, "no-such-command", Value::Null).await;
    assert_eq!(
        (class, desc.as_str()),
        (ErrorClass::CommandNotFound, "The command no-such-command has not been found")
    );
    let (class, desc) = err(&c, "stop", json!({"now": true})).await;
    assert_eq!((class, desc.as_str()), (ErrorClass::GenericError, "Parameter 'now' is unexpected"));
}

#[tokio::test]
async fn run_states_events_and_hmp() {
    let sim = Simulator::new();
    let c = connect(&sim).await;
    let other = connect(&sim).await;
    let mut everything = other.events();

    let stop = c.wait_for(EventFilter::name("STOP"), T);
    ok(&c, "stop", Value::Null).await;
    stop.await.unwrap();
    assert_eq!(ok(&c, "query-status", Value::Null).await["status"], "paused");
    let hmp = ok(&c, "human-monitor-command", json!({"command-line": "info status"})).await;
    assert_eq!(hmp, "VM status: paused\r\n");
    let resume = c.wait_for(EventFilter::name("RESUME"), T);
    ok(&c, "cont", Value::Null).await;
    resume.await.unwrap();
    let reset = c.wait_for(EventFilter::name("RESET").data("reason", json!("host-qmp-system-reset")), T);
    ok(&c, "system_reset", Value::Null).await;
    reset.await.unwrap();
    let powerdown = c.wait_for(EventFilter::name("POWERDOWN"), T);
    ok(&c, "system_powerdown", Value::Null).await;
    powerdown.await.unwrap();
    let version = ok(&c, "human-monitor-command", json!({"command-line": "info version"})).await;
    assert!(version.as_str().unwrap().starts_with("7.2.22"), "{version}");
    let help = ok(&c, "human-monitor-command", json!({"command-line": "help"})).await;
    assert!(help.as_str().unwrap().contains("info [subcommand]"), "{help}");
    let unknown = ok(&c, "human-monitor-command", json!({"command-line": "frobnicate"})).await;
    assert_eq!(unknown, "unknown command: 'frobnicate'\r\n");

    // The other client saw every event, in order.
    let mut names = Vec::new();
    while names.len() < 4 {
        names.push(everything.next_within(T).await.unwrap().name.clone());
    }
    assert_eq!(names, ["STOP", "RESUME", "RESET", "POWERDOWN"]);

    let shutdown = other.wait_for(EventFilter::name("SHUTDOWN").data("reason", json!("host-qmp-quit")), T);
    ok(&c, "quit", Value::Null).await;
    shutdown.await.unwrap();
    tokio::time::timeout(T, c.closed()).await.expect("quit closes the connection");
}

#[tokio::test]
async fn block_nodes_on_real_images() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.qcow2");
    let status = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&img)
        .arg("32M")
        .status()
        .expect("qemu-img is needed (scripts/install-deps.sh)");
    assert!(status.success());
    let sim = Simulator::new();
    let c = connect(&sim).await;
    ok(&c, "blockdev-add", json!({"driver": "file", "node-name": "f0", "filename": img})).await;
    ok(&c, "blockdev-add", json!({"driver": "qcow2", "node-name": "disk0", "file": "f0"})).await;
    ok(&c, "blockdev-add", json!({"driver": "null-co", "node-name": "n0", "size": 1 << 20})).await;
    let nodes = ok(&c, "query-named-block-nodes", json!({"flat": true})).await;
    let size = |name: &str| {
        nodes.as_array().unwrap().iter().find(|n| n["node-name"] == name).unwrap()["image"]["virtual-size"]
            .clone()
    };
    assert_eq!(size("disk0"), json!(32 << 20));
    assert_eq!(size("n0"), json!(1 << 20));
    let (_, desc) =
        err(&c, "blockdev-add", json!({"driver": "qcow2", "node-name": "disk0", "file": "f0"})).await;
    assert_eq!(desc, "Duplicate nodes with node-name='disk0'");
    let (_, desc) = err(&c, "blockdev-del", json!({"node-name": "f0"})).await;
    assert_eq!(desc, "Block device f0 is in use");
    ok(&c, "blockdev-del", json!({"node-name": "disk0"})).await;
    ok(&c, "blockdev-del", json!({"node-name": "f0"})).await;
    let (_, desc) = err(&c, "blockdev-del", json!({"node-name": "f0"})).await;
    assert_eq!(desc, "Failed to find node with node-name='f0'");
}

fn statuses(events: &[std::sync::Arc<qmp::Event>]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.name.as_str() {
            "JOB_STATUS_CHANGE" => e.data_value()["status"].as_str().unwrap_or_default().to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// Collects job events for `id` until `last` arrives.
async fn job_events_until(sub: &mut qmp::Subscription, last: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let e = sub.next_within(T).await.unwrap();
        got.push(e);
        if statuses(&got).last().is_some_and(|s| s == last) {
            return statuses(&got);
        }
    }
}

/// Adds qcow2 node `top` over fresh images (`common::make_images`): `top.qcow2`, backed by
/// node `base` over `base.qcow2`. The images live as long as the returned directory.
async fn add_chain(c: &Client, top: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::make_images(dir.path());
    let file = |name: &str| dir.path().join(name).display().to_string();
    ok(c, "blockdev-add", json!({"driver": "file", "node-name": "bf", "filename": file("base.qcow2")})).await;
    ok(c, "blockdev-add", json!({"driver": "qcow2", "node-name": "base", "file": "bf"})).await;
    ok(c, "blockdev-add", json!({"driver": "file", "node-name": "tf", "filename": file("top.qcow2")})).await;
    ok(c, "blockdev-add", json!({"driver": "qcow2", "node-name": top, "file": "tf", "backing": "base"}))
        .await;
    dir
}

#[tokio::test]
async fn stream_with_live_progress_pause_speed_and_cancel() {
    let sim = Simulator::new();
    let c = connect(&sim).await;
    // A stream copies from the backing chain: a 64 MiB qcow2 image over a backing one.
    let _images = add_chain(&c, "d0").await;
    let mut sub = c.subscribe(EventFilter::any().matching(|e: &qmp::Event| {
        let data = e.data_value();
        data.get("id").or(data.get("device")) == Some(&json!("s1"))
    }));
    ok(&c, "block-stream", json!({"job-id": "s1", "device": "d0", "speed": 8 << 20})).await;
    let first = c.execute(QueryBlockJobs {}).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = c.execute(QueryBlockJobs {}).await.unwrap();
    assert_eq!(first[0].device.as_deref(), Some("s1"));
    assert!(
        first[0].offset.is_some() && second[0].offset > first[0].offset,
        "progress moves: {first:?} then {second:?}"
    );
    assert!(second[0].offset < Some(64 << 20));
    let jobs = c.execute(QueryJobs {}).await.unwrap();
    assert_eq!(jobs[0].id, "s1");

    ok(&c, "block-job-pause", json!({"device": "s1"})).await;
    let paused_at = c.execute(QueryBlockJobs {}).await.unwrap()[0].offset;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(c.execute(QueryBlockJobs {}).await.unwrap()[0].offset, paused_at, "a paused job stands still");
    let (_, desc) = err(&c, "block-job-pause", json!({"device": "s1"})).await;
    assert_eq!(desc, "Job is already paused");
    ok(&c, "block-job-resume", json!({"device": "s1"})).await;
    ok(&c, "block-job-set-speed", json!({"device": "s1", "speed": 1 << 20})).await;
    assert_eq!(c.execute(QueryBlockJobs {}).await.unwrap()[0].speed, Some(1 << 20));
    let (class, _) = err(&c, "block-job-complete", json!({"device": "s1"})).await;
    assert_eq!(class, ErrorClass::GenericError);
    ok(&c, "block-job-cancel", json!({"device": "s1"})).await;
    let seq = job_events_until(&mut sub, "null").await;
    assert_eq!(
        seq,
        ["created", "running", "paused", "running", "aborting", "BLOCK_JOB_CANCELLED", "concluded", "null"]
    );
    assert!(c.execute(QueryJobs {}).await.unwrap().is_empty());
}

#[tokio::test]
async fn stream_completes_then_dismiss_and_commit() {
    let sim = Simulator::new();
    let c = connect(&sim).await;
    ok(&c, "blockdev-add", json!({"driver": "null-co", "node-name": "d0", "size": 16 << 20})).await;
    let mut sub =
        c.subscribe(EventFilter::names(["JOB_STATUS_CHANGE", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_READY"]));
    ok(&c, "block-stream", json!({"job-id": "s1", "device": "d0", "auto-dismiss": false})).await;
    let seq = job_events_until(&mut sub, "concluded").await;
    assert_eq!(seq, ["created", "running", "waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded"]);
    assert_eq!(c.execute(QueryJobs {}).await.unwrap()[0].status.to_string(), "concluded");
    ok(&c, "job-dismiss", json!({"id": "s1"})).await;
    assert_eq!(job_events_until(&mut sub, "null").await, ["null"]);

    // A commit needs a backing chain: qcow2 images over files.
    let (_, desc) = err(&c, "block-commit", json!({"job-id": "c1", "device": "d0"})).await;
    assert_eq!(desc, "cannot commit an image into itself");
    let _images = add_chain(&c, "top").await;
    ok(&c, "block-commit", json!({"job-id": "c1", "device": "top"})).await;
    assert_eq!(
        job_events_until(&mut sub, "BLOCK_JOB_READY").await,
        ["created", "running", "ready", "BLOCK_JOB_READY"]
    );
    ok(&c, "block-job-complete", json!({"device": "c1"})).await;
    let seq = job_events_until(&mut sub, "null").await;
    assert_eq!(seq, ["waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded", "null"]);
}

#[tokio::test]
async fn mirror_ready_then_complete() {
    let sim = Simulator::new();
    let c = connect(&sim).await;
    ok(&c, "blockdev-add", json!({"driver": "null-co", "node-name": "src", "size": 8 << 20})).await;
    ok(&c, "blockdev-add", json!({"driver": "null-co", "node-name": "dst", "size": 8 << 20})).await;
    let mut sub =
        c.subscribe(EventFilter::names(["JOB_STATUS_CHANGE", "BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED"]));
    ok(&c, "blockdev-mirror", json!({"job-id": "m1", "device": "src", "target": "dst", "sync": "full"}))
        .await;
    assert_eq!(
        job_events_until(&mut sub, "BLOCK_JOB_READY").await,
        ["created", "running", "ready", "BLOCK_JOB_READY"]
    );
    let jobs = c.execute(QueryBlockJobs {}).await.unwrap();
    assert!(jobs[0].ready == Some(true) && jobs[0].offset.is_some() && jobs[0].offset == jobs[0].len);
    ok(&c, "block-job-complete", json!({"device": "m1"})).await;
    let seq = job_events_until(&mut sub, "null").await;
    assert_eq!(seq, ["waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded", "null"]);
}

#[tokio::test]
async fn devices_and_deleted_events() {
    // `-machine none` has no bus for any device.
    let c = connect(&Simulator::new()).await;
    let (_, desc) = err(&c, "device_add", json!({"driver": "virtio-net-pci", "id": "net0"})).await;
    assert_eq!(desc, "No 'PCI' bus found for device 'virtio-net-pci'");
    // A pc machine's guest acknowledges the unplug.
    let sim = Simulator::with_options(SimOptions { machine: Machine::Pc, ..SimOptions::default() });
    let c = connect(&sim).await;
    ok(&c, "device_add", json!({"driver": "virtio-net-pci", "id": "net0", "mac": "52:54:00:12:34:56"})).await;
    let (_, desc) = err(&c, "device_add", json!({"driver": "virtio-net-pci", "id": "net0"})).await;
    assert_eq!(desc, "Duplicate device ID 'net0'");
    let (_, desc) = err(&c, "device_add", json!({"driver": "warp-drive"})).await;
    assert_eq!(desc, "'warp-drive' is not a valid device model name");
    let deleted = c.wait_for(EventFilter::name("DEVICE_DELETED").data("device", json!("net0")), T);
    ok(&c, "device_del", json!({"id": "net0"})).await;
    let e = deleted.await.unwrap();
    assert_eq!(e.data_value()["path"], "/machine/peripheral/net0");
    let (class, desc) = err(&c, "device_del", json!({"id": "net0"})).await;
    assert_eq!((class, desc.as_str()), (ErrorClass::DeviceNotFound, "Device 'net0' not found"));
}

#[tokio::test]
async fn migration_progresses_then_completes() {
    // A tenth of real speed, so progress is visible.
    let sim = Simulator::with_options(SimOptions { time_scale: 0.1, ..SimOptions::default() });
    let c = connect(&sim).await;
    assert_eq!(ok(&c, "query-migrate", Value::Null).await, json!({}));
    let (_, desc) = err(&c, "migrate", json!({"uri": "carrier-pigeon:x"})).await;
    assert_eq!(desc, "Parameter 'uri' expects a valid migration protocol");
    // The simulator connects as QEMU does, and holds the connection while it migrates.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("tcp:{}", target.local_addr().unwrap());
    let stop = c.wait_for(EventFilter::name("STOP"), T);
    ok(&c, "migrate", json!({"uri": uri})).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let info = c.execute(QueryMigrate {}).await.unwrap();
    let ram = info.ram.clone().expect("ram stats while active");
    assert_eq!(info.status.as_ref().map(|s| s.to_string()).as_deref(), Some("active"));
    assert!(ram.transferred > 0 && ram.remaining > 0, "{info:?}");
    let (_, desc) = err(&c, "migrate", json!({"uri": uri})).await;
    assert_eq!(desc, "There's a migration process in progress");
    let (mut conn, _) = target.accept().unwrap();
    stop.await.unwrap();
    let info = ok(&c, "query-migrate", Value::Null).await;
    assert_eq!(info["status"], "completed");
    assert_eq!(info["ram"]["remaining"], 0);
    assert_eq!(ok(&c, "query-status", Value::Null).await["status"], "postmigrate");
    // The connection is closed when the migration ends.
    conn.set_read_timeout(Some(T)).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut conn, &mut rest).expect("the migration's connection closed");
    let (_, desc) = err(&c, "migrate", json!({"uri": uri})).await;
    assert_eq!(desc, "Can't migrate the vm that was paused due to previous migration");
}

/// Nothing but the clock moves a migration on: a client that only waits for its events
/// sees it to the end.
#[tokio::test]
async fn a_migration_ends_with_no_further_command() {
    let sim = Simulator::new();
    let c = connect(&sim).await;
    let events = json!({"capabilities": [{"capability": "events", "state": true}]});
    ok(&c, "migrate-set-capabilities", events).await;
    // Long enough for the idle clock to have gone back to sleep after that command.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let done = c.wait_for(
        EventFilter::name("MIGRATION").matching(|e: &qmp::Event| e.data_value()["status"] == "completed"),
        T,
    );
    ok(&c, "migrate", json!({"uri": format!("tcp:{}", target.local_addr().unwrap())})).await;
    done.await.expect("MIGRATION completed, with no other command sent");
}

#[tokio::test]
async fn tcp_listener() {
    let sim = Simulator::new();
    let (addr, _task) = sim.listen_tcp("127.0.0.1:0").await.unwrap();
    let c = Client::builder().timeout(T).connect(format!("tcp:{addr}").as_str()).await.unwrap();
    assert_eq!(ok(&c, "query-status", Value::Null).await["running"], true);
}

#[tokio::test]
async fn sim_cli_entry_serves_until_quit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.sock");
    let cli = tokio::spawn(qmp_server::sim::run_sim_cli(Some(path.clone()), Some("127.0.0.1:0".into())));
    let deadline = tokio::time::Instant::now() + T;
    while !path.exists() {
        assert!(tokio::time::Instant::now() < deadline, "the socket never appeared");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let c = Client::builder().timeout(T).connect(path.as_path().to_str().unwrap()).await.unwrap();
    ok(&c, "quit", Value::Null).await;
    tokio::time::timeout(T, cli).await.expect("run_sim_cli returns after quit").unwrap().unwrap();
    assert!(!path.exists(), "the socket is removed on exit");
}
