//! Atomic replacement of the cache file: unique temp file in the same directory, write,
//! `sync_all`, rename over the target, fsync the directory.
//!
//! The only module that calls `rename` and `sync_all` (clippy.toml enforces it). A reader
//! sees the old file or the new one, never a mix; after a crash the target is the old or the
//! new file, and at worst a temp file is left, which a later save sweeps. The temp file is
//! removed on every failure path (a guard deletes it unless the rename happened).

use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// One step of an atomic save, as seen by a [`FaultInjector`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SaveStep {
    /// Creating the temp file.
    Create,
    /// Writing the bytes.
    Write,
    /// `sync_all` of the temp file.
    Sync,
    /// Renaming the temp file over the target.
    Rename,
    /// Syncing the directory after the rename.
    SyncDir,
}

/// Makes chosen save steps fail, for fault-injection tests. Not for production use.
#[doc(hidden)]
pub trait FaultInjector: Send + Sync + fmt::Debug {
    /// Called before each step: an error makes that step fail.
    fn before(&self, step: SaveStep) -> io::Result<()>;
    /// For [`SaveStep::Write`]: fail after writing this many bytes.
    fn fail_write_after(&self) -> Option<usize> {
        None
    }
}

/// The prefix of our temp files for `target`: `.<name>.tmp-`.
pub(crate) fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Replaces `target` with `bytes` atomically and durably.
#[expect(
    clippy::disallowed_methods,
    reason = "this module owns rename and sync_all"
)]
pub(crate) fn write_atomic(
    target: &Path,
    bytes: &[u8],
    faults: Option<&dyn FaultInjector>,
) -> io::Result<()> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let check = |step| faults.map_or(Ok(()), |f| f.before(step));

    check(SaveStep::Create)?;
    let (mut file, temp) = create_unique(dir, &temp_prefix(target))?;

    check(SaveStep::Write)?;
    match faults.and_then(|f| f.fail_write_after()) {
        Some(n) => {
            file.write_all(&bytes[..n.min(bytes.len())])?;
            return Err(io::Error::other(format!(
                "injected failure after writing {n} bytes"
            )));
        }
        None => file.write_all(bytes)?,
    }

    check(SaveStep::Sync)?;
    file.sync_all()?;
    drop(file);

    check(SaveStep::Rename)?;
    std::fs::rename(&temp.path, target)?;
    let mut temp = temp;
    temp.armed = false;

    // The new file is in place; a failed directory sync only weakens durability across a
    // power loss, so it is reported to the caller as a warning, not a failed save.
    if let Err(error) = check(SaveStep::SyncDir).and_then(|()| super::sys::sync_dir(dir)) {
        tracing::warn!(
            target: "storage_availability",
            dir = %dir.display(),
            %error,
            "saved the cache file but could not sync its directory"
        );
    }
    Ok(())
}

fn create_unique(dir: &Path, prefix: &str) -> io::Result<(File, TempFile)> {
    let mut last_error = None;
    for _ in 0..16 {
        let path = dir.join(format!("{prefix}{}-{:016x}", std::process::id(), random()));
        match super::sys::create_new(&path) {
            Ok(file) => return Ok((file, TempFile { path, armed: true })),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no unique temp file name")))
}

/// A random 64-bit number from std's per-process random hash keys, a clock and a counter:
/// enough for unique temp names (create_new catches the rest).
fn random() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.write_u128(nanos);
    hasher.finish()
}

/// Removes our temp files for `target` older than `older_than` (left by a crash): regular
/// files owned by this process only. Called
/// with the lock held, so no live save of a cooperating process is touched; the age guard
/// protects saves of processes that could not take the lock.
pub(crate) fn sweep_temp_files(target: &Path, older_than: Duration) -> usize {
    let Some(dir) = target.parent() else { return 0 };
    let prefix = temp_prefix(target);
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(&prefix) {
            continue;
        }
        // Only our own regular files (`DirEntry::metadata` does not follow a link): a file
        // another user planted under our prefix is not ours to delete.
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || !super::trust::owned_by_us(&meta) {
            continue;
        }
        let old_enough = meta
            .modified()
            .map(|modified| now.duration_since(modified).unwrap_or_default() >= older_than)
            .unwrap_or(false);
        if old_enough && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn replaces_the_target_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c.json");
        write_atomic(&target, b"one", None).unwrap();
        write_atomic(&target, b"two", None).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c.json");
        write_atomic(&target, b"x", None).unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn sweeps_only_old_temp_files_of_this_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("c.json");
        let ours = dir.path().join(".c.json.tmp-1-abc");
        let other = dir.path().join(".d.json.tmp-1-abc");
        std::fs::write(&ours, b"x").unwrap();
        std::fs::write(&other, b"x").unwrap();
        assert_eq!(sweep_temp_files(&target, Duration::from_secs(600)), 0);
        assert_eq!(sweep_temp_files(&target, Duration::ZERO), 1);
        assert!(!ours.exists() && other.exists());
    }
}
