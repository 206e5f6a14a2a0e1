//! The refresh core: the order of a refresh's first steps (read, lock, read again, sweep,
//! quarantine) and every decision between them, without I/O and without reading the clock.
//! A driver (the blocking one in `cache.rs`, the tokio one in `async_cache.rs`) asks
//! [`Prepare`] what to do, performs that one step (on its thread, or on `spawn_blocking`),
//! and hands the result back with the time; so the two drivers cannot take the steps in
//! different orders (`tests/tests/parity.rs` checks they do not).
//!
//! The core ends in one of two [`Decision`]s: [`Finish`](Decision::Finish) (nothing is
//! stale: no lock, nothing written) or [`Validate`](Decision::Validate) (what to validate
//! from, holding the lock if it was taken, and whether the file may be written).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::cache::{AvailabilityCache, Planned, RefreshRun, file_of};
use crate::section::StorageAvailability;
use crate::store::{CacheStore, Loaded, LockOutcome, StoreLock};

/// One step for the driver to perform, with the store to perform it on.
pub(crate) enum Io<'a> {
    /// `store.load(max_file_bytes)`, without the lock; then [`Prepare::loaded`].
    Load(&'a Arc<dyn CacheStore>),
    /// `store.lock(lock_timeout)`; then [`Prepare::locked`].
    Lock(&'a Arc<dyn CacheStore>),
    /// Under the lock: `store.load(max_file_bytes)`, then `store.sweep()`; then
    /// [`Prepare::reloaded`].
    Reload(&'a Arc<dyn CacheStore>),
    /// Under the lock, the re-read file is corrupt: `store.quarantine(now)`; then
    /// [`Prepare::quarantined`].
    Quarantine(&'a Arc<dyn CacheStore>),
}

/// What the core decided after a step.
pub(crate) enum Decision<'a> {
    Perform(Io<'a>),
    /// Nothing is stale (or left unsaved): publish this plan, write nothing.
    Finish(Vec<Planned>),
    /// Validate what the plan still has stale (through the fleet first), then save if
    /// allowed.
    Validate(Ready),
}

/// Where validation starts from.
pub(crate) struct Ready {
    /// The last read of the file (for the failure counts it holds).
    pub(crate) loaded: Loaded,
    pub(crate) plan: Vec<Planned>,
    /// Held until the save is done.
    pub(crate) lock: Option<StoreLock>,
    /// `false`: validate, but do not write the file (lock timed out, corrupt file seen
    /// without the lock, a path that is not ours, no store).
    pub(crate) may_save: bool,
}

/// The first steps of one refresh.
pub(crate) struct Prepare<'a, C: StorageAvailability> {
    cache: &'a AvailabilityCache<C>,
    run: &'a RefreshRun,
    store: Option<&'a Arc<dyn CacheStore>>,
    loaded: Loaded,
    /// The plan from the last read.
    plan: Vec<Planned>,
    lock: Option<StoreLock>,
    may_save: bool,
}

impl<'a, C: StorageAvailability> Prepare<'a, C> {
    /// Starts a refresh. With `only_if_stale`, the answers in memory are checked first, and
    /// a refresh with nothing stale in memory ends without any I/O.
    pub(crate) fn start(
        cache: &'a AvailabilityCache<C>,
        run: &'a RefreshRun,
        store: Option<&'a Arc<dyn CacheStore>>,
        only_if_stale: bool,
        now: SystemTime,
    ) -> (Self, Decision<'a>) {
        let prepare = Prepare {
            cache,
            run,
            store,
            loaded: Loaded::Missing,
            plan: Vec::new(),
            lock: None,
            may_save: false,
        };
        let Some(store) = store else {
            // In memory only: nothing to read, lock or save.
            let plan = cache.plan(None, run, now);
            if run.nothing_to_do(&plan) {
                return (prepare, Decision::Finish(plan));
            }
            return (prepare, Decision::Validate(in_memory(plan)));
        };
        if only_if_stale {
            let plan = cache.plan(None, run, now);
            if run.nothing_to_do(&plan) {
                return (prepare, Decision::Finish(plan));
            }
        }
        (prepare, Decision::Perform(Io::Load(store)))
    }

    /// The unlocked read: a warm start ends here.
    pub(crate) fn loaded(&mut self, loaded: Loaded, now: SystemTime) -> Decision<'a> {
        self.read(loaded, now);
        if self.run.nothing_to_do(&self.plan) {
            return Decision::Finish(std::mem::take(&mut self.plan));
        }
        match self.store {
            Some(store) => Decision::Perform(Io::Lock(store)),
            None => self.ready(None),
        }
    }

    /// The lock attempt: logged and counted; without the lock, validate from the unlocked
    /// read and never move or overwrite a corrupt file.
    pub(crate) fn locked(&mut self, outcome: LockOutcome) -> Decision<'a> {
        let Some(store) = self.store else {
            return self.ready(None);
        };
        (self.lock, self.may_save) = self.cache.after_lock(store.as_ref(), outcome);
        if self.lock.is_some() {
            Decision::Perform(Io::Reload(store))
        } else {
            self.ready(None)
        }
    }

    /// The locked re-read and the sweep: a neighbour may have done the work meanwhile.
    pub(crate) fn reloaded(
        &mut self,
        loaded: Loaded,
        swept: usize,
        now: SystemTime,
    ) -> Decision<'a> {
        self.read(loaded, now);
        self.cache.count_swept(swept);
        // A neighbour did the work while we waited: reuse it, write nothing.
        if self.run.nothing_to_do(&self.plan) {
            return Decision::Finish(std::mem::take(&mut self.plan));
        }
        match (self.store, &self.loaded) {
            // Only under the lock, and only now that the work is known to be ours.
            (Some(store), Loaded::Corrupt(_)) => Decision::Perform(Io::Quarantine(store)),
            _ => self.ready(None),
        }
    }

    /// The corrupt file was moved aside (or could not be).
    pub(crate) fn quarantined(&mut self, result: io::Result<Option<PathBuf>>) -> Decision<'a> {
        self.ready(Some(result))
    }

    fn read(&mut self, loaded: Loaded, now: SystemTime) {
        self.loaded = loaded;
        self.plan = self.cache.plan(file_of(&self.loaded), self.run, now);
    }

    /// Recovers from what the last read found (logged, counted) and hands over.
    fn ready(&mut self, quarantined: Option<io::Result<Option<PathBuf>>>) -> Decision<'a> {
        if let Some(store) = self.store {
            self.may_save &= self
                .cache
                .recover(store.as_ref(), &self.loaded, quarantined);
        }
        Decision::Validate(Ready {
            loaded: std::mem::replace(&mut self.loaded, Loaded::Missing),
            plan: std::mem::take(&mut self.plan),
            lock: self.lock.take(),
            may_save: self.may_save,
        })
    }
}

/// No store: nothing read, nothing locked, nothing saved.
fn in_memory(plan: Vec<Planned>) -> Ready {
    Ready {
        loaded: Loaded::Missing,
        plan,
        lock: None,
        may_save: false,
    }
}
