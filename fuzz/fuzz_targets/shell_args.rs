//! qmp-shell's argument syntax: shell lines through the shell's line reader and the one-shot
//! command's argument reader. qmp-cli is a binary crate, so its modules are included here as
//! they are; the body lives in qmp-cli's tests so that CI runs it too.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/qmp-cli/src/args.rs"]
mod args;
#[allow(dead_code)]
#[path = "../../crates/qmp-cli/src/pyliteral/mod.rs"]
mod pyliteral;
#[path = "../../crates/qmp-cli/src/shell"]
mod shell {
    #[allow(dead_code)]
    pub mod parse;
}

#[path = "../../crates/qmp-cli/tests/fuzz_shell_args_body/mod.rs"]
mod fuzz_body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_body::run(data));
