//! Runs the `event_decode` fuzz target's body (`fuzz/fuzz_targets/event_decode.rs`) over a few
//! thousand random inputs, so that CI exercises it without a fuzzer: arbitrary bytes, QEMU's
//! event lines edited at random, and a token soup of the shape's pieces.

mod fuzz_event_body;

use fuzz_event_body::{check, run, LINES, PIECES};
use proptest::prelude::*;

fn soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0..PIECES.len() + LINES.len(), 0..40).prop_map(|picks| {
        let mut data = Vec::new();
        for i in picks {
            data.extend_from_slice(
                PIECES.get(i).copied().unwrap_or_else(|| LINES[i - PIECES.len()].as_bytes()),
            );
        }
        data
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn event_body_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        run(&data);
    }

    #[test]
    fn event_body_edited_lines(mode in any::<u8>(), edits in prop::collection::vec(any::<u8>(), 0..16)) {
        run(&[&[mode | 1][..], &edits].concat());
    }

    #[test]
    fn event_body_token_soup(data in soup()) {
        check(&data);
    }
}

/// Inputs that stress one path, run every time.
#[test]
fn event_body_fixed_inputs() {
    for line in LINES {
        check(line.as_bytes());
    }
    let deep = format!(
        "{{\"timestamp\": {{\"seconds\": 1, \"microseconds\": 2}}, \"event\": \"X\", \"data\": {}{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    for data in [&b""[..], b"\x01", b"\x00{}", deep.as_bytes()] {
        check(data);
    }
}
