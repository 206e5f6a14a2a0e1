//! Platform code of the store, one module per platform (the shape of cargo's
//! `util/flock.rs`): the only place in `store/` with platform `cfg`s. The trust rules and
//! the no-follow opens shared with the `availability` CLI live in the schema crate's
//! (`storage_availability_schema::trust`, `read`).

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

/// Windows, and every other target without Unix owners and modes.
#[cfg(not(unix))]
mod windows;
#[cfg(not(unix))]
pub(crate) use windows::*;
