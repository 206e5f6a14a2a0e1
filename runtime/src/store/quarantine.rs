//! Moving an unreadable cache file aside as `<file>.corrupt-<unix seconds>[-n]`, keeping the
//! three newest, so an operator can see what went wrong without the cache growing forever.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::path::with_suffix;

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
    // Several in one second get `-1`, `-2`, ... after the highest number already used for
    // that second (older ones may have been pruned, so existence alone is not enough).
    let used = quarantined_with_order(path)
        .into_iter()
        .filter(|((s, _), _)| *s == secs)
        .map(|((_, n), _)| n)
        .max();
    let mut n = used.map_or(0, |n| n + 1);
    let name = |n: u32| {
        if n == 0 {
            with_suffix(path, &format!(".corrupt-{secs}"))
        } else {
            with_suffix(path, &format!(".corrupt-{secs}-{n}"))
        }
    };
    let mut destination = name(n);
    while std::fs::symlink_metadata(&destination).is_ok() {
        n += 1;
        destination = name(n);
    }
    std::fs::rename(path, &destination)?;
    prune(path);
    Ok(destination)
}

/// The quarantined files of `path`, oldest first.
pub(crate) fn quarantined(path: &Path) -> Vec<PathBuf> {
    quarantined_with_order(path)
        .into_iter()
        .map(|(_, path)| path)
        .collect()
}

fn quarantined_with_order(path: &Path) -> Vec<((u64, u32), PathBuf)> {
    let Some(dir) = path.parent() else {
        return Vec::new();
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
    let mut found: Vec<((u64, u32), PathBuf)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let rest = name.strip_prefix(&prefix)?;
            let (secs, n) = match rest.split_once('-') {
                Some((secs, n)) => (secs.parse().ok()?, n.parse().ok()?),
                None => (rest.parse().ok()?, 0),
            };
            Some(((secs, n), entry.path()))
        })
        .collect();
    found.sort();
    found
}

fn prune(path: &Path) {
    let all = quarantined(path);
    let excess = all.len().saturating_sub(KEEP);
    for old in &all[..excess] {
        let _ = std::fs::remove_file(old);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_are_unique_within_a_second_and_three_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut moved = Vec::new();
        for i in 0..5 {
            std::fs::write(&path, format!("bad {i}")).unwrap();
            moved.push(quarantine(&path, t).unwrap());
        }
        assert!(!path.exists());
        let kept = quarantined(&path);
        assert_eq!(kept, moved[2..].to_vec());
        assert_eq!(std::fs::read_to_string(&kept[2]).unwrap(), "bad 4");
        assert!(kept[0].to_string_lossy().ends_with(".corrupt-1700000000-2"));
        assert!(kept[2].to_string_lossy().ends_with(".corrupt-1700000000-4"));
    }
}
