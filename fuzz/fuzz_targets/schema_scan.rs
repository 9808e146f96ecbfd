//! The `query-qmp-schema` reply scanner against serde's path, on frames as they come and on a
//! real-shaped reply edited. The body lives in qmp's tests so that CI runs it too.
#![no_main]

#[path = "../../crates/qmp/tests/fuzz_body/mod.rs"]
mod fuzz_body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_body::run(data));
