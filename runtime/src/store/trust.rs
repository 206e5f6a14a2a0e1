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
//! the effective uid itself. Platform code lives in one `sys` module per platform; where
//! there are no Unix owners and modes, every regular file is trusted.

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
    sys::check_owner_and_mode(metadata)
}

/// Whether this process owns the file (its effective uid): the only files it ever deletes.
pub(crate) fn owned_by_us(metadata: &Metadata) -> bool {
    sys::owned_by_us(metadata)
}

/// Whether this process may create files in `dir` (write and search permission for the
/// effective ids, on a file system mounted read-write). `None` when it cannot tell (the
/// directory does not exist).
pub(crate) fn dir_writable(dir: &Path) -> Option<bool> {
    sys::dir_writable(dir)
}

#[cfg(unix)]
mod sys {
    use std::fs::Metadata;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    use super::Untrusted;

    fn euid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    pub(super) fn check_owner_and_mode(metadata: &Metadata) -> Result<(), Untrusted> {
        let (owner, me) = (metadata.uid(), euid());
        if owner != me && owner != 0 {
            return Err(Untrusted(format!(
                "is owned by uid {owner}, not by this process (uid {me}) or root"
            )));
        }
        let mode = metadata.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(Untrusted(format!(
                "is writable by {} (mode {mode:04o})",
                if mode & 0o002 != 0 {
                    "every user"
                } else {
                    "its group"
                }
            )));
        }
        Ok(())
    }

    pub(super) fn owned_by_us(metadata: &Metadata) -> bool {
        metadata.uid() == euid()
    }

    pub(super) fn dir_writable(dir: &Path) -> Option<bool> {
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
}

#[cfg(not(unix))]
mod sys {
    use std::fs::Metadata;
    use std::path::Path;

    use super::Untrusted;

    pub(super) fn check_owner_and_mode(_: &Metadata) -> Result<(), Untrusted> {
        Ok(())
    }

    pub(super) fn owned_by_us(_: &Metadata) -> bool {
        true
    }

    pub(super) fn dir_writable(dir: &Path) -> Option<bool> {
        std::fs::metadata(dir)
            .ok()
            .map(|m| !m.permissions().readonly())
    }
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
