//! The body of the `event_decode` fuzz target (`fuzz/fuzz_targets/event_decode.rs` includes
//! this file), shared with `tests/fuzz_event.rs` so that CI runs it over random inputs too.
//!
//! `Message::from_slice` reads an event in QEMU's exact shape without serde's walk and leaves
//! anything else to the general decode. The input is either a frame as it is (first byte
//! even) or one of QEMU's event lines edited by the rest of the input (first byte odd), which
//! lands near the fast path's edges far more often than random bytes do. It checks:
//! - nothing panics;
//! - the fast path agrees with the general decode: the same frame behind one leading space
//!   (which the general decode skips and the fast path refuses) decodes to the same message,
//!   or fails as well;
//! - a decoded event re-serialises: its JSON form decodes again to the same JSON form.
#![allow(dead_code)] // each test binary that includes this uses a different part

use qmp_proto::Message;
use serde_json::Value;

/// Event lines as QEMU 7.2 writes them, and two near misses.
pub const LINES: &[&str] = &[
    "{\"timestamp\": {\"seconds\": 1796026788, \"microseconds\": 232004}, \"event\": \"STOP\"}",
    "{\"timestamp\": {\"seconds\": 1796026788, \"microseconds\": 232587}, \"event\": \"RESET\", \"data\": {\"guest\": false, \"reason\": \"host-qmp-system-reset\"}}",
    "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"running\", \"id\": \"j}0\"}}\r\n",
    "{\"timestamp\": {\"seconds\": 0, \"microseconds\": 0}, \"event\": \"X\", \"data\": [1, -2.5e3, null, \"\\u00e9\"]}",
    "{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}",
    "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, \"event\": \"STOP\", \"id\": 4}",
];

/// What an edit may insert: the shape's punctuation, numbers, escapes, odd bytes.
pub const PIECES: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b" ",
    b"\t",
    b"\n",
    b"0",
    b"9",
    b"-",
    b".",
    b"e",
    b"00",
    b"123456789012345678",
    b"1234567890123456789",
    b"null",
    b"true",
    b", \"data\": ",
    b", \"data\": {}",
    b"\"event\": ",
    b"\"timestamp\": ",
    b"\\u0000",
    b"\\\"",
    b"\xc3\xa9",
    b"\xc3",
    b"\xff",
    b"\x00",
    b"\x1f",
    b"}}",
    b"\"seconds\"",
];

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    check(&frame_from(data));
}

/// The frame an input stands for: the bytes after the first, or an edited event line.
pub fn frame_from(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else { return Vec::new() };
    if mode % 2 == 0 {
        return rest.to_vec();
    }
    let mut frame = LINES[usize::from(mode / 2) % LINES.len()].as_bytes().to_vec();
    for op in rest.chunks(4) {
        let [hi, lo, kind, piece] = <[u8; 4]>::try_from(op).unwrap_or([op[0], 0, 0, 0]);
        let at = usize::from(u16::from_be_bytes([hi, lo])) % (frame.len() + 1);
        let piece = PIECES[usize::from(piece) % PIECES.len()];
        match kind % 3 {
            0 => drop(frame.splice(at..at, piece.iter().copied())),
            1 => drop(frame.drain(at..(at + 1 + usize::from(kind / 3 % 4)).min(frame.len()))),
            _ => drop(frame.splice(at..(at + 1).min(frame.len()), piece.iter().copied())),
        }
    }
    frame
}

/// Decodes `frame` both ways and checks they agree.
pub fn check(frame: &[u8]) {
    let fast = Message::from_slice(frame);
    let general = Message::from_slice(&[b" ", frame].concat());
    match (&fast, &general) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "the fast path differs from the general decode: {:?}", lossy(frame))
        }
        (Err(_), Err(_)) => {}
        _ => panic!("one decode failed, the other not: {fast:?} vs {general:?} for {:?}", lossy(frame)),
    }
    if let Ok(Message::Event(event)) = fast {
        let json = event.to_json();
        let text = serde_json::to_string(&json).expect("an event's JSON serialises");
        let again = match Message::from_slice(text.as_bytes()) {
            Ok(Message::Event(e)) => e.to_json(),
            other => panic!("{text} decodes as {other:?}, not an event"),
        };
        assert!(same(&json, &again), "{json} came back as {again}");
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Equal JSON values, floats allowed the last-digit difference of serde_json's default float
/// parsing.
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
