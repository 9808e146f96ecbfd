//! `Message::from_slice`'s fast read of QEMU's event shape against the general decode, on
//! frames as they come and on QEMU's event lines edited. The body lives in qmp-proto's tests
//! so that CI runs it too.
#![no_main]

#[path = "../../crates/qmp-proto/tests/fuzz_event_body/mod.rs"]
mod fuzz_event_body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_event_body::run(data));
