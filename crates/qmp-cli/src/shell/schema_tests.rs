//! The shell's use of the library's schema, on a schema captured from a real QEMU at test
//! time.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use qmp::commands::SchemaInfo;
use qmp::schema::TypeKind;
use qmp::Schema;
use serde_json::{json, Value};

use super::schema::{
    check_command, describe_command, transaction_action_type, transaction_actions, value_choices,
};

/// Starts a VM-less QEMU, asks for `query-qmp-schema` over a plain socket, and stops it.
fn capture_schema() -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("qmp.sock");
    let mut child: Child = Command::new("qemu-system-x86_64")
        .args(["-machine", "none", "-nodefaults", "-display", "none", "-qmp"])
        // wait=on: this connection is QEMU's first, accepted before the monitor exists, away from
        // QEMU 7.2's start-up race (a client that comes while the monitor moves to its thread).
        .arg(format!("unix:{},server=on,wait=on", sock.display()))
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
    SCHEMA.get_or_init(|| {
        let entries: Vec<SchemaInfo> = serde_json::from_value(capture_schema()).expect("QEMU's schema reads");
        Schema::from_entries(entries)
    })
}

fn names(members: Vec<qmp::schema::Member<'_>>) -> Vec<String> {
    members.iter().map(|m| m.name().to_owned()).collect()
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
    let obj = s.command("block-dirty-bitmap-add").unwrap().arguments().as_object().unwrap();
    let members: Vec<(&str, bool)> = obj.members().map(|m| (m.name(), m.is_optional())).collect();
    assert_eq!(
        members,
        [("node", false), ("name", false), ("granularity", true), ("persistent", true), ("disabled", true)]
    );
}

#[test]
fn union_members_depend_on_the_tag() {
    let s = schema();
    let args = s.command("blockdev-add").unwrap().arguments();
    let obj = args.as_object().unwrap();
    let all = names(obj.members_for(None));
    assert!(all.contains(&"filename".to_string()) && all.contains(&"file".to_string()));
    let file = json!({"driver": "file"});
    let names = names(obj.members_for(file.as_object()));
    assert!(names.contains(&"filename".to_string()));
    assert!(!names.contains(&"backing".to_string()), "{names:?}");
    // Nested path: blockdev-add driver=qcow2 file.driver=... -> file is an alternate (ref or object).
    let qcow2 = json!({"driver": "qcow2"});
    let file_ty = args.member_at(&["file"], qcow2.as_object()).unwrap().ty();
    assert!(matches!(file_ty.kind(), TypeKind::Alternate(_)));
}

#[test]
fn enum_and_bool_choices() {
    let s = schema();
    let args = s.command("blockdev-add").unwrap().arguments();
    let driver = args.member_at(&["driver"], None).unwrap().ty();
    let choices = value_choices(driver);
    assert!(choices.contains(&"qcow2".to_string()) && choices.contains(&"file".to_string()));
    let ro = args.member_at(&["read-only"], None).unwrap().ty();
    assert_eq!(value_choices(ro), ["true", "false"]);
    assert_eq!(ro.label(), "bool");
    assert!(driver.label().starts_with("enum (blkdebug|"));
}

#[test]
fn help_shows_a_tree_with_types_optional_marks_and_return() {
    let s = schema();
    let text = describe_command(s, "block-dirty-bitmap-add").unwrap();
    assert!(text.starts_with("block-dirty-bitmap-add\n"), "{text}");
    assert!(text.contains("\n  node: string\n"), "{text}");
    assert!(text.contains("\n  granularity: int (optional)\n"), "{text}");
    assert!(text.contains("returns: nothing"), "{text}");
    let text = describe_command(s, "query-status").unwrap();
    assert!(text.contains("(no arguments)"), "{text}");
    assert!(text.contains("returns: object\n  running: bool\n"), "{text}");
    assert!(text.contains("status: enum ("), "{text}");
    let text = describe_command(s, "transaction").unwrap();
    assert!(text.contains("actions: array of object\n    type: enum"), "{text}");
    assert!(text.contains("when type=block-dirty-bitmap-add:"), "{text}");
    let text = describe_command(s, "qom-list").unwrap();
    assert!(text.contains("returns: array of object\n  name: string"), "{text}");
    // blockdev-add contains itself (a qcow2 node's file is blockdev-add's options again).
    let text = describe_command(s, "blockdev-add").unwrap();
    assert!(text.contains("when driver=file:\n    filename: string\n"), "{text}");
    assert!(text.contains("file: object or string\n"), "{text}");
    assert!(describe_command(s, "nope").is_none());
}

#[test]
fn checks_name_the_problem() {
    let s = schema();
    let ok = json!({"node": "n", "name": "b", "granularity": 65536});
    assert_eq!(check_command(s, "block-dirty-bitmap-add", &ok), Vec::<String>::new());
    let bad = json!({"node": 12, "bogus": 1, "persistent": "yes"});
    let problems = check_command(s, "block-dirty-bitmap-add", &bad);
    let quote = "'node': expected string, got integer 12 (quote the value to send it as a string)";
    assert!(problems.contains(&quote.to_string()), "{problems:?}");
    assert!(problems.contains(&"unknown argument 'bogus'".to_string()), "{problems:?}");
    assert!(
        problems.contains(&"'persistent': expected bool, got string \"yes\"".to_string()),
        "{problems:?}"
    );
    assert!(problems.contains(&"missing required argument 'name' (string)".to_string()), "{problems:?}");
    assert_eq!(check_command(s, "nope", &Value::Null), ["unknown command 'nope' (see 'help')"]);
    let near =
        check_command(s, "block-dirty-bitmap-add", &json!({"node": "n", "name": "b", "granularty": 1}));
    assert_eq!(near, ["unknown argument 'granularty' (did you mean 'granularity'?)"]);
}

#[test]
fn checks_follow_unions_nested_objects_and_arrays() {
    let s = schema();
    let good = json!({"driver": "qcow2", "node-name": "n", "file": {"driver": "file", "filename": "/x"}});
    assert_eq!(check_command(s, "blockdev-add", &good), Vec::<String>::new());
    let good_ref = json!({"driver": "qcow2", "node-name": "n", "file": "f0"});
    assert_eq!(check_command(s, "blockdev-add", &good_ref), Vec::<String>::new());
    let bad_enum = json!({"driver": "file", "filename": "/x", "aio": "fast"});
    let p = check_command(s, "blockdev-add", &bad_enum);
    assert!(p.iter().any(|m| m.starts_with("'aio': 'fast' is not one of threads|")), "{p:?}");
    let no_variant = check_command(s, "blockdev-add", &json!({"driver": "nope"}));
    assert!(
        no_variant.iter().any(|m| m.starts_with("'driver': no variant 'nope' (one of ")),
        "{no_variant:?}"
    );
    let actions = json!({"actions": [
        {"type": "block-dirty-bitmap-add", "data": {"node": "n", "name": "b"}},
        {"type": "block-dirty-bitmap-clear", "data": {"node": "n", "nam": "b"}},
    ]});
    let p = check_command(s, "transaction", &actions);
    assert!(
        p.contains(&"unknown argument 'actions[1].data.nam' (did you mean 'name'?)".to_string()),
        "{p:?}"
    );
    assert!(p.contains(&"missing required argument 'actions[1].data.name' (string)".to_string()), "{p:?}");
    // device_add takes the device's own properties: they are not "unknown".
    let dev = json!({"driver": "e1000", "id": "n1", "mac": "52:54:00:12:34:56"});
    assert_eq!(check_command(s, "device_add", &dev), Vec::<String>::new());
}

#[test]
fn transaction_actions_and_their_data() {
    let s = schema();
    let actions = transaction_actions(s);
    assert!(actions.contains(&"block-dirty-bitmap-add".to_string()), "{actions:?}");
    let ty = transaction_action_type(s, "block-dirty-bitmap-add").unwrap();
    let names = names(ty.as_object().unwrap().members_for(None));
    assert_eq!(names[..2], ["node".to_string(), "name".to_string()]);
    assert!(transaction_action_type(s, "nope").is_none());
}

#[test]
fn recursive_schemas_end_in_dots() {
    let entries: Vec<SchemaInfo> = serde_json::from_value(json!([
        {"name": "c", "meta-type": "command", "arg-type": "1", "ret-type": "1"},
        {"name": "1", "meta-type": "object", "members": [{"name": "self", "type": "1", "default": null}]},
    ]))
    .unwrap();
    let s = Schema::from_entries(entries);
    // A recursive type ends in "..." rather than recursing forever.
    assert!(describe_command(&s, "c").unwrap().contains("..."));
    assert_eq!(check_command(&s, "c", &json!({"self": {"self": {}}})), Vec::<String>::new());
}
