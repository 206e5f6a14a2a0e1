//! The fleet lookup of one refresh, between the locked re-read of the file and validation.
//!
//! For each stale `scope = "shared"` section (stale in the local file, so a warm start never
//! gets here): read the store's record for the same section hash; fresh by the file's rules ->
//! use it. Otherwise take the section's fleet-wide lease (`SET NX PX`, a random token),
//! read again (the holder before us may have just published), and validate here; the
//! result is published with a TTL and the lease released by compare-and-delete. A host that
//! finds the lease taken polls with jitter for the record, taking the lease itself if it
//! vanishes (its holder died), and past a bound validates without it.
//!
//! The first store error ends the store's part of the refresh: everything left is local.
//! `claim` and `publish` block (network round trips, polling sleeps): the blocking refresh
//! calls them on its own thread, `open_async` on `spawn_blocking`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use storage_availability_schema::{SCHEMA_VERSION, SectionRecord, is_compatible};

use super::{SharedError, SharedRecord, SharedStore};
use crate::cache::{AvailabilityCache, Options, Planned, Stale, bump};
use crate::section::{Scope, Source, StorageAvailability, StorageKind};

const TARGET: &str = "storage_availability";

/// Added to a section's validation timeout to make its lease: time to publish the record.
const LEASE_MARGIN: Duration = Duration::from_secs(1);
/// Mean interval between two polls of a waiting host (jittered by +-50%).
const POLL_INTERVAL: Duration = Duration::from_millis(40);
/// The TTL of good records when `max_age` is `None` (reused until the section changes):
/// the store is not a place to keep records forever.
pub(crate) const UNBOUNDED_RECORD_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Records larger than this are ignored (a record is a few hundred bytes).
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// A stale shared section to settle through the store.
#[derive(Debug)]
struct Wanted {
    index: usize,
    name: &'static str,
    hash: String,
    key: String,
    lease_ttl: Duration,
    /// `false` for an invalidated section: validated here whatever the store has, then
    /// published.
    lookup: bool,
}

/// What a refresh asks of the store; owned, so it can move to a blocking thread.
pub(crate) struct FleetRequest {
    store: Arc<dyn SharedStore>,
    options: Options,
    wanted: Vec<Wanted>,
}

/// A section validated here whose record goes to the store.
#[derive(Debug)]
struct Publish {
    index: usize,
    key: String,
    /// `consecutive_failures` of the store's failed record for the same hash.
    previous_failures: u32,
}

/// Counts not yet added to the cache's [`Stats`](crate::Stats).
#[derive(Debug, Default)]
struct Counts {
    hits: u64,
    publishes: u64,
    ignored: u64,
    lease_waits: u64,
    lease_timeouts: u64,
}

/// What the store settled for one refresh, carried from the lookup to the publication.
pub(crate) struct FleetClaim {
    store: Arc<dyn SharedStore>,
    options: Options,
    hits: Vec<(usize, SectionRecord)>,
    publish: Vec<Publish>,
    /// Ready to send: key, value, TTL.
    outgoing: Vec<(String, Vec<u8>, Duration)>,
    /// Held leases: key, token.
    leases: Vec<(String, String)>,
    /// The first store error of this refresh: the store is skipped from then on.
    failed: Option<SharedError>,
    reported: bool,
    counts: Counts,
}

/// What the store holds for a section.
enum Found {
    Fresh(SectionRecord),
    /// Nothing usable; `failures` of a failed record for the same hash feed the next count.
    Stale {
        failures: u32,
    },
    /// Unparsable, another schema or another hash: ignored, and overwritten by this host.
    Ignored(String),
}

/// A section waiting for another host's lease.
struct Waiting {
    wanted: Wanted,
    deadline: Option<Instant>,
    previous_failures: u32,
    ignored: bool,
}

impl<C: StorageAvailability> AvailabilityCache<C> {
    /// The stale shared sections of `plan`; `None` without a store or without any, so a
    /// warm start makes no round trip (and no connection).
    fn fleet_request(&self, plan: &[Planned]) -> Option<FleetRequest> {
        let store = self.fleet.store.as_ref()?;
        let config_type = std::any::type_name::<C>();
        let wanted: Vec<Wanted> = C::Kind::ALL
            .iter()
            .zip(plan)
            .filter(|&(&kind, _)| C::scope(kind) == Scope::Shared)
            .filter_map(|(&kind, planned)| {
                let why = *planned.as_ref().err()?;
                let index = kind.index();
                let hash = self.keys[index].as_str().to_owned();
                let timeout = C::timeout(kind).unwrap_or(self.options.validation_timeout());
                Some(Wanted {
                    index,
                    name: kind.name(),
                    key: format!(
                        "{}:{config_type}:{}:{hash}",
                        self.fleet.namespace,
                        kind.name()
                    ),
                    hash,
                    lease_ttl: timeout.saturating_add(LEASE_MARGIN),
                    lookup: why != Stale::Invalidated,
                })
            })
            .collect();
        (!wanted.is_empty()).then(|| FleetRequest {
            store: Arc::clone(store),
            options: self.options.clone(),
            wanted,
        })
    }

    /// Settles the stale shared sections of `plan` through the store: fresh records of
    /// other hosts go into `plan` (as [`Source::Shared`]); the rest are left stale, to
    /// validate, most under a lease this host now holds. Blocking.
    pub(crate) fn fleet_claim(&self, plan: &mut [Planned]) -> Option<FleetClaim> {
        let claim = self.fleet_request(plan)?.claim();
        Some(self.fleet_merge(claim, plan))
    }

    /// [`fleet_claim`](Self::fleet_claim) with the round trips on a blocking thread.
    #[cfg(feature = "tokio")]
    pub(crate) async fn fleet_claim_async(&self, plan: &mut [Planned]) -> Option<FleetClaim> {
        let request = self.fleet_request(plan)?;
        let claim = tokio::task::spawn_blocking(move || request.claim())
            .await
            .ok()?;
        Some(self.fleet_merge(claim, plan))
    }

    /// Publishes the results validated here (after `apply`, before the save) and releases
    /// the leases. Blocking.
    pub(crate) fn fleet_publish(&self, claim: Option<FleetClaim>, plan: &mut [Planned]) {
        let Some(mut claim) = claim else { return };
        claim.prepare(plan);
        claim.send();
        self.fleet_count(&mut claim);
    }

    /// [`fleet_publish`](Self::fleet_publish) with the round trips on a blocking thread.
    #[cfg(feature = "tokio")]
    pub(crate) async fn fleet_publish_async(
        &self,
        claim: Option<FleetClaim>,
        plan: &mut [Planned],
    ) {
        let Some(mut claim) = claim else { return };
        claim.prepare(plan);
        let sent = tokio::task::spawn_blocking(move || {
            claim.send();
            claim
        })
        .await;
        if let Ok(mut claim) = sent {
            self.fleet_count(&mut claim);
        }
    }

    fn fleet_merge(&self, mut claim: FleetClaim, plan: &mut [Planned]) -> FleetClaim {
        if !claim.hits.is_empty() {
            let names: Vec<&str> = claim
                .hits
                .iter()
                .map(|(index, _)| C::Kind::ALL[*index].name())
                .collect();
            tracing::info!(target: TARGET, sections = %names.join(", "),
                "answered shared sections from the fleet store");
        }
        for (index, record) in claim.hits.drain(..) {
            plan[index] = Ok((record, Source::Shared));
        }
        self.fleet_count(&mut claim);
        claim
    }

    /// Adds the claim's counts to the stats, and warns once per refresh about a failure.
    fn fleet_count(&self, claim: &mut FleetClaim) {
        let counters = &self.stats.fleet;
        let counts = std::mem::take(&mut claim.counts);
        bump(&counters.hits, counts.hits);
        bump(&counters.publishes, counts.publishes);
        bump(&counters.ignored, counts.ignored);
        bump(&counters.lease_waits, counts.lease_waits);
        bump(&counters.lease_timeouts, counts.lease_timeouts);
        if let Some(error) = &claim.failed
            && !claim.reported
        {
            claim.reported = true;
            bump(&counters.errors, 1);
            tracing::warn!(target: TARGET, %error, store = ?claim.store,
                "fleet store unavailable; working locally for the rest of this refresh");
        }
    }
}

impl FleetRequest {
    /// Looks up, leases or waits for every wanted section. Blocking, bounded by the store's
    /// timeouts and, for a section leased by another host, by its lease.
    pub(crate) fn claim(self) -> FleetClaim {
        let mut claim = FleetClaim {
            store: self.store,
            options: self.options,
            hits: Vec::new(),
            publish: Vec::new(),
            outgoing: Vec::new(),
            leases: Vec::new(),
            failed: None,
            reported: false,
            counts: Counts::default(),
        };
        let mut pending = Vec::new();
        for wanted in self.wanted {
            if wanted.lookup {
                pending.push(Waiting {
                    wanted,
                    deadline: None,
                    previous_failures: 0,
                    ignored: false,
                });
            } else {
                claim.publish.push(Publish {
                    index: wanted.index,
                    key: wanted.key,
                    previous_failures: 0,
                });
            }
        }
        let token = lease_token();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for waiting in pending {
                if claim.failed.is_some() {
                    // Validated here; the store is skipped for the rest of the refresh.
                    continue;
                }
                if let Some(waiting) = claim.step(waiting, &token) {
                    still.push(waiting);
                }
            }
            pending = still;
            if !pending.is_empty() {
                std::thread::sleep(jittered(POLL_INTERVAL));
            }
        }
        claim
    }
}

impl FleetClaim {
    /// One look at a section: `Some` when it must keep waiting for another host.
    fn step(&mut self, mut waiting: Waiting, token: &str) -> Option<Waiting> {
        let wanted = &waiting.wanted;
        match self.lookup(wanted) {
            None => return None,
            Some(Found::Fresh(record)) => {
                self.hits.push((wanted.index, record));
                self.counts.hits += 1;
                return None;
            }
            Some(Found::Stale { failures }) => waiting.previous_failures = failures,
            Some(Found::Ignored(reason)) => {
                if !waiting.ignored {
                    waiting.ignored = true;
                    self.counts.ignored += 1;
                    tracing::info!(target: TARGET, section = wanted.name, %reason,
                        "ignoring the fleet store's record; it will be overwritten");
                }
            }
        }
        let lease_key = format!("{}:lease", wanted.key);
        match self.store.try_lease(&lease_key, token, wanted.lease_ttl) {
            Err(error) => {
                self.fail(error);
                None
            }
            Ok(true) => {
                // The previous holder may have published and released just before.
                if let Some(Found::Fresh(record)) = self.lookup(wanted) {
                    self.hits.push((wanted.index, record));
                    self.counts.hits += 1;
                    if let Err(error) = self.store.release_lease(&lease_key, token) {
                        self.fail(error);
                    }
                    return None;
                }
                if self.failed.is_none() {
                    self.leases.push((lease_key, token.to_owned()));
                    self.publish_later(waiting);
                }
                None
            }
            Ok(false) => {
                let now = Instant::now();
                let deadline = *waiting.deadline.get_or_insert_with(|| {
                    self.counts.lease_waits += 1;
                    tracing::debug!(target: TARGET, section = wanted.name,
                        "another host is validating this shared section; waiting for its result");
                    now + wanted.lease_ttl + LEASE_MARGIN
                });
                if now < deadline {
                    return Some(waiting);
                }
                self.counts.lease_timeouts += 1;
                tracing::warn!(target: TARGET, section = waiting.wanted.name,
                    "another host held the fleet lease too long; validating here");
                self.publish_later(waiting);
                None
            }
        }
    }

    fn publish_later(&mut self, waiting: Waiting) {
        self.publish.push(Publish {
            index: waiting.wanted.index,
            key: waiting.wanted.key,
            previous_failures: waiting.previous_failures,
        });
    }

    /// The store's record for a section; `None` after an error (recorded).
    fn lookup(&mut self, wanted: &Wanted) -> Option<Found> {
        match self.store.get(&wanted.key) {
            Err(error) => {
                self.fail(error);
                None
            }
            Ok(None) => Some(Found::Stale { failures: 0 }),
            Ok(Some(bytes)) => Some(classify(
                &bytes,
                &wanted.hash,
                &self.options,
                self.options.clock.now(),
            )),
        }
    }

    fn fail(&mut self, error: SharedError) {
        if self.failed.is_none() {
            self.failed = Some(error);
        }
    }

    /// Turns the validated records of the sections to publish into values, carrying the
    /// fleet's failure count into the record first (so the file gets it too).
    fn prepare(&mut self, plan: &mut [Planned]) {
        for publish in std::mem::take(&mut self.publish) {
            let Some(Ok((record, Source::Validated))) = plan.get_mut(publish.index) else {
                continue;
            };
            if !record.validation_passed {
                record.consecutive_failures = record
                    .consecutive_failures
                    .max(publish.previous_failures.saturating_add(1));
            }
            // Good results: `max_age`. Failures are fresh for their backoff window and kept
            // until the next failure's window ends, so that a host retrying after the first
            // still finds the fleet's count (a short TTL: one blip never lasts long).
            let ttl = if record.validation_passed {
                self.options.max_age().unwrap_or(UNBOUNDED_RECORD_TTL)
            } else {
                self.options
                    .backoff(record.consecutive_failures.saturating_add(1))
            };
            let value = SharedRecord {
                schema_version: SCHEMA_VERSION.to_owned(),
                record: record.clone(),
            };
            match serde_json::to_vec(&value) {
                Ok(bytes) => self.outgoing.push((publish.key, bytes, ttl)),
                Err(error) => tracing::debug!(target: TARGET, %error,
                    "could not serialise a record for the fleet store"),
            }
        }
    }

    /// Publishes the prepared records and releases the leases, unless the store failed.
    fn send(&mut self) {
        for (key, value, ttl) in std::mem::take(&mut self.outgoing) {
            if self.failed.is_some() {
                return;
            }
            match self
                .store
                .set(&key, &value, ttl.max(Duration::from_millis(1)))
            {
                Ok(()) => self.counts.publishes += 1,
                Err(error) => self.fail(error),
            }
        }
        for (key, token) in std::mem::take(&mut self.leases) {
            if self.failed.is_some() {
                // Left to expire with its TTL.
                return;
            }
            if let Err(error) = self.store.release_lease(&key, &token) {
                self.fail(error);
            }
        }
    }
}

/// What a value of the store means for the section whose current hash is `hash`.
fn classify(bytes: &[u8], hash: &str, options: &Options, now: SystemTime) -> Found {
    if bytes.len() > MAX_RECORD_BYTES {
        return Found::Ignored(format!("record of {} bytes", bytes.len()));
    }
    let shared: SharedRecord = match serde_json::from_slice(bytes) {
        Ok(shared) => shared,
        Err(error) => return Found::Ignored(format!("not a section record: {error}")),
    };
    if let Err(error) = is_compatible(&shared.schema_version) {
        return Found::Ignored(error.to_string());
    }
    let record = shared.record;
    if record.section_hash.as_str() != hash {
        return Found::Ignored("record of another section hash".to_owned());
    }
    match options.freshness(hash, &record, now) {
        Ok(()) => Found::Fresh(record),
        Err(_) if !record.validation_passed => Found::Stale {
            failures: record.consecutive_failures.max(1),
        },
        Err(_) => Found::Stale { failures: 0 },
    }
}

/// A random-enough 64 bits without a dependency: std's randomly keyed SipHash over a
/// counter, the process id and the time.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}

/// A lease token unique to this refresh of this process.
fn lease_token() -> String {
    format!(
        "{:016x}{:016x}-{}",
        random_u64(),
        random_u64(),
        std::process::id()
    )
}

/// `interval` +-50%, so waiting hosts do not poll in step.
fn jittered(interval: Duration) -> Duration {
    let millis = interval.as_millis().max(2) as u64;
    Duration::from_millis(millis / 2 + random_u64() % millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_and_jitter_stays_in_range() {
        assert_ne!(lease_token(), lease_token());
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(40));
            assert!(d >= Duration::from_millis(20) && d < Duration::from_millis(60));
        }
    }
}
