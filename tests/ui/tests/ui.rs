//! Compile-time behaviour of `#[derive(StorageAvailability)]`: one trybuild case per error,
//! each with its checked-in `.stderr` (bless with `TRYBUILD=overwrite`, then read the diff),
//! and pass cases that also run.

#[rustversion::attr(not(stable(1.95)), ignore)]
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("fail/*.rs");
    t.pass("pass/*.rs");
}
