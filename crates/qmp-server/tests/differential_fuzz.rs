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

const COMMANDS: &[&str] = &[
    "query-status",
    "query-name",
    "device_del",
    "block-job-pause",
    "block-job-set-speed",
    "human-monitor-command",
    "query-yank",
    "yank",
    "migrate-set-capabilities",
    "query-migrate-capabilities",
    "blockdev-del",
    "qmp_capabilities",
    "nope",
    "job-dismiss",
    "block-stream",
    "blockdev-mirror",
];
const ARG_KEYS: &[&str] = &[
    "device",
    "speed",
    "command-line",
    "instances",
    "type",
    "capabilities",
    "capability",
    "state",
    "node-name",
    "job-id",
    "sync",
    "target",
    "enable",
    "id",
    "foo",
];
const VALUES: &[&str] = &[
    "1",
    "\"s\"",
    "true",
    "null",
    "{}",
    "[]",
    "{\"a\": 1}",
    "[\"x\"]",
    "\"info status\"",
    "\"oob\"",
    "1.5",
    "-1",
    "\"events\"",
    "\"chardev\"",
    "\"full\"",
    "[{\"type\": \"chardev\", \"id\": \"nope\"}]",
    "[{\"capability\": \"events\", \"state\": true}]",
    "9223372036854775808",
    "-9223372036854775809",
    "1e2",
    "18446744073709551616",
    "0",
    "[{\"capability\": \"xbzrle\"}]",
    "[\"oob\"]",
];

fn value(rng: &mut Lcg, depth: usize) -> String {
    if depth < 2 && rng.next(4) == 0 {
        return args(rng, depth + 1);
    }
    VALUES[rng.next(VALUES.len())].to_string()
}

/// An object of argument-like members.
fn args(rng: &mut Lcg, depth: usize) -> String {
    let members: Vec<String> = (0..rng.next(4))
        .map(|_| format!("\"{}\": {}", ARG_KEYS[rng.next(ARG_KEYS.len())], value(rng, depth)))
        .collect();
    format!("{{{}}}", members.join(", "))
}

/// A request: usually a command, usually arguments, sometimes an id or a stray member.
fn request(rng: &mut Lcg) -> String {
    let mut members = Vec::new();
    match rng.next(8) {
        0 => {}
        1 => members.push(format!("\"exec-oob\": \"{}\"", COMMANDS[rng.next(COMMANDS.len())])),
        2 => members.push(format!("\"execute\": {}", value(rng, 2))),
        _ => members.push(format!("\"execute\": \"{}\"", COMMANDS[rng.next(COMMANDS.len())])),
    }
    if rng.next(4) > 0 {
        let a = if rng.next(10) == 0 { value(rng, 2) } else { args(rng, 0) };
        members.push(format!("\"arguments\": {a}"));
    }
    if rng.next(3) == 0 {
        members.push(format!("\"id\": {}", value(rng, 1)));
    }
    if rng.next(10) == 0 {
        members.push(format!("\"{}\": 1", ["foo", "exec-oob", "execute", "control"][rng.next(4)]));
    }
    // Shuffle: QEMU checks members in its hash order, not the order sent.
    for i in (1..members.len()).rev() {
        members.swap(i, rng.next(i + 1));
    }
    format!("{{{}}}", members.join(", "))
}

/// Requests of random shape (right and wrong members, right and wrong types), with and
/// without oob: the checks QEMU makes, in its order, with its texts.
#[test]
fn random_requests_get_the_same_replies() {
    let seed = std::env::var("QMP_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x0b1e_c7ed);
    let cases: usize = std::env::var("QMP_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    for negotiate in [
        &b"{\"execute\": \"qmp_capabilities\"}"[..],
        b"{\"execute\": \"qmp_capabilities\", \"arguments\": {\"enable\": [\"oob\"]}}",
    ] {
        let mut rng = Lcg(seed);
        let mut steps = vec![s(negotiate)];
        for _ in 0..cases {
            let req = request(&mut rng);
            steps.push(s(req));
        }
        let (qemu, sim) = (Peer::qemu_system(), Peer::sim());
        compare(&qemu, &sim, &steps);
    }
}
