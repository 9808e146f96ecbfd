//! Property tests in the manner of redis-rs's `tests/parser.rs`: random sequences of valid
//! QMP messages, written in every way a peer may write them (compact, pretty, with random
//! whitespace, QEMU's single quotes, the crate's own encoders), cut at random split points,
//! frame to exactly the messages written and decode to the same messages. And garbage, cut
//! anywhere, never stops the framer from finding the next message after a 0xFF reset.

mod fuzz_body;

use fuzz_body::{frame_stream, Out, XorShift};
use proptest::prelude::*;
use qmp_proto::{
    encode_error, encode_event, encode_greeting, encode_request, encode_return, standardize_quotes,
    ErrorClass, Greeting, Message, QmpError, Timestamp, Version, VersionTriple, DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_MESSAGE_SIZE,
};
use serde_json::{json, Map, Value};

/// Strings full of what a framer could trip on: quotes, backslashes, brackets, line ends,
/// control characters (escaped when written), and multi-byte UTF-8.
fn text() -> impl Strategy<Value = String> {
    "[a-z'\"\\\\{}\\[\\]:, \t\n\r\u{1}\u{7f}\u{e9}\u{1F600}]{0,10}"
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop::sample::select(vec![0.5, -2.25, 1e10, 3.0e-5]).prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => [("value".to_owned(), other)].into_iter().collect(),
    }
}

/// One message, as the JSON object it stands for, and how to write it.
#[derive(Debug, Clone)]
enum Kind {
    Greeting(Vec<String>, String),
    Return(Value, Option<Value>),
    Error(String, String, Option<Value>),
    Event(String, Value, i64),
    Request(String, Map<String, Value>, Option<Value>, bool),
}

fn message() -> impl Strategy<Value = (Kind, u8, u64)> {
    let id = || prop::option::of(json_value());
    let kind = prop_oneof![
        (prop::collection::vec(text(), 0..3), text()).prop_map(|(c, p)| Kind::Greeting(c, p)),
        (json_value(), id()).prop_map(|(v, id)| Kind::Return(v, id)),
        (prop::sample::select(vec!["GenericError", "CommandNotFound", "Novel"]), text(), id())
            .prop_map(|(c, d, id)| Kind::Error(c.into(), d, id)),
        (text(), json_value(), any::<i64>()).prop_map(|(n, d, s)| Kind::Event(n, d, s)),
        (text(), json_value().prop_map(object), id(), any::<bool>())
            .prop_map(|(n, a, id, oob)| Kind::Request(n, a, id, oob)),
    ];
    // How it is written (see `write`), and a seed for the whitespace.
    (kind, 0u8..5, any::<u64>())
}

impl Kind {
    fn to_value(&self) -> Value {
        let with_id = |mut m: Map<String, Value>, id: &Option<Value>| {
            if let Some(id) = id {
                m.insert("id".into(), id.clone());
            }
            Value::Object(m)
        };
        match self {
            Kind::Greeting(caps, package) => json!({"QMP": {
                "version": {"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": package},
                "capabilities": caps}}),
            Kind::Return(v, id) => with_id(object(json!({"return": v})), id),
            Kind::Error(class, desc, id) => {
                with_id(object(json!({"error": {"class": class, "desc": desc}})), id)
            }
            Kind::Event(name, data, secs) => {
                let mut m =
                    object(json!({"event": name, "timestamp": {"seconds": secs, "microseconds": 999_999}}));
                if !data.is_null() {
                    m.insert("data".into(), data.clone()); // QEMU leaves out what is not there
                }
                Value::Object(m)
            }
            Kind::Request(name, args, id, oob) => {
                let key = if *oob { "exec-oob" } else { "execute" };
                let mut m = object(json!({ key: name }));
                if !args.is_empty() {
                    m.insert("arguments".into(), Value::Object(args.clone()));
                }
                with_id(m, id)
            }
        }
    }

    /// Writes with the crate's encoders.
    fn encode(&self, out: &mut Vec<u8>) {
        let r = match self {
            Kind::Greeting(caps, package) => {
                let version = Version {
                    qemu: VersionTriple { major: 7, minor: 2, micro: 22 },
                    package: package.clone(),
                };
                encode_greeting(out, &Greeting { version, capabilities: caps.clone(), extra: Map::new() })
            }
            Kind::Return(v, id) => encode_return(out, v, id.as_ref()),
            Kind::Error(class, desc, id) => {
                encode_error(out, &QmpError::new(ErrorClass::from(&**class), desc), id.as_ref())
            }
            Kind::Event(name, data, secs) => {
                encode_event(out, name, data, Timestamp { seconds: *secs, microseconds: 999_999 })
            }
            Kind::Request(name, args, id, oob) => encode_request(out, name, args, id.as_ref(), *oob),
        };
        r.unwrap();
    }
}

/// A writer of JSON text with random whitespace between tokens and, optionally, QEMU's
/// single-quoted strings. Returns whether it used QEMU's quote extensions.
struct Writer {
    rng: XorShift,
    single: bool,
    used_quote_extension: bool,
}

impl Writer {
    fn ws(&mut self, out: &mut Vec<u8>) {
        for _ in 0..self.rng.below(3) {
            out.extend_from_slice([&b" "[..], b"\t", b"\n", b"\r\n", b"   "][self.rng.below(5)]);
        }
    }

    fn string(&mut self, s: &str, out: &mut Vec<u8>) {
        if !self.single {
            if s.contains('\'') && self.rng.below(2) == 0 {
                // QEMU also reads \' in a double-quoted string.
                let escaped = serde_json::to_string(s).unwrap().replace('\'', "\\'");
                out.extend_from_slice(escaped.as_bytes());
                self.used_quote_extension = true;
            } else {
                serde_json::to_writer(&mut *out, s).unwrap();
            }
            return;
        }
        self.used_quote_extension = true;
        out.push(b'\'');
        for c in s.chars() {
            match c {
                '\'' => out.extend_from_slice(b"\\'"),
                '"' if self.rng.below(2) == 0 => out.extend_from_slice(b"\\\""),
                '"' => out.push(b'"'),
                c if (c as u32) < 0x20 || c == '\\' => {
                    // serde_json's own escapes (\n, \t, \u0001, \\) mean the same in QEMU's.
                    let quoted = serde_json::to_string(&c.to_string()).unwrap();
                    out.extend_from_slice(&quoted.as_bytes()[1..quoted.len() - 1]);
                }
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        out.push(b'\'');
    }

    fn value(&mut self, v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::String(s) => self.string(s, out),
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    self.ws(out);
                    if i > 0 {
                        out.push(b',');
                        self.ws(out);
                    }
                    self.value(item, out);
                }
                self.ws(out);
                out.push(b']');
            }
            Value::Object(m) => {
                out.push(b'{');
                for (i, (k, item)) in m.iter().enumerate() {
                    self.ws(out);
                    if i > 0 {
                        out.push(b',');
                        self.ws(out);
                    }
                    self.string(k, out);
                    self.ws(out);
                    out.push(b':');
                    self.ws(out);
                    self.value(item, out);
                }
                self.ws(out);
                out.push(b'}');
            }
            scalar => serde_json::to_writer(&mut *out, scalar).unwrap(),
        }
    }
}

/// Writes one message in style `style`; returns its bytes (trimmed) and whether the frame
/// should be flagged `single_quoted`.
fn write(kind: &Kind, style: u8, seed: u64) -> (Vec<u8>, bool) {
    let value = kind.to_value();
    let mut out = Vec::new();
    let mut quote_extension = false;
    match style {
        0 => serde_json::to_writer(&mut out, &value).unwrap(),
        1 => serde_json::to_writer_pretty(&mut out, &value).unwrap(),
        2 => kind.encode(&mut out),
        _ => {
            let mut w = Writer { rng: XorShift::new(seed), single: style == 4, used_quote_extension: false };
            w.value(&value, &mut out);
            quote_extension = w.used_quote_extension;
        }
    }
    let end = out.iter().rposition(|b| !b" \t\r\n".contains(b)).map_or(0, |i| i + 1);
    out.truncate(end);
    (out, quote_extension)
}

/// A decoded message reduced to plain JSON, so that messages written with different
/// whitespace compare equal (the raw return and data texts differ).
fn normalize(m: Message) -> Value {
    let raw = |r: &qmp_proto::RawValue| serde_json::from_str::<Value>(r.get()).unwrap();
    match m {
        Message::Greeting(g) => json!({"greeting": g}),
        Message::Response(r) => json!({
            "id": r.id,
            "result": match &r.result { Ok(v) => json!({"ok": raw(v)}), Err(e) => json!({"err": e}) },
            "extra": r.extra,
        }),
        Message::Event(e) => json!({"event": e.to_json()}),
        Message::Unknown(m) => json!({"unknown": m}),
        other => panic!("unexpected message {other:?}"),
    }
}

fn cut_reads(len: usize, cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    points.push(len);
    points.sort_unstable();
    points.dedup();
    let mut reads = Vec::new();
    let mut at = 0;
    for p in points {
        if p > at {
            reads.push(p - at);
            at = p;
        }
    }
    reads
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn messages_cut_at_random_points_frame_and_decode_the_same(
        messages in prop::collection::vec(message(), 1..6),
        seps in prop::collection::vec(prop::sample::select(vec![&b""[..], b"\n", b"\r\n", b" ", b"\t\r\n \n"]), 6),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, (kind, style, seed)) in messages.iter().enumerate() {
            let (bytes, single_quoted) = write(kind, *style, *seed);
            stream.extend_from_slice(&bytes);
            stream.extend_from_slice(seps[i]);
            expected.push(Out::Frame(bytes, single_quoted));
        }
        expected.push(Out::Partial(0));

        let reads = cut_reads(stream.len(), &cuts);
        let mut next = reads.iter().copied();
        let outs = frame_stream(&stream, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_DEPTH, &mut || next.next().unwrap_or(usize::MAX));
        prop_assert_eq!(&outs, &expected);

        for ((kind, _, _), out) in messages.iter().zip(&outs) {
            let Out::Frame(bytes, single_quoted) = out else { unreachable!() };
            let json = if *single_quoted { standardize_quotes(bytes) } else { bytes.clone() };
            let value: Value = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(&value, &kind.to_value());
            if !matches!(kind, Kind::Request(..)) {
                let reference = Message::from_slice(&serde_json::to_vec(&kind.to_value()).unwrap()).unwrap();
                prop_assert_eq!(normalize(Message::from_slice(&json).unwrap()), normalize(reference));
            }
        }
    }

    #[test]
    fn garbage_cut_anywhere_then_0xff_resets_and_the_next_message_frames(
        garbage in prop::collection::vec(any::<u8>(), 0..400),
        (kind, style, seed) in message(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        cap in prop::sample::select(vec![64usize, 4096, DEFAULT_MAX_MESSAGE_SIZE]),
    ) {
        let (bytes, single_quoted) = write(&kind, style, seed);
        let stream = [&garbage[..], b"\xff", &bytes].concat();
        let reads = cut_reads(stream.len(), &cuts);
        let mut next = reads.iter().copied();
        let outs = frame_stream(&stream, cap, DEFAULT_MAX_DEPTH, &mut || next.next().unwrap_or(usize::MAX));
        // The end of the stream: the message (or its TooLarge, when over a small cap).
        let n = outs.len();
        prop_assert_eq!(&outs[n - 1], &Out::Partial(0));
        if bytes.len() <= cap {
            prop_assert_eq!(&outs[n - 2], &Out::Frame(bytes, single_quoted));
        } else {
            prop_assert_eq!(&outs[n - 2], &Out::Error(qmp_proto::FrameError::TooLarge { limit: cap }));
        }
    }
}
