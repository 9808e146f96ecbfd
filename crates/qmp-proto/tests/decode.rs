//! Decoder tests: every message a server sends, what a newer server might add, and shapes
//! no server should send, which decode without loss or fail with a clear error.

use qmp_proto::{
    encode_error, encode_event, encode_greeting, encode_request, encode_return, DecodeError, ErrorClass,
    Message, QmpError, Request, Timestamp,
};
use serde_json::{json, Map, Value};

fn decode(bytes: &[u8]) -> Message {
    Message::from_slice(bytes).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(bytes)))
}

fn object(v: Value) -> Map<String, Value> {
    let Value::Object(m) = v else { panic!("not an object: {v}") };
    m
}

#[test]
fn greeting_from_qemu_7_2() {
    let bytes = br#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#;
    let Message::Greeting(g) = decode(bytes) else { panic!("not a greeting") };
    assert_eq!((g.version.qemu.major, g.version.qemu.minor, g.version.qemu.micro), (7, 2, 22));
    assert_eq!(g.version.qemu.to_string(), "7.2.22");
    assert_eq!(g.version.package, "Debian 1:7.2+dfsg-7+deb12u18+b3");
    assert_eq!(g.capabilities, ["oob"]);
    assert!(g.offers_oob());
    assert!(g.extra.is_empty());

    let mut out = Vec::new();
    encode_greeting(&mut out, &g).unwrap();
    assert_eq!(decode(&out), Message::Greeting(g));
}

#[test]
fn greeting_keeps_unknown_members_and_a_bad_one_is_unknown() {
    let Message::Greeting(g) = decode(
        br#"{"QMP": {"version": {"qemu": {"micro": 0, "minor": 0, "major": 99}, "package": ""}, "capabilities": [], "flavour": {"x": 1}}}"#,
    ) else {
        panic!("not a greeting")
    };
    assert!(!g.offers_oob());
    assert_eq!(g.extra, object(json!({"flavour": {"x": 1}})));

    let bad = json!({"QMP": {"version": "7.2", "capabilities": []}});
    assert_eq!(decode(bad.to_string().as_bytes()), Message::Unknown(object(bad)));
}

#[test]
fn return_with_raw_result_id_and_unknown_members() {
    let Message::Response(r) =
        decode(br#"{"return": {"status": "running", "running": true}, "id": "q1", "trace": [1]}"#)
    else {
        panic!("not a response")
    };
    assert_eq!(r.id, Some(json!("q1")));
    // The result is kept raw, exactly as sent, for the caller to decode into its own type.
    assert_eq!(r.result.as_ref().unwrap().get(), r#"{"status": "running", "running": true}"#);
    assert_eq!(r.extra, object(json!({"trace": [1]})));

    let mut out = Vec::new();
    encode_return(&mut out, &json!([1, "two"]), Some(&7)).unwrap();
    let Message::Response(r) = decode(&out) else { panic!("not a response") };
    assert_eq!((r.id, r.result.unwrap().get()), (Some(json!(7)), r#"[1,"two"]"#));
}

#[test]
fn error_responses_keep_their_class_desc_and_extras() {
    let Message::Response(r) = decode(
        br#"{"error": {"class": "DeviceNotFound", "desc": "Device 'nodev' not found", "hint": 3}, "id": 4}"#,
    ) else {
        panic!("not a response")
    };
    let e = r.result.unwrap_err();
    assert_eq!(e.class, ErrorClass::DeviceNotFound);
    assert_eq!(e.desc, "Device 'nodev' not found");
    assert_eq!(*e.extra, object(json!({"hint": 3})));
    assert_eq!(r.id, Some(json!(4)));

    // A class this model does not know is kept as sent, and goes back out unchanged.
    let Message::Response(r) = decode(br#"{"error": {"class": "QuotaExceeded", "desc": "too many"}}"#) else {
        panic!("not a response")
    };
    let e = r.result.unwrap_err();
    assert_eq!(e.class, ErrorClass::Other("QuotaExceeded".into()));
    assert_eq!(e.to_string(), "QuotaExceeded: too many");
    assert_eq!(r.id, None);
    let mut out = Vec::new();
    encode_error(&mut out, &e, None::<&()>).unwrap();
    assert_eq!(out, b"{\"error\": {\"class\": \"QuotaExceeded\", \"desc\": \"too many\"}}\r\n");

    for class in
        ["GenericError", "CommandNotFound", "DeviceNotActive", "DeviceNotFound", "KVMMissingCap", "Zzz"]
    {
        let mut out = Vec::new();
        encode_error(&mut out, &QmpError::new(class.into(), "d"), Some(&"i")).unwrap();
        let Message::Response(r) = decode(&out) else { panic!("not a response") };
        assert_eq!(r.result.unwrap_err().class.as_str(), class);
    }
}

#[test]
fn events_with_and_without_data() {
    let Message::Event(e) = decode(
        br#"{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "BLOCK_JOB_COMPLETED", "data": {"device": "job0", "len": 33554432}, "origin": "x", "id": 9}"#,
    ) else {
        panic!("not an event")
    };
    assert_eq!(e.name, "BLOCK_JOB_COMPLETED");
    assert_eq!(e.timestamp, Timestamp { seconds: 1700000000, microseconds: 5 });
    assert_eq!(e.data_value(), json!({"device": "job0", "len": 33554432}));
    // Unknown members are kept, an `id` too (events carry none, so it is not theirs to drop).
    assert_eq!(e.extra, object(json!({"origin": "x", "id": 9})));

    let mut out = Vec::new();
    encode_event(&mut out, "STOP", &(), Timestamp { seconds: 1, microseconds: 2 }).unwrap();
    let Message::Event(e) = decode(&out) else { panic!("not an event") };
    assert_eq!((e.name.as_str(), e.data.is_none()), ("STOP", true));
    assert_eq!(e.data_value(), Value::Null);
    assert_eq!(e.data_as::<Map<String, Value>>().unwrap(), Map::new());
    assert_eq!(e.to_json(), json!({"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}));
}

#[test]
fn unknown_shapes_are_kept_whole() {
    for v in [
        json!({}),
        json!({"hello": "world"}),
        json!({"return": {}, "error": {"class": "GenericError", "desc": "both"}, "id": 1}),
        json!({"QMP": 1}),
        json!({"data": {"a": 1}, "timestamp": {"seconds": 1, "microseconds": 2}}),
    ] {
        assert_eq!(decode(v.to_string().as_bytes()), Message::Unknown(object(v.clone())), "{v}");
    }
}

#[test]
fn ids_of_every_json_type_are_echoed() {
    for id in [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.5),
        json!("s \" \u{e9} \u{1F600}"),
        json!([1, [2, {"a": null}]]),
        json!({"k": {"nested": ["v"]}}),
    ] {
        let bytes = format!(r#"{{"return": {{}}, "id": {id}}}"#);
        let Message::Response(r) = decode(bytes.as_bytes()) else { panic!("not a response") };
        assert_eq!(r.id.as_ref(), Some(&id), "{bytes}");
        let bytes = format!(r#"{{"id": {id}, "error": {{"class": "GenericError", "desc": "d"}}}}"#);
        let Message::Response(r) = decode(bytes.as_bytes()) else { panic!("not a response") };
        assert_eq!(r.id.as_ref(), Some(&id), "{bytes}");

        // And through a request, as a server would read it and a client writes it.
        let mut out = Vec::new();
        encode_request(&mut out, "query-status", &(), Some(&id), false).unwrap();
        let req: Request = serde_json::from_slice(&out).unwrap();
        assert_eq!((req.execute.as_str(), req.id.as_ref(), req.oob), ("query-status", Some(&id), false));
    }
}

#[test]
fn requests_round_trip_including_exec_oob() {
    let mut out = Vec::new();
    encode_request(&mut out, "yank", &json!({"instances": []}), Some(&1), true).unwrap();
    let req: Request = serde_json::from_slice(&out).unwrap();
    assert!(req.oob, "exec-oob must read back as out-of-band");
    assert_eq!(req.arguments, Some(object(json!({"instances": []}))));
    let again = serde_json::to_vec(&req).unwrap();
    assert_eq!(serde_json::from_slice::<Request>(&again).unwrap(), req);

    let req: Request = serde_json::from_str(r#"{"execute": "stop", "arguments": null}"#).unwrap();
    assert_eq!((req.arguments, req.id, req.oob), (None, None, false));
    let clash = serde_json::from_str::<Request>(r#"{"execute": "a", "exec-oob": "b"}"#).unwrap_err();
    assert!(clash.to_string().contains("clashes"), "{clash}");
    assert!(serde_json::from_str::<Request>(r#"{"arguments": {}}"#).is_err());
}

#[test]
fn malformed_messages_give_clear_errors() {
    let cases: [(&[u8], &str); 8] = [
        (b"[]", "expected a QMP message object"),
        (b"1", "expected a QMP message object"),
        (b"\"s\"", "expected a QMP message object"),
        (br#"{"event": 1}"#, "invalid type"),
        (br#"{"error": "boom"}"#, "invalid type"),
        (br#"{"return": {}"#, "EOF"),
        (b"{'return': {}}", "key must be a string"),
        (b"{\"return\": \"\xc3\"}", "invalid unicode"),
    ];
    for (bytes, expect) in cases {
        let e = Message::from_slice(bytes).expect_err(&String::from_utf8_lossy(bytes));
        let DecodeError::Json(inner) = &e else { panic!("unexpected error kind {e:?}") };
        assert!(e.to_string().contains(expect), "{:?}: {e} ({inner})", String::from_utf8_lossy(bytes));
    }
}
