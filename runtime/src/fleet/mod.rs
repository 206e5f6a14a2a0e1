//! The fleet store: answers of `scope = "shared"` sections shared by a fleet of hosts
//! (README.md, "Running a fleet").
//!
//! [`SharedStore`] is the small key-value contract the cache needs (get, set with a TTL,
//! a lease taken with "set if absent" and released by compare-and-delete); [`RedisStore`]
//! (feature `redis`) implements it. `rounds.rs` holds the lookup order: local file, then a
//! fresh record of the store, then one host validating under a fleet-wide lease while the
//! others poll for its record, with the lease rule: a host validates the sections whose
//! lease it holds (and its host-scoped ones) before it waits for any lease held by another.
//!
//! Trust: whoever can write the store answers for every host, unless records are signed
//! ([`shared_secret`](crate::AvailabilityCacheBuilder::shared_secret), HMAC-SHA256); a
//! record copied into the local file never outlives its key in the store.
//!
//! The store is an optimisation like the file: every failure makes the rest of the refresh
//! local, is logged once and counted in [`Stats`](crate::Stats); it never fails start-up.

#[cfg(feature = "redis")]
mod redis;
mod rounds;

pub(crate) use rounds::{FleetClaim, FleetRequest, merge, ready, request};

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use storage_availability_schema::SectionRecord;

use crate::builder::AvailabilityCacheBuilder;
use crate::section::StorageAvailability;

#[cfg(feature = "redis")]
pub use redis::RedisStore;

/// The default first part of every key: `storage-availability:{config type}:{section}:{hash}`.
///
/// ```
/// assert_eq!(storage_availability::DEFAULT_NAMESPACE, "storage-availability");
/// ```
pub const DEFAULT_NAMESPACE: &str = "storage-availability";

/// A key-value store shared by a fleet of hosts, holding the records of `scope = "shared"`
/// sections: `RedisStore` (feature `redis`), or your own.
///
/// Every method is a single round trip that must give up within the store's own short
/// timeouts; an error makes the cache work locally for the rest of the refresh. Values are
/// opaque bytes (JSON section records) and every key written has a TTL.
///
/// # Example
///
/// An in-memory store, as a test double (TTLs ignored):
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use std::time::Duration;
/// use storage_availability::{SharedError, SharedStore};
///
/// #[derive(Debug, Default)]
/// struct MemoryStore(Mutex<HashMap<String, Vec<u8>>>);
///
/// impl SharedStore for MemoryStore {
///     fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     fn set(&self, key: &str, value: &[u8], _ttl: Duration) -> Result<(), SharedError> {
///         self.0.lock().unwrap().insert(key.to_owned(), value.to_owned());
///         Ok(())
///     }
///     fn try_lease(&self, key: &str, token: &str, _ttl: Duration) -> Result<bool, SharedError> {
///         let mut map = self.0.lock().unwrap();
///         if map.contains_key(key) { return Ok(false); }
///         map.insert(key.to_owned(), token.as_bytes().to_owned());
///         Ok(true)
///     }
///     fn release_lease(&self, key: &str, token: &str) -> Result<bool, SharedError> {
///         let mut map = self.0.lock().unwrap();
///         if map.get(key).map(Vec::as_slice) == Some(token.as_bytes()) {
///             map.remove(key);
///             return Ok(true);
///         }
///         Ok(false)
///     }
/// }
///
/// let store = MemoryStore::default();
/// assert!(store.try_lease("k:lease", "token", Duration::from_secs(1)).unwrap());
/// assert!(!store.try_lease("k:lease", "other", Duration::from_secs(1)).unwrap());
/// assert!(store.release_lease("k:lease", "token").unwrap());
/// ```
pub trait SharedStore: Send + Sync + fmt::Debug {
    /// The value at `key`; `None` when there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError>;

    /// Sets `key` to `value`, expiring after `ttl` (Redis: `SET key value PX ttl`).
    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SharedError>;

    /// Sets `key` to `token` only if `key` does not exist, expiring after `ttl`; `true` when
    /// it was set (Redis: `SET key token NX PX ttl`).
    fn try_lease(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, SharedError>;

    /// Deletes `key` only if it still holds `token` (Redis: a compare-and-delete Lua
    /// script); `true` when it was deleted.
    fn release_lease(&self, key: &str, token: &str) -> Result<bool, SharedError>;

    /// The value at `key` with the key's remaining time to live (`None` when the store does
    /// not know it, or the key has none). The cache uses the TTL so that a record copied
    /// into the local file expires no later than the store's key. The default calls
    /// [`get`](Self::get) and reports no TTL; `RedisStore` (feature `redis`) asks `GET` and
    /// `PTTL` in one round trip.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{SharedError, SharedStore};
    /// #[derive(Debug)]
    /// struct Fixed;
    /// impl SharedStore for Fixed {
    ///     fn get(&self, _: &str) -> Result<Option<Vec<u8>>, SharedError> { Ok(Some(b"v".to_vec())) }
    ///     fn set(&self, _: &str, _: &[u8], _: Duration) -> Result<(), SharedError> { Ok(()) }
    ///     fn try_lease(&self, _: &str, _: &str, _: Duration) -> Result<bool, SharedError> { Ok(true) }
    ///     fn release_lease(&self, _: &str, _: &str) -> Result<bool, SharedError> { Ok(true) }
    /// }
    /// assert_eq!(Fixed.get_with_ttl("k").unwrap(), Some((b"v".to_vec(), None)));
    /// ```
    #[allow(clippy::type_complexity)]
    fn get_with_ttl(&self, key: &str) -> Result<Option<(Vec<u8>, Option<Duration>)>, SharedError> {
        Ok(self.get(key)?.map(|value| (value, None)))
    }
}

impl<T: SharedStore + ?Sized> SharedStore for Arc<T> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> {
        (**self).get(key)
    }
    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SharedError> {
        (**self).set(key, value, ttl)
    }
    fn try_lease(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, SharedError> {
        (**self).try_lease(key, token, ttl)
    }
    fn release_lease(&self, key: &str, token: &str) -> Result<bool, SharedError> {
        (**self).release_lease(key, token)
    }
    fn get_with_ttl(&self, key: &str) -> Result<Option<(Vec<u8>, Option<Duration>)>, SharedError> {
        (**self).get_with_ttl(key)
    }
}

/// A failed [`SharedStore`] operation. Its message never contains credentials: stores
/// redact them before building it.
///
/// ```
/// use storage_availability::SharedError;
/// let error = SharedError::new("failed to connect to redis://127.0.0.1:6379/: refused");
/// assert_eq!(error.to_string(), "failed to connect to redis://127.0.0.1:6379/: refused");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SharedError {
    message: String,
}

impl SharedError {
    /// An error with this message (already free of credentials).
    ///
    /// ```
    /// use storage_availability::SharedError;
    /// let error = SharedError::new("connection refused");
    /// assert_eq!(error.to_string(), "connection refused");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        SharedError {
            message: message.into(),
        }
    }
}

/// The fleet settings of a cache, from the builder.
#[derive(Clone)]
pub(crate) struct FleetOptions {
    pub(crate) store: Option<Arc<dyn SharedStore>>,
    pub(crate) namespace: String,
    pub(crate) secret: Option<SharedSecret>,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            store: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            secret: None,
        }
    }
}

impl fmt::Debug for FleetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetOptions")
            .field("store", &self.store)
            .field("namespace", &self.namespace)
            .field("secret", &self.secret)
            .finish()
    }
}

/// The key that signs fleet records: HMAC-SHA256 over a domain tag, the record's store key
/// (so a record cannot be moved to another section or hash) and the record's bytes as
/// written. The signature is appended as the record's last field, `"signature"` (64 hex
/// digits), and checked in constant time.
#[derive(Clone)]
pub(crate) struct SharedSecret(Arc<[u8]>);

/// `,"signature":"` + 64 hex digits + `"}`.
const SIGNATURE_PREFIX: &[u8] = b",\"signature\":\"";
const SIGNATURE_SUFFIX_LEN: usize = SIGNATURE_PREFIX.len() + 64 + 2;

impl SharedSecret {
    fn mac(&self, key: &str, canonical: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(b"storage-availability fleet record v1\0");
        mac.update(&(key.len() as u64).to_be_bytes());
        mac.update(key.as_bytes());
        mac.update(canonical);
        mac
    }

    /// `canonical` (a JSON object) with `"signature"` added as its last field.
    pub(crate) fn append_signature(&self, key: &str, mut canonical: Vec<u8>) -> Vec<u8> {
        let tag = self.mac(key, &canonical).finalize().into_bytes();
        if canonical.pop() != Some(b'}') {
            return canonical; // not an object: never written by us; unsigned on purpose
        }
        canonical.extend_from_slice(SIGNATURE_PREFIX);
        for byte in tag {
            canonical.extend_from_slice(format!("{byte:02x}").as_bytes());
        }
        canonical.extend_from_slice(b"\"}");
        canonical
    }

    /// The signed bytes of `stored` (without the signature) when its signature is ours for
    /// `key`; otherwise why not.
    pub(crate) fn verified(&self, key: &str, stored: &[u8]) -> Result<Vec<u8>, &'static str> {
        let Some(split) = stored.len().checked_sub(SIGNATURE_SUFFIX_LEN) else {
            return Err("unsigned record");
        };
        let (body, suffix) = stored.split_at(split);
        let Some(hex) = suffix
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(|rest| rest.strip_suffix(b"\"}"))
        else {
            return Err("unsigned record");
        };
        let mut tag = [0u8; 32];
        for (byte, pair) in tag.iter_mut().zip(hex.chunks_exact(2)) {
            let digit = |b: u8| (b as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(high), Some(low)) => *byte = (high * 16 + low) as u8,
                _ => return Err("malformed signature"),
            }
        }
        let mut canonical = body.to_vec();
        canonical.push(b'}');
        self.mac(key, &canonical)
            .verify_slice(&tag)
            .map_err(|_| "signature does not match")?;
        Ok(canonical)
    }
}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedSecret(***)")
    }
}

/// The fleet counters of [`Stats`](crate::Stats).
#[derive(Debug, Default)]
pub(crate) struct FleetCounters {
    pub(crate) hits: AtomicU64,
    pub(crate) publishes: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) unsigned: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) lease_waits: AtomicU64,
    pub(crate) lease_timeouts: AtomicU64,
}

/// A section record as stored in the fleet store: the cache file's section record, plus
/// the schema version it was written with (a record of another major version is ignored).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SharedRecord {
    pub(crate) schema_version: String,
    #[serde(flatten)]
    pub(crate) record: SectionRecord,
    /// HMAC-SHA256 of the record, in hex, with a shared secret (see [`SharedSecret`]);
    /// always written last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) signature: Option<String>,
}

impl<C: StorageAvailability, X> AvailabilityCacheBuilder<C, X> {
    /// Shares the answers of `scope = "shared"` sections with a fleet of hosts through
    /// `store` (usually a `RedisStore`, feature `redis`). Host-scoped
    /// sections never reach it. Default: none.
    ///
    /// ```
    /// # use std::{collections::HashMap, sync::Mutex, time::Duration};
    /// # use storage_availability::{AvailabilityCache, Outcome, SharedError, SharedStore, StorageAvailability};
    /// # #[derive(Debug, Default)]
    /// # struct MemoryStore(Mutex<HashMap<String, Vec<u8>>>);
    /// # impl SharedStore for MemoryStore {
    /// #     fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> { Ok(self.0.lock().unwrap().get(key).cloned()) }
    /// #     fn set(&self, key: &str, value: &[u8], _: Duration) -> Result<(), SharedError> { self.0.lock().unwrap().insert(key.into(), value.into()); Ok(()) }
    /// #     fn try_lease(&self, _: &str, _: &str, _: Duration) -> Result<bool, SharedError> { Ok(true) }
    /// #     fn release_lease(&self, _: &str, _: &str) -> Result<bool, SharedError> { Ok(true) }
    /// # }
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config {
    ///     #[storage(validate = check, scope = "shared")]
    ///     search: String,
    /// }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// let store = std::sync::Arc::new(MemoryStore::default());
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { search: "https://search.internal".into() })
    ///     .cache_path(dir.path().join("a.json"))
    ///     .shared_store(store.clone())
    ///     .open()
    ///     .unwrap();
    /// assert_eq!(cache.stats().shared_publishes, 1);
    /// ```
    pub fn shared_store(mut self, store: impl SharedStore + 'static) -> Self {
        self.fleet.store = Some(Arc::new(store));
        self
    }

    /// The first part of every fleet store key:
    /// `{namespace}:{config type}:{section}:{section hash}`. Default: `storage-availability`.
    ///
    /// ```
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check, scope = "shared")] search: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// let builder = AvailabilityCache::builder(Config { search: "s".into() })
    ///     .shared_namespace("billing-prod");
    /// ```
    pub fn shared_namespace(mut self, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        if namespace.is_empty() {
            return self.reject("shared_namespace", "must not be empty");
        }
        self.fleet.namespace = namespace;
        self
    }

    /// Signs the records this cache writes to the fleet store with `key` (HMAC-SHA256), and
    /// ignores every record that is unsigned or not signed with `key`: it is counted in
    /// [`Stats::shared_unsigned`](crate::Stats::shared_unsigned) (and `shared_ignored`),
    /// warned about once per refresh, validated here and overwritten with a signed record.
    /// Without a secret, whoever can write the store can answer for every host (see
    /// README.md, "Running a fleet"). Give every host of the fleet the same key, from a
    /// secret store rather than the config file; an empty key is an
    /// [`Error::InvalidOption`](crate::Error::InvalidOption). The key never appears in
    /// `Debug` output or logs.
    ///
    /// ```
    /// # use std::{collections::HashMap, sync::{Arc, Mutex}, time::Duration};
    /// # use storage_availability::{AvailabilityCache, Outcome, SharedError, SharedStore, Source, StorageAvailability};
    /// # #[derive(Debug, Default)]
    /// # struct MemoryStore(Mutex<HashMap<String, Vec<u8>>>);
    /// # impl SharedStore for MemoryStore {
    /// #     fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> { Ok(self.0.lock().unwrap().get(key).cloned()) }
    /// #     fn set(&self, key: &str, value: &[u8], _: Duration) -> Result<(), SharedError> { self.0.lock().unwrap().insert(key.into(), value.into()); Ok(()) }
    /// #     fn try_lease(&self, _: &str, _: &str, _: Duration) -> Result<bool, SharedError> { Ok(true) }
    /// #     fn release_lease(&self, _: &str, _: &str) -> Result<bool, SharedError> { Ok(true) }
    /// # }
    /// #[derive(Clone, serde::Serialize, StorageAvailability)]
    /// struct Config {
    ///     #[storage(validate = check, scope = "shared")]
    ///     search: String,
    /// }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// let store = Arc::new(MemoryStore::default());
    /// let dir = tempfile::tempdir().unwrap();
    /// let open = |host: &str, key: &[u8]| {
    ///     AvailabilityCache::builder(Config { search: "https://search.internal".into() })
    ///         .cache_path(dir.path().join(host))
    ///         .shared_store(store.clone())
    ///         .shared_secret(key)
    ///         .open()
    ///         .unwrap()
    /// };
    /// let a = open("a.json", b"fleet key from the secret store");
    /// assert_eq!(a.stats().shared_publishes, 1);
    /// // Same key: the signed record is used.
    /// let b = open("b.json", b"fleet key from the secret store");
    /// assert_eq!(b.status(ConfigKind::Search).source, Source::Shared);
    /// // Another key: the record is ignored, validated here and overwritten.
    /// let c = open("c.json", b"another key");
    /// assert_eq!(c.status(ConfigKind::Search).source, Source::Validated);
    /// assert_eq!(c.stats().shared_unsigned, 1);
    /// ```
    pub fn shared_secret(mut self, key: impl AsRef<[u8]>) -> Self {
        let key = key.as_ref();
        if key.is_empty() {
            return self.reject("shared_secret", "must not be empty");
        }
        self.fleet.secret = Some(SharedSecret(Arc::from(key)));
        self
    }

    /// Shares `scope = "shared"` sections through the Redis server at `url`
    /// (`redis://[user:password@]host[:port][/db]`, `rediss://` for TLS, or a Unix socket:
    /// `redis+unix:///path?pass=...`), with the default timeouts of
    /// [`RedisStore`](crate::RedisStore). No connection is made until a shared section is
    /// stale. A URL that does not parse makes `open` return
    /// [`Error::InvalidOption`](crate::Error::InvalidOption), whose message does not show the
    /// URL at all (percent-encode `/`, `#`, `?` and `@` in a password).
    ///
    /// ```no_run
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check, scope = "shared")] search: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// let cache = AvailabilityCache::builder(Config { search: "https://search.internal".into() })
    ///     .config_path("config/storage.yaml")
    ///     .redis("redis://:s3cret@redis.internal:6379/0")
    ///     .open()?;
    /// # Ok::<(), storage_availability::Error>(())
    /// ```
    #[cfg(feature = "redis")]
    pub fn redis(self, url: &str) -> Self {
        match RedisStore::new(url) {
            Ok(store) => self.shared_store(store),
            Err(crate::Error::InvalidOption { reason, .. }) => self.reject("redis", &reason),
            Err(_) => self.reject("redis", "not a valid Redis URL"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(key: &[u8]) -> SharedSecret {
        SharedSecret(Arc::from(key))
    }

    #[test]
    fn signatures_bind_the_key_the_store_key_and_every_byte() {
        let canonical = br#"{"schema_version":"1.0","enabled":true}"#.to_vec();
        let signed = secret(b"k1").append_signature("ns:T:search:ab", canonical.clone());
        assert!(signed.ends_with(b"\"}"));
        assert!(String::from_utf8_lossy(&signed).contains(",\"signature\":\""));
        let json: serde_json::Value = serde_json::from_slice(&signed).unwrap();
        assert_eq!(json["signature"].as_str().unwrap().len(), 64);

        assert_eq!(
            secret(b"k1").verified("ns:T:search:ab", &signed),
            Ok(canonical.clone())
        );
        assert_eq!(
            secret(b"k2").verified("ns:T:search:ab", &signed),
            Err("signature does not match")
        );
        assert_eq!(
            secret(b"k1").verified("ns:T:queue:ab", &signed),
            Err("signature does not match")
        );
        assert_eq!(
            secret(b"k1").verified("ns:T:search:ab", &canonical),
            Err("unsigned record")
        );
        for i in 0..signed.len() {
            let mut tampered = signed.clone();
            tampered[i] ^= 0x01;
            assert!(
                secret(b"k1").verified("ns:T:search:ab", &tampered).is_err(),
                "byte {i} flipped"
            );
        }
        assert!(secret(b"k1").verified("k", b"").is_err());
        assert_eq!(format!("{:?}", secret(b"k1")), "SharedSecret(***)");
    }
}
