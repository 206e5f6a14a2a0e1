//! Fault injection into the atomic save (issue 5): a failure at any step (creating the temp
//! file, writing it, wholly or in part, syncing it, renaming it) leaves the previous file
//! byte for byte, no temp file, correct answers in memory and a counted save failure, and
//! the next refresh saves. A failed directory sync comes after the rename: the new file is
//! in place. An unwritable directory and a path that cannot be a directory behave as
//! RELIABILITY.md says: results in memory, the failure counted, the save retried later.
//!
//! Through the blocking driver (`open`, `refresh`); `faults_async.rs` runs the same suite
//! through the tokio driver.

include!("suite/driver_blocking.rs");

include!("suite/faults.rs");
