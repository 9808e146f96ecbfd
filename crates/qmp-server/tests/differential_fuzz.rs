//! Random garbage, the same for both: sequences of JSON fragments and bad bytes sent to real
//! QEMU and to the simulator must get the same replies, error for error. Each sequence ends
//! with a 0xFF byte and a newline, which resets both parsers, so one bad sequence cannot
//! swallow the next. The generator is seeded, so a failure names a reproducible case.

mod common;

use common::{compare, s, Peer};

const PIECES: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\"execute\"",
    b"\"query-status\"",
    b"'query-name'",
    b"\"id\"",
    b"\"arguments\"",
    b"\"exec-oob\"",
    b"'qmp_capabilities'",
    b"1",
    b"-",
    b"0",
    b".5",
    b"e",
    b"E+3",
    b"true",
    b"tru",
    b"null",
    b"\"\\u00e9\"",
    b"\"\\q\"",
    b"\"\\ud800\"",
    b"\"a\\'b\"",
    b" ",
    b"\n",
    b"\t",
    b"\x01",
    b"\xc3",
    b"\xc3\xa9",
    b"X",
    b"%",
    b"{}",
    b"[]",
    b"\"",
    b"'",
    b"\\",
    b"{\"execute\":\"query-status\"}",
    b"{\"execute\":\"nope\",\"id\":",
    b"\"x\":",
];

/// A small deterministic generator (64-bit LCG), so cases are the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

#[test]
fn random_fragments_get_the_same_replies() {
    let seed = std::env::var("QMP_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_0f9e);
    let mut rng = Lcg(seed);
    let mut steps = vec![s(b"{\"execute\": \"qmp_capabilities\"}")];
    let cases: usize = std::env::var("QMP_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    for _ in 0..cases {
        let mut bytes = Vec::new();
        for _ in 0..1 + rng.next(12) {
            bytes.extend_from_slice(PIECES[rng.next(PIECES.len())]);
        }
        bytes.extend_from_slice(b"\xff\n");
        steps.push(s(bytes));
    }
    let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
    compare(&qemu, &sim, &steps);
}
