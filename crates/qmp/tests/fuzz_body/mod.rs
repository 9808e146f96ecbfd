//! The body of the `schema_scan` fuzz target (`fuzz/fuzz_targets/schema_scan.rs` includes this
//! file), shared with `tests/fuzz.rs` so that CI runs it over random inputs too.
//!
//! `QueryQmpSchema::decode_reply` reads a reply in QEMU's shape with a scanner of its own and
//! hands anything it does not expect to serde's path. The input is either a reply frame as it
//! is (first byte even) or a real-shaped schema reply edited by the rest of the input (first
//! byte odd), which keeps most inputs inside the scanner. It checks:
//! - nothing panics;
//! - the scanner agrees with serde: `decode_reply` gives what `qmp::decode_reply` (serde's
//!   path, with nothing of the scanner) gives, the same entries or the same error;
//! - decoded entries re-serialise: their JSON decodes again to the same entries.
#![allow(dead_code)] // each test binary that includes this uses a different part

use qmp::commands::{QueryQmpSchema, SchemaInfo};
use qmp::Command;

/// One entry of each shape QEMU 7.2's schema has, as QEMU writes them (members cut short),
/// in a reply frame.
pub const REPLY: &str = r#"{"return": [{"name": "query-status", "ret-type": "1", "meta-type": "command", "arg-type": "0"}, {"name": "SHUTDOWN", "meta-type": "event", "arg-type": "2"}, {"name": "blockdev-snapshot", "ret-type": "0", "meta-type": "command", "arg-type": "27", "features": ["allow-write-only-overlay"]}, {"name": "migrate-recover", "ret-type": "0", "allow-oob": true, "meta-type": "command", "arg-type": "158"}, {"name": "0", "members": [], "meta-type": "object"}, {"name": "[10]", "element-type": "10", "meta-type": "array"}, {"name": "49", "tag": "driver", "variants": [{"case": "blkdebug", "type": "294"}, {"case": "blklogwrites", "type": "295"}], "members": [{"name": "driver", "type": "281"}, {"name": "node-name", "default": null, "type": "str"}], "meta-type": "object"}, {"name": "str", "json-type": "string", "meta-type": "builtin"}, {"name": "118", "members": [{"name": "tpm-tis"}, {"name": "tpm-crb", "features": ["unstable"]}], "meta-type": "enum", "values": ["tpm-tis", "tpm-crb"]}, {"name": "290", "members": [{"type": "str"}, {"type": "37"}], "meta-type": "alternate"}], "id": 7}"#;

/// What an edit may insert: the reply's punctuation, member names, values, odd bytes.
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
    b"-",
    b"null",
    b"true",
    b"false",
    b"1",
    b"\"name\": ",
    b"\"meta-type\": ",
    b"\"members\": []",
    b"\"features\": [\"x\"]",
    b"\"default\": null",
    b"\"default\": 1",
    b"\"type\": \"int\"",
    b"\"variants\": []",
    b"\"tag\": \"t\"",
    b"\"arg-type\": \"0\"",
    b"\"ret-type\": \"1\"",
    b"\"allow-oob\": ",
    b"\"values\": [\"a\"]",
    b"\"element-type\": \"str\"",
    b"\"json-type\": \"int\"",
    b"\"builtin\"",
    b"\"enum\"",
    b"\"object\"",
    b"\"command\"",
    b"\"event\"",
    b"\"array\"",
    b"\"alternate\"",
    b"\"future\": {}",
    b"\\\"",
    b"\\u0041",
    b"\xc3\xa9",
    b"\xc3",
    b"\xff",
    b"\x00",
    b"\x1f",
    b"\"error\"",
    b", \"id\": 1}",
];

/// Runs one fuzz input.
pub fn run(data: &[u8]) {
    check(&frame_from(data));
}

/// The frame an input stands for: the bytes after the first, or the edited reply.
pub fn frame_from(data: &[u8]) -> Vec<u8> {
    let Some((&mode, rest)) = data.split_first() else { return Vec::new() };
    if mode % 2 == 0 {
        return rest.to_vec();
    }
    let mut frame = REPLY.as_bytes().to_vec();
    for op in rest.chunks(4) {
        let [hi, lo, kind, piece] = <[u8; 4]>::try_from(op).unwrap_or([op[0], 0, 0, 0]);
        let at = usize::from(u16::from_be_bytes([hi, lo])) % (frame.len() + 1);
        let piece = PIECES[usize::from(piece) % PIECES.len()];
        match kind % 3 {
            0 => drop(frame.splice(at..at, piece.iter().copied())),
            1 => drop(frame.drain(at..(at + 1 + usize::from(kind / 3 % 8)).min(frame.len()))),
            _ => drop(frame.splice(at..(at + 1).min(frame.len()), piece.iter().copied())),
        }
    }
    frame
}

/// Decodes `frame` with the scanner and with serde's path, and checks they agree.
pub fn check(frame: &[u8]) {
    let scanned = QueryQmpSchema::decode_reply(frame);
    let reference = qmp::decode_reply::<Vec<SchemaInfo>>(QueryQmpSchema::NAME, frame);
    match (&scanned, &reference) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "the scanner differs from serde for {}", String::from_utf8_lossy(frame))
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
        _ => panic!(
            "the scanner gives {scanned:?}, serde {reference:?}, for {}",
            String::from_utf8_lossy(frame)
        ),
    }
    if let Ok(entries) = scanned {
        let text = serde_json::to_string(&entries).expect("decoded entries serialise");
        let again: Vec<SchemaInfo> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text} does not decode again: {e}"));
        assert_eq!(entries, again, "entries changed through their JSON {text}");
    }
}
