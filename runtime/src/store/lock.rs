//! The cross-process lock: an exclusive lock on the sidecar `<cache file>.lock`.
//!
//! The only module that calls `File::lock`/`try_lock` (clippy.toml enforces it). The lock
//! file is never deleted: deleting it would let two processes lock two different inodes.
//! The lock is tried first and then polled until the timeout, so a process never blocks
//! for longer than `lock_timeout`. File systems without lock support (some NFS set-ups)
//! report `Unsupported`, and the caller then works unlocked.
//!
//! The lock file is opened with `O_NOFOLLOW` (a planted symbolic link is never created
//! through) and checked on the open handle (`trust`): a lock file that is not ours is never
//! waited on, so another user holding it cannot stall every start for `lock_timeout`.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::trust;

/// A held lock, released on drop.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
}

impl Drop for FileLock {
    #[expect(clippy::disallowed_methods, reason = "this module owns the lock")]
    fn drop(&mut self) {
        if let Err(error) = self.file.unlock() {
            tracing::warn!(
                target: "storage_availability",
                path = %self.path.display(),
                %error,
                "failed to unlock cache lock file"
            );
        }
    }
}

/// How an attempt to lock ended.
#[derive(Debug)]
pub(crate) enum LockAttempt {
    Locked(FileLock),
    /// Another process held it for the whole timeout.
    TimedOut,
    /// The file system does not support locks.
    Unsupported(io::Error),
    /// The lock file could not be created or opened.
    Failed(io::Error),
    /// The lock file is not ours (another user's, writable by others, a symbolic link, not a
    /// regular file): never locked, never waited on.
    Untrusted(String),
}

#[expect(clippy::disallowed_methods, reason = "this module owns the lock")]
pub(crate) fn lock_exclusive(path: &Path, timeout: Duration) -> LockAttempt {
    let file = match storage_availability_schema::trust::open_lock_file(path) {
        Ok(file) => file,
        Err(e) => {
            return match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    LockAttempt::Untrusted("is a symbolic link, which is never followed".to_owned())
                }
                _ => LockAttempt::Failed(e),
            };
        }
    };
    match file.metadata() {
        Ok(meta) => {
            if let Err(reason) = trust::check(&meta) {
                return LockAttempt::Untrusted(reason.to_string());
            }
        }
        Err(e) => return LockAttempt::Failed(e),
    }
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(500);
    let mut announced = false;
    loop {
        match file.try_lock() {
            Ok(()) => {
                return LockAttempt::Locked(FileLock {
                    file,
                    path: path.to_owned(),
                });
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) if is_unsupported(&e) => {
                return LockAttempt::Unsupported(e);
            }
            Err(TryLockError::Error(e)) => return LockAttempt::Failed(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return LockAttempt::TimedOut;
        }
        if !announced {
            tracing::debug!(
                target: "storage_availability",
                path = %path.display(),
                "waiting for another process to finish validating"
            );
            announced = true;
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn is_unsupported(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(e.raw_os_error(), Some(code) if super::sys::is_enotsup(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_times_out_then_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json.lock");
        let LockAttempt::Locked(first) = lock_exclusive(&path, Duration::from_secs(1)) else {
            panic!("first lock failed")
        };
        assert!(matches!(
            lock_exclusive(&path, Duration::from_millis(20)),
            LockAttempt::TimedOut
        ));
        drop(first);
        assert!(matches!(
            lock_exclusive(&path, Duration::from_millis(20)),
            LockAttempt::Locked(_)
        ));
        assert!(path.exists(), "the lock file is never deleted");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlinked_or_shared_lock_file_is_refused_at_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json.lock");
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let started = Instant::now();
        assert!(matches!(
            lock_exclusive(&path, Duration::from_secs(30)),
            LockAttempt::Untrusted(_)
        ));
        assert!(!target.exists(), "created through the symlink");
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            lock_exclusive(&path, Duration::from_secs(30)),
            LockAttempt::Untrusted(_)
        ));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
