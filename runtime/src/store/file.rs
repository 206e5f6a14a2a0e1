//! [`FileStore`]: the cache file next to the config.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use storage_availability_schema::{AcceptError, CacheFile, VersionError, parse_cache_file};

use super::atomic::{self, FaultInjector};
use super::lock::{self, LockAttempt};
use super::path;
use super::quarantine;
use super::read::{self, ReadOutcome};
use super::trust;
use super::{CacheStore, LockOutcome, StoreLock, StoreRead};

/// Temp files of interrupted saves older than this are removed.
const STALE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// The cache file on the local file system, with a sidecar `.lock` file.
///
/// # Example
///
/// ```
/// use storage_availability::{CacheStore, FileStore};
///
/// let dir = tempfile::tempdir().unwrap();
/// let store = FileStore::new(dir.path().join("app.availability.json"));
/// assert_eq!(store.location(), Some(dir.path().join("app.availability.json").as_path()));
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    faults: Option<Arc<dyn FaultInjector>>,
}

impl FileStore {
    /// A store for the cache file at `path`.
    pub fn new(path: impl AsRef<Path>) -> Self {
        let path = path.as_ref().to_owned();
        FileStore {
            lock_path: path::lock_path(&path),
            path,
            faults: None,
        }
    }

    /// The store that a cache of config type `C` opened with the config file at
    /// `config_path` uses: `<dir>/<stem>.<8 hex>.availability.json`, the hex from SHA-256 of
    /// the absolute path and `C`'s [`config_type`](crate::StorageAvailability::config_type).
    pub fn for_config<C: crate::StorageAvailability>(
        config_path: impl AsRef<Path>,
    ) -> io::Result<Self> {
        path::cache_path_for_config(config_path.as_ref(), C::config_type()).map(FileStore::new)
    }

    /// The cache file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sidecar lock file's path (`<cache file>.lock`, never deleted).
    pub fn lock_path(&self) -> &Path {
        &self.lock_path
    }

    /// Makes chosen save steps fail: for fault-injection tests only.
    #[doc(hidden)]
    pub fn with_faults(mut self, faults: Arc<dyn FaultInjector>) -> Self {
        self.faults = Some(faults);
        self
    }

    /// The quarantined copies of the cache file (`<file>.corrupt-*`, whoever made them),
    /// oldest first by their modification time.
    pub fn quarantined(&self) -> Vec<PathBuf> {
        quarantine::quarantined(&self.path)
    }
}

/// A symlink at the cache path is ours to remove when we made it (its owner is us) and it
/// leads to a regular file (or nowhere), as a save would replace it; one to a directory,
/// FIFO or device is the user's.
fn link_is_ours(path: &Path, link: &std::fs::Metadata) -> bool {
    trust::owned_by_us(link)
        && match std::fs::metadata(path) {
            Ok(target) => target.is_file(),
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        }
}

/// Parses a cache file's bytes by the schema crate's one acceptance rule, telling a file of
/// another version from a broken one. Reasons give a problem's kind and position, never
/// the file's content.
pub(super) fn parse(bytes: &[u8]) -> StoreRead {
    match parse_cache_file(bytes) {
        Ok(file) => StoreRead::File(file),
        // Never the malformed version string itself: it is the file's content.
        Err(AcceptError::Version(VersionError::Malformed(_))) => {
            StoreRead::Unusable("schema_version is not of the form MAJOR.MINOR".to_owned())
        }
        Err(AcceptError::Version(e)) => StoreRead::Unusable(e.to_string()),
        Err(e) => StoreRead::Corrupt(e.to_string()),
    }
}

impl CacheStore for FileStore {
    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn load(&self, max_bytes: u64) -> StoreRead {
        match read::read_bounded(&self.path, max_bytes) {
            ReadOutcome::Missing => StoreRead::Missing,
            ReadOutcome::Bytes(bytes) => parse(&bytes),
            ReadOutcome::TooLarge { size } => StoreRead::Corrupt(format!(
                "is {size} bytes or more, over the {max_bytes}-byte limit"
            )),
            ReadOutcome::NotRegular { kind } => StoreRead::NotRegular(format!("is {kind}")),
            ReadOutcome::Untrusted(reason) => StoreRead::Untrusted(reason),
            ReadOutcome::Failed(e) => StoreRead::Unusable(format!("cannot be read: {e}")),
        }
    }

    fn lock(&self, timeout: Duration) -> LockOutcome {
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            // The platform cache directory may not exist yet: made private to this user.
            let _ = create_private_dir(dir);
        }
        match lock::lock_exclusive(&self.lock_path, timeout) {
            LockAttempt::Locked(guard) => LockOutcome::Locked(StoreLock::new(guard)),
            LockAttempt::TimedOut => LockOutcome::TimedOut,
            LockAttempt::Unsupported(e) => LockOutcome::Unavailable(format!(
                "the file system does not support locks on {}: {e}",
                self.lock_path.display()
            )),
            LockAttempt::Failed(e) => LockOutcome::Unavailable(format!(
                "failed to open lock file {}: {e}",
                self.lock_path.display()
            )),
            LockAttempt::Untrusted(reason) => LockOutcome::Unavailable(format!(
                "the lock file {} {reason}: it is not ours, so it is neither used nor waited on",
                self.lock_path.display()
            )),
        }
    }

    fn save(&self, file: &CacheFile) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(file).map_err(io::Error::other)?;
        bytes.push(b'\n');
        atomic::write_atomic(&self.path, &bytes, self.faults.as_deref())
    }

    fn quarantine(&self, now: SystemTime) -> io::Result<Option<PathBuf>> {
        match std::fs::symlink_metadata(&self.path) {
            // Only our own regular file is moved aside (a symlink is never followed).
            Ok(meta) if meta.is_file() && trust::check(&meta).is_ok() => {
                quarantine::quarantine(&self.path, now).map(Some)
            }
            // A symlink to a regular file: the link is ours to replace, the target is not.
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn sweep(&self) -> usize {
        atomic::sweep_temp_files(&self.path, STALE_TEMP_AGE)
    }

    fn remove(&self) -> io::Result<()> {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta)
                if (meta.is_file() && trust::owned_by_us(&meta))
                    || (meta.is_symlink() && link_is_ours(&self.path, &meta)) =>
            {
                match std::fs::remove_file(&self.path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                    _ => Ok(()),
                }
            }
            // Not ours (another user's file, a directory, a FIFO): never deleted.
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Creates `dir` and its missing parents, the last one readable only by this user on Unix.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    super::sys::private_dir(&mut builder);
    builder.create(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn remove_keeps_a_symlink_to_a_device_and_removes_one_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        FileStore::new(&path).remove().unwrap();
        assert_eq!(std::fs::read_link(&path).unwrap(), Path::new("/dev/zero"));

        std::fs::remove_file(&path).unwrap();
        let target = dir.path().join("target.json");
        std::fs::write(&target, b"{}").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        FileStore::new(&path).remove().unwrap();
        assert!(std::fs::symlink_metadata(&path).is_err());
        assert!(target.exists(), "the link's target was removed");
    }
}
