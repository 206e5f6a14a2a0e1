//! One process of a simulated fleet, for the fleet tests and benchmarks:
//!
//! `fleet_node <cache file> <redis url | -> <log file> <host> <ms[:ms]> <start at, unix ms>
//!  [--cross] [--delay-lease <key part>:<ms>]... [--secret <key>]`
//!
//! (`ms`: how long the validators take; `shared:host` to set them apart.)
//!
//! Waits until the start time (so that every process of a test starts at once), opens a
//! [`FleetConfig`] cache (with `--cross`, a [`CrossConfig`]: two shared sections), with
//! Redis unless the URL is `-`, and prints one JSON line: the source of each section,
//! whether it is available, and the stats. `--delay-lease :search:150` sleeps 150 ms before
//! taking a lease whose key contains `:search:` (to force crossed leases); `--secret` signs
//! the fleet records.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use storage_availability::{
    AvailabilityCache, AvailabilityCacheBuilder, BlockingValidators, RedisStore, Stats,
    StorageAvailability, StorageKind,
};
use storage_availability_tests::fleet::{CrossConfig, DelayedLeases, FleetConfig, FleetProbe};

struct Options {
    url: String,
    delays: Vec<(String, Duration)>,
    secret: Option<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: fleet_node <cache> <redis url|-> <log> <host> <sleep ms> <start ms> \
                 [--cross] [--delay-lease <key part>:<ms>]... [--secret <key>]";
    let (positional, flags) = args.split_at(args.len().min(6));
    let [cache, url, log, host, sleep_ms, start_at] = positional else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let mut cross = false;
    let mut options = Options {
        url: url.clone(),
        delays: Vec::new(),
        secret: None,
    };
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        match flag.as_str() {
            "--cross" => cross = true,
            "--delay-lease" => {
                let value = flags.next().expect("--delay-lease <key part>:<ms>");
                let (part, ms) = value.rsplit_once(':').expect("<key part>:<ms>");
                let ms: u64 = ms.parse().expect("delay ms");
                options
                    .delays
                    .push((part.to_owned(), Duration::from_millis(ms)));
            }
            "--secret" => options.secret = flags.next().cloned(),
            _ => {
                eprintln!("{usage}");
                std::process::exit(2);
            }
        }
    }
    let log = PathBuf::from(log);
    // `<ms>` for both validators, or `<shared ms>:<host ms>`.
    let (remote_ms, local_ms) = sleep_ms.split_once(':').unwrap_or((sleep_ms, sleep_ms));
    let remote_ms: u64 = remote_ms.parse().expect("sleep ms");
    let local_ms: u64 = local_ms.parse().expect("sleep ms");
    let start_at: u64 = start_at.parse().expect("start ms");
    let start = SystemTime::UNIX_EPOCH + Duration::from_millis(start_at);
    if let Ok(wait) = start.duration_since(SystemTime::now()) {
        std::thread::sleep(wait);
    }
    if cross {
        let config = CrossConfig::new(host, Some(&log), remote_ms, local_ms);
        run(config, cache, host, &options);
    } else {
        let config = FleetConfig {
            remote: FleetProbe::new("remote", host, Some(&log), remote_ms),
            local: FleetProbe::new("local", host, Some(&log), local_ms),
        };
        run(config, cache, host, &options);
    }
}

fn with_fleet<C: StorageAvailability>(
    mut builder: AvailabilityCacheBuilder<C>,
    options: &Options,
) -> AvailabilityCacheBuilder<C> {
    if options.url != "-" {
        if options.delays.is_empty() {
            builder = builder.redis(&options.url);
        } else {
            let store = RedisStore::new(&options.url).expect("a valid Redis URL");
            builder = builder.shared_store(DelayedLeases::new(store, options.delays.clone()));
        }
    }
    if let Some(secret) = &options.secret {
        builder = builder.shared_secret(secret);
    }
    builder
}

fn run<C: BlockingValidators<Context = ()>>(config: C, cache: &str, host: &str, options: &Options) {
    let began = Instant::now();
    let builder = with_fleet(
        AvailabilityCache::builder(config).cache_path(cache),
        options,
    );
    let cache = builder.open().expect("open the cache");
    let elapsed = began.elapsed();
    let stats: Stats = cache.stats();
    let mut line = serde_json::json!({
        "host": host,
        "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
        "validations": stats.validations,
        "shared_hits": stats.shared_hits,
        "shared_publishes": stats.shared_publishes,
        "lease_waits": stats.lease_waits,
        "lease_timeouts": stats.lease_timeouts,
        "shared_errors": stats.shared_errors,
        "shared_unsigned": stats.shared_unsigned,
    });
    for &kind in C::Kind::ALL {
        let status = cache.status(kind);
        line[kind.name()] = status.source.as_str().into();
        line[format!("{}_ok", kind.name())] = cache.is_available(kind).into();
    }
    println!("{line}");
}
