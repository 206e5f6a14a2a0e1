//! Unix: access checks for the effective ids, private files and directories, directory
//! fsync, the errno of an unsupported lock.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

pub(crate) fn dir_writable(dir: &Path) -> Option<bool> {
    use rustix::fs::{Access, AtFlags, CWD, accessat};
    use rustix::io::Errno;
    match accessat(
        CWD,
        dir,
        Access::WRITE_OK | Access::EXEC_OK,
        AtFlags::EACCESS,
    ) {
        Ok(()) => Some(true),
        Err(Errno::ACCESS | Errno::ROFS | Errno::PERM) => Some(false),
        Err(_) => None,
    }
}

/// A new file readable and writable only by this user.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
}

#[expect(clippy::disallowed_methods, reason = "this module owns sync_all")]
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The last directory `builder` creates is readable only by this user.
pub(crate) fn private_dir(builder: &mut DirBuilder) {
    builder.mode(0o700);
}

pub(crate) fn is_enotsup(code: i32) -> bool {
    code == libc::ENOTSUP || code == libc::ENOSYS || code == libc::EOPNOTSUPP
}
