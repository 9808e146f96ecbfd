//! Which call a reply belongs to: only ever one whose id we sent. QEMU-shaped replies are
//! routed by the id at their end without a parse, and our own sequential ids are hashed with
//! one multiply.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde_json::Value;

/// The pending calls, by the id each was sent with.
pub(crate) type CallMap<R> = HashMap<u64, R, BuildHasherDefault<IdHasher>>;

/// The call id a parsed reply answers: `Some` only when its `id` is the JSON value one of our
/// calls could have been sent with. Calls are sent with unsigned integer ids, so anything else
/// (no id, a string such as `"1"`, `null`, `-1`, `1.5`, `1.0`, an array or object) answers
/// none of them, whatever is pending.
///
/// An id-less reply is what QEMU sends when it could not read a request at all; ours are
/// always well-formed and carry an id, so such a reply is never one of our calls' answers.
///
/// ```
/// use serde_json::json;
/// assert_eq!(qmp_proto::client::our_call_id(Some(&json!(7))), Some(7));
/// assert_eq!(qmp_proto::client::our_call_id(Some(&json!("7"))), None);
/// assert_eq!(qmp_proto::client::our_call_id(None), None);
/// ```
pub fn our_call_id(id: Option<&Value>) -> Option<u64> {
    match id? {
        // `as_u64` is None for negative numbers and for any number written as a float
        // (`1.0`, `1e0`): those are other JSON values than the integer we sent.
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// The id of a reply in QEMU's exact shape, `{"return"|"error": ..., "id": N}`, read from the
/// frame's end without parsing it; None for anything else (which takes the full parse).
///
/// perf: with it a typed call's reply is parsed once, by its caller straight into its own
/// type, instead of once here and again there (BENCHMARKS.md, "Earlier changes", 2).
///
/// ```
/// assert_eq!(qmp_proto::client::fast_reply_id(br#"{"return": {}, "id": 7}"#), Some(7));
/// assert_eq!(qmp_proto::client::fast_reply_id(br#"{"id": 7, "return": {}}"#), None);
/// ```
pub fn fast_reply_id(bytes: &[u8]) -> Option<u64> {
    if !(bytes.starts_with(b"{\"return\"") || bytes.starts_with(b"{\"error\"")) {
        return None;
    }
    let body = bytes.strip_suffix(b"}")?;
    let digits = body.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let (head, num) = body.split_at(body.len() - digits);
    let head = head.strip_suffix(b" ").unwrap_or(head);
    let head = head.strip_suffix(b"\"id\":")?;
    let head = head.strip_suffix(b" ").unwrap_or(head);
    head.strip_suffix(b",")?;
    // At most 19 digits (checked above): below u64::MAX, so no overflow.
    Some(num.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Hashes the client's own sequential call ids with one multiply (Fibonacci hashing): SipHash
/// guards against keys an attacker chooses, and these are ours.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use super::{fast_reply_id, our_call_id};
    use serde_json::json;

    #[test]
    fn a_reply_is_ours_only_by_an_id_we_could_have_sent() {
        assert_eq!(our_call_id(Some(&json!(1))), Some(1));
        assert_eq!(our_call_id(Some(&json!(u64::MAX))), Some(u64::MAX));
        assert_eq!(our_call_id(None), None);
        for other in
            [json!("1"), json!("str"), json!(null), json!(-1), json!(1.5), json!(1.0), json!([1]), json!({})]
        {
            assert_eq!(our_call_id(Some(&other)), None, "{other}");
        }
    }

    #[test]
    fn reads_the_id_of_qemus_reply_shapes_only() {
        assert_eq!(fast_reply_id(br#"{"return": {}, "id": 7}"#), Some(7));
        assert_eq!(fast_reply_id(br#"{"return":{},"id":18446744073}"#), Some(18_446_744_073));
        assert_eq!(fast_reply_id(br#"{"error": {"class": "GenericError", "desc": "x"}, "id": 0}"#), Some(0));
        assert_eq!(
            fast_reply_id(br#"{"return": 1, "id": 9999999999999999999}"#),
            Some(9_999_999_999_999_999_999)
        );
        // Anything else takes the full parse.
        for other in [
            &br#"{"return": 1, "id": 99999999999999999999}"#[..], // 20 digits
            br#"{"return": {}, "id": "7"}"#,
            br#"{"return": {"id": 7}}"#,
            br#"{"id": 7, "return": {}}"#,
            br#"{"event": "STOP", "id": 7}"#,
            br#"{"return": [1, 2]}"#,
            br#"{"return": 5"id": 7}"#,
        ] {
            assert_eq!(fast_reply_id(other), None, "{}", String::from_utf8_lossy(other));
        }
    }
}
