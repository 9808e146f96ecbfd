//! Runs the `server_input` fuzz target's body (`fuzz/fuzz_targets/server_input.rs`) over a few
//! thousand random inputs, so that CI exercises it without a fuzzer: arbitrary bytes, and a
//! token soup of QEMU's JSON pieces (both quotes, escapes, keywords, numbers, stray and control
//! bytes, whole requests), which reaches the lexer's states far more often than uniform bytes.

mod fuzz_body;

use proptest::prelude::*;

const PIECES: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"'",
    b"\\",
    b"\\'",
    b"\\\"",
    b"\\u00e9",
    b"\\ud83d\\ude00",
    b"\\ud800",
    b"\\x",
    b":",
    b",",
    b" ",
    b"\t",
    b"\r\n",
    b"\xff",
    b"\xfe",
    b"\x00",
    b"\x01",
    b"\x1b",
    b"0",
    b"01",
    b"1",
    b"-",
    b"-0",
    b".",
    b"e",
    b"E+",
    b"1.5e3",
    b"18446744073709551616",
    b"true",
    b"false",
    b"null",
    b"nul",
    b"X",
    b"\xc3\xa9",
    b"\xc3",
    b"\"a\"",
    b"'b'",
    b"\"a\": 1",
    b"{\"execute\": \"qmp_capabilities\"}",
    b"{'execute': 'x', 'arguments': {'a': [1, 'x']}}",
    b"{\"a\": 1, \"a\": 2}",
];

fn soup() -> impl Strategy<Value = Vec<u8>> {
    (any::<[u8; 4]>(), prop::collection::vec(0..PIECES.len(), 0..120)).prop_map(|(config, picks)| {
        let mut data = config.to_vec();
        for i in picks {
            data.extend_from_slice(PIECES[i]);
        }
        data
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn server_input_body_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzz_body::run(&data);
    }

    #[test]
    fn server_input_body_token_soup(data in soup()) {
        fuzz_body::run(&data);
    }
}

/// Inputs that stress one path, run every time: nesting at and past QEMU's limit, a long
/// string, a value over a small cap.
#[test]
fn server_input_body_fixed_inputs() {
    let nested = |n: usize| [&[0xFF, 0, 0, 7][..], &vec![b'['; n], &vec![b']'; n]].concat();
    let long_string = [&[0xFF, 0, 0, 0][..], b"\"", &[b'a'; 3000], b"\" {}"].concat();
    let over_cap = [&[1, 0, 0, 3][..], b"{\"execute\": \"0123456789abcdef\"} {}"].concat();
    for data in [vec![], vec![0], nested(1024), nested(1025), nested(3000), long_string, over_cap] {
        fuzz_body::run(&data);
    }
}
