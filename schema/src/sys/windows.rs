//! Windows (and other targets without Unix owners and modes): no `O_NOFOLLOW` or FIFOs, so
//! the link itself is looked at first; every regular file is trusted.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io;
use std::path::Path;

pub(crate) fn open_nofollow_nonblocking(path: &Path) -> io::Result<File> {
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    OpenOptions::new().read(true).open(path)
}

pub(crate) fn special_kind(_: &FileType) -> &'static str {
    "a special file"
}

pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(io::Error::other("the lock file is a symbolic link"));
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

pub(crate) fn check_owner_and_mode(_: &Metadata) -> Result<(), String> {
    Ok(())
}

pub(crate) fn owned_by_us(_: &Metadata) -> bool {
    true
}

pub(crate) fn same_file(a: &Metadata, b: &Metadata) -> bool {
    a.len() == b.len() && a.modified().ok() == b.modified().ok()
}
