//! Which files in the cache directory are ours: the trust rules.
//!
//! The cache may live in a shared or world-writable directory (`/tmp`, a group-writable
//! deploy directory), where another local user can plant files. A file is trusted only when,
//! checked on the open handle (`fstat`), it is
//! - a regular file (symbolic links are refused at the open with `O_NOFOLLOW`),
//! - owned by the effective uid, or by root (as ssh's `StrictModes` allows),
//! - not writable by group or others.
//!
//! Anything else is not trusted: never read into answers, never written through, never
//! waited on (a lock file), never deleted. Deleting is stricter still: only files owned by
//! the effective uid itself. The rules themselves live in the schema crate
//! (`storage_availability_schema::trust`), shared with the `availability` CLI; where there
//! are no Unix owners and modes, every regular file is trusted.

use std::fmt;
use std::fs::Metadata;
use std::path::Path;

/// Why a file is not trusted; the reason never names its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Untrusted(String);

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a regular file (metadata from the open handle) may be trusted.
pub(crate) fn check(metadata: &Metadata) -> Result<(), Untrusted> {
    if !metadata.is_file() {
        return Err(Untrusted("is not a regular file".to_owned()));
    }
    storage_availability_schema::trust::check_owner_and_mode(metadata).map_err(Untrusted)
}

/// Whether this process owns the file (its effective uid): the only files it ever deletes.
pub(crate) fn owned_by_us(metadata: &Metadata) -> bool {
    storage_availability_schema::trust::owned_by_us(metadata)
}

/// Whether this process may create files in `dir` (write and search permission for the
/// effective ids, on a file system mounted read-write). `None` when it cannot tell (the
/// directory does not exist).
pub(crate) fn dir_writable(dir: &Path) -> Option<bool> {
    super::sys::dir_writable(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn our_private_file_is_trusted_and_a_shared_writable_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, b"{}").unwrap();
        for (mode, trusted) in [
            (0o600, true),
            (0o644, true),
            (0o400, true),
            (0o620, false),
            (0o602, false),
            (0o666, false),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let meta = std::fs::metadata(&path).unwrap();
            assert_eq!(check(&meta).is_ok(), trusted, "mode {mode:o}");
            assert!(owned_by_us(&meta));
        }
        assert!(check(&std::fs::metadata(dir.path()).unwrap()).is_err());
        assert_eq!(dir_writable(dir.path()), Some(true));
        assert_eq!(dir_writable(&dir.path().join("missing")), None);
    }
}
