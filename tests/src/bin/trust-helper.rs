//! A process for the trust tests (`tests/tests/trust.rs`), run as another user (uid 65534).
//!
//! ```text
//! trust-helper open-config CONFIG
//!     Opens the cache for a LoggedConfig ("ok" everywhere) with `.config_path(CONFIG)` and
//!     prints one JSON line: {"path", "saves", "save_failures", "validations", "untrusted"}.
//! trust-helper hold-lock LOCK MS
//!     Creates (or opens) LOCK, takes an exclusive lock on it, prints "locked", holds it MS
//!     milliseconds and exits: another user holding the cache's lock file.
//! ```
//!
//! Exit codes: 0 ok, 1 failure, 2 usage.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use storage_availability::AvailabilityCache;
use storage_availability_tests::LoggedConfig;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["open-config", config] => open_config(Path::new(config)),
        ["hold-lock", lock, ms] => hold_lock(Path::new(lock), ms),
        _ => {
            eprintln!(
                "usage: trust-helper open-config CONFIG\n       trust-helper hold-lock LOCK MS"
            );
            ExitCode::from(2)
        }
    }
}

fn open_config(config: &Path) -> ExitCode {
    let cache = AvailabilityCache::builder(LoggedConfig::new("ok", "ok", Some("ok"), None))
        .config_path(config)
        .open()
        .expect("open never fails for valid options");
    let stats = cache.stats();
    let line = serde_json::json!({
        "path": cache.path().map(|p| p.display().to_string()),
        "saves": stats.saves,
        "save_failures": stats.save_failures,
        "validations": stats.validations,
        "untrusted": stats.untrusted,
    });
    println!("{line}");
    ExitCode::SUCCESS
}

fn hold_lock(lock: &Path, ms: &str) -> ExitCode {
    let Ok(ms) = ms.parse::<u64>() else {
        eprintln!("MS must be a number of milliseconds");
        return ExitCode::from(2);
    };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock)
    {
        Ok(file) => file,
        Err(e) => {
            eprintln!("cannot open {}: {e}", lock.display());
            return ExitCode::from(1);
        }
    };
    if let Err(e) = file.lock() {
        eprintln!("cannot lock {}: {e}", lock.display());
        return ExitCode::from(1);
    }
    println!("locked");
    let _ = std::io::stdout().flush();
    std::thread::sleep(Duration::from_millis(ms));
    ExitCode::SUCCESS
}
