//! Single-flight and snapshot consistency within one process (issue 5): many threads opening
//! or refreshing at once cause exactly one validation per stale section, and readers never
//! see a mix of two refreshes' results.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use serde::Serialize;
use storage_availability::{AvailabilityCache, Outcome, Source, StorageAvailability};
use storage_availability_tests::{LoggedConfig, LoggedConfigKind as K, statuses_json};

const THREADS: usize = 64;

/// Runs `f` on `THREADS` threads released together by a barrier.
fn race<T: Send>(f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                scope.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn concurrent_opens_at_cold_start_validate_each_section_once() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("storage.yaml");
    // A slow csv validator keeps the first opener busy while the others arrive.
    let config = LoggedConfig::new(
        "sleep:200",
        "fail:connection refused",
        Some("warn:almost full"),
        None,
    );
    let results = race(|_| {
        let cache = AvailabilityCache::open(config.clone(), &config_path).unwrap();
        let sources: Vec<Source> = cache.statuses().iter().map(|(_, s)| s.source).collect();
        (statuses_json(&cache), sources, cache.stats())
    });

    assert_eq!(config.csv.calls(), 1, "csv validated more than once");
    assert_eq!(config.kv.calls(), 1, "key_value validated more than once");
    assert_eq!(config.vector.as_ref().unwrap().calls(), 1, "vector");

    let first = &results[0].0;
    for (statuses, _, _) in &results {
        assert_eq!(statuses, first, "two threads saw different statuses");
    }
    assert_eq!(first["csv"]["validation_passed"], true);
    assert_eq!(first["key_value"]["last_error"], "connection refused");
    assert_eq!(first["vector"]["warnings"][0], "almost full");

    // Exactly one opener validated (every section), the other 63 read its file.
    let validated: Vec<&Vec<Source>> = results
        .iter()
        .map(|r| &r.1)
        .filter(|s| s.contains(&Source::Validated))
        .collect();
    assert_eq!(validated.len(), 1, "{validated:?}");
    assert!(validated[0].iter().all(|s| *s == Source::Validated));
    let validations: u64 = results.iter().map(|r| r.2.validations).sum();
    assert_eq!(validations, 3);
    // Regression (issue 5): every opener that waited for the lock found its neighbour's
    // results and wrote them again, 64 saves for one validation.
    let saves: u64 = results.iter().map(|r| r.2.saves).sum();
    assert_eq!(saves, 1, "openers that waited rewrote the file");
    println!("{THREADS} threads opened at once: 3 validations, {saves} save");
}

#[test]
fn concurrent_refreshes_after_invalidate_validate_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = LoggedConfig::new("sleep:100", "ok", Some("ok"), None);
    let cache =
        Arc::new(AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap());
    assert_eq!(config.total_calls(), 3);
    cache.invalidate(K::Csv);

    let reports = race(|_| cache.refresh().unwrap());
    assert_eq!(config.csv.calls(), 2, "csv revalidated more than once");
    assert_eq!(config.total_calls(), 4, "another section was revalidated");
    let validating: Vec<_> = reports.iter().filter(|r| !r.validated.is_empty()).collect();
    assert_eq!(validating.len(), 1, "{validating:?}");
    assert_eq!(validating[0].validated, ["csv"]);
    assert!(validating[0].saved);
    assert_eq!(cache.stats().validations, 4);
    assert_eq!(cache.status(K::Csv).source, Source::Validated);
}

/// A section whose outcome depends on a generation counter outside the config, so the same
/// config gives other results at each refresh: even generations pass with the warning
/// `gen N`, odd ones fail with the error `gen N`.
#[derive(Debug, Clone, Serialize)]
struct Generation {
    name: &'static str,
    #[serde(skip)]
    current: Arc<AtomicU64>,
}

fn check_generation(section: &Generation) -> Outcome {
    let generation = section.current.load(Ordering::SeqCst);
    // Sections finish at different times within one refresh.
    std::thread::sleep(Duration::from_micros(200 * (section.name.len() as u64 % 3)));
    if generation.is_multiple_of(2) {
        Outcome::ok().with_warning(format!("gen {generation}"))
    } else {
        Outcome::failed(format!("gen {generation}"))
    }
}

#[derive(Debug, Clone, Serialize, StorageAvailability)]
struct Generations {
    #[storage(validate = check_generation)]
    a: Generation,
    #[storage(validate = check_generation)]
    bb: Generation,
    #[storage(validate = check_generation)]
    ccc: Generation,
}

/// The generation a status shows, and whether it is consistent with its pass/fail.
fn generation_of(status: &storage_availability::Availability) -> u64 {
    let text = if status.validation_passed {
        status.warnings.first().cloned()
    } else {
        status.last_error.clone()
    }
    .unwrap_or_else(|| panic!("no generation text in {status:?}"));
    let generation: u64 = text.strip_prefix("gen ").unwrap().parse().unwrap();
    assert_eq!(
        generation.is_multiple_of(2),
        status.validation_passed,
        "pass/fail and text from two generations in one status: {status:?}"
    );
    generation
}

#[test]
fn readers_see_a_whole_old_or_new_snapshot_during_refresh() {
    const REFRESHES: u64 = 150;
    const READERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let current = Arc::new(AtomicU64::new(0));
    let section = |name| Generation {
        name,
        current: Arc::clone(&current),
    };
    let cache = AvailabilityCache::open(
        Generations {
            a: section("a"),
            bb: section("bb"),
            ccc: section("ccc"),
        },
        dir.path().join("gen.yaml"),
    )
    .unwrap();
    let done = AtomicBool::new(false);

    let (reads, distinct) = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                scope.spawn(|| {
                    let (mut reads, mut distinct, mut last) = (0u64, 0u64, 0u64);
                    while !done.load(Ordering::SeqCst) {
                        let statuses = cache.statuses();
                        let generations: Vec<u64> =
                            statuses.iter().map(|(_, s)| generation_of(s)).collect();
                        assert!(
                            generations.iter().all(|g| *g == generations[0]),
                            "mixed snapshot: {generations:?}"
                        );
                        assert!(generations[0] >= last, "went back in time");
                        if generations[0] != last {
                            distinct += 1;
                            last = generations[0];
                        }
                        reads += 1;
                    }
                    (reads, distinct)
                })
            })
            .collect();
        for generation in 1..=REFRESHES {
            current.store(generation, Ordering::SeqCst);
            for kind in GenerationsKind::ALL {
                cache.invalidate(*kind);
            }
            let report = cache.refresh().unwrap();
            assert_eq!(report.validated.len(), 3);
        }
        done.store(true, Ordering::SeqCst);
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .fold((0, 0), |(r, d), (r2, d2)| (r + r2, d + d2))
    });
    // Every generation was installed whole.
    for (_, status) in cache.statuses() {
        assert_eq!(generation_of(&status), REFRESHES);
    }
    assert_eq!(cache.stats().validations, 3 * (REFRESHES + 1));
    assert!(
        distinct > 0,
        "the readers never saw a refresh (reads: {reads})"
    );
    println!(
        "{READERS} readers: {reads} snapshots read, {distinct} generation changes seen, none mixed"
    );
}
