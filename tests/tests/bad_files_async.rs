//! The `bad_files` suite through the tokio driver (`open_async`, `refresh_async`), each call on
//! a fresh current-thread runtime: every case of `bad_files.rs` must hold there too.

include!("suite/driver_tokio.rs");

include!("suite/bad_files.rs");
