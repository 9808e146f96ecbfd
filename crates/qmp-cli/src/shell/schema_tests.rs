//! The schema model, on a schema captured from a real QEMU at test time.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::schema::{Entity, Schema};

/// Starts a VM-less QEMU, asks for `query-qmp-schema` over a plain socket, and stops it.
fn capture_schema() -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("qmp.sock");
    let mut child: Child = Command::new("qemu-system-x86_64")
        .args(["-machine", "none", "-nodefaults", "-display", "none", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .stdin(Stdio::null())
        .spawn()
        .expect("qemu-system-x86_64 must be installed (scripts/install-deps.sh)");
    let deadline = Instant::now() + Duration::from_secs(20);
    let stream = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(e) if Instant::now() > deadline => panic!("QEMU never listened: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut next_reply = |reader: &mut BufReader<UnixStream>| loop {
        line.clear();
        reader.read_line(&mut line).expect("read from QEMU");
        let v: Value = serde_json::from_str(&line).expect("QEMU sends JSON lines");
        if v.get("return").is_some() || v.get("QMP").is_some() {
            return v;
        }
    };
    next_reply(&mut reader);
    writer.write_all(br#"{"execute":"qmp_capabilities"}"#).unwrap();
    next_reply(&mut reader);
    writer.write_all(br#"{"execute":"query-qmp-schema"}"#).unwrap();
    let schema = next_reply(&mut reader)["return"].take();
    let _ = writer.write_all(br#"{"execute":"quit"}"#);
    let _ = child.wait();
    schema
}

/// The schema of a real qemu-system-x86_64, captured once per test run.
pub(super) fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::from_json(&capture_schema()).expect("QEMU's schema reads"))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

#[test]
fn commands_and_events_are_indexed() {
    let s = schema();
    let names: Vec<&str> = s.command_names().collect();
    assert!(names.len() > 150, "{} commands", names.len());
    for c in ["query-status", "qmp_capabilities", "transaction", "blockdev-add", "human-monitor-command"] {
        assert!(names.contains(&c), "{c} missing");
    }
    assert!(s.event_names().any(|e| e == "STOP"));
    assert!(s.command("no-such-command").is_none());
}

#[test]
fn members_follow_the_masked_types() {
    let s = schema();
    let info = s.command("block-dirty-bitmap-add").unwrap();
    let members = s.members(&info.arg_type, None);
    let names: Vec<(&str, bool)> = members.iter().map(|m| (m.name.as_str(), m.optional)).collect();
    assert_eq!(
        names,
        [("node", false), ("name", false), ("granularity", true), ("persistent", true), ("disabled", true)]
    );
}

#[test]
fn union_members_depend_on_the_tag() {
    let s = schema();
    let ty = &s.command("blockdev-add").unwrap().arg_type;
    let all: Vec<String> = s.members(ty, None).iter().map(|m| m.name.clone()).collect();
    assert!(all.contains(&"filename".to_string()) && all.contains(&"file".to_string()));
    let file = obj(json!({"driver": "file"}));
    let names: Vec<String> = s.members(ty, Some(&file)).iter().map(|m| m.name.clone()).collect();
    assert!(names.contains(&"filename".to_string()));
    assert!(!names.contains(&"backing".to_string()), "{names:?}");
    // Nested path: blockdev-add driver=qcow2 file.driver=... -> file is an alternate (ref or object).
    let qcow2 = obj(json!({"driver": "qcow2"}));
    let file_ty = s.type_at(ty, &["file"], Some(&qcow2)).unwrap();
    assert!(matches!(s.entity(&file_ty), Some(Entity::Alternate(_))));
}

#[test]
fn enum_and_bool_choices() {
    let s = schema();
    let ty = &s.command("blockdev-add").unwrap().arg_type;
    let driver = s.type_at(ty, &["driver"], None).unwrap();
    let choices = s.value_choices(&driver);
    assert!(choices.contains(&"qcow2".to_string()) && choices.contains(&"file".to_string()));
    let ro = s.type_at(ty, &["read-only"], None).unwrap();
    assert_eq!(s.value_choices(&ro), ["true", "false"]);
    assert_eq!(s.type_label(&ro), "bool");
    assert!(s.type_label(&driver).starts_with("enum (blkdebug|"));
}

#[test]
fn help_shows_a_tree_with_types_optional_marks_and_return() {
    let s = schema();
    let text = s.describe_command("block-dirty-bitmap-add").unwrap();
    assert!(text.starts_with("block-dirty-bitmap-add\n"), "{text}");
    assert!(text.contains("\n  node: string\n"), "{text}");
    assert!(text.contains("\n  granularity: int (optional)\n"), "{text}");
    assert!(text.contains("returns: nothing"), "{text}");
    let text = s.describe_command("query-status").unwrap();
    assert!(text.contains("(no arguments)"), "{text}");
    assert!(text.contains("returns: object\n  running: bool\n"), "{text}");
    assert!(text.contains("status: enum ("), "{text}");
    let text = s.describe_command("transaction").unwrap();
    assert!(text.contains("actions: array of object\n    type: enum"), "{text}");
    assert!(text.contains("when type=block-dirty-bitmap-add:"), "{text}");
    let text = s.describe_command("qom-list").unwrap();
    assert!(text.contains("returns: array of object\n  name: string"), "{text}");
    assert!(s.describe_command("nope").is_none());
}

#[test]
fn checks_name_the_problem() {
    let s = schema();
    let ok = obj(json!({"node": "n", "name": "b", "granularity": 65536}));
    assert_eq!(s.check_command("block-dirty-bitmap-add", &ok), Vec::<String>::new());
    let bad = obj(json!({"node": 12, "bogus": 1, "persistent": "yes"}));
    let problems = s.check_command("block-dirty-bitmap-add", &bad);
    let quote = "'node': expected string, got 12 (quote the value to send it as a string)";
    assert!(problems.contains(&quote.to_string()), "{problems:?}");
    assert!(problems.contains(&"unknown argument 'bogus'".to_string()), "{problems:?}");
    assert!(problems.contains(&"'persistent': expected bool, got \"yes\"".to_string()), "{problems:?}");
    assert!(problems.contains(&"missing required argument 'name' (string)".to_string()), "{problems:?}");
    assert_eq!(s.check_command("nope", &Map::new()), ["unknown command 'nope' (see 'help')"]);
}

#[test]
fn checks_follow_unions_nested_objects_and_arrays() {
    let s = schema();
    let good =
        obj(json!({"driver": "qcow2", "node-name": "n", "file": {"driver": "file", "filename": "/x"}}));
    assert_eq!(s.check_command("blockdev-add", &good), Vec::<String>::new());
    let good_ref = obj(json!({"driver": "qcow2", "node-name": "n", "file": "f0"}));
    assert_eq!(s.check_command("blockdev-add", &good_ref), Vec::<String>::new());
    let bad_enum = obj(json!({"driver": "nope"}));
    let p = s.check_command("blockdev-add", &bad_enum);
    assert!(p.iter().any(|m| m.starts_with("'driver': expected enum (")), "{p:?}");
    let actions = obj(json!({"actions": [
        {"type": "block-dirty-bitmap-add", "data": {"node": "n", "name": "b"}},
        {"type": "block-dirty-bitmap-clear", "data": {"node": "n", "nam": "b"}},
    ]}));
    let p = s.check_command("transaction", &actions);
    assert!(p.contains(&"unknown argument 'actions[1].data.nam'".to_string()), "{p:?}");
    assert!(p.contains(&"missing required argument 'actions[1].data.name' (string)".to_string()), "{p:?}");
    // device_add takes the device's own properties: they are not "unknown".
    let dev = obj(json!({"driver": "e1000", "id": "n1", "mac": "52:54:00:12:34:56"}));
    assert_eq!(s.check_command("device_add", &dev), Vec::<String>::new());
}

#[test]
fn transaction_actions_and_their_data() {
    let s = schema();
    let actions = s.transaction_actions();
    assert!(actions.contains(&"block-dirty-bitmap-add".to_string()), "{actions:?}");
    let ty = s.transaction_action_type("block-dirty-bitmap-add").unwrap();
    let names: Vec<String> = s.members(&ty, None).iter().map(|m| m.name.clone()).collect();
    assert_eq!(names[..2], ["node".to_string(), "name".to_string()]);
}

#[test]
fn bad_schemas_are_errors_not_panics() {
    assert!(Schema::from_json(&json!({})).is_err());
    assert!(Schema::from_json(&json!([{"name": "x"}])).is_err());
    assert!(Schema::from_json(&json!([{"name": "x", "meta-type": "wat"}])).is_err());
    let s = Schema::from_json(&json!([
        {"name": "c", "meta-type": "command", "arg-type": "1", "ret-type": "1"},
        {"name": "1", "meta-type": "object", "members": [{"name": "self", "type": "1", "default": null}]},
    ]))
    .unwrap();
    // A recursive type ends in "..." rather than recursing forever.
    assert!(s.describe_command("c").unwrap().contains("..."));
    assert_eq!(s.check_command("c", &obj(json!({"self": {"self": {}}}))), Vec::<String>::new());
}
