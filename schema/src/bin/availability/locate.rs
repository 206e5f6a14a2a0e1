//! From the path an operator gives to the cache file(s) it names.
//!
//! A path that ends in `.availability.json`, or holds a JSON object with a `schema_version`
//! key, is a cache file and is used as is. Any other path is a config path: the library names
//! its cache file `<config dir>/<stem>.<8 hex>.availability.json`, where the hash covers the
//! absolute config path and the config type (which the tool cannot know), so the tool looks
//! in the config's directory (and in the per-user platform cache directory, where the
//! library keeps the file when the config's directory is read-only) for
//! `<stem>.*.availability.json` files whose `metadata.config_path` is the absolute config
//! path. Each candidate is read through the library's reader and acceptance rule.

use std::path::{Path, PathBuf};

use serde_json::Value;
use storage_availability_schema::{parse_cache_file, read};

use crate::Problem;

/// A cache file found for a path.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) path: PathBuf,
    /// The config type it was written for, when it was found from a config path.
    pub(crate) config_type: Option<String>,
}

/// What narrows the search from a config path.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Search<'a> {
    pub(crate) config_type: Option<&'a str>,
    pub(crate) max_bytes: u64,
}

/// The cache file(s) `path` names: itself when it is a cache file, else those found for it
/// as a config path (at least one, sorted by path). A path that is neither is given back as
/// is when it looks like a broken cache file (a `.json` file that is not a JSON object, or
/// that cannot be read), so the caller reports what is wrong with it.
pub(crate) fn resolve(path: &Path, search: Search<'_>) -> Result<Vec<Found>, Problem> {
    let given = || {
        Ok(vec![Found {
            path: path.to_owned(),
            config_type: None,
        }])
    };
    if is_cache_file_name(path) {
        return given();
    }
    let probe = read::read_bounded(path, search.max_bytes);
    let content = match &probe {
        Ok(read) => Content::of(&read.bytes),
        Err(_) => Content::Unreadable,
    };
    // A cache file; or a directory, FIFO or device, which is no config either: the caller
    // says what is wrong with it.
    if content == Content::CacheLike || matches!(probe, Err(read::ReadError::NotRegular { .. })) {
        return given();
    }
    let absolute = std::path::absolute(path)
        .map_err(|e| Problem::io("cannot make the path absolute", path, e))?;
    let config_path = absolute.display().to_string();
    let stem = absolute
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "config".to_owned());
    let mut places: Vec<PathBuf> = vec![
        absolute
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_owned),
    ];
    if let Some(platform) = dirs::cache_dir().map(|d| d.join("storage-availability"))
        && !places.contains(&platform)
    {
        places.push(platform);
    }
    let mut found = Vec::new();
    let mut skipped = 0usize;
    for dir in &places {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(middle) = name
                .strip_prefix(&stem)
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|rest| rest.strip_suffix(".availability.json"))
            else {
                continue;
            };
            // `<stem>.<hash>.availability.json`: one more dot would be another config's stem.
            if middle.is_empty() || middle.contains('.') {
                continue;
            }
            let candidate = entry.path();
            let file = match read::read_bounded(&candidate, search.max_bytes)
                .ok()
                .and_then(|read| parse_cache_file(&read.bytes).ok())
            {
                Some(file) => file,
                None => {
                    skipped += 1;
                    continue;
                }
            };
            if file.metadata.config_path.as_deref() != Some(config_path.as_str()) {
                continue;
            }
            if search
                .config_type
                .is_some_and(|wanted| wanted != file.metadata.config_type)
            {
                continue;
            }
            found.push(Found {
                path: candidate,
                config_type: Some(file.metadata.config_type),
            });
        }
    }
    if !found.is_empty() {
        found.sort_by(|a, b| a.path.cmp(&b.path));
        return Ok(found);
    }
    let json_named = path.extension().is_some_and(|ext| ext == "json");
    // A `.json` file that cannot be read or is not a JSON object was meant as a cache file
    // (a custom `cache_path`): the caller says what is wrong with it.
    if json_named && matches!(content, Content::Unreadable | Content::NotJsonObject) {
        return given();
    }
    let mut cause = format!(
        "looked in {} for {stem}.*.availability.json with metadata.config_path \
         {config_path:?}",
        places
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and "),
    );
    if let Some(config_type) = search.config_type {
        cause.push_str(&format!(" and metadata.config_type {config_type:?}"));
    }
    if skipped > 0 {
        cause.push_str(&format!(
            " ({skipped} file(s) with that name pattern are not readable cache files)"
        ));
    }
    if matches!(probe, Err(read::ReadError::Missing)) {
        cause.push_str("; the path itself does not exist");
    }
    Err(Problem::io("no cache file", path, cause))
}

/// Whether the name says it is a cache file.
fn is_cache_file_name(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|name| name.to_string_lossy().ends_with(".availability.json"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Content {
    /// A JSON object with a `schema_version` key: meant as a cache file.
    CacheLike,
    /// A JSON object without one: a config written in JSON.
    OtherObject,
    /// Not UTF-8, not JSON, or JSON that is not an object.
    NotJsonObject,
    Unreadable,
}

impl Content {
    fn of(bytes: &[u8]) -> Self {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) if map.contains_key("schema_version") => Content::CacheLike,
            Ok(Value::Object(_)) => Content::OtherObject,
            _ => Content::NotJsonObject,
        }
    }
}

/// The problem for a mutating command given a config path with several cache files.
pub(crate) fn ambiguous(path: &Path, found: &[Found]) -> Problem {
    let list = found
        .iter()
        .map(|f| {
            format!(
                "{} (config_type {})",
                f.path.display(),
                f.config_type.as_deref().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    Problem::io(
        "several cache files",
        path,
        format!(
            "this config has {} cache files (one per config type that reads it, or one next \
             to it and one in the platform cache directory): {list}; pass one of them, or \
             choose with --config-type",
            found.len()
        ),
    )
}
