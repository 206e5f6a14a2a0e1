//! Where cached results are kept: the [`CacheStore`] trait and its file implementation.
//!
//! Each OS concern has one small module: `path` (naming), `read` (bounded, non-blocking
//! reads), `atomic` (temp file, fsync, rename, directory fsync), `lock` (the cross-process
//! lock), `quarantine` (moving corrupt files aside), `trust` (which files are ours: owner,
//! mode, type) and `fallback` (a writable place when the config's directory is read-only).

mod atomic;
pub(crate) mod fallback;
mod file;
mod lock;
pub(crate) mod path;
mod quarantine;
mod read;
mod sys;
mod trust;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use storage_availability_schema::CacheFile;

#[doc(hidden)]
pub use atomic::{FaultInjector, SaveStep};
pub use file::FileStore;

/// The earlier name of [`StoreRead`], kept so that code naming it keeps compiling.
#[doc(hidden)]
pub type Loaded = StoreRead;

/// What one read of the store's cache file found. Never an error: every problem is a
/// variant, so the cache can recover from it.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreRead {
    /// No cache file yet.
    Missing,
    /// A readable file of a compatible version.
    File(CacheFile),
    /// The file is unusable and may be moved aside (it does not parse, or is too large).
    Corrupt(String),
    /// The file is well-formed but of another major version, or could not be read
    /// (permission denied): it is replaced by the next save, not moved aside.
    Unusable(String),
    /// Something that is not a regular file sits at the path (a directory, a FIFO, a device):
    /// it belongs to the user and is never moved or deleted; the cache runs in memory.
    NotRegular(String),
    /// A file that is not ours (see "Trust model" in README.md): owned by another user,
    /// writable by group or others, or a symbolic link (never followed). Nothing in it is
    /// read or trusted: every section is validated afresh, and the next save replaces it by
    /// an atomic rename when the directory allows; it is never moved aside or deleted.
    ///
    /// ```
    /// # #[cfg(unix)] {
    /// use storage_availability::{CacheStore, FileStore, StoreRead};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// std::fs::write(dir.path().join("secret"), b"not for logs").unwrap();
    /// let path = dir.path().join("app.availability.json");
    /// std::os::unix::fs::symlink(dir.path().join("secret"), &path).unwrap();
    /// assert!(matches!(FileStore::new(&path).load(1 << 20), StoreRead::Untrusted(_)));
    /// # }
    /// ```
    Untrusted(String),
}

impl StoreRead {
    /// Parses the bytes of a cache file as the file store does: never panics, whatever the
    /// bytes (the loader that fuzzing and property tests exercise).
    ///
    /// ```
    /// use storage_availability::StoreRead;
    /// assert!(matches!(StoreRead::from_bytes(b"{"), StoreRead::Corrupt(_)));
    /// assert!(matches!(StoreRead::from_bytes(br#"{"schema_version": "9.0"}"#), StoreRead::Unusable(_)));
    /// ```
    pub fn from_bytes(bytes: &[u8]) -> StoreRead {
        file::parse(bytes)
    }
}

/// A held store lock; dropping it releases the lock.
pub struct StoreLock(#[allow(dead_code)] Box<dyn Send>);

impl StoreLock {
    /// Wraps any value whose `Drop` releases the lock.
    pub fn new(guard: impl Send + 'static) -> Self {
        StoreLock(Box::new(guard))
    }
}

impl fmt::Debug for StoreLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreLock")
    }
}

/// How a lock attempt ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum LockOutcome {
    /// The lock is held until the value is dropped.
    Locked(StoreLock),
    /// Another process held the lock for the whole timeout.
    TimedOut,
    /// Locking is not possible here (unsupported file system, no lock file can be
    /// created, or the lock file is not ours: another user's, writable by others, a
    /// symbolic link); the caller works unlocked, at once.
    Unavailable(String),
}

/// A place to keep the cache file: the local file system ([`FileStore`]) today, shared
/// stores later.
///
/// Every method reports problems instead of failing start-up: the cache recovers from each.
pub trait CacheStore: Send + Sync + fmt::Debug {
    /// The file's path, if the store is a file.
    fn location(&self) -> Option<&Path>;

    /// Reads and parses the cache file, refusing more than `max_bytes`.
    fn load(&self, max_bytes: u64) -> StoreRead;

    /// Takes the exclusive lock held for re-read, validate, write; waits at most `timeout`.
    fn lock(&self, timeout: Duration) -> LockOutcome;

    /// Replaces the file with `file`, atomically. Called with the lock held when possible.
    fn save(&self, file: &CacheFile) -> io::Result<()>;

    /// Moves an unusable file aside, returning where it went. Called with the lock held.
    fn quarantine(&self, now: SystemTime) -> io::Result<Option<PathBuf>>;

    /// Removes leftovers of interrupted saves. Called with the lock held.
    fn sweep(&self) -> usize {
        0
    }

    /// Deletes the file. A missing file is not an error.
    fn remove(&self) -> io::Result<()>;
}
