//! The `availability` command-line tool (not written yet).

fn main() {}
