//! Before validation: which record answers each section (the plan), and what the reads of
//! the file and the lock attempt mean (logged and counted).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use storage_availability_schema::{CacheFile, SectionRecord, Timestamp};

use super::{Core, RefreshRun, TARGET, section_hash, truncate_to_micros};
use crate::policy::{self, Planned, Recheck, Stale};
use crate::section::{Source, StorageAvailability, StorageKind};
use crate::stats::bump;
use crate::store::{CacheStore, LockOutcome, StoreLock, StoreRead};

impl<C: StorageAvailability> Core<C> {
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
                    return Planned::Reuse(record, Source::Unconfigured);
                }
                if self.uncacheable[index] {
                    let memory = entry
                        .record
                        .as_ref()
                        .map(|r| (r, entry.availability.source));
                    return self.uncacheable_rule(run.recheck, kind, memory, now);
                }
                if forced[index] {
                    return Planned::Stale(Stale::Invalidated);
                }
                let Some((record, source)) = candidate else {
                    return Planned::Stale(if !C::reused_across_starts(kind) {
                        Stale::NotReused
                    } else if file_record.is_some() {
                        Stale::Changed
                    } else {
                        Stale::Missing
                    });
                };
                let fresh = self.freshness(index, record, now);
                self.running_rule(run.recheck, kind, (record, source), fresh, now)
            })
            .collect()
    }

    /// The `recheck_every` of a section: its `#[storage(recheck_secs = N)]`, else the
    /// builder's.
    pub(crate) fn recheck_every(&self, kind: C::Kind) -> Duration {
        C::recheck_every(kind).unwrap_or(self.options.recheck_every)
    }

    /// The refresh-ahead margin of a section (see [`policy::refresh_ahead`]): only for the
    /// refresher (`Recheck::Ahead`).
    pub(crate) fn ahead_of(&self, kind: C::Kind, recheck: Recheck) -> Duration {
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
    fn running_rule(
        &self,
        recheck: Recheck,
        kind: C::Kind,
        (record, source): (&SectionRecord, Source),
        fresh: Result<(), Stale>,
        now: SystemTime,
    ) -> Planned {
        let due = || {
            policy::recheck(
                record.checked_at.0,
                now,
                self.recheck_every(kind),
                self.ahead_of(kind, recheck),
            )
        };
        match (fresh, recheck) {
            (Ok(()), Recheck::No | Recheck::Start) => Planned::Reuse(record.clone(), source),
            (Ok(()), Recheck::Due | Recheck::Ahead) => match due() {
                Ok(()) => Planned::Reuse(record.clone(), source),
                Err(why) => Planned::Stale(why),
            },
            (Err(Stale::Expired), Recheck::Start) if self.serves_stale(kind, record, now) => {
                tracing::info!(target: TARGET, section = kind.name(),
                    "answering with an expired passed result (stale-while-revalidate); \
                     it is revalidated in the background");
                Planned::Reuse(record.clone(), Source::Stale)
            }
            (Err(why), _) => Planned::Stale(why),
        }
    }

    /// The plan of a section whose key cannot be computed: validated at every start and
    /// every `refresh`, never reused from the file; but a running service
    /// (`refresh_if_stale`, the refresher) keeps this process's own answer for
    /// `recheck_every` like any other (the config in memory cannot change), instead of
    /// validating it at every look.
    fn uncacheable_rule(
        &self,
        recheck: Recheck,
        kind: C::Kind,
        memory: Option<(&SectionRecord, Source)>,
        now: SystemTime,
    ) -> Planned {
        match (recheck, memory) {
            (Recheck::Due | Recheck::Ahead, Some((record, source)))
                if policy::recheck(
                    record.checked_at.0,
                    now,
                    self.recheck_every(kind),
                    self.ahead_of(kind, recheck),
                )
                .is_ok() =>
            {
                Planned::Reuse(record.clone(), source)
            }
            _ => Planned::Stale(Stale::Uncacheable),
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

    pub(crate) fn unconfigured_record(&self, index: usize, now: SystemTime) -> SectionRecord {
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

    /// Recovers from what the last read found; returns whether the file may be written.
    /// `quarantined` is the result of moving a corrupt file aside, asked for only under the
    /// lock: unlocked, the file may be a neighbour's fresh one.
    pub(crate) fn recover(
        &self,
        store: &dyn CacheStore,
        loaded: &StoreRead,
        quarantined: Option<io::Result<Option<PathBuf>>>,
    ) -> bool {
        match loaded {
            StoreRead::Corrupt(reason) => {
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
            StoreRead::Unusable(reason) => {
                tracing::warn!(target: TARGET, path = ?store.location(), %reason,
                    "cache file unusable; it will be replaced");
                bump(&self.stats.incompatible_replaced, 1);
                true
            }
            StoreRead::NotRegular(reason) => {
                self.warn_save_once(&format!(
                    "the cache path {reason}, which is not ours to replace; keeping results in memory"
                ));
                false
            }
            StoreRead::Untrusted(reason) => {
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
            StoreRead::Missing | StoreRead::File(_) => true,
        }
    }
}
