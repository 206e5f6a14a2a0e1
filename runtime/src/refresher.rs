//! The running service's clock (`recheck_every`) and the built-in background refresher.
//!
//! Start-up and a running service ask different questions: `max_age` says how old an answer
//! a *start* may reuse; `recheck_every` says how often a *running* service revalidates.
//! [`Recheck`] tells a refresh which of the two it answers; the rule itself is
//! [`policy::recheck`], applied by the core's plan (`refresh/plan.rs`). The refresher
//! ([`AvailabilityCache::spawn_refresher`]) runs `refresh_if_stale` with refresh-ahead, then
//! sleeps until the next section falls due ([`next_due`]), bounded by [`MAX_SLEEP`]. Single flight comes from the cache's gate:
//! the refresher's refresh and any other never run at once.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::cache::AvailabilityCache;
use crate::policy;
use crate::refresh::{Core, Snapshot};
use crate::section::{BlockingValidators, Source, StorageAvailability, StorageKind};

const TARGET: &str = "storage_availability";

/// The longest the refresher sleeps between two looks (so an
/// [`invalidate`](AvailabilityCache::invalidate) is acted on within it).
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(1);
/// The shortest (so a section that stays due cannot make it spin).
pub(crate) const MIN_SLEEP: Duration = Duration::from_millis(20);

pub(crate) use crate::policy::Recheck;

/// When the refresher should next look: the earliest time at which a configured section of
/// `snapshot` falls due (its `recheck_every` minus the refresh-ahead margin, or earlier if
/// its `max_age` or failure backoff ends first); `now` for a section without an answer or
/// answered stale; `None` when nothing is configured.
pub(crate) fn next_due<C: StorageAvailability>(
    core: &Core<C>,
    snapshot: &Snapshot,
    now: SystemTime,
) -> Option<SystemTime> {
    C::Kind::ALL
        .iter()
        .filter(|&&kind| core.config.is_configured(kind))
        .map(|&kind| {
            let entry = &snapshot.entries[kind.index()];
            match &entry.record {
                None => now,
                Some(_) if entry.availability.source == Source::Stale => now,
                Some(record) => {
                    let checked_at = record.checked_at.0;
                    let ahead = core.ahead_of(kind, Recheck::Ahead);
                    let recheck =
                        policy::recheck_due_at(checked_at, core.recheck_every(kind), ahead);
                    let start_rule = if record.validation_passed {
                        C::max_age(kind)
                            .or(core.options.max_age)
                            .and_then(|age| checked_at.checked_add(age))
                    } else {
                        checked_at.checked_add(core.options.backoff(record.consecutive_failures))
                    };
                    start_rule.map_or(recheck, |t| t.min(recheck))
                }
            }
        })
        .min()
}

/// How long the refresher sleeps at `now` before its next look, given the next due time.
pub(crate) fn sleep_for(now: SystemTime, next_due: Option<SystemTime>) -> Duration {
    next_due
        .map_or(MAX_SLEEP, |due| due.duration_since(now).unwrap_or_default())
        .clamp(MIN_SLEEP, MAX_SLEEP)
}

/// The stop signal shared by a refresher and its handle.
#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
    #[cfg(feature = "tokio")]
    notify: tokio::sync::Notify,
}

impl Stop {
    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
        #[cfg(feature = "tokio")]
        self.notify.notify_one();
    }

    fn is_stopped(&self) -> bool {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps up to `wait`; `true` if stopped meanwhile.
    fn sleep(&self, wait: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, wait, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }
}

#[derive(Debug)]
enum Worker {
    Thread(std::thread::JoinHandle<()>),
    #[cfg(feature = "tokio")]
    Task(tokio::task::JoinHandle<()>),
}

/// The handle of a background refresher ([`AvailabilityCache::spawn_refresher`]).
/// Dropping it stops the refresher (a refresh under way finishes first, in the
/// background); [`stop`](Refresher::stop) stops it and waits for it.
#[derive(Debug)]
#[must_use = "dropping the handle stops the refresher"]
pub struct Refresher {
    stop: Arc<Stop>,
    worker: Option<Worker>,
}

impl Refresher {
    /// Stops the refresher and waits until it has ended: a thread is joined (after the
    /// refresh under way, if any); a tokio task is aborted at its next await point (a
    /// refresh leaves no held lock and no partial file when cancelled).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config { #[storage(validate = check)] kv: String }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let cache = Arc::new(
    ///     AvailabilityCache::open(Config { kv: "k".into() }, dir.path().join("s.yaml")).unwrap(),
    /// );
    /// let refresher = cache.spawn_refresher();
    /// refresher.stop();
    /// ```
    pub fn stop(mut self) {
        self.stop.stop();
        match self.worker.take() {
            Some(Worker::Thread(thread)) => {
                let joined = thread.join();
                if joined.is_err() {
                    tracing::warn!(target: TARGET, "the availability refresher thread panicked");
                }
            }
            #[cfg(feature = "tokio")]
            Some(Worker::Task(task)) => task.abort(),
            _ => {}
        }
    }

    /// `true` while the refresher runs (it ends only when stopped).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let cache = Arc::new(
    /// #     AvailabilityCache::open(Config { kv: "k".into() }, dir.path().join("s.yaml")).unwrap(),
    /// # );
    /// let refresher = cache.spawn_refresher();
    /// assert!(refresher.is_running());
    /// ```
    pub fn is_running(&self) -> bool {
        match &self.worker {
            Some(Worker::Thread(thread)) => !thread.is_finished(),
            #[cfg(feature = "tokio")]
            Some(Worker::Task(task)) => !task.is_finished(),
            None => false,
        }
    }
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.stop.stop();
        #[cfg(feature = "tokio")]
        if let Some(Worker::Task(task)) = &self.worker {
            task.abort();
        }
    }
}

/// [`AvailabilityCache::spawn_refresher`]: a task on the current tokio runtime (feature
/// `tokio`), else a named thread.
pub(crate) fn spawn<C: BlockingValidators>(cache: &Arc<AvailabilityCache<C>>) -> Refresher {
    #[cfg(feature = "tokio")]
    if tokio::runtime::Handle::try_current().is_ok() {
        return spawn_task(cache);
    }
    let stop = Arc::new(Stop::default());
    let (cache, signal) = (Arc::clone(cache), Arc::clone(&stop));
    let spawned = std::thread::Builder::new()
        .name("storage-availability-refresher".to_owned())
        .spawn(move || run_thread(&cache, &signal));
    let worker = match spawned {
        Ok(thread) => Some(Worker::Thread(thread)),
        Err(error) => {
            tracing::warn!(target: TARGET, %error,
                "cannot start the availability refresher thread; answers are refreshed only \
                 when refresh_if_stale is called");
            None
        }
    };
    Refresher { stop, worker }
}

fn run_thread<C: BlockingValidators>(cache: &AvailabilityCache<C>, stop: &Stop) {
    while !stop.is_stopped() {
        let refresh = std::panic::AssertUnwindSafe(|| cache.refresh_blocking(Recheck::Ahead));
        if let Err(payload) = std::panic::catch_unwind(refresh) {
            tracing::warn!(target: TARGET, panic = %crate::validate::panic_message(&*payload),
                "a background refresh panicked; the refresher goes on");
        }
        if stop.sleep(cache.refresher_sleep()) {
            break;
        }
    }
}

/// The refresher as a task on the current tokio runtime.
#[cfg(feature = "tokio")]
pub(crate) fn spawn_task<C: StorageAvailability>(cache: &Arc<AvailabilityCache<C>>) -> Refresher {
    let stop = Arc::new(Stop::default());
    let (cache, signal) = (Arc::clone(cache), Arc::clone(&stop));
    let task = tokio::spawn(async move {
        while !signal.is_stopped() {
            let this = Arc::clone(&cache);
            // Its own task, so that a panic of the refresh is caught as a `JoinError`.
            let refresh = tokio::spawn(async move { this.refresh_tokio(Recheck::Ahead).await });
            if let Err(error) = refresh.await
                && error.is_panic()
            {
                tracing::warn!(target: TARGET,
                    "a background refresh panicked; the refresher goes on");
            }
            let wait = cache.refresher_sleep();
            let _ = tokio::time::timeout(wait, signal.notify.notified()).await;
        }
    });
    Refresher {
        stop,
        worker: Some(Worker::Task(task)),
    }
}

#[cfg(test)]
mod tests {
    //! The refresher's schedule in simulated time: a pure model of its loop (look, refresh
    //! what is due with the cache's rule, sleep per `sleep_for`), driven by `ManualClock`-like
    //! time, with validations that take random times and other callers that refresh at
    //! random moments through the same single flight.
    use super::*;
    use proptest::prelude::*;

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_millis(1_800_000_000_000 + ms)
    }

    #[test]
    fn only_a_running_services_refreshes_skip_the_file_when_nothing_is_stale() {
        assert!(!Recheck::No.only_if_stale());
        assert!(!Recheck::Start.only_if_stale());
        assert!(Recheck::Due.only_if_stale());
        assert!(Recheck::Ahead.only_if_stale());
    }

    proptest! {
        #[test]
        fn sleep_is_bounded_and_reaches_the_due_time(now in 0u64..100_000, due in 0u64..100_000) {
            let wait = sleep_for(at(now), Some(at(due)));
            prop_assert!(wait >= MIN_SLEEP && wait <= MAX_SLEEP);
            if due > now {
                prop_assert!(at(now) + wait <= at(due).max(at(now) + MIN_SLEEP));
            }
        }

        /// One section, rechecked every `every` ms with a refresh-ahead margin: the
        /// refresher's looks and other callers' `refresh_if_stale` share one single flight;
        /// no two refreshes overlap and the starts of two validations of the section are
        /// never closer than `every - ahead` (`every` itself for `refresh_if_stale`).
        #[test]
        fn never_two_at_once_never_more_often_than_recheck(
            every in 100u64..5_000,
            durations in proptest::collection::vec(0u64..400, 1..40),
            callers in proptest::collection::vec(0u64..3_000, 0..40),
        ) {
            let every_d = Duration::from_millis(every);
            let timeout = Duration::from_millis(400);
            let ahead = policy::refresh_ahead(every_d, timeout);
            // Events: the refresher's looks and other callers' refresh_if_stale, in time.
            let mut now = 0u64;
            let mut busy_until = 0u64; // single flight: a refresh that starts waits for it
            let mut checked_at: Option<u64> = None;
            let mut starts: Vec<(u64, Duration)> = Vec::new();
            let mut intervals: Vec<(u64, u64)> = Vec::new();
            let mut callers = callers.into_iter();
            let mut durations = durations.into_iter().cycle();
            for _ in 0..200 {
                // The refresher looks (with refresh-ahead), or another caller (without).
                let (start, lead) = match callers.next() {
                    Some(gap) if gap % 2 == 0 => (now + gap, Duration::ZERO),
                    _ => (now, ahead),
                };
                let start = start.max(busy_until);
                let due = match checked_at {
                    None => true,
                    Some(c) => policy::recheck(at(c), at(start), every_d, lead).is_err(),
                };
                let mut end = start;
                if due {
                    let took = durations.next().unwrap_or(0);
                    end = start + took;
                    starts.push((start, lead));
                    checked_at = Some(end);
                }
                intervals.push((start, end));
                busy_until = end;
                let next = checked_at.map(|c| {
                    policy::recheck_due_at(at(c), every_d, ahead)
                });
                now = end + sleep_for(at(end), next).as_millis() as u64;
            }
            for pair in intervals.windows(2) {
                prop_assert!(pair[0].1 <= pair[1].0, "two refreshes overlapped: {pair:?}");
            }
            for pair in starts.windows(2) {
                let gap = Duration::from_millis(pair[1].0 - pair[0].0);
                prop_assert!(gap >= every_d - pair[1].1, "revalidated after {gap:?} < {every_d:?} - {:?}", pair[1].1);
            }
        }
    }
}
