//! What the cache did: [`RefreshReport`] for one refresh, [`Stats`] since the cache was
//! opened, and the atomic counters behind them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::fleet::FleetCounters;

/// What a [`refresh`](crate::AvailabilityCache::refresh) did. Serialized with `duration` as
/// `duration_ms`, a number of milliseconds.
///
/// ```
/// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
/// # #[derive(serde::Serialize, StorageAvailability)]
/// # struct Config { #[storage(validate = check)] csv: u8, #[storage(validate = check)] kv: u8 }
/// # fn check(_: &u8) -> Outcome { Outcome::ok() }
/// let dir = tempfile::tempdir().unwrap();
/// let cache = AvailabilityCache::open(Config { csv: 1, kv: 2 }, dir.path().join("s.yaml")).unwrap();
/// cache.invalidate(ConfigKind::Kv);
/// let report = cache.refresh().unwrap();
/// assert_eq!((report.validated, report.reused, report.saved), (vec!["kv"], vec!["csv"], true));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct RefreshReport {
    /// Sections whose validator ran, by name.
    pub validated: Vec<&'static str>,
    /// Sections whose cached record was reused, by name.
    pub reused: Vec<&'static str>,
    /// Sections that were available before this refresh and are not after it, by name.
    pub went_down: Vec<&'static str>,
    /// Sections that were unavailable before this refresh (with an answer, not pending)
    /// and are available after it, by name.
    pub came_back: Vec<&'static str>,
    /// Sections whose answer changed in this refresh (availability, error or warnings),
    /// including their first answer, by name: a superset of `went_down` and `came_back`.
    pub changed: Vec<&'static str>,
    /// Whether the cache file was written.
    pub saved: bool,
    /// How long the refresh took.
    #[serde(rename = "duration_ms", serialize_with = "crate::health::serialize_ms")]
    pub duration: Duration,
}

/// Counters of what the cache did since it was opened. Every recovery is counted here.
/// Serialized as an object of numbers named like the fields.
///
/// ```
/// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
/// # #[derive(serde::Serialize, StorageAvailability)]
/// # struct Config { #[storage(validate = check)] kv: u8 }
/// # fn check(_: &u8) -> Outcome { Outcome::ok() }
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("s.yaml");
/// let cold = AvailabilityCache::open(Config { kv: 1 }, &path).unwrap().stats();
/// assert_eq!((cold.misses, cold.validations, cold.saves), (1, 1, 1));
/// let warm = AvailabilityCache::open(Config { kv: 1 }, &path).unwrap().stats();
/// assert_eq!((warm.hits, warm.misses, warm.saves), (1, 0, 0));
/// ```
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
    /// has a [`shared_secret`](crate::AvailabilityCacheBuilder::shared_secret) (also counted in
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
    /// Sections that went down (available to unavailable) or came back, summed over every
    /// refresh.
    pub transitions: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) validations: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) saves: AtomicU64,
    pub(crate) save_failures: AtomicU64,
    pub(crate) corrupt_recovered: AtomicU64,
    pub(crate) incompatible_replaced: AtomicU64,
    pub(crate) lock_timeouts: AtomicU64,
    pub(crate) temp_files_swept: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) untrusted: AtomicU64,
    pub(crate) warned_untrusted: std::sync::atomic::AtomicBool,
    pub(crate) uncacheable: AtomicU64,
    pub(crate) transitions: AtomicU64,
    pub(crate) fleet: FleetCounters,
    /// What the `metrics` feature has reported of the cache-wide counts.
    #[cfg(feature = "metrics")]
    pub(crate) metrics: crate::metrics::Reported,
}

pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    /// The counts now, as the public [`Stats`].
    pub(crate) fn snapshot(&self) -> Stats {
        let c = self;
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
            transitions: get(&c.transitions),
        }
    }
}
