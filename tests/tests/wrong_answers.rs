//! Regression tests of issue 12: each test is one way the cache gave an answer that a fresh
//! validation would not give (an input of the validator's answer missing from the section
//! key, or a flag lost), and now does not.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use storage_availability::schema::CacheFile;
use storage_availability::{
    AvailabilityCache, KeyContext, ManualClock, Outcome, Source, StorageAvailability,
};
use storage_availability_tests::{Probe, ProbeConfig, ProbeConfigKind};

fn read_file(path: &Path) -> CacheFile {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn write_file(path: &Path, file: &CacheFile) {
    std::fs::write(path, serde_json::to_vec_pretty(file).unwrap()).unwrap();
}

/// Validator calls, per test (each test has its own static).
fn count(calls: &AtomicUsize) -> usize {
    calls.load(Ordering::SeqCst)
}

// --- An unconfigured section is never available -----------------------------------------

#[test]
fn an_unconfigured_section_is_disabled_whatever_its_record_says() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("storage.yaml");
    let config = ProbeConfig {
        vector: None,
        ..ProbeConfig::ok()
    };
    let cache = AvailabilityCache::open(config.clone(), &config_path).unwrap();
    let path = cache.path().unwrap().to_owned();
    drop(cache);
    // Someone (or an old version) wrote "available" into the unconfigured section's record.
    let mut file = read_file(&path);
    let record = file.sections.get_mut("vector").unwrap();
    record.enabled = true;
    record.validation_passed = true;
    record.last_error = None;
    write_file(&path, &file);

    let cache = AvailabilityCache::open(config, &config_path).unwrap();
    let status = cache.status(ProbeConfigKind::Vector);
    assert!(!status.enabled && !status.validation_passed, "{status:?}");
    assert!(!cache.is_available(ProbeConfigKind::Vector));
    assert_eq!(status.source, Source::Unconfigured);
}

#[derive(Debug, Clone, Copy, Serialize)]
struct Unit;

#[derive(Serialize, StorageAvailability)]
struct NullLike {
    #[storage(validate = check_unit)]
    unit: Option<Unit>,
    #[storage(validate = check_nested)]
    nested: Option<Option<u8>>,
    #[storage(validate = check_float)]
    float: Option<f64>,
}

static NULL_LIKE_CALLS: AtomicUsize = AtomicUsize::new(0);

fn check_unit(_: &Unit) -> Outcome {
    NULL_LIKE_CALLS.fetch_add(1, Ordering::SeqCst);
    Outcome::ok()
}

fn check_nested(_: &Option<u8>) -> Outcome {
    NULL_LIKE_CALLS.fetch_add(1, Ordering::SeqCst);
    Outcome::ok()
}

fn check_float(_: &f64) -> Outcome {
    NULL_LIKE_CALLS.fetch_add(1, Ordering::SeqCst);
    Outcome::ok()
}

#[test]
fn none_never_shares_a_key_with_a_value_that_serialises_as_null() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("storage.yaml");
    let configured = || NullLike {
        unit: Some(Unit),
        nested: Some(None),
        float: Some(f64::NAN),
    };
    let cache = AvailabilityCache::open(configured(), &config_path).unwrap();
    assert_eq!(count(&NULL_LIKE_CALLS), 3);
    assert!(cache.statuses().iter().all(|(_, s)| s.is_available()));

    let none = NullLike {
        unit: None,
        nested: None,
        float: None,
    };
    for kind in NullLikeKind::ALL {
        assert_ne!(
            none.section_key(*kind),
            configured().section_key(*kind),
            "{kind}"
        );
    }
    let cache = AvailabilityCache::open(none, &config_path).unwrap();
    for (kind, status) in cache.statuses() {
        assert!(!status.is_available(), "{kind}: {status:?}");
        assert_eq!(status.source, Source::Unconfigured, "{kind}");
    }
    assert_eq!(count(&NULL_LIKE_CALLS), 3);
}

// --- NaN, +inf and -inf are three values ---------------------------------------------------

#[derive(Serialize, StorageAvailability)]
struct Ratio {
    #[storage(validate = check_ratio)]
    ratio: f64,
}

static RATIO_CALLS: AtomicUsize = AtomicUsize::new(0);

fn check_ratio(ratio: &f64) -> Result<(), String> {
    RATIO_CALLS.fetch_add(1, Ordering::SeqCst);
    if ratio.is_nan() {
        Err("ratio is not a number".into())
    } else {
        Ok(())
    }
}

#[test]
fn nan_and_the_infinities_are_validated_each() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("storage.yaml");
    let open = |ratio| AvailabilityCache::open(Ratio { ratio }, &config_path).unwrap();
    assert!(open(f64::INFINITY).is_available(RatioKind::Ratio));
    assert!(open(f64::NEG_INFINITY).is_available(RatioKind::Ratio));
    let nan = open(f64::NAN);
    assert!(!nan.is_available(RatioKind::Ratio));
    assert_eq!(nan.status(RatioKind::Ratio).source, Source::Validated);
    assert_eq!(count(&RATIO_CALLS), 3);
}

// --- The config type is in the key and in the file name ------------------------------------

mod first {
    use super::*;

    #[derive(Clone, Serialize, StorageAvailability)]
    pub(crate) struct StorageConfig {
        #[storage(validate = check)]
        pub(crate) csv: u32,
    }

    pub(crate) static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn check(_: &u32) -> Outcome {
        CALLS.fetch_add(1, Ordering::SeqCst);
        Outcome::ok()
    }
}

mod second {
    use super::*;

    /// The same name and section as `first::StorageConfig`, another validator.
    #[derive(Clone, Serialize, StorageAvailability)]
    pub(crate) struct StorageConfig {
        #[storage(validate = check)]
        pub(crate) csv: u32,
    }

    pub(crate) static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn check(_: &u32) -> Outcome {
        CALLS.fetch_add(1, Ordering::SeqCst);
        Outcome::failed("the second config type refuses")
    }
}

#[test]
fn two_config_types_on_one_config_path_neither_share_answers_nor_flip_flop() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("storage.yaml");
    let a = first::StorageConfig { csv: 1 };
    let b = second::StorageConfig { csv: 1 };
    assert_ne!(
        first::StorageConfig::config_type(),
        second::StorageConfig::config_type()
    );

    let cache_a = AvailabilityCache::open(a.clone(), &config_path).unwrap();
    assert!(cache_a.is_available(first::StorageConfigKind::Csv));
    let cache_b = AvailabilityCache::open(b.clone(), &config_path).unwrap();
    assert!(!cache_b.is_available(second::StorageConfigKind::Csv));
    assert_eq!(
        cache_b.status(second::StorageConfigKind::Csv).source,
        Source::Validated
    );
    assert_ne!(cache_a.path(), cache_b.path(), "one file per config type");

    // Each keeps its answers: no flip-flop between the two types.
    let again_a = AvailabilityCache::open(a, &config_path).unwrap();
    let again_b = AvailabilityCache::open(b, &config_path).unwrap();
    assert_eq!(
        again_a.status(first::StorageConfigKind::Csv).source,
        Source::Cache
    );
    assert_eq!(
        again_b.status(second::StorageConfigKind::Csv).source,
        Source::Cache
    );
    assert_eq!(count(&first::CALLS), 1);
    assert_eq!(count(&second::CALLS), 1);
    let file = read_file(again_a.path().unwrap());
    assert_eq!(
        file.metadata.config_type,
        first::StorageConfig::config_type()
    );
    assert_eq!(
        file.metadata.config_type,
        "wrong_answers::first::StorageConfig"
    );
}

#[test]
fn a_file_of_another_config_type_is_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let cache_path = dir.path().join("shared.availability.json");
    let config = ProbeConfig::ok();
    let open = || {
        AvailabilityCache::builder(config.clone())
            .cache_path(&cache_path)
            .open()
            .unwrap()
    };
    drop(open());
    assert_eq!(config.total_calls(), 3);
    // The same records, claimed by another type.
    let mut file = read_file(&cache_path);
    file.metadata.config_type = "another_crate::StorageConfig".into();
    write_file(&cache_path, &file);

    let cache = open();
    assert_eq!(
        config.total_calls(),
        6,
        "another type's records are ignored"
    );
    assert_eq!(cache.status(ProbeConfigKind::Csv).source, Source::Validated);
    assert_eq!(cache.stats().incompatible_replaced, 1);
    // Our save replaced it.
    assert_eq!(
        read_file(&cache_path).metadata.config_type,
        ProbeConfig::config_type()
    );
    assert_eq!(
        open().status(ProbeConfigKind::Csv).source,
        Source::Cache,
        "our own file is reused"
    );
}

// --- Another host --------------------------------------------------------------------------

#[test]
fn a_record_written_on_another_host_is_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("storage.yaml");
    let config = ProbeConfig::ok();
    let cache = AvailabilityCache::open(config.clone(), &config_path).unwrap();
    let path = cache.path().unwrap().to_owned();
    drop(cache);
    assert_eq!(config.total_calls(), 3);

    // The file on a shared home, as another host wrote it: its keys are that host's.
    let there = KeyContext::new(ProbeConfig::app_version()).with_host("machine-id:another-host");
    let mut file = read_file(&path);
    for kind in ProbeConfigKind::ALL {
        let key = config.section_key_in(*kind, &there).unwrap();
        file.sections.get_mut(kind.name()).unwrap().section_hash =
            storage_availability::schema::SectionHash::new(key.as_str()).unwrap();
    }
    write_file(&path, &file);

    let cache = AvailabilityCache::open(config.clone(), &config_path).unwrap();
    assert_eq!(config.total_calls(), 6);
    assert_eq!(cache.status(ProbeConfigKind::Csv).source, Source::Validated);
}

// --- What serde does not show: `key_with` --------------------------------------------------

#[derive(Clone, Serialize)]
struct Db {
    url: String,
    #[serde(skip_serializing)]
    password: String,
}

#[derive(Clone, Serialize, StorageAvailability)]
struct Secrets {
    #[storage(validate = check_db, key_with = password_digest)]
    db: Db,
}

static DB_CALLS: AtomicUsize = AtomicUsize::new(0);

fn check_db(db: &Db) -> Result<(), String> {
    DB_CALLS.fetch_add(1, Ordering::SeqCst);
    if db.password == "right" {
        Ok(())
    } else {
        Err(format!("authentication failed for {}", db.url))
    }
}

/// A digest of the password (a real application would use a cryptographic hash).
fn password_digest(db: &Db) -> u64 {
    let mut hasher = DefaultHasher::new();
    db.password.hash(&mut hasher);
    hasher.finish()
}

#[test]
fn a_changed_password_that_serde_skips_is_revalidated() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("storage.yaml");
    let with = |password: &str| Secrets {
        db: Db {
            url: "postgres://db/app".into(),
            password: password.into(),
        },
    };
    let cache = AvailabilityCache::open(with("right"), &config_path).unwrap();
    assert!(cache.is_available(SecretsKind::Db));
    let cache = AvailabilityCache::open(with("wrong"), &config_path).unwrap();
    assert!(!cache.is_available(SecretsKind::Db));
    assert_eq!(cache.status(SecretsKind::Db).source, Source::Validated);
    let cache = AvailabilityCache::open(with("wrong"), &config_path).unwrap();
    assert_eq!(cache.status(SecretsKind::Db).source, Source::Cache);
    assert_eq!(count(&DB_CALLS), 2);
}

// --- The application version ---------------------------------------------------------------

#[test]
fn a_new_application_version_revalidates() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig::ok();
    let open = |version: &str| {
        AvailabilityCache::builder(config.clone())
            .config_path(dir.path().join("storage.yaml"))
            .app_version(version)
            .open()
            .unwrap()
    };
    drop(open("1.0.0"));
    assert_eq!(config.total_calls(), 3);
    let same = open("1.0.0");
    assert_eq!(same.status(ProbeConfigKind::Csv).source, Source::Cache);
    assert_eq!(config.total_calls(), 3);
    let upgraded = open("1.1.0");
    assert_eq!(
        upgraded.status(ProbeConfigKind::Csv).source,
        Source::Validated
    );
    assert_eq!(config.total_calls(), 6);
    // The default is the config crate's version: another key again.
    drop(AvailabilityCache::open(config.clone(), dir.path().join("storage.yaml")).unwrap());
    assert_eq!(config.total_calls(), 9);
    assert!(
        AvailabilityCache::builder(config.clone())
            .app_version("")
            .open()
            .is_err()
    );
}

// --- invalidate is never lost --------------------------------------------------------------

/// A section whose validator, once armed, stops in the middle until the test lets it go.
#[derive(Clone, Serialize)]
struct Gated {
    value: u8,
    #[serde(skip)]
    gate: Arc<GateState>,
}

#[derive(Default)]
struct GateState {
    calls: AtomicUsize,
    /// `Some`: the next call waits on these two barriers (started, released).
    armed: Mutex<Option<(Arc<Barrier>, Arc<Barrier>)>>,
}

#[derive(Clone, Serialize, StorageAvailability)]
struct GatedConfig {
    #[storage(validate = check_gated)]
    gated: Gated,
}

fn check_gated(gated: &Gated) -> Outcome {
    gated.gate.calls.fetch_add(1, Ordering::SeqCst);
    let armed = gated.gate.armed.lock().unwrap().take();
    if let Some((started, released)) = armed {
        started.wait();
        released.wait();
    }
    Outcome::ok()
}

#[test]
fn an_invalidation_made_while_the_section_validates_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(GateState::default());
    let config = GatedConfig {
        gated: Gated {
            value: 1,
            gate: Arc::clone(&gate),
        },
    };
    let cache = Arc::new(AvailabilityCache::open(config, dir.path().join("s.yaml")).unwrap());
    assert_eq!(gate.calls.load(Ordering::SeqCst), 1);

    let started = Arc::new(Barrier::new(2));
    let released = Arc::new(Barrier::new(2));
    *gate.armed.lock().unwrap() = Some((Arc::clone(&started), Arc::clone(&released)));
    cache.invalidate(GatedConfigKind::Gated);
    let refresh = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || cache.refresh().unwrap())
    };
    started.wait();
    // The storage changed again while it was being checked.
    cache.invalidate(GatedConfigKind::Gated);
    released.wait();
    let report = refresh.join().unwrap();
    assert_eq!(report.validated, ["gated"]);
    assert_eq!(gate.calls.load(Ordering::SeqCst), 2);

    let report = cache.refresh().unwrap();
    assert_eq!(
        report.validated,
        ["gated"],
        "the second invalidation was lost"
    );
    assert_eq!(gate.calls.load(Ordering::SeqCst), 3);
    // And then it is answered.
    assert!(cache.refresh().unwrap().validated.is_empty());
}

// --- A late result is a timeout ------------------------------------------------------------

#[derive(Clone, Serialize, StorageAvailability)]
struct Blocking {
    #[storage(validate = sleeps_in_async, async, timeout_ms = 50)]
    remote: u8,
}

async fn sleeps_in_async(_: &u8) -> Outcome {
    // Blocks the thread: tokio's timer cannot fire until it returns.
    std::thread::sleep(Duration::from_millis(300));
    Outcome::ok()
}

#[test]
fn an_async_validator_that_blocks_past_its_timeout_is_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = runtime
        .block_on(AvailabilityCache::open_async(
            Blocking { remote: 1 },
            dir.path().join("s.yaml"),
        ))
        .unwrap();
    let status = cache.status(BlockingKind::Remote);
    assert!(!status.is_available(), "{status:?}");
    assert_eq!(
        status.last_error.as_deref(),
        Some("validation timed out after 50ms")
    );
    assert_eq!(cache.stats().timeouts, 1);
}

// --- A key that cannot be computed ---------------------------------------------------------

/// A section whose `Serialize` panics or fails, as its value says.
#[derive(Clone)]
struct Fragile {
    panics: bool,
    calls: Arc<AtomicUsize>,
}

impl Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        if self.panics {
            panic!("Serialize panicked");
        }
        Err(serde::ser::Error::custom("cannot serialise"))
    }
}

#[derive(Clone, Serialize, StorageAvailability)]
struct FragileConfig {
    #[storage(validate = check_fragile)]
    fragile: Fragile,
    #[storage(validate = storage_availability_tests::check_probe)]
    fine: Probe,
}

fn check_fragile(fragile: &Fragile) -> Outcome {
    fragile.calls.fetch_add(1, Ordering::SeqCst);
    Outcome::ok()
}

#[test]
fn a_section_whose_serialize_panics_or_fails_is_validated_at_every_open() {
    for panics in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let config = FragileConfig {
            fragile: Fragile {
                panics,
                calls: Arc::new(AtomicUsize::new(0)),
            },
            fine: Probe::new("ok"),
        };
        let open = || AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
        let cache = open();
        assert!(cache.is_available(FragileConfigKind::Fragile));
        assert_eq!(cache.stats().uncacheable, 1);
        let cache = open();
        assert_eq!(
            cache.status(FragileConfigKind::Fragile).source,
            Source::Validated
        );
        assert_eq!(cache.status(FragileConfigKind::Fine).source, Source::Cache);
        // A refresh validates it again too: it is never reused.
        assert_eq!(cache.refresh().unwrap().validated, ["fragile"]);
        assert_eq!(config.fragile.calls.load(Ordering::SeqCst), 3);
        assert_eq!(config.fine.calls(), 1);
        // The trait's own `section_key` never panics either.
        let _ = config.section_key(FragileConfigKind::Fragile);
    }
}

// --- Errors keep their causes --------------------------------------------------------------

#[derive(Clone, Serialize, StorageAvailability)]
struct Chained {
    #[storage(validate = check_chained)]
    dir: String,
}

fn check_chained(dir: &String) -> anyhow::Result<()> {
    use anyhow::Context;
    std::fs::read_dir(dir)
        .map(drop)
        .with_context(|| format!("cannot list {dir}"))
}

#[test]
fn an_anyhow_error_is_recorded_with_its_causes() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing").display().to_string();
    let cache = AvailabilityCache::builder(Chained {
        dir: missing.clone(),
    })
    .persist(false)
    .open()
    .unwrap();
    let error = cache.status(ChainedKind::Dir).last_error.unwrap();
    let cause = std::fs::read_dir(&missing).unwrap_err().to_string();
    assert_eq!(
        error,
        format!("cannot list {missing}: {cause}"),
        "the cause is lost"
    );
}

// --- max_age_secs and cache = false --------------------------------------------------------

#[derive(Clone, Serialize, StorageAvailability)]
struct Ages {
    #[storage(validate = storage_availability_tests::check_probe, max_age_secs = 60)]
    short: Probe,
    #[storage(validate = storage_availability_tests::check_probe)]
    long: Probe,
    #[storage(validate = storage_availability_tests::check_probe, cache = false)]
    volatile: Probe,
}

#[test]
fn max_age_secs_and_cache_false_apply_per_section() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let config = Ages {
        short: Probe::new("ok"),
        long: Probe::new("ok"),
        volatile: Probe::new("ok"),
    };
    let open = || {
        AvailabilityCache::builder(config.clone())
            .config_path(dir.path().join("s.yaml"))
            .clock(clock.clone())
            .open()
            .unwrap()
    };
    let calls = || {
        (
            config.short.calls(),
            config.long.calls(),
            config.volatile.calls(),
        )
    };
    let cache = open();
    assert_eq!(calls(), (1, 1, 1));
    // In the same process, a `cache = false` answer is reused like any other.
    assert!(cache.refresh().unwrap().validated.is_empty());
    // The next start validates it again, and only it.
    let cache = open();
    assert_eq!(calls(), (1, 1, 2));
    assert_eq!(cache.status(AgesKind::Volatile).source, Source::Validated);
    assert_eq!(cache.status(AgesKind::Long).source, Source::Cache);
    // A minute later the short-lived answer has expired; the default 24 h has not.
    clock.advance(Duration::from_secs(61));
    let cache = open();
    assert_eq!(calls(), (2, 1, 3));
    assert_eq!(cache.status(AgesKind::Short).source, Source::Validated);
}
