//! `qmp shell`: placeholder until the interactive shell lands (it replaces this file).
//!
//! The contract with `main.rs`: a clap `ShellArgs` for the subcommand's own options, and
//! `run(args)` returning the process exit code. The options given before `shell` (`-s`,
//! `--timeout`, `--sim`, `--pretty`/`--compact`) are in `crate::globals()`, and
//! `crate::connect::connect(crate::globals())` opens the connection the way the one-shot does.

use std::process::ExitCode;

/// The shell's own options (none yet).
#[derive(clap::Args, Debug)]
pub struct ShellArgs {}

/// Runs the shell; until it lands, says so and fails with the usage exit code.
pub async fn run(_args: ShellArgs) -> ExitCode {
    eprintln!("qmp: the interactive shell is not part of this build yet");
    ExitCode::from(2)
}
