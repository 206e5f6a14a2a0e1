//! A scripted third driver: a `World` says what each step finds (the file before and after
//! the lock, the lock's outcome, the quarantine's result, each validator's outcome, the
//! save's result); the driver below feeds it to the core and records the steps it asked
//! for. Property tests over every world check the invariants of a whole refresh.
use super::*;
use crate::section::{BlockingValidators, Outcome, Scope};
use crate::store::FileStore;
use crate::validate::Ending;
use crate::{AvailabilityCache, SectionKey};
use crate::{SharedError, SharedStore};
use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;

use crate::test_support::K;

struct Cfg;
impl BlockingValidators for Cfg {}
impl StorageAvailability for Cfg {
    type Kind = K;
    type Context = ();
    fn config_type() -> &'static str {
        "refresh::tests::Cfg"
    }
    fn section_key_in(&self, kind: K, context: &KeyContext) -> Result<SectionKey, crate::KeyError> {
        let spec = crate::SectionSpec::new(Self::config_type(), kind.name());
        crate::section_key(&spec, context, Some(&(kind as u8)))
    }
    fn validate(&self, _: K) -> Outcome {
        Outcome::ok()
    }
    fn is_configured(&self, _: K) -> bool {
        true
    }
    /// `b` is settled through the fleet store.
    fn scope(kind: K) -> Scope {
        if kind == K::B {
            Scope::Shared
        } else {
            Scope::Host
        }
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
    /// Section `a` fresh, `b` missing.
    Half,
    /// A file of ours with nothing reusable in it.
    Stale,
    /// Every section failed 3 times in a row, the retry due.
    FailedDue,
    Corrupt,
    Unusable,
    NotRegular,
    Untrusted,
}

/// What the fleet store holds for section `b`, or whether it answers at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FleetScript {
    /// Nothing: this host wins the lease, validates and publishes.
    Empty,
    /// Another host's fresh record.
    Fresh,
    /// Every call fails.
    Down,
}

/// A fleet store in memory (or one that is down).
#[derive(Debug, Clone, Default)]
struct Memory {
    map: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    down: bool,
}

impl Memory {
    fn check(&self) -> Result<(), SharedError> {
        if self.down {
            return Err(SharedError::new("scripted: down"));
        }
        Ok(())
    }
}

impl SharedStore for Memory {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> {
        self.check()?;
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8], _: Duration) -> Result<(), SharedError> {
        self.check()?;
        self.map.lock().unwrap().insert(key.into(), value.into());
        Ok(())
    }
    fn try_lease(&self, key: &str, token: &str, _: Duration) -> Result<bool, SharedError> {
        self.check()?;
        let mut map = self.map.lock().unwrap();
        if map.contains_key(key) {
            return Ok(false);
        }
        map.insert(key.into(), token.as_bytes().into());
        Ok(true)
    }
    fn release_lease(&self, key: &str, token: &str) -> Result<bool, SharedError> {
        self.check()?;
        let mut map = self.map.lock().unwrap();
        if map.get(key).map(Vec::as_slice) == Some(token.as_bytes()) {
            map.remove(key);
            return Ok(true);
        }
        Ok(false)
    }
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
    /// Per section: does its validator pass?
    passes: [bool; 2],
    save_fails: bool,
    fleet: FleetScript,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Load,
    Lock,
    Reload,
    Quarantine,
    AskFleet,
    Validate(Vec<K>),
    Settle,
    /// With the lock held?
    Save(bool),
}

#[derive(Debug)]
struct Ended {
    steps: Vec<Step>,
    saved_file: Option<CacheFile>,
    done: Done,
    stats: crate::Stats,
    /// What the last read found (the file the records come from).
    last: Option<CacheFile>,
}

fn world() -> impl Strategy<Value = World> {
    let found = prop_oneof![
        Just(Found::Missing),
        Just(Found::Fresh),
        Just(Found::Half),
        Just(Found::Stale),
        Just(Found::FailedDue),
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
    let fleet = prop_oneof![
        Just(FleetScript::Empty),
        Just(FleetScript::Fresh),
        Just(FleetScript::Down),
    ];
    (
        (found.clone(), lock, found),
        (any::<bool>(), any::<[bool; 2]>(), any::<bool>(), fleet),
    )
        .prop_map(
            |((before, lock, after), (quarantine_fails, passes, save_fails, fleet))| World {
                before,
                lock,
                after,
                quarantine_fails,
                passes,
                save_fails,
                fleet,
            },
        )
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn run(world: World) -> Ended {
    let fleet = Memory {
        down: world.fleet == FleetScript::Down,
        ..Memory::default()
    };
    if world.fleet == FleetScript::Fresh {
        // Another host validated and published `b` (both pass there).
        let other = World {
            before: Found::Missing,
            lock: LockScript::Locked,
            after: Found::Missing,
            passes: [true; 2],
            fleet: FleetScript::Empty,
            ..world
        };
        run_with(other, fleet.clone());
    }
    run_with(world, fleet)
}

fn run_with(world: World, fleet: Memory) -> Ended {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn CacheStore> = Arc::new(FileStore::new(dir.path().join("unused")));
    // The fleet's half reads the clock (its record TTLs): the scripted time.
    let core = AvailabilityCache::builder(Cfg)
        .clock(crate::ManualClock::new(now()))
        .shared_store(fleet)
        .core_for_tests(Some(Arc::clone(&store)));
    let now = now();
    let record = |k: K, passed: bool, at: SystemTime| {
        let mut record = core.unconfigured_record(k.index(), at);
        record.enabled = passed;
        record.validation_passed = passed;
        if !passed {
            record.consecutive_failures = 3;
            record.last_error = Some("scripted".into());
        }
        Planned::Reuse(record, Source::Cache)
    };
    let file = |plan: Vec<Planned>| core.file_from(&plan, now);
    let fresh = file(K::ALL.iter().map(|&k| record(k, true, now)).collect());
    let long_ago = now - Duration::from_secs(30 * 24 * 3600);
    let failed = file(K::ALL.iter().map(|&k| record(k, false, long_ago)).collect());
    let read = |found: Found| match found {
        Found::Missing => StoreRead::Missing,
        Found::Fresh => StoreRead::File(fresh.clone()),
        Found::Half => {
            let mut file = fresh.clone();
            file.sections.remove("b");
            StoreRead::File(file)
        }
        Found::Stale => {
            let mut file = fresh.clone();
            file.sections.clear();
            StoreRead::File(file)
        }
        Found::FailedDue => StoreRead::File(failed.clone()),
        Found::Corrupt => StoreRead::Corrupt("scripted".into()),
        Found::Unusable => StoreRead::Unusable("scripted".into()),
        Found::NotRegular => StoreRead::NotRegular("scripted".into()),
        Found::Untrusted => StoreRead::Untrusted("scripted".into()),
    };
    let run = RefreshRun {
        current: Arc::new(core.pending(now)),
        forced: vec![false; 2],
        seen: vec![0; 2],
        unsaved: false,
        recheck: crate::policy::Recheck::No,
    };
    let (mut refresh, mut decision) = Refresh::start(&core, &run, now);
    let mut steps = Vec::new();
    let mut saved_file = None;
    let mut last = None;
    let done = loop {
        let io = match decision {
            Decision::Perform(io) => io,
            Decision::Done(done) => break done,
        };
        decision = match io {
            Io::Load { .. } => {
                steps.push(Step::Load);
                let loaded = read(world.before);
                last = file_of(&loaded).cloned();
                refresh.loaded(loaded, now)
            }
            Io::Lock { .. } => {
                steps.push(Step::Lock);
                let outcome = match world.lock {
                    LockScript::Locked => LockOutcome::Locked(StoreLock::new(())),
                    LockScript::TimedOut => LockOutcome::TimedOut,
                    LockScript::Unavailable => LockOutcome::Unavailable("scripted".into()),
                };
                refresh.locked(outcome, now)
            }
            Io::Reload { .. } => {
                steps.push(Step::Reload);
                let loaded = read(world.after);
                last = file_of(&loaded).cloned();
                refresh.reloaded(loaded, 0, now)
            }
            Io::Quarantine { .. } => {
                steps.push(Step::Quarantine);
                let result = if world.quarantine_fails {
                    Err(io::Error::other("scripted"))
                } else {
                    Ok(Some(PathBuf::from("moved")))
                };
                refresh.quarantined(result, now)
            }
            Io::AskFleet(request) => {
                steps.push(Step::AskFleet);
                refresh.fleet_claimed(Some((*request).claim()), now)
            }
            Io::Validate { jobs, .. } => {
                steps.push(Step::Validate(jobs.iter().map(|(k, _)| *k).collect()));
                let finished = jobs
                    .iter()
                    .map(|&(kind, _)| Finished {
                        kind,
                        outcome: if world.passes[kind.index()] {
                            Outcome::ok()
                        } else {
                            Outcome::failed("scripted")
                        },
                        duration: Duration::from_millis(1),
                        ending: Ending::Completed,
                    })
                    .collect();
                refresh.validated(finished, now, Duration::from_millis(1))
            }
            Io::Settle(mut claim) => {
                steps.push(Step::Settle);
                let more = claim.settle();
                refresh.settled(Some((claim, more)), now)
            }
            Io::Save { file, lock, .. } => {
                steps.push(Step::Save(lock.is_some()));
                saved_file = Some(*file);
                let result = if world.save_fails {
                    Err(io::Error::other("scripted"))
                } else {
                    Ok(())
                };
                refresh.saved(result, now)
            }
        };
    };
    Ended {
        steps,
        saved_file,
        done,
        stats: core.stats.snapshot(),
        last,
    }
}

fn is_file(found: Found) -> bool {
    matches!(
        found,
        Found::Fresh | Found::Half | Found::Stale | Found::FailedDue
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_refresh_keeps_its_invariants(world in world()) {
        let ended = run(world);
        let steps = &ended.steps;
        let report = &ended.done.report;
        // A fresh unlocked read ends the refresh: no lock, nothing validated or saved.
        if world.before == Found::Fresh {
            prop_assert_eq!(&steps[..], &[Step::Load][..]);
            prop_assert_eq!(report.reused.len(), 2);
            return Ok(());
        }
        prop_assert_eq!(&steps[..2], &[Step::Load, Step::Lock][..]);
        let locked = world.lock == LockScript::Locked;
        // The re-read happens exactly when the lock is held, right after it.
        prop_assert_eq!(steps.get(2) == Some(&Step::Reload), locked);
        prop_assert_eq!(steps.iter().filter(|s| **s == Step::Reload).count(), usize::from(locked));
        // A locked re-read that finds all fresh ends without validating or saving.
        if locked && world.after == Found::Fresh {
            prop_assert_eq!(steps.len(), 3);
            prop_assert!(ended.saved_file.is_none());
            prop_assert!(report.validated.is_empty());
            return Ok(());
        }
        // Quarantine once, only when the locked re-read is corrupt.
        let quarantines = steps.iter().filter(|s| **s == Step::Quarantine).count();
        prop_assert_eq!(quarantines, usize::from(locked && world.after == Found::Corrupt));
        // Validation jobs = the sections still stale after the last read: one round.
        let last = if locked { world.after } else { world.before };
        let stale_after_read = match last {
            Found::Half => vec![K::B],
            _ => vec![K::A, K::B],
        };
        // The fleet is asked once, when the shared section `b` is still stale; a fresh
        // record of another host answers it, else it is validated here.
        let asked = steps.iter().filter(|s| **s == Step::AskFleet).count();
        prop_assert_eq!(asked, usize::from(stale_after_read.contains(&K::B)));
        let from_fleet = asked == 1 && world.fleet == FleetScript::Fresh;
        let expected_jobs: Vec<K> = stale_after_read
            .iter()
            .copied()
            .filter(|&k| !(k == K::B && from_fleet))
            .collect();
        let rounds: Vec<Step> = steps.iter().filter(|s| matches!(s, Step::Validate(_))).cloned().collect();
        if expected_jobs.is_empty() {
            prop_assert!(rounds.is_empty());
        } else {
            prop_assert_eq!(rounds, vec![Step::Validate(expected_jobs.clone())]);
        }
        // The fleet settles after the round, and only if it was asked.
        prop_assert_eq!(steps.contains(&Step::Settle), asked == 1);
        if from_fleet {
            let b = &ended.done.snapshot.entries[K::B.index()];
            prop_assert_eq!(b.availability.source, Source::Shared);
            prop_assert_eq!(ended.stats.shared_hits, 1);
        }
        if asked == 1 && world.fleet == FleetScript::Empty {
            prop_assert_eq!(ended.stats.shared_publishes, 1);
        }
        if asked == 1 && world.fleet == FleetScript::Down {
            prop_assert_eq!(ended.stats.shared_errors, 1);
        }
        // Save only with the lock held (or locking unsupported), never over what is not a
        // regular file, never over a corrupt file seen without the lock.
        let may_save = match world.lock {
            LockScript::TimedOut => false,
            LockScript::Locked => last != Found::NotRegular,
            LockScript::Unavailable => !matches!(last, Found::NotRegular | Found::Corrupt),
        };
        let saves: Vec<Step> = steps.iter().filter(|s| matches!(s, Step::Save(_))).cloned().collect();
        if may_save {
            prop_assert_eq!(saves, vec![Step::Save(locked)]);
            prop_assert_eq!(steps.last(), Some(&Step::Save(locked)));
        } else {
            prop_assert!(saves.is_empty());
        }
        prop_assert_eq!(report.saved, may_save && !world.save_fails);
        prop_assert_eq!(ended.done.unsaved, may_save.then_some(world.save_fails));
        // Sections neither validated nor answered by the fleet are saved byte-for-byte as
        // they were read.
        if let Some(saved) = &ended.saved_file {
            let read = ended.last.as_ref().filter(|_| is_file(last));
            for kind in K::ALL {
                if !stale_after_read.contains(kind) {
                    let was = read.and_then(|f| f.sections.get(kind.name()));
                    prop_assert_eq!(saved.sections.get(kind.name()), was);
                }
            }
        }
        // consecutive_failures: 0 on a pass, max(file, memory) + 1 on a failure.
        for &kind in &expected_jobs {
            let record = ended.done.snapshot.entries[kind.index()].record.as_ref().unwrap();
            let before = if last == Found::FailedDue { 3 } else { 0 };
            let expected = if world.passes[kind.index()] { 0 } else { before + 1 };
            prop_assert_eq!(record.consecutive_failures, expected);
        }
        // Counts match the steps.
        prop_assert_eq!(ended.stats.validations, expected_jobs.len() as u64);
        prop_assert_eq!(ended.stats.misses, expected_jobs.len() as u64);
        prop_assert_eq!(ended.stats.hits, 2 - expected_jobs.len() as u64);
        prop_assert_eq!(ended.stats.saves, u64::from(may_save && !world.save_fails));
        prop_assert_eq!(ended.stats.save_failures, u64::from(may_save && world.save_fails));
        prop_assert_eq!(ended.stats.lock_timeouts, u64::from(world.lock == LockScript::TimedOut));
        prop_assert_eq!(ended.stats.corrupt_recovered, u64::from(last == Found::Corrupt));
        prop_assert_eq!(ended.stats.untrusted, u64::from(last == Found::Untrusted));
        prop_assert_eq!(ended.stats.incompatible_replaced, u64::from(last == Found::Unusable));
    }
}
