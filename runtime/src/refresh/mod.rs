//! The refresh core: the order of a refresh's first steps (read, lock, read again, sweep,
//! quarantine) and every decision between them, without I/O and without reading the clock.
//! A driver (the blocking one in `cache.rs`, the tokio one in `async_cache.rs`) asks
//! [`Prepare`] what to do, performs that one step (on its thread, or on `spawn_blocking`),
//! and hands the result back with the time; so the two drivers cannot take the steps in
//! different orders (`tests/tests/parity.rs` checks they do not).
//!
//! The core ends in one of two [`Decision`]s: [`Finish`](Decision::Finish) (nothing is
//! stale: no lock, nothing written) or [`Validate`](Decision::Validate) (what to validate
//! from, holding the lock if it was taken, and whether the file may be written).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use crate::cache::{AvailabilityCache, Planned, RefreshRun, file_of};
use crate::section::StorageAvailability;
use crate::store::{CacheStore, Loaded, LockOutcome, StoreLock};

/// One step for the driver to perform, with the store to perform it on.
pub(crate) enum Io<'a> {
    /// `store.load(max_file_bytes)`, without the lock; then [`Prepare::loaded`].
    Load(&'a Arc<dyn CacheStore>),
    /// `store.lock(lock_timeout)`; then [`Prepare::locked`].
    Lock(&'a Arc<dyn CacheStore>),
    /// Under the lock: `store.load(max_file_bytes)`, then `store.sweep()`; then
    /// [`Prepare::reloaded`].
    Reload(&'a Arc<dyn CacheStore>),
    /// Under the lock, the re-read file is corrupt: `store.quarantine(now)`; then
    /// [`Prepare::quarantined`].
    Quarantine(&'a Arc<dyn CacheStore>),
}

/// What the core decided after a step.
pub(crate) enum Decision<'a> {
    Perform(Io<'a>),
    /// Nothing is stale (or left unsaved): publish this plan, write nothing.
    Finish(Vec<Planned>),
    /// Validate what the plan still has stale (through the fleet first), then save if
    /// allowed.
    Validate(Ready),
}

/// Where validation starts from.
pub(crate) struct Ready {
    /// The last read of the file (for the failure counts it holds).
    pub(crate) loaded: Loaded,
    pub(crate) plan: Vec<Planned>,
    /// Held until the save is done.
    pub(crate) lock: Option<StoreLock>,
    /// `false`: validate, but do not write the file (lock timed out, corrupt file seen
    /// without the lock, a path that is not ours, no store).
    pub(crate) may_save: bool,
}

/// The first steps of one refresh.
pub(crate) struct Prepare<'a, C: StorageAvailability> {
    cache: &'a AvailabilityCache<C>,
    run: &'a RefreshRun,
    store: Option<&'a Arc<dyn CacheStore>>,
    loaded: Loaded,
    /// The plan from the last read.
    plan: Vec<Planned>,
    lock: Option<StoreLock>,
    may_save: bool,
}

impl<'a, C: StorageAvailability> Prepare<'a, C> {
    /// Starts a refresh. With `only_if_stale`, the answers in memory are checked first, and
    /// a refresh with nothing stale in memory ends without any I/O.
    pub(crate) fn start(
        cache: &'a AvailabilityCache<C>,
        run: &'a RefreshRun,
        store: Option<&'a Arc<dyn CacheStore>>,
        only_if_stale: bool,
        now: SystemTime,
    ) -> (Self, Decision<'a>) {
        let prepare = Prepare {
            cache,
            run,
            store,
            loaded: Loaded::Missing,
            plan: Vec::new(),
            lock: None,
            may_save: false,
        };
        let Some(store) = store else {
            // In memory only: nothing to read, lock or save.
            let plan = cache.plan(None, run, now);
            if run.nothing_to_do(&plan) {
                return (prepare, Decision::Finish(plan));
            }
            return (prepare, Decision::Validate(in_memory(plan)));
        };
        if only_if_stale {
            let plan = cache.plan(None, run, now);
            if run.nothing_to_do(&plan) {
                return (prepare, Decision::Finish(plan));
            }
        }
        (prepare, Decision::Perform(Io::Load(store)))
    }

    /// The unlocked read: a warm start ends here.
    pub(crate) fn loaded(&mut self, loaded: Loaded, now: SystemTime) -> Decision<'a> {
        self.read(loaded, now);
        if self.run.nothing_to_do(&self.plan) {
            return Decision::Finish(std::mem::take(&mut self.plan));
        }
        match self.store {
            Some(store) => Decision::Perform(Io::Lock(store)),
            None => self.ready(None),
        }
    }

    /// The lock attempt: logged and counted; without the lock, validate from the unlocked
    /// read and never move or overwrite a corrupt file.
    pub(crate) fn locked(&mut self, outcome: LockOutcome) -> Decision<'a> {
        let Some(store) = self.store else {
            return self.ready(None);
        };
        (self.lock, self.may_save) = self.cache.after_lock(store.as_ref(), outcome);
        if self.lock.is_some() {
            Decision::Perform(Io::Reload(store))
        } else {
            self.ready(None)
        }
    }

    /// The locked re-read and the sweep: a neighbour may have done the work meanwhile.
    pub(crate) fn reloaded(
        &mut self,
        loaded: Loaded,
        swept: usize,
        now: SystemTime,
    ) -> Decision<'a> {
        self.read(loaded, now);
        self.cache.count_swept(swept);
        // A neighbour did the work while we waited: reuse it, write nothing.
        if self.run.nothing_to_do(&self.plan) {
            return Decision::Finish(std::mem::take(&mut self.plan));
        }
        match (self.store, &self.loaded) {
            // Only under the lock, and only now that the work is known to be ours.
            (Some(store), Loaded::Corrupt(_)) => Decision::Perform(Io::Quarantine(store)),
            _ => self.ready(None),
        }
    }

    /// The corrupt file was moved aside (or could not be).
    pub(crate) fn quarantined(&mut self, result: io::Result<Option<PathBuf>>) -> Decision<'a> {
        self.ready(Some(result))
    }

    fn read(&mut self, loaded: Loaded, now: SystemTime) {
        self.loaded = loaded;
        self.plan = self.cache.plan(file_of(&self.loaded), self.run, now);
    }

    /// Recovers from what the last read found (logged, counted) and hands over.
    fn ready(&mut self, quarantined: Option<io::Result<Option<PathBuf>>>) -> Decision<'a> {
        if let Some(store) = self.store {
            self.may_save &= self
                .cache
                .recover(store.as_ref(), &self.loaded, quarantined);
        }
        Decision::Validate(Ready {
            loaded: std::mem::replace(&mut self.loaded, Loaded::Missing),
            plan: std::mem::take(&mut self.plan),
            lock: self.lock.take(),
            may_save: self.may_save,
        })
    }
}

/// No store: nothing read, nothing locked, nothing saved.
fn in_memory(plan: Vec<Planned>) -> Ready {
    Ready {
        loaded: Loaded::Missing,
        plan,
        lock: None,
        may_save: false,
    }
}

#[cfg(test)]
mod tests {
    //! A scripted third driver: a `World` says what each step finds (the file before and
    //! after the lock, the lock's outcome, the quarantine's result); the driver below feeds
    //! it to the core and records the steps it asked for. Property tests over every world
    //! check the invariants of the core's part of a refresh.
    use super::*;
    use crate::section::{BlockingValidators, Outcome, Source, StorageKind};
    use crate::{FileStore, KeyContext, SectionKey};
    use proptest::prelude::*;
    use std::time::Duration;

    use crate::test_support::K;
    struct Cfg;
    impl BlockingValidators for Cfg {}
    impl StorageAvailability for Cfg {
        type Kind = K;
        type Context = ();
        fn config_type() -> &'static str {
            "refresh::tests::Cfg"
        }
        fn section_key_in(
            &self,
            kind: K,
            context: &KeyContext,
        ) -> Result<SectionKey, crate::KeyError> {
            let spec = crate::SectionSpec::new(Self::config_type(), kind.name());
            crate::section_key(&spec, context, Some(&(kind as u8)))
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

    /// What one read of the file finds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Found {
        Missing,
        /// Every section fresh.
        Fresh,
        /// A file of ours with nothing reusable in it.
        Stale,
        Corrupt,
        Unusable,
        NotRegular,
        Untrusted,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum LockScript {
        Locked,
        TimedOut,
        Unavailable,
    }

    #[derive(Debug, Clone, Copy)]
    struct World {
        before: Found,
        lock: LockScript,
        after: Found,
        quarantine_fails: bool,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Step {
        Load,
        Lock,
        Reload,
        Quarantine,
    }

    #[derive(Debug)]
    struct Ended {
        steps: Vec<Step>,
        /// `None`: finished without validating; else (may_save, lock held).
        validate: Option<(bool, bool)>,
        stats: crate::Stats,
    }

    fn world() -> impl Strategy<Value = World> {
        let found = prop_oneof![
            Just(Found::Missing),
            Just(Found::Fresh),
            Just(Found::Stale),
            Just(Found::Corrupt),
            Just(Found::Unusable),
            Just(Found::NotRegular),
            Just(Found::Untrusted),
        ];
        let lock = prop_oneof![
            Just(LockScript::Locked),
            Just(LockScript::TimedOut),
            Just(LockScript::Unavailable),
        ];
        (found.clone(), lock, found, any::<bool>()).prop_map(
            |(before, lock, after, quarantine_fails)| World {
                before,
                lock,
                after,
                quarantine_fails,
            },
        )
    }

    fn run(world: World) -> Ended {
        let dir = tempfile::tempdir().unwrap();
        let cache = crate::AvailabilityCache::builder(Cfg)
            .persist(false)
            .build()
            .unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let fresh = {
            let plan: Vec<Planned> = K::ALL
                .iter()
                .map(|&k| {
                    let mut record = cache.unconfigured_record_for_tests(k.index(), now);
                    record.enabled = true;
                    record.validation_passed = true;
                    Ok((record, Source::Cache))
                })
                .collect();
            cache.file_from(&plan)
        };
        let read = |found: Found| match found {
            Found::Missing => Loaded::Missing,
            Found::Fresh => Loaded::File(fresh.clone()),
            Found::Stale => {
                let mut file = fresh.clone();
                file.sections.clear();
                Loaded::File(file)
            }
            Found::Corrupt => Loaded::Corrupt("scripted".into()),
            Found::Unusable => Loaded::Unusable("scripted".into()),
            Found::NotRegular => Loaded::NotRegular("scripted".into()),
            Found::Untrusted => Loaded::Untrusted("scripted".into()),
        };
        let store: Arc<dyn CacheStore> = Arc::new(FileStore::new(dir.path().join("unused")));
        let run = cache.begin();
        let (mut core, mut decision) = Prepare::start(&cache, &run, Some(&store), false, now);
        let mut steps = Vec::new();
        let validate = loop {
            decision = match decision {
                Decision::Perform(Io::Load(_)) => {
                    steps.push(Step::Load);
                    core.loaded(read(world.before), now)
                }
                Decision::Perform(Io::Lock(_)) => {
                    steps.push(Step::Lock);
                    core.locked(match world.lock {
                        LockScript::Locked => LockOutcome::Locked(StoreLock::new(())),
                        LockScript::TimedOut => LockOutcome::TimedOut,
                        LockScript::Unavailable => LockOutcome::Unavailable("scripted".into()),
                    })
                }
                Decision::Perform(Io::Reload(_)) => {
                    steps.push(Step::Reload);
                    core.reloaded(read(world.after), 0, now)
                }
                Decision::Perform(Io::Quarantine(_)) => {
                    steps.push(Step::Quarantine);
                    core.quarantined(if world.quarantine_fails {
                        Err(io::Error::other("scripted"))
                    } else {
                        Ok(Some(PathBuf::from("moved")))
                    })
                }
                Decision::Finish(_) => break None,
                Decision::Validate(ready) => break Some((ready.may_save, ready.lock.is_some())),
            };
        };
        Ended {
            steps,
            validate,
            stats: cache.stats(),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn the_core_keeps_its_invariants(world in world()) {
            let ended = run(world);
            let steps = &ended.steps;
            // The order never varies: a prefix of Load, Lock, Reload, Quarantine.
            let order = [Step::Load, Step::Lock, Step::Reload, Step::Quarantine];
            prop_assert_eq!(&steps[..], &order[..steps.len()]);
            // A fresh unlocked read ends the refresh: no lock, nothing validated or saved.
            if world.before == Found::Fresh {
                prop_assert_eq!(&steps[..], &[Step::Load][..]);
                prop_assert!(ended.validate.is_none());
                return Ok(());
            }
            prop_assert!(steps.contains(&Step::Lock));
            let locked = world.lock == LockScript::Locked;
            // The re-read happens exactly when the lock is held.
            prop_assert_eq!(steps.contains(&Step::Reload), locked);
            // A locked re-read that finds all fresh ends without validating or saving.
            if locked && world.after == Found::Fresh {
                prop_assert!(ended.validate.is_none());
                return Ok(());
            }
            // Quarantine once, only when the locked re-read is corrupt.
            let quarantines = steps.iter().filter(|s| **s == Step::Quarantine).count();
            prop_assert_eq!(quarantines, usize::from(locked && world.after == Found::Corrupt));
            // Otherwise validate, holding the lock if it was taken; save only with the lock
            // (or with locking unsupported), never over what is not ours or not a regular
            // file, never over a corrupt file seen without the lock.
            let (may_save, holds_lock) = ended.validate.expect("validates");
            prop_assert_eq!(holds_lock, locked);
            let last = if locked { world.after } else { world.before };
            let expected = match world.lock {
                LockScript::TimedOut => false,
                LockScript::Locked => last != Found::NotRegular,
                LockScript::Unavailable => !matches!(last, Found::NotRegular | Found::Corrupt),
            };
            prop_assert_eq!(may_save, expected);
            // Counts match the steps.
            prop_assert_eq!(ended.stats.lock_timeouts, u64::from(world.lock == LockScript::TimedOut));
            prop_assert_eq!(ended.stats.corrupt_recovered, u64::from(last == Found::Corrupt));
            prop_assert_eq!(ended.stats.untrusted, u64::from(last == Found::Untrusted));
            prop_assert_eq!(ended.stats.incompatible_replaced, u64::from(last == Found::Unusable));
        }
    }
}
