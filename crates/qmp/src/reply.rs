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
    std::str::from_utf8(num).ok()?.parse().ok()
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
