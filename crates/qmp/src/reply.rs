//! What the async and the blocking client share about replies: QEMU-shaped replies are routed
//! by the id at their end, and our own sequential ids hash with one multiply.

use std::hash::Hasher;

/// The id of a reply in QEMU's exact shape, `{"return"|"error": ..., "id": N}`, read from the
/// frame's end without parsing it; None for anything else (which takes the full parse).
pub(crate) fn fast_reply_id(bytes: &[u8]) -> Option<u64> {
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
#[derive(Default)]
pub(crate) struct IdHasher(u64);

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
    use super::fast_reply_id;

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
