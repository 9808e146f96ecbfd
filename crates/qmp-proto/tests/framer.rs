//! Byte-level tests of the framer: split points, caps, recovery after bad input, QEMU's
//! single quotes, bare tokens. Every stream is fed through `fuzz_body::frame_stream`, which
//! also checks the memory and progress bounds on the way.

mod fuzz_body;

use fuzz_body::{frame_stream, Out};
use qmp_proto::{
    standardize_quotes, FrameError, Framer, Message, DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE_SIZE,
};
use serde_json::{json, Value};

const GREETING: &[u8] = br#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18+b3"}, "capabilities": ["oob"]}}"#;
const RESPONSE: &[u8] =
    br#"{"return": {"status": "running", "singlestep": false, "running": true}, "id": "a}\"{"}"#;
const EVENT: &[u8] = br#"{"timestamp": {"seconds": 1700000000, "microseconds": 123456}, "event": "STOP"}"#;
const SINGLE: &[u8] = br#"{'execute': 'x', 'arguments': {'a': '}{][', 'b': 'it\'s "q"'}}"#;

fn whole(input: &[u8]) -> Vec<Out> {
    frame_stream(input, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_DEPTH, &mut || usize::MAX)
}

fn frame(bytes: &[u8], single_quoted: bool) -> Out {
    Out::Frame(bytes.to_vec(), single_quoted)
}

/// The results, minus the end-of-stream bookkeeping, when nothing was left over.
fn complete(mut outs: Vec<Out>) -> Vec<Out> {
    assert_eq!(outs.pop(), Some(Out::Partial(0)), "a partial value was left");
    outs
}

#[test]
fn every_split_point_and_bytewise_feeding_give_the_same_frames() {
    let expected =
        vec![frame(GREETING, false), frame(RESPONSE, false), frame(EVENT, false), frame(SINGLE, true)];
    for sep in [&b""[..], b"\n", b"\r\n", b" \t\r\n\r\n "] {
        let input = [GREETING, sep, RESPONSE, sep, EVENT, sep, SINGLE, sep].concat();
        assert_eq!(complete(whole(&input)), expected, "separator {sep:?}");
        for split in 1..input.len() {
            let mut first = true;
            let outs = frame_stream(&input, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_DEPTH, &mut || {
                if std::mem::take(&mut first) {
                    split
                } else {
                    usize::MAX
                }
            });
            assert_eq!(complete(outs), expected, "separator {sep:?}, split at {split}");
        }
        let bytewise = frame_stream(&input, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_DEPTH, &mut || 1);
        assert_eq!(complete(bytewise), expected, "separator {sep:?}, one byte at a time");
    }
}

#[test]
fn oversized_value_is_reported_once_skipped_and_the_next_frames() {
    const CAP: usize = 1024;
    const READ: usize = 64 * 1024;
    // Braces, brackets and escaped quotes inside the oversized value must not confuse the skip.
    let filler = b"ab}]{[\\\"cd".repeat(1_000_000); // 10 MB
    let stream =
        [&br#"{"return": [{"s": ""#[..], &filler, b"\"}, 1]}\r\n{\"return\": {}, \"id\": 2}"].concat();
    let outs = frame_stream(&stream, CAP, DEFAULT_MAX_DEPTH, &mut || READ);
    assert_eq!(
        complete(outs),
        vec![Out::Error(FrameError::TooLarge { limit: CAP }), frame(br#"{"return": {}, "id": 2}"#, false)]
    );

    // The same through a Framer of default caps, watching what it keeps buffered.
    let big = [&br#"{"return": ""#[..], &vec![b'x'; DEFAULT_MAX_MESSAGE_SIZE + 1000], b"\"}{\"return\": 3}"]
        .concat();
    let mut framer = Framer::new();
    let mut results = Vec::new();
    for chunk in big.chunks(1 << 20) {
        framer.extend(chunk);
        assert!(framer.buffered() <= DEFAULT_MAX_MESSAGE_SIZE + chunk.len());
        loop {
            match framer.next_frame() {
                Ok(Some(f)) => results.push(Ok(f.bytes.to_vec())),
                Ok(None) => break,
                Err(e) => results.push(Err(e)),
            }
        }
        assert!(framer.buffered() <= DEFAULT_MAX_MESSAGE_SIZE);
    }
    assert_eq!(
        results,
        vec![Err(FrameError::TooLarge { limit: DEFAULT_MAX_MESSAGE_SIZE }), Ok(br#"{"return": 3}"#.to_vec())]
    );
}

#[test]
fn skipped_oversized_value_keeps_nothing_buffered() {
    // Memory does not grow with the oversized value's length: once it is being skipped,
    // each read is dropped as soon as it is scanned.
    let mut framer = Framer::with_limits(100, 8);
    framer.extend(b"{\"return\": \"");
    assert_eq!(framer.next_frame(), Ok(None));
    framer.extend(&[b'y'; 200]);
    assert_eq!(framer.next_frame(), Err(FrameError::TooLarge { limit: 100 }));
    assert_eq!(framer.next_frame(), Ok(None));
    for _ in 0..1000 {
        framer.extend(&[b'y'; 4096]);
        assert_eq!(framer.next_frame(), Ok(None));
        assert_eq!(framer.buffered(), 0);
        assert!(framer.in_partial_value());
    }
    framer.extend(b"\"}{}");
    assert_eq!(framer.next_frame().unwrap().unwrap().bytes, b"{}");
    assert!(!framer.in_partial_value());
}

#[test]
fn size_cap_is_exact_for_every_kind_of_value() {
    // Regression: a value of cap + 1 bytes used to be framed when its last byte ended it.
    for value in [
        &br#"{"a": "bcdef"}"#[..],
        br#"["abcdefghijk"]"#,
        br#""abcdefghijkl""#,
        b"12345678901234",
        b"'abcdefghijkl'",
    ] {
        let cap = value.len();
        let stream = [value, b" {}"].concat();
        let exact = frame_stream(&stream, cap, 8, &mut || 1);
        let single_quoted = value[0] == b'\'';
        assert_eq!(
            complete(exact),
            vec![frame(value, single_quoted), frame(b"{}", false)],
            "{value:?} at a cap of its size"
        );
        let over = frame_stream(&stream, cap - 1, 8, &mut || 1);
        assert_eq!(
            complete(over),
            vec![Out::Error(FrameError::TooLarge { limit: cap - 1 }), frame(b"{}", false)],
            "{value:?} at a cap one byte short"
        );
    }
}

#[test]
fn invalid_utf8_in_a_string_is_framed_then_refused_by_the_decoder() {
    for bad in [&b"\xc3\x28"[..], b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"] {
        let msg = [&br#"{"return": "ok "#[..], bad, br#" ok", "id": 1}"#].concat();
        let stream = [&msg[..], b"\r\n{\"return\": {}}\r\n"].concat();
        assert_eq!(complete(whole(&stream)), vec![frame(&msg, false), frame(br#"{"return": {}}"#, false)]);
        let err = Message::from_slice(&msg).expect_err("invalid UTF-8 must not decode").to_string();
        assert!(err.contains("invalid"), "{bad:?}: unclear error {err:?}");
    }
}

#[test]
fn deep_nesting_is_reported_without_overflow_and_recovers() {
    let deep = vec![b'['; 100_000];
    let closed = [&deep[..], &vec![b']'; 100_000], b"{\"return\": {}}"].concat();
    assert_eq!(
        complete(whole(&closed)),
        vec![
            Out::Error(FrameError::TooDeep { limit: DEFAULT_MAX_DEPTH }),
            frame(br#"{"return": {}}"#, false)
        ]
    );
    // Never closed: 0xFF resets the framer, as it resets QEMU's parser.
    let reset = [&deep[..], b"\xff{\"return\": {}}"].concat();
    assert_eq!(
        complete(whole(&reset)),
        vec![
            Out::Error(FrameError::TooDeep { limit: DEFAULT_MAX_DEPTH }),
            Out::Error(FrameError::Stray { byte: 0xff, discarded: 0 }),
            frame(br#"{"return": {}}"#, false),
        ]
    );
    // Deep objects too, and exactly at the cap is fine.
    let objects = [&br#"{"a": "#.repeat(5000)[..], b"1", &b"}".repeat(5000), b"[]"].concat();
    assert_eq!(
        complete(frame_stream(&objects, DEFAULT_MAX_MESSAGE_SIZE, 1000, &mut || 333)),
        vec![Out::Error(FrameError::TooDeep { limit: 1000 }), frame(b"[]", false)]
    );
    let at_cap = [&vec![b'['; 1024][..], &vec![b']'; 1024]].concat();
    assert_eq!(complete(whole(&at_cap)), vec![frame(&at_cap, false)]);
    // The decoder refuses what serde_json will not recurse into, without overflowing.
    assert!(Message::from_slice(&at_cap).is_err());
}

#[test]
fn single_quoted_strings_hold_structure_and_escapes() {
    let cases: [(&[u8], Value); 4] = [
        (
            br#"{'execute': 'x', 'arguments': {'a': '}{]['}}"#,
            json!({"execute": "x", "arguments": {"a": "}{]["}}),
        ),
        (
            br#"{'a': 'it\'s', 'b': "say \"hi\" '}'", 'c': 'q"}"'}"#,
            json!({"a": "it's", "b": "say \"hi\" '}'", "c": "q\"}\""}),
        ),
        (
            br#"{'a': '\\', 'b': '\\\'', 'c': ['[', '\u00e9\n']}"#,
            json!({"a": "\\", "b": "\\'", "c": ["[", "é\n"]}),
        ),
        // QEMU also reads \' inside a double-quoted string (measured on 7.2).
        (br#"{"execute": "x", "id": "a\'b"}"#, json!({"execute": "x", "id": "a'b"})),
    ];
    for (input, value) in cases {
        let stream = [input, b"{}"].concat();
        for read in [1, 3, usize::MAX] {
            let outs = frame_stream(&stream, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_DEPTH, &mut || read);
            assert_eq!(
                complete(outs),
                vec![frame(input, true), frame(b"{}", false)],
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        let parsed: Value =
            serde_json::from_slice(&standardize_quotes(input)).expect("standardized JSON parses");
        assert_eq!(parsed, value);
    }
    // A single quote inside a double-quoted string is just a byte.
    let plain = br#"{"a": "it's '{'"}"#;
    assert_eq!(complete(whole(plain)), vec![frame(plain, false)]);
}

#[test]
fn stray_bytes_reset_a_partial_value() {
    let next = br#"{"return": {}}"#;
    for stray in [0xFFu8, 0xFE, 0x00, 0x01, 0x04, 0x1B, 0x1F] {
        let cases: [(&[u8], usize); 5] = [
            (br#"{"execute": "stop", "arguments": {"#, 34), // in an object
            (br#"{"execute": "sto"#, 16),                   // in a string
            (br#"{"execute": 'sto\"#, 17),                  // after an escape
            (b"12", 2),                                     // in a bare token
            (b"  ", 0),                                     // between values
        ];
        for (partial, discarded) in cases {
            let stream = [partial, &[stray], next].concat();
            for read in [1, usize::MAX] {
                let outs = frame_stream(&stream, DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_DEPTH, &mut || read);
                assert_eq!(
                    complete(outs),
                    vec![Out::Error(FrameError::Stray { byte: stray, discarded }), frame(next, false)],
                    "{partial:?} then 0x{stray:02x}"
                );
            }
        }
    }
    // Inside a string a raw line end is stray as well (JSON strings cannot hold one).
    // An unterminated string thus ends at its line's end, and the next line frames.
    let outs = complete(whole(b"{\"a\": \"x\r\n{}"));
    assert_eq!(outs, vec![Out::Error(FrameError::Stray { byte: b'\r', discarded: 8 }), frame(b"{}", false)]);
    // The message names what was dropped.
    let e = FrameError::Stray { byte: 0xff, discarded: 5 }.to_string();
    assert!(e.contains("0xff") && e.contains("5 bytes"), "{e}");
}

#[test]
fn bare_tokens_and_lone_structure_are_frames_of_their_own() {
    let outs = whole(b"1 not\ttrue}{\"a\": 1}]-2.5e3,\"s\":'t' null");
    let mut expected: Vec<Out> =
        [&b"1"[..], b"not", b"true", b"}", br#"{"a": 1}"#, b"]", b"-2.5e3", b",", b"\"s\"", b":"]
            .iter()
            .map(|b| frame(b, false))
            .collect();
    expected.push(frame(b"'t'", true));
    expected.push(Out::Finished(b"null".to_vec()));
    expected.push(Out::Partial(0));
    assert_eq!(outs, expected);
    for token in [&b"1"[..], b"not", b"true", b"}"] {
        assert!(Message::from_slice(token).is_err(), "{token:?} is not a QMP message");
    }
}

#[test]
fn a_cut_stream_reports_its_partial_value() {
    let outs = whole(br#"{"return": {}}{"event": "ST"#);
    assert_eq!(outs, vec![frame(br#"{"return": {}}"#, false), Out::Partial(13)]);
    let mut framer = Framer::new();
    framer.extend(b"{}  ");
    assert!(framer.next_frame().unwrap().is_some());
    assert_eq!(framer.next_frame(), Ok(None));
    assert!(!framer.in_partial_value(), "trailing whitespace is not a partial value");
    assert_eq!(framer.take_partial(), 0);
}
