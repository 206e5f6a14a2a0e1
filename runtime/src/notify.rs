//! Change notifications: which sections went down, came back or changed in a refresh
//! (a pure comparison of the answers before and after), their logs and counts, and the
//! subscribers told about them: callbacks ([`AvailabilityCache::on_change`]) and, with
//! feature `tokio`, a `tokio::sync::watch` of the statuses ([`AvailabilityCache::subscribe`]).
//! Also the WARN line of every validator failure, timeout and panic.

use std::sync::{Arc, Mutex, PoisonError};

use crate::cache::AvailabilityCache;
use crate::section::{Availability, Source, StorageAvailability, StorageKind};
use crate::stats::{RefreshReport, bump};
use crate::validate::{Ending, Finished};

const TARGET: &str = "storage_availability";

/// Every section's answer at one moment, in declaration order: what
/// [`AvailabilityCache::subscribe`] publishes.
pub type Statuses<K> = Arc<Vec<(K, Availability)>>;

type Callback = Arc<dyn Fn(&RefreshReport) + Send + Sync>;

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

impl<C: StorageAvailability> AvailabilityCache<C> {
    /// After a refresh published its answers: logs and counts the transitions in `report`
    /// and tells the subscribers when something changed. Called by both drivers, outside
    /// every lock.
    pub(crate) fn notify_change(&self, report: &RefreshReport) {
        for &section in &report.went_down {
            let error = C::Kind::from_name(section)
                .and_then(|kind| self.status(kind).last_error)
                .unwrap_or_default();
            tracing::warn!(target: TARGET, section, %error, "storage section went down");
        }
        for &section in &report.came_back {
            tracing::info!(target: TARGET, section, "storage section came back");
        }
        bump(
            &self.stats.transitions,
            (report.went_down.len() + report.came_back.len()) as u64,
        );
        if report.changed.is_empty() {
            return;
        }
        #[cfg(feature = "tokio")]
        self.notifier.watch.send_replace(Arc::new(self.statuses()));
        let callbacks = self
            .notifier
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
        self.notifier
            .callbacks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(callback));
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
    /// let now = statuses.borrow();
    /// assert_eq!(now[0].0, ConfigKind::Kv);
    /// assert!(now[0].1.is_available());
    /// ```
    #[cfg(feature = "tokio")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Statuses<C::Kind>> {
        self.notifier.watch.subscribe()
    }
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
