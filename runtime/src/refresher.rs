//! The running service's clock (`recheck_every`) and the built-in background refresher.
//!
//! Start-up and a running service ask different questions: `max_age` says how old an answer
//! a *start* may reuse; `recheck_every` says how often a *running* service revalidates.
//! [`Recheck`] tells a refresh which of the two it answers; the rule itself is
//! [`policy::recheck`]. The refresher ([`AvailabilityCache::spawn_refresher`]) runs
//! `refresh_if_stale` with refresh-ahead, then sleeps until the next section falls due
//! ([`next_due`]), bounded by [`MAX_SLEEP`]. Single flight comes from the cache's gate:
//! the refresher's refresh and any other never run at once.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use storage_availability_schema::SectionRecord;

use crate::cache::AvailabilityCache;
use crate::cache::Planned;
use crate::policy::{self, Stale};
use crate::section::{BlockingValidators, Source, StorageAvailability, StorageKind};

const TARGET: &str = "storage_availability";

/// The longest the refresher sleeps between two looks (so an
/// [`invalidate`](AvailabilityCache::invalidate) is acted on within it).
pub(crate) const MAX_SLEEP: Duration = Duration::from_secs(1);
/// The shortest (so a section that stays due cannot make it spin).
pub(crate) const MIN_SLEEP: Duration = Duration::from_millis(20);

/// Which clock a refresh answers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Recheck {
    /// An explicit `refresh`: `max_age` and the failure backoff only.
    #[default]
    No,
    /// A start (`open`): as `No`, and a passed answer may be served stale within the
    /// `stale_while_revalidate` window.
    Start,
    /// `refresh_if_stale`: answers older than `recheck_every` are stale too.
    Due,
    /// The refresher: as `Due`, and a section within its refresh-ahead margin is due.
    Ahead,
}

impl Recheck {
    /// A running service's refresh: nothing is read unless something is stale in memory.
    pub(crate) fn only_if_stale(self) -> bool {
        matches!(self, Recheck::Due | Recheck::Ahead)
    }
}

impl<C: StorageAvailability> AvailabilityCache<C> {
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
        C::recheck_every(kind).unwrap_or(self.options.recheck_every)
    }

    /// The refresh-ahead margin of a section (see [`policy::refresh_ahead`]).
    fn ahead_of(&self, kind: C::Kind, recheck: Recheck) -> Duration {
        match recheck {
            Recheck::Ahead => policy::refresh_ahead(
                self.recheck_every(kind),
                C::timeout(kind).unwrap_or(self.options.validation_timeout),
            ),
            _ => Duration::ZERO,
        }
    }

    /// The plan of a configured section that has a candidate record, given the start's
    /// rule (`fresh`, from `policy::freshness`): the running service's rule on top of it
    /// (in `Due` and `Ahead`, a record older than the section's `recheck_every`, minus the
    /// refresh-ahead margin, is stale, passed or failed), and at a start the
    /// stale-while-revalidate window (an expired passed record is answered as
    /// `Source::Stale`).
    pub(crate) fn running_rule(
        &self,
        recheck: Recheck,
        kind: C::Kind,
        (record, source): (&SectionRecord, Source),
        fresh: Result<(), Stale>,
        now: SystemTime,
    ) -> Planned {
        match (fresh, recheck) {
            (Ok(()), Recheck::No | Recheck::Start) => Ok((record.clone(), source)),
            (Ok(()), Recheck::Due | Recheck::Ahead) => policy::recheck(
                record.checked_at.0,
                now,
                self.recheck_every(kind),
                self.ahead_of(kind, recheck),
            )
            .map(|()| (record.clone(), source)),
            (Err(Stale::Expired), Recheck::Start) if self.serves_stale(kind, record, now) => {
                tracing::info!(target: TARGET, section = kind.name(),
                    "answering with an expired passed result (stale-while-revalidate); \
                     it is revalidated in the background");
                Ok((record.clone(), Source::Stale))
            }
            (Err(why), _) => Err(why),
        }
    }

    /// The plan of a section whose key cannot be computed: validated at every start and
    /// every `refresh`, never reused from the file; but a running service
    /// (`refresh_if_stale`, the refresher) keeps this process's own answer for
    /// `recheck_every` like any other (the config in memory cannot change), instead of
    /// validating it at every look.
    pub(crate) fn uncacheable_rule(
        &self,
        recheck: Recheck,
        kind: C::Kind,
        memory: Option<(&SectionRecord, Source)>,
        now: SystemTime,
    ) -> Planned {
        match (recheck, memory) {
            (Recheck::Due | Recheck::Ahead, Some((record, source))) => policy::recheck(
                record.checked_at.0,
                now,
                self.recheck_every(kind),
                self.ahead_of(kind, recheck),
            )
            .map(|()| (record.clone(), source))
            .map_err(|_| Stale::Uncacheable),
            _ => Err(Stale::Uncacheable),
        }
    }

    /// May a start answer with this expired record at once? Only a passed one, less than
    /// the `stale_while_revalidate` window past its `max_age`.
    fn serves_stale(&self, kind: C::Kind, record: &SectionRecord, now: SystemTime) -> bool {
        let (Some(window), Some(max_age)) = (
            self.options.stale_window,
            C::max_age(kind).or(self.options.max_age),
        ) else {
            return false;
        };
        let age = now.duration_since(record.checked_at.0).unwrap_or_default();
        policy::serves_stale(record.validation_passed, age, max_age, window)
    }

    /// When the refresher should next look: the earliest time at which a configured
    /// section falls due (its `recheck_every` minus the refresh-ahead margin, or earlier if
    /// its `max_age` or failure backoff ends first); `now` for a section without an answer;
    /// `None` when nothing is configured.
    pub(crate) fn next_due(&self, now: SystemTime) -> Option<SystemTime> {
        C::Kind::ALL
            .iter()
            .filter(|&&kind| self.config.is_configured(kind))
            .map(|&kind| match self.record(kind) {
                None => now,
                Some(_) if self.status(kind).source == Source::Stale => now,
                Some(record) => {
                    let checked_at = record.checked_at.0;
                    let ahead = self.ahead_of(kind, Recheck::Ahead);
                    let recheck =
                        policy::recheck_due_at(checked_at, self.recheck_every(kind), ahead);
                    let start_rule = if record.validation_passed {
                        C::max_age(kind)
                            .or(self.options.max_age)
                            .and_then(|age| checked_at.checked_add(age))
                    } else {
                        checked_at.checked_add(self.options.backoff(record.consecutive_failures))
                    };
                    start_rule.map_or(recheck, |t| t.min(recheck))
                }
            })
            .min()
    }
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

impl<C: BlockingValidators> AvailabilityCache<C> {
    /// Starts a background refresher that keeps the answers fresh while the service runs:
    /// it revalidates what is due ([`refresh_if_stale`](Self::refresh_if_stale): answers
    /// older than [`recheck_every`](crate::AvailabilityCacheBuilder::recheck_every), expired
    /// ones, failures whose retry is due, invalidated sections), a little ahead of time (a
    /// tenth of `recheck_every`, at most the validation timeout) so that a new answer is
    /// usually published before the old one is `recheck_every` old, then sleeps until the
    /// next section falls due (at most a second, so invalidations are picked up quickly).
    ///
    /// With feature `tokio`, called inside a tokio runtime, it is a task on that runtime
    /// (using [`refresh_if_stale_async`](Self::refresh_if_stale_async)); otherwise a thread
    /// named `storage-availability-refresher`. It never runs two refreshes at once (it
    /// shares the cache's single flight with every other refresh), survives panicking
    /// validators (each is caught per section) and even a panicking refresh (logged, and it
    /// goes on). It holds the `Arc` until it stops: dropping the returned [`Refresher`]
    /// stops it.
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
        #[cfg(feature = "tokio")]
        if tokio::runtime::Handle::try_current().is_ok() {
            return self.spawn_refresher_task();
        }
        let stop = Arc::new(Stop::default());
        let (cache, signal) = (Arc::clone(self), Arc::clone(&stop));
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
}

fn run_thread<C: BlockingValidators>(cache: &AvailabilityCache<C>, stop: &Stop) {
    while !stop.is_stopped() {
        let refresh = std::panic::AssertUnwindSafe(|| cache.refresh_recheck(Recheck::Ahead));
        if let Err(payload) = std::panic::catch_unwind(refresh) {
            tracing::warn!(target: TARGET, panic = %crate::validate::panic_message(&*payload),
                "a background refresh panicked; the refresher goes on");
        }
        let now = cache.options.clock.now();
        if stop.sleep(sleep_for(now, cache.next_due(now))) {
            break;
        }
    }
}

#[cfg(feature = "tokio")]
impl<C: StorageAvailability> AvailabilityCache<C> {
    /// [`spawn_refresher`](Self::spawn_refresher) for any config, including those with
    /// `async` validators: always a tokio task on the current runtime, or
    /// [`Error::NoAsyncRuntime`](crate::Error::NoAsyncRuntime) outside one.
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
    pub fn spawn_refresher_async(self: &Arc<Self>) -> Result<Refresher, crate::Error> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(crate::Error::NoAsyncRuntime {
                operation: "spawn_refresher_async",
            });
        }
        Ok(self.spawn_refresher_task())
    }

    fn spawn_refresher_task(self: &Arc<Self>) -> Refresher {
        let stop = Arc::new(Stop::default());
        let (cache, signal) = (Arc::clone(self), Arc::clone(&stop));
        let task = tokio::spawn(async move {
            while !signal.is_stopped() {
                let this = Arc::clone(&cache);
                // Its own task, so that a panic of the refresh is caught as a `JoinError`.
                let refresh =
                    tokio::spawn(async move { this.refresh_recheck_async(Recheck::Ahead).await });
                if let Err(error) = refresh.await
                    && error.is_panic()
                {
                    tracing::warn!(target: TARGET,
                        "a background refresh panicked; the refresher goes on");
                }
                let now = cache.options.clock.now();
                let wait = sleep_for(now, cache.next_due(now));
                let _ = tokio::time::timeout(wait, signal.notify.notified()).await;
            }
        });
        Refresher {
            stop,
            worker: Some(Worker::Task(task)),
        }
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
