//! Bounded, non-blocking, no-follow reads of the cache file, with the trust check.
//!
//! The reading itself is the schema crate's [`read`](storage_availability_schema::read),
//! shared with the `availability` tool: `O_NOFOLLOW` (a symbolic link is refused, never
//! followed), `O_NONBLOCK` (a FIFO cannot block the open), the type and size checked on the
//! open handle, and the read bounded by `take(max + 1)` (a device lies about its length).
//! Before anything is read, the open handle's owner and mode are checked (`trust`).

use std::io;
use std::path::Path;

use storage_availability_schema::read::{self, ReadError};

use super::trust;

/// What was found at the cache path.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// Nothing there.
    Missing,
    /// The whole file, at most `max` bytes.
    Bytes(Vec<u8>),
    /// A regular file over the limit: not read.
    TooLarge { size: u64 },
    /// Not a regular file (directory, FIFO, device, socket, or a symbolic link to one of
    /// those): never read, moved or deleted.
    NotRegular { kind: &'static str },
    /// A regular file that is not ours, or a symbolic link (to a regular file or nowhere):
    /// never read; a save replaces it.
    Untrusted(String),
    /// The open or read failed (permission denied, I/O error).
    Failed(io::Error),
}

pub(crate) fn read_bounded(path: &Path, max: u64) -> ReadOutcome {
    let (file, metadata) = match read::open_regular(path) {
        Ok(opened) => opened,
        Err(ReadError::Missing) => return ReadOutcome::Missing,
        Err(ReadError::Symlink) => return symlink(path),
        Err(ReadError::NotRegular { kind }) => return ReadOutcome::NotRegular { kind },
        Err(ReadError::TooLarge { size, .. }) => return ReadOutcome::TooLarge { size },
        Err(ReadError::Io(e)) => return ReadOutcome::Failed(e),
        Err(e) => return ReadOutcome::Failed(io::Error::other(e.to_string())),
    };
    if let Err(reason) = trust::check(&metadata) {
        return ReadOutcome::Untrusted(reason.to_string());
    }
    match read::read_open(file, &metadata, max) {
        Ok(bytes) => ReadOutcome::Bytes(bytes),
        Err(ReadError::TooLarge { size, .. }) => ReadOutcome::TooLarge { size },
        Err(ReadError::Io(e)) => ReadOutcome::Failed(e),
        Err(e) => ReadOutcome::Failed(io::Error::other(e.to_string())),
    }
}

/// A symbolic link at the cache path is never followed to read. What it points to only
/// decides whose it is: a link to a directory, FIFO or device is the user's (left alone); one
/// to a regular file, or to nothing, is not trusted and is replaced by the next save (the
/// rename replaces the link itself, never its target).
fn symlink(path: &Path) -> ReadOutcome {
    match std::fs::metadata(path) {
        Ok(target) if !target.is_file() => ReadOutcome::NotRegular {
            kind: match read::file_kind(&target.file_type()) {
                "a directory" => "a symbolic link to a directory",
                "a FIFO" => "a symbolic link to a FIFO",
                "a device" => "a symbolic link to a device",
                _ => "a symbolic link to a special file",
            },
        },
        _ => ReadOutcome::Untrusted("is a symbolic link, which is never followed".to_owned()),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_to_a_file_is_untrusted_and_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, b"AKIA-SECRET").unwrap();
        let link = dir.path().join("c.json");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        match read_bounded(&link, 1024) {
            ReadOutcome::Untrusted(reason) => assert!(!reason.contains("AKIA")),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert!(matches!(
            read_bounded(&link, 1024),
            ReadOutcome::NotRegular { .. }
        ));
    }
}
