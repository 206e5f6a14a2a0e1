//! The freshness rules: is a record a fresh answer, how long a failure is kept, how failures
//! are counted. Pure functions of their inputs (time is an argument, never read here), used
//! for the records of the file, of memory and of the fleet store alike.

use std::time::{Duration, SystemTime};

use storage_availability_schema::SectionRecord;

use crate::section::{Source, StorageAvailability, StorageKind};

/// The backoff of failed sections never exceeds this (unless `retry_failed_after` does).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(60 * 60);
/// A record checked more than this far in the future is treated as expired (clock skew).
pub(crate) const FUTURE_TOLERANCE: Duration = Duration::from_secs(5 * 60);

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
    /// A running service's `recheck_every` is over (see [`recheck`]).
    RecheckDue,
}

/// Which clock a refresh answers to (see `refresher.rs`).
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

/// What a refresh plans for one section.
#[derive(Debug, Clone)]
pub(crate) enum Planned {
    /// A fresh record to reuse, and where it came from.
    Reuse(SectionRecord, Source),
    /// To validate, and why.
    Stale(Stale),
}

impl Planned {
    pub(crate) fn is_fresh(&self) -> bool {
        matches!(self, Planned::Reuse(..))
    }

    /// Why the section is validated; `None` when it is reused.
    pub(crate) fn stale(&self) -> Option<Stale> {
        match self {
            Planned::Stale(why) => Some(*why),
            Planned::Reuse(..) => None,
        }
    }

    /// The record to reuse (or just validated); `None` while stale.
    pub(crate) fn record(&self) -> Option<&SectionRecord> {
        match self {
            Planned::Reuse(record, _) => Some(record),
            Planned::Stale(_) => None,
        }
    }
}

/// The stale sections of a plan, with the reason for each.
pub(crate) fn stale_sections<C: StorageAvailability>(plan: &[Planned]) -> Vec<(C::Kind, Stale)> {
    C::Kind::ALL
        .iter()
        .zip(plan)
        .filter_map(|(&kind, p)| p.stale().map(|why| (kind, why)))
        .collect()
}

impl Stale {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stale::Missing => "no cached record",
            Stale::Changed => "section changed",
            Stale::Expired => "result expired",
            Stale::RetryDue => "failed, retry due",
            Stale::Future => "timestamp in the future",
            Stale::Invalidated => "invalidated",
            Stale::NotReused => "not reused across starts",
            Stale::Uncacheable => "key cannot be computed",
            Stale::RecheckDue => "recheck due",
        }
    }
}

/// Is `record` a fresh answer, at `now`, for the section whose current key is `key`?
/// A passed result is fresh for `max_age` (`None`: until the section changes); a failed one
/// for [`backoff`]`(retry_failed_after, its consecutive failures)`. A record checked more
/// than [`FUTURE_TOLERANCE`] ahead of `now` is stale; less than that counts as age zero.
pub(crate) fn freshness(
    key: &str,
    record: &SectionRecord,
    now: SystemTime,
    max_age: Option<Duration>,
    retry_failed_after: Duration,
) -> Result<(), Stale> {
    if record.section_hash.as_str() != key {
        return Err(Stale::Changed);
    }
    let age = match now.duration_since(record.checked_at.0) {
        Ok(age) => age,
        Err(ahead) if ahead.duration() > FUTURE_TOLERANCE => return Err(Stale::Future),
        Err(_) => Duration::ZERO,
    };
    if record.validation_passed {
        match max_age {
            Some(max_age) if age >= max_age => Err(Stale::Expired),
            _ => Ok(()),
        }
    } else if age >= backoff(retry_failed_after, record.consecutive_failures) {
        Err(Stale::RetryDue)
    } else {
        Ok(())
    }
}

/// The running service's clock: is an answer checked at `checked_at` still fresh at `now`
/// for a service that rechecks every `recheck_every`, looking `ahead` (the refresher's
/// refresh-ahead margin, zero for `refresh_if_stale`)? Passed and failed answers alike:
/// in a running service `recheck_every` also bounds the retry of a failed section. Applied
/// on top of [`freshness`], never instead of it.
pub(crate) fn recheck(
    checked_at: SystemTime,
    now: SystemTime,
    recheck_every: Duration,
    ahead: Duration,
) -> Result<(), Stale> {
    let age = now.duration_since(checked_at).unwrap_or(Duration::ZERO);
    if age.saturating_add(ahead) >= recheck_every {
        Err(Stale::RecheckDue)
    } else {
        Ok(())
    }
}

/// When an answer checked at `checked_at` falls due under [`recheck`], `ahead` included.
pub(crate) fn recheck_due_at(
    checked_at: SystemTime,
    recheck_every: Duration,
    ahead: Duration,
) -> SystemTime {
    checked_at
        .checked_add(recheck_every.saturating_sub(ahead))
        .unwrap_or(checked_at)
}

/// The refresh-ahead margin of a section: a tenth of its `recheck_every`, at most its
/// validation timeout, so that its new answer is usually published before the old one is
/// `recheck_every` old.
pub(crate) fn refresh_ahead(recheck_every: Duration, timeout: Duration) -> Duration {
    (recheck_every / 10).min(timeout)
}

/// Stale-while-revalidate (RFC 5861): may a start answer at once with a result of `age`
/// whose `max_age` is over? Only a passed one, and only less than `window` past `max_age`.
pub(crate) fn serves_stale(
    passed: bool,
    age: Duration,
    max_age: Duration,
    window: Duration,
) -> bool {
    passed && age < max_age.saturating_add(window)
}

/// `retry_failed_after * 2^(failures - 1)`, capped at [`MAX_BACKOFF`] (or at
/// `retry_failed_after` when that is longer).
pub(crate) fn backoff(retry_failed_after: Duration, consecutive_failures: u32) -> Duration {
    let doublings = consecutive_failures.saturating_sub(1).min(31);
    retry_failed_after
        .saturating_mul(1u32 << doublings)
        .min(MAX_BACKOFF.max(retry_failed_after))
}

/// The failures a record of the same section content stands for: 0 for a pass, at least 1
/// for a failure (a file written by hand may say 0).
pub(crate) fn failures_of(record: &SectionRecord) -> u32 {
    if record.validation_passed {
        0
    } else {
        record.consecutive_failures.max(1)
    }
}

/// The one rule for `consecutive_failures` after a validation: 0 on a pass; on a failure,
/// one more than the most that any source (the file, memory, the fleet) recorded for the
/// same section content.
pub(crate) fn consecutive_failures(passed: bool, previous: impl IntoIterator<Item = u32>) -> u32 {
    if passed {
        0
    } else {
        previous.into_iter().max().unwrap_or(0).saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use storage_availability_schema::{SectionHash, Timestamp};

    const KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const T0: u64 = 1_800_000_000;

    fn record(passed: bool, checked_secs: u64, failures: u32) -> SectionRecord {
        SectionRecord {
            section_hash: SectionHash::new(KEY).unwrap(),
            enabled: passed,
            validation_passed: passed,
            last_error: None,
            errors: Vec::new(),
            warnings: Vec::new(),
            checked_at: Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(checked_secs)),
            duration_ms: 0.0,
            consecutive_failures: failures,
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    const RETRY: Duration = Duration::from_secs(30);

    proptest! {
        /// A failed result is never served stale; a passed one only within the window.
        #[test]
        fn only_passed_results_within_the_window_are_served_stale(
            passed: bool, age in 0u64..10_000, max_age in 1u64..5_000, window in 0u64..5_000,
        ) {
            let secs = Duration::from_secs;
            let served = serves_stale(passed, secs(age), secs(max_age), secs(window));
            prop_assert_eq!(served, passed && age < max_age + window);
        }
    }

    #[test]
    fn recheck_at_its_edges() {
        let every = Duration::from_secs(30);
        assert_eq!(recheck(at(T0), at(T0 + 29), every, Duration::ZERO), Ok(()));
        assert_eq!(
            recheck(at(T0), at(T0 + 30), every, Duration::ZERO),
            Err(Stale::RecheckDue)
        );
        assert_eq!(
            recheck(at(T0), at(T0 + 27), every, Duration::from_secs(3)),
            Err(Stale::RecheckDue)
        );
        // A timestamp ahead of now counts as age zero here; `freshness` rejects far ones.
        assert_eq!(recheck(at(T0 + 10), at(T0), every, Duration::ZERO), Ok(()));
        assert_eq!(
            refresh_ahead(every, Duration::from_secs(10)),
            Duration::from_secs(3)
        );
        assert_eq!(
            refresh_ahead(every, Duration::from_secs(1)),
            Duration::from_secs(1)
        );
    }

    proptest! {
        /// `recheck` and `recheck_due_at` agree: stale exactly from the due time on.
        #[test]
        fn recheck_is_due_exactly_at_its_due_time(
            every in 1u64..10_000, ahead in 0u64..10_000, age in 0u64..20_000,
        ) {
            let (every, ahead) = (Duration::from_secs(every), Duration::from_secs(ahead));
            let due = recheck_due_at(at(T0), every, ahead);
            let now = at(T0 + age);
            prop_assert_eq!(recheck(at(T0), now, every, ahead).is_err(), now >= due);
        }
    }

    #[test]
    fn the_rules_at_their_edges() {
        let hour = Some(Duration::from_secs(3600));
        let ok = record(true, T0, 0);
        assert_eq!(freshness(KEY, &ok, at(T0 + 3599), hour, RETRY), Ok(()));
        assert_eq!(
            freshness(KEY, &ok, at(T0 + 3600), hour, RETRY),
            Err(Stale::Expired)
        );
        assert_eq!(freshness(KEY, &ok, at(T0 + (1 << 30)), None, RETRY), Ok(()));
        let other = "f".repeat(64);
        assert_eq!(
            freshness(&other, &ok, at(T0), hour, RETRY),
            Err(Stale::Changed)
        );
        assert_eq!(freshness(KEY, &ok, at(T0 - 300), hour, RETRY), Ok(()));
        assert_eq!(
            freshness(KEY, &ok, at(T0 - 301), hour, RETRY),
            Err(Stale::Future)
        );
        let failed = record(false, T0, 2);
        assert_eq!(freshness(KEY, &failed, at(T0 + 59), hour, RETRY), Ok(()));
        assert_eq!(
            freshness(KEY, &failed, at(T0 + 60), hour, RETRY),
            Err(Stale::RetryDue)
        );
        assert_eq!(backoff(RETRY, 0), RETRY);
        assert_eq!(backoff(RETRY, 1), RETRY);
        assert_eq!(backoff(RETRY, 3), RETRY * 4);
        assert_eq!(backoff(RETRY, u32::MAX), MAX_BACKOFF);
        let long = Duration::from_secs(2 * 3600);
        assert_eq!(backoff(long, 5), long);
        assert_eq!(consecutive_failures(true, [7]), 0);
        assert_eq!(consecutive_failures(false, []), 1);
        assert_eq!(consecutive_failures(false, [2, 5, 0]), 6);
        assert_eq!(consecutive_failures(false, [u32::MAX]), u32::MAX);
        assert_eq!(failures_of(&record(false, T0, 0)), 1);
        assert_eq!(failures_of(&record(true, T0, 9)), 0);
    }

    proptest! {
        /// The backoff never shrinks as failures grow and stays within its bounds.
        #[test]
        fn backoff_is_monotonic_and_bounded(retry_ms in 1u64..10_000_000, n in 0u32..100) {
            let retry = Duration::from_millis(retry_ms);
            let (this, next) = (backoff(retry, n), backoff(retry, n + 1));
            prop_assert!(this <= next);
            prop_assert!(this >= retry.min(MAX_BACKOFF.max(retry)));
            prop_assert!(next <= MAX_BACKOFF.max(retry));
        }

        /// Freshness is monotonic in time: once stale by age, a record stays stale later.
        #[test]
        fn freshness_never_comes_back(
            passed: bool,
            failures in 0u32..40,
            max_age in proptest::option::of(1u64..100_000),
            dt in 0u64..200_000,
            later in 0u64..200_000,
        ) {
            let r = record(passed, T0, failures);
            let max_age = max_age.map(Duration::from_secs);
            let first = freshness(KEY, &r, at(T0 + dt), max_age, RETRY);
            let second = freshness(KEY, &r, at(T0 + dt + later), max_age, RETRY);
            if first.is_err() {
                prop_assert!(second.is_err());
            }
            // A pass within max_age is fresh; a failure within its backoff is fresh.
            let window = if passed { max_age } else { Some(backoff(RETRY, failures)) };
            match window {
                Some(w) if Duration::from_secs(dt) >= w => prop_assert!(first.is_err()),
                _ => prop_assert_eq!(first, Ok(())),
            }
        }

        /// 0 on a pass; on a failure, one more than the most any source recorded.
        #[test]
        fn failures_are_counted_from_the_most_any_source_recorded(
            passed: bool,
            file in 0u32..1000,
            memory in 0u32..1000,
            fleet in 0u32..1000,
        ) {
            let n = consecutive_failures(passed, [file, memory, fleet]);
            if passed {
                prop_assert_eq!(n, 0);
            } else {
                prop_assert_eq!(n, file.max(memory).max(fleet) + 1);
            }
        }
    }
}
