//! [`AvailabilityCache`]: validity policy, incremental revalidation, single-flight refresh.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use std::time::{Duration, Instant, SystemTime};

use storage_availability_schema::{
    CacheFile, Metadata, SCHEMA_VERSION, SectionHash, SectionRecord, Timestamp,
};

use crate::context::ContextFree;
use crate::error::Error;
use crate::fingerprint::{KeyContext, SectionKey};
use crate::fleet::FleetOptions;
use crate::gate::Gate;
use crate::policy;
use crate::policy::Stale;
use crate::refresh::{Decision, Io, Prepare, Ready};
use crate::section::{Availability, BlockingValidators, Source, StorageAvailability, StorageKind};
use crate::store::StoreLock;
use crate::store::{CacheStore, Loaded, LockOutcome};
use crate::validate::{self, Ending, Finished};

pub(crate) use crate::stats::{Counters, bump};
pub(crate) use crate::stats::{RefreshReport, Stats};

use crate::builder::{AvailabilityCacheBuilder, Options};

const TARGET: &str = "storage_availability";

/// Attempts of one save, with a short backoff between them.
const SAVE_ATTEMPTS: u32 = 3;

/// The cached availability of every section of a config `C`.
///
/// `open` validates every stale section (in parallel) and saves the file before it returns,
/// so answers are final and reading them is a cheap, lock-light, allocation-free call.
/// The cache is `Send + Sync`: share it behind an `Arc`, call [`refresh`](Self::refresh)
/// from any thread while others keep reading.
///
/// # Example
///
/// ```
/// use storage_availability::{AvailabilityCache, Outcome, Source, StorageAvailability};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config {
///     #[storage(validate = check_csv)]
///     csv: String,
/// }
/// fn check_csv(dir: &String) -> Outcome {
///     if dir.is_empty() { Outcome::failed("no directory") } else { Outcome::ok() }
/// }
///
/// let dir = tempfile::tempdir().unwrap();
/// let config_path = dir.path().join("storage.yaml");
/// let cache = AvailabilityCache::open(Config { csv: "data".into() }, &config_path).unwrap();
/// assert!(cache.is_available(ConfigKind::Csv));
/// assert_eq!(cache.status(ConfigKind::Csv).source, Source::Validated);
///
/// // The next start is served from the file.
/// let cache = AvailabilityCache::open(Config { csv: "data".into() }, &config_path).unwrap();
/// assert_eq!(cache.status(ConfigKind::Csv).source, Source::Cache);
/// ```
pub struct AvailabilityCache<C: StorageAvailability> {
    pub(crate) config: Arc<C>,
    /// What every validator receives besides its section (`()` for most configs).
    pub(crate) validator_context: Arc<C::Context>,
    pub(crate) options: Options,
    pub(crate) keys: Vec<SectionKey>,
    /// Sections whose key could not be computed: validated at every refresh, never reused.
    uncacheable: Vec<bool>,
    pub(crate) store: Option<Arc<dyn CacheStore>>,
    pub(crate) config_path: Option<PathBuf>,
    /// What readers see: replaced whole by each refresh, so a reader sees the old or the new.
    /// Published with `arc-swap`: a reader never takes a lock and never waits for a writer.
    snapshot: ArcSwap<Snapshot>,
    /// Entered for a whole refresh: at most one validation per section in this process.
    gate: Gate,
    /// Flags between refreshes; locked only briefly, never across validation.
    state: Mutex<RefreshState>,
    pub(crate) stats: Counters,
    warned_save: AtomicBool,
    /// A cache file of another config type was found (warned once).
    warned_foreign: AtomicBool,
    /// The fleet store of `scope = "shared"` sections, if any (see `fleet/`).
    pub(crate) fleet: FleetOptions,
}

/// One section as readers see it.
#[derive(Debug, Clone)]
struct Entry {
    availability: Availability,
    /// The record behind the answer (`None` when pending).
    record: Option<SectionRecord>,
}

#[derive(Debug)]
pub(crate) struct Snapshot {
    entries: Vec<Entry>,
}

#[derive(Debug)]
struct RefreshState {
    /// Per section, how many times it was [`invalidate`](AvailabilityCache::invalidate)d.
    invalidations: Vec<u64>,
    /// Per section, the invalidations that a finished validation answered: the section is
    /// revalidated whatever the file says while `invalidations > answered`. A refresh
    /// clears only what it saw when it began, so an invalidation made while it validates is
    /// never lost.
    answered: Vec<u64>,
    /// The last save failed: save again at the next refresh even if nothing is stale.
    unsaved: bool,
}

/// What one refresh works from: the answers when it started, and the flags then.
#[derive(Debug)]
pub(crate) struct RefreshRun {
    current: Arc<Snapshot>,
    /// Per section: invalidated when this refresh began.
    forced: Vec<bool>,
    /// The invalidation count of each section when this refresh began.
    seen: Vec<u64>,
    unsaved: bool,
}

impl RefreshRun {
    pub(crate) fn nothing_to_do(&self, plan: &[Planned]) -> bool {
        !self.unsaved && plan.iter().all(Result::is_ok)
    }
}

/// For one section: a fresh record to reuse and where it came from, or why to validate.
pub(crate) type Planned = Result<(SectionRecord, Source), Stale>;

impl<C: BlockingValidators> AvailabilityCache<C> {
    /// Opens the cache for `config`, whose config file is `config_path`, with default
    /// options. The cache file goes next to the config file.
    ///
    /// Validates every stale configured section and saves before it returns. Never fails
    /// because of the cache file: problems are recovered from and logged.
    pub fn open(config: C, config_path: impl AsRef<Path>) -> Result<Self, Error>
    where
        C::Context: ContextFree,
    {
        Self::builder(config).config_path(config_path).open()
    }

    /// Revalidates the sections that are stale (changed, expired, failed with the retry due,
    /// or [`invalidate`](Self::invalidate)d), reusing what another process saved meanwhile,
    /// and saves. Readers keep reading the previous answers until it is done; concurrent
    /// calls wait for the running one and then find nothing left to do.
    pub fn refresh(&self) -> Result<RefreshReport, Error> {
        Ok(self.refresh_now(false))
    }

    /// Revalidates only the sections whose answer in memory has expired, whose failure
    /// backoff is over, or that were [`invalidate`](Self::invalidate)d; when there are none
    /// it returns at once, without touching the file system. Made to be called from a timer
    /// thread in a long-running service (`refresh_if_stale_async` is its async form, feature
    /// `tokio`).
    ///
    /// # Example
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
    /// // Everything is fresh: nothing validated, nothing read or written.
    /// let report = cache.refresh_if_stale().unwrap();
    /// assert!(report.validated.is_empty() && !report.saved);
    /// cache.invalidate(ConfigKind::Kv);
    /// assert_eq!(cache.refresh_if_stale().unwrap().validated, ["kv"]);
    /// ```
    pub fn refresh_if_stale(&self) -> Result<RefreshReport, Error> {
        Ok(self.refresh_now(true))
    }
}

impl<C: StorageAvailability> AvailabilityCache<C> {
    /// A builder with every option.
    pub fn builder(config: C) -> AvailabilityCacheBuilder<C> {
        AvailabilityCacheBuilder::new(config)
    }

    pub(crate) fn new(
        config: C,
        options: Options,
        store: Option<Arc<dyn CacheStore>>,
        config_path: Option<PathBuf>,
        context: &KeyContext,
        fleet: FleetOptions,
        validator_context: Arc<C::Context>,
    ) -> Self {
        let stats = Counters::default();
        let (keys, uncacheable) = C::Kind::ALL
            .iter()
            .map(|&kind| match section_key_of(&config, kind, context) {
                Ok(key) => (key, false),
                Err(error) => {
                    bump(&stats.uncacheable, 1);
                    tracing::warn!(target: TARGET, section = kind.name(), %error,
                        "section key cannot be computed; the section will be validated at every open and never reused");
                    (SectionKey::never_matching(), true)
                }
            })
            .unzip();
        let now = options.clock.now();
        let entries = C::Kind::ALL
            .iter()
            .map(|&kind| pending_entry(config.is_configured(kind), now))
            .collect();
        AvailabilityCache {
            config: Arc::new(config),
            validator_context,
            keys,
            store,
            config_path,
            snapshot: ArcSwap::from_pointee(Snapshot { entries }),
            gate: Gate::default(),
            uncacheable,
            state: Mutex::new(RefreshState {
                invalidations: vec![0; C::Kind::ALL.len()],
                answered: vec![0; C::Kind::ALL.len()],
                unsaved: false,
            }),
            options,
            stats,
            warned_save: AtomicBool::new(false),
            warned_foreign: AtomicBool::new(false),
            fleet,
        }
    }

    /// `true` when the section is configured and validated successfully.
    #[inline]
    pub fn is_available(&self, kind: C::Kind) -> bool {
        self.read_snapshot(|s| s.entries[kind.index()].availability.is_available())
    }

    /// The section's availability: no I/O, and no allocation unless the section has error
    /// or warning texts to copy.
    #[inline]
    pub fn status(&self, kind: C::Kind) -> Availability {
        self.read_snapshot(|s| s.entries[kind.index()].availability.clone())
    }

    /// Every section's availability, in declaration order.
    pub fn statuses(&self) -> Vec<(C::Kind, Availability)> {
        self.read_snapshot(|s| {
            C::Kind::ALL
                .iter()
                .map(|&k| (k, s.entries[k.index()].availability.clone()))
                .collect()
        })
    }

    /// The section's record in the cache file's format (`None` before any result).
    pub fn record(&self, kind: C::Kind) -> Option<SectionRecord> {
        self.read_snapshot(|s| s.entries[kind.index()].record.clone())
    }

    /// Marks the section so that the next [`refresh`](Self::refresh) revalidates it. Its
    /// current answer stays until then. Never lost: an invalidation made while a refresh is
    /// validating the section makes the next refresh validate it again.
    pub fn invalidate(&self, kind: C::Kind) {
        let mut state = self.lock_state();
        let count = &mut state.invalidations[kind.index()];
        *count = count.saturating_add(1);
    }

    /// Deletes the cache file and forgets every result: configured sections are
    /// [`Source::Pending`] until the next [`refresh`](Self::refresh).
    pub fn clear(&self) -> Result<(), Error> {
        let _gate = self.gate.enter();
        let mut state = self.lock_state();
        let now = self.options.clock.now();
        let entries = C::Kind::ALL
            .iter()
            .map(|&kind| pending_entry(self.config.is_configured(kind), now))
            .collect();
        self.install(Snapshot { entries });
        state.unsaved = false;
        if let Some(store) = &self.store {
            store.remove().map_err(|source| Error::Io {
                op: "remove cache file",
                path: store.location().map(Path::to_owned).unwrap_or_default(),
                source,
            })?;
        }
        Ok(())
    }

    /// What the cache did since it was opened.
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// The cache file's path; `None` when results are kept in memory only.
    pub fn path(&self) -> Option<&Path> {
        self.store.as_ref().and_then(|s| s.location())
    }

    /// The config this cache answers for.
    pub fn config(&self) -> &C {
        &self.config
    }

    /// The JSON Schema of this config's cache file: the `sections` object lists exactly the
    /// config's section names and rejects any other.
    pub fn json_schema() -> schemars::Schema {
        let names: Vec<&str> = C::Kind::ALL.iter().map(|k| k.name()).collect();
        storage_availability_schema::schema_for_sections(&names)
    }

    /// Lock-free: `arc-swap`'s `load` borrows the current snapshot without touching a lock
    /// or the reference count on the fast path.
    #[inline]
    fn read_snapshot<R>(&self, f: impl FnOnce(&Snapshot) -> R) -> R {
        f(&self.snapshot.load())
    }

    fn install(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    fn lock_state(&self) -> MutexGuard<'_, RefreshState> {
        // A panic cannot leave the state inconsistent (it is flags), so poisoning is
        // ignored rather than turned into a failure.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(feature = "tokio")]
    pub(crate) async fn gate_enter_async(&self) -> crate::gate::GateGuard<'_> {
        self.gate.enter_async().await
    }

    fn read_snapshot_arc(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Is `record` a fresh answer for section `index` at `now`?
    fn freshness(
        &self,
        index: usize,
        record: &SectionRecord,
        now: SystemTime,
    ) -> Result<(), Stale> {
        let max_age = C::max_age(C::Kind::ALL[index]).or(self.options.max_age);
        self.options
            .freshness_within(self.keys[index].as_str(), record, now, max_age)
    }
}

impl<C: StorageAvailability> AvailabilityCache<C> {
    /// Chooses, for each section, a fresh record to reuse or the reason to validate it.
    pub(crate) fn plan(
        &self,
        file: Option<&CacheFile>,
        run: &RefreshRun,
        now: SystemTime,
    ) -> Vec<Planned> {
        let (current, forced) = (&run.current, &run.forced);
        let file = self.own_file(file);
        C::Kind::ALL
            .iter()
            .map(|&kind| {
                let index = kind.index();
                let name = kind.name();
                let key = self.keys[index].as_str();
                let entry = &current.entries[index];
                let file_record = file.and_then(|f| f.sections.get(name));
                let matching = |r: &&SectionRecord| r.section_hash.as_str() == key;
                // `cache = false`: never from the file, so never across starts.
                let from_file = file_record
                    .filter(matching)
                    .filter(|_| C::reused_across_starts(kind))
                    .map(|r| (r, Source::Cache));
                let from_memory = entry
                    .record
                    .as_ref()
                    .filter(matching)
                    .map(|r| (r, entry.availability.source));
                // The newer of what this process has and what the file has.
                let candidate = match (from_file, from_memory) {
                    (Some(f), Some(m)) => Some(if m.0.checked_at >= f.0.checked_at {
                        m
                    } else {
                        f
                    }),
                    (f, m) => f.or(m),
                };
                if !self.config.is_configured(kind) {
                    // Never validated, and always disabled whatever a record says. A record
                    // that says so is kept as it is, so a save does not rewrite it.
                    let record = match candidate {
                        Some((record, _)) if !record.enabled && !record.validation_passed => {
                            record.clone()
                        }
                        _ => self.unconfigured_record(index, now),
                    };
                    return Ok((record, Source::Unconfigured));
                }
                if self.uncacheable[index] {
                    return Err(Stale::Uncacheable);
                }
                if forced[index] {
                    return Err(Stale::Invalidated);
                }
                let Some((record, source)) = candidate else {
                    return Err(if !C::reused_across_starts(kind) {
                        Stale::NotReused
                    } else if file_record.is_some() {
                        Stale::Changed
                    } else {
                        Stale::Missing
                    });
                };
                self.freshness(index, record, now)
                    .map(|()| (record.clone(), source))
            })
            .collect()
    }

    /// `file` if it belongs to this config type; another type's file is ignored (and
    /// replaced by the next save), warned once and counted.
    fn own_file<'f>(&self, file: Option<&'f CacheFile>) -> Option<&'f CacheFile> {
        let file = file?;
        if file.metadata.config_type == C::config_type() {
            return Some(file);
        }
        if !self.warned_foreign.swap(true, Ordering::Relaxed) {
            bump(&self.stats.incompatible_replaced, 1);
            tracing::warn!(target: TARGET, path = ?self.path(),
                found = %file.metadata.config_type, expected = C::config_type(),
                "cache file belongs to another config type; ignoring its records and replacing it");
        }
        None
    }

    /// The record of an unconfigured section, for the core's tests to build files from.
    #[cfg(test)]
    pub(crate) fn unconfigured_record_for_tests(
        &self,
        index: usize,
        now: SystemTime,
    ) -> SectionRecord {
        self.unconfigured_record(index, now)
    }

    fn unconfigured_record(&self, index: usize, now: SystemTime) -> SectionRecord {
        SectionRecord {
            section_hash: section_hash(&self.keys[index]),
            enabled: false,
            validation_passed: false,
            last_error: None,
            errors: Vec::new(),
            warnings: Vec::new(),
            checked_at: Timestamp(truncate_to_micros(now)),
            duration_ms: 0.0,
            consecutive_failures: 0,
        }
    }

    /// Starts a refresh: what readers see now, and the flags to honour.
    pub(crate) fn begin(&self) -> RefreshRun {
        bump(&self.stats.refreshes, 1);
        let state = self.lock_state();
        RefreshRun {
            current: self.read_snapshot_arc(),
            forced: state
                .invalidations
                .iter()
                .zip(&state.answered)
                .map(|(made, answered)| made > answered)
                .collect(),
            seen: state.invalidations.clone(),
            unsaved: state.unsaved && self.store.is_some(),
        }
    }

    /// The blocking refresh: every phase on this thread. With `only_if_stale`, nothing is
    /// read unless the answers in memory have something stale (or unsaved).
    pub(crate) fn refresh_now(&self, only_if_stale: bool) -> RefreshReport {
        let started = Instant::now();
        let _gate = self.gate.enter();
        let run = self.begin();
        let now = || self.options.clock.now();
        let (max_bytes, timeout) = (self.options.max_file_bytes, self.options.lock_timeout);
        // The first steps: the core decides, this thread performs.
        let (mut core, mut decision) =
            Prepare::start(self, &run, self.store.as_ref(), only_if_stale, now());
        let Ready {
            loaded,
            mut plan,
            lock,
            may_save,
        } = loop {
            decision = match decision {
                Decision::Perform(Io::Load(store)) => core.loaded(store.load(max_bytes), now()),
                Decision::Perform(Io::Lock(store)) => core.locked(store.lock(timeout)),
                Decision::Perform(Io::Reload(store)) => {
                    let loaded = store.load(max_bytes);
                    core.reloaded(loaded, store.sweep(), now())
                }
                Decision::Perform(Io::Quarantine(store)) => {
                    core.quarantined(store.quarantine(now()))
                }
                Decision::Finish(plan) => return self.finish(&run, plan, &[], None, started),
                Decision::Validate(ready) => break ready,
            };
        };
        // Fleet store (`fleet/`): stale shared sections from Redis, or leased to validate.
        // Rounds: what this host must validate first, then what other hosts' leases leave.
        let mut fleet = self.fleet_claim(&mut plan);
        let mut stale = Vec::new();
        loop {
            let round = self.fleet_ready(fleet.as_ref(), &plan);
            if !round.is_empty() {
                let jobs = self.jobs(&round);
                let finished = validate::run(
                    &self.config,
                    &self.validator_context,
                    &jobs,
                    self.options.max_parallel,
                );
                self.apply(&mut plan, finished, &loaded, &run, &round, started);
                stale.extend(round);
            }
            if !self.fleet_settle(&mut fleet, &mut plan) {
                break;
            }
        }
        let saved = match self.store.as_deref() {
            Some(store) if may_save => {
                let mut file = self.file_from(&plan);
                file.metadata.config_mtime = config_mtime(self.config_path.as_deref());
                Some(save_with_retries(store, &file))
            }
            _ => None,
        };
        drop(lock);
        self.finish(&run, plan, &stale, saved, started)
    }

    /// Logs and counts how the lock attempt ended; returns the lock and whether to save.
    pub(crate) fn after_lock(
        &self,
        store: &dyn CacheStore,
        outcome: LockOutcome,
    ) -> (Option<StoreLock>, bool) {
        match outcome {
            LockOutcome::Locked(guard) => (Some(guard), true),
            LockOutcome::TimedOut => {
                bump(&self.stats.lock_timeouts, 1);
                tracing::warn!(target: TARGET, path = ?store.location(),
                    timeout = ?self.options.lock_timeout,
                    "another process held the cache lock too long; validating without saving");
                (None, false)
            }
            LockOutcome::Unavailable(reason) => {
                tracing::warn!(target: TARGET, %reason, "working without the cache lock");
                (None, true)
            }
        }
    }

    pub(crate) fn count_swept(&self, swept: usize) {
        if swept > 0 {
            bump(&self.stats.temp_files_swept, swept as u64);
            tracing::info!(target: TARGET, swept, "removed temp files of interrupted saves");
        }
    }

    /// Recovers from what the locked read found; returns whether the file may be written.
    /// `quarantined` is the result of moving a corrupt file aside, done by the caller (on
    /// this thread, or on a blocking thread in `open_async`) only under the lock: unlocked,
    /// the file may be a neighbour's fresh one.
    pub(crate) fn recover(
        &self,
        store: &dyn CacheStore,
        loaded: &Loaded,
        quarantined: Option<std::io::Result<Option<PathBuf>>>,
    ) -> bool {
        match loaded {
            Loaded::Corrupt(reason) => {
                bump(&self.stats.corrupt_recovered, 1);
                let path = store.location();
                match quarantined {
                    Some(Ok(Some(moved))) => {
                        tracing::warn!(target: TARGET, ?path, %reason, to = %moved.display(),
                            "cache file is corrupt; moved it aside and regenerating");
                        true
                    }
                    Some(Err(error)) => {
                        tracing::warn!(target: TARGET, ?path, %reason, %error,
                            "cache file is corrupt and could not be moved aside; it will be replaced");
                        true
                    }
                    Some(Ok(None)) => {
                        tracing::warn!(target: TARGET, ?path, %reason,
                            "cache file is corrupt and was gone or not ours to move; regenerating");
                        true
                    }
                    // Unlocked, the file may be a neighbour's: neither moved nor overwritten.
                    None => {
                        tracing::warn!(target: TARGET, ?path, %reason,
                            "cache file is corrupt; without the cache lock it is left in place \
                             (not moved aside, not overwritten); validating without saving");
                        false
                    }
                }
            }
            Loaded::Unusable(reason) => {
                tracing::warn!(target: TARGET, path = ?store.location(), %reason,
                    "cache file unusable; it will be replaced");
                bump(&self.stats.incompatible_replaced, 1);
                true
            }
            Loaded::NotRegular(reason) => {
                self.warn_save_once(&format!(
                    "the cache path {reason}, which is not ours to replace; keeping results in memory"
                ));
                false
            }
            Loaded::Untrusted(reason) => {
                bump(&self.stats.untrusted, 1);
                let path = store.location();
                if !self.stats.warned_untrusted.swap(true, Ordering::Relaxed) {
                    tracing::warn!(target: TARGET, ?path, %reason,
                        "cache file is not ours, so it is not trusted: validating every section \
                         and replacing it when the directory allows");
                } else {
                    tracing::debug!(target: TARGET, ?path, %reason, "cache file is not ours");
                }
                true
            }
            Loaded::Missing | Loaded::File(_) => true,
        }
    }

    /// Each stale section with its timeout.
    pub(crate) fn jobs(&self, stale: &[(C::Kind, Stale)]) -> Vec<(C::Kind, Duration)> {
        stale
            .iter()
            .map(|&(kind, _)| {
                let timeout = C::timeout(kind).unwrap_or(self.options.validation_timeout);
                (kind, timeout)
            })
            .collect()
    }

    /// Turns validation results into records in `plan`, counting and logging them.
    pub(crate) fn apply(
        &self,
        plan: &mut [Planned],
        finished: Vec<Finished<C::Kind>>,
        loaded: &Loaded,
        run: &RefreshRun,
        stale: &[(C::Kind, Stale)],
        started: Instant,
    ) {
        // Stored with microsecond precision: answer with what the file will hold.
        let checked_at = truncate_to_micros(self.options.clock.now());
        for done in finished {
            let index = done.kind.index();
            bump(&self.stats.validations, 1);
            match done.ending {
                Ending::TimedOut => bump(&self.stats.timeouts, 1),
                Ending::Panicked => bump(&self.stats.panics, 1),
                Ending::Completed => {}
            }
            let previous_failures = previous_failures(
                file_of(loaded),
                &run.current,
                done.kind.name(),
                index,
                &self.keys[index],
            );
            let passed = done.outcome.is_ok();
            crate::metrics::validated(done.kind.name(), done.duration, done.ending, passed);
            let (errors, warnings) = done.outcome.into_parts();
            let record = SectionRecord {
                section_hash: section_hash(&self.keys[index]),
                enabled: passed,
                validation_passed: passed,
                last_error: errors.last().cloned(),
                errors,
                warnings,
                checked_at: Timestamp(checked_at),
                duration_ms: done.duration.as_secs_f64() * 1000.0,
                consecutive_failures: policy::consecutive_failures(passed, previous_failures),
            };
            plan[index] = Ok((record, Source::Validated));
        }
        if !stale.is_empty() {
            let reasons: Vec<String> = stale
                .iter()
                .map(|(kind, why)| format!("{} ({})", kind.name(), why.as_str()))
                .collect();
            tracing::info!(target: TARGET, sections = %reasons.join(", "),
                elapsed = ?started.elapsed(), "validated storage sections");
        }
    }

    /// Records the save's result, publishes the new answers and reports.
    pub(crate) fn finish(
        &self,
        run: &RefreshRun,
        plan: Vec<Planned>,
        stale: &[(C::Kind, Stale)],
        saved: Option<std::io::Result<()>>,
        started: Instant,
    ) -> RefreshReport {
        let mut report = RefreshReport::default();
        let mut state = self.lock_state();
        match saved {
            Some(Ok(())) => {
                bump(&self.stats.saves, 1);
                report.saved = true;
                state.unsaved = false;
            }
            Some(Err(error)) => {
                bump(&self.stats.save_failures, 1);
                state.unsaved = true;
                let path = self
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                self.warn_save_once(&format!(
                    "failed to save cache file {path}: {error}; keeping results in memory and retrying at the next refresh"
                ));
            }
            None => {}
        }
        // By index, so that finishing stays linear in the number of sections.
        let mut was_validated = vec![false; plan.len()];
        for &(kind, _) in stale {
            was_validated[kind.index()] = true;
        }
        let mut entries = Vec::with_capacity(plan.len());
        for (&kind, planned) in C::Kind::ALL.iter().zip(plan) {
            let index = kind.index();
            let validated = was_validated[index];
            if validated {
                // Only the invalidations this refresh saw: later ones stay pending.
                state.answered[index] = state.answered[index].max(run.seen[index]);
            }
            let entry = match planned {
                Ok((record, source)) => {
                    if validated {
                        report.validated.push(kind.name());
                    } else if source != Source::Unconfigured {
                        report.reused.push(kind.name());
                    }
                    Entry {
                        availability: availability_of(&record, source),
                        record: Some(record),
                    }
                }
                // Only reachable if validation produced no record, which the runners rule
                // out; answer "unavailable" rather than panic.
                Err(why) => Entry {
                    availability: Availability {
                        enabled: false,
                        validation_passed: false,
                        last_error: Some(format!("not validated: {}", why.as_str())),
                        errors: Vec::new(),
                        warnings: Vec::new(),
                        checked_at: self.options.clock.now(),
                        duration: Duration::ZERO,
                        source: Source::Pending,
                    },
                    record: None,
                },
            };
            entries.push(entry);
        }
        drop(state);
        bump(&self.stats.misses, report.validated.len() as u64);
        bump(&self.stats.hits, report.reused.len() as u64);
        crate::metrics::published(
            C::Kind::ALL
                .iter()
                .zip(&entries)
                .map(|(kind, entry)| (kind.name(), entry.availability.is_available())),
            &report,
            &self.stats,
        );
        self.install(Snapshot { entries });
        report.duration = started.elapsed();
        report
    }

    pub(crate) fn file_from(&self, plan: &[Planned]) -> CacheFile {
        let sections = C::Kind::ALL
            .iter()
            .zip(plan)
            .filter_map(|(kind, p)| {
                p.as_ref()
                    .ok()
                    .map(|(r, _)| (kind.name().to_owned(), r.clone()))
            })
            .collect();
        CacheFile {
            schema_version: SCHEMA_VERSION.to_owned(),
            metadata: Metadata {
                generator: concat!("storage-availability ", env!("CARGO_PKG_VERSION")).to_owned(),
                generated_at: Timestamp(self.options.clock.now()),
                config_type: C::config_type().to_owned(),
                config_path: self.config_path.as_ref().map(|p| p.display().to_string()),
                config_mtime: None,
                platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            },
            sections,
        }
    }

    fn warn_save_once(&self, message: &str) {
        if !self.warned_save.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: TARGET, "{message}");
        } else {
            tracing::debug!(target: TARGET, "{message}");
        }
    }
}

/// The config file's modification time in Unix seconds, for diagnostics only.
pub(crate) fn config_mtime(config_path: Option<&Path>) -> Option<f64> {
    config_path
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

/// Saves, retrying transient failures with a short backoff.
pub(crate) fn save_with_retries(store: &dyn CacheStore, file: &CacheFile) -> std::io::Result<()> {
    let mut attempt = 1;
    loop {
        match store.save(file) {
            Ok(()) => return Ok(()),
            Err(error) if attempt >= SAVE_ATTEMPTS || !worth_retrying(&error) => {
                return Err(error);
            }
            Err(error) => {
                tracing::debug!(target: TARGET, attempt, %error, "save failed; retrying");
                std::thread::sleep(Duration::from_millis(5 * 4u64.pow(attempt - 1)));
                attempt += 1;
            }
        }
    }
}

/// The stale sections of a plan, with the reason for each.
pub(crate) fn stale_sections<C: StorageAvailability>(plan: &[Planned]) -> Vec<(C::Kind, Stale)> {
    C::Kind::ALL
        .iter()
        .zip(plan)
        .filter_map(|(&kind, p)| p.as_ref().err().map(|&why| (kind, why)))
        .collect()
}

/// Permission and read-only errors will not go away in milliseconds.
fn worth_retrying(error: &std::io::Error) -> bool {
    !matches!(
        error.kind(),
        std::io::ErrorKind::PermissionDenied
            | std::io::ErrorKind::ReadOnlyFilesystem
            | std::io::ErrorKind::NotFound
            | std::io::ErrorKind::IsADirectory
    )
}

pub(crate) fn file_of(loaded: &Loaded) -> Option<&CacheFile> {
    match loaded {
        Loaded::File(file) => Some(file),
        _ => None,
    }
}

/// The consecutive failures recorded for this very section content before this validation,
/// in the file and in memory.
fn previous_failures<'a>(
    file: Option<&'a CacheFile>,
    current: &'a Snapshot,
    name: &str,
    index: usize,
    key: &'a SectionKey,
) -> impl Iterator<Item = u32> + 'a {
    let same = move |r: &&SectionRecord| r.section_hash.as_str() == key.as_str();
    let from_file = file.and_then(|f| f.sections.get(name)).filter(same);
    let from_memory = current.entries[index].record.as_ref().filter(same);
    from_file
        .into_iter()
        .chain(from_memory)
        .map(policy::failures_of)
}

fn section_hash(key: &SectionKey) -> SectionHash {
    SectionHash::new(key.as_str()).expect("a SectionKey is always 64 lowercase hex digits")
}

fn truncate_to_micros(t: SystemTime) -> SystemTime {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => SystemTime::UNIX_EPOCH + Duration::from_micros(d.as_micros() as u64),
        Err(_) => t,
    }
}

fn pending_entry(configured: bool, now: SystemTime) -> Entry {
    Entry {
        availability: Availability {
            enabled: false,
            validation_passed: false,
            last_error: None,
            errors: Vec::new(),
            warnings: Vec::new(),
            checked_at: now,
            duration: Duration::ZERO,
            source: if configured {
                Source::Pending
            } else {
                Source::Unconfigured
            },
        },
        record: None,
    }
}

/// The key of one section in `context`; a panic in the user's code (its `Serialize`, its
/// `key_with`) is an error, never a panic out of `open`.
fn section_key_of<C: StorageAvailability>(
    config: &C,
    kind: C::Kind,
    context: &KeyContext,
) -> Result<SectionKey, crate::fingerprint::KeyError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        config.section_key_in(kind, context)
    }))
    .unwrap_or_else(|payload| {
        Err(crate::fingerprint::KeyError::Panicked {
            section: kind.name().to_owned(),
            message: crate::validate::panic_message(&*payload),
        })
    })
}

fn availability_of(record: &SectionRecord, source: Source) -> Availability {
    // An unconfigured section is disabled whatever its record says.
    let configured = source != Source::Unconfigured;
    Availability {
        enabled: configured && record.enabled,
        validation_passed: configured && record.validation_passed,
        last_error: record.last_error.clone(),
        errors: record.errors.clone(),
        warnings: record.warnings.clone(),
        checked_at: record.checked_at.0,
        duration: Duration::try_from_secs_f64(record.duration_ms / 1000.0).unwrap_or_default(),
        source,
    }
}

impl<C: StorageAvailability> fmt::Debug for AvailabilityCache<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AvailabilityCache")
            .field("config_type", &C::config_type())
            .field("path", &self.path())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    //! Smoke tests with a hand-written config; the full suite is in the `tests` crate.
    use super::*;
    use crate::section::{BlockingValidators, Outcome};
    use std::sync::atomic::AtomicUsize;

    use crate::test_support::K;

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    struct Cfg {
        a: u32,
        b: Option<u32>,
    }
    impl BlockingValidators for Cfg {}
    impl StorageAvailability for Cfg {
        type Kind = K;
        type Context = ();
        fn config_type() -> &'static str {
            "cache::tests::Cfg"
        }
        fn section_key_in(
            &self,
            kind: K,
            context: &KeyContext,
        ) -> Result<SectionKey, crate::KeyError> {
            let spec = crate::SectionSpec::new(Self::config_type(), kind.name());
            match kind {
                K::A => crate::section_key(&spec, context, Some(&self.a)),
                K::B => crate::section_key(&spec, context, self.b.as_ref()),
            }
        }
        fn validate(&self, kind: K) -> Outcome {
            CALLS.fetch_add(1, Ordering::SeqCst);
            match kind {
                K::A if self.a == 0 => Outcome::failed("zero"),
                _ => Outcome::ok(),
            }
        }
        fn is_configured(&self, kind: K) -> bool {
            kind == K::A || self.b.is_some()
        }
        fn timeout(_: K) -> Option<Duration> {
            None
        }
        fn version(_: K) -> u32 {
            1
        }
        fn app_version() -> &'static str {
            "t"
        }
    }

    /// Hand-written: overrides only `section_key` (the old way), or neither key method.
    struct Legacy {
        implements_section_key: bool,
    }
    impl BlockingValidators for Legacy {}
    impl StorageAvailability for Legacy {
        type Kind = K;
        type Context = ();
        fn section_key(&self, kind: K) -> SectionKey {
            if self.implements_section_key {
                let spec = crate::SectionSpec::new("cache::tests::Legacy", kind.name());
                crate::section_key(&spec, &KeyContext::new("t"), Some(&1))
                    .unwrap_or_else(|_| SectionKey::never_matching())
            } else {
                crate::fingerprint::default_section_key(|| {
                    self.section_key_in(kind, &KeyContext::new("t"))
                })
            }
        }
        fn validate(&self, _: K) -> Outcome {
            Outcome::ok()
        }
        fn is_configured(&self, _: K) -> bool {
            true
        }
        fn timeout(_: K) -> Option<Duration> {
            None
        }
        fn version(_: K) -> u32 {
            1
        }
        fn app_version() -> &'static str {
            "t"
        }
    }

    #[test]
    fn hand_written_impls_with_only_section_key_or_neither_work() {
        let dir = tempfile::tempdir().unwrap();
        let open = |implements_section_key| {
            AvailabilityCache::builder(Legacy {
                implements_section_key,
            })
            .cache_path(dir.path().join(format!("{implements_section_key}.json")))
            .open()
            .unwrap()
        };
        // Only `section_key`: its keys are used, and reused at the next open.
        assert_eq!(open(true).stats().uncacheable, 0);
        assert_eq!(open(true).status(K::A).source, Source::Cache);
        // Neither: no recursion without end, just uncacheable sections.
        let legacy = Legacy {
            implements_section_key: false,
        };
        assert!(matches!(
            legacy.section_key_in(K::A, &KeyContext::new("t")),
            Err(crate::KeyError::NotImplemented { .. })
        ));
        assert_eq!(legacy.section_key(K::A).len(), 64);
        let cache = open(false);
        assert_eq!(cache.stats().uncacheable, 2);
        assert!(cache.is_available(K::A));
        assert_eq!(open(false).status(K::A).source, Source::Validated);
    }

    #[test]
    fn cold_then_warm_then_changed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg_path = dir.path().join("s.yaml");
        let calls = || CALLS.load(Ordering::SeqCst);
        let c = AvailabilityCache::open(Cfg { a: 1, b: None }, &cfg_path).unwrap();
        assert_eq!(calls(), 1);
        assert!(c.is_available(K::A));
        assert_eq!(c.status(K::B).source, Source::Unconfigured);
        assert_eq!(c.stats().saves, 1);
        let c = AvailabilityCache::open(Cfg { a: 1, b: None }, &cfg_path).unwrap();
        assert_eq!(calls(), 1);
        assert_eq!(c.status(K::A).source, Source::Cache);
        assert_eq!(c.stats().saves, 0);
        let c = AvailabilityCache::open(Cfg { a: 0, b: Some(2) }, &cfg_path).unwrap();
        assert_eq!(calls(), 3);
        assert!(!c.is_available(K::A));
        assert_eq!(c.status(K::A).last_error.as_deref(), Some("zero"));
        assert_eq!(c.record(K::A).unwrap().consecutive_failures, 1);
        c.invalidate(K::A);
        let report = c.refresh().unwrap();
        assert_eq!(report.validated, ["a"]);
        assert_eq!(c.record(K::A).unwrap().consecutive_failures, 2);
        assert_eq!(calls(), 4);
    }
}
