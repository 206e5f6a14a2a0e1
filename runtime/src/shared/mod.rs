//! The fleet store: answers of `scope = "shared"` sections shared by a fleet of hosts
//! (DESIGN.md, "Fleet store").
//!
//! [`SharedStore`] is the small key-value contract the cache needs (get, set with a TTL,
//! a lease taken with "set if absent" and released by compare-and-delete); [`RedisStore`]
//! (feature `redis`) implements it. `fleet.rs` holds the lookup order: local file, then a
//! fresh record of the store, then one host validating under a fleet-wide lease while the
//! others poll for its record.
//!
//! The store is an optimisation like the file: every failure makes the rest of the refresh
//! local, is logged once and counted in [`Stats`](crate::Stats); it never fails start-up.

mod fleet;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use storage_availability_schema::SectionRecord;

use crate::cache::AvailabilityCacheBuilder;
use crate::section::StorageAvailability;

#[cfg(feature = "redis")]
pub use redis::RedisStore;

/// The default first part of every key: `storage-availability:{config type}:{section}:{hash}`.
pub const DEFAULT_NAMESPACE: &str = "storage-availability";

/// A key-value store shared by a fleet of hosts, holding the records of `scope = "shared"`
/// sections: [`RedisStore`] (feature `redis`), or your own.
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
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            store: None,
            namespace: DEFAULT_NAMESPACE.to_owned(),
        }
    }
}

impl fmt::Debug for FleetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetOptions")
            .field("store", &self.store)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// The fleet counters of [`Stats`](crate::Stats).
#[derive(Debug, Default)]
pub(crate) struct FleetCounters {
    pub(crate) hits: AtomicU64,
    pub(crate) publishes: AtomicU64,
    pub(crate) ignored: AtomicU64,
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
}

impl<C: StorageAvailability> AvailabilityCacheBuilder<C> {
    /// Shares the answers of `scope = "shared"` sections with a fleet of hosts through
    /// `store` (usually a [`RedisStore`](crate::RedisStore), feature `redis`). Host-scoped
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

    /// Shares `scope = "shared"` sections through the Redis server at `url`
    /// (`redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS), with the
    /// default timeouts of [`RedisStore`](crate::RedisStore). No connection is made until a
    /// shared section is stale. A URL that does not parse makes `open` return
    /// [`Error::InvalidOption`](crate::Error::InvalidOption), whose message never contains the
    /// password.
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
