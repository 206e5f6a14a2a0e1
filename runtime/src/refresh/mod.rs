//! The refresh core: the whole order of a refresh (read, lock, read again, sweep,
//! quarantine, ask the fleet, validate in rounds, save, publish) and every decision between
//! the steps, without I/O and without reading the clock: time is an input.
//!
//! A driver (`drive/blocking.rs`, `drive/tokio.rs`) starts a [`Refresh`], performs the one
//! step each [`Decision::Perform`] asks for (on its thread, or on `spawn_blocking`), and
//! hands the result back with the time, until [`Decision::Done`]: the snapshot to publish
//! and the report. So the two drivers cannot take the steps in different orders
//! (`tests/tests/parity.rs` checks they do not), and the tests below drive the core with a
//! scripted `World` instead of a file system.
//!
//! `plan.rs` decides before validation (the plan, the lock, recovery from a bad file);
//! `apply.rs` after it (the one place a validator's outcome is recorded, the file to save,
//! what to publish).

mod apply;
mod plan;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use storage_availability_schema::{CacheFile, SectionHash, SectionRecord};

use crate::builder::Options;
use crate::fingerprint::{KeyContext, SectionKey};
use crate::fleet::{self, FleetClaim, FleetOptions, FleetRequest};
use crate::policy::{Planned, Recheck, Stale};
use crate::section::{Availability, Source, StorageAvailability, StorageKind};
use crate::stats::{Counters, RefreshReport, bump};
use crate::store::{CacheStore, LockOutcome, StoreLock, StoreRead};
use crate::validate::Finished;

const TARGET: &str = "storage_availability";

/// What every refresh of one cache works from: the config, its keys, the options, the
/// stores, and the counters the steps add to. Owned by the cache, borrowed by each refresh.
pub(crate) struct Core<C: StorageAvailability> {
    pub(crate) config: Arc<C>,
    /// What every validator receives besides its section (`()` for most configs); not part
    /// of any key.
    pub(crate) validator_context: Arc<C::Context>,
    pub(crate) options: Options,
    pub(crate) keys: Vec<SectionKey>,
    /// Sections whose key could not be computed: validated at every refresh, never reused.
    pub(crate) uncacheable: Vec<bool>,
    pub(crate) store: Option<Arc<dyn CacheStore>>,
    pub(crate) config_path: Option<PathBuf>,
    pub(crate) stats: Counters,
    /// The fleet store of `scope = "shared"` sections, if any (see `fleet/`).
    pub(crate) fleet: FleetOptions,
    warned_save: AtomicBool,
    /// A cache file of another config type was found (warned once).
    warned_foreign: AtomicBool,
}

impl<C: StorageAvailability> Core<C> {
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
        Core {
            config: Arc::new(config),
            validator_context,
            options,
            keys,
            uncacheable,
            store,
            config_path,
            stats,
            fleet,
            warned_save: AtomicBool::new(false),
            warned_foreign: AtomicBool::new(false),
        }
    }

    /// The cache file's path; `None` when results are kept in memory only.
    pub(crate) fn path(&self) -> Option<&Path> {
        self.store.as_ref().and_then(|s| s.location())
    }

    /// Every section pending (or unconfigured): what readers see before any answer.
    pub(crate) fn pending(&self, now: SystemTime) -> Snapshot {
        Snapshot::new(
            C::Kind::ALL
                .iter()
                .map(|&kind| pending_entry(self.config.is_configured(kind), now))
                .collect(),
        )
    }
}

/// One section as readers see it.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) availability: Availability,
    /// The record behind the answer (`None` when pending).
    pub(crate) record: Option<SectionRecord>,
}

/// What readers see: built by a refresh, published whole.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) entries: Vec<Entry>,
}

impl Snapshot {
    pub(crate) fn new(entries: Vec<Entry>) -> Self {
        Snapshot { entries }
    }

    /// Bit `i` set when section `i` (of the first 64) is available.
    pub(crate) fn available_bits(&self) -> u64 {
        self.entries
            .iter()
            .take(64)
            .enumerate()
            .filter(|(_, e)| e.availability.is_available())
            .fold(0, |bits, (i, _)| bits | 1 << i)
    }
}

/// What one refresh works from: the answers when it started, and the flags then.
#[derive(Debug)]
pub(crate) struct RefreshRun {
    pub(crate) current: Arc<Snapshot>,
    /// Per section: invalidated when this refresh began.
    pub(crate) forced: Vec<bool>,
    /// The invalidation count of each section when this refresh began.
    pub(crate) seen: Vec<u64>,
    pub(crate) unsaved: bool,
    /// Which clock this refresh answers to: a start, a `refresh`, a running service's.
    pub(crate) recheck: Recheck,
}

impl RefreshRun {
    fn nothing_to_do(&self, plan: &[Planned]) -> bool {
        !self.unsaved && plan.iter().all(Planned::is_fresh)
    }
}

/// How a refresh ended: what to publish and report.
#[derive(Debug)]
pub(crate) struct Done {
    pub(crate) snapshot: Snapshot,
    pub(crate) report: RefreshReport,
    /// Per section: validated by this refresh (its invalidations are answered).
    pub(crate) validated: Vec<bool>,
    /// `Some(true)`: the save failed (save again next time); `Some(false)`: saved; `None`:
    /// no save was attempted.
    pub(crate) unsaved: Option<bool>,
}

/// One step for the driver to perform, with what it needs; the result goes back to the
/// [`Refresh`] method named on each variant.
pub(crate) enum Io<C: StorageAvailability> {
    /// `store.load(max_bytes)`, without the lock; then [`Refresh::loaded`].
    Load {
        store: Arc<dyn CacheStore>,
        max_bytes: u64,
    },
    /// `store.lock(timeout)`; then [`Refresh::locked`].
    Lock {
        store: Arc<dyn CacheStore>,
        timeout: Duration,
    },
    /// Under the lock: `store.load(max_bytes)`, then `store.sweep()`; then
    /// [`Refresh::reloaded`].
    Reload {
        store: Arc<dyn CacheStore>,
        max_bytes: u64,
    },
    /// Under the lock, the re-read file is corrupt: `store.quarantine(now)`; then
    /// [`Refresh::quarantined`].
    Quarantine { store: Arc<dyn CacheStore> },
    /// `request.claim()` (blocking round trips); then [`Refresh::fleet_claimed`].
    AskFleet(Box<FleetRequest>),
    /// Run the validators of `jobs` (each with its timeout); then [`Refresh::validated`].
    Validate {
        config: Arc<C>,
        context: Arc<C::Context>,
        jobs: Vec<(C::Kind, Duration)>,
        max_parallel: usize,
    },
    /// `claim.settle()` (publish, release, wait for other hosts' leases); then
    /// [`Refresh::settled`].
    Settle(Box<FleetClaim>),
    /// Set `file.metadata.config_mtime` from `config_path`, save (with retries), then drop
    /// the lock; then [`Refresh::saved`].
    Save {
        store: Arc<dyn CacheStore>,
        file: Box<CacheFile>,
        lock: Option<StoreLock>,
        config_path: Option<PathBuf>,
    },
}

/// What the core decided after a step.
pub(crate) enum Decision<C: StorageAvailability> {
    Perform(Io<C>),
    /// The refresh is over: publish and report.
    Done(Done),
}

/// One refresh, step by step.
pub(crate) struct Refresh<'a, C: StorageAvailability> {
    core: &'a Core<C>,
    run: &'a RefreshRun,
    /// The last read of the file.
    loaded: StoreRead,
    /// The plan from the last read, then with the fleet's and the validators' answers.
    plan: Vec<Planned>,
    /// Held until the save is done.
    lock: Option<StoreLock>,
    /// `false`: validate, but do not write the file (lock timed out, corrupt file seen
    /// without the lock, a path that is not ours, no store).
    may_save: bool,
    fleet: Option<FleetClaim>,
    /// The sections of the validation round under way.
    round: Vec<(C::Kind, Stale)>,
    /// Every section validated so far.
    validated: Vec<(C::Kind, Stale)>,
}

impl<'a, C: StorageAvailability> Refresh<'a, C> {
    /// Starts a refresh. For a running service's refresh (`run.recheck`), the answers in
    /// memory are checked first, and a refresh with nothing stale in memory ends without
    /// any I/O.
    pub(crate) fn start(
        core: &'a Core<C>,
        run: &'a RefreshRun,
        now: SystemTime,
    ) -> (Self, Decision<C>) {
        let only_if_stale = run.recheck.only_if_stale();
        let mut refresh = Refresh {
            core,
            run,
            loaded: StoreRead::Missing,
            plan: Vec::new(),
            lock: None,
            may_save: false,
            fleet: None,
            round: Vec::new(),
            validated: Vec::new(),
        };
        let decision = match &core.store {
            // In memory only: nothing to read, lock or save.
            None => {
                refresh.plan = core.plan(None, run, now);
                if run.nothing_to_do(&refresh.plan) {
                    refresh.done(None, now)
                } else {
                    refresh.ask_fleet(now)
                }
            }
            Some(store) => {
                if only_if_stale {
                    refresh.plan = core.plan(None, run, now);
                }
                if only_if_stale && run.nothing_to_do(&refresh.plan) {
                    refresh.done(None, now)
                } else {
                    Decision::Perform(Io::Load {
                        store: Arc::clone(store),
                        max_bytes: core.options.max_file_bytes,
                    })
                }
            }
        };
        (refresh, decision)
    }

    /// The unlocked read: a warm start ends here.
    pub(crate) fn loaded(&mut self, loaded: StoreRead, now: SystemTime) -> Decision<C> {
        self.read(loaded, now);
        if self.run.nothing_to_do(&self.plan) {
            return self.done(None, now);
        }
        match &self.core.store {
            Some(store) => Decision::Perform(Io::Lock {
                store: Arc::clone(store),
                timeout: self.core.options.lock_timeout,
            }),
            None => self.ready(None, now),
        }
    }

    /// The lock attempt: logged and counted; without the lock, validate from the unlocked
    /// read and never move or overwrite a corrupt file.
    pub(crate) fn locked(&mut self, outcome: LockOutcome, now: SystemTime) -> Decision<C> {
        let Some(store) = &self.core.store else {
            return self.ready(None, now);
        };
        (self.lock, self.may_save) = self.core.after_lock(store.as_ref(), outcome);
        if self.lock.is_some() {
            Decision::Perform(Io::Reload {
                store: Arc::clone(store),
                max_bytes: self.core.options.max_file_bytes,
            })
        } else {
            self.ready(None, now)
        }
    }

    /// The locked re-read and the sweep: a neighbour may have done the work meanwhile.
    pub(crate) fn reloaded(
        &mut self,
        loaded: StoreRead,
        swept: usize,
        now: SystemTime,
    ) -> Decision<C> {
        self.read(loaded, now);
        self.core.count_swept(swept);
        // A neighbour did the work while we waited: reuse it, write nothing.
        if self.run.nothing_to_do(&self.plan) {
            return self.done(None, now);
        }
        match (&self.core.store, &self.loaded) {
            // Only under the lock, and only now that the work is known to be ours.
            (Some(store), StoreRead::Corrupt(_)) => Decision::Perform(Io::Quarantine {
                store: Arc::clone(store),
            }),
            _ => self.ready(None, now),
        }
    }

    /// The corrupt file was moved aside (or could not be).
    pub(crate) fn quarantined(
        &mut self,
        result: io::Result<Option<PathBuf>>,
        now: SystemTime,
    ) -> Decision<C> {
        self.ready(Some(result), now)
    }

    /// What the fleet store settled without waiting (`None`: the round trips could not
    /// run; everything is validated here).
    pub(crate) fn fleet_claimed(
        &mut self,
        claim: Option<FleetClaim>,
        now: SystemTime,
    ) -> Decision<C> {
        if let Some(mut claim) = claim {
            fleet::merge::<C>(&mut claim, &mut self.plan, &self.core.stats.fleet);
            self.fleet = Some(claim);
        }
        self.next_round(now)
    }

    /// The validators of the round ended: record their outcomes.
    pub(crate) fn validated(
        &mut self,
        finished: Vec<Finished<C::Kind>>,
        now: SystemTime,
        elapsed: Duration,
    ) -> Decision<C> {
        let round = std::mem::take(&mut self.round);
        let file = file_of(&self.loaded);
        self.core.apply(
            &mut self.plan,
            finished,
            file,
            self.run,
            &round,
            now,
            elapsed,
        );
        self.validated.extend(round);
        self.settle(now)
    }

    /// The fleet published this host's results and waited for the others'; `Some((claim,
    /// true))` when sections are left to validate here (`None`: it could not run).
    pub(crate) fn settled(
        &mut self,
        settled: Option<(Box<FleetClaim>, bool)>,
        now: SystemTime,
    ) -> Decision<C> {
        match settled {
            Some((mut claim, more)) => {
                fleet::merge::<C>(&mut claim, &mut self.plan, &self.core.stats.fleet);
                self.fleet = Some(*claim);
                if more {
                    self.next_round(now)
                } else {
                    self.save(now)
                }
            }
            // Whatever was deferred is validated here.
            None => self.next_round(now),
        }
    }

    /// The save's result (the lock is released).
    pub(crate) fn saved(&mut self, result: io::Result<()>, now: SystemTime) -> Decision<C> {
        self.done(Some(result), now)
    }

    fn read(&mut self, loaded: StoreRead, now: SystemTime) {
        self.loaded = loaded;
        self.plan = self.core.plan(file_of(&self.loaded), self.run, now);
    }

    /// Recovers from what the last read found (logged, counted), then validation begins.
    fn ready(
        &mut self,
        quarantined: Option<io::Result<Option<PathBuf>>>,
        now: SystemTime,
    ) -> Decision<C> {
        if let Some(store) = &self.core.store {
            self.may_save &= self.core.recover(store.as_ref(), &self.loaded, quarantined);
        }
        self.ask_fleet(now)
    }

    /// Stale shared sections go to the fleet store first.
    fn ask_fleet(&mut self, now: SystemTime) -> Decision<C> {
        let core = self.core;
        match fleet::request::<C>(&core.fleet, &core.options, &core.keys, &self.plan) {
            Some(request) => Decision::Perform(Io::AskFleet(Box::new(request))),
            None => self.next_round(now),
        }
    }

    /// Validates what is stale and not waiting for another host's lease; nothing: settle.
    fn next_round(&mut self, now: SystemTime) -> Decision<C> {
        let round = fleet::ready::<C>(self.fleet.as_ref(), &self.plan);
        if round.is_empty() {
            return self.settle(now);
        }
        let jobs = self.core.jobs(&round);
        self.round = round;
        Decision::Perform(Io::Validate {
            config: Arc::clone(&self.core.config),
            context: Arc::clone(&self.core.validator_context),
            jobs,
            max_parallel: self.core.options.max_parallel,
        })
    }

    /// After a round: the fleet publishes and waits for the rest (if there is a fleet).
    fn settle(&mut self, now: SystemTime) -> Decision<C> {
        match self.fleet.take() {
            Some(mut claim) => {
                claim.prepare(&mut self.plan);
                Decision::Perform(Io::Settle(Box::new(claim)))
            }
            None => self.save(now),
        }
    }

    /// Saves if allowed: only with the lock held (or locking unsupported), never over what
    /// is not ours or not a regular file.
    fn save(&mut self, now: SystemTime) -> Decision<C> {
        let lock = self.lock.take();
        match &self.core.store {
            Some(store) if self.may_save => Decision::Perform(Io::Save {
                store: Arc::clone(store),
                file: Box::new(self.core.file_from(&self.plan, now)),
                lock,
                config_path: self.core.config_path.clone(),
            }),
            _ => self.done(None, now),
        }
    }

    fn done(&mut self, saved: Option<io::Result<()>>, now: SystemTime) -> Decision<C> {
        self.lock = None;
        let plan = std::mem::take(&mut self.plan);
        Decision::Done(
            self.core
                .finish(plan, self.run, &self.validated, saved, now),
        )
    }
}

pub(crate) fn file_of(loaded: &StoreRead) -> Option<&CacheFile> {
    match loaded {
        StoreRead::File(file) => Some(file),
        _ => None,
    }
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

#[cfg(test)]
mod tests;
