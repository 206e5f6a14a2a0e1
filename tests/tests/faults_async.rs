//! The `faults` suite through the tokio driver (`open_async`, `refresh_async`), each call on
//! a fresh current-thread runtime: every case of `faults.rs` must hold there too.

include!("suite/driver_tokio.rs");

include!("suite/faults.rs");
