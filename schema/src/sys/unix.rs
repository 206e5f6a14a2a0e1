//! Unix: `O_NOFOLLOW | O_NONBLOCK` opens, owners and modes.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

pub(crate) fn open_nofollow_nonblocking(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

pub(crate) fn special_kind(file_type: &FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() || file_type.is_block_device() {
        "a device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// O_NOFOLLOW: a symbolic link at the path fails the open (even with O_CREAT), so nothing
/// is ever created at the link's target. O_NONBLOCK: a FIFO cannot block the open.
pub(crate) fn open_lock_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

pub(crate) fn check_owner_and_mode(metadata: &Metadata) -> Result<(), String> {
    let (owner, me) = (metadata.uid(), euid());
    if owner != me && owner != 0 {
        return Err(format!(
            "is owned by uid {owner}, not by this process (uid {me}) or root"
        ));
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o022 != 0 {
        return Err(format!(
            "is writable by {} (mode {mode:04o})",
            if mode & 0o002 != 0 {
                "every user"
            } else {
                "its group"
            }
        ));
    }
    Ok(())
}

pub(crate) fn owned_by_us(metadata: &Metadata) -> bool {
    metadata.uid() == euid()
}

pub(crate) fn same_file(a: &Metadata, b: &Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}
