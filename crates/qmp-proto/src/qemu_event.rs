//! An event in the exact shape QEMU writes, read without serde's token walk:
//! `{"timestamp": {"seconds": S, "microseconds": U}, "event": "NAME"}`, with
//! `, "data": D` before the closing brace when the event has data. An event storm (a block
//! job's progress, a guest's balloon changes) is the most messages a client decodes, and this
//! shape is all QEMU sends; anything else goes to the general decode, which gives the same
//! [`Event`] for this shape.

use serde_json::value::RawValue;
use serde_json::Map;

use crate::message::{Event, Timestamp};

/// The event `text` holds when it is in QEMU's shape; `None` for any other text, including
/// any this reader is unsure of (a sign or leading zero in a number, an escape in the name,
/// data that is not one JSON value), which the general decode then reads or refuses.
pub(crate) fn parse(text: &str) -> Option<Event> {
    let text = text.trim_end_matches([' ', '\t', '\r', '\n']);
    let rest = text.strip_prefix(r#"{"timestamp": {"seconds": "#)?;
    let (seconds, rest) = number(rest)?;
    let rest = rest.strip_prefix(r#", "microseconds": "#)?;
    let (microseconds, rest) = number(rest)?;
    let rest = rest.strip_prefix(r#"}, "event": ""#)?;
    let end = rest.bytes().position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
    let (name, rest) = (rest.get(..end)?, rest.get(end..)?.strip_prefix('"')?);
    let data = match rest {
        "}" => None,
        _ => {
            let raw = rest.strip_prefix(r#", "data": "#)?.strip_suffix('}')?;
            // Whitespace around the value would be left out of the general decode's raw
            // capture; leave such text to it.
            if raw.starts_with([' ', '\t', '\r', '\n']) || raw.ends_with([' ', '\t', '\r', '\n']) {
                return None;
            }
            // One JSON value or nothing: a `}` or `,` that closed the object earlier makes
            // this fail.
            Some(serde_json::from_str::<Box<RawValue>>(raw).ok()?)
        }
    };
    Some(Event {
        name: name.to_owned(),
        data,
        timestamp: Timestamp { seconds, microseconds },
        extra: Map::new(),
    })
}

/// A non-negative JSON integer without leading zeros, of at most 18 digits (so it fits an
/// `i64`), and the text after it.
fn number(text: &str) -> Option<(i64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 18 || (digits > 1 && text.starts_with('0')) {
        return None;
    }
    let (n, rest) = text.split_at(digits);
    Some((n.parse().ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use proptest::prelude::*;

    /// The general decode, which the fast one must agree with.
    fn general(text: &str) -> Option<Event> {
        match Message::from_text(text.as_bytes(), Some(text)) {
            Ok(Message::Event(e)) => Some(e),
            _ => None,
        }
    }

    #[test]
    fn qemus_own_events_are_read_as_the_general_decode_reads_them() {
        // As qemu-system-x86_64 7.2 wrote them (stop, cont, system_reset, quit).
        let lines = [
            "{\"timestamp\": {\"seconds\": 1796026788, \"microseconds\": 232004}, \"event\": \"STOP\"}\r\n",
            "{\"timestamp\": {\"seconds\": 1796026788, \"microseconds\": 232587}, \"event\": \"RESET\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-system-reset\"}}",
            "{\"timestamp\": {\"seconds\": 0, \"microseconds\": 0}, \"event\": \"X\", \"data\": null}",
            "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"running\", \"id\": \"j}0\"}}",
        ];
        for line in lines {
            let fast = parse(line).unwrap_or_else(|| panic!("not read: {line}"));
            assert_eq!(Some(&fast), general(line).as_ref(), "{line}");
        }
        let e = parse(lines[1]).unwrap();
        assert_eq!((e.name.as_str(), e.timestamp.microseconds), ("RESET", 232587));
        assert_eq!(e.data.unwrap().get(), r#"{"guest": false, "reason": "host-qmp-system-reset"}"#);
    }

    #[test]
    fn other_shapes_are_left_to_the_general_decode() {
        let lines = [
            r#"{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}"#,
            r#"{"timestamp": {"seconds": -1, "microseconds": 2}, "event": "STOP"}"#,
            r#"{"timestamp": {"seconds": 01, "microseconds": 2}, "event": "STOP"}"#,
            r#"{"timestamp": {"seconds": 1.5, "microseconds": 2}, "event": "STOP"}"#,
            r#"{"timestamp": {"seconds": 1234567890123456789, "microseconds": 2}, "event": "STOP"}"#,
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "ST\"OP"}"#,
            "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"ST\tOP\"}",
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP", "id": 4}"#,
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP", "data": {"a": 1}, "id": 4}"#,
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP", "data": {"a": 1}}, "x": {}"#,
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP", "data":  {"a": 1}}"#,
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP", "data": {"a": 1 }"#,
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP", "data": {"a": }}"#,
            r#"{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP""#,
            r#"{"timestamp":{"seconds":1,"microseconds":2},"event":"STOP"}"#,
        ];
        for line in lines {
            assert_eq!(parse(line), None, "{line}");
        }
    }

    /// A small JSON value, now and then with a brace or quote in a string.
    fn json() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i32>().prop_map(|n| n.to_string()),
            "[a-z{}\\[\\], \"\\\\]{0,8}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
                prop::collection::vec(("[a-z]{1,5}", inner), 0..4).prop_map(|v| {
                    let m: Vec<_> = v.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
                    format!("{{{}}}", m.join(", "))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Events in QEMU's shape (and, by a few random cuts and edits, near it): whatever the
        /// fast read returns, the general decode returns too; QEMU's shape itself is always read.
        #[test]
        fn the_fast_read_agrees_with_the_general_decode(
            seconds in 0u64..1u64 << 40,
            micros in 0u32..1_000_000,
            name in "[A-Z_]{1,20}",
            data in prop::option::of(json()),
            edit in prop::option::of((any::<prop::sample::Index>(), "[ ,:}{\"0-9a]{0,2}", 0usize..3)),
        ) {
            let mut line = format!(
                "{{\"timestamp\": {{\"seconds\": {seconds}, \"microseconds\": {micros}}}, \"event\": \"{name}\"{}}}",
                data.map(|d| format!(", \"data\": {d}")).unwrap_or_default()
            );
            if edit.is_none() {
                prop_assert!(parse(&line).is_some(), "not read: {}", line);
            }
            if let Some((at, with, cut)) = edit {
                let at = at.index(line.len() + 1);
                if line.is_char_boundary(at) && line.is_char_boundary((at + cut).min(line.len())) {
                    line.replace_range(at..(at + cut).min(line.len()), &with);
                }
            }
            if let Some(fast) = parse(&line) {
                prop_assert_eq!(Some(fast), general(&line), "{}", line);
            }
        }
    }
}
