//! `invalidate` and `clear`: changes to a cache file, made under the cache's lock exactly as
//! the library makes them.
//!
//! - The lock is the sidecar `<cache file>.lock`, opened with `O_NOFOLLOW` (a symbolic link
//!   is refused, nothing is created through it) and checked on the open handle: a regular
//!   file owned by the effective uid or root, not writable by group or others. It is taken
//!   with `File::try_lock` in a loop until `--lock-timeout`, and never deleted.
//! - The cache file is opened without following a symbolic link and checked on the handle
//!   the same way; a file that is not ours is refused, never touched.
//! - `invalidate` rewrites the file atomically: a temp file in the same directory (created
//!   new, mode `0600`), written, synced, renamed over the file, then the directory is synced.
//! - `clear` deletes the file only when it is still the one checked (same device and inode)
//!   and owned by the effective uid itself.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use storage_availability_schema::read::{self, ReadError};
use storage_availability_schema::trust::{self, open_lock_file};
use storage_availability_schema::{AcceptError, parse_cache_file};

use crate::Problem;

/// A held lock on `<cache file>.lock`; released when dropped (or when the process exits).
#[derive(Debug)]
pub(crate) struct Lock {
    file: File,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// `<cache file>.lock`.
pub(crate) fn lock_path(cache: &Path) -> PathBuf {
    with_suffix(cache, ".lock")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Takes the cache's lock, waiting at most `timeout` for another process to release it.
pub(crate) fn lock(cache: &Path, timeout: Duration) -> Result<Lock, Problem> {
    let path = lock_path(cache);
    let file = match open_lock_file(&path) {
        Ok(file) => file,
        Err(e) => {
            let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink());
            return Err(if is_link {
                Problem::io(
                    "refused",
                    &path,
                    "the lock file is a symbolic link, which is never followed",
                )
            } else {
                Problem::io("cannot open the lock file", &path, e)
            });
        }
    };
    let metadata = file
        .metadata()
        .map_err(|e| Problem::io("cannot open the lock file", &path, e))?;
    if let Err(reason) = trust::check(&metadata) {
        return Err(Problem::io(
            "refused",
            &path,
            format_args!("the lock file is not ours: it {reason}"),
        ));
    }
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    let mut announced = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { file }),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                return Err(Problem::io("cannot lock", &path, e));
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Problem::io(
                "lock timed out",
                &path,
                format_args!(
                    "another process held the cache's lock for the whole --lock-timeout ({}); \
                     nothing was changed; try again, or raise --lock-timeout",
                    humantime::format_duration(timeout)
                ),
            ));
        }
        if !announced && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!(
                "availability: waiting for the cache's lock: {}: another process holds it \
                 (at most {})",
                path.display(),
                humantime::format_duration(timeout)
            );
        }
        announced = true;
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Opens the cache file for a change: a regular file of ours, never through a link.
fn open_ours(path: &Path) -> Result<(File, std::fs::Metadata), Problem> {
    let (file, metadata) = read::open_regular(path).map_err(|e| match e {
        ReadError::Symlink => Problem::io(
            "refused",
            path,
            "is a symbolic link, which is never followed or written through",
        ),
        ReadError::NotRegular { kind } => Problem::io(
            "refused",
            path,
            format_args!("is {kind}, not a regular file"),
        ),
        ReadError::Missing => Problem::io("cannot read", path, "does not exist"),
        e => Problem::io("cannot read", path, e),
    })?;
    if let Err(reason) = trust::check(&metadata) {
        return Err(Problem::io(
            "refused",
            path,
            format_args!("not ours, left alone: it {reason}"),
        ));
    }
    Ok((file, metadata))
}

/// Removes `sections` from the cache file at `path` (which the caller holds the lock of), so
/// the next open validates them again. Every name must be in the file.
pub(crate) fn invalidate(path: &Path, sections: &[String], max_bytes: u64) -> Result<(), Problem> {
    let (file, metadata) = open_ours(path)?;
    let bytes = read::read_open(file, &metadata, max_bytes).map_err(|e| match e {
        e @ ReadError::TooLarge { .. } => {
            Problem::io("file too large", path, format_args!("{e} (--max-bytes)"))
        }
        e => Problem::io("cannot read", path, e),
    })?;
    let parsed = parse_cache_file(&bytes).map_err(|e| match e {
        AcceptError::Version(e) => Problem::invalid("incompatible version", path, e),
        e => Problem::invalid("invalid cache file", path, e),
    })?;
    let unknown: Vec<&str> = sections
        .iter()
        .map(String::as_str)
        .filter(|name| !parsed.sections.contains_key(*name))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = parsed.sections.keys().map(String::as_str).collect();
        return Err(Problem::io(
            "unknown section",
            path,
            format_args!(
                "no section {} in this file; its sections: {}",
                unknown.join(", "),
                if known.is_empty() {
                    "(none)".to_owned()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    // Edit the JSON itself, so fields this tool does not know (a newer minor version) stay.
    let mut value: Value =
        serde_json::from_slice(&bytes).map_err(|e| Problem::invalid("not JSON", path, e))?;
    if let Some(map) = value.get_mut("sections").and_then(Value::as_object_mut) {
        for name in sections {
            map.remove(name);
        }
    }
    let mut new =
        serde_json::to_vec_pretty(&value).map_err(|e| Problem::io("cannot write", path, e))?;
    new.push(b'\n');
    if let Err(e) = parse_cache_file(&new) {
        return Err(Problem::io(
            "cannot write",
            path,
            format_args!("the edited file would not be valid: {e}"),
        ));
    }
    write_atomic(path, &new, 0o600).map_err(|e| Problem::io("cannot write", path, e))
}

/// Deletes the cache file at `path` (which the caller holds the lock of). `Ok(false)` when
/// there is none.
pub(crate) fn clear(path: &Path) -> Result<bool, Problem> {
    let (_file, metadata) = match open_ours(path) {
        Ok(opened) => opened,
        Err(_) if std::fs::symlink_metadata(path).is_err() => return Ok(false),
        Err(problem) => return Err(problem),
    };
    if !trust::owned_by_us(&metadata) {
        return Err(Problem::io(
            "refused",
            path,
            "is owned by another user (root): only our own files are deleted",
        ));
    }
    let now = std::fs::symlink_metadata(path).map_err(|e| Problem::io("cannot delete", path, e))?;
    if !trust::same_file(&metadata, &now) {
        return Err(Problem::io(
            "refused",
            path,
            "was replaced while being checked; nothing was deleted",
        ));
    }
    std::fs::remove_file(path).map_err(|e| Problem::io("cannot delete", path, e))?;
    let _ = sync_dir(parent(path));
    Ok(true)
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces `target` with `bytes` atomically and durably: a new temp file in the same
/// directory (`.<name>.tmp-<pid>-<n>`, the library's pattern, so a leftover is swept by it),
/// written, synced, renamed over `target`; then the directory is synced. A symbolic link
/// at `target` is replaced, never written through.
pub(crate) fn write_atomic(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent(target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut attempt = 0u64;
    let (mut file, temp) = loop {
        let temp = dir.join(format!(
            ".{name}.tmp-{}-{:016x}",
            std::process::id(),
            (nanos as u64).wrapping_add(attempt)
        ));
        match create_new(&temp, mode) {
            Ok(file) => break (file, temp),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, target));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    // The new file is in place; a failed directory sync only weakens durability.
    let _ = sync_dir(dir);
    Ok(())
}

#[cfg(unix)]
fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

#[cfg(not(unix))]
fn create_new(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
