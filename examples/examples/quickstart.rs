//! Quickstart: validate a four-section storage config once, then serve it from the cache.
//!
//! ```text
//! cargo run --example quickstart            # first run: validates and writes the cache
//! cargo run --example quickstart            # second run: answered from the cache file
//! cargo run --example quickstart -- PATH    # use your own storage.json
//! ```
//!
//! Without an argument it works in `<temp dir>/storage-availability-quickstart/`, writing a
//! default `storage.json` there (and its data directories) on first use. The default
//! `key_value` endpoint, `127.0.0.1:6379`, fails unless a server listens there: the table
//! shows the check's error. Edit that file (say, the csv directory, or the endpoint to a
//! directory path) and run again to see only the changed section revalidated.
//!
//! The validators are one-liners over `storage_availability::checks`: a real write probe
//! for each directory, a TCP connection with a timeout for the endpoint.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use storage_availability::{AvailabilityCache, Outcome, StorageAvailability, checks};

/// The application's storage configuration, as read from `storage.json`.
#[derive(Debug, Serialize, Deserialize, StorageAvailability)]
struct StorageConfig {
    /// CSV files: a base directory that must exist and be writable.
    #[storage(validate = check_csv)]
    csv: CsvConfig,
    /// Vector store: optional; when configured, a provider and a usable data directory.
    #[storage(validate = check_vector, timeout_ms = 2000)]
    vector: Option<VectorConfig>,
    /// Key-value store: a local directory, or a `host:port` that must accept a connection.
    #[storage(validate = check_kv, name = "key_value", timeout_ms = 1500)]
    kv: KvConfig,
    /// JSON documents: a usable directory.
    #[storage(validate = check_json)]
    json: JsonConfig,
    /// Not a section: not validated, not part of any cache key.
    app_name: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct CsvConfig {
    base_dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct VectorConfig {
    provider: String,
    data_dir: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
struct KvConfig {
    /// A directory path, or `host:port` for a network store.
    endpoint: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct JsonConfig {
    dir: PathBuf,
}

fn check_csv(cfg: &CsvConfig) -> Outcome {
    checks::dir_writable(&cfg.base_dir)
}

fn check_vector(cfg: &VectorConfig) -> Outcome {
    const KNOWN: &[&str] = &["local", "chroma", "qdrant", "pgvector"];
    if cfg.provider.trim().is_empty() {
        return Outcome::failed("no vector provider configured");
    }
    let outcome = checks::dir_writable(&cfg.data_dir);
    if KNOWN.contains(&cfg.provider.as_str()) {
        outcome
    } else {
        outcome.with_warning(format!("unknown vector provider `{}`", cfg.provider))
    }
}

/// A `host:port` must accept a TCP connection; anything else is a directory.
fn check_kv(cfg: &KvConfig) -> Outcome {
    let looks_like_host_port = cfg
        .endpoint
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok());
    if looks_like_host_port {
        checks::tcp_connect(&cfg.endpoint, Duration::from_secs(1))
    } else {
        checks::dir_writable(&cfg.endpoint)
    }
}

fn check_json(cfg: &JsonConfig) -> Outcome {
    checks::dir_writable(&cfg.dir)
}

/// Reads `storage.json`, writing a default one (rooted next to it) if there is none.
fn load_config(path: &Path) -> Result<StorageConfig, Box<dyn std::error::Error>> {
    if !path.exists() {
        let root = path.parent().unwrap_or(Path::new("."));
        let default = StorageConfig {
            csv: CsvConfig {
                base_dir: root.join("data/csv"),
            },
            vector: Some(VectorConfig {
                provider: "local".into(),
                data_dir: root.join("data/vector"),
            }),
            // A key-value server on its usual local port: unless one runs here, this is the
            // section that fails, and the table shows why.
            kv: KvConfig {
                endpoint: "127.0.0.1:6379".into(),
            },
            json: JsonConfig {
                dir: root.join("data/json"),
            },
            app_name: "quickstart".into(),
        };
        for dir in [
            &default.csv.base_dir,
            &root.join("data/vector"),
            &default.json.dir,
        ] {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&default)? + "\n")?;
        println!("wrote a default config to {}", path.display());
    }
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config_path = match std::env::args_os().nth(1) {
        Some(path) => PathBuf::from(path),
        None => std::env::temp_dir()
            .join("storage-availability-quickstart")
            .join("storage.json"),
    };
    let config = load_config(&config_path)?;

    let started = Instant::now();
    let cache = AvailabilityCache::open(config, &config_path)?;
    let elapsed = started.elapsed();

    println!("config: {}", config_path.display());
    match cache.path() {
        Some(path) => println!("cache:  {}", path.display()),
        None => println!("cache:  (in memory only)"),
    }
    println!();
    println!(
        "{:<10} {:<10} {:<13} {:>10}  detail",
        "section", "available", "source", "check took"
    );
    for (kind, status) in cache.statuses() {
        let detail = status
            .last_error
            .clone()
            .or_else(|| status.warnings.first().map(|w| format!("warning: {w}")))
            .unwrap_or_default();
        println!(
            "{:<10} {:<10} {:<13} {:>8.2}ms  {}",
            kind.name(),
            if status.is_available() { "yes" } else { "no" },
            status.source.to_string(),
            status.duration.as_secs_f64() * 1000.0,
            detail
        );
    }
    let stats = cache.stats();
    println!();
    println!(
        "open took {:.3} ms: {} validated, {} from cache, {} saved",
        elapsed.as_secs_f64() * 1000.0,
        stats.misses,
        stats.hits,
        stats.saves
    );
    if stats.misses > 0 {
        println!("run it again: every section will come from the cache file");
    }
    Ok(())
}
