//! Benchmarks of the four-section paths (issue 6): warm start, lookups, keys, cold start,
//! one changed section, atomic save. The scaling runs (4 to 10,000 sections) are in
//! `benches/scaling.rs`. See BENCHMARKS.md for the figures and how to read them.
//!
//! ```text
//! cargo bench -p storage-availability --bench cache
//! ```

mod support;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, criterion_group, criterion_main};
use serde::de::IgnoredAny;
use storage_availability::schema::CacheFile;
use storage_availability::{
    AvailabilityCache, CacheStore, FileStore, KeyContext, Source, StorageAvailability, StorageKind,
    StoreRead,
};

use support::{Realistic, RealisticKind, Workspace};

/// A workspace whose cache file holds fresh results for `config` (one cold open done).
fn warmed(config: &Realistic) -> (Workspace, PathBuf) {
    let ws = Workspace::new();
    let cache = AvailabilityCache::open(config.clone(), &ws.config_path).expect("open");
    let path = cache.path().expect("a file store").to_owned();
    // The next open must be a pure hit: every section from the file.
    let again = AvailabilityCache::open(config.clone(), &ws.config_path).expect("open");
    assert_eq!(again.stats().misses, 0, "warm open validated something");
    assert_eq!(again.stats().hits, 4);
    assert_eq!(again.status(RealisticKind::Csv).source, Source::Cache);
    (ws, path)
}

/// Warm start: `open` from a valid file, then the status of every section.
fn warm(c: &mut Criterion) {
    let config = Realistic::new(Duration::ZERO);
    let (ws, cache_path) = warmed(&config);
    let bytes = std::fs::read(&cache_path).expect("read cache file");
    eprintln!(
        "warm: 4-section cache file {} is {} bytes",
        cache_path.display(),
        bytes.len()
    );

    let mut group = c.benchmark_group("warm");
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("open_and_status_4", |b| {
        b.iter_batched(
            || config.clone(),
            |config| {
                let cache = AvailabilityCache::open(config, &ws.config_path).expect("open");
                for &kind in RealisticKind::ALL {
                    black_box(cache.status(kind));
                }
                cache
            },
            BatchSize::SmallInput,
        )
    });
    // The parts of the warm path, to compare with the floors in BENCHMARKS.md.
    group.bench_function("read_file_4", |b| {
        b.iter(|| std::fs::read(black_box(&cache_path)).expect("read"))
    });
    group.bench_function("parse_4", |b| {
        b.iter(|| {
            let loaded = StoreRead::from_bytes(black_box(&bytes));
            assert!(matches!(loaded, StoreRead::File(_)));
            loaded
        })
    });
    let store = FileStore::new(&cache_path);
    group.bench_function("load_4", |b| b.iter(|| store.load(1024 * 1024)));
    // As `open` computes them: in a context (host, working directory) read once.
    let context = KeyContext::new(Realistic::app_version());
    group.bench_function("section_keys_4", |b| {
        b.iter(|| {
            let config = black_box(&config);
            RealisticKind::ALL
                .iter()
                .map(|&k| config.section_key_in(k, &context).expect("key"))
                .fold(0u8, |acc, key| acc ^ key.as_bytes()[0])
        })
    });
    group.finish();
}

/// One answer from a loaded cache.
fn lookup(c: &mut Criterion) {
    let config = Realistic::new(Duration::ZERO);
    let (ws, _) = warmed(&config);
    let cache = AvailabilityCache::open(config.clone(), &ws.config_path).expect("open");
    let warning = config.with_unknown_provider();
    let ws_warning = Workspace::new();
    let with_warning = AvailabilityCache::open(warning, &ws_warning.config_path).expect("open");
    assert_eq!(
        with_warning.status(RealisticKind::Vector).warnings.len(),
        1,
        "the vector section should carry a warning"
    );

    let mut group = c.benchmark_group("lookup");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("status", |b| {
        b.iter(|| cache.status(black_box(RealisticKind::Csv)))
    });
    group.bench_function("is_available", |b| {
        b.iter(|| cache.is_available(black_box(RealisticKind::Csv)))
    });
    group.bench_function("status_with_warning", |b| {
        b.iter(|| with_warning.status(black_box(RealisticKind::Vector)))
    });
    group.bench_function("statuses_4", |b| b.iter(|| cache.statuses()));
    // The floors of the two lookups, in the same run: the same answers in a plain `Vec`
    // (no snapshot, no atomics), read by index; and the clone of one `Availability`.
    let plain: Vec<_> = cache.statuses().into_iter().map(|(_, s)| s).collect();
    let index = RealisticKind::Csv.index();
    group.bench_function("floor_index_is_available", |b| {
        b.iter(|| black_box(&plain)[black_box(index)].is_available())
    });
    group.bench_function("floor_index_clone", |b| {
        b.iter(|| black_box(&plain)[black_box(index)].clone())
    });
    group.finish();
}

/// Cold start: no cache file, four validators of 200 ms each (800 ms one after another).
fn cold(c: &mut Criterion) {
    let config = Realistic::new(Duration::from_millis(200));
    let ws = Workspace::new();
    let mut group = c.benchmark_group("cold");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("open_4x200ms", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let config = config.clone();
                let before = config.calls();
                if let Some(path) = cache_path_of(&ws) {
                    let _ = std::fs::remove_file(path);
                }
                let started = Instant::now();
                let cache = AvailabilityCache::open(config, &ws.config_path).expect("open");
                total += started.elapsed();
                assert_eq!(cache.stats().validations, 4);
                assert_eq!(cache.config().calls() - before, 4);
                drop(cache);
            }
            total
        })
    });
    group.finish();
}

/// The cache file path for the workspace's config, found from a cache opened in memory.
fn cache_path_of(ws: &Workspace) -> Option<PathBuf> {
    FileStore::for_config::<Realistic>(&ws.config_path)
        .ok()
        .map(|s| s.path().to_owned())
}

/// One section of four changed: only it is validated (wall time includes the save).
fn one_changed(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_changed_of_4");
    group
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (label, sleep, samples) in [
        ("instant_validators", Duration::ZERO, 20),
        ("200ms_validators", Duration::from_millis(200), 10),
    ] {
        group.sample_size(samples);
        let base = Realistic::new(sleep);
        let (ws, cache_path) = warmed(&base);
        let base_bytes = std::fs::read(&cache_path).expect("read");
        let changed = base.with_csv_dir("/srv/app/data/csv-v2");
        let mut reported = false;
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    std::fs::write(&cache_path, &base_bytes).expect("restore cache file");
                    let config = changed.clone();
                    let before = config.calls();
                    let started = Instant::now();
                    let cache = AvailabilityCache::open(config, &ws.config_path).expect("open");
                    total += started.elapsed();
                    let calls = cache.config().calls() - before;
                    assert_eq!(calls, 1, "exactly one validator call");
                    assert_eq!(cache.stats().hits, 3);
                    assert_eq!(cache.stats().saves, 1);
                    if !reported {
                        eprintln!(
                            "one_changed_of_4/{label}: {calls} validator call per open, 3 hits"
                        );
                        reported = true;
                    }
                }
                total
            })
        });
    }
    group.finish();
}

/// Atomic save of the four-section file: temp file, write, fsync, rename, directory fsync.
fn save(c: &mut Criterion) {
    let config = Realistic::new(Duration::ZERO);
    let (ws, cache_path) = warmed(&config);
    let cache = AvailabilityCache::open(config, &ws.config_path).expect("open");
    let file = support::cache_file_of(&cache);
    let store = FileStore::new(&cache_path);
    let mut group = c.benchmark_group("save");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("atomic_4", |b| {
        b.iter(|| store.save(black_box(&file)).expect("save"))
    });
    group.bench_function("serialize_4", |b| {
        b.iter(|| serde_json::to_vec_pretty(black_box(&file)).expect("serialize"))
    });
    group.finish();
}

/// A cache file parsed into borrowed strings, metadata and texts skipped: the parse floor.
#[derive(serde::Deserialize)]
struct BorrowedFile<'a> {
    #[serde(borrow)]
    schema_version: &'a str,
    #[allow(dead_code)]
    metadata: IgnoredAny,
    #[serde(borrow)]
    sections: BTreeMap<&'a str, BorrowedRecord<'a>>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct BorrowedRecord<'a> {
    section_hash: &'a str,
    enabled: bool,
    validation_passed: bool,
    last_error: IgnoredAny,
    errors: IgnoredAny,
    warnings: IgnoredAny,
    checked_at: &'a str,
    duration_ms: f64,
    consecutive_failures: u32,
}

/// Floors measured on this machine, for the ratios in BENCHMARKS.md: the least work a warm
/// start can do with these libraries, with none of the cache's bookkeeping.
fn floor(c: &mut Criterion) {
    let config = Realistic::new(Duration::ZERO);
    let (_ws, cache_path) = warmed(&config);
    let bytes = std::fs::read(&cache_path).expect("read");
    let mut group = c.benchmark_group("floor");
    group.measurement_time(Duration::from_secs(3));
    // stat + open + read, typed parse, four keys, four comparisons.
    let context = KeyContext::new(Realistic::app_version());
    group.bench_function("read_parse_keys_4", |b| {
        b.iter(|| {
            let bytes = std::fs::read(black_box(&cache_path)).expect("read");
            let file: CacheFile = serde_json::from_slice(&bytes).expect("parse");
            let fresh = RealisticKind::ALL
                .iter()
                .filter(|&&k| {
                    let key = config.section_key_in(k, &context).expect("key");
                    file.sections
                        .get(k.name())
                        .is_some_and(|r| r.section_hash.as_str() == key.as_str())
                })
                .count();
            assert_eq!(fresh, 4);
            fresh
        })
    });
    group.bench_function("parse_borrowed_4", |b| {
        b.iter(|| {
            let file: BorrowedFile<'_> = serde_json::from_slice(black_box(&bytes)).expect("parse");
            assert_eq!(file.schema_version, "1.0");
            file.sections.len()
        })
    });
    group.bench_function("keys_without_value_4", |b| {
        b.iter(|| black_box(&config).direct_keys())
    });
    group.finish();
}

criterion_group!(benches, warm, lookup, cold, one_changed, save, floor);
criterion_main!(benches);
