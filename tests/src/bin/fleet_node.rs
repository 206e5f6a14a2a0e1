//! One process of a simulated fleet, for the fleet tests and benchmarks:
//!
//! `fleet_node <cache file> <redis url | -> <log file> <host> <ms[:ms]> <start at, unix ms>`
//!
//! (`ms`: how long the validators take; `shared:host` to set them apart.)
//!
//! Waits until the start time (so that every process of a test starts at once), opens a
//! [`FleetConfig`] cache (with Redis unless the URL is `-`), and prints one JSON line: the
//! source of each section, whether it is available, and the stats.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use storage_availability::AvailabilityCache;
use storage_availability_tests::fleet::{FleetConfig, FleetConfigKind, FleetProbe};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cache, url, log, host, sleep_ms, start_at] = args.as_slice() else {
        eprintln!("usage: fleet_node <cache> <redis url|-> <log> <host> <sleep ms> <start ms>");
        std::process::exit(2);
    };
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
    let config = FleetConfig {
        remote: FleetProbe::new("remote", host, Some(&log), remote_ms),
        local: FleetProbe::new("local", host, Some(&log), local_ms),
    };
    let began = Instant::now();
    let mut builder = AvailabilityCache::builder(config).cache_path(cache);
    if url != "-" {
        builder = builder.redis(url);
    }
    let cache = builder.open().expect("open the cache");
    let elapsed = began.elapsed();
    let stats = cache.stats();
    let line = serde_json::json!({
        "host": host,
        "remote": cache.status(FleetConfigKind::Remote).source.as_str(),
        "remote_ok": cache.is_available(FleetConfigKind::Remote),
        "local": cache.status(FleetConfigKind::Local).source.as_str(),
        "local_ok": cache.is_available(FleetConfigKind::Local),
        "elapsed_ms": elapsed.as_secs_f64() * 1000.0,
        "shared_hits": stats.shared_hits,
        "lease_waits": stats.lease_waits,
        "shared_errors": stats.shared_errors,
    });
    println!("{line}");
}
