//! Schema on small hand-made schemas: cycles, deep values, hostile shapes. QEMU's real schema
//! is exercised in `tests/schema_real_qemu.rs`.

use serde_json::{json, Value};

use super::*;
use crate::commands::SchemaInfo;

fn schema(entries: Value) -> Schema {
    Schema::from_entries(serde_json::from_value::<Vec<SchemaInfo>>(entries).unwrap())
}

/// A struct that contains itself through an optional member, an array of itself, and an
/// alternate of itself; a union whose variant is the union itself.
fn cyclic() -> Schema {
    schema(json!([
        {"name": "c", "meta-type": "command", "arg-type": "1", "ret-type": "1"},
        {"name": "u", "meta-type": "command", "arg-type": "3", "ret-type": "0"},
        {"name": "loop", "meta-type": "command", "arg-type": "5", "ret-type": "0"},
        {"name": "0", "meta-type": "object", "members": []},
        {"name": "1", "meta-type": "object", "members": [
            {"name": "self", "type": "1", "default": null},
            {"name": "list", "type": "[1]", "default": null},
            {"name": "alt", "type": "2", "default": null},
            {"name": "n", "type": "int", "default": null}]},
        {"name": "[1]", "meta-type": "array", "element-type": "1"},
        {"name": "2", "meta-type": "alternate", "members": [{"type": "1"}, {"type": "str"}]},
        {"name": "3", "meta-type": "object", "tag": "kind",
         "members": [{"name": "kind", "type": "4"}],
         "variants": [{"case": "a", "type": "3"}, {"case": "b", "type": "1"}]},
        {"name": "4", "meta-type": "enum", "values": ["a", "b"]},
        // An alternate of itself, and an array of itself: a broken schema.
        {"name": "5", "meta-type": "object", "members": [
            {"name": "x", "type": "6", "default": null}, {"name": "y", "type": "[[7]]", "default": null}]},
        {"name": "6", "meta-type": "alternate", "members": [{"type": "6"}]},
        {"name": "[[7]]", "meta-type": "array", "element-type": "[[7]]"},
        {"name": "int", "meta-type": "builtin", "json-type": "int"},
        {"name": "str", "meta-type": "builtin", "json-type": "string"},
    ]))
}

fn texts(r: Result<(), Vec<SchemaProblem>>) -> Vec<String> {
    r.err().unwrap_or_default().iter().map(ToString::to_string).collect()
}

#[test]
fn cyclic_schemas_end() {
    let s = cyclic();
    assert!(s.has_argument("c", "self.self.self.list.alt.n"));
    assert!(!s.has_argument("c", "self.nope"));
    assert!(s.has_argument("u", "kind"));
    assert!(s.has_argument("u", "self.n"));
    assert_eq!(s.command("u").unwrap().arguments().as_object().unwrap().members_for(None).len(), 5);
    assert!(!s.has_argument("loop", "x.anything"));
    assert!(!s.has_argument("loop", "y.anything"));
    assert!(s
        .command("loop")
        .unwrap()
        .arguments()
        .member_at(&["x"], None)
        .unwrap()
        .ty()
        .object_branch()
        .is_none());
    assert!(s.ty("6").unwrap().label().contains("..."));
    assert!(s.ty("[[7]]").unwrap().label().ends_with("..."));
    assert_eq!(texts(s.validate_arguments("loop", &json!({"x": 1, "y": [[[[]]]]}))), Vec::<String>::new());
    let ok = json!({"self": {"self": {"list": [{"alt": "s"}, {"alt": {"n": 1}}]}}});
    assert_eq!(texts(s.validate_arguments("c", &ok)), Vec::<String>::new());
    let bad = json!({"self": {"self": {"list": [{"alt": 1.5}, {"alt": {"n": "x"}}]}}});
    assert_eq!(
        texts(s.validate_arguments("c", &bad)),
        [
            "'self.self.list[0].alt': expected object or string, got number 1.5",
            "'self.self.list[1].alt.n': expected int, got string \"x\"",
        ]
    );
    // A union that is its own variant: its members are gathered once.
    assert_eq!(texts(s.validate_arguments("u", &json!({"kind": "b", "n": 1}))), Vec::<String>::new());
    assert_eq!(
        texts(s.validate_arguments("u", &json!({"kind": "a", "n": 1}))),
        ["unknown member 'n' (a member when kind=b)"]
    );
    assert_eq!(
        texts(s.validate_arguments("u", &json!({"kind": "c"}))),
        ["'kind': no variant 'c' (one of a|b)"]
    );
}

#[test]
fn deep_values_are_checked_without_recursion() {
    let s = cyclic();
    // 100,000 levels of `self`: far past any stack a recursive walk could use.
    let depth = 100_000;
    let mut v = json!({"n": "deep"});
    for _ in 0..depth {
        let mut m = Map::new();
        m.insert("self".into(), v);
        v = Value::Object(m);
    }
    let problems = s.validate_arguments("c", &v).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].path.ends_with("self.self.n"));
    assert_eq!(problems[0].path.len(), depth * 5 + 1);
    // Dropped by hand, level by level: serde_json's own drop recurses.
    while let Value::Object(mut m) = v {
        v = m.remove("self").unwrap_or(Value::Null);
    }
}

#[test]
fn problems_are_capped() {
    let s = cyclic();
    let mut many = Map::new();
    for i in 0..1000 {
        many.insert(format!("bogus{i}"), json!(1));
    }
    let problems = s.validate_arguments("c", &Value::Object(many)).unwrap_err();
    assert_eq!(problems.len(), validate::MAX_PROBLEMS);
}

#[test]
fn arguments_must_be_an_object() {
    let s = cyclic();
    assert_eq!(
        texts(s.validate_arguments("c", &json!([1]))),
        ["the arguments: expected object, got an array"]
    );
    assert_eq!(texts(s.validate_arguments("c", &Value::Null)), Vec::<String>::new());
    assert_eq!(texts(s.validate_arguments("nope", &Value::Null)), ["unknown command 'nope'"]);
}

#[test]
fn undefined_types_accept_anything_and_duplicates_keep_the_first() {
    let s = schema(json!([
        {"name": "c", "meta-type": "command", "arg-type": "1", "ret-type": "99"},
        {"name": "1", "meta-type": "object", "members": [{"name": "a", "type": "98"}]},
        {"name": "1", "meta-type": "object", "members": []},
        {"name": "x", "meta-type": "hologram"},
    ]));
    assert_eq!(texts(s.validate_arguments("c", &json!({"a": {"any": [1]}}))), Vec::<String>::new());
    assert_eq!(texts(s.validate_arguments("c", &json!({}))), ["missing required member 'a' (<98>)"]);
    assert!(matches!(s.command("c").unwrap().returns().kind(), TypeKind::Undefined));
    assert!(s.ty("x").is_none() && s.ty("98").is_none());
    assert_eq!(s.command_names().collect::<Vec<_>>(), ["c"]);
}

#[test]
fn features_and_enum_values() {
    let s = schema(json!([
        {"name": "c", "meta-type": "command", "arg-type": "1", "ret-type": "1", "features": ["unstable"]},
        {"name": "E", "meta-type": "event", "arg-type": "1", "features": ["deprecated"]},
        {"name": "1", "meta-type": "object", "members": [
            {"name": "mode", "type": "2", "default": null, "features": ["deprecated"]},
            {"name": "modes", "type": "[2]", "default": null}]},
        {"name": "[2]", "meta-type": "array", "element-type": "2"},
        {"name": "2", "meta-type": "enum", "values": ["on", "off"],
         "members": [{"name": "on"}, {"name": "off", "features": ["deprecated"]}]},
    ]));
    assert!(s.has_feature("c", "unstable") && !s.has_feature("c", "deprecated"));
    assert!(s.has_feature("E", "deprecated") && s.has_event("E") && !s.has_event("c"));
    assert!(s.has_feature("c.mode", "deprecated") && !s.has_feature("c.modes", "deprecated"));
    assert!(s.has_feature("E.mode", "deprecated"));
    assert!(s.has_enum_value("c.mode", "on") && s.has_enum_value("c.modes", "off"));
    assert!(s.has_enum_value("2", "off") && !s.has_enum_value("c.mode", "auto"));
    let e = s.ty("2").unwrap().enum_type().unwrap();
    assert_eq!(e.value_features("off"), ["deprecated"]);
    assert!(e.value_features("on").is_empty());
    assert_eq!(s.ty("2").unwrap().label(), "enum (on|off)");
    assert_eq!(
        texts(s.validate_arguments("c", &json!({"modes": ["on", "of"]}))),
        ["'modes[1]': 'of' is not one of on|off (did you mean 'off' or 'on'?)"]
    );
}
