//! Arbitrary bytes, cut into arbitrary reads, through `Framer`, `Message::from_slice` and
//! `standardize_quotes`. The body lives in qmp-proto's tests so that CI runs it too.
#![no_main]

#[path = "../../crates/qmp-proto/tests/fuzz_body/mod.rs"]
mod fuzz_body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_body::run(data));
