//! The one acceptance rule for a cache file, used by the library's loader and by the
//! `availability` tool: whatever the published schema rejects, this rejects.
//!
//! serde's derived types alone accept more than the schema: a struct may be written as an
//! array, a negative `duration_ms` fits an `f64`. The deserializers below close those gaps
//! while parsing, so the rule costs no second pass; `tests/tests/loader_props.rs` checks the
//! claim against the checked-in schema on generated and mutated documents.
//!
//! Errors never carry the file's content: only the kind of problem and its position.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};

use crate::{CacheFile, VersionError, is_compatible};

/// Parses a cache file by the acceptance rule: JSON that the published schema accepts, read
/// into the library's types, of this major version.
///
/// ```
/// use storage_availability_schema::{parse_cache_file, AcceptError};
///
/// let good = br#"{"schema_version": "1.0", "sections": {},
///     "metadata": {"generator": "g", "generated_at": "2026-11-25T10:00:00Z",
///                  "config_type": "app::Config", "platform": "linux-x86_64"}}"#;
/// assert!(parse_cache_file(good).is_ok());
///
/// let secret = br#"{"schema_version": "1.0", "metadata": "AKIA-SECRET"}"#;
/// let err = parse_cache_file(secret).unwrap_err();
/// assert!(matches!(err, AcceptError::Parse(_)));
/// assert!(!err.to_string().contains("AKIA"), "{err}");
///
/// let newer = br#"{"schema_version": "2.0"}"#;
/// assert!(matches!(parse_cache_file(newer), Err(AcceptError::Version(_))));
/// ```
pub fn parse_cache_file(bytes: &[u8]) -> Result<CacheFile, AcceptError> {
    // serde_json skips unknown fields without checking their strings' UTF-8 or `\u`
    // escapes; a JSON document (what the schema is checked against) must be valid in full.
    let text = json_text(bytes).map_err(AcceptError::Parse)?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = object::<_, CacheFile>(&mut deserializer).and_then(|file| {
        deserializer.end()?;
        Ok(file)
    });
    match parsed {
        Ok(file) => match is_compatible(&file.schema_version) {
            Ok(()) => Ok(file),
            Err(e) => Err(AcceptError::Version(e)),
        },
        Err(error) => {
            // Another major version may have another shape altogether: tell it apart from
            // a broken file, so that it is replaced rather than moved aside.
            #[derive(serde::Deserialize)]
            struct VersionOnly {
                schema_version: String,
            }
            if let Ok(v) = serde_json::from_slice::<VersionOnly>(bytes)
                && let Err(e) = is_compatible(&v.schema_version)
            {
                return Err(AcceptError::Version(e));
            }
            Err(AcceptError::Parse(ParseError::from_json(&error)))
        }
    }
}

/// Why a cache file was not accepted.
///
/// ```
/// use storage_availability_schema::{parse_cache_file, AcceptError};
/// let err = parse_cache_file(b"{\"schema_version\": ").unwrap_err();
/// assert_eq!(err.to_string(), "does not parse: the file ends early at line 1, column 19");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// Not a cache file of this format: not JSON, or not what the schema allows.
    #[error("does not parse: {0}")]
    Parse(ParseError),
    /// A file of another major version, or whose `schema_version` is not `MAJOR.MINOR`:
    /// replaced by the next save, not moved aside.
    #[error(transparent)]
    Version(VersionError),
}

/// Where and what kind of parse error: never the offending value.
///
/// ```
/// use storage_availability_schema::{parse_cache_file, AcceptError, ParseErrorKind};
/// let Err(AcceptError::Parse(e)) = parse_cache_file(b"{\"a\": [1,") else { panic!() };
/// assert_eq!((e.kind(), e.line(), e.column()), (ParseErrorKind::Eof, 1, 9));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at line {line}, column {column}")]
pub struct ParseError {
    kind: ParseErrorKind,
    line: usize,
    column: usize,
}

impl ParseError {
    fn from_json(error: &serde_json::Error) -> Self {
        use serde_json::error::Category;
        ParseError {
            kind: match error.classify() {
                Category::Io => ParseErrorKind::Io,
                Category::Syntax => ParseErrorKind::Syntax,
                Category::Data => ParseErrorKind::Data,
                Category::Eof => ParseErrorKind::Eof,
            },
            line: error.line(),
            column: error.column(),
        }
    }

    /// The kind of problem.
    ///
    /// ```
    /// use storage_availability_schema::{parse_cache_file, AcceptError, ParseErrorKind};
    /// let Err(AcceptError::Parse(e)) = parse_cache_file(b"{]") else { panic!() };
    /// assert_eq!(e.kind(), ParseErrorKind::Syntax);
    /// ```
    pub fn kind(&self) -> ParseErrorKind {
        self.kind
    }

    /// The line of the problem, from 1.
    ///
    /// ```
    /// use storage_availability_schema::{parse_cache_file, AcceptError};
    /// let Err(AcceptError::Parse(e)) = parse_cache_file(b"{\n]") else { panic!() };
    /// assert_eq!(e.line(), 2);
    /// ```
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column of the problem, from 1 (0 at the very start of the input).
    ///
    /// ```
    /// use storage_availability_schema::{parse_cache_file, AcceptError};
    /// let Err(AcceptError::Parse(e)) = parse_cache_file(b"{\n ]") else { panic!() };
    /// assert_eq!(e.column(), 2);
    /// ```
    pub fn column(&self) -> usize {
        self.column
    }
}

/// The kinds of parse error, after serde_json's `Category`.
///
/// ```
/// use storage_availability_schema::ParseErrorKind;
/// assert_eq!(ParseErrorKind::Data.to_string(), "a value the schema does not allow");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Not JSON (or not UTF-8).
    Syntax,
    /// JSON, but a value of the wrong type, out of range, missing or malformed.
    Data,
    /// The file ends in the middle of a value.
    Eof,
    /// Reading failed.
    Io,
}

impl fmt::Display for ParseErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseErrorKind::Syntax => "not valid JSON",
            ParseErrorKind::Data => "a value the schema does not allow",
            ParseErrorKind::Eof => "the file ends early",
            ParseErrorKind::Io => "a read error",
        })
    }
}

/// `bytes` as text that a JSON parser reads into a document: UTF-8, and every `\u` escape
/// a Unicode scalar value (a high surrogate followed by a low one, never one alone).
/// Backslashes appear only inside strings in JSON, so each one starts an escape; a
/// backslash elsewhere is left to the parser, which rejects it.
fn json_text(bytes: &[u8]) -> Result<&str, ParseError> {
    let at = |offset: usize| {
        let before = &bytes[..offset];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        ParseError {
            kind: ParseErrorKind::Syntax,
            line,
            column: offset - line_start + 1,
        }
    };
    let text = std::str::from_utf8(bytes).map_err(|e| at(e.valid_up_to()))?;
    let hex = |i: usize| -> Option<u32> {
        let digits = bytes.get(i..i + 4)?;
        let digits = std::str::from_utf8(digits).ok()?;
        u32::from_str_radix(digits, 16).ok()
    };
    let mut i = 0;
    while let Some(found) = memchr::memchr(b'\\', &bytes[i..]) {
        let escape = i + found;
        match bytes.get(escape + 1) {
            Some(b'u') => {
                let Some(code) = hex(escape + 2) else {
                    // Not four hex digits: the parser reports it.
                    i = escape + 2;
                    continue;
                };
                i = escape + 6;
                match code {
                    0xD800..=0xDBFF => {
                        let low = (bytes.get(i..i + 2) == Some(&b"\\u"[..]))
                            .then(|| hex(i + 2))
                            .flatten();
                        match low {
                            Some(0xDC00..=0xDFFF) => i += 6,
                            _ => return Err(at(escape)),
                        }
                    }
                    0xDC00..=0xDFFF => return Err(at(escape)),
                    _ => {}
                }
            }
            Some(_) => i = escape + 2,
            None => break,
        }
    }
    Ok(text)
}

/// Deserializes `T` from a JSON object only. serde's derived structs also accept an array of
/// their fields in order, which the schema (`"type": "object"`) rejects.
pub(crate) fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ObjectVisitor<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(ObjectVisitor(PhantomData))
}

/// A map of records, each record a JSON object.
pub(crate) fn object_values<'de, D, T>(
    deserializer: D,
) -> Result<std::collections::BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Object<T>(T);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            object(deserializer).map(Object)
        }
    }
    let map: std::collections::BTreeMap<String, Object<T>> = object(deserializer)?;
    Ok(map.into_iter().map(|(k, Object(v))| (k, v)).collect())
}

/// A number of at least 0 (`"minimum": 0`).
pub(crate) fn non_negative<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(deserializer)?;
    if value >= 0.0 {
        Ok(value)
    } else {
        Err(de::Error::custom(
            "a negative number where the schema requires at least 0",
        ))
    }
}

/// `MAJOR.MINOR` with decimal digits (the schema's pattern `^[0-9]+\.[0-9]+$`).
pub(crate) fn version<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let value = String::deserialize(deserializer)?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match value.split_once('.') {
        Some((major, minor)) if digits(major) && digits(minor) => Ok(value),
        _ => Err(de::Error::custom(
            "a schema_version that is not of the form MAJOR.MINOR",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lone_surrogates_and_invalid_utf8_are_refused_even_in_ignored_fields() {
        for bad in [
            &br#"{"x": "\ud800"}"#[..],
            br#"{"x": "\udc00"}"#,
            br#"{"x": "\ud800\u0041"}"#,
            b"{\"x\": \"\xff\"}",
        ] {
            let e = json_text(bad).unwrap_err();
            assert_eq!(e.kind(), ParseErrorKind::Syntax);
        }
        for good in [
            &br#"{"x": "\ud83d\ude00 \\u \u00e9 \n"}"#[..],
            br#"{"x": "\\ud800"}"#,
        ] {
            assert!(json_text(good).is_ok(), "{}", String::from_utf8_lossy(good));
            let _: serde_json::Value = serde_json::from_slice(good).unwrap();
        }
    }
}
