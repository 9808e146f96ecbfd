//! Arbitrary client bytes, cut into arbitrary reads, through the server's input stage (QEMU's
//! JSON lexer and streamer, then the parser). The body lives in qmp-server's tests so that CI
//! runs it too.
#![no_main]

#[path = "../../crates/qmp-server/tests/fuzz_body/mod.rs"]
mod fuzz_body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_body::run(data));
