//! Benchmarks (issue 6).
fn main() {}
