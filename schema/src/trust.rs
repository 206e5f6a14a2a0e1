//! Which cache files are ours, and the lock file's safe open: the one home of these rules,
//! used by the `storage-availability` runtime and by the `availability` CLI alike.
//!
//! A file is trusted only when, checked on the open handle (`fstat`), it is a regular file
//! (symbolic links are refused at the open), owned by the effective uid or by root, and not
//! writable by group or others. Where there are no Unix owners and modes, every regular file
//! is trusted.
//!
//! ```
//! # fn main() -> std::io::Result<()> {
//! use storage_availability_schema::trust;
//!
//! let dir = tempfile::tempdir()?;
//! let lock = trust::open_lock_file(&dir.path().join("c.json.lock"))?;
//! assert!(trust::check(&lock.metadata()?).is_ok());
//! # Ok(())
//! # }
//! ```

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

use crate::sys;

/// Whether a file (metadata from its open handle) may be trusted; the error is the end of
/// a sentence starting with "it" ("is owned by uid 1001, ...").
pub fn check(metadata: &Metadata) -> Result<(), String> {
    if !metadata.is_file() {
        return Err("is not a regular file".to_owned());
    }
    sys::check_owner_and_mode(metadata)
}

/// The owner and mode half of [`check`], for a file already known to be regular.
pub fn check_owner_and_mode(metadata: &Metadata) -> Result<(), String> {
    sys::check_owner_and_mode(metadata)
}

/// Whether this process owns the file (its effective uid): the only files it ever deletes.
pub fn owned_by_us(metadata: &Metadata) -> bool {
    sys::owned_by_us(metadata)
}

/// Whether two metadata describe the same file (device and inode on Unix).
pub fn same_file(a: &Metadata, b: &Metadata) -> bool {
    sys::same_file(a, b)
}

/// Opens (creating, mode 0600 on Unix) a lock file, never through a symbolic link and
/// without blocking on a FIFO. Check the handle with [`check`] before waiting on it.
pub fn open_lock_file(path: &Path) -> io::Result<File> {
    sys::open_lock_file(path)
}
