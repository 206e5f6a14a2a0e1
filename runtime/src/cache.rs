//! [`AvailabilityCache`]: the published answers, the flags between refreshes, and every
//! public method. The refresh itself is decided by the core (`refresh/`) and performed by
//! a driver (`drive/`).

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use storage_availability_schema::SectionRecord;

use crate::builder::AvailabilityCacheBuilder;
use crate::context::ContextFree;
#[cfg(feature = "tokio")]
use crate::drive;
use crate::error::Error;
use crate::notify::Notifier;
use crate::policy::Recheck;
use crate::refresh::{Core, Snapshot};
use crate::refresher::Refresher;
use crate::section::{Availability, BlockingValidators, Source, StorageAvailability, StorageKind};
use crate::stats::{RefreshReport, Stats};

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
    /// Shared with a background revalidation (`stale_while_revalidate`), which holds only a
    /// `Weak` until it starts.
    inner: Arc<Inner<C>>,
}

impl<C: BlockingValidators> AvailabilityCache<C> {
    /// Opens the cache for `config`, whose config file is `config_path`, with default
    /// options. The cache file goes next to the config file.
    ///
    /// Validates every stale configured section and saves before it returns. Never fails
    /// because of the cache file: problems are recovered from and logged.
    pub fn open(config: C, config_path: impl AsRef<Path>) -> Result<Self, Error>
    where
        C::Context: ContextFree,
    {
        Self::builder(config).config_path(config_path).open()
    }

    /// Revalidates the sections that are stale (changed, expired, failed with the retry due,
    /// or [`invalidate`](Self::invalidate)d), reusing what another process saved meanwhile,
    /// and saves. Readers keep reading the previous answers until it is done; concurrent
    /// calls wait for the running one and then find nothing left to do.
    pub fn refresh(&self) -> Result<RefreshReport, Error> {
        Ok(self.refresh_blocking(Recheck::No))
    }

    /// Revalidates only the sections whose answer in memory is older than their
    /// [`recheck_every`](crate::AvailabilityCacheBuilder::recheck_every) (passed or failed:
    /// the running service's clock), has expired (`max_age`), whose failure backoff is
    /// over, or that were [`invalidate`](Self::invalidate)d; when there are none it returns
    /// at once, without touching the file system. Made to be called from a timer thread in
    /// a long-running service; [`spawn_refresher`](Self::spawn_refresher) does that for you
    /// (`refresh_if_stale_async` is its async form, feature `tokio`).
    ///
    /// # Example
    ///
    /// ```
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config { #[storage(validate = check)] kv: String }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::open(Config { kv: "k".into() }, dir.path().join("s.yaml"))
    ///     .unwrap();
    /// // Everything is fresh: nothing validated, nothing read or written.
    /// let report = cache.refresh_if_stale().unwrap();
    /// assert!(report.validated.is_empty() && !report.saved);
    /// cache.invalidate(ConfigKind::Kv);
    /// assert_eq!(cache.refresh_if_stale().unwrap().validated, ["kv"]);
    /// ```
    pub fn refresh_if_stale(&self) -> Result<RefreshReport, Error> {
        Ok(self.refresh_blocking(Recheck::Due))
    }

    /// Starts a background refresher: it revalidates what is due (as
    /// [`refresh_if_stale`](Self::refresh_if_stale) does) a tenth of `recheck_every` ahead
    /// (at most the validation timeout), so a new answer is usually published before the old
    /// one is `recheck_every` old, then sleeps until the next section falls due (at most a
    /// second, so invalidations are picked up quickly). A task on the current tokio runtime
    /// (feature `tokio`), else a thread named `storage-availability-refresher`. It shares the
    /// cache's single flight, survives panicking validators and refreshes (logged), and
    /// holds the `Arc` until it stops: dropping the returned [`Refresher`] stops it.
    ///
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config { #[storage(validate = check)] kv: String }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = Arc::new(
    ///     AvailabilityCache::builder(Config { kv: "k".into() })
    ///         .config_path(dir.path().join("storage.yaml"))
    ///         .recheck_every(Duration::from_secs(10))
    ///         .open()
    ///         .unwrap(),
    /// );
    /// let _refresher = cache.spawn_refresher(); // runs until dropped
    /// assert!(cache.is_available(ConfigKind::Kv));
    /// ```
    pub fn spawn_refresher(self: &Arc<Self>) -> Refresher {
        crate::refresher::spawn(self)
    }
}

impl<C: StorageAvailability> AvailabilityCache<C> {
    /// A builder with every option.
    pub fn builder(config: C) -> AvailabilityCacheBuilder<C> {
        AvailabilityCacheBuilder::new(config)
    }

    pub(crate) fn new(core: Core<C>) -> Self {
        let sections = C::Kind::ALL.len();
        let pending = core.pending(core.options.clock.now());
        let inner = Inner {
            notifier: Notifier::new(crate::notify::statuses(&pending)),
            available: AtomicU64::new(pending.available_bits()),
            snapshot: ArcSwap::from_pointee(pending),
            core,
            gate: crate::gate::Gate::default(),
            state: Mutex::new(RefreshState {
                invalidations: vec![0; sections],
                answered: vec![0; sections],
                unsaved: false,
            }),
        };
        AvailabilityCache {
            inner: Arc::new(inner),
        }
    }

    /// `true` when the section is configured and validated successfully.
    #[inline]
    pub fn is_available(&self, kind: C::Kind) -> bool {
        let index = kind.index();
        if C::Kind::ALL.len() <= 64 {
            return self.inner.available.load(Ordering::Acquire) >> index & 1 == 1;
        }
        self.read_snapshot(|s| s.entries[index].availability.is_available())
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
        let mut state = self.inner.lock_state();
        let count = &mut state.invalidations[kind.index()];
        *count = count.saturating_add(1);
    }

    /// Deletes the cache file and forgets every result: configured sections are
    /// [`Source::Pending`](crate::Source::Pending) until the next [`refresh`](Self::refresh).
    pub fn clear(&self) -> Result<(), Error> {
        let _gate = self.inner.gate.enter();
        let mut state = self.inner.lock_state();
        self.install(self.inner.core.pending(self.inner.core.options.clock.now()));
        state.unsaved = false;
        if let Some(store) = &self.inner.core.store {
            store.remove().map_err(|source| Error::Io {
                op: "remove cache file",
                path: store.location().map(Path::to_owned).unwrap_or_default(),
                source,
            })?;
        }
        Ok(())
    }

    /// The `recheck_every` of a section: its `#[storage(recheck_secs = N)]`, else the
    /// builder's [`recheck_every`](crate::AvailabilityCacheBuilder::recheck_every).
    ///
    /// ```
    /// use std::time::Duration;
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config { #[storage(validate = check, recheck_secs = 5)] kv: String }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::open(Config { kv: "k".into() }, dir.path().join("s.yaml"))
    ///     .unwrap();
    /// assert_eq!(cache.recheck_every(ConfigKind::Kv), Duration::from_secs(5));
    /// ```
    pub fn recheck_every(&self, kind: C::Kind) -> Duration {
        self.inner.core.recheck_every(kind)
    }

    /// Calls `callback` after every refresh in which an answer changed (a section went
    /// down, came back, or its error or warnings changed), with that refresh's report,
    /// on the thread that ran the refresh, after the new answers are published. A panic
    /// in the callback is caught and logged. Callbacks stay for the cache's lifetime.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config { #[storage(validate = check)] kv: String }
    /// fn check(_: &String) -> Outcome { Outcome::failed("unreachable") }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::builder(Config { kv: "k".into() })
    ///     .config_path(dir.path().join("storage.yaml"))
    ///     .persist(false)
    ///     .open()
    ///     .unwrap();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = Arc::clone(&seen);
    /// cache.on_change(move |report| log.lock().unwrap().extend(report.changed.clone()));
    /// cache.invalidate(ConfigKind::Kv);
    /// cache.refresh().unwrap(); // Same failure: no change, no call.
    /// assert!(seen.lock().unwrap().is_empty());
    /// ```
    pub fn on_change(&self, callback: impl Fn(&RefreshReport) + Send + Sync + 'static) {
        self.inner.notifier.add(Arc::new(callback));
    }

    /// A `tokio::sync::watch` receiver of every section's answer, updated after each
    /// refresh in which an answer changed (feature `tokio`). The value it holds at first is
    /// the latest published one; `changed().await` waits for the next change.
    ///
    /// ```
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config { #[storage(validate = check)] kv: String }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::open(Config { kv: "k".into() }, dir.path().join("s.yaml"))
    ///     .unwrap();
    /// let statuses = cache.subscribe();
    /// assert!(statuses.borrow()[0].1.is_available());
    /// ```
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<crate::Statuses<C::Kind>> {
        self.inner.notifier.subscribe()
    }

    /// What the cache did since it was opened.
    pub fn stats(&self) -> Stats {
        self.inner.core.stats.snapshot()
    }

    /// The cache file's path; `None` when results are kept in memory only.
    pub fn path(&self) -> Option<&Path> {
        self.inner.core.path()
    }

    /// The config this cache answers for.
    pub fn config(&self) -> &C {
        &self.inner.core.config
    }

    /// The JSON Schema of this config's cache file: the `sections` object lists exactly the
    /// config's section names and rejects any other.
    pub fn json_schema() -> schemars::Schema {
        let names: Vec<&str> = C::Kind::ALL.iter().map(|k| k.name()).collect();
        storage_availability_schema::schema_for_sections(&names)
    }

    /// Lock-free: `arc-swap`'s `load` borrows the current snapshot without touching a lock
    /// or the reference count on the fast path.
    #[inline]
    fn read_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        f(&self.inner.snapshot.load())
    }

    /// The one place a new snapshot is published to readers outside a refresh.
    fn install(&self, snapshot: Snapshot) {
        self.inner.store(Arc::new(snapshot));
    }

    /// How long the refresher sleeps before its next look (`refresher.rs`).
    pub(crate) fn refresher_sleep(&self) -> Duration {
        let core = &self.inner.core;
        let now = core.options.clock.now();
        let next = crate::refresher::next_due(core, &self.inner.snapshot.load(), now);
        crate::refresher::sleep_for(now, next)
    }

    /// The blocking refresh: the core's steps on this thread.
    pub(crate) fn refresh_blocking(&self, recheck: Recheck) -> RefreshReport {
        self.inner.refresh_blocking(recheck)
    }

    /// The async refresh: the core's steps on the tokio driver.
    #[cfg(feature = "tokio")]
    pub(crate) async fn refresh_tokio(&self, recheck: Recheck) -> RefreshReport {
        self.inner.refresh_tokio(recheck).await
    }

    /// After a start that answered from expired passed results (`stale_while_revalidate`):
    /// the cache's state, for one background refresh (`Recheck::No`, through the gate like
    /// any other, counted and saved) to revalidate them; `None` if nothing was served stale.
    fn served_stale(&self) -> Option<Weak<Inner<C>>> {
        let stale = |s: &Snapshot| {
            s.entries
                .iter()
                .any(|e| e.availability.source == Source::Stale)
        };
        self.read_snapshot(stale).then(|| {
            tracing::info!(target: "storage_availability",
                "revalidating the answers served stale in the background");
            Arc::downgrade(&self.inner)
        })
    }

    /// [`served_stale`](Self::served_stale) on a thread; a no-op if the cache is dropped first.
    pub(crate) fn revalidate_stale(&self) {
        let Some(weak) = self.served_stale() else {
            return;
        };
        let revalidate = move || weak.upgrade().map(|i| i.refresh_blocking(Recheck::No));
        let thread = std::thread::Builder::new().name("storage-availability-revalidate".into());
        if let Err(error) = thread.spawn(revalidate) {
            tracing::warn!(target: "storage_availability", %error,
                "cannot start the background revalidation; stale answers stay until the next refresh");
        }
    }

    /// [`served_stale`](Self::served_stale) as a task on the current tokio runtime.
    #[cfg(feature = "tokio")]
    pub(crate) fn revalidate_stale_async(&self) {
        if let Some(weak) = self.served_stale() {
            tokio::spawn(async move {
                if let Some(inner) = weak.upgrade() {
                    inner.refresh_tokio(Recheck::No).await;
                }
            });
        }
    }
}

#[cfg(feature = "tokio")]
impl<C: StorageAvailability> AvailabilityCache<C> {
    /// [`open`](AvailabilityCache::open) for async services; see
    /// [`AvailabilityCacheBuilder::open_async`].
    ///
    /// # Example
    ///
    /// ```
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config {
    ///     #[storage(validate = ping, async, timeout_ms = 500)]
    ///     kv: String,
    /// }
    /// async fn ping(addr: &String) -> Result<(), String> {
    ///     if addr.is_empty() { Err("no address".into()) } else { Ok(()) }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::open_async(
    ///     Config { kv: "127.0.0.1:6379".into() },
    ///     dir.path().join("storage.yaml"),
    /// )
    /// .await
    /// .unwrap();
    /// assert!(cache.is_available(ConfigKind::Kv));
    /// # }
    /// ```
    pub async fn open_async(config: C, config_path: impl AsRef<Path>) -> Result<Self, Error>
    where
        C::Context: ContextFree,
    {
        Self::builder(config)
            .config_path(config_path)
            .open_async()
            .await
    }

    /// [`refresh`](AvailabilityCache::refresh) for async services.
    pub async fn refresh_async(&self) -> Result<RefreshReport, Error> {
        drive::tokio::require_runtime("refresh_async")?;
        Ok(self.refresh_tokio(Recheck::No).await)
    }

    /// Revalidates only sections whose answer in memory is older than their
    /// [`recheck_every`](crate::AvailabilityCacheBuilder::recheck_every), has expired, whose
    /// failure backoff is over, or that were [`invalidate`](AvailabilityCache::invalidate)d
    /// (see [`refresh_if_stale`](AvailabilityCache::refresh_if_stale)); when there are none
    /// it returns at once, without touching the file system. Made to be called from a
    /// `tokio::time::interval` in a long-running service:
    ///
    /// ```no_run
    /// # use std::{sync::Arc, time::Duration};
    /// # use storage_availability::{AvailabilityCache, StorageAvailability};
    /// # async fn keep_fresh<C: StorageAvailability>(cache: Arc<AvailabilityCache<C>>) {
    /// let mut every_minute = tokio::time::interval(Duration::from_secs(60));
    /// loop {
    ///     every_minute.tick().await;
    ///     if let Err(error) = cache.refresh_if_stale_async().await {
    ///         tracing::warn!(%error, "availability refresh failed");
    ///     }
    /// }
    /// # }
    /// ```
    pub async fn refresh_if_stale_async(&self) -> Result<RefreshReport, Error> {
        drive::tokio::require_runtime("refresh_if_stale_async")?;
        Ok(self.refresh_tokio(Recheck::Due).await)
    }

    /// [`spawn_refresher`](Self::spawn_refresher) for any config, including those with
    /// `async` validators: always a tokio task on the current runtime, or
    /// [`Error::NoAsyncRuntime`] outside one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config { #[storage(validate = ping, async)] kv: String }
    /// async fn ping(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = Arc::new(
    ///     AvailabilityCache::open_async(Config { kv: "k".into() }, dir.path().join("s.yaml"))
    ///         .await
    ///         .unwrap(),
    /// );
    /// let refresher = cache.spawn_refresher_async().unwrap();
    /// refresher.stop();
    /// # }
    /// ```
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn spawn_refresher_async(self: &Arc<Self>) -> Result<Refresher, Error> {
        drive::tokio::require_runtime("spawn_refresher_async")?;
        Ok(crate::refresher::spawn_task(self))
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

mod inner;
#[cfg(test)]
mod tests;

use inner::{Inner, RefreshState};
