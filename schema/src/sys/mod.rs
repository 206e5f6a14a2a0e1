//! Platform code, one module per platform (the shape of cargo's `util/flock.rs`): the only
//! place in this crate with platform `cfg`s.

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

/// Windows, and every other target without Unix owners and modes.
#[cfg(not(unix))]
mod windows;
#[cfg(not(unix))]
pub(crate) use windows::*;
