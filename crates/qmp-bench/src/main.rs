//! Benchmark program (see issue 5).
fn main() {}
