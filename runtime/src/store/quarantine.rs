//! Moving an unreadable cache file aside as `<file>.corrupt-<unix seconds>[-n]`, keeping the
//! three newest, so an operator can see what went wrong without the cache growing forever.
//!
//! Evidence is chosen by the files' own mtimes, never by the numbers in their names: names
//! can be planted by another user and the clock can step back. The file just moved aside is
//! never deleted, and only regular files owned by this process are ever deleted (never
//! through a symbolic link, never another user's file).

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::path::with_suffix;
use super::trust;

/// How many quarantined files are kept per cache file.
pub(crate) const KEEP: usize = 3;

/// Renames `path` to a fresh quarantine name and prunes older ones. Call with the lock held.
#[expect(
    clippy::disallowed_methods,
    reason = "quarantine is a rename of its own"
)]
pub(crate) fn quarantine(path: &Path, now: SystemTime) -> io::Result<PathBuf> {
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    // Several in one second get `-1`, `-2`, ...: the first name not taken.
    let mut destination = with_suffix(path, &format!(".corrupt-{secs}"));
    let mut n: u64 = 0;
    while std::fs::symlink_metadata(&destination).is_ok() {
        n += 1;
        destination = with_suffix(path, &format!(".corrupt-{secs}-{n}"));
    }
    std::fs::rename(path, &destination)?;
    prune(path, &destination);
    Ok(destination)
}

/// The quarantined files of `path` (every `.corrupt-*` name, whoever made it), oldest first
/// by their own mtime, then by name.
pub(crate) fn quarantined(path: &Path) -> Vec<PathBuf> {
    candidates(path)
        .into_iter()
        .map(|candidate| candidate.path)
        .collect()
}

struct Candidate {
    path: PathBuf,
    modified: SystemTime,
    ours: bool,
}

/// Every entry named `<file>.corrupt-*`, with its mtime and whether we may delete it (a
/// regular file owned by us: `symlink_metadata` never follows a link), oldest first.
fn candidates(path: &Path) -> Vec<Candidate> {
    let Some(dir) = path.parent() else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(
        "{}.corrupt-",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<Candidate> = entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .filter_map(|entry| {
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).ok()?;
            Some(Candidate {
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                ours: meta.is_file() && trust::owned_by_us(&meta),
                path,
            })
        })
        .collect();
    found.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
    found
}

/// Keeps `moved` (just moved aside, whatever its mtime) and the newest of our other
/// quarantined files, `KEEP` in all; deletes our older ones. Files that are not ours are
/// neither counted nor deleted.
fn prune(path: &Path, moved: &Path) {
    let ours: Vec<Candidate> = candidates(path)
        .into_iter()
        .filter(|c| c.ours && c.path != moved)
        .collect();
    let excess = ours.len().saturating_sub(KEEP - 1);
    for old in &ours[..excess] {
        if let Err(error) = std::fs::remove_file(&old.path) {
            tracing::debug!(target: "storage_availability", path = %old.path.display(),
                %error, "could not remove an old quarantined cache file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn set_mtime(path: &Path, t: SystemTime) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(t)
            .unwrap();
    }

    #[test]
    fn names_are_unique_within_a_second_and_three_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut moved = Vec::new();
        for i in 0..5u64 {
            std::fs::write(&path, format!("bad {i}")).unwrap();
            set_mtime(&path, t + Duration::from_secs(i));
            moved.push(quarantine(&path, t).unwrap());
        }
        assert!(!path.exists());
        let kept = quarantined(&path);
        assert_eq!(kept, moved[2..].to_vec());
        assert_eq!(std::fs::read_to_string(&kept[2]).unwrap(), "bad 4");
    }

    #[test]
    fn the_file_just_moved_is_kept_whatever_its_mtime_or_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        // Newer-looking names and newer mtimes than what is moved now (a clock step back).
        for name in ["c.json.corrupt-9999999999", "c.json.corrupt-9999999999-7"] {
            let planted = dir.path().join(name);
            std::fs::write(&planted, b"old").unwrap();
            set_mtime(&planted, now + Duration::from_secs(3600));
        }
        let planted = dir.path().join("c.json.corrupt-1700000000-4294967295");
        std::fs::write(&planted, b"old").unwrap();
        set_mtime(&planted, now + Duration::from_secs(7200));
        std::fs::write(&path, b"fresh evidence").unwrap();
        set_mtime(&path, now - Duration::from_secs(86_400));
        let moved = quarantine(&path, now).unwrap();
        assert_eq!(std::fs::read(&moved).unwrap(), b"fresh evidence");
        let kept = quarantined(&path);
        assert_eq!(kept.len(), KEEP);
        assert!(kept.contains(&moved));
    }
}
