//! The async entry points (feature `tokio`): `open_async`, `refresh_async`,
//! `refresh_if_stale_async`.
//!
//! The phases are those of the blocking refresh; every file operation and the wait for the
//! cross-process lock run on `spawn_blocking`, so no runtime worker ever blocks on them.
//! Cancellation safety: the in-process gate and the file lock are guards, released when the
//! future is dropped; a save already handed to a blocking thread finishes there, holding the
//! lock until it is done, and the atomic write never leaves a partial file or a temp file.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::builder::AvailabilityCacheBuilder;
use crate::cache::{AvailabilityCache, RefreshReport, config_mtime, save_with_retries};
use crate::context::{ContextFree, ContextState};
use crate::error::Error;
use crate::refresh::{Decision, Io, Prepare, Ready};
use crate::section::StorageAvailability;
use crate::store::{CacheStore, Loaded, LockOutcome};
use crate::validate_async;

/// Runs `f` on a blocking thread with the store; `None` if the task could not finish
/// (the runtime is shutting down, or `f` panicked).
async fn on_blocking_thread<R, F>(store: &Arc<dyn CacheStore>, f: F) -> Option<R>
where
    R: Send + 'static,
    F: FnOnce(&dyn CacheStore) -> R + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .ok()
}

/// The async paths need a tokio runtime (for `spawn_blocking` and timers): polled from
/// another executor, they answer with a typed error instead of tokio's panic.
fn require_runtime(operation: &'static str) -> Result<(), Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Ok(()),
        Err(_) => Err(Error::NoAsyncRuntime { operation }),
    }
}

impl<C: StorageAvailability, X> AvailabilityCacheBuilder<C, X> {
    /// [`open`](AvailabilityCacheBuilder::open) for async services: async validators run
    /// concurrently on the current runtime, blocking ones on `spawn_blocking`, and file I/O
    /// and lock waits never block a runtime worker. Works for every config, including those
    /// with `#[storage(validate = path, async)]` sections.
    pub async fn open_async(self) -> Result<AvailabilityCache<C>, Error>
    where
        X: ContextState<C>,
    {
        require_runtime("open_async")?;
        let cache = self.build()?;
        cache.refresh_async_now(false).await;
        Ok(cache)
    }
}

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
        require_runtime("refresh_async")?;
        Ok(self.refresh_async_now(false).await)
    }

    /// Revalidates only sections whose answer in memory has expired, whose failure backoff is
    /// over, or that were [`invalidate`](AvailabilityCache::invalidate)d; when there are none
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
        require_runtime("refresh_if_stale_async")?;
        Ok(self.refresh_async_now(true).await)
    }

    /// The async refresh. With `only_if_stale`, nothing is read unless the answers in memory
    /// have something stale (or unsaved).
    pub(crate) async fn refresh_async_now(&self, only_if_stale: bool) -> RefreshReport {
        let started = Instant::now();
        let _gate = self.gate_enter_async().await;
        let run = self.begin();
        let now = || self.options.clock.now();
        let (max_bytes, timeout) = (self.options.max_file_bytes, self.options.lock_timeout);
        // The first steps: the core decides, a blocking thread performs each file step.
        let (mut core, mut decision) =
            Prepare::start(self, &run, self.store.as_ref(), only_if_stale, now());
        let Ready {
            loaded,
            mut plan,
            mut lock,
            may_save,
        } = loop {
            decision = match decision {
                Decision::Perform(Io::Load(store)) => {
                    let loaded = on_blocking_thread(store, move |s| s.load(max_bytes)).await;
                    core.loaded(loaded.unwrap_or(Loaded::Missing), now())
                }
                Decision::Perform(Io::Lock(store)) => {
                    let outcome = on_blocking_thread(store, move |s| s.lock(timeout))
                        .await
                        .unwrap_or_else(|| LockOutcome::Unavailable("the lock task failed".into()));
                    core.locked(outcome)
                }
                Decision::Perform(Io::Reload(store)) => {
                    let (loaded, swept) =
                        on_blocking_thread(store, move |s| (s.load(max_bytes), s.sweep()))
                            .await
                            .unwrap_or((Loaded::Missing, 0));
                    core.reloaded(loaded, swept, now())
                }
                Decision::Perform(Io::Quarantine(store)) => {
                    let now = now();
                    let result = on_blocking_thread(store, move |s| s.quarantine(now))
                        .await
                        .unwrap_or_else(|| {
                            Err(std::io::Error::other("the quarantine task failed"))
                        });
                    core.quarantined(result)
                }
                Decision::Finish(plan) => return self.finish(&run, plan, &[], None, started),
                Decision::Validate(ready) => break ready,
            };
        };

        // 3. Fleet store (`fleet/`), then validate: in rounds, what this host must validate
        //    first, then what other hosts' leases leave.
        let mut fleet = self.fleet_claim_async(&mut plan).await;
        let mut stale = Vec::new();
        loop {
            let round = self.fleet_ready(fleet.as_ref(), &plan);
            if !round.is_empty() {
                let jobs = self.jobs(&round);
                let finished = validate_async::run(
                    &self.config,
                    &self.validator_context,
                    &jobs,
                    self.options.max_parallel,
                )
                .await;
                self.apply(&mut plan, finished, &loaded, &run, &round, started);
                stale.extend(round);
            }
            if !self.fleet_settle_async(&mut fleet, &mut plan).await {
                break;
            }
        }

        // 4. Save, holding the lock until the save is done even if this future is dropped.
        let saved = match &self.store {
            Some(store) if may_save => {
                let mut file = self.file_from(&plan);
                let config_path = self.config_path.clone();
                let lock = lock.take();
                Some(
                    on_blocking_thread(store, move |s| {
                        file.metadata.config_mtime = config_mtime(config_path.as_deref());
                        let result = save_with_retries(s, &file);
                        drop(lock);
                        result
                    })
                    .await
                    .unwrap_or_else(|| Err(std::io::Error::other("the save task failed"))),
                )
            }
            _ => None,
        };
        drop(lock);
        self.finish(&run, plan, &stale, saved, started)
    }
}
