//! The drivers of the refresh core: each performs the steps [`Refresh`](crate::refresh)
//! asks for and hands the results back, and decides nothing. `blocking.rs` performs them
//! on the caller's thread; `tokio.rs` (feature `tokio`) on `spawn_blocking`, with async
//! validators on the runtime.

pub(crate) mod blocking;
#[cfg(feature = "tokio")]
pub(crate) mod tokio;

use std::path::Path;
use std::time::{Duration, SystemTime};

use storage_availability_schema::CacheFile;

use crate::store::CacheStore;

const TARGET: &str = "storage_availability";

/// Attempts of one save, with a short backoff between them.
const SAVE_ATTEMPTS: u32 = 3;

/// The `Save` step: the config file's modification time (for diagnostics), then the save,
/// retrying transient failures with a short backoff.
fn save(
    store: &dyn CacheStore,
    file: &mut CacheFile,
    config_path: Option<&Path>,
) -> std::io::Result<()> {
    file.metadata.config_mtime = config_mtime(config_path);
    let mut attempt = 1;
    loop {
        match store.save(file) {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= SAVE_ATTEMPTS || !worth_retrying(&error) => {
                return Err(error);
            }
            Err(error) => {
                tracing::debug!(target: TARGET, attempt, %error, "save failed; retrying");
                std::thread::sleep(Duration::from_millis(5 * 4u64.pow(attempt - 1)));
                attempt += 1;
            }
        }
    }
}

/// The config file's modification time in Unix seconds, for diagnostics only.
fn config_mtime(config_path: Option<&Path>) -> Option<f64> {
    config_path
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// Permission and read-only errors will not go away in milliseconds.
fn worth_retrying(error: &std::io::Error) -> bool {
    !matches!(
        error.kind(),
        std::io::ErrorKind::PermissionDenied
            | std::io::ErrorKind::ReadOnlyFilesystem
            | std::io::ErrorKind::NotFound
            | std::io::ErrorKind::IsADirectory
    )
}
