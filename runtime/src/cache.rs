//! [`AvailabilityCache`]: validity policy, incremental revalidation, single-flight refresh.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use storage_availability_schema::{
    CacheFile, Metadata, SCHEMA_VERSION, SectionHash, SectionRecord, Timestamp,
};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::fingerprint::{KeyContext, SectionKey};
use crate::gate::Gate;
use crate::section::{Availability, BlockingValidators, Source, StorageAvailability, StorageKind};
use crate::shared::{FleetCounters, FleetOptions};
use crate::store::StoreLock;
use crate::store::fallback::writable_location;
use crate::store::path::{cache_path_for_config, cache_path_for_type};
use crate::store::{CacheStore, FileStore, Loaded, LockOutcome};
use crate::validate::{self, Ending, Finished};

const TARGET: &str = "storage_availability";

/// Positive results are reused for this long by default.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);
/// A failed section is retried after this by default, doubling per consecutive failure.
const DEFAULT_RETRY_FAILED_AFTER: Duration = Duration::from_secs(30);
/// The backoff of failed sections never exceeds this.
const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// A record checked more than this far in the future is treated as expired (clock skew).
const FUTURE_TOLERANCE: Duration = Duration::from_secs(5 * 60);
const DEFAULT_VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_PARALLEL: usize = 16;
const DEFAULT_MAX_FILE_BYTES: u64 = 1024 * 1024;
const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of one save, with a short backoff between them.
const SAVE_ATTEMPTS: u32 = 3;

/// The cached availability of every section of a config `C`.
///
/// `open` validates every stale section (in parallel) and saves the file before it returns,
/// so answers are final and reading them is a cheap, lock-light, allocation-free call.
/// The cache is `Send + Sync`: share it behind an `Arc`, call [`refresh`](Self::refresh)
/// from any thread while others keep reading.
///
/// # Example
///
/// ```
/// use storage_availability::{AvailabilityCache, Outcome, Source, StorageAvailability};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config {
///     #[storage(validate = check_csv)]
///     csv: String,
/// }
/// fn check_csv(dir: &String) -> Outcome {
///     if dir.is_empty() { Outcome::failed("no directory") } else { Outcome::ok() }
/// }
///
/// let dir = tempfile::tempdir().unwrap();
/// let config_path = dir.path().join("storage.yaml");
/// let cache = AvailabilityCache::open(Config { csv: "data".into() }, &config_path).unwrap();
/// assert!(cache.is_available(ConfigKind::Csv));
/// assert_eq!(cache.status(ConfigKind::Csv).source, Source::Validated);
///
/// // The next start is served from the file.
/// let cache = AvailabilityCache::open(Config { csv: "data".into() }, &config_path).unwrap();
/// assert_eq!(cache.status(ConfigKind::Csv).source, Source::Cache);
/// ```
pub struct AvailabilityCache<C: StorageAvailability> {
    pub(crate) config: Arc<C>,
    pub(crate) options: Options,
    pub(crate) keys: Vec<SectionKey>,
    /// Sections whose key could not be computed: validated at every refresh, never reused.
    uncacheable: Vec<bool>,
    pub(crate) store: Option<Arc<dyn CacheStore>>,
    pub(crate) config_path: Option<PathBuf>,
    /// What readers see: replaced whole by each refresh, so a reader sees the old or the new.
    snapshot: RwLock<Arc<Snapshot>>,
    /// Entered for a whole refresh: at most one validation per section in this process.
    gate: Gate,
    /// Flags between refreshes; locked only briefly, never across validation.
    state: Mutex<RefreshState>,
    pub(crate) stats: Counters,
    warned_save: AtomicBool,
    /// A cache file of another config type was found (warned once).
    warned_foreign: AtomicBool,
    /// The fleet store of `scope = "shared"` sections, if any (see `shared/`).
    pub(crate) fleet: FleetOptions,
}

#[derive(Debug, Clone)]
pub(crate) struct Options {
    max_age: Option<Duration>,
    retry_failed_after: Duration,
    validation_timeout: Duration,
    pub(crate) max_parallel: usize,
    pub(crate) max_file_bytes: u64,
    pub(crate) lock_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
}

/// One section as readers see it.
#[derive(Debug, Clone)]
struct Entry {
    availability: Availability,
    /// The record behind the answer (`None` when pending).
    record: Option<SectionRecord>,
}

#[derive(Debug)]
pub(crate) struct Snapshot {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct RefreshState {
    /// Per section, how many times it was [`invalidate`](AvailabilityCache::invalidate)d.
    invalidations: Vec<u64>,
    /// Per section, the invalidations that a finished validation answered: the section is
    /// revalidated whatever the file says while `invalidations > answered`. A refresh
    /// clears only what it saw when it began, so an invalidation made while it validates is
    /// never lost.
    answered: Vec<u64>,
    /// The last save failed: save again at the next refresh even if nothing is stale.
    unsaved: bool,
}

/// What one refresh works from: the answers when it started, and the flags then.
#[derive(Debug)]
pub(crate) struct RefreshRun {
    current: Arc<Snapshot>,
    /// Per section: invalidated when this refresh began.
    forced: Vec<bool>,
    /// The invalidation count of each section when this refresh began.
    seen: Vec<u64>,
    unsaved: bool,
}

impl RefreshRun {
    pub(crate) fn nothing_to_do(&self, plan: &[Planned]) -> bool {
        !self.unsaved && plan.iter().all(Result::is_ok)
    }
}

/// For one section: a fresh record to reuse and where it came from, or why to validate.
pub(crate) type Planned = Result<(SectionRecord, Source), Stale>;

/// Why a section is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stale {
    Missing,
    Changed,
    Expired,
    RetryDue,
    Future,
    Invalidated,
    /// `#[storage(cache = false)]`: never reused from the file.
    NotReused,
    /// Its key could not be computed: never reused.
    Uncacheable,
}

impl Stale {
    fn as_str(self) -> &'static str {
        match self {
            Stale::Missing => "no cached record",
            Stale::Changed => "section changed",
            Stale::Expired => "result expired",
            Stale::RetryDue => "failed, retry due",
            Stale::Future => "timestamp in the future",
            Stale::Invalidated => "invalidated",
            Stale::NotReused => "not reused across starts",
            Stale::Uncacheable => "key cannot be computed",
        }
    }
}

/// What a [`refresh`](AvailabilityCache::refresh) did. Serialized with `duration` as
/// `duration_ms`, a number of milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct RefreshReport {
    /// Sections whose validator ran, by name.
    pub validated: Vec<&'static str>,
    /// Sections whose cached record was reused, by name.
    pub reused: Vec<&'static str>,
    /// Whether the cache file was written.
    pub saved: bool,
    /// How long the refresh took.
    #[serde(rename = "duration_ms", serialize_with = "crate::health::serialize_ms")]
    pub duration: Duration,
}

/// Counters of what the cache did since it was opened. Every recovery is counted here.
/// Serialized as an object of numbers named like the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Sections answered from a fresh cached record (file or memory).
    pub hits: u64,
    /// Sections found stale and validated.
    pub misses: u64,
    /// Validator runs (including timed-out and panicked ones).
    pub validations: u64,
    /// Validators abandoned after their timeout.
    pub timeouts: u64,
    /// Validators that panicked.
    pub panics: u64,
    /// Cache files written.
    pub saves: u64,
    /// Saves that failed after every attempt (results kept in memory).
    pub save_failures: u64,
    /// Corrupt or oversized files moved aside and regenerated.
    pub corrupt_recovered: u64,
    /// Files of another version or unreadable files replaced.
    pub incompatible_replaced: u64,
    /// Lock waits that ran out: validated without saving.
    pub lock_timeouts: u64,
    /// Leftover temp files of interrupted saves removed.
    pub temp_files_swept: u64,
    /// Refreshes run (including the one in `open`).
    pub refreshes: u64,
    /// Shared sections answered from a fresh record in the fleet store (Redis).
    pub shared_hits: u64,
    /// Records written to the fleet store.
    pub shared_publishes: u64,
    /// Fleet store records ignored (unparsable, another schema or another hash); each is
    /// overwritten by this host's validation.
    pub shared_ignored: u64,
    /// Fleet store records ignored because they were unsigned or mis-signed while the cache
    /// has a [`shared_secret`](AvailabilityCacheBuilder::shared_secret) (also counted in
    /// `shared_ignored`); each is overwritten by this host's validation.
    pub shared_unsigned: u64,
    /// Refreshes in which the fleet store failed (unreachable, slow, bad reply): the rest of
    /// that refresh worked locally.
    pub shared_errors: u64,
    /// Shared sections whose result this host had to poll for (sleeping) while another host
    /// held the validation lease, after validating its own leased and host-scoped sections.
    /// A record that was already published when this host got to it is not a wait.
    pub lease_waits: u64,
    /// Waits that ran past their bound: the section was validated here, without the lease.
    pub lease_timeouts: u64,
    /// Cache files found that were not ours (another user's, writable by group or others,
    /// a symbolic link): not trusted, every section validated afresh, the file replaced by
    /// the next save when the directory allows. See "Trust model" in README.md.
    pub untrusted: u64,
    /// Sections whose key could not be computed (their `Serialize` failed or panicked, or
    /// the host or working directory is unknown): validated at every open, never reused.
    pub uncacheable: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    validations: AtomicU64,
    timeouts: AtomicU64,
    panics: AtomicU64,
    saves: AtomicU64,
    save_failures: AtomicU64,
    corrupt_recovered: AtomicU64,
    incompatible_replaced: AtomicU64,
    lock_timeouts: AtomicU64,
    temp_files_swept: AtomicU64,
    refreshes: AtomicU64,
    untrusted: AtomicU64,
    warned_untrusted: std::sync::atomic::AtomicBool,
    uncacheable: AtomicU64,
    pub(crate) fleet: FleetCounters,
}

pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
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
pub struct AvailabilityCacheBuilder<C: StorageAvailability> {
    config: C,
    config_path: Option<PathBuf>,
    cache_path: Option<PathBuf>,
    store: Option<Box<dyn CacheStore>>,
    persist: bool,
    options: Options,
    app_version: Option<String>,
    invalid: Option<Error>,
    pub(crate) fleet: FleetOptions,
}

impl<C: StorageAvailability> fmt::Debug for AvailabilityCacheBuilder<C> {
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
    fn new(config: C) -> Self {
        AvailabilityCacheBuilder {
            config,
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
            },
            app_version: None,
            invalid: None,
            fleet: FleetOptions::default(),
        }
    }

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
    pub fn config_path(mut self, path: impl AsRef<Path>) -> Self {
        self.config_path = Some(path.as_ref().to_owned());
        self
    }

    /// Where to keep the cache file, overriding the path derived from the config path.
    pub fn cache_path(mut self, path: impl AsRef<Path>) -> Self {
        self.cache_path = Some(path.as_ref().to_owned());
        self
    }

    /// A custom store, overriding both paths.
    pub fn store(mut self, store: impl CacheStore + 'static) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// How long a positive result is reused; `None` = until the section changes.
    /// Default: 24 hours.
    pub fn max_age(mut self, max_age: Option<Duration>) -> Self {
        self.options.max_age = max_age;
        self
    }

    /// How long a failed result is reused before the section is retried; doubles with each
    /// consecutive failure, capped at one hour. Default: 30 seconds.
    pub fn retry_failed_after(mut self, after: Duration) -> Self {
        self.options.retry_failed_after = after;
        self
    }

    /// The timeout of a validator without its own `timeout_ms`. Default: 10 seconds.
    pub fn validation_timeout(mut self, timeout: Duration) -> Self {
        if timeout.is_zero() {
            return self.reject("validation_timeout", "must be greater than zero");
        }
        self.options.validation_timeout = timeout;
        self
    }

    /// How many validators run at once. Default: 16.
    pub fn max_parallel(mut self, n: usize) -> Self {
        if n == 0 {
            return self.reject("max_parallel", "must be at least 1");
        }
        self.options.max_parallel = n;
        self
    }

    /// Cache files larger than this are refused unread (and moved aside). Default: 1 MiB.
    pub fn max_file_bytes(mut self, n: u64) -> Self {
        if n == 0 {
            return self.reject("max_file_bytes", "must be at least 1");
        }
        self.options.max_file_bytes = n;
        self
    }

    /// How long to wait for another process that is validating; past it, validate without
    /// saving. Default: 30 seconds.
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.options.lock_timeout = timeout;
        self
    }

    /// `false`: keep results in memory only, never touch the file system. Default: `true`.
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
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.options.clock = Arc::new(clock);
        self
    }

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
        let mut cache =
            AvailabilityCache::new(self.config, self.options, store, config_path, &context);
        cache.fleet = self.fleet;
        Ok(cache)
    }
}

impl<C: BlockingValidators> AvailabilityCacheBuilder<C> {
    /// Opens the cache: reads the file, validates every stale configured section and saves.
    ///
    /// Fails only for an invalid option; every cache problem is recovered from.
    pub fn open(self) -> Result<AvailabilityCache<C>, Error> {
        let cache = self.build()?;
        cache.refresh_now();
        Ok(cache)
    }
}

impl<C: BlockingValidators> AvailabilityCache<C> {
    /// Opens the cache for `config`, whose config file is `config_path`, with default
    /// options. The cache file goes next to the config file.
    ///
    /// Validates every stale configured section and saves before it returns. Never fails
    /// because of the cache file: problems are recovered from and logged.
    pub fn open(config: C, config_path: impl AsRef<Path>) -> Result<Self, Error> {
        Self::builder(config).config_path(config_path).open()
    }

    /// Revalidates the sections that are stale (changed, expired, failed with the retry due,
    /// or [`invalidate`](Self::invalidate)d), reusing what another process saved meanwhile,
    /// and saves. Readers keep reading the previous answers until it is done; concurrent
    /// calls wait for the running one and then find nothing left to do.
    pub fn refresh(&self) -> Result<RefreshReport, Error> {
        Ok(self.refresh_now())
    }
}

impl<C: StorageAvailability> AvailabilityCache<C> {
    /// A builder with every option.
    pub fn builder(config: C) -> AvailabilityCacheBuilder<C> {
        AvailabilityCacheBuilder::new(config)
    }

    fn new(
        config: C,
        options: Options,
        store: Option<Arc<dyn CacheStore>>,
        config_path: Option<PathBuf>,
        context: &KeyContext,
    ) -> Self {
        let stats = Counters::default();
        let (keys, uncacheable) = C::Kind::ALL
            .iter()
            .map(|&kind| match section_key_of(&config, kind, context) {
                Ok(key) => (key, false),
                Err(error) => {
                    bump(&stats.uncacheable, 1);
                    tracing::warn!(target: TARGET, section = kind.name(), %error,
                        "section key cannot be computed; the section will be validated at every open and never reused");
                    (SectionKey::never_matching(), true)
                }
            })
            .unzip();
        let now = options.clock.now();
        let entries = C::Kind::ALL
            .iter()
            .map(|&kind| pending_entry(config.is_configured(kind), now))
            .collect();
        AvailabilityCache {
            config: Arc::new(config),
            keys,
            store,
            config_path,
            snapshot: RwLock::new(Arc::new(Snapshot { entries })),
            gate: Gate::default(),
            uncacheable,
            state: Mutex::new(RefreshState {
                invalidations: vec![0; C::Kind::ALL.len()],
                answered: vec![0; C::Kind::ALL.len()],
                unsaved: false,
            }),
            options,
            stats,
            warned_save: AtomicBool::new(false),
            warned_foreign: AtomicBool::new(false),
            fleet: FleetOptions::default(),
        }
    }

    /// `true` when the section is configured and validated successfully.
    #[inline]
    pub fn is_available(&self, kind: C::Kind) -> bool {
        self.read_snapshot(|s| s.entries[kind.index()].availability.is_available())
    }

    /// The section's availability: no I/O, and no allocation unless the section has error
    /// or warning texts to copy.
    #[inline]
    pub fn status(&self, kind: C::Kind) -> Availability {
        self.read_snapshot(|s| s.entries[kind.index()].availability.clone())
    }

    /// Every section's availability, in declaration order.
    pub fn statuses(&self) -> Vec<(C::Kind, Availability)> {
        self.read_snapshot(|s| {
            C::Kind::ALL
                .iter()
                .map(|&k| (k, s.entries[k.index()].availability.clone()))
                .collect()
        })
    }

    /// The section's record in the cache file's format (`None` before any result).
    pub fn record(&self, kind: C::Kind) -> Option<SectionRecord> {
        self.read_snapshot(|s| s.entries[kind.index()].record.clone())
    }

    /// Marks the section so that the next [`refresh`](Self::refresh) revalidates it. Its
    /// current answer stays until then. Never lost: an invalidation made while a refresh is
    /// validating the section makes the next refresh validate it again.
    pub fn invalidate(&self, kind: C::Kind) {
        let mut state = self.lock_state();
        let count = &mut state.invalidations[kind.index()];
        *count = count.saturating_add(1);
    }

    /// Deletes the cache file and forgets every result: configured sections are
    /// [`Source::Pending`] until the next [`refresh`](Self::refresh).
    pub fn clear(&self) -> Result<(), Error> {
        let _gate = self.gate.enter();
        let mut state = self.lock_state();
        let now = self.options.clock.now();
        let entries = C::Kind::ALL
            .iter()
            .map(|&kind| pending_entry(self.config.is_configured(kind), now))
            .collect();
        self.install(Snapshot { entries });
        state.unsaved = false;
        if let Some(store) = &self.store {
            store.remove().map_err(|source| Error::Io {
                op: "remove cache file",
                path: store.location().map(Path::to_owned).unwrap_or_default(),
                source,
            })?;
        }
        Ok(())
    }

    /// What the cache did since it was opened.
    pub fn stats(&self) -> Stats {
        let c = &self.stats;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            hits: get(&c.hits),
            misses: get(&c.misses),
            validations: get(&c.validations),
            timeouts: get(&c.timeouts),
            panics: get(&c.panics),
            saves: get(&c.saves),
            save_failures: get(&c.save_failures),
            corrupt_recovered: get(&c.corrupt_recovered),
            incompatible_replaced: get(&c.incompatible_replaced),
            lock_timeouts: get(&c.lock_timeouts),
            temp_files_swept: get(&c.temp_files_swept),
            refreshes: get(&c.refreshes),
            shared_hits: get(&c.fleet.hits),
            shared_publishes: get(&c.fleet.publishes),
            shared_ignored: get(&c.fleet.ignored),
            shared_unsigned: get(&c.fleet.unsigned),
            shared_errors: get(&c.fleet.errors),
            lease_waits: get(&c.fleet.lease_waits),
            lease_timeouts: get(&c.fleet.lease_timeouts),
            untrusted: get(&c.untrusted),
            uncacheable: get(&c.uncacheable),
        }
    }

    /// The cache file's path; `None` when results are kept in memory only.
    pub fn path(&self) -> Option<&Path> {
        self.store.as_ref().and_then(|s| s.location())
    }

    /// The config this cache answers for.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// The JSON Schema of this config's cache file: the `sections` object lists exactly the
    /// config's section names and rejects any other.
    pub fn json_schema() -> schemars::Schema {
        let names: Vec<&str> = C::Kind::ALL.iter().map(|k| k.name()).collect();
        storage_availability_schema::schema_for_sections(&names)
    }

    fn read_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        let guard = self.snapshot.read().unwrap_or_else(PoisonError::into_inner);
        f(&guard)
    }

    fn install(&self, snapshot: Snapshot) {
        let snapshot = Arc::new(snapshot);
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = snapshot;
    }

    fn lock_state(&self) -> MutexGuard<'_, RefreshState> {
        // A panic cannot leave the state inconsistent (it is flags), so poisoning is
        // ignored rather than turned into a failure.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(feature = "tokio")]
    pub(crate) async fn gate_enter_async(&self) -> crate::gate::GateGuard<'_> {
        self.gate.enter_async().await
    }

    fn read_snapshot_arc(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Is `record` a fresh answer for section `index` at `now`?
    fn freshness(
        &self,
        index: usize,
        record: &SectionRecord,
        now: SystemTime,
    ) -> Result<(), Stale> {
        let max_age = C::max_age(C::Kind::ALL[index]).or(self.options.max_age);
        self.options
            .freshness_within(self.keys[index].as_str(), record, now, max_age)
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
        if record.section_hash.as_str() != key {
            return Err(Stale::Changed);
        }
        let checked_at = record.checked_at.0;
        let age = match now.duration_since(checked_at) {
            Ok(age) => age,
            Err(ahead) if ahead.duration() > FUTURE_TOLERANCE => return Err(Stale::Future),
            Err(_) => Duration::ZERO,
        };
        if record.validation_passed {
            match max_age {
                Some(max_age) if age >= max_age => Err(Stale::Expired),
                _ => Ok(()),
            }
        } else if age >= self.backoff(record.consecutive_failures) {
            Err(Stale::RetryDue)
        } else {
            Ok(())
        }
    }

    /// `retry_failed_after * 2^(failures - 1)`, capped at one hour.
    pub(crate) fn backoff(&self, consecutive_failures: u32) -> Duration {
        let doublings = consecutive_failures.saturating_sub(1).min(31);
        self.retry_failed_after
            .saturating_mul(1u32 << doublings)
            .min(MAX_BACKOFF.max(self.retry_failed_after))
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

impl<C: StorageAvailability> AvailabilityCache<C> {
    /// Chooses, for each section, a fresh record to reuse or the reason to validate it.
    pub(crate) fn plan(
        &self,
        file: Option<&CacheFile>,
        run: &RefreshRun,
        now: SystemTime,
    ) -> Vec<Planned> {
        let (current, forced) = (&run.current, &run.forced);
        let file = self.own_file(file);
        C::Kind::ALL
            .iter()
            .map(|&kind| {
                let index = kind.index();
                let name = kind.name();
                let key = self.keys[index].as_str();
                let entry = &current.entries[index];
                let file_record = file.and_then(|f| f.sections.get(name));
                let matching = |r: &&SectionRecord| r.section_hash.as_str() == key;
                // `cache = false`: never from the file, so never across starts.
                let from_file = file_record
                    .filter(matching)
                    .filter(|_| C::reused_across_starts(kind))
                    .map(|r| (r, Source::Cache));
                let from_memory = entry
                    .record
                    .as_ref()
                    .filter(matching)
                    .map(|r| (r, entry.availability.source));
                // The newer of what this process has and what the file has.
                let candidate = match (from_file, from_memory) {
                    (Some(f), Some(m)) => Some(if m.0.checked_at >= f.0.checked_at {
                        m
                    } else {
                        f
                    }),
                    (f, m) => f.or(m),
                };
                if !self.config.is_configured(kind) {
                    // Never validated, and always disabled whatever a record says. A record
                    // that says so is kept as it is, so a save does not rewrite it.
                    let record = match candidate {
                        Some((record, _)) if !record.enabled && !record.validation_passed => {
                            record.clone()
                        }
                        _ => self.unconfigured_record(index, now),
                    };
                    return Ok((record, Source::Unconfigured));
                }
                if self.uncacheable[index] {
                    return Err(Stale::Uncacheable);
                }
                if forced[index] {
                    return Err(Stale::Invalidated);
                }
                let Some((record, source)) = candidate else {
                    return Err(if !C::reused_across_starts(kind) {
                        Stale::NotReused
                    } else if file_record.is_some() {
                        Stale::Changed
                    } else {
                        Stale::Missing
                    });
                };
                self.freshness(index, record, now)
                    .map(|()| (record.clone(), source))
            })
            .collect()
    }

    /// `file` if it belongs to this config type; another type's file is ignored (and
    /// replaced by the next save), warned once and counted.
    fn own_file<'f>(&self, file: Option<&'f CacheFile>) -> Option<&'f CacheFile> {
        let file = file?;
        if file.metadata.config_type == C::config_type() {
            return Some(file);
        }
        if !self.warned_foreign.swap(true, Ordering::Relaxed) {
            bump(&self.stats.incompatible_replaced, 1);
            tracing::warn!(target: TARGET, path = ?self.path(),
                found = %file.metadata.config_type, expected = C::config_type(),
                "cache file belongs to another config type; ignoring its records and replacing it");
        }
        None
    }

    fn unconfigured_record(&self, index: usize, now: SystemTime) -> SectionRecord {
        SectionRecord {
            section_hash: section_hash(&self.keys[index]),
            enabled: false,
            validation_passed: false,
            last_error: None,
            errors: Vec::new(),
            warnings: Vec::new(),
            checked_at: Timestamp(truncate_to_micros(now)),
            duration_ms: 0.0,
            consecutive_failures: 0,
        }
    }

    /// Starts a refresh: what readers see now, and the flags to honour.
    pub(crate) fn begin(&self) -> RefreshRun {
        bump(&self.stats.refreshes, 1);
        let state = self.lock_state();
        RefreshRun {
            current: self.read_snapshot_arc(),
            forced: state
                .invalidations
                .iter()
                .zip(&state.answered)
                .map(|(made, answered)| made > answered)
                .collect(),
            seen: state.invalidations.clone(),
            unsaved: state.unsaved && self.store.is_some(),
        }
    }

    /// The blocking refresh: every phase on this thread.
    fn refresh_now(&self) -> RefreshReport {
        let started = Instant::now();
        let _gate = self.gate.enter();
        let run = self.begin();

        // 1. Without the lock: a warm start needs nothing more than this read.
        let loaded = match self.store.as_deref() {
            Some(store) => store.load(self.options.max_file_bytes),
            None => Loaded::Missing,
        };
        let plan = self.plan(file_of(&loaded), &run, self.options.clock.now());
        if run.nothing_to_do(&plan) {
            return self.finish(&run, plan, &[], None, started);
        }

        // 2. Under the lock: read again (a neighbour may have done the work), recover from
        //    a broken file, validate what is still stale, save.
        let (mut loaded, mut plan) = (loaded, plan);
        let mut lock = None;
        let mut may_save = false;
        if let Some(store) = self.store.as_deref() {
            let outcome = store.lock(self.options.lock_timeout);
            (lock, may_save) = self.after_lock(store, outcome);
            if lock.is_some() {
                loaded = store.load(self.options.max_file_bytes);
                plan = self.plan(file_of(&loaded), &run, self.options.clock.now());
                self.count_swept(store.sweep());
                // A neighbour did the work while we waited: reuse it, write nothing.
                if run.nothing_to_do(&plan) {
                    return self.finish(&run, plan, &[], None, started);
                }
            }
            let quarantined = (lock.is_some() && matches!(loaded, Loaded::Corrupt(_)))
                .then(|| store.quarantine(self.options.clock.now()));
            may_save &= self.recover(store, &loaded, quarantined);
        }
        // Fleet store (`shared/`): stale shared sections from Redis, or leased to validate.
        // Rounds: what this host must validate first, then what other hosts' leases leave.
        let mut fleet = self.fleet_claim(&mut plan);
        let mut stale = Vec::new();
        loop {
            let round = self.fleet_ready(fleet.as_ref(), &plan);
            if !round.is_empty() {
                let jobs = self.jobs(&round);
                let finished = validate::run(&self.config, &jobs, self.options.max_parallel);
                self.apply(&mut plan, finished, &loaded, &run, &round, started);
                stale.extend(round);
            }
            if !self.fleet_settle(&mut fleet, &mut plan) {
                break;
            }
        }
        let saved = match self.store.as_deref() {
            Some(store) if may_save => {
                let mut file = self.file_from(&plan);
                file.metadata.config_mtime = config_mtime(self.config_path.as_deref());
                Some(save_with_retries(store, &file))
            }
            _ => None,
        };
        drop(lock);
        self.finish(&run, plan, &stale, saved, started)
    }

    /// Logs and counts how the lock attempt ended; returns the lock and whether to save.
    pub(crate) fn after_lock(
        &self,
        store: &dyn CacheStore,
        outcome: LockOutcome,
    ) -> (Option<StoreLock>, bool) {
        match outcome {
            LockOutcome::Locked(guard) => (Some(guard), true),
            LockOutcome::TimedOut => {
                bump(&self.stats.lock_timeouts, 1);
                tracing::warn!(target: TARGET, path = ?store.location(),
                    timeout = ?self.options.lock_timeout,
                    "another process held the cache lock too long; validating without saving");
                (None, false)
            }
            LockOutcome::Unavailable(reason) => {
                tracing::warn!(target: TARGET, %reason, "working without the cache lock");
                (None, true)
            }
        }
    }

    pub(crate) fn count_swept(&self, swept: usize) {
        if swept > 0 {
            bump(&self.stats.temp_files_swept, swept as u64);
            tracing::info!(target: TARGET, swept, "removed temp files of interrupted saves");
        }
    }

    /// Recovers from what the locked read found; returns whether the file may be written.
    /// `quarantined` is the result of moving a corrupt file aside, done by the caller (on
    /// this thread, or on a blocking thread in `open_async`) only under the lock: unlocked,
    /// the file may be a neighbour's fresh one.
    pub(crate) fn recover(
        &self,
        store: &dyn CacheStore,
        loaded: &Loaded,
        quarantined: Option<std::io::Result<Option<PathBuf>>>,
    ) -> bool {
        match loaded {
            Loaded::Corrupt(reason) => {
                bump(&self.stats.corrupt_recovered, 1);
                let path = store.location();
                match quarantined {
                    Some(Ok(Some(moved))) => {
                        tracing::warn!(target: TARGET, ?path, %reason, to = %moved.display(),
                            "cache file is corrupt; moved it aside and regenerating");
                        true
                    }
                    Some(Err(error)) => {
                        tracing::warn!(target: TARGET, ?path, %reason, %error,
                            "cache file is corrupt and could not be moved aside; it will be replaced");
                        true
                    }
                    Some(Ok(None)) => {
                        tracing::warn!(target: TARGET, ?path, %reason,
                            "cache file is corrupt and was gone or not ours to move; regenerating");
                        true
                    }
                    // Unlocked, the file may be a neighbour's: neither moved nor overwritten.
                    None => {
                        tracing::warn!(target: TARGET, ?path, %reason,
                            "cache file is corrupt; without the cache lock it is left in place \
                             (not moved aside, not overwritten); validating without saving");
                        false
                    }
                }
            }
            Loaded::Unusable(reason) => {
                tracing::warn!(target: TARGET, path = ?store.location(), %reason,
                    "cache file unusable; it will be replaced");
                bump(&self.stats.incompatible_replaced, 1);
                true
            }
            Loaded::NotRegular(reason) => {
                self.warn_save_once(&format!(
                    "the cache path {reason}, which is not ours to replace; keeping results in memory"
                ));
                false
            }
            Loaded::Untrusted(reason) => {
                bump(&self.stats.untrusted, 1);
                let path = store.location();
                if !self.stats.warned_untrusted.swap(true, Ordering::Relaxed) {
                    tracing::warn!(target: TARGET, ?path, %reason,
                        "cache file is not ours, so it is not trusted: validating every section \
                         and replacing it when the directory allows");
                } else {
                    tracing::debug!(target: TARGET, ?path, %reason, "cache file is not ours");
                }
                true
            }
            Loaded::Missing | Loaded::File(_) => true,
        }
    }

    /// Each stale section with its timeout.
    pub(crate) fn jobs(&self, stale: &[(C::Kind, Stale)]) -> Vec<(C::Kind, Duration)> {
        stale
            .iter()
            .map(|&(kind, _)| {
                let timeout = C::timeout(kind).unwrap_or(self.options.validation_timeout);
                (kind, timeout)
            })
            .collect()
    }

    /// Turns validation results into records in `plan`, counting and logging them.
    pub(crate) fn apply(
        &self,
        plan: &mut [Planned],
        finished: Vec<Finished<C::Kind>>,
        loaded: &Loaded,
        run: &RefreshRun,
        stale: &[(C::Kind, Stale)],
        started: Instant,
    ) {
        // Stored with microsecond precision: answer with what the file will hold.
        let checked_at = truncate_to_micros(self.options.clock.now());
        for done in finished {
            let index = done.kind.index();
            bump(&self.stats.validations, 1);
            match done.ending {
                Ending::TimedOut => bump(&self.stats.timeouts, 1),
                Ending::Panicked => bump(&self.stats.panics, 1),
                Ending::Completed => {}
            }
            let previous_failures = previous_failures(
                file_of(loaded),
                &run.current,
                done.kind.name(),
                index,
                &self.keys[index],
            );
            let passed = done.outcome.is_ok();
            let (errors, warnings) = done.outcome.into_parts();
            let record = SectionRecord {
                section_hash: section_hash(&self.keys[index]),
                enabled: passed,
                validation_passed: passed,
                last_error: errors.last().cloned(),
                errors,
                warnings,
                checked_at: Timestamp(checked_at),
                duration_ms: done.duration.as_secs_f64() * 1000.0,
                consecutive_failures: if passed {
                    0
                } else {
                    previous_failures.saturating_add(1)
                },
            };
            plan[index] = Ok((record, Source::Validated));
        }
        if !stale.is_empty() {
            let reasons: Vec<String> = stale
                .iter()
                .map(|(kind, why)| format!("{} ({})", kind.name(), why.as_str()))
                .collect();
            tracing::info!(target: TARGET, sections = %reasons.join(", "),
                elapsed = ?started.elapsed(), "validated storage sections");
        }
    }

    /// Records the save's result, publishes the new answers and reports.
    pub(crate) fn finish(
        &self,
        run: &RefreshRun,
        plan: Vec<Planned>,
        stale: &[(C::Kind, Stale)],
        saved: Option<std::io::Result<()>>,
        started: Instant,
    ) -> RefreshReport {
        let mut report = RefreshReport::default();
        let mut state = self.lock_state();
        match saved {
            Some(Ok(())) => {
                bump(&self.stats.saves, 1);
                report.saved = true;
                state.unsaved = false;
            }
            Some(Err(error)) => {
                bump(&self.stats.save_failures, 1);
                state.unsaved = true;
                let path = self
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                self.warn_save_once(&format!(
                    "failed to save cache file {path}: {error}; keeping results in memory and retrying at the next refresh"
                ));
            }
            None => {}
        }
        // By index, so that finishing stays linear in the number of sections.
        let mut was_validated = vec![false; plan.len()];
        for &(kind, _) in stale {
            was_validated[kind.index()] = true;
        }
        let mut entries = Vec::with_capacity(plan.len());
        for (&kind, planned) in C::Kind::ALL.iter().zip(plan) {
            let index = kind.index();
            let validated = was_validated[index];
            if validated {
                // Only the invalidations this refresh saw: later ones stay pending.
                state.answered[index] = state.answered[index].max(run.seen[index]);
            }
            let entry = match planned {
                Ok((record, source)) => {
                    if validated {
                        report.validated.push(kind.name());
                    } else if source != Source::Unconfigured {
                        report.reused.push(kind.name());
                    }
                    Entry {
                        availability: availability_of(&record, source),
                        record: Some(record),
                    }
                }
                // Only reachable if validation produced no record, which the runners rule
                // out; answer "unavailable" rather than panic.
                Err(why) => Entry {
                    availability: Availability {
                        enabled: false,
                        validation_passed: false,
                        last_error: Some(format!("not validated: {}", why.as_str())),
                        errors: Vec::new(),
                        warnings: Vec::new(),
                        checked_at: self.options.clock.now(),
                        duration: Duration::ZERO,
                        source: Source::Pending,
                    },
                    record: None,
                },
            };
            entries.push(entry);
        }
        drop(state);
        bump(&self.stats.misses, report.validated.len() as u64);
        bump(&self.stats.hits, report.reused.len() as u64);
        self.install(Snapshot { entries });
        report.duration = started.elapsed();
        report
    }

    pub(crate) fn file_from(&self, plan: &[Planned]) -> CacheFile {
        let sections = C::Kind::ALL
            .iter()
            .zip(plan)
            .filter_map(|(kind, p)| {
                p.as_ref()
                    .ok()
                    .map(|(r, _)| (kind.name().to_owned(), r.clone()))
            })
            .collect();
        CacheFile {
            schema_version: SCHEMA_VERSION.to_owned(),
            metadata: Metadata {
                generator: concat!("storage-availability ", env!("CARGO_PKG_VERSION")).to_owned(),
                generated_at: Timestamp(self.options.clock.now()),
                config_type: C::config_type().to_owned(),
                config_path: self.config_path.as_ref().map(|p| p.display().to_string()),
                config_mtime: None,
                platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            },
            sections,
        }
    }

    fn warn_save_once(&self, message: &str) {
        if !self.warned_save.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: TARGET, "{message}");
        } else {
            tracing::debug!(target: TARGET, "{message}");
        }
    }
}

/// The config file's modification time in Unix seconds, for diagnostics only.
pub(crate) fn config_mtime(config_path: Option<&Path>) -> Option<f64> {
    config_path
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// Saves, retrying transient failures with a short backoff.
pub(crate) fn save_with_retries(store: &dyn CacheStore, file: &CacheFile) -> std::io::Result<()> {
    let mut attempt = 1;
    loop {
        match store.save(file) {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= SAVE_ATTEMPTS || !worth_retrying(&error) => {
                return Err(error);
            }
            Err(error) => {
                tracing::debug!(target: TARGET, attempt, %error, "save failed; retrying");
                std::thread::sleep(Duration::from_millis(5 * 4u64.pow(attempt - 1)));
                attempt += 1;
            }
        }
    }
}

/// The stale sections of a plan, with the reason for each.
pub(crate) fn stale_sections<C: StorageAvailability>(plan: &[Planned]) -> Vec<(C::Kind, Stale)> {
    C::Kind::ALL
        .iter()
        .zip(plan)
        .filter_map(|(&kind, p)| p.as_ref().err().map(|&why| (kind, why)))
        .collect()
}

/// Permission and read-only errors will not go away in milliseconds.
fn worth_retrying(error: &std::io::Error) -> bool {
    !matches!(
        error.kind(),
        std::io::ErrorKind::PermissionDenied
            | std::io::ErrorKind::ReadOnlyFilesystem
            | std::io::ErrorKind::NotFound
            | std::io::ErrorKind::IsADirectory
    )
}

pub(crate) fn file_of(loaded: &Loaded) -> Option<&CacheFile> {
    match loaded {
        Loaded::File(file) => Some(file),
        _ => None,
    }
}

/// The consecutive failures recorded for this very section content before this validation.
fn previous_failures(
    file: Option<&CacheFile>,
    current: &Snapshot,
    name: &str,
    index: usize,
    key: &SectionKey,
) -> u32 {
    let same = |r: &&SectionRecord| r.section_hash.as_str() == key.as_str() && !r.validation_passed;
    let from_file = file.and_then(|f| f.sections.get(name)).filter(same);
    let from_memory = current.entries[index].record.as_ref().filter(same);
    from_file
        .map(|r| r.consecutive_failures.max(1))
        .max(from_memory.map(|r| r.consecutive_failures.max(1)))
        .unwrap_or(0)
}

fn section_hash(key: &SectionKey) -> SectionHash {
    SectionHash::new(key.as_str()).expect("a SectionKey is always 64 lowercase hex digits")
}

fn truncate_to_micros(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_micros(d.as_micros() as u64),
        Err(_) => t,
    }
}

fn pending_entry(configured: bool, now: SystemTime) -> Entry {
    Entry {
        availability: Availability {
            enabled: false,
            validation_passed: false,
            last_error: None,
            errors: Vec::new(),
            warnings: Vec::new(),
            checked_at: now,
            duration: Duration::ZERO,
            source: if configured {
                Source::Pending
            } else {
                Source::Unconfigured
            },
        },
        record: None,
    }
}

/// The key of one section in `context`; a panic in the user's code (its `Serialize`, its
/// `key_with`) is an error, never a panic out of `open`.
fn section_key_of<C: StorageAvailability>(
    config: &C,
    kind: C::Kind,
    context: &KeyContext,
) -> Result<SectionKey, crate::fingerprint::KeyError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        config.section_key_in(kind, context)
    }))
    .unwrap_or_else(|payload| {
        Err(crate::fingerprint::KeyError::Panicked {
            section: kind.name().to_owned(),
            message: crate::validate::panic_message(&*payload),
        })
    })
}

fn availability_of(record: &SectionRecord, source: Source) -> Availability {
    // An unconfigured section is disabled whatever its record says.
    let configured = source != Source::Unconfigured;
    Availability {
        enabled: configured && record.enabled,
        validation_passed: configured && record.validation_passed,
        last_error: record.last_error.clone(),
        errors: record.errors.clone(),
        warnings: record.warnings.clone(),
        checked_at: record.checked_at.0,
        duration: Duration::try_from_secs_f64(record.duration_ms / 1000.0).unwrap_or_default(),
        source,
    }
}

impl<C: StorageAvailability> fmt::Debug for AvailabilityCache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvailabilityCache")
            .field("config_type", &C::config_type())
            .field("path", &self.path())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Smoke tests with a hand-written config; the full suite is in the `tests` crate.
    use super::*;
    use crate::section::{BlockingValidators, Outcome, UnknownKind};
    use std::sync::atomic::AtomicUsize;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    enum K {
        A,
        B,
    }
    impl fmt::Display for K {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.name())
        }
    }
    impl std::str::FromStr for K {
        type Err = UnknownKind;
        fn from_str(s: &str) -> Result<Self, UnknownKind> {
            K::from_name(s).ok_or_else(|| UnknownKind::new(s, &["a", "b"]))
        }
    }
    impl StorageKind for K {
        const ALL: &'static [Self] = &[K::A, K::B];
        fn name(self) -> &'static str {
            match self {
                K::A => "a",
                K::B => "b",
            }
        }
        fn from_name(name: &str) -> Option<Self> {
            K::ALL.iter().copied().find(|k| k.name() == name)
        }
        fn index(self) -> usize {
            self as usize
        }
    }

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    struct Cfg {
        a: u32,
        b: Option<u32>,
    }
    impl BlockingValidators for Cfg {}
    impl StorageAvailability for Cfg {
        type Kind = K;
        fn config_type() -> &'static str {
            "cache::tests::Cfg"
        }
        fn section_key_in(
            &self,
            kind: K,
            context: &KeyContext,
        ) -> Result<SectionKey, crate::KeyError> {
            let spec = crate::SectionSpec::new(Self::config_type(), kind.name());
            match kind {
                K::A => crate::section_key(&spec, context, Some(&self.a)),
                K::B => crate::section_key(&spec, context, self.b.as_ref()),
            }
        }
        fn validate(&self, kind: K) -> Outcome {
            CALLS.fetch_add(1, Ordering::SeqCst);
            match kind {
                K::A if self.a == 0 => Outcome::failed("zero"),
                _ => Outcome::ok(),
            }
        }
        fn is_configured(&self, kind: K) -> bool {
            kind == K::A || self.b.is_some()
        }
        fn timeout(_: K) -> Option<Duration> {
            None
        }
        fn version(_: K) -> u32 {
            1
        }
        fn app_version() -> &'static str {
            "t"
        }
    }

    /// Hand-written: overrides only `section_key` (the old way), or neither key method.
    struct Legacy {
        implements_section_key: bool,
    }
    impl BlockingValidators for Legacy {}
    impl StorageAvailability for Legacy {
        type Kind = K;
        fn section_key(&self, kind: K) -> SectionKey {
            if self.implements_section_key {
                let spec = crate::SectionSpec::new("cache::tests::Legacy", kind.name());
                crate::section_key(&spec, &KeyContext::new("t"), Some(&1))
                    .unwrap_or_else(|_| SectionKey::never_matching())
            } else {
                crate::fingerprint::default_section_key(|| {
                    self.section_key_in(kind, &KeyContext::new("t"))
                })
            }
        }
        fn validate(&self, _: K) -> Outcome {
            Outcome::ok()
        }
        fn is_configured(&self, _: K) -> bool {
            true
        }
        fn timeout(_: K) -> Option<Duration> {
            None
        }
        fn version(_: K) -> u32 {
            1
        }
        fn app_version() -> &'static str {
            "t"
        }
    }

    #[test]
    fn hand_written_impls_with_only_section_key_or_neither_work() {
        let dir = tempfile::tempdir().unwrap();
        let open = |implements_section_key| {
            AvailabilityCache::builder(Legacy {
                implements_section_key,
            })
            .cache_path(dir.path().join(format!("{implements_section_key}.json")))
            .open()
            .unwrap()
        };
        // Only `section_key`: its keys are used, and reused at the next open.
        assert_eq!(open(true).stats().uncacheable, 0);
        assert_eq!(open(true).status(K::A).source, Source::Cache);
        // Neither: no recursion without end, just uncacheable sections.
        let legacy = Legacy {
            implements_section_key: false,
        };
        assert!(matches!(
            legacy.section_key_in(K::A, &KeyContext::new("t")),
            Err(crate::KeyError::NotImplemented { .. })
        ));
        assert_eq!(legacy.section_key(K::A).len(), 64);
        let cache = open(false);
        assert_eq!(cache.stats().uncacheable, 2);
        assert!(cache.is_available(K::A));
        assert_eq!(open(false).status(K::A).source, Source::Validated);
    }

    #[test]
    fn cold_then_warm_then_changed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("s.yaml");
        let calls = || CALLS.load(Ordering::SeqCst);
        let c = AvailabilityCache::open(Cfg { a: 1, b: None }, &cfg_path).unwrap();
        assert_eq!(calls(), 1);
        assert!(c.is_available(K::A));
        assert_eq!(c.status(K::B).source, Source::Unconfigured);
        assert_eq!(c.stats().saves, 1);
        let c = AvailabilityCache::open(Cfg { a: 1, b: None }, &cfg_path).unwrap();
        assert_eq!(calls(), 1);
        assert_eq!(c.status(K::A).source, Source::Cache);
        assert_eq!(c.stats().saves, 0);
        let c = AvailabilityCache::open(Cfg { a: 0, b: Some(2) }, &cfg_path).unwrap();
        assert_eq!(calls(), 3);
        assert!(!c.is_available(K::A));
        assert_eq!(c.status(K::A).last_error.as_deref(), Some("zero"));
        assert_eq!(c.record(K::A).unwrap().consecutive_failures, 1);
        c.invalidate(K::A);
        let report = c.refresh().unwrap();
        assert_eq!(report.validated, ["a"]);
        assert_eq!(c.record(K::A).unwrap().consecutive_failures, 2);
        assert_eq!(calls(), 4);
    }
}
