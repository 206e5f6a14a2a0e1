//! The cache's shared state and the steps every refresh shares: begin (read the flags),
//! run a driver, publish (store the snapshot, record the flags, tell the subscribers).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::drive;
use crate::notify::Notifier;
use crate::policy::Recheck;
use crate::refresh::{Core, Done, RefreshRun, Snapshot};
use crate::section::{StorageAvailability, StorageKind};
use crate::stats::{RefreshReport, bump};

/// The cache's state: everything a refresh touches.
pub(super) struct Inner<C: StorageAvailability> {
    /// What every refresh works from: config, keys, options, stores, counters.
    pub(super) core: Core<C>,
    /// What readers see: replaced whole by each refresh, so a reader sees the old or the new.
    /// Published with `arc-swap`: a reader never takes a lock and never waits for a writer.
    pub(super) snapshot: ArcSwap<Snapshot>,
    /// `is_available` of every section as one bit per section, published with each snapshot
    /// (one atomic load for a reader); only for configs of at most 64 sections, the others
    /// read the snapshot.
    pub(super) available: AtomicU64,
    /// Entered for a whole refresh: at most one validation per section in this process.
    pub(super) gate: crate::gate::Gate,
    /// Flags between refreshes; locked only briefly, never across validation.
    pub(super) state: Mutex<RefreshState>,
    /// Change subscribers, told after each publish (`notify.rs`).
    pub(super) notifier: Notifier<C::Kind>,
}

#[derive(Debug)]
pub(super) struct RefreshState {
    /// Per section, how many times it was [`invalidate`](AvailabilityCache::invalidate)d.
    pub(super) invalidations: Vec<u64>,
    /// Per section, the invalidations that a finished validation answered: the section is
    /// revalidated whatever the file says while `invalidations > answered`. A refresh
    /// clears only what it saw when it began, so an invalidation made while it validates is
    /// never lost.
    pub(super) answered: Vec<u64>,
    /// The last save failed: save again at the next refresh even if nothing is stale.
    pub(super) unsaved: bool,
}

impl<C: StorageAvailability> Inner<C> {
    pub(super) fn lock_state(&self) -> MutexGuard<'_, RefreshState> {
        // A panic cannot leave the state inconsistent (it is flags), so poisoning is
        // ignored rather than turned into a failure.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a refresh: what readers see now, and the flags to honour.
    pub(super) fn begin(&self, recheck: Recheck) -> RefreshRun {
        bump(&self.core.stats.refreshes, 1);
        let state = self.lock_state();
        RefreshRun {
            current: self.snapshot.load_full(),
            forced: state
                .invalidations
                .iter()
                .zip(&state.answered)
                .map(|(made, answered)| made > answered)
                .collect(),
            seen: state.invalidations.clone(),
            unsaved: state.unsaved && self.core.store.is_some(),
            recheck,
        }
    }

    /// The one place a snapshot is stored: readers of `status` see it, and readers of
    /// `is_available` see its bits.
    pub(super) fn store(&self, snapshot: Arc<Snapshot>) {
        let available = snapshot.available_bits();
        self.snapshot.store(snapshot);
        self.available.store(available, Ordering::Release);
    }

    /// Ends a refresh: records the flags and publishes the new answers.
    pub(super) fn publish(&self, run: &RefreshRun, done: Done, started: Instant) -> RefreshReport {
        let Done {
            snapshot,
            mut report,
            validated,
            unsaved,
        } = done;
        {
            let mut state = self.lock_state();
            if let Some(unsaved) = unsaved {
                state.unsaved = unsaved;
            }
            for (index, _) in validated.iter().enumerate().filter(|(_, v)| **v) {
                // Only the invalidations this refresh saw: later ones stay pending.
                state.answered[index] = state.answered[index].max(run.seen[index]);
            }
        }
        crate::metrics::published(
            C::Kind::ALL
                .iter()
                .zip(&snapshot.entries)
                .map(|(kind, entry)| (kind.name(), entry.availability.is_available())),
            &report,
            &self.core.stats,
        );
        let snapshot = Arc::new(snapshot);
        self.store(Arc::clone(&snapshot));
        report.duration = started.elapsed();
        self.notifier.publish(&report, &snapshot, &self.core.stats);
        report
    }

    /// The blocking refresh: the core's steps on this thread.
    pub(super) fn refresh_blocking(&self, recheck: Recheck) -> RefreshReport {
        let started = Instant::now();
        let _gate = self.gate.enter();
        let run = self.begin(recheck);
        let done = drive::blocking::refresh(&self.core, &run);
        self.publish(&run, done, started)
    }

    /// The async refresh: the core's steps on the tokio driver.
    #[cfg(feature = "tokio")]
    pub(super) async fn refresh_tokio(&self, recheck: Recheck) -> RefreshReport {
        let started = Instant::now();
        let _gate = self.gate.enter_async().await;
        let run = self.begin(recheck);
        let done = drive::tokio::refresh(&self.core, &run).await;
        self.publish(&run, done, started)
    }
}
