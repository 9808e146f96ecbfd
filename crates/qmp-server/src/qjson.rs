//! QEMU's JSON output format, byte for byte.
//!
//! QEMU writes `", "` and `": "` separators, escapes every non-ASCII character as `\uXXXX`
//! (upper-case hex, surrogate pairs beyond the BMP), prints floats with `%.17g`, and orders an
//! object's members by the bucket of QEMU's `QDict` hash table (`tdb_hash(key) % 512`), which
//! is why `query-status` answers `{"status": ..., "singlestep": ..., "running": ...}` and an
//! error with an id starts with `"id"`. QEMU puts the member inserted last first within a
//! bucket (its insertion order is the schema's); here the map's own order stands for it.

use std::io::Write;

use serde_json::{Map, Value};

/// The number of buckets in QEMU's `QDict`.
const QDICT_BUCKETS: u32 = 512;

/// The `QDict` bucket of `key`: QEMU iterates a dict bucket by bucket.
pub fn qdict_bucket(key: &str) -> u32 {
    let bytes = key.as_bytes();
    let mut value: u32 = 0x238F_13AFu32.wrapping_mul(bytes.len() as u32);
    for (i, &c) in bytes.iter().enumerate() {
        value = value.wrapping_add((c as u32) << ((i * 5 % 24) as u32));
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345) % QDICT_BUCKETS
}

/// Appends `value` as QEMU would print it.
pub fn write_value(out: &mut Vec<u8>, value: &Value) {
    write_value_with(out, value, write_object);
}

/// Appends `value` as QEMU prints it, but every object's members in the map's own order: for
/// values read off QEMU's own output (a recording), which are in its order already.
pub fn write_value_as_read(out: &mut Vec<u8>, value: &Value) {
    fn in_order(out: &mut Vec<u8>, map: &Map<String, Value>) {
        out.push(b'{');
        for (i, (k, v)) in map.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            write_str(out, k);
            out.extend_from_slice(b": ");
            write_value_with(out, v, in_order);
        }
        out.push(b'}');
    }
    write_value_with(out, value, in_order);
}

/// [`write_value`] with `object` writing each object. Values are serde_json's, which nests
/// at most 128 deep as parsed, so the recursion is bounded.
fn write_value_with(out: &mut Vec<u8>, value: &Value, object: fn(&mut Vec<u8>, &Map<String, Value>)) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                write_value_with(out, item, object);
            }
            out.push(b']');
        }
        Value::Object(map) => object(out, map),
    }
}

/// Appends an object with its members in QEMU's order.
pub fn write_object(out: &mut Vec<u8>, map: &Map<String, Value>) {
    // Inside a bucket the member inserted last comes first, as in QEMU, whose insertion order
    // is the schema's: the map's own order (serde_json's `preserve_order`), which the
    // simulator's answers are built in.
    let mut members: Vec<(u32, usize, &String, &Value)> =
        map.iter().enumerate().map(|(i, (k, v))| (qdict_bucket(k), i, k, v)).collect();
    members.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    write_members(out, members.iter().map(|m| (m.2.as_str(), m.3)));
}

/// Appends `{k: v, ...}` for members already in order.
pub fn write_members<'a>(out: &mut Vec<u8>, members: impl Iterator<Item = (&'a str, &'a Value)>) {
    out.push(b'{');
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        write_str(out, k);
        out.extend_from_slice(b": ");
        write_value(out, v);
    }
    out.push(b'}');
}

fn write_number(out: &mut Vec<u8>, n: &serde_json::Number) {
    if let Some(i) = n.as_i64() {
        let _ = write!(out, "{i}");
    } else if let Some(u) = n.as_u64() {
        let _ = write!(out, "{u}");
    } else if let Some(f) = n.as_f64() {
        write_g17(out, f);
    }
}

/// C's `printf("%.17g", f)`, which QEMU uses for floats.
pub fn write_g17(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        out.extend_from_slice(if f.is_nan() {
            b"nan"
        } else if f > 0.0 {
            b"inf"
        } else {
            b"-inf"
        });
        return;
    }
    // 17 significant digits in scientific form tell the exponent %g picks its style by.
    let sci = format!("{f:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..17).contains(&exp) {
        let m = trim_zeros(mantissa);
        let _ = write!(out, "{m}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    } else {
        let decimals = (16 - exp).max(0) as usize;
        let fixed = format!("{f:.decimals$}");
        out.extend_from_slice(trim_zeros(&fixed).as_bytes());
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Appends a JSON string escaped as QEMU escapes it.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if (0x20..0x7F).contains(&b) && b != b'"' && b != b'\\' {
            continue;
        }
        if b >= 0x80 && !s.is_char_boundary(i) {
            continue;
        }
        out.extend_from_slice(&bytes[plain..i]);
        let ch_len = if b >= 0x80 { utf8_len(b) } else { 1 };
        plain = i + ch_len;
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0C => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => {
                let cp = s[i..].chars().next().map_or(0xFFFD, |c| c as u32);
                if cp > 0xFFFF {
                    let v = cp - 0x10000;
                    let _ = write!(out, "\\u{:04X}\\u{:04X}", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
                } else {
                    let _ = write!(out, "\\u{cp:04X}");
                }
            }
        }
    }
    out.extend_from_slice(&bytes[plain..]);
    out.push(b'"');
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        _ => 2,
    }
}

/// Renders `value` as a `String` in QEMU's format (for tests and tools).
pub fn to_string(value: &Value) -> String {
    let mut out = Vec::new();
    write_value(&mut out, value);
    // Only ASCII is ever written.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn orders_members_like_qemu() {
        assert_eq!(
            to_string(&json!({"running": true, "singlestep": false, "status": "running"})),
            r#"{"status": "running", "singlestep": false, "running": true}"#
        );
        assert_eq!(to_string(&json!({"id": 5, "error": {}})), r#"{"id": 5, "error": {}}"#);
        assert_eq!(to_string(&json!({"return": 1, "id": 5})), r#"{"return": 1, "id": 5}"#);
    }

    #[test]
    fn escapes_and_numbers_like_qemu() {
        assert_eq!(to_string(&json!("\u{e9}\u{1F600}\u{1}/\\\"")), r#""\u00E9\uD83D\uDE00\u0001/\\\"""#);
        assert_eq!(to_string(&json!(0.1)), "0.10000000000000001");
        assert_eq!(to_string(&json!(2.5)), "2.5");
        assert_eq!(to_string(&json!(1e300)), "1.0000000000000001e+300");
        assert_eq!(to_string(&json!(1.2345678901234568e29)), "1.2345678901234568e+29");
        assert_eq!(to_string(&json!(18446744073709551615u64)), "18446744073709551615");
        assert_eq!(to_string(&json!([1, [], {}])), "[1, [], {}]");
    }

    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            // serde_json's default float parser may be 1 ulp off (no `float_roundtrip`);
            // `g17_round_trips` checks the writer exactly.
            (Value::Number(x), Value::Number(y)) => {
                x == y || x.as_f64().zip(y.as_f64()).is_some_and(|(a, b)| (a - b).abs() <= a.abs() * 1e-15)
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }

    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            any::<u64>().prop_map(|u| json!(u)),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn g17_round_trips(f in proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO) {
            let mut out = Vec::new();
            write_g17(&mut out, f);
            let text = String::from_utf8(out).unwrap();
            proptest::prop_assert_eq!(text.parse::<f64>().unwrap(), f, "{}", text);
        }

        #[test]
        fn output_is_json_that_reads_back_the_same(v in arb_json()) {
            let text = to_string(&v);
            proptest::prop_assert!(text.is_ascii());
            let back: Value = serde_json::from_str(&text).unwrap();
            // %.17g prints 2.0 as "2", which reads back as an integer: compare numbers by value.
            proptest::prop_assert!(same(&back, &v), "{} vs {}", back, v);
        }
    }
}
