//! Benchmarks of `open_async` (feature `tokio`):
//!
//! - cold start with 4 async validators of 200 ms each (target: under 260 ms, against the
//!   800 ms a sequential run takes);
//! - warm `open_async` + 4 statuses, next to the blocking warm `open` + 4 statuses
//!   (target: within 1.5x).
//!
//! `cargo bench -p storage-availability --features tokio --bench async_open`

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use serde::Serialize;
use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};

async fn sleep_200ms(_: &u32) -> Outcome {
    tokio::time::sleep(Duration::from_millis(200)).await;
    Outcome::ok()
}

async fn quick(_: &String) -> Outcome {
    Outcome::ok()
}

fn check(_: &String) -> Outcome {
    Outcome::ok()
}

#[derive(Serialize, StorageAvailability)]
struct Slow {
    #[storage(validate = sleep_200ms, async)]
    csv: u32,
    #[storage(validate = sleep_200ms, async)]
    vector: u32,
    #[storage(validate = sleep_200ms, async)]
    kv: u32,
    #[storage(validate = sleep_200ms, async)]
    json: u32,
}

/// Four async sections (for `open_async`)...
#[derive(Serialize, StorageAvailability)]
struct FourAsync {
    #[storage(validate = quick, async)]
    csv: String,
    #[storage(validate = quick, async)]
    vector: String,
    #[storage(validate = quick, async)]
    kv: String,
    #[storage(validate = quick, async)]
    json: String,
}

/// ... and the same four sections with blocking validators (for `open`).
#[derive(Serialize, StorageAvailability)]
struct FourBlocking {
    #[storage(validate = check)]
    csv: String,
    #[storage(validate = check)]
    vector: String,
    #[storage(validate = check)]
    kv: String,
    #[storage(validate = check)]
    json: String,
}

fn value(name: &str) -> String {
    format!("/var/lib/app/{name}/data-directory-with-a-realistic-length")
}

fn four_async() -> FourAsync {
    FourAsync {
        csv: value("csv"),
        vector: value("vector"),
        kv: value("kv"),
        json: value("json"),
    }
}

fn four_blocking() -> FourBlocking {
    FourBlocking {
        csv: value("csv"),
        vector: value("vector"),
        kv: value("kv"),
        json: value("json"),
    }
}

fn cold_start(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut group = c.benchmark_group("async");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("cold open_async, 4 async validators x 200 ms", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let config = Slow {
                    csv: 1,
                    vector: 2,
                    kv: 3,
                    json: 4,
                };
                let started = Instant::now();
                let cache = runtime
                    .block_on(
                        AvailabilityCache::builder(config)
                            .persist(false)
                            .open_async(),
                    )
                    .expect("open");
                total += started.elapsed();
                black_box(cache);
            }
            total
        })
    });
    group.finish();
}

fn warm_start(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let async_path = dir.path().join("async.yaml");
    let blocking_path = dir.path().join("blocking.yaml");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Write both cache files once.
    runtime
        .block_on(AvailabilityCache::open_async(four_async(), &async_path))
        .expect("open");
    AvailabilityCache::open(four_blocking(), &blocking_path).expect("open");

    let mut group = c.benchmark_group("warm");
    group.bench_function("open_async + 4 statuses", |b| {
        b.iter(|| {
            let cache = runtime
                .block_on(AvailabilityCache::open_async(
                    four_async(),
                    Path::new(&async_path),
                ))
                .expect("open");
            for (kind, status) in cache.statuses() {
                black_box((kind, status));
            }
            assert_eq!(cache.stats().misses, 0);
        })
    });
    group.bench_function("blocking open + 4 statuses", |b| {
        b.iter(|| {
            let cache = AvailabilityCache::open(four_blocking(), &blocking_path).expect("open");
            for (kind, status) in cache.statuses() {
                black_box((kind, status));
            }
            assert_eq!(cache.stats().misses, 0);
        })
    });
    group.finish();
}

criterion_group!(benches, cold_start, warm_start);
criterion_main!(benches);
