//! [`AvailabilityCacheBuilder`]: every option of an [`AvailabilityCache`], checked when set,
//! and where the cache file goes.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use storage_availability_schema::SectionRecord;

use crate::cache::AvailabilityCache;
use crate::clock::{Clock, SystemClock};
use crate::context::{ContextState, NoContext, WithContext};
use crate::error::Error;
use crate::fingerprint::KeyContext;
use crate::fleet::FleetOptions;
use crate::policy;
use crate::policy::Stale;
use crate::refresh::Core;
use crate::section::{BlockingValidators, StorageAvailability};
use crate::store::fallback::writable_location;
use crate::store::path::{cache_path_for_config, cache_path_for_type};
use crate::store::{CacheStore, FileStore};

const TARGET: &str = "storage_availability";

/// Positive results are reused for this long by default.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// A failed section is retried after this by default, doubling per consecutive failure.
const DEFAULT_RETRY_FAILED_AFTER: Duration = Duration::from_secs(30);
const DEFAULT_VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_PARALLEL: usize = 16;
const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RECHECK_EVERY: Duration = Duration::from_secs(30);
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) max_age: Option<Duration>,
    pub(crate) retry_failed_after: Duration,
    pub(crate) validation_timeout: Duration,
    pub(crate) max_parallel: usize,
    pub(crate) max_file_bytes: u64,
    pub(crate) lock_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    /// How often a running service revalidates (`refresh_if_stale`, the refresher).
    pub(crate) recheck_every: Duration,
    /// `stale_while_revalidate`: how long past `max_age` a start may answer with a passed
    /// result at once (`Source::Stale`).
    pub(crate) stale_window: Option<Duration>,
}

/// Options for [`AvailabilityCache`], from [`AvailabilityCache::builder`].
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config { #[storage(validate = check)] kv: String }
/// fn check(_: &String) -> Outcome { Outcome::ok() }
///
/// let dir = tempfile::tempdir().unwrap();
/// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
///     .config_path(dir.path().join("storage.yaml"))
///     .max_age(Some(Duration::from_secs(3600)))
///     .retry_failed_after(Duration::from_secs(10))
///     .validation_timeout(Duration::from_secs(2))
///     .max_parallel(4)
///     .open()
///     .unwrap();
/// assert!(cache.path().is_some());
/// ```
#[must_use = "a builder does nothing until `open` is called"]
pub struct AvailabilityCacheBuilder<C: StorageAvailability, X = NoContext> {
    config: C,
    /// `NoContext`, or `WithContext` with the validators' context.
    context: X,
    config_path: Option<PathBuf>,
    cache_path: Option<PathBuf>,
    store: Option<Box<dyn CacheStore>>,
    persist: bool,
    options: Options,
    app_version: Option<String>,
    invalid: Option<Error>,
    pub(crate) fleet: FleetOptions,
}

impl<C: StorageAvailability, X> fmt::Debug for AvailabilityCacheBuilder<C, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvailabilityCacheBuilder")
            .field("config_type", &C::config_type())
            .field("config_path", &self.config_path)
            .field("cache_path", &self.cache_path)
            .field("store", &self.store)
            .field("persist", &self.persist)
            .field("options", &self.options)
            .field("app_version", &self.app_version)
            .field("fleet", &self.fleet)
            .finish_non_exhaustive()
    }
}

impl<C: StorageAvailability> AvailabilityCacheBuilder<C> {
    pub(crate) fn new(config: C) -> Self {
        AvailabilityCacheBuilder {
            config,
            context: NoContext,
            config_path: None,
            cache_path: None,
            store: None,
            persist: true,
            options: Options {
                max_age: Some(DEFAULT_MAX_AGE),
                retry_failed_after: DEFAULT_RETRY_FAILED_AFTER,
                validation_timeout: DEFAULT_VALIDATION_TIMEOUT,
                max_parallel: DEFAULT_MAX_PARALLEL,
                max_file_bytes: DEFAULT_MAX_FILE_BYTES,
                lock_timeout: DEFAULT_LOCK_TIMEOUT,
                clock: Arc::new(SystemClock),
                recheck_every: DEFAULT_RECHECK_EVERY,
                stale_window: None,
            },
            app_version: None,
            invalid: None,
            fleet: FleetOptions::default(),
        }
    }

    /// The context every validator receives besides its section, for a config declared
    /// with `#[availability(context = T)]` (its validators are `fn(&Section, &T)`, or
    /// `async fn(&Section, &T)`): an HTTP client, a pool, a base URL. Required for such a
    /// config: without it, or with a value of another type, `open` does not compile.
    ///
    /// The context is not part of the cache key: an answer cached with one context is
    /// reused with another. Put what the answer depends on in the section itself, or in
    /// `#[storage(key_with = path)]`.
    ///
    /// # Example
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// struct Probe { calls: AtomicUsize }
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// #[availability(context = Probe)]
    /// struct Config { #[storage(validate = check)] kv: String }
    /// fn check(addr: &String, probe: &Probe) -> Outcome {
    ///     probe.calls.fetch_add(1, Ordering::Relaxed);
    ///     if addr.is_empty() { Outcome::failed("no address") } else { Outcome::ok() }
    /// }
    ///
    /// let cache = AvailabilityCache::builder(Config { kv: "127.0.0.1:6379".into() })
    ///     .context(Probe { calls: AtomicUsize::new(0) })
    ///     .persist(false)
    ///     .open()
    ///     .unwrap();
    /// assert!(cache.is_available(ConfigKind::Kv));
    /// ```
    pub fn context(
        self,
        context: C::Context,
    ) -> AvailabilityCacheBuilder<C, WithContext<C::Context>> {
        AvailabilityCacheBuilder {
            config: self.config,
            context: WithContext::new(Arc::new(context)),
            config_path: self.config_path,
            cache_path: self.cache_path,
            store: self.store,
            persist: self.persist,
            options: self.options,
            app_version: self.app_version,
            invalid: self.invalid,
            fleet: self.fleet,
        }
    }
}

impl<C: StorageAvailability, X> AvailabilityCacheBuilder<C, X> {
    pub(crate) fn reject(mut self, option: &'static str, reason: &str) -> Self {
        if self.invalid.is_none() {
            self.invalid = Some(Error::InvalidOption {
                option,
                reason: reason.to_owned(),
            });
        }
        self
    }

    /// The config file the cache belongs to: the cache file goes next to it as
    /// `<stem>.<8 hex>.availability.json`. Its path and mtime are recorded for diagnostics.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .config_path(dir.path().join("storage.yaml"))
    ///     .open()
    ///     .unwrap();
    /// let file = cache.path().unwrap().file_name().unwrap().to_str().unwrap();
    /// assert!(file.starts_with("storage.") && file.ends_with(".availability.json"));
    /// ```
    pub fn config_path(mut self, path: impl AsRef<Path>) -> Self {
        self.config_path = Some(path.as_ref().to_owned());
        self
    }

    /// Where to keep the cache file, overriding the path derived from the config path.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .cache_path(dir.path().join("cache.json"))
    ///     .open()
    ///     .unwrap();
    /// assert_eq!(cache.path(), Some(dir.path().join("cache.json").as_path()));
    /// ```
    pub fn cache_path(mut self, path: impl AsRef<Path>) -> Self {
        self.cache_path = Some(path.as_ref().to_owned());
        self
    }

    /// A custom store, overriding both paths.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// use storage_availability::FileStore;
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .store(FileStore::new(dir.path().join("custom.json")))
    ///     .open()
    ///     .unwrap();
    /// assert!(dir.path().join("custom.json").exists());
    /// # let _ = cache;
    /// ```
    pub fn store(mut self, store: impl CacheStore + 'static) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// How long a positive result is reused; `None` = until the section changes.
    /// Default: 24 hours.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .config_path(dir.path().join("storage.yaml"))
    ///     .max_age(Some(Duration::from_secs(3600))) // or None: until the section changes
    ///     .open()
    ///     .unwrap();
    /// assert!(cache.is_available(ConfigKind::Kv));
    /// ```
    pub fn max_age(mut self, max_age: Option<Duration>) -> Self {
        self.options.max_age = max_age;
        self
    }

    /// How long a failed result is reused before the section is retried; doubles with each
    /// consecutive failure, capped at one hour. Default: 30 seconds.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .persist(false)
    ///     .retry_failed_after(Duration::from_secs(5)) // then 10 s, 20 s... up to 1 h
    ///     .open()
    ///     .unwrap();
    /// # let _ = cache;
    /// ```
    pub fn retry_failed_after(mut self, after: Duration) -> Self {
        self.options.retry_failed_after = after;
        self
    }

    /// The timeout of a validator without its own `timeout_ms`. Default: 10 seconds.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .persist(false)
    ///     .validation_timeout(Duration::from_secs(2))
    ///     .open()
    ///     .unwrap();
    /// # let _ = cache;
    /// // Zero is refused when the cache opens.
    /// let invalid = AvailabilityCache::builder(Config { kv: "k".into() })
    ///     .validation_timeout(Duration::ZERO)
    ///     .open();
    /// assert!(matches!(invalid, Err(storage_availability::Error::InvalidOption { .. })));
    /// ```
    pub fn validation_timeout(mut self, timeout: Duration) -> Self {
        if timeout.is_zero() {
            return self.reject("validation_timeout", "must be greater than zero");
        }
        self.options.validation_timeout = timeout;
        self
    }

    /// How many validators run at once. Default: 16.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .persist(false)
    ///     .max_parallel(4)
    ///     .open()
    ///     .unwrap();
    /// # let _ = cache;
    /// ```
    pub fn max_parallel(mut self, n: usize) -> Self {
        if n == 0 {
            return self.reject("max_parallel", "must be at least 1");
        }
        self.options.max_parallel = n;
        self
    }

    /// Cache files larger than this are refused unread (and moved aside). Default: 1 MiB.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .config_path(dir.path().join("storage.yaml"))
    ///     .max_file_bytes(64 * 1024)
    ///     .open()
    ///     .unwrap();
    /// # let _ = cache;
    /// ```
    pub fn max_file_bytes(mut self, n: u64) -> Self {
        if n == 0 {
            return self.reject("max_file_bytes", "must be at least 1");
        }
        self.options.max_file_bytes = n;
        self
    }

    /// How often a running service revalidates its sections: the second clock, next to
    /// [`max_age`](Self::max_age) (how old an answer a *start* may reuse).
    /// [`refresh_if_stale`](AvailabilityCache::refresh_if_stale), its async form and the
    /// [refresher](AvailabilityCache::spawn_refresher) treat answers older than this as
    /// stale, failed ones included, so a dependency that dies while the service runs is seen
    /// within `recheck_every` plus its validation timeout, and its recovery too. A section's
    /// `#[storage(recheck_secs = N)]` overrides it. Default: 30 seconds; zero is an
    /// [`Error::InvalidOption`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config { #[storage(validate = check)] kv: String }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "k".into() })
    ///     .config_path(dir.path().join("storage.yaml"))
    ///     .recheck_every(Duration::from_secs(5))
    ///     .open()
    ///     .unwrap();
    /// assert_eq!(cache.recheck_every(ConfigKind::Kv), Duration::from_secs(5));
    /// ```
    pub fn recheck_every(mut self, every: Duration) -> Self {
        if every.is_zero() {
            return self.reject("recheck_every", "must be greater than zero");
        }
        self.options.recheck_every = every;
        self
    }

    /// Opt-in (the name is RFC 5861's): a start may answer at once with a *passed* result
    /// whose `max_age` is over by less than `window`, as [`Source::Stale`](crate::Source::Stale),
    /// instead of validating it before `open` returns. Such a start then revalidates what it
    /// served stale in the background, once (a thread after `open`, a tokio task after
    /// `open_async`; through the same single flight as every refresh, counted and saved),
    /// after which the statuses show the fresh answer ([`Source::Validated`](crate::Source),
    /// or unavailable if it now fails). Failed results are never served stale. Default: off.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use storage_availability::{AvailabilityCache, ManualClock, Outcome, Source, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config { #[storage(validate = check)] kv: String }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let path = dir.path().join("storage.yaml");
    /// let clock = ManualClock::new(SystemTime::now());
    /// let open = || {
    ///     AvailabilityCache::builder(Config { kv: "k".into() })
    ///         .config_path(&path)
    ///         .clock(clock.clone())
    ///         .max_age(Some(Duration::from_secs(3600)))
    ///         .stale_while_revalidate(Duration::from_secs(600))
    ///         .open()
    ///         .unwrap()
    /// };
    /// drop(open());
    /// clock.advance(Duration::from_secs(3700)); // max_age is over, the window is not
    /// let cache = open(); // answers at once with `Source::Stale`, revalidates in the background
    /// assert!(cache.is_available(ConfigKind::Kv));
    /// for _ in 0..500 {
    ///     if cache.status(ConfigKind::Kv).source == Source::Validated {
    ///         break;
    ///     }
    ///     std::thread::sleep(Duration::from_millis(10));
    /// }
    /// assert_eq!(cache.status(ConfigKind::Kv).source, Source::Validated);
    /// ```
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.options.stale_window = Some(window);
        self
    }

    /// How long to wait for another process that is validating; past it, validate without
    /// saving. Default: 30 seconds.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .config_path(dir.path().join("storage.yaml"))
    ///     .lock_timeout(Duration::from_secs(5))
    ///     .open()
    ///     .unwrap();
    /// # let _ = cache;
    /// ```
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.lock_timeout = timeout;
        self
    }

    /// `false`: keep results in memory only, never touch the file system. Default: `true`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .persist(false)
    ///     .open()
    ///     .unwrap();
    /// assert_eq!(cache.path(), None);
    /// ```
    pub fn persist(mut self, persist: bool) -> Self {
        self.persist = persist;
        self
    }

    /// The application version in every section key, so that a new release revalidates.
    /// Default: the `CARGO_PKG_VERSION` of the crate that derives the config
    /// ([`StorageAvailability::app_version`]); set it when the config type lives in a library
    /// crate whose version does not change with the application's.
    ///
    /// ```
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .persist(false)
    ///     .app_version(env!("CARGO_PKG_VERSION"))
    ///     .open()
    ///     .unwrap();
    /// # let _ = cache;
    /// ```
    pub fn app_version(mut self, version: impl Into<String>) -> Self {
        let version = version.into();
        if version.is_empty() {
            return self.reject("app_version", "must not be empty");
        }
        self.app_version = Some(version);
        self
    }

    /// The clock used for expiry and timestamps (a [`ManualClock`](crate::ManualClock) in
    /// tests). Default: the system clock.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// use storage_availability::{Clock, ManualClock};
    /// let clock = ManualClock::new(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .persist(false)
    ///     .clock(clock.clone())
    ///     .open()
    ///     .unwrap();
    /// assert_eq!(cache.status(ConfigKind::Kv).checked_at, clock.now());
    /// ```
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.options.clock = Arc::new(clock);
        self
    }

    /// The refresh core of this builder's cache, for the core's tests.
    #[cfg(test)]
    pub(crate) fn core_for_tests(self, store: Option<Arc<dyn CacheStore>>) -> Core<C>
    where
        C: StorageAvailability<Context = ()>,
    {
        let context = KeyContext::new("t");
        Core::new(
            self.config,
            self.options,
            store,
            None,
            &context,
            self.fleet,
            Arc::new(()),
        )
    }
}

impl<C: StorageAvailability, X: ContextState<C>> AvailabilityCacheBuilder<C, X> {
    /// The cache, before its first refresh.
    pub(crate) fn build(self) -> Result<AvailabilityCache<C>, Error> {
        if let Some(error) = self.invalid {
            return Err(error);
        }
        let store: Option<Arc<dyn CacheStore>> = if !self.persist {
            None
        } else if let Some(store) = self.store {
            Some(Arc::from(store))
        } else if let Some(path) = &self.cache_path {
            Some(Arc::new(FileStore::new(path)))
        } else if let Some(config_path) = &self.config_path {
            match cache_path_for_config(config_path, C::config_type()) {
                Ok(path) => Some(Arc::new(FileStore::new(writable_location(path)))),
                Err(error) => {
                    tracing::warn!(target: TARGET, config_path = %config_path.display(), %error,
                        "cannot derive the cache file path; keeping results in memory");
                    None
                }
            }
        } else if let Some(path) = cache_path_for_type(C::config_type()) {
            Some(Arc::new(FileStore::new(path)))
        } else {
            tracing::warn!(target: TARGET, config_type = C::config_type(),
                "no config path, cache path or platform cache directory; keeping results in memory");
            None
        };
        let config_path = self
            .config_path
            .map(|p| std::path::absolute(&p).unwrap_or(p));
        let context = KeyContext::new(
            self.app_version
                .unwrap_or_else(|| C::app_version().to_owned()),
        );
        Ok(AvailabilityCache::new(Core::new(
            self.config,
            self.options,
            store,
            config_path,
            &context,
            self.fleet,
            self.context.resolve(),
        )))
    }
}

impl<C: BlockingValidators, X> AvailabilityCacheBuilder<C, X> {
    /// Opens the cache: reads the file, validates every stale configured section and saves.
    ///
    /// Fails only for an invalid option; every cache problem is recovered from.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "localhost:6379".into() })
    ///     .config_path(dir.path().join("storage.yaml"))
    ///     .open()
    ///     .unwrap();
    /// assert!(cache.is_available(ConfigKind::Kv));
    /// ```
    pub fn open(self) -> Result<AvailabilityCache<C>, Error>
    where
        // On the method, not the impl: a missing context is then reported with the
        // message of `ContextFree`, not as "method cannot be called".
        X: ContextState<C>,
    {
        let cache = self.build()?;
        let report = cache.refresh_blocking(crate::policy::Recheck::Start);
        crate::notify::log_start(&report);
        cache.revalidate_stale();
        Ok(cache)
    }
}

#[cfg(feature = "tokio")]
impl<C: StorageAvailability, X> AvailabilityCacheBuilder<C, X> {
    /// [`open`](AvailabilityCacheBuilder::open) for async services: async validators run
    /// concurrently on the current runtime, blocking ones on `spawn_blocking`, and file I/O
    /// and lock waits never block a runtime worker. Works for every config, including those
    /// with `#[storage(validate = path, async)]` sections.
    pub async fn open_async(self) -> Result<AvailabilityCache<C>, Error>
    where
        X: ContextState<C>,
    {
        crate::drive::tokio::require_runtime("open_async")?;
        let cache = self.build()?;
        let report = cache.refresh_tokio(crate::policy::Recheck::Start).await;
        crate::notify::log_start(&report);
        cache.revalidate_stale_async();
        Ok(cache)
    }
}

impl Options {
    /// Is `record` a fresh answer, at `now`, for the section whose current key is `key` and
    /// whose passed results are fresh for `max_age` (its `max_age_secs`, else the builder's)?
    /// The rules of the file, also applied to records of the fleet store.
    pub(crate) fn freshness_within(
        &self,
        key: &str,
        record: &SectionRecord,
        now: SystemTime,
        max_age: Option<Duration>,
    ) -> Result<(), Stale> {
        policy::freshness(key, record, now, max_age, self.retry_failed_after)
    }

    /// `retry_failed_after * 2^(failures - 1)`, capped at one hour.
    pub(crate) fn backoff(&self, consecutive_failures: u32) -> Duration {
        policy::backoff(self.retry_failed_after, consecutive_failures)
    }

    /// How long a positive result is reused (`None`: until the section changes).
    pub(crate) fn max_age(&self) -> Option<Duration> {
        self.max_age
    }

    /// The timeout of a validator without its own `timeout_ms`.
    pub(crate) fn validation_timeout(&self) -> Duration {
        self.validation_timeout
    }
}
