//! Scaling with the number of sections (issue 6): the warm hit path (`open` from a valid file
//! plus the status of every section) and the atomic save, for 4, 64, 1,000 and 10,000
//! sections of a hand-written config (`support::Many<N>`).
//!
//! ```text
//! cargo bench -p storage-availability --bench scaling
//! ```

mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
    measurement::WallTime,
};
use storage_availability::{CacheStore, FileStore, KeyContext, StorageAvailability, StorageKind};

use support::{Many, Workspace, open_large};

fn hit_path<const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let config = Many::<N>::new();
    let ws = Workspace::new();
    let cold = open_large(config.clone(), &ws.config_path);
    assert_eq!(cold.stats().validations, N as u64);
    let size = std::fs::metadata(cold.path().expect("file store"))
        .expect("cache file")
        .len();
    let warm = open_large(config.clone(), &ws.config_path);
    assert_eq!(warm.stats().hits, N as u64, "warm open must be all hits");
    assert_eq!(warm.stats().misses, 0);
    eprintln!("hit_path/{N}: cache file {size} bytes");
    drop((cold, warm));
    let calls = config.calls();

    group.throughput(Throughput::Elements(N as u64));
    group.bench_with_input(BenchmarkId::new("hit_path", N), &N, |b, _| {
        b.iter_batched(
            || config.clone(),
            |config| {
                let cache = open_large(config, &ws.config_path);
                for &kind in <Many<N> as StorageAvailability>::Kind::ALL {
                    black_box(cache.status(kind));
                }
                cache
            },
            BatchSize::SmallInput,
        )
    });
    assert_eq!(config.calls(), calls, "no validation during the hit path");
}

fn keys<const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let config = Many::<N>::new();
    // As `open` computes them: in one context (host, working directory) read once.
    let context = KeyContext::new(Many::<N>::app_version());
    group.throughput(Throughput::Elements(N as u64));
    group.bench_with_input(BenchmarkId::new("section_keys", N), &N, |b, _| {
        b.iter(|| {
            <Many<N> as StorageAvailability>::Kind::ALL
                .iter()
                .map(|&k| config.section_key_in(k, &context).expect("key"))
                .fold(0u8, |acc, key| acc ^ key.as_bytes()[0])
        })
    });
}

fn save<const N: usize>(group: &mut BenchmarkGroup<'_, WallTime>) {
    let config = Many::<N>::new();
    let ws = Workspace::new();
    let cache = open_large(config, &ws.config_path);
    let file = support::cache_file_of(&cache);
    let store = FileStore::new(cache.path().expect("file store"));
    group.throughput(Throughput::Elements(N as u64));
    group.bench_with_input(BenchmarkId::new("save", N), &N, |b, _| {
        b.iter(|| store.save(black_box(&file)).expect("save"))
    });
}

fn scaling(c: &mut Criterion) {
    {
        let mut group = c.benchmark_group("scaling");
        group
            .sample_size(20)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        hit_path::<4>(&mut group);
        hit_path::<64>(&mut group);
        hit_path::<1000>(&mut group);
        keys::<4>(&mut group);
        keys::<64>(&mut group);
        keys::<1000>(&mut group);
        save::<4>(&mut group);
        save::<64>(&mut group);
        save::<1000>(&mut group);
        group.finish();
    }
    // 10,000 sections: tens of milliseconds per iteration, so fewer samples.
    let mut group = c.benchmark_group("scaling");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    hit_path::<10000>(&mut group);
    keys::<10000>(&mut group);
    save::<10000>(&mut group);
    group.finish();
}

criterion_group!(benches, scaling);
criterion_main!(benches);
