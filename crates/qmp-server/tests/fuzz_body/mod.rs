//! The body of the `server_input` fuzz target (`fuzz/fuzz_targets/server_input.rs` includes
//! this file), shared with `tests/fuzz.rs` so that CI runs it over random inputs too.
//!
//! The first four input bytes choose the size cap and the read sizes; the rest is what a
//! client sends, fed through the server's input stage (QEMU's lexer and streamer, then the
//! parser) by `qmp_server::fuzzing`. It checks, for any input:
//! - nothing panics;
//! - memory is bounded: between reads at most the size cap (and the byte being lexed) stays
//!   buffered;
//! - progress: no more results than input bytes;
//! - the results do not depend on how the stream was cut into reads;
//! - every value is within the cap; a parsed value nests at most QEMU's 1024 levels and
//!   re-serialises: its JSON parses back to the same value;
//! - where serde_json accepts a double-quoted value, the QEMU-mirroring parser (the path the
//!   server takes for everything else) reads the same value, or refuses a duplicate key as
//!   QEMU does.
#![allow(dead_code)] // each test binary that includes this uses a different part

use qmp_server::fuzzing::{parse_like_qemu, Out, Stream, MAX_NESTING};
use serde_json::Value;

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let (config, input) = data.split_at(data.len().min(4));
    let byte = |i: usize| config.get(i).copied().unwrap_or(0xFF);
    let max_size = if byte(0) == 0xFF { 1 << 20 } else { 2 + usize::from(byte(0)) * 8 };
    let seed = u64::from(byte(1)) << 16 | u64::from(byte(2)) << 8 | u64::from(byte(3));

    let whole = feed(input, max_size, &mut || usize::MAX);
    let mut rng = XorShift::new(seed);
    let max_read = 1 + (seed as usize % 64);
    let chunked = feed(input, max_size, &mut || 1 + rng.below(max_read));
    assert_eq!(whole, chunked, "results depend on how the input was cut");
    // Byte by byte costs a feed (and a compaction) per byte: short inputs only, which is
    // where the fuzzer spends most of its time anyway.
    if input.len() <= 512 {
        let bytewise = feed(input, max_size, &mut || 1);
        assert_eq!(whole, bytewise, "results differ when fed one byte at a time");
    }
    for out in &whole {
        if let Out::Value { bytes, single_quoted, parsed } = out {
            check_value(bytes, *single_quoted, parsed, max_size);
        }
    }
}

/// Feeds `input` read by read, checking the memory and progress bounds; returns every result.
pub fn feed(input: &[u8], max_size: usize, next_len: &mut dyn FnMut() -> usize) -> Vec<Out> {
    let mut stream = Stream::new(max_size);
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(next_len().clamp(1, rest.len()));
        rest = tail;
        stream.feed(chunk, &mut out);
        let consumed = input.len() - rest.len();
        assert!(out.len() <= consumed, "{} results from {consumed} bytes: no progress", out.len());
        let held = stream.buffered();
        assert!(held <= max_size.max(2) + 1, "{held} bytes held between reads with a cap of {max_size}");
    }
    out
}

fn check_value(bytes: &[u8], single_quoted: bool, parsed: &Result<Value, String>, max_size: usize) {
    assert!(!bytes.is_empty(), "an empty value");
    assert!(
        bytes.len() <= max_size.max(2) + 1,
        "a value of {} bytes over the cap of {max_size}",
        bytes.len()
    );
    if let Err(e) = parsed {
        assert!(e.starts_with("JSON parse error, "), "error text not QEMU's: {e}");
    }
    if let Ok(v) = parsed {
        let depth = depth(v);
        assert!(depth <= MAX_NESTING as usize, "a value nested {depth} deep");
        let text = serde_json::to_string(v).expect("a parsed value serialises");
        let again =
            parse_like_qemu(text.as_bytes()).unwrap_or_else(|e| panic!("{text} does not parse again: {e}"));
        assert!(same(v, &again), "{text} parsed again as {again}");
    }
    if !single_quoted {
        if let Ok(reference) = serde_json::from_slice::<Value>(bytes) {
            match parse_like_qemu(bytes) {
                Ok(ours) => assert!(
                    same(&ours, &reference),
                    "{} is {reference} to serde_json, {ours} to the QEMU parser",
                    String::from_utf8_lossy(bytes)
                ),
                Err(e) => assert!(
                    e.contains("duplicate key"),
                    "serde_json reads {} as {reference}; the QEMU parser refuses it: {e}",
                    String::from_utf8_lossy(bytes)
                ),
            }
        }
    }
}

/// How many arrays and objects nest in `v`, without recursing (a value may be 1024 deep).
pub fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
        if matches!(v, Value::Array(_) | Value::Object(_)) {
            deepest = deepest.max(d + 1);
        }
    }
    deepest
}

/// Equal JSON values, floats allowed the last-digit difference of serde_json's default float
/// parsing (and 0 equal to -0, which serde_json reads as a float and QEMU as an integer).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap_or(f64::NAN), y.as_f64().unwrap_or(f64::NAN));
            x == y || (x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// A small deterministic generator, so that a failing input replays exactly.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        (x % n as u64) as usize
    }
}
