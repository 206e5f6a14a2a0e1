//! The heavy examples and the benchmarks of storage-availability, in a crate of their own.
//!
//! `examples/readiness.rs` is an axum readiness service (`cargo run --example readiness`,
//! tested by `tests/readiness.rs`), and `benches/` holds the criterion benchmarks (see
//! BENCHMARKS.md). They live here, not in the runtime crate, because an example or a bench
//! builds every dev-dependency of its package: here axum, reqwest and criterion stay out of
//! `cargo run --example quickstart`. This library is empty.
