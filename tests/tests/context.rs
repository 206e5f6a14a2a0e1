//! Validator context: `#[availability(context = T)]` and the builder's `.context(value)`
//! reach every validator, blocking and async, `deref` ones, and those of `scope = "shared"`
//! sections validated under a fleet lease. The context is not part of the cache key.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use storage_availability::{
    AvailabilityCache, Outcome, SharedError, SharedStore, Source, StorageAvailability,
};

/// What the application hands its validators: a base URL and a call counter per section.
#[derive(Debug, Default)]
struct AppContext {
    base_url: String,
    calls: Mutex<Vec<String>>,
}

impl AppContext {
    fn new(base_url: &str) -> Self {
        AppContext {
            base_url: base_url.to_owned(),
            calls: Mutex::default(),
        }
    }

    fn record(&self, section: &str) {
        self.calls.lock().unwrap().push(section.to_owned());
    }

    fn calls(&self) -> Vec<String> {
        let mut calls = self.calls.lock().unwrap().clone();
        calls.sort();
        calls
    }
}

#[derive(serde::Serialize, StorageAvailability)]
#[availability(context = AppContext)]
struct Config {
    #[storage(validate = check_csv, deref)]
    csv: String,
    #[storage(validate = check_dir, deref)]
    dir: std::path::PathBuf,
    #[storage(validate = check_search, scope = "shared")]
    search: String,
    #[storage(validate = check_vector)]
    vector: Option<String>,
}

fn check_csv(path: &str, context: &AppContext) -> Outcome {
    context.record("csv");
    if path.is_empty() {
        Outcome::failed("no path")
    } else {
        Outcome::ok()
    }
}

fn check_dir(dir: &Path, context: &AppContext) -> Result<(), String> {
    context.record("dir");
    if dir.as_os_str().is_empty() {
        Err("empty".into())
    } else {
        Ok(())
    }
}

fn check_search(path: &String, context: &AppContext) -> Result<(), String> {
    context.record("search");
    if context.base_url.starts_with("http://") {
        Ok(())
    } else {
        Err(format!("bad base URL for {path}: {}", context.base_url))
    }
}

fn check_vector(_: &String, context: &AppContext) -> Outcome {
    context.record("vector");
    Outcome::ok()
}

fn config() -> Config {
    Config {
        csv: "data/csv".into(),
        dir: "data".into(),
        search: "/health".into(),
        vector: None,
    }
}

#[test]
fn the_context_reaches_every_blocking_validator() {
    let context = AppContext::new("http://127.0.0.1:9200");
    let dir = tempfile::tempdir().unwrap();
    let cache = AvailabilityCache::builder(config())
        .config_path(dir.path().join("storage.yaml"))
        .context(context)
        .open()
        .unwrap();
    for kind in ConfigKind::ALL {
        if *kind == ConfigKind::Vector {
            assert_eq!(cache.status(*kind).source, Source::Unconfigured);
        } else {
            assert!(
                cache.is_available(*kind),
                "{kind}: {:?}",
                cache.status(*kind)
            );
        }
    }
    // The context decides the answer: a bad base URL fails the section that uses it.
    let cache = AvailabilityCache::builder(config())
        .context(AppContext::new("ftp://nowhere"))
        .persist(false)
        .open()
        .unwrap();
    let search = cache.status(ConfigKind::Search);
    assert!(!search.validation_passed);
    assert_eq!(
        search.last_error.as_deref(),
        Some("bad base URL for /health: ftp://nowhere")
    );
}

#[test]
fn every_configured_section_is_validated_once_with_the_context() {
    // The cache owns its context; an `Arc` lets the test keep a handle on it.
    let shared = Arc::new(AtomicUsize::new(0));
    #[derive(serde::Serialize, StorageAvailability)]
    #[availability(context = Arc<AtomicUsize>)]
    struct Counted {
        #[storage(validate = count)]
        a: u8,
        #[storage(validate = count)]
        b: u8,
    }
    fn count(_: &u8, calls: &Arc<AtomicUsize>) -> Outcome {
        calls.fetch_add(1, Ordering::SeqCst);
        Outcome::ok()
    }
    let counted = AvailabilityCache::builder(Counted { a: 1, b: 2 })
        .context(Arc::clone(&shared))
        .persist(false)
        .open()
        .unwrap();
    assert_eq!(shared.load(Ordering::SeqCst), 2);
    counted.invalidate(CountedKind::B);
    counted.refresh().unwrap();
    assert_eq!(shared.load(Ordering::SeqCst), 3);
}

#[test]
fn the_context_is_not_part_of_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storage.yaml");
    let first = AvailabilityCache::builder(config())
        .config_path(&path)
        .context(AppContext::new("http://127.0.0.1:9200"))
        .open()
        .unwrap();
    let key = config().section_key(ConfigKind::Csv);
    assert!(first.is_available(ConfigKind::Csv));
    drop(first);
    // Another context, the same sections: every answer comes from the file, no validator
    // runs (documented: what the answer depends on belongs in the section or `key_with`).
    let second = AvailabilityCache::builder(config())
        .config_path(&path)
        .context(AppContext::new("ftp://elsewhere"))
        .open()
        .unwrap();
    assert_eq!(second.status(ConfigKind::Csv).source, Source::Cache);
    assert_eq!(second.status(ConfigKind::Search).source, Source::Cache);
    assert!(second.is_available(ConfigKind::Search));
    assert_eq!(config().section_key(ConfigKind::Csv), key);
}

#[test]
fn plain_validate_says_a_context_is_needed() {
    let outcome = config().validate(ConfigKind::Csv);
    assert_eq!(
        outcome.last_error(),
        Some("storage section `csv` has a validator that takes a context; call `validate_with`")
    );
    let context = AppContext::new("http://x");
    assert!(config().validate_with(ConfigKind::Csv, &context).is_ok());
    assert_eq!(context.calls(), ["csv"]);
}

#[derive(serde::Serialize, StorageAvailability)]
#[availability(context = AppContext)]
struct AsyncConfig {
    #[storage(validate = check_csv, deref)]
    csv: String,
    #[storage(validate = ping, async, deref, timeout_ms = 2000)]
    kv: String,
    #[storage(validate = ping_dir, async, deref)]
    dir: std::path::PathBuf,
}

async fn ping(addr: &str, context: &AppContext) -> Result<(), String> {
    tokio::task::yield_now().await;
    context.record("kv");
    if addr.is_empty() || context.base_url.is_empty() {
        Err("nothing to ping".into())
    } else {
        Ok(())
    }
}

async fn ping_dir(dir: &Path, context: &AppContext) -> Outcome {
    tokio::task::yield_now().await;
    context.record("dir");
    if dir.as_os_str().is_empty() {
        Outcome::failed("empty")
    } else {
        Outcome::ok()
    }
}

#[tokio::test]
async fn the_context_reaches_async_and_blocking_validators_of_open_async() {
    let dir = tempfile::tempdir().unwrap();
    let cache = AvailabilityCache::builder(AsyncConfig {
        csv: "data".into(),
        kv: "127.0.0.1:6379".into(),
        dir: "data".into(),
    })
    .config_path(dir.path().join("storage.yaml"))
    .context(AppContext::new("http://127.0.0.1"))
    .open_async()
    .await
    .unwrap();
    for kind in AsyncConfigKind::ALL {
        assert!(
            cache.is_available(*kind),
            "{kind}: {:?}",
            cache.status(*kind)
        );
        assert_eq!(cache.status(*kind).source, Source::Validated);
    }
    // A context that makes the async validator fail.
    let cache = AvailabilityCache::builder(AsyncConfig {
        csv: "data".into(),
        kv: "127.0.0.1:6379".into(),
        dir: "data".into(),
    })
    .context(AppContext::new(""))
    .persist(false)
    .open_async()
    .await
    .unwrap();
    assert_eq!(
        cache.status(AsyncConfigKind::Kv).last_error.as_deref(),
        Some("nothing to ping")
    );
}

#[tokio::test]
async fn a_blocking_config_with_a_context_opens_async_too() {
    let cache = AvailabilityCache::builder(config())
        .context(AppContext::new("http://127.0.0.1"))
        .persist(false)
        .open_async()
        .await
        .unwrap();
    assert!(cache.is_available(ConfigKind::Search));
    assert!(cache.is_available(ConfigKind::Dir));
}

/// An in-memory fleet store (TTLs ignored).
#[derive(Debug, Default)]
struct MemoryStore(Mutex<HashMap<String, Vec<u8>>>);

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> {
        Ok(self.0.lock().unwrap().get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8], _: Duration) -> Result<(), SharedError> {
        self.0
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }
    fn try_lease(&self, key: &str, token: &str, _: Duration) -> Result<bool, SharedError> {
        let mut map = self.0.lock().unwrap();
        if map.contains_key(key) {
            return Ok(false);
        }
        map.insert(key.to_owned(), token.as_bytes().to_owned());
        Ok(true)
    }
    fn release_lease(&self, key: &str, token: &str) -> Result<bool, SharedError> {
        let mut map = self.0.lock().unwrap();
        if map.get(key).map(Vec::as_slice) == Some(token.as_bytes()) {
            map.remove(key);
            return Ok(true);
        }
        Ok(false)
    }
}

#[test]
fn the_context_reaches_a_shared_section_validated_under_a_fleet_lease() {
    let store = Arc::new(MemoryStore::default());
    let dir = tempfile::tempdir().unwrap();
    let cache = AvailabilityCache::builder(config())
        .cache_path(dir.path().join("a.json"))
        .shared_store(Arc::clone(&store))
        .context(AppContext::new("http://127.0.0.1:9200"))
        .open()
        .unwrap();
    assert!(cache.is_available(ConfigKind::Search));
    assert_eq!(cache.stats().shared_publishes, 1);
    // A second host reads the record its neighbour published: no validator runs there.
    let other = tempfile::tempdir().unwrap();
    let second = AvailabilityCache::builder(config())
        .cache_path(other.path().join("b.json"))
        .shared_store(Arc::clone(&store))
        .context(AppContext::new("http://127.0.0.1:9200"))
        .open()
        .unwrap();
    assert_eq!(second.status(ConfigKind::Search).source, Source::Shared);
}
