//! Runs the fuzz target's body (`fuzz/fuzz_targets/framer.rs`) over a few thousand random
//! inputs, so that CI exercises it without a fuzzer: arbitrary bytes, and a "token soup"
//! of JSON punctuation, quotes, escapes, stray bytes and whole messages, which reaches the
//! framer's interesting states far more often than uniform bytes do.

mod fuzz_body;

use proptest::prelude::*;

const PIECES: &[&[u8]] = &[
    b"{", b"}", b"[", b"]", b"\"", b"'", b"\\", b"\\'", b"\\\"", b":", b",", b" ", b"\t", b"\r\n", b"\n",
    b"\xff", b"\xfe", b"\x00", b"\x1b", b"1", b"-2.5e3", b"true", b"not", b"abc", b"\xc3\xa9", b"\xc3", b"\xed\xa0\x80",
    b"{\"return\": {}}", b"{'execute': 'x', 'arguments': {'a': '}{]['}}", b"{\"event\": \"STOP\", \"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}",
    b"{\"error\": {\"class\": \"Weird\", \"desc\": \"d\"}, \"id\": [1]}", b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"\"}, \"capabilities\": []}}",
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
    fn fuzz_body_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..700)) {
        fuzz_body::run(&data);
    }

    #[test]
    fn fuzz_body_token_soup(data in soup()) {
        fuzz_body::run(&data);
    }
}

/// Inputs that once mattered or stress one path, run every time.
#[test]
fn fuzz_body_fixed_inputs() {
    let deep: Vec<u8> = [&[0, 0, 0, 0][..], &[b'['; 5000], &[b']'; 5000], b"{}"].concat();
    let long_string: Vec<u8> = [&[0, 0, 0, 0][..], b"\"", &[b'a'; 3000], b"\" {}"].concat();
    for data in [&b""[..], b"\x00", b"\x00\x00\x00\x00{", &deep, &long_string] {
        fuzz_body::run(data);
    }
}
