//! `qmp::Schema` on QEMU 7.2's real schema, fetched from a `qemu-system-x86_64` these tests
//! start (once for the look-ups, which share it); and `ClientBuilder::check_arguments` against
//! real QEMU, behind a recording proxy that shows what reached QEMU.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use qmp::schema::{ProblemKind, TypeKind};
use qmp::{Client, Error, Schema, SchemaProblem};
use qmp_testkit::Peer;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(20);

/// QEMU 7.2's schema, fetched once (with the blocking client) for every look-up test.
fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let peer = Peer::qemu(1);
        let client = qmp::blocking::Client::connect_with(Client::builder().timeout(T), peer.socket(0))
            .expect("connect to QEMU");
        let first = client.schema().expect("query-qmp-schema");
        // Cached per connection, for every handle of it.
        assert!(Arc::ptr_eq(&first, &client.with_timeout(T).schema().unwrap()));
        Schema::clone(&first)
    })
}

fn problems(command: &str, args: Value) -> Vec<SchemaProblem> {
    schema().validate_arguments(command, &args).err().unwrap_or_default()
}

fn texts(command: &str, args: Value) -> Vec<String> {
    problems(command, args).iter().map(ToString::to_string).collect()
}

#[test]
fn blockdev_add_is_a_union_by_driver() {
    let s = schema();
    assert!(s.command_names().count() > 150 && s.has_command("blockdev-add") && !s.has_command("nope"));
    let args = s.command("blockdev-add").unwrap().arguments();
    let obj = args.as_object().unwrap();
    assert_eq!(obj.tag(), Some("driver"));
    let driver = obj.members().next().unwrap();
    assert_eq!((driver.name(), driver.is_optional()), ("driver", false));
    let drivers = driver.ty().enum_type().unwrap();
    assert!(drivers.has_value("qcow2") && drivers.has_value("null-co") && !drivers.has_value("nope"));
    // Every driver has a variant (QEMU lists the empty ones too).
    assert_eq!(obj.variants().count(), drivers.values().count());
    let file = obj.variant("file").unwrap().as_object().unwrap();
    let names: Vec<&str> = file.members().map(|m| m.name()).collect();
    assert_eq!(names[..2], ["filename", "pr-manager"]);
    // The chosen variant narrows the members; with none, every variant's count.
    let given = json!({"driver": "null-co"});
    let null: Vec<&str> = obj.members_for(given.as_object()).iter().map(|m| m.name()).collect();
    assert!(null.contains(&"size") && !null.contains(&"filename"), "{null:?}");
    let all: Vec<&str> = obj.members_for(None).iter().map(|m| m.name()).collect();
    assert!(all.contains(&"size") && all.contains(&"filename") && all.contains(&"backing"));
    // qcow2's `file` is an alternate: a node name, or blockdev-add's own options again.
    let qcow2 = json!({"driver": "qcow2"});
    let file_member = args.member_at(&["file"], qcow2.as_object()).unwrap();
    assert!(matches!(file_member.ty().kind(), TypeKind::Alternate(_)));
    assert_eq!(file_member.ty().label(), "object or string");
    assert_eq!(file_member.ty().object_branch().unwrap().ty().name(), args.name());
    let nested = args.member_at(&["file", "driver"], qcow2.as_object()).unwrap();
    assert!(nested.ty().enum_type().unwrap().has_value("file"));
    assert!(s.has_argument("blockdev-add", "file.filename"));
    assert!(s.has_argument("blockdev-add", "file.file.file.node-name"));
    assert!(!s.has_argument("blockdev-add", "bogus") && !s.has_argument("nope", "x"));
    assert!(s.has_enum_value("blockdev-add.driver", "null-co"));
    assert!(s.has_enum_value("blockdev-add.detect-zeroes", "unmap"));
    assert!(!s.has_enum_value("blockdev-add.driver", "nope"));
}

#[test]
fn transaction_actions_are_a_union_in_an_array() {
    let s = schema();
    let args = s.command("transaction").unwrap().arguments();
    let actions = args.member_at(&["actions"], None).unwrap();
    assert!(!actions.is_optional());
    let action = actions.ty().element().unwrap().as_object().unwrap();
    assert_eq!(action.tag(), Some("type"));
    let kinds = action.members().next().unwrap().ty().enum_type().unwrap();
    assert!(kinds.has_value("block-dirty-bitmap-add") && kinds.has_value("abort"));
    // A value's features: drive-backup as an action is deprecated.
    assert_eq!(kinds.value_features("drive-backup"), ["deprecated"]);
    assert!(kinds.value_features("abort").is_empty());
    let add = action.variant("block-dirty-bitmap-add").unwrap().as_object().unwrap();
    let data = add.member("data", None).unwrap().ty().as_object().unwrap();
    let names: Vec<(&str, bool)> = data.members().map(|m| (m.name(), m.is_optional())).collect();
    assert_eq!(names[..2], [("node", false), ("name", false)]);
    assert!(s.has_argument("transaction", "actions.data.node"));
    assert!(s.has_argument("transaction", "actions[0].data.granularity"));
    assert!(s.has_enum_value("transaction.actions.type", "block-dirty-bitmap-clear"));
}

#[test]
fn query_status_returns_an_object_and_events_have_data() {
    let s = schema();
    let cmd = s.command("query-status").unwrap();
    assert_eq!(cmd.arguments().as_object().unwrap().members().count(), 0);
    let ret = cmd.returns().as_object().unwrap();
    let members: Vec<(&str, String)> = ret.members().map(|m| (m.name(), m.ty().label())).collect();
    assert_eq!(members[..2], [("running", "bool".to_string()), ("singlestep", "bool".to_string())]);
    let status = ret.member("status", None).unwrap().ty().enum_type().unwrap();
    assert!(status.has_value("running") && status.has_value("paused"));
    assert!(s.has_event("STOP") && s.has_event("JOB_STATUS_CHANGE") && !s.has_event("query-status"));
    let data = s.event("JOB_STATUS_CHANGE").unwrap().data().as_object().unwrap();
    let names: Vec<&str> = data.members().map(|m| m.name()).collect();
    assert_eq!(names, ["id", "status"]);
    assert!(s.has_enum_value("JOB_STATUS_CHANGE.status", "concluded"));
    assert!(s.event_names().count() > 40);
}

#[test]
fn features_of_commands_members_and_events() {
    let s = schema();
    assert!(s.has_feature("drive-backup", "deprecated"));
    assert!(s.command("drive-backup").unwrap().has_feature("deprecated"));
    assert!(s.has_feature("x-query-jit", "unstable"));
    assert!(!s.has_feature("query-status", "deprecated"));
    assert!(s.has_feature("MEM_UNPLUG_ERROR", "deprecated"));
    assert!(s.has_feature("blockdev-add.x-check-cache-dropped", "unstable"));
    assert!(!s.has_feature("blockdev-add.filename", "unstable"));
}

#[test]
fn good_arguments_pass() {
    assert_eq!(texts("blockdev-add", json!({"driver": "null-co", "node-name": "n0"})), Vec::<String>::new());
    let nested = json!({"driver": "qcow2", "node-name": "n", "file": {"driver": "file", "filename": "/x"}});
    assert_eq!(texts("blockdev-add", nested), Vec::<String>::new());
    assert_eq!(
        texts("blockdev-add", json!({"driver": "qcow2", "node-name": "n", "file": "f0"})),
        Vec::<String>::new()
    );
    assert_eq!(texts("query-status", Value::Null), Vec::<String>::new());
    assert_eq!(texts("query-status", json!({})), Vec::<String>::new());
    // device_add takes the device's own properties.
    let dev = json!({"driver": "e1000", "id": "n1", "mac": "52:54:00:12:34:56"});
    assert_eq!(texts("device_add", dev), Vec::<String>::new());
    let actions = json!({"actions": [
        {"type": "block-dirty-bitmap-add", "data": {"node": "n", "name": "b", "granularity": 65536}},
        {"type": "abort", "data": {}},
    ]});
    assert_eq!(texts("transaction", actions), Vec::<String>::new());
}

#[test]
fn every_problem_kind_names_its_path() {
    // Unknown member, with the closest names as a hint.
    let p = problems("blockdev-add", json!({"driver": "null-co", "node-nam": "n0", "bogus": 1}));
    assert_eq!(p.len(), 2, "{p:?}");
    assert_eq!(p[0].path, "bogus");
    assert_eq!(p[1].path, "node-nam");
    assert!(matches!(&p[1].kind, ProblemKind::UnknownMember { closest, .. } if closest[0] == "node-name"));
    assert_eq!(p[1].to_string(), "unknown member 'node-nam' (did you mean 'node-name'?)");
    // A member of another variant says which.
    assert_eq!(
        texts("blockdev-add", json!({"driver": "null-co", "node-name": "n", "filename": "/x"})),
        ["unknown member 'filename' (a member when driver=file, driver=host_cdrom, driver=host_device)"]
    );
    let p = texts("blockdev-add", json!({"driver": "qcow2", "node-name": "n", "file": "f", "locking": "on"}));
    assert_eq!(
        p,
        ["unknown member 'locking' (a member when driver=file, driver=host_cdrom, driver=host_device)"]
    );
    // Wrong JSON type, nested.
    let p = texts("blockdev-add", json!({"driver": "raw", "file": {"driver": "null-co", "size": "big"}}));
    assert_eq!(p, ["'file.size': expected int, got string \"big\""]);
    let p = problems("block-dirty-bitmap-add", json!({"node": 12, "name": "b"}));
    assert!(matches!(&p[0].kind, ProblemKind::WrongType { expected, got: "integer", value }
        if expected == "string" && value == "12"));
    // Missing required member.
    assert_eq!(
        texts("blockdev-add", json!({"driver": "file", "node-name": "f"})),
        ["missing required member 'filename' (string)"]
    );
    // Bad enum value: the valid ones, abbreviated, and the closest.
    let p = problems("blockdev-add", json!({"driver": "qcow3", "node-name": "n"}));
    let ProblemKind::NoSuchVariant { value, valid } = &p[0].kind else { panic!("{p:?}") };
    assert_eq!((p[0].path.as_str(), value.as_str()), ("driver", "qcow3"));
    assert!(valid.contains(&"qcow2".to_string()));
    let p = problems("blockdev-add", json!({"driver": "file", "filename": "/x", "aio": "fast"}));
    let ProblemKind::BadEnumValue { value, valid, .. } = &p[0].kind else { panic!("{p:?}") };
    assert_eq!((p[0].path.as_str(), value.as_str()), ("aio", "fast"));
    assert!(valid.contains(&"threads".to_string()));
    assert!(p[0].to_string().starts_with("'aio': 'fast' is not one of threads|native"), "{}", p[0]);
    let p = texts("block-stream", json!({"device": "d", "on-error": "explode"}));
    assert_eq!(p, ["'on-error': 'explode' is not one of report|ignore|enospc|stop|auto"]);
    // No such union variant, inside an array.
    let actions = json!({"actions": [
        {"type": "block-dirty-bitmap-add", "data": {"node": "n", "name": "b"}},
        {"type": "block-dirty-bitmap-clear", "data": {"nam": "b", "node": 1}},
        {"type": "no-such-action", "data": {}},
    ]});
    let p = texts("transaction", actions);
    assert_eq!(p.len(), 4, "{p:?}");
    assert_eq!(p[0], "unknown member 'actions[1].data.nam' (did you mean 'name'?)");
    assert_eq!(p[1], "missing required member 'actions[1].data.name' (string)");
    assert_eq!(p[2], "'actions[1].data.node': expected string, got integer 1");
    assert!(p[3].starts_with("'actions[2].type': no variant 'no-such-action' (one of abort|"), "{}", p[3]);
    // Unknown command.
    assert_eq!(texts("no-such-command", Value::Null), ["unknown command 'no-such-command'"]);
}

#[test]
fn a_value_nested_past_qemus_limit_is_checked_without_recursion() {
    // blockdev-add's raw driver takes blockdev-add's options again as its `file`: a cycle in
    // the schema itself, followed here 5,000 levels deep (QEMU's parser stops at 1,024).
    let mut v = json!({"driver": "null-co", "bogus": 1});
    for _ in 0..5000 {
        let mut m = Map::new();
        m.insert("driver".into(), json!("raw"));
        m.insert("file".into(), v);
        v = Value::Object(m);
    }
    let p = schema().validate_arguments("blockdev-add", &v).unwrap_err();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].path, format!("{}bogus", "file.".repeat(5000)));
    // Taken apart level by level: serde_json's own drop would recurse.
    while let Value::Object(mut m) = v {
        v = m.remove("file").unwrap_or(Value::Null);
    }
}

/// A unix-socket proxy in front of QEMU that records every byte the client sends.
struct Proxy {
    path: std::path::PathBuf,
    sent: Arc<Mutex<Vec<u8>>>,
    _dir: tempfile::TempDir,
}

impl Proxy {
    fn sent(&self) -> String {
        String::from_utf8_lossy(&self.sent.lock().unwrap()).into_owned()
    }
}

async fn proxy(peer: &Peer) -> Proxy {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let upstream = peer.socket(0).to_path_buf();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&sent);
    tokio::spawn(async move {
        let (client, _) = listener.accept().await.unwrap();
        let qemu = tokio::net::UnixStream::connect(upstream).await.unwrap();
        let (mut cr, mut cw) = client.into_split();
        let (mut qr, mut qw) = qemu.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut qr, &mut cw).await;
        });
        let mut buf = vec![0; 65536];
        while let Ok(n @ 1..) = cr.read(&mut buf).await {
            record.lock().unwrap().extend_from_slice(&buf[..n]);
            if qw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    Proxy { path, sent, _dir: dir }
}

#[tokio::test]
async fn checked_calls_fail_before_sending_and_good_ones_run() {
    let peer = Peer::qemu(1);
    let proxy = proxy(&peer).await;
    let client =
        Client::builder().timeout(T).check_arguments(true).connect(proxy.path.as_path()).await.unwrap();
    // Negotiation is not checked, and costs no schema.
    assert!(!proxy.sent().contains("query-qmp-schema"));
    let bad = json!({"driver": "null-co", "node-name": "n0", "bogus": 1});
    let err = client.call_raw("blockdev-add", bad.clone()).send().await.unwrap_err();
    let Error::InvalidArguments { command, problems } = &err else { panic!("{err:?}") };
    assert_eq!((command.as_str(), problems.len(), problems[0].path.as_str()), ("blockdev-add", 1, "bogus"));
    assert_eq!(err.to_string(), "invalid arguments for blockdev-add: unknown member 'bogus'");
    // Once the schema is kept, a bad call makes no round trip at all: with a timeout too
    // short for any reply, it still fails with its own error.
    let err =
        client.with_timeout(Duration::from_nanos(1)).call_raw("blockdev-add", bad).send().await.unwrap_err();
    assert!(matches!(err, Error::InvalidArguments { .. }), "{err:?}");
    // Typed calls are checked too (their arguments are fine here).
    client.execute(qmp::commands::QueryStatus {}).await.unwrap();
    // A good call runs; an unknown command is QEMU's to refuse.
    let good = json!({"driver": "null-co", "node-name": "n0"});
    client.call_raw("blockdev-add", good).send().await.unwrap();
    let err = client.call_raw("no-such-command", Value::Null).send().await.unwrap_err();
    assert_eq!(err.qmp_error().unwrap().class, qmp::ErrorClass::CommandNotFound);
    // QEMU is fine, and got one schema request and never the bad calls.
    let nodes = client.call_raw("query-named-block-nodes", Value::Null).send().await.unwrap();
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
    let sent = proxy.sent();
    assert_eq!(sent.matches("query-qmp-schema").count(), 1, "{sent}");
    assert!(!sent.contains("bogus"), "{sent}");
    assert!(Arc::ptr_eq(&client.schema().await.unwrap(), &client.without_timeout().schema().await.unwrap()));
}

#[tokio::test]
async fn unchecked_clients_send_as_they_are_and_fetch_no_schema() {
    let peer = Peer::qemu(1);
    let proxy = proxy(&peer).await;
    let client = Client::builder().timeout(T).connect(proxy.path.as_path()).await.unwrap();
    let bad = json!({"driver": "null-co", "node-name": "n0", "bogus": 1});
    let err = client.call_raw("blockdev-add", bad).send().await.unwrap_err();
    assert_eq!(err.qmp_error().unwrap().class, qmp::ErrorClass::GenericError, "{err:?}");
    let sent = proxy.sent();
    assert!(sent.contains("bogus") && !sent.contains("query-qmp-schema"), "{sent}");
    // Asked for, the schema is fetched once and kept.
    let (a, b) = tokio::join!(client.schema(), client.schema());
    assert!(Arc::ptr_eq(&a.unwrap(), &b.unwrap()));
    assert_eq!(proxy.sent().matches("query-qmp-schema").count(), 1);
}

#[test]
fn the_blocking_client_checks_too() {
    let peer = Peer::qemu(1);
    let builder = Client::builder().timeout(T).check_arguments(true);
    let client = qmp::blocking::Client::connect_with(builder, peer.socket(0)).unwrap();
    let err =
        client.call_raw("blockdev-add", json!({"driver": "null-co", "size": "big"})).send().unwrap_err();
    let Error::InvalidArguments { problems, .. } = &err else { panic!("{err:?}") };
    assert_eq!(problems[0].to_string(), "'size': expected int, got string \"big\"");
    client.call_raw("blockdev-add", json!({"driver": "null-co", "node-name": "n0"})).send().unwrap();
    let err = client.call_raw("no-such-command", Value::Null).send().unwrap_err();
    assert_eq!(err.qmp_error().unwrap().class, qmp::ErrorClass::CommandNotFound);
    let nodes = client.call_raw("query-named-block-nodes", Value::Null).send().unwrap();
    assert_eq!(nodes.as_array().unwrap().len(), 1);
}
