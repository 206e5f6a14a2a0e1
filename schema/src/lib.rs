//! The storage-availability cache file format: serde types, their JSON Schema, the version
//! rule, the one acceptance rule for a file ([`parse_cache_file`]: whatever the published
//! schema rejects, it rejects) and the safe bounded reader ([`read`]) that the library and
//! the `availability` tool share.
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
use std::time::{Duration, SystemTime};

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod accept;
mod json_schema;
pub mod read;
mod sys;
pub mod trust;

pub use accept::{AcceptError, ParseError, ParseErrorKind, parse_cache_file};
pub use json_schema::{cache_file_schema, schema_for_sections};

/// The format version this crate writes. Files with the same major version are read.
///
/// ```
/// use storage_availability_schema::{is_compatible, SCHEMA_VERSION};
/// assert!(is_compatible(SCHEMA_VERSION).is_ok());
/// ```
pub const SCHEMA_VERSION: &str = "1.0";

/// A whole cache file.
///
/// Unknown fields are ignored when reading (a newer minor version may add some), so never
/// add `deny_unknown_fields` here.
///
/// ```
/// use std::collections::BTreeMap;
/// use storage_availability_schema::{CacheFile, Metadata, SCHEMA_VERSION, Timestamp};
///
/// let file = CacheFile {
///     schema_version: SCHEMA_VERSION.to_owned(),
///     metadata: Metadata {
///         generator: "storage-availability 0.1.0".to_owned(),
///         generated_at: Timestamp::now(),
///         config_type: "app::StorageConfig".to_owned(),
///         config_path: None,
///         config_mtime: None,
///         platform: "linux-x86_64".to_owned(),
///     },
///     sections: BTreeMap::new(),
/// };
/// let json = serde_json::to_string(&file).unwrap();
/// assert_eq!(serde_json::from_str::<CacheFile>(&json).unwrap(), file);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "A whole cache file.")]
#[schemars(title = "storage-availability cache file")]
pub struct CacheFile {
    /// The format version, `MAJOR.MINOR`. Readers accept their own major version; a newer
    /// minor version may add fields, which older readers ignore.
    #[schemars(regex(pattern = r"^[0-9]+\.[0-9]+$"))]
    #[serde(deserialize_with = "accept::version")]
    pub schema_version: String,
    /// Where and when the file was written. For diagnostics only: validity never depends on it.
    #[serde(deserialize_with = "accept::object")]
    pub metadata: Metadata,
    /// One record per section, by section name.
    #[serde(deserialize_with = "accept::object_values")]
    pub sections: BTreeMap<String, SectionRecord>,
}

/// Diagnostics about the file: who wrote it, when, for which config.
///
/// ```
/// use storage_availability_schema::Metadata;
/// let metadata: Metadata = serde_json::from_str(r#"{
///     "generator": "storage-availability 0.1.0", "generated_at": "2026-11-25T10:00:00Z",
///     "config_type": "app::StorageConfig", "platform": "linux-x86_64" }"#).unwrap();
/// assert_eq!(metadata.config_path, None); // absent reads as null
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "Diagnostics about the file: who wrote it, when, for which config.")]
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
///
/// ```
/// use storage_availability_schema::SectionRecord;
/// let record: SectionRecord = serde_json::from_str(&format!(r#"{{
///     "section_hash": "{}", "enabled": false, "validation_passed": false,
///     "last_error": "connection refused", "checked_at": "2026-11-25T10:00:00Z",
///     "duration_ms": 12.5, "consecutive_failures": 2 }}"#, "e".repeat(64))).unwrap();
/// assert_eq!(record.consecutive_failures, 2);
/// assert!(record.errors.is_empty()); // defaults to []
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(description = "The cached result of validating one section.")]
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
    #[serde(deserialize_with = "accept::non_negative")]
    pub duration_ms: f64,
    /// How many validations in a row have failed for this hash (0 after a success). Failed
    /// sections are retried after a backoff that doubles with each one.
    #[serde(default)]
    pub consecutive_failures: u32,
}

/// A section hash: exactly 64 lowercase hex digits (a full SHA-256).
///
/// Checked when built and when deserialized, so a record with a truncated or uppercase hash
/// never parses.
///
/// ```
/// use storage_availability_schema::SectionHash;
/// let json = format!("\"{}\"", "c0ffee".repeat(10) + "c0ff");
/// let hash: SectionHash = serde_json::from_str(&json).unwrap();
/// assert_eq!(serde_json::to_string(&hash).unwrap(), json);
/// assert!(serde_json::from_str::<SectionHash>("\"C0FFEE\"").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[schemars(description = "A section hash: exactly 64 lowercase hex digits (a full SHA-256).")]
#[serde(transparent)]
pub struct SectionHash(#[schemars(regex(pattern = r"^[0-9a-f]{64}$"))] String);

impl SectionHash {
    /// `hex` if it is exactly 64 lowercase hex digits.
    ///
    /// ```
    /// use storage_availability_schema::SectionHash;
    /// assert!(SectionHash::new("ab".repeat(32)).is_ok());
    /// assert!(SectionHash::new("AB".repeat(32)).is_err()); // uppercase
    /// assert!(SectionHash::new("ab".repeat(4)).is_err()); // truncated
    /// ```
    pub fn new(hex: impl Into<String>) -> Result<Self, InvalidHash> {
        let hex = hex.into();
        if is_section_hash(&hex) {
            Ok(SectionHash(hex))
        } else {
            Err(InvalidHash(hex))
        }
    }

    /// The 64 hex digits.
    ///
    /// ```
    /// use storage_availability_schema::SectionHash;
    /// let hash = SectionHash::new("0".repeat(64)).unwrap();
    /// assert_eq!(hash.as_str(), "0".repeat(64));
    /// ```
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
///
/// ```
/// use storage_availability_schema::SectionHash;
/// let err = SectionHash::new("abc").unwrap_err();
/// assert_eq!(err.to_string(), r#"section hash must be 64 lowercase hex digits, found "abc""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("section hash must be 64 lowercase hex digits, found {0:?}")]
pub struct InvalidHash(String);

/// The pattern every timestamp in the file matches: RFC 3339 in UTC with the `Z` suffix,
/// optional fractional seconds (`2026-11-25T10:00:00Z`, `2026-11-25T10:00:00.123456Z`).
///
/// The schema carries it next to `format: date-time`, because many validators do not check
/// formats by default and `date-time` alone would also accept offsets such as `+02:00`.
///
/// ```
/// assert_eq!(
///     storage_availability_schema::TIMESTAMP_PATTERN,
///     r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$",
/// );
/// ```
pub const TIMESTAMP_PATTERN: &str =
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$";

/// A point in time, written as RFC 3339 in UTC with microsecond precision
/// (`2026-11-25T10:00:00.123456Z`).
///
/// Writing truncates to whole microseconds. Reading accepts exactly [`TIMESTAMP_PATTERN`]
/// (any number of fractional digits, the `Z` suffix required, no other offset) for dates
/// from 1970-01-01 to 9999-12-31. A time outside that range cannot be written: serializing
/// it returns an error rather than panicking.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use storage_availability_schema::Timestamp;
///
/// let t = Timestamp(UNIX_EPOCH + Duration::from_micros(1_764_064_800_123_456));
/// let json = serde_json::to_string(&t).unwrap();
/// assert_eq!(json, r#""2025-11-25T10:00:00.123456Z""#);
/// assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
/// assert!(serde_json::from_str::<Timestamp>(r#""2025-11-25T10:00:00+02:00""#).is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
#[schemars(
    with = "String",
    description = "A point in time: RFC 3339 in UTC with the `Z` suffix, such as \
                   `2026-11-25T10:00:00.123456Z`.",
    extend("format" = "date-time", "pattern" = TIMESTAMP_PATTERN)
)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// The current time, truncated to whole microseconds, the precision of the file: a
    /// record made with it reads back equal to itself.
    ///
    /// ```
    /// use storage_availability_schema::Timestamp;
    /// let now = Timestamp::now();
    /// assert!(now >= Timestamp(std::time::UNIX_EPOCH));
    /// let json = serde_json::to_string(&now).unwrap();
    /// assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), now);
    /// ```
    pub fn now() -> Self {
        let now = SystemTime::now();
        match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => {
                Timestamp(now - Duration::from_nanos(u64::from(since.subsec_nanos() % 1_000)))
            }
            // A clock before 1970: such a time cannot be written anyway.
            Err(_) => Timestamp(now),
        }
    }

    /// The RFC 3339 form, or `None` when the time cannot be written (before 1970 or after
    /// the year 9999).
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use storage_availability_schema::Timestamp;
    ///
    /// assert_eq!(Timestamp(UNIX_EPOCH).to_rfc3339().as_deref(), Some("1970-01-01T00:00:00.000000Z"));
    /// assert_eq!(Timestamp(UNIX_EPOCH - Duration::from_secs(1)).to_rfc3339(), None);
    /// ```
    pub fn to_rfc3339(&self) -> Option<String> {
        use std::fmt::Write as _;
        // humantime panics before the epoch and fails (fmt::Error) from the year 10000 on.
        self.0.duration_since(std::time::UNIX_EPOCH).ok()?;
        let mut out = String::with_capacity(27);
        write!(out, "{}", humantime::format_rfc3339_micros(self.0)).ok()?;
        Some(out)
    }

    /// Parses the file's form: exactly [`TIMESTAMP_PATTERN`], a real calendar date and time.
    ///
    /// ```
    /// use storage_availability_schema::Timestamp;
    /// assert!(Timestamp::parse_rfc3339("2026-11-25T10:00:00Z").is_ok());
    /// assert!(Timestamp::parse_rfc3339("2026-11-25T10:00:00.5Z").is_ok());
    /// assert!(Timestamp::parse_rfc3339("2026-11-25T10:00:00+00:00").is_err());
    /// assert!(Timestamp::parse_rfc3339("2026-02-30T10:00:00Z").is_err());
    /// ```
    pub fn parse_rfc3339(s: &str) -> Result<Self, InvalidTimestamp> {
        let invalid = |reason: String| InvalidTimestamp {
            found: s.to_owned(),
            reason,
        };
        if !matches_timestamp_pattern(s) {
            return Err(invalid(format!(
                "expected RFC 3339 in UTC such as 2026-11-25T10:00:00Z (pattern {TIMESTAMP_PATTERN})"
            )));
        }
        // A leap second exists only at 23:59:60 UTC (RFC 3339, and the schema's
        // `date-time` format); humantime would take any minute's second 60.
        if &s[17..19] == "60" && &s[11..17] != "23:59:" {
            return Err(invalid(
                "second 60 (a leap second) is only valid at 23:59:60".to_owned(),
            ));
        }
        humantime::parse_rfc3339(s)
            .map(Timestamp)
            .map_err(|e| invalid(e.to_string()))
    }
}

/// `s` matches [`TIMESTAMP_PATTERN`], checked by hand (no regex engine in this crate).
fn matches_timestamp_pattern(s: &str) -> bool {
    let b = s.as_bytes();
    const SHAPE: &[u8; 19] = b"dddd-dd-ddTdd:dd:dd";
    if b.len() < SHAPE.len() + 1 || b[b.len() - 1] != b'Z' {
        return false;
    }
    let shape_ok = SHAPE.iter().zip(b).all(|(&want, &got)| match want {
        b'd' => got.is_ascii_digit(),
        _ => got == want,
    });
    let rest = &b[SHAPE.len()..b.len() - 1];
    let fraction_ok = match rest {
        [] => true,
        [b'.', digits @ ..] => !digits.is_empty() && digits.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    shape_ok && fraction_ok
}

/// A string that is not a timestamp of the file format.
///
/// ```
/// use storage_availability_schema::Timestamp;
/// let err = Timestamp::parse_rfc3339("yesterday").unwrap_err();
/// assert!(err.to_string().starts_with("invalid timestamp \"yesterday\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {found:?}: {reason}")]
pub struct InvalidTimestamp {
    found: String,
    reason: String,
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        Timestamp(t)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The RFC 3339 form; a time that cannot be written shows as its offset from the epoch.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_rfc3339() {
            Some(s) => f.write_str(&s),
            None => match self.0.duration_since(std::time::UNIX_EPOCH) {
                Ok(after) => write!(f, "<out of range: epoch + {after:?}>"),
                Err(e) => write!(f, "<out of range: epoch - {:?}>", e.duration()),
            },
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.to_rfc3339() {
            Some(s) => serializer.serialize_str(&s),
            None => Err(serde::ser::Error::custom(format_args!(
                "timestamp {self} cannot be written: RFC 3339 years 1970 to 9999 only"
            ))),
        }
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
                Timestamp::parse_rfc3339(s).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

/// Why a file's `schema_version` cannot be read by this version of the library.
///
/// ```
/// use storage_availability_schema::is_compatible;
/// let err = is_compatible("2.0").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "schema_version 2.0 has major version 2; this reader understands major version 1",
/// );
/// ```
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn compatible_versions() {
        for v in ["1.0", "1.1", "1.99", "01.0", "1.00"] {
            assert_eq!(is_compatible(v), Ok(()), "{v}");
        }
    }

    #[test]
    fn other_majors_are_unsupported() {
        for (v, major) in [("0.9", 0), ("2.0", 2), ("10.1", 10)] {
            assert_eq!(
                is_compatible(v),
                Err(VersionError::UnsupportedMajor {
                    found: v.to_owned(),
                    major,
                    supported: 1
                })
            );
        }
    }

    #[test]
    fn malformed_versions() {
        for v in [
            "", "1", "1.", ".1", "1.0.0", "v1.0", "1.x", " 1.0", "1.0 ", "-1.0", "+1.0",
        ] {
            assert!(
                matches!(is_compatible(v), Err(VersionError::Malformed(_))),
                "{v:?}: {:?}",
                is_compatible(v)
            );
        }
    }

    #[test]
    fn timestamp_round_trip_is_exact_at_microseconds() {
        for micros in [
            0,
            1,
            999_999,
            1_764_064_800_123_456,
            253_402_300_799_999_999,
        ] {
            let t = Timestamp(UNIX_EPOCH + Duration::from_micros(micros));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(
                serde_json::from_str::<Timestamp>(&json).unwrap(),
                t,
                "{json}"
            );
        }
    }

    #[test]
    fn timestamp_truncates_nanoseconds() {
        let t = Timestamp(UNIX_EPOCH + Duration::new(1_764_064_800, 123_456_789));
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, r#""2025-11-25T10:00:00.123456Z""#);
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back.0,
            UNIX_EPOCH + Duration::new(1_764_064_800, 123_456_000)
        );
        // Writing it again gives the same text.
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn timestamp_reads_any_precision_with_z() {
        let secs = UNIX_EPOCH + Duration::from_secs(1_764_064_800);
        for (text, nanos) in [
            ("2025-11-25T10:00:00Z", 0),
            ("2025-11-25T10:00:00.5Z", 500_000_000),
            ("2025-11-25T10:00:00.123456789Z", 123_456_789),
        ] {
            let t: Timestamp = serde_json::from_value(text.into()).unwrap();
            assert_eq!(t.0, secs + Duration::from_nanos(nanos), "{text}");
        }
    }

    #[test]
    fn timestamp_rejects_non_utc_and_malformed() {
        for text in [
            "2025-11-25T10:00:00+00:00",
            "2025-11-25T10:00:00+02:00",
            "2025-11-25T10:00:00z",
            "2025-11-25T10:00:00",
            "2025-11-25 10:00:00Z",
            "2025-11-25T10:00:00.Z",
            "2025-11-25T10:00Z",
            "2025-13-01T00:00:00Z",
            "2025-02-29T00:00:00Z",
            "2025-11-25T10:00:60Z",
            "1969-12-31T23:59:59Z",
            "",
            "now",
        ] {
            assert!(
                serde_json::from_value::<Timestamp>(text.into()).is_err(),
                "{text:?} was accepted"
            );
        }
        assert!(serde_json::from_str::<Timestamp>("1764064800").is_err());
    }

    #[test]
    fn unwritable_timestamps_are_errors_not_panics() {
        let before = Timestamp(UNIX_EPOCH - Duration::from_secs(1));
        let after = Timestamp(UNIX_EPOCH + Duration::from_secs(253_402_300_800));
        for t in [before, after] {
            assert!(t.to_rfc3339().is_none());
            let err = serde_json::to_string(&t).unwrap_err();
            assert!(err.to_string().contains("cannot be written"), "{err}");
            assert!(format!("{t} {t:?}").contains("out of range"));
        }
    }

    #[test]
    fn section_hash_round_trip() {
        let hex = "0123456789abcdef".repeat(4);
        let hash = SectionHash::new(hex.clone()).unwrap();
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{hex}\""));
        assert_eq!(serde_json::from_str::<SectionHash>(&json).unwrap(), hash);
        assert_eq!(hash.to_string(), hex);
        assert_eq!(format!("{hash:?}"), format!("{hex:?}"));
    }

    #[test]
    fn section_hash_rejects_bad_hex() {
        let good = "0123456789abcdef".repeat(4);
        for bad in [
            good[..63].to_owned(),
            format!("{good}0"),
            good.to_uppercase(),
            good.replace('a', "g"),
            good.replacen('0', " ", 1),
            String::new(),
        ] {
            assert!(SectionHash::new(bad.clone()).is_err(), "{bad:?}");
            assert!(
                serde_json::from_value::<SectionHash>(bad.clone().into()).is_err(),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<SectionHash>("42").is_err());
    }

    #[test]
    fn records_default_optional_lists() {
        let record: SectionRecord = serde_json::from_value(serde_json::json!({
            "section_hash": "a".repeat(64),
            "enabled": false,
            "validation_passed": false,
            "last_error": "boom",
            "checked_at": "2025-11-25T10:00:00Z",
            "duration_ms": 1.5,
            "added_in_1_1": { "ignored": true },
        }))
        .unwrap();
        assert!(record.errors.is_empty() && record.warnings.is_empty());
        assert_eq!(record.consecutive_failures, 0);
    }
}
