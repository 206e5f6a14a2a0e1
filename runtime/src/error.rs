//! The crate's error type.

use std::path::PathBuf;

/// What can go wrong in this crate's public API.
///
/// Cache problems (a corrupt, unreadable or unwritable file, a lock timeout) are never
/// errors: they are recovered from, logged and counted in [`Stats`](crate::Stats). What is
/// left is misuse, such as an invalid builder option, and explicit operations like
/// [`clear`](crate::AvailabilityCache::clear) that could not do what was asked.
///
/// ```
/// use storage_availability::{AvailabilityCache, Error, Outcome, StorageAvailability};
/// # #[derive(serde::Serialize, StorageAvailability)]
/// # struct Config { #[storage(validate = check)] kv: String }
/// # fn check(_: &String) -> Outcome { Outcome::ok() }
/// let result = AvailabilityCache::builder(Config { kv: "k".into() }).max_parallel(0).open();
/// match result {
///     Err(Error::InvalidOption { option, reason }) => {
///         assert_eq!((option, reason.as_str()), ("max_parallel", "must be at least 1"));
///     }
///     other => panic!("{other:?}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder option is out of range.
    #[error("invalid option `{option}`: {reason}")]
    InvalidOption {
        /// The builder method.
        option: &'static str,
        /// What is wrong with the value.
        reason: String,
    },
    /// `open_async` or `refresh_async` was polled outside a tokio runtime (it needs one for
    /// `spawn_blocking` and timers).
    #[error("{operation} must run inside a tokio runtime (with timers enabled)")]
    NoAsyncRuntime {
        /// The method that was called.
        operation: &'static str,
    },
    /// A file operation failed.
    #[error("failed to {op} {path}")]
    Io {
        /// The operation, such as "remove cache file".
        op: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}
