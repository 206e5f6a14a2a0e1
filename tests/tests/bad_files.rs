//! A corpus of bad cache files (issue 5). For each: no panic, no hang, correct statuses, and
//! the file quarantined (does not parse), replaced (another version, unreadable) or read (a
//! compatible file), as RELIABILITY.md says. What is not a regular file (a directory, a FIFO, a
//! symlink to a device) is never moved or deleted, and the cache runs in memory.
//!
//! Through the blocking driver (`open`, `refresh`); `bad_files_async.rs` runs the same suite
//! through the tokio driver.

include!("suite/driver_blocking.rs");

include!("suite/bad_files.rs");
