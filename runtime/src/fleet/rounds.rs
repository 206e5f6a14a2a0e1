//! The fleet lookup of one refresh, between the locked re-read of the file and the save.
//!
//! For each stale `scope = "shared"` section (stale in the local file, so a warm start never
//! gets here): read the store's record for the same section hash; fresh by the file's rules
//! (and, with a shared secret, correctly signed) -> use it. Otherwise try the section's
//! fleet-wide lease once (`SET NX PX`, a random token): won -> read again (the holder
//! before us may have just published), then validate here; taken -> another host is
//! validating it.
//!
//! The lease rule: a host validates every section whose lease it holds, and its host-scoped
//! sections, *before* it waits for any lease held by another host. So the refresh runs in
//! rounds: [`claim`](FleetRequest::claim) makes one pass without waiting; the sections
//! leased elsewhere are [`deferred`](FleetClaim::is_deferred) while the rest is validated;
//! [`settle`](FleetClaim::settle) then publishes those results, releases the leases, and
//! only then polls (with jitter) for the deferred sections' records. A deferred section
//! whose lease vanished (its holder died) is taken over, and past a bound one is validated
//! without the lease; either ends the wait so that it is validated at once, in the next
//! round, and the rest is waited for afterwards. Two hosts that each win one of two
//! sections therefore never wait for each other: each validates its own, publishes, and
//! finds the other's record.
//!
//! The first store error ends the store's part of the refresh: everything left is local.
//! The IO halves block (network round trips, polling sleeps): the blocking refresh runs them
//! on its own thread, `open_async` on `spawn_blocking`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use storage_availability_schema::{SCHEMA_VERSION, SectionRecord, Timestamp, is_compatible};

use super::{FleetCounters, FleetOptions};
use super::{SharedError, SharedRecord, SharedSecret, SharedStore};
use crate::builder::Options;
use crate::fingerprint::SectionKey;
use crate::policy::{Planned, Stale, stale_sections};
use crate::random::random_u64;
use crate::section::{Scope, Source, StorageAvailability, StorageKind};
use crate::stats::bump;

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
    /// How long a passed result is fresh: the section's `max_age_secs`, else the builder's.
    max_age: Option<Duration>,
    /// `false` for an invalidated section: validated here whatever the store has, then
    /// published.
    lookup: bool,
}

/// What a refresh asks of the store; owned, so it can move to a blocking thread.
pub(crate) struct FleetRequest {
    store: Arc<dyn SharedStore>,
    options: Options,
    secret: Option<SharedSecret>,
    wanted: Vec<Wanted>,
}

/// A section validated here whose record goes to the store.
#[derive(Debug)]
struct Publish {
    index: usize,
    key: String,
    /// How long a passed result is fresh (the record's TTL in the store).
    max_age: Option<Duration>,
    /// `consecutive_failures` of the store's failed record for the same hash.
    previous_failures: u32,
}

/// Counts not yet added to the cache's [`Stats`](crate::Stats).
#[derive(Debug, Default)]
struct Counts {
    hits: u64,
    publishes: u64,
    ignored: u64,
    unsigned: u64,
    lease_waits: u64,
    lease_timeouts: u64,
}

/// What the store settled so far in one refresh, carried across its rounds.
pub(crate) struct FleetClaim {
    store: Arc<dyn SharedStore>,
    options: Options,
    secret: Option<SharedSecret>,
    token: String,
    /// Fresh records of other hosts, to merge into the plan.
    hits: Vec<(usize, SectionRecord)>,
    /// Sections to validate here and then publish.
    publish: Vec<Publish>,
    /// Ready to send: key, value, TTL.
    outgoing: Vec<(String, Vec<u8>, Duration)>,
    /// Held leases: key.
    leases: Vec<String>,
    /// Sections leased by other hosts: not validated until their holder's record arrives,
    /// the lease vanishes or the wait runs out.
    waiting: Vec<Waiting>,
    /// The first store error of this refresh: the store is skipped from then on.
    failed: Option<SharedError>,
    reported: bool,
    /// One warning per refresh about an unsigned or mis-signed record.
    warned_unsigned: bool,
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
    /// Without a valid signature while this host has a shared secret: ignored, and
    /// overwritten by this host.
    Unsigned(&'static str),
}

/// A section waiting for another host's lease.
struct Waiting {
    wanted: Wanted,
    /// Past it, validated here without the lease.
    deadline: Instant,
    previous_failures: u32,
    ignored: bool,
    /// Counted in `lease_waits` (at the first poll that had to sleep).
    counted: bool,
}

/// The stale shared sections of `plan`; `None` without a store or without any, so a warm
/// start makes no round trip (and no connection). The refresh core asks the driver to
/// [`claim`](FleetRequest::claim) it (the `AskFleet` step).
pub(crate) fn request<C: StorageAvailability>(
    fleet: &FleetOptions,
    options: &Options,
    keys: &[SectionKey],
    plan: &[Planned],
) -> Option<FleetRequest> {
    let store = fleet.store.as_ref()?;
    let config_type = C::config_type();
    let wanted: Vec<Wanted> = C::Kind::ALL
        .iter()
        .zip(plan)
        .filter(|&(&kind, _)| C::scope(kind) == Scope::Shared)
        .filter_map(|(&kind, planned)| {
            let why = planned.stale()?;
            // A key no record matches: nothing to look up, nothing worth publishing.
            if why == Stale::Uncacheable {
                return None;
            }
            let index = kind.index();
            let hash = keys[index].as_str().to_owned();
            let timeout = C::timeout(kind).unwrap_or(options.validation_timeout());
            Some(Wanted {
                index,
                name: kind.name(),
                key: format!("{}:{config_type}:{}:{hash}", fleet.namespace, kind.name()),
                hash,
                lease_ttl: timeout.saturating_add(LEASE_MARGIN),
                max_age: C::max_age(kind).or(options.max_age()),
                lookup: why != Stale::Invalidated,
            })
        })
        .collect();
    (!wanted.is_empty()).then(|| FleetRequest {
        store: Arc::clone(store),
        options: options.clone(),
        secret: fleet.secret.clone(),
        wanted,
    })
}

/// The stale sections of `plan` to validate in this round: every stale section except
/// those whose lease another host holds (their answers are waited for after this host's
/// own validations).
pub(crate) fn ready<C: StorageAvailability>(
    fleet: Option<&FleetClaim>,
    plan: &[Planned],
) -> Vec<(C::Kind, Stale)> {
    let mut stale = stale_sections::<C>(plan);
    if let Some(claim) = fleet {
        stale.retain(|(kind, _)| !claim.is_deferred(kind.index()));
    }
    stale
}

/// Merges the fresh records of other hosts into `plan` (as [`Source::Shared`]), adds the
/// claim's counts to the stats, and warns once per refresh about a store failure.
pub(crate) fn merge<C: StorageAvailability>(
    claim: &mut FleetClaim,
    plan: &mut [Planned],
    counters: &FleetCounters,
) {
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
        plan[index] = Planned::Reuse(record, Source::Shared);
    }
    let counts = std::mem::take(&mut claim.counts);
    bump(&counters.hits, counts.hits);
    bump(&counters.publishes, counts.publishes);
    bump(&counters.ignored, counts.ignored);
    bump(&counters.unsigned, counts.unsigned);
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

impl FleetRequest {
    /// One pass over the wanted sections: look up, and try each lease once. Never waits
    /// for another host. Blocking, bounded by the store's timeouts.
    pub(crate) fn claim(self) -> FleetClaim {
        let mut claim = FleetClaim {
            store: self.store,
            options: self.options,
            secret: self.secret,
            token: lease_token(),
            hits: Vec::new(),
            publish: Vec::new(),
            outgoing: Vec::new(),
            leases: Vec::new(),
            waiting: Vec::new(),
            failed: None,
            reported: false,
            warned_unsigned: false,
            counts: Counts::default(),
        };
        for wanted in self.wanted {
            if claim.failed.is_some() {
                // Validated here; the store is skipped for the rest of the refresh.
                continue;
            }
            if !wanted.lookup {
                claim.publish.push(Publish {
                    index: wanted.index,
                    key: wanted.key,
                    max_age: wanted.max_age,
                    previous_failures: 0,
                });
                continue;
            }
            let deadline = Instant::now() + wanted.lease_ttl + LEASE_MARGIN;
            let waiting = Waiting {
                wanted,
                deadline,
                previous_failures: 0,
                ignored: false,
                counted: false,
            };
            if let Some(waiting) = claim.step(waiting)
                && claim.failed.is_none()
            {
                claim.waiting.push(waiting);
            }
        }
        claim
    }
}

impl FleetClaim {
    /// Whether section `index` waits for another host's record (not validated yet).
    pub(crate) fn is_deferred(&self, index: usize) -> bool {
        self.failed.is_none() && self.waiting.iter().any(|w| w.wanted.index == index)
    }

    /// Publishes what was prepared, releases the leases, then polls for the deferred
    /// sections until each has a record, or one must be validated here. `true` when there
    /// is something to validate here.
    pub(crate) fn settle(&mut self) -> bool {
        self.send();
        // Sections still to validate here from an earlier round (none after `prepare`).
        let before = self.publish.len();
        let mut ready = false;
        while !self.waiting.is_empty() && self.failed.is_none() {
            let mut still = Vec::new();
            for waiting in std::mem::take(&mut self.waiting) {
                if self.failed.is_some() {
                    break;
                }
                if let Some(waiting) = self.step(waiting) {
                    still.push(waiting);
                }
            }
            self.waiting = still;
            // A section taken over (its lease vanished) or waited for past the bound.
            ready = self.publish.len() > before;
            if ready || self.failed.is_some() || self.waiting.is_empty() {
                break;
            }
            for waiting in &mut self.waiting {
                if !waiting.counted {
                    waiting.counted = true;
                    self.counts.lease_waits += 1;
                    tracing::debug!(target: TARGET, section = waiting.wanted.name,
                        "another host is validating this shared section; waiting for its result");
                }
            }
            std::thread::sleep(jittered(POLL_INTERVAL));
        }
        if self.failed.is_some() {
            // Everything still deferred is validated here, without the store.
            let dropped = !self.waiting.is_empty();
            self.waiting.clear();
            self.publish.clear();
            return ready || dropped;
        }
        ready
    }

    /// One look at a section: `Some` when it must keep waiting for another host; `None`
    /// when it is settled (a hit, a store failure) or is to be validated here (then in
    /// `publish`).
    fn step(&mut self, mut waiting: Waiting) -> Option<Waiting> {
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
            Some(Found::Unsigned(reason)) => {
                if !waiting.ignored {
                    waiting.ignored = true;
                    self.counts.ignored += 1;
                    self.counts.unsigned += 1;
                    if std::mem::replace(&mut self.warned_unsigned, true) {
                        tracing::debug!(target: TARGET, section = wanted.name, reason,
                            "ignoring a fleet store record without a valid signature");
                    } else {
                        tracing::warn!(target: TARGET, section = wanted.name, reason,
                            "ignoring a fleet store record without a valid signature (written \
                             without the shared secret, or tampered with); it will be overwritten");
                    }
                }
            }
        }
        let lease_key = format!("{}:lease", wanted.key);
        match self
            .store
            .try_lease(&lease_key, &self.token, wanted.lease_ttl)
        {
            Err(error) => {
                self.fail(error);
                None
            }
            Ok(true) => {
                // The previous holder may have published and released just before.
                if let Some(Found::Fresh(record)) = self.lookup(wanted) {
                    self.hits.push((wanted.index, record));
                    self.counts.hits += 1;
                    if let Err(error) = self.store.release_lease(&lease_key, &self.token) {
                        self.fail(error);
                    }
                    return None;
                }
                if self.failed.is_none() {
                    self.leases.push(lease_key);
                    self.publish_later(waiting);
                }
                None
            }
            Ok(false) => {
                if Instant::now() < waiting.deadline {
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
            max_age: waiting.wanted.max_age,
            previous_failures: waiting.previous_failures,
        });
    }

    /// The store's record for a section; `None` after an error (recorded).
    fn lookup(&mut self, wanted: &Wanted) -> Option<Found> {
        match self.store.get_with_ttl(&wanted.key) {
            Err(error) => {
                self.fail(error);
                None
            }
            Ok(None) => Some(Found::Stale { failures: 0 }),
            Ok(Some((bytes, ttl))) => Some(classify(
                &bytes,
                ttl,
                wanted,
                &self.options,
                self.secret.as_ref(),
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
    /// fleet's failure count into the record first (so the file gets it too). Sections
    /// not validated yet stay for a later round.
    pub(crate) fn prepare(&mut self, plan: &mut [Planned]) {
        let mut later = Vec::new();
        for publish in std::mem::take(&mut self.publish) {
            let Some(planned) = plan.get_mut(publish.index) else {
                continue;
            };
            let (record, source) = match planned {
                Planned::Reuse(record, source) => (record, *source),
                Planned::Stale(_) => {
                    later.push(publish);
                    continue;
                }
            };
            if source != Source::Validated {
                continue;
            }
            if !record.validation_passed {
                // The record counted the file's and memory's failures; add the fleet's.
                record.consecutive_failures = crate::policy::consecutive_failures(
                    false,
                    [
                        record.consecutive_failures.saturating_sub(1),
                        publish.previous_failures,
                    ],
                );
            }
            // Good results: `max_age`. Failures are fresh for their backoff window and kept
            // until the next failure's window ends, so that a host retrying after the first
            // still finds the fleet's count (a short TTL: one blip never lasts long).
            let ttl = if record.validation_passed {
                publish.max_age.unwrap_or(UNBOUNDED_RECORD_TTL)
            } else {
                self.options
                    .backoff(record.consecutive_failures.saturating_add(1))
            };
            match encode(record, &publish.key, self.secret.as_ref()) {
                Ok(bytes) => self.outgoing.push((publish.key, bytes, ttl)),
                Err(error) => tracing::debug!(target: TARGET, %error,
                    "could not serialise a record for the fleet store"),
            }
        }
        self.publish = later;
    }

    /// Publishes the prepared records and releases the leases of the published sections,
    /// unless the store failed.
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
        // Leases of sections still to validate (none once every round is done) stay held.
        let pending: Vec<String> = self
            .publish
            .iter()
            .map(|p| format!("{}:lease", p.key))
            .collect();
        let (keep, release): (Vec<String>, Vec<String>) = std::mem::take(&mut self.leases)
            .into_iter()
            .partition(|key| pending.contains(key));
        self.leases = keep;
        for key in release {
            if self.failed.is_some() {
                // Left to expire with its TTL.
                return;
            }
            if let Err(error) = self.store.release_lease(&key, &self.token) {
                self.fail(error);
            }
        }
    }
}

/// The bytes to store for `record` at `key`: the schema's section record with its schema
/// version; with a shared secret, followed by `"signature"`, the HMAC of everything before
/// it (see [`SharedSecret`]).
fn encode(
    record: &SectionRecord,
    key: &str,
    secret: Option<&SharedSecret>,
) -> serde_json::Result<Vec<u8>> {
    let value = SharedRecord {
        schema_version: SCHEMA_VERSION.to_owned(),
        signature: None,
        record: record.clone(),
    };
    let canonical = serde_json::to_vec(&value)?;
    Ok(match secret {
        Some(secret) => secret.append_signature(key, canonical),
        None => canonical,
    })
}

/// What a value of the store means for `wanted`, whose current hash is `wanted.hash`.
/// `ttl` is the key's remaining time to live, when the store knows it: a fresh record's
/// `checked_at` is moved back so that, here and in the local file, it expires no later
/// than the store's key.
fn classify(
    bytes: &[u8],
    ttl: Option<Duration>,
    wanted: &Wanted,
    options: &Options,
    secret: Option<&SharedSecret>,
    now: SystemTime,
) -> Found {
    if bytes.len() > MAX_RECORD_BYTES {
        return Found::Ignored(format!("record of {} bytes", bytes.len()));
    }
    // With a secret, only the signed bytes are parsed: what is read is what was signed.
    let signed;
    let bytes = match secret {
        None => bytes,
        Some(secret) => match secret.verified(&wanted.key, bytes) {
            Ok(canonical) => {
                signed = canonical;
                &signed[..]
            }
            Err(reason) => return Found::Unsigned(reason),
        },
    };
    let shared: SharedRecord = match serde_json::from_slice(bytes) {
        Ok(shared) => shared,
        // serde's message may quote the value: only its position and kind are logged.
        Err(error) => {
            return Found::Ignored(format!(
                "not a section record ({:?} error at line {} column {})",
                error.classify(),
                error.line(),
                error.column()
            ));
        }
    };
    if let Err(error) = is_compatible(&shared.schema_version) {
        return Found::Ignored(error.to_string());
    }
    let mut record = shared.record;
    if record.section_hash.as_str() != wanted.hash {
        return Found::Ignored("record of another section hash".to_owned());
    }
    match options.freshness_within(&wanted.hash, &record, now, wanted.max_age) {
        Ok(()) => {
            if let Some(ttl) = ttl {
                cap_to_ttl(&mut record, ttl, wanted.max_age, options, now);
            }
            Found::Fresh(record)
        }
        Err(_) if !record.validation_passed => Found::Stale {
            failures: record.consecutive_failures.max(1),
        },
        Err(_) => Found::Stale { failures: 0 },
    }
}

/// Moves `record.checked_at` back so that the record, fresh at `now`, expires no later than
/// `now + ttl` by the file's rules (`max_age` for good results, the backoff for failures).
/// A good result with `max_age` `None` never expires by age, so it is left as it is.
fn cap_to_ttl(
    record: &mut SectionRecord,
    ttl: Duration,
    max_age: Option<Duration>,
    options: &Options,
    now: SystemTime,
) {
    let lifetime = if record.validation_passed {
        match max_age {
            Some(max_age) => max_age,
            None => return,
        }
    } else {
        options.backoff(record.consecutive_failures)
    };
    let checked_at = record.checked_at.0;
    let Some(expires) = checked_at.checked_add(lifetime) else {
        return;
    };
    let Some(limit) = now.checked_add(ttl) else {
        return;
    };
    let Ok(excess) = expires.duration_since(limit) else {
        return; // already expires before the key does
    };
    // Whole milliseconds (the store's TTL unit), rounded up: the file keeps microseconds.
    let excess = Duration::from_millis(
        u64::try_from(excess.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1),
    );
    if let Some(earlier) = checked_at.checked_sub(excess) {
        record.checked_at = Timestamp(earlier);
    }
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
