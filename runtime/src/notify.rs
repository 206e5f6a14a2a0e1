//! Change notifications: which sections went down, came back or changed in a refresh
//! (a pure comparison of the answers before and after), their logs and counts, and the
//! subscribers told about them: callbacks (`AvailabilityCache::on_change`) and, with
//! feature `tokio`, a `tokio::sync::watch` of the statuses (`AvailabilityCache::subscribe`).
//! Also the WARN line of every validator failure, timeout and panic.

use std::sync::{Arc, Mutex, PoisonError};

use crate::refresh::Snapshot;
use crate::section::{Availability, Source, StorageKind};
use crate::stats::{Counters, RefreshReport, bump};
use crate::validate::{Ending, Finished};

const TARGET: &str = "storage_availability";

/// Every section's answer at one moment, in declaration order: what
/// [`AvailabilityCache::subscribe`](crate::AvailabilityCache::subscribe) publishes.
pub type Statuses<K> = Arc<Vec<(K, Availability)>>;

pub(crate) type Callback = Arc<dyn Fn(&RefreshReport) + Send + Sync>;

/// The subscribers of one cache.
pub(crate) struct Notifier<K> {
    callbacks: Mutex<Vec<Callback>>,
    #[cfg(feature = "tokio")]
    watch: tokio::sync::watch::Sender<Statuses<K>>,
    #[cfg(not(feature = "tokio"))]
    _kind: std::marker::PhantomData<fn() -> K>,
}

impl<K: StorageKind> Notifier<K> {
    pub(crate) fn new(initial: Vec<(K, Availability)>) -> Self {
        #[cfg(not(feature = "tokio"))]
        let _ = initial;
        Notifier {
            callbacks: Mutex::new(Vec::new()),
            #[cfg(feature = "tokio")]
            watch: tokio::sync::watch::Sender::new(Arc::new(initial)),
            #[cfg(not(feature = "tokio"))]
            _kind: std::marker::PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for Notifier<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

/// Did the answer a reader sees change (availability, error or warnings)?
fn differs(old: &Availability, new: &Availability) -> bool {
    old.enabled != new.enabled
        || old.validation_passed != new.validation_passed
        || old.last_error != new.last_error
        || old.warnings != new.warnings
}

/// Compares the answers before and after a refresh (both in declaration order) and fills
/// the report's `went_down`, `came_back` and `changed`. A section that had no answer yet
/// (pending) neither went down nor came back; its first answer is a change.
pub(crate) fn diff<K: StorageKind>(
    old: &[&Availability],
    new: &[&Availability],
    report: &mut RefreshReport,
) {
    for ((kind, old), new) in K::ALL.iter().zip(old).zip(new) {
        if !differs(old, new) {
            continue;
        }
        report.changed.push(kind.name());
        if old.source == Source::Pending {
            continue;
        }
        match (old.is_available(), new.is_available()) {
            (true, false) => report.went_down.push(kind.name()),
            (false, true) => report.came_back.push(kind.name()),
            _ => {}
        }
    }
}

/// The DEBUG line of a warm start: `open` answered every section without validating.
pub(crate) fn log_start(report: &RefreshReport) {
    if report.validated.is_empty() {
        tracing::debug!(target: TARGET, reused = report.reused.len(), elapsed = ?report.duration,
            "warm start: every section answered from the cache file");
    }
}

/// The WARN line of a validation that did not pass: a failure, a timeout or a panic.
pub(crate) fn log_validation<K: StorageKind>(done: &Finished<K>) {
    if done.outcome.is_ok() {
        return;
    }
    let section = done.kind.name();
    let error = done
        .outcome
        .errors()
        .last()
        .map(String::as_str)
        .unwrap_or("");
    match done.ending {
        Ending::TimedOut => tracing::warn!(target: TARGET, section, error,
            duration = ?done.duration, "validator timed out; the section is unavailable"),
        Ending::Panicked => tracing::warn!(target: TARGET, section, error,
            "validator panicked; the section is unavailable"),
        Ending::Completed => tracing::warn!(target: TARGET, section, error,
            duration = ?done.duration, "validation failed; the section is unavailable"),
    }
}

impl<K: StorageKind> Notifier<K> {
    /// After a refresh published `snapshot`: logs and counts the transitions in `report`
    /// and tells the subscribers when something changed. Called by the cache right after it
    /// installs the new snapshot, outside every lock, for both drivers.
    pub(crate) fn publish(&self, report: &RefreshReport, snapshot: &Snapshot, stats: &Counters) {
        for &section in &report.went_down {
            let error = K::from_name(section)
                .and_then(|kind| {
                    snapshot.entries[kind.index()]
                        .availability
                        .last_error
                        .clone()
                })
                .unwrap_or_default();
            tracing::warn!(target: TARGET, section, %error, "storage section went down");
        }
        for &section in &report.came_back {
            tracing::info!(target: TARGET, section, "storage section came back");
        }
        bump(
            &stats.transitions,
            (report.went_down.len() + report.came_back.len()) as u64,
        );
        if report.changed.is_empty() {
            return;
        }
        #[cfg(feature = "tokio")]
        self.watch.send_replace(Arc::new(statuses::<K>(snapshot)));
        let callbacks = self
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for callback in callbacks {
            let call = std::panic::AssertUnwindSafe(|| callback(report));
            if let Err(payload) = std::panic::catch_unwind(call) {
                tracing::warn!(target: TARGET, panic = %crate::validate::panic_message(&*payload),
                    "an on_change callback panicked; the others were still called");
            }
        }
    }

    /// [`AvailabilityCache::on_change`](crate::AvailabilityCache::on_change).
    pub(crate) fn add(&self, callback: Callback) {
        self.callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(callback);
    }

    /// [`AvailabilityCache::subscribe`](crate::AvailabilityCache::subscribe).
    #[cfg(feature = "tokio")]
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<Statuses<K>> {
        self.watch.subscribe()
    }
}

/// Every section's answer in `snapshot`, in declaration order.
pub(crate) fn statuses<K: StorageKind>(snapshot: &Snapshot) -> Vec<(K, Availability)> {
    K::ALL
        .iter()
        .map(|&k| (k, snapshot.entries[k.index()].availability.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::K;
    use std::time::{Duration, SystemTime};

    fn answer(passed: bool, source: Source, error: Option<&str>) -> Availability {
        Availability {
            enabled: passed,
            validation_passed: passed,
            last_error: error.map(str::to_owned),
            errors: Vec::new(),
            warnings: Vec::new(),
            checked_at: SystemTime::UNIX_EPOCH,
            duration: Duration::ZERO,
            source,
        }
    }

    #[test]
    fn transitions_are_named() {
        let up = answer(true, Source::Cache, None);
        let down = answer(false, Source::Validated, Some("refused"));
        let other_down = answer(false, Source::Validated, Some("timed out"));
        let pending = answer(false, Source::Pending, None);
        let names: Vec<&str> = K::ALL.iter().map(|k| k.name()).collect();
        let mut report = RefreshReport::default();
        diff::<K>(&[&up, &down], &[&down, &up], &mut report);
        assert_eq!(report.went_down, [names[0]]);
        assert_eq!(report.came_back, [names[1]]);
        assert_eq!(report.changed, names);
        // A first answer is a change, not a transition; a new error is a change only.
        let mut report = RefreshReport::default();
        diff::<K>(&[&pending, &down], &[&up, &other_down], &mut report);
        assert!(report.went_down.is_empty() && report.came_back.is_empty());
        assert_eq!(report.changed, names);
    }
}
