//! Section keys: SHA-256 over a versioned, canonical encoding of one section.
//!
//! `key = SHA-256("storage-availability/1|" name "|" version "|" app_version ["|scope=shared"]
//! "|" canonical JSON)`. Canonical JSON is the section serialised through
//! `serde_json::Value`, with object keys sorted by their UTF-8 bytes and no white space, so
//! two equal sections give the same key whatever the insertion order of their maps. Every
//! field before the JSON is free of `|` (names match `[a-z][a-z0-9_]*`, versions are numbers,
//! Cargo versions are semver), so the encoding is unambiguous. The host scope adds nothing, so
//! keys of host sections are the same as before scopes existed.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::section::Scope;

/// The version of the key format: bump it to revalidate every section of every user.
const KEY_FORMAT: &str = "storage-availability/1";

/// A section's cache key: the full SHA-256, as 64 lowercase hex digits. Never truncated.
///
/// Dereferences to `str`.
///
/// # Example
///
/// ```
/// let key = storage_availability::section_key("csv", 1, "1.0.0", &"data/");
/// assert_eq!(key.len(), 64);
/// assert!(key.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SectionKey([u8; 64]);

impl SectionKey {
    fn from_digest(digest: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; 64];
        for (i, byte) in digest.iter().take(32).enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        SectionKey(out)
    }

    /// The key as 64 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for SectionKey {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SectionKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SectionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SectionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SectionKey({})", self.as_str())
    }
}

impl PartialEq<str> for SectionKey {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SectionKey {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SectionKey {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl From<SectionKey> for String {
    fn from(key: SectionKey) -> String {
        key.as_str().to_owned()
    }
}

/// The key of a host-scoped section, computed exactly as the derive does.
///
/// `name` is the section name, `version` its `version = N`, `app_version` the application's
/// version, `value` the section's value (`None` for an unconfigured `Option` section).
///
/// # Example
///
/// ```
/// use storage_availability::section_key;
/// let a = section_key("csv", 1, "1.0.0", &serde_json::json!({"a": 1, "b": 2}));
/// let b = section_key("csv", 1, "1.0.0", &serde_json::json!({"b": 2, "a": 1}));
/// assert_eq!(a, b);
/// assert_ne!(a, section_key("csv", 2, "1.0.0", &serde_json::json!({"a": 1, "b": 2})));
/// ```
pub fn section_key<T: Serialize + ?Sized>(
    name: &str,
    version: u32,
    app_version: &str,
    value: &T,
) -> SectionKey {
    section_key_with_scope(name, version, Scope::Host, app_version, value)
}

/// [`section_key`] for a section of any [`Scope`]: a shared section's key differs from the
/// host-scoped key of the same value, so a record can never move between the two.
pub fn section_key_with_scope<T: Serialize + ?Sized>(
    name: &str,
    version: u32,
    scope: Scope,
    app_version: &str,
    value: &T,
) -> SectionKey {
    let mut hasher = HashWriter(Sha256::new());
    hasher.0.update(KEY_FORMAT.as_bytes());
    hasher.0.update(b"|");
    hasher.0.update(name.as_bytes());
    hasher.0.update(b"|");
    hasher.0.update(version.to_string().as_bytes());
    hasher.0.update(b"|");
    hasher.0.update(app_version.as_bytes());
    if scope == Scope::Shared {
        hasher.0.update(b"|scope=shared");
    }
    hasher.0.update(b"|");
    match serde_json::to_value(value) {
        Ok(value) => {
            if let Err(error) = write_canonical(&mut hasher, &value) {
                uncacheable(&mut hasher, name, &error.to_string());
            }
        }
        Err(error) => uncacheable(&mut hasher, name, &error.to_string()),
    }
    SectionKey::from_digest(&hasher.0.finalize())
}

/// A section that cannot be serialised gets a key that no record will ever match, so it is
/// validated every time instead of being served a possibly wrong cached answer.
fn uncacheable(hasher: &mut HashWriter, name: &str, error: &str) {
    static NONCE: AtomicU64 = AtomicU64::new(0);
    tracing::warn!(
        target: "storage_availability",
        section = name,
        %error,
        "section cannot be serialised; it will be validated on every start"
    );
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    hasher.0.update(b"\0uncacheable\0");
    hasher.0.update(error.as_bytes());
    hasher.0.update(nanos.to_le_bytes());
    hasher.0.update(std::process::id().to_le_bytes());
    hasher
        .0
        .update(NONCE.fetch_add(1, Ordering::Relaxed).to_le_bytes());
}

struct HashWriter(Sha256);

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes `value` as canonical JSON: sorted object keys, no white space. Sorting here, rather
/// than relying on `serde_json::Map` being a `BTreeMap`, keeps keys stable even when another
/// crate in the build turns on serde_json's `preserve_order` feature.
pub(crate) fn write_canonical<W: Write>(out: &mut W, value: &Value) -> serde_json::Result<()> {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.write_all(b"{").map_err(serde_json::Error::io)?;
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.write_all(b",").map_err(serde_json::Error::io)?;
                }
                serde_json::to_writer(&mut *out, key)?;
                out.write_all(b":").map_err(serde_json::Error::io)?;
                write_canonical(out, value)?;
            }
            out.write_all(b"}").map_err(serde_json::Error::io)
        }
        Value::Array(items) => {
            out.write_all(b"[").map_err(serde_json::Error::io)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.write_all(b",").map_err(serde_json::Error::io)?;
                }
                write_canonical(out, item)?;
            }
            out.write_all(b"]").map_err(serde_json::Error::io)
        }
        scalar => serde_json::to_writer(out, scalar),
    }
}

/// Canonical JSON of `value` as a string (for diagnostics and tests).
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let value = serde_json::to_value(value)?;
    let mut out = Vec::new();
    write_canonical(&mut out, &value)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": {"y": 1, "x": [ {"d": 1, "c": 2} ]}, "a": null});
        assert_eq!(
            canonical_json(&v).unwrap(),
            r#"{"a":null,"b":{"x":[{"c":2,"d":1}],"y":1}}"#
        );
    }

    #[test]
    fn key_is_full_lowercase_sha256() {
        let key = section_key("csv", 1, "0.1.0", &1);
        assert_eq!(key.len(), 64);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        // Independent computation of the documented encoding.
        let expected = Sha256::digest(b"storage-availability/1|csv|1|0.1.0|1");
        let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(key.as_str(), hex);
    }

    #[test]
    fn hash_map_order_does_not_matter() {
        let mut a = HashMap::new();
        let mut b = BTreeMap::new();
        for i in 0..50 {
            a.insert(format!("k{i}"), i);
        }
        for i in (0..50).rev() {
            b.insert(format!("k{i}"), i);
        }
        assert_eq!(section_key("kv", 1, "1", &a), section_key("kv", 1, "1", &b));
    }

    #[test]
    fn shared_scope_changes_the_key() {
        assert_ne!(
            section_key_with_scope("kv", 1, Scope::Host, "1", &1),
            section_key_with_scope("kv", 1, Scope::Shared, "1", &1)
        );
        assert_eq!(
            section_key_with_scope("kv", 1, Scope::Host, "1", &1),
            section_key("kv", 1, "1", &1)
        );
    }

    #[test]
    fn unserialisable_sections_never_match_twice() {
        let mut bad = HashMap::new();
        bad.insert(vec![1u8], 1); // a map key that is not a string cannot be JSON
        assert_ne!(
            section_key("x", 1, "1", &bad),
            section_key("x", 1, "1", &bad)
        );
    }
}
