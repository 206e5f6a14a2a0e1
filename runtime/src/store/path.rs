//! Where the cache file lives.

use std::io;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// `P.parent/<stem>.<8 hex>.availability.json` for a config path `P` and a config type, the
/// hex the first of SHA-256 over the absolute path and the config type identity. The hash
/// keeps apart two configs with the same file name in different directories, and two config
/// types read from one config file.
pub(crate) fn cache_path_for_config(config_path: &Path, config_type: &str) -> io::Result<PathBuf> {
    let absolute = std::path::absolute(config_path)?;
    let stem = absolute
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "config".to_owned());
    let parent = absolute.parent().unwrap_or_else(|| Path::new("/"));
    let mut input = Vec::new();
    for part in [
        absolute.as_os_str().as_encoded_bytes(),
        config_type.as_bytes(),
    ] {
        input.extend_from_slice(&(part.len() as u64).to_be_bytes());
        input.extend_from_slice(part);
    }
    let hash = short_hash(&input);
    Ok(parent.join(format!("{stem}.{hash}.availability.json")))
}

/// The platform cache directory's file for a config type with no config path:
/// `<cache dir>/storage-availability/<type>.<8 hex>.availability.json`, the hex from the
/// config type's whole identity (`module_path::StructName`), so two crates' `StorageConfig`
/// types have two files.
pub(crate) fn cache_path_for_type(type_name: &str) -> Option<PathBuf> {
    let base = dirs::cache_dir()?;
    let short: String = type_name
        .rsplit("::")
        .next()
        .unwrap_or(type_name)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(base.join("storage-availability").join(format!(
        "{short}.{}.availability.json",
        short_hash(type_name.as_bytes())
    )))
}

/// The sidecar lock file: `<cache file>.lock`.
pub(crate) fn lock_path(cache_path: &Path) -> PathBuf {
    with_suffix(cache_path, ".lock")
}

/// `path` with `suffix` appended to its file name.
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_stem_in_two_directories_gives_two_files() {
        let a = cache_path_for_config(Path::new("/etc/app/storage.yaml"), "app::C").unwrap();
        let b = cache_path_for_config(Path::new("/srv/app/storage.yaml"), "app::C").unwrap();
        assert_eq!(a.parent(), Some(Path::new("/etc/app")));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("storage.") && name.ends_with(".availability.json"),
            "{name}"
        );
        assert_eq!(
            name.len(),
            "storage.".len() + 8 + ".availability.json".len()
        );
        assert_ne!(a.file_name(), b.file_name());
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        let rel = cache_path_for_config(Path::new("storage.yaml"), "app::C").unwrap();
        let abs = cache_path_for_config(
            &std::env::current_dir().unwrap().join("storage.yaml"),
            "app::C",
        )
        .unwrap();
        assert_eq!(rel, abs);
    }

    #[test]
    fn two_config_types_on_one_config_path_get_two_files() {
        let path = Path::new("/etc/app/storage.yaml");
        let a = cache_path_for_config(path, "app::StorageConfig").unwrap();
        let b = cache_path_for_config(path, "app::other::StorageConfig").unwrap();
        assert_eq!(a.parent(), b.parent());
        assert_ne!(a, b);
        let a = cache_path_for_type("one::StorageConfig");
        let b = cache_path_for_type("two::StorageConfig");
        if let (Some(a), Some(b)) = (a, b) {
            assert_ne!(a, b);
        }
    }

    #[test]
    fn lock_is_a_sidecar() {
        assert_eq!(
            lock_path(Path::new("/a/b.json")),
            Path::new("/a/b.json.lock")
        );
    }
}
