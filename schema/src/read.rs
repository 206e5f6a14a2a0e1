//! Reading a cache file safely: the one reader used by the library and by the `availability`
//! tool.
//!
//! - A symbolic link at the path is refused, never followed (`O_NOFOLLOW` on Unix).
//! - The open never blocks (`O_NONBLOCK` on Unix): a FIFO or device at the path is refused.
//! - The type and size are checked on the open handle (`fstat`), so a file swapped in
//!   between a check and the open cannot slip through.
//! - The read is bounded (`take(limit + 1)`): some files lie about their length (a device
//!   reports 0).
//!
//! ```
//! use storage_availability_schema::read::{read_bounded, ReadError};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("cache.json");
//! std::fs::write(&path, b"{}").unwrap();
//! assert_eq!(read_bounded(&path, 1024).unwrap().bytes, b"{}");
//! assert!(matches!(read_bounded(&path, 1), Err(ReadError::TooLarge { .. })));
//! assert!(matches!(read_bounded(&dir.path().join("nothing"), 1024), Err(ReadError::Missing)));
//! ```

use crate::sys;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::path::Path;

/// Why a file was not read. The messages never contain the file's content.
///
/// ```
/// use storage_availability_schema::read::ReadError;
/// let e = ReadError::TooLarge { size: 20, limit: 10 };
/// assert_eq!(e.to_string(), "is 20 bytes or more, over the 10-byte limit");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Nothing at the path.
    #[error("does not exist")]
    Missing,
    /// A symbolic link: never followed.
    #[error("is a symbolic link, which is never followed")]
    Symlink,
    /// Not a regular file (a directory, a FIFO, a device, a socket): never read.
    #[error("is {kind}, not a regular file")]
    NotRegular {
        /// What it is, such as `a FIFO` or `a directory`.
        kind: &'static str,
    },
    /// A regular file over the limit: not read (or read only up to the limit).
    #[error("is {size} bytes or more, over the {limit}-byte limit")]
    TooLarge {
        /// Its size, or how much was read before the limit was passed.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The open or the read failed (permission denied, I/O error).
    #[error("cannot be read: {0}")]
    Io(#[source] io::Error),
}

/// A file read by [`read_bounded`]: its bytes and what `fstat` said of the open handle
/// (owner and mode on Unix, for the caller's trust checks).
#[derive(Debug)]
#[non_exhaustive]
pub struct ReadFile {
    /// The whole content, at most the limit.
    pub bytes: Vec<u8>,
    /// The metadata of the handle the bytes were read from.
    pub metadata: Metadata,
}

/// Opens `path` for reading without following a symbolic link and without blocking, and
/// checks on the open handle that it is a regular file.
///
/// ```
/// use storage_availability_schema::read::{open_regular, ReadError};
///
/// let dir = tempfile::tempdir().unwrap();
/// assert!(matches!(open_regular(dir.path()), Err(ReadError::NotRegular { .. })));
/// ```
pub fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    let file = match sys::open_nofollow_nonblocking(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(ReadError::Missing),
        Err(e) => {
            // `O_NOFOLLOW` reports a link as ELOOP (EMLINK/EFTYPE on some BSDs); some
            // platforms cannot open a directory for reading: tell what is there.
            return Err(match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => ReadError::Symlink,
                Ok(meta) if !meta.is_file() => ReadError::NotRegular {
                    kind: file_kind(&meta.file_type()),
                },
                _ => ReadError::Io(e),
            });
        }
    };
    let metadata = file.metadata().map_err(ReadError::Io)?;
    if !metadata.is_file() {
        return Err(ReadError::NotRegular {
            kind: file_kind(&metadata.file_type()),
        });
    }
    Ok((file, metadata))
}

/// Reads at most `limit` bytes from a file opened by [`open_regular`]: a file whose
/// `metadata` says it is larger is not read, and one that grows is cut off past the limit.
///
/// ```
/// use storage_availability_schema::read::{open_regular, read_open};
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("cache.json");
/// std::fs::write(&path, b"[1, 2]").unwrap();
/// let (file, metadata) = open_regular(&path).unwrap();
/// assert_eq!(read_open(file, &metadata, 100).unwrap(), b"[1, 2]");
/// ```
pub fn read_open(file: File, metadata: &Metadata, limit: u64) -> Result<Vec<u8>, ReadError> {
    if metadata.len() > limit {
        return Err(ReadError::TooLarge {
            size: metadata.len(),
            limit,
        });
    }
    let capacity = usize::try_from(metadata.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity.saturating_add(1));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// [`open_regular`] then [`read_open`]: the whole file if it is a regular file (not a link)
/// of at most `limit` bytes.
///
/// ```
/// use storage_availability_schema::read::read_bounded;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("cache.json");
/// std::fs::write(&path, b"{}").unwrap();
/// let read = read_bounded(&path, 1 << 20).unwrap();
/// assert_eq!((read.bytes.as_slice(), read.metadata.len()), (&b"{}"[..], 2));
/// ```
pub fn read_bounded(path: &Path, limit: u64) -> Result<ReadFile, ReadError> {
    let (file, metadata) = open_regular(path)?;
    let bytes = read_open(file, &metadata, limit)?;
    Ok(ReadFile { bytes, metadata })
}

/// What a file type is, in words: `a FIFO`, `a directory`, `a symbolic link`...
///
/// ```
/// use storage_availability_schema::read::file_kind;
/// let dir = tempfile::tempdir().unwrap();
/// assert_eq!(file_kind(&std::fs::metadata(dir.path()).unwrap().file_type()), "a directory");
/// ```
pub fn file_kind(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else if file_type.is_file() {
        "a regular file"
    } else {
        sys::special_kind(file_type)
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("secret");
        std::fs::write(&target, b"AKIA-SECRET").unwrap();
        let link = dir.path().join("cache.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(read_bounded(&link, 100), Err(ReadError::Symlink)));
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("none"), &dangling).unwrap();
        assert!(matches!(
            read_bounded(&dangling, 100),
            Err(ReadError::Symlink)
        ));
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        match read_bounded(&fifo, 100) {
            Err(ReadError::NotRegular { kind }) => assert_eq!(kind, "a FIFO"),
            other => panic!("{other:?}"),
        }
    }
}
