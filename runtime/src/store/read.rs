//! Bounded, non-blocking reads of the cache file.
//!
//! The size is checked before reading and the read itself goes through `take(max + 1)`, since
//! some files lie about their length (a symlink to `/dev/zero` reports 0). Only regular
//! files are read; the file is opened with `O_NONBLOCK` on Unix so a FIFO planted at the
//! path cannot block the open, and its type is checked on the open handle.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// What was found at the cache path.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// Nothing there.
    Missing,
    /// The whole file, at most `max` bytes.
    Bytes(Vec<u8>),
    /// A regular file over the limit: not read.
    TooLarge { size: u64 },
    /// Not a regular file (directory, FIFO, device, socket): never read, moved or deleted.
    NotRegular { kind: &'static str },
    /// The open or read failed (permission denied, I/O error).
    Failed(io::Error),
}

pub(crate) fn read_bounded(path: &Path, max: u64) -> ReadOutcome {
    let file = match open_nonblocking(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return ReadOutcome::Missing,
        Err(e) => {
            // A directory cannot be opened for reading on some platforms: report its type.
            if let Ok(meta) = std::fs::metadata(path)
                && !meta.is_file()
            {
                return ReadOutcome::NotRegular {
                    kind: file_kind(&meta.file_type()),
                };
            }
            return ReadOutcome::Failed(e);
        }
    };
    let meta = match file.metadata() {
        Ok(meta) => meta,
        Err(e) => return ReadOutcome::Failed(e),
    };
    if !meta.is_file() {
        return ReadOutcome::NotRegular {
            kind: file_kind(&meta.file_type()),
        };
    }
    if meta.len() > max {
        return ReadOutcome::TooLarge { size: meta.len() };
    }
    let capacity = usize::try_from(meta.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity.saturating_add(1));
    match file.take(max.saturating_add(1)).read_to_end(&mut bytes) {
        Ok(_) if bytes.len() as u64 > max => ReadOutcome::TooLarge {
            size: bytes.len() as u64,
        },
        Ok(_) => ReadOutcome::Bytes(bytes),
        Err(e) => ReadOutcome::Failed(e),
    }
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> io::Result<File> {
    // No FIFOs to fear: check the type first, then open.
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(io::Error::other("not a regular file"));
    }
    OpenOptions::new().read(true).open(path)
}

pub(crate) fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}
