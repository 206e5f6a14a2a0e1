//! A writable place for the cache file when the config's directory is read-only (a
//! Kubernetes ConfigMap, a read-only root file system): the per-user platform cache
//! directory, under the same file name.

use std::path::{Path, PathBuf};

use super::trust;

/// `derived` if its directory can be written by this process; otherwise the same file name
/// in `<platform cache dir>/storage-availability/`. When the directory's state cannot be
/// told (it does not exist) or there is no platform cache directory, `derived` is kept.
pub(crate) fn writable_location(derived: PathBuf) -> PathBuf {
    writable_location_in(derived, dirs::cache_dir().as_deref())
}

fn writable_location_in(derived: PathBuf, platform: Option<&Path>) -> PathBuf {
    let dir = match derived.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if trust::dir_writable(dir) != Some(false) {
        return derived;
    }
    let (Some(base), Some(name)) = (platform, derived.file_name()) else {
        tracing::warn!(target: "storage_availability", dir = %dir.display(),
            "the config's directory is read-only and there is no platform cache directory; \
             the cache file cannot be saved");
        return derived;
    };
    let fallback = base.join("storage-availability").join(name);
    tracing::info!(target: "storage_availability", dir = %dir.display(),
        path = %fallback.display(),
        "the config's directory is read-only; keeping the cache file in the platform cache directory");
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_keeps_the_derived_path() {
        let dir = tempfile::tempdir().unwrap();
        let derived = dir.path().join("app.1234abcd.availability.json");
        assert_eq!(
            writable_location_in(derived.clone(), Some(Path::new("/platform"))),
            derived
        );
    }
}
