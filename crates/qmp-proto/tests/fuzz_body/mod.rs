//! The body of the `framer` fuzz target (`fuzz/fuzz_targets/framer.rs` includes this file),
//! shared with `tests/fuzz.rs` so that CI runs it over random inputs too.
//!
//! The first four input bytes choose the caps and the read sizes; the rest is the stream.
//! It checks, for any input:
//! - nothing panics, in the framer, the decoder or `standardize_quotes`;
//! - memory is bounded: after draining, at most the size cap stays buffered, and before
//!   draining at most the cap plus one read;
//! - progress: every frame or error consumes input (no more results than input bytes);
//! - the results do not depend on how the stream was cut into reads;
//! - every frame is non-empty, within the cap, and trimmed of whitespace, and a frame that
//!   is not flagged `single_quoted` is left unchanged by `standardize_quotes`.
#![allow(dead_code)] // each test binary that includes this uses a different part

use qmp_proto::{standardize_quotes, FrameError, Framer, Message};

/// One result of the framer, owned, so that runs can be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// A frame's bytes and its `single_quoted` flag.
    Frame(Vec<u8>, bool),
    /// A reported error.
    Error(FrameError),
    /// What `finish` returned at the end of the stream.
    Finished(Vec<u8>),
    /// What `take_partial` dropped at the end of the stream.
    Partial(usize),
}

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    let (config, input) = data.split_at(data.len().min(4));
    let byte = |i: usize| config.get(i).copied().unwrap_or(0xFF);
    let max_size = 8 + usize::from(byte(0)) * 4;
    let max_depth = 1 + u32::from(byte(1)) % 40;
    let seed = u64::from(byte(2)) << 8 | u64::from(byte(3));

    let whole = frame_stream(input, max_size, max_depth, &mut || usize::MAX);
    let mut rng = XorShift::new(seed);
    let max_read = 1 + (seed as usize % 64);
    let chunked = frame_stream(input, max_size, max_depth, &mut || 1 + rng.below(max_read));
    assert_eq!(whole, chunked, "results depend on how the input was cut");
    if input.len() <= 4096 {
        let bytewise = frame_stream(input, max_size, max_depth, &mut || 1);
        assert_eq!(whole, bytewise, "results differ when fed one byte at a time");
    }
    for out in &whole {
        if let Out::Frame(bytes, single_quoted) = out {
            decode(bytes, *single_quoted);
        }
    }
}

/// Frames `input`, read by read, checking the memory and progress bounds, and returns
/// every result.
pub fn frame_stream(
    input: &[u8],
    max_size: usize,
    max_depth: u32,
    next_len: &mut dyn FnMut() -> usize,
) -> Vec<Out> {
    let mut framer = Framer::with_limits(max_size, max_depth);
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(next_len().clamp(1, rest.len()));
        rest = tail;
        framer.extend(chunk);
        assert!(
            framer.buffered() <= max_size.saturating_add(chunk.len()),
            "{} bytes buffered with a cap of {max_size} and a read of {}",
            framer.buffered(),
            chunk.len()
        );
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    check_frame(frame.bytes, max_size);
                    out.push(Out::Frame(frame.bytes.to_vec(), frame.single_quoted));
                }
                Ok(None) => break,
                Err(e) => out.push(Out::Error(e)),
            }
            let consumed = input.len() - rest.len();
            assert!(out.len() <= consumed, "{} results from {consumed} bytes: no progress", out.len());
        }
        assert!(
            framer.buffered() <= max_size,
            "{} bytes left buffered with a cap of {max_size}",
            framer.buffered()
        );
    }
    let in_partial = framer.in_partial_value();
    if let Some(frame) = framer.finish() {
        check_frame(frame.bytes, max_size);
        out.push(Out::Finished(frame.bytes.to_vec()));
    }
    let partial = framer.take_partial();
    assert!(partial == 0 || in_partial, "take_partial dropped {partial} bytes outside any value");
    assert!(!framer.in_partial_value(), "take_partial left the framer inside a value");
    assert_eq!(framer.buffered(), 0);
    out.push(Out::Partial(partial));
    out
}

fn check_frame(bytes: &[u8], max_size: usize) {
    assert!(!bytes.is_empty(), "empty frame");
    assert!(bytes.len() <= max_size, "frame of {} bytes over the {max_size}-byte cap", bytes.len());
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
    assert!(!ws(&bytes[0]) && !ws(&bytes[bytes.len() - 1]), "frame not trimmed: {bytes:?}");
}

/// Decodes a frame as the client and server would; any outcome but a panic is fine.
pub fn decode(bytes: &[u8], single_quoted: bool) {
    let standard = standardize_quotes(bytes);
    if !single_quoted {
        assert_eq!(standard, bytes, "standardize_quotes changed a frame not flagged single_quoted");
    }
    let _ = Message::from_slice(&standard);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&standard) {
        // Valid JSON: decoding must not fail for a lack of UTF-8 or syntax, only for shape.
        if let Err(e) = Message::from_slice(&standard) {
            let e = e.to_string();
            assert!(!e.contains("EOF") && !e.contains("unicode"), "valid JSON {value} failed with {e}");
        }
    }
}

/// A small deterministic generator, so that a failing input replays exactly.
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value).
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
