//! The storage-availability cache file format: serde types, their JSON Schema, and the
//! version rule.
//!
//! The file is a published contract, read by deployment checks, dashboards and programs in
//! other languages. Its JSON Schema is generated from these types by schemars and checked in
//! as `availability-cache.schema.json`.
//!
//! ```
//! use storage_availability_schema::{CacheFile, SCHEMA_VERSION};
//!
//! let file: CacheFile = serde_json::from_str(r#"{
//!   "schema_version": "1.0",
//!   "metadata": { "generator": "storage-availability 0.1.0",
//!                 "generated_at": "2026-11-25T10:00:00Z",
//!                 "config_type": "app::StorageConfig", "config_path": null,
//!                 "config_mtime": null, "platform": "linux-x86_64" },
//!   "sections": {} }"#).unwrap();
//! assert_eq!(file.schema_version, SCHEMA_VERSION);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The format version this crate writes. Files with the same major version are read.
pub const SCHEMA_VERSION: &str = "1.0";

/// A whole cache file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(title = "storage-availability cache file")]
pub struct CacheFile {
    /// The format version, `MAJOR.MINOR`. Readers accept their own major version; a newer
    /// minor version may add fields, which older readers ignore.
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+$"))]
    pub schema_version: String,
    /// Where and when the file was written. For diagnostics only: validity never depends on it.
    pub metadata: Metadata,
    /// One record per section, by section name.
    pub sections: BTreeMap<String, SectionRecord>,
}

/// Diagnostics about the file: who wrote it, when, for which config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Metadata {
    /// The library that wrote the file and its version, e.g. `storage-availability 0.1.0`.
    pub generator: String,
    /// When the file was written (RFC 3339, UTC).
    pub generated_at: Timestamp,
    /// The Rust type of the config, e.g. `app::StorageConfig`.
    pub config_type: String,
    /// The config file the cache belongs to, if any.
    pub config_path: Option<String>,
    /// The config file's modification time in Unix seconds when the file was written.
    /// Recorded for diagnostics only: validity never depends on it.
    pub config_mtime: Option<f64>,
    /// The platform that wrote the file, `<os>-<arch>`, e.g. `linux-x86_64`.
    pub platform: String,
}

/// The cached result of validating one section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SectionRecord {
    /// SHA-256 of the section's versioned canonical content: 64 lowercase hex digits. The
    /// record is reused only while this equals the current key.
    pub section_hash: SectionHash,
    /// Configured and validated successfully: the storage may be used.
    pub enabled: bool,
    /// The validator passed.
    pub validation_passed: bool,
    /// The last error, if the validation failed.
    pub last_error: Option<String>,
    /// Every error of the validation.
    #[serde(default)]
    pub errors: Vec<String>,
    /// Warnings of the validation; they do not make it fail.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// When the validation ran (RFC 3339, UTC).
    pub checked_at: Timestamp,
    /// How long the validation took, in milliseconds.
    #[schemars(range(min = 0.0))]
    pub duration_ms: f64,
    /// How many validations in a row have failed for this hash (0 after a success). Failed
    /// sections are retried after a backoff that doubles with each one.
    #[serde(default)]
    pub consecutive_failures: u32,
}

/// A section hash: exactly 64 lowercase hex digits (a full SHA-256).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct SectionHash(#[schemars(regex(pattern = r"^[0-9a-f]{64}$"))] String);

impl SectionHash {
    /// `hex` if it is exactly 64 lowercase hex digits.
    pub fn new(hex: impl Into<String>) -> Result<Self, InvalidHash> {
        let hex = hex.into();
        if is_section_hash(&hex) {
            Ok(SectionHash(hex))
        } else {
            Err(InvalidHash(hex))
        }
    }

    /// The 64 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_section_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl fmt::Debug for SectionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SectionHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SectionHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = SectionHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("64 lowercase hex digits")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<SectionHash, E> {
                SectionHash::new(s).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// A string that is not a section hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("section hash must be 64 lowercase hex digits, found {0:?}")]
pub struct InvalidHash(String);

/// A point in time, written as RFC 3339 in UTC (`2026-11-25T10:00:00.123456Z`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[schemars(with = "String", extend("format" = "date-time"))]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// The current time.
    pub fn now() -> Self {
        Timestamp(SystemTime::now())
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Timestamp(t)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_micros(self.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_micros(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_rfc3339_micros(self.0))
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp in UTC, such as 2026-11-25T10:00:00Z")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Timestamp, E> {
                humantime::parse_rfc3339(s)
                    .map(Timestamp)
                    .map_err(|e| E::custom(format_args!("invalid timestamp {s:?}: {e}")))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Why a file's `schema_version` cannot be read by this version of the library.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VersionError {
    /// Not `MAJOR.MINOR` with two decimal numbers.
    #[error("schema_version {0:?} is not of the form MAJOR.MINOR")]
    Malformed(String),
    /// Another major version: the format changed incompatibly.
    #[error(
        "schema_version {found} has major version {major}; this reader understands major version {supported}"
    )]
    UnsupportedMajor {
        /// The version found in the file.
        found: String,
        /// Its major number.
        major: u64,
        /// The major version this crate reads and writes.
        supported: u64,
    },
}

/// Whether a file of format `version` can be read: the same major version as
/// [`SCHEMA_VERSION`]. A newer minor version is read, its unknown fields ignored.
///
/// ```
/// use storage_availability_schema::{is_compatible, VersionError};
/// assert!(is_compatible("1.0").is_ok());
/// assert!(is_compatible("1.7").is_ok());
/// assert!(matches!(is_compatible("2.0"), Err(VersionError::UnsupportedMajor { .. })));
/// assert!(matches!(is_compatible("one"), Err(VersionError::Malformed(_))));
/// ```
pub fn is_compatible(version: &str) -> Result<(), VersionError> {
    let malformed = || VersionError::Malformed(version.to_owned());
    let (major, minor) = version.split_once('.').ok_or_else(malformed)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return Err(malformed());
    }
    let major: u64 = major.parse().map_err(|_| malformed())?;
    let supported = supported_major();
    if major == supported {
        Ok(())
    } else {
        Err(VersionError::UnsupportedMajor {
            found: version.to_owned(),
            major,
            supported,
        })
    }
}

fn supported_major() -> u64 {
    SCHEMA_VERSION
        .split_once('.')
        .and_then(|(major, _)| major.parse().ok())
        .unwrap_or(1)
}

/// TEMPORARY (replaced by the schema branch).
pub fn schema_for_sections(_names: &[&str]) -> schemars::Schema {
    schemars::schema_for!(CacheFile)
}
