//! The `qmp` command.
fn main() {}
