//! Runs the `schema_scan` fuzz target's body (`fuzz/fuzz_targets/schema_scan.rs`) over a few
//! thousand random inputs, so that CI exercises it without a fuzzer: arbitrary bytes, the
//! real-shaped schema reply edited at random, and a token soup of the reply's pieces.

mod fuzz_body;

use fuzz_body::{check, run, PIECES, REPLY};
use proptest::prelude::*;

fn soup() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        8 => (0..PIECES.len()).prop_map(|i| PIECES[i].to_vec()),
        1 => "[a-z0-9-]{1,8}".prop_map(|w| format!("\"{w}\"").into_bytes()),
    ];
    prop::collection::vec(piece, 0..60).prop_map(|pieces| {
        let mut frame = b"{\"return\": [".to_vec();
        frame.extend(pieces.concat());
        frame.extend_from_slice(b"], \"id\": 1}");
        frame
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn schema_body_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        run(&data);
    }

    #[test]
    fn schema_body_edited_reply(mode in any::<u8>(), edits in prop::collection::vec(any::<u8>(), 0..12)) {
        run(&[&[mode | 1][..], &edits].concat());
    }

    #[test]
    fn schema_body_token_soup(frame in soup()) {
        check(&frame);
    }
}

/// Inputs that stress one path, run every time.
#[test]
fn schema_body_fixed_inputs() {
    let deep = format!("{{\"return\": [{}{}], \"id\": 1}}", "[".repeat(300), "]".repeat(300));
    for frame in [REPLY.as_bytes(), b"", b"{\"return\": [], \"id\": 1}", b"{\"return\": []}", deep.as_bytes()]
    {
        check(frame);
    }
}
