//! A process that uses the cache, for the multi-process and crash tests.
//!
//! ```text
//! availability-probe open CACHE LOG csv=V kv=V [vector=V]
//!     Opens the cache at CACHE for a LoggedConfig with these values, appending one line per
//!     validator call to LOG ("-": no log), and prints one JSON line:
//!     {"pid", "statuses" (as statuses_json), "sources", "validations", "saves"}.
//! availability-probe save-loop CACHE
//!     Opens the cache at CACHE again and again, alternating two configs that differ in
//!     every section, so that nearly all its time is spent validating and saving. Runs
//!     until killed.
//! availability-probe hold-lock CACHE MS
//!     Takes the cache's cross-process lock, prints "locked", holds it MS milliseconds,
//!     releases it and exits.
//! ```
//!
//! Exit codes: 0 ok, 2 usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use storage_availability::AvailabilityCache;
use storage_availability_tests::{LoggedConfig, statuses_json};

/// The two configs of the save loop; `crash.rs` checks statuses against the same values.
const SAVE_LOOP: [(&str, &str, Option<&str>); 2] = [
    ("ok", "ok", Some("ok")),
    ("fail:config b", "warn:config b", None),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("open") if args.len() >= 3 => open(&args[1], &args[2], &args[3..]),
        Some("save-loop") if args.len() == 2 => save_loop(Path::new(&args[1])),
        Some("hold-lock") if args.len() == 3 => hold_lock(Path::new(&args[1]), &args[2]),
        _ => {
            eprintln!(
                "usage: availability-probe open CACHE LOG csv=V kv=V [vector=V]\n       availability-probe save-loop CACHE\n       availability-probe hold-lock CACHE MS"
            );
            ExitCode::from(2)
        }
    }
}

fn open(cache: &str, log: &str, values: &[String]) -> ExitCode {
    let (mut csv, mut kv, mut vector) = (None, None, None);
    for value in values {
        match value.split_once('=') {
            Some(("csv", v)) => csv = Some(v),
            Some(("kv", v)) => kv = Some(v),
            Some(("vector", v)) => vector = Some(v),
            _ => {
                eprintln!("unknown section value {value:?}");
                return ExitCode::from(2);
            }
        }
    }
    let (Some(csv), Some(kv)) = (csv, kv) else {
        eprintln!("csv=V and kv=V are required");
        return ExitCode::from(2);
    };
    let log = (log != "-").then(|| PathBuf::from(log));
    let config = LoggedConfig::new(csv, kv, vector, log.as_deref());
    let cache = AvailabilityCache::builder(config)
        .cache_path(cache)
        .open()
        .expect("open never fails for valid options");
    let sources: serde_json::Map<String, serde_json::Value> = cache
        .statuses()
        .into_iter()
        .map(|(kind, s)| (kind.name().to_owned(), s.source.as_str().into()))
        .collect();
    let stats = cache.stats();
    let line = serde_json::json!({
        "pid": std::process::id(),
        "statuses": statuses_json(&cache),
        "sources": sources,
        "validations": stats.validations,
        "saves": stats.saves,
    });
    println!("{line}");
    ExitCode::SUCCESS
}

fn save_loop(cache: &Path) -> ExitCode {
    for i in 0usize.. {
        let (csv, kv, vector) = SAVE_LOOP[i % 2];
        let opened = AvailabilityCache::builder(LoggedConfig::new(csv, kv, vector, None))
            .cache_path(cache)
            .open()
            .expect("open never fails for valid options");
        drop(opened);
    }
    ExitCode::SUCCESS
}

fn hold_lock(cache: &Path, ms: &str) -> ExitCode {
    use std::io::Write;
    use storage_availability::{CacheStore, FileStore, LockOutcome};
    let Ok(ms) = ms.parse::<u64>() else {
        eprintln!("MS must be a number of milliseconds");
        return ExitCode::from(2);
    };
    let store = FileStore::new(cache);
    let LockOutcome::Locked(guard) = store.lock(std::time::Duration::from_secs(10)) else {
        eprintln!("could not take the lock of {}", cache.display());
        return ExitCode::from(1);
    };
    println!("locked");
    let _ = std::io::stdout().flush();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    drop(guard);
    ExitCode::SUCCESS
}
