//! Windows (and other targets without Unix owners and modes): no modes to set, no
//! directory fsync.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

pub(crate) fn dir_writable(dir: &Path) -> Option<bool> {
    std::fs::metadata(dir)
        .ok()
        .map(|m| !m.permissions().readonly())
}

pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

pub(crate) fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

pub(crate) fn private_dir(_builder: &mut DirBuilder) {}

pub(crate) fn is_enotsup(_code: i32) -> bool {
    false
}
