//! Ready-made validators: a writable directory, a readable file, a TCP endpoint that accepts
//! connections, an HTTP endpoint that answers 2xx, an environment variable that is set.
//!
//! Each check returns an [`Outcome`](crate::Outcome) whose error says what was checked, which
//! step failed and why, so a validator can return it as it is or add to it:
//!
//! ```
//! use std::path::PathBuf;
//! use std::time::Duration;
//! use storage_availability::{Outcome, checks};
//!
//! struct KvConfig {
//!     dir: PathBuf,
//!     endpoint: String,
//! }
//!
//! fn check_kv(cfg: &KvConfig) -> Outcome {
//!     let dir = checks::dir_writable(&cfg.dir);
//!     if !dir.is_ok() {
//!         return dir;
//!     }
//!     checks::tcp_connect(&cfg.endpoint, Duration::from_millis(500))
//! }
//! # let dir = std::env::temp_dir();
//! # let outcome = check_kv(&KvConfig { dir, endpoint: "127.0.0.1:1".into() });
//! # assert!(!outcome.is_ok());
//! ```
//!
//! In a config with the derive, a validator is often one line:
//!
//! ```
//! use std::path::PathBuf;
//! use storage_availability::{Outcome, StorageAvailability, checks};
//!
//! #[derive(serde::Serialize, StorageAvailability)]
//! struct StorageConfig {
//!     #[storage(validate = check_data)]
//!     data: PathBuf,
//! }
//!
//! fn check_data(dir: &PathBuf) -> Outcome {
//!     checks::dir_writable(dir)
//! }
//! ```
//!
//! The blocking forms suit blocking validators (the cache runs those on their own threads,
//! or on `spawn_blocking` under `open_async`). With the `tokio` feature each check that waits
//! on the network or the disk has an `_async` form for `async` validators: the network ones
//! are tokio-native, the file-system ones run on `spawn_blocking`. [`env_present`] never
//! waits and serves both.
//!
//! | check | passes when | feature |
//! | --- | --- | --- |
//! | [`dir_writable`] | the directory exists and a probe file can be created, written, synced and removed in it | |
//! | [`file_readable`] | the path is a regular file that can be opened and read | |
//! | [`tcp_connect`] | the name resolves and one of its addresses accepts a TCP connection, all within the timeout | |
//! | `http_ok` | a `GET` answers with a 2xx status within the timeout | `http` |
//! | [`env_present`] | the environment variable is set and not empty | |

mod env;
mod fs;
#[cfg(feature = "http")]
mod http;
mod net;

pub use env::env_present;
pub use fs::{dir_writable, file_readable};
#[cfg(feature = "tokio")]
pub use fs::{dir_writable_async, file_readable_async};
#[cfg(feature = "http")]
pub use http::http_ok;
#[cfg(all(feature = "http", feature = "tokio"))]
pub use http::http_ok_async;
pub use net::tcp_connect;
#[cfg(feature = "tokio")]
pub use net::tcp_connect_async;

/// A duration for messages: `500ms`, `2s`, `1.5s`.
fn show(duration: std::time::Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 || !duration.subsec_millis().is_multiple_of(100) {
        format!("{millis}ms")
    } else if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{:.1}s", duration.as_secs_f64())
    }
}

/// The outcome of a blocking check run on `spawn_blocking`.
#[cfg(feature = "tokio")]
async fn on_blocking_thread(
    what: &'static str,
    check: impl FnOnce() -> crate::Outcome + Send + 'static,
) -> crate::Outcome {
    match tokio::task::spawn_blocking(check).await {
        Ok(outcome) => outcome,
        Err(error) => crate::Outcome::failed(format!("the {what} check did not finish: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(super::show(Duration::from_millis(500)), "500ms");
        assert_eq!(super::show(Duration::from_secs(2)), "2s");
        assert_eq!(super::show(Duration::from_millis(1500)), "1.5s");
        assert_eq!(super::show(Duration::from_millis(1234)), "1234ms");
        assert_eq!(super::show(Duration::ZERO), "0ms");
    }
}
