//! End-to-end behaviour of `AvailabilityCache` (issue 4): cold and warm starts, incremental
//! revalidation, expiry and backoff on an injected clock, timeouts and panics, recovery from
//! bad files, `clear` and `invalidate`. Every test counts validator calls exactly.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use storage_availability::schema::CacheFile;
use storage_availability::{AvailabilityCache, Error, ManualClock, Source, StorageAvailability};
use storage_availability_tests::{Probe, ProbeConfig, ProbeConfigKind as K};

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
}

fn open_at(config: ProbeConfig, dir: &Path, clock: &ManualClock) -> AvailabilityCache<ProbeConfig> {
    AvailabilityCache::builder(config)
        .config_path(dir.join("storage.yaml"))
        .retry_failed_after(Duration::from_secs(10))
        .max_age(Some(Duration::from_secs(3600)))
        .clock(clock.clone())
        .open()
        .unwrap()
}

fn read_file(path: &Path) -> CacheFile {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn cold_start_validates_every_configured_section_once_and_saves() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig::ok();
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("storage.yaml")).unwrap();
    assert_eq!((config.csv.calls(), config.kv.calls()), (1, 1));
    assert_eq!(config.vector.as_ref().unwrap().calls(), 1);
    for (kind, status) in cache.statuses() {
        assert!(status.is_available(), "{kind}: {status:?}");
        assert_eq!(status.source, Source::Validated);
    }
    let stats = cache.stats();
    assert_eq!(
        (stats.misses, stats.hits, stats.validations, stats.saves),
        (3, 0, 3, 1)
    );

    let path = cache.path().unwrap().to_owned();
    assert_eq!(path.parent(), Some(dir.path()));
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("storage.") && name.ends_with(".availability.json"),
        "{name}"
    );
    let file = read_file(&path);
    assert_eq!(file.schema_version, "1.0");
    let names: Vec<&str> = file.sections.keys().map(String::as_str).collect();
    assert_eq!(names, ["csv", "key_value", "vector"]);
    for kind in K::ALL {
        assert_eq!(
            file.sections[kind.name()].section_hash.as_str(),
            cache.config().section_key(*kind).as_str()
        );
    }
    assert!(file.metadata.config_type.ends_with("ProbeConfig"));
    assert_eq!(
        file.metadata.config_path.as_deref(),
        Some(dir.path().join("storage.yaml").to_str().unwrap())
    );
}

#[test]
fn warm_start_validates_nothing_and_reads_the_same_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig {
        kv: Probe::new("fail:connection refused"),
        csv: Probe::new("warn:almost full"),
        ..ProbeConfig::ok()
    };
    let cold = AvailabilityCache::open(config.clone(), dir.path().join("storage.yaml")).unwrap();
    let warm = AvailabilityCache::open(config.clone(), dir.path().join("storage.yaml")).unwrap();
    assert_eq!(config.total_calls(), 3, "the warm start called a validator");
    for ((kind, a), (_, b)) in cold.statuses().into_iter().zip(warm.statuses()) {
        assert_eq!(b.source, Source::Cache, "{kind}");
        assert_eq!(
            (a.enabled, a.validation_passed),
            (b.enabled, b.validation_passed)
        );
        assert_eq!(a.last_error, b.last_error);
        assert_eq!(a.warnings, b.warnings);
        assert_eq!(a.checked_at, b.checked_at);
    }
    assert_eq!(
        warm.status(K::Kv).last_error.as_deref(),
        Some("connection refused")
    );
    assert_eq!(warm.status(K::Csv).warnings, ["almost full"]);
    let stats = warm.stats();
    assert_eq!((stats.hits, stats.misses, stats.saves), (3, 0, 0));
}

#[test]
fn changing_one_section_revalidates_exactly_that_one_and_keeps_the_others_records() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = ProbeConfig::ok();
    let cache = open_at(config.clone(), dir.path(), &clock);
    let path = cache.path().unwrap().to_owned();
    let before = read_file(&path);

    clock.advance(Duration::from_secs(5));
    let changed = ProbeConfig {
        csv: config.csv.with_value("ok, but another directory"),
        ..config.clone()
    };
    let cache = open_at(changed, dir.path(), &clock);
    assert_eq!(config.csv.calls(), 2);
    assert_eq!(config.kv.calls(), 1);
    assert_eq!(config.vector.as_ref().unwrap().calls(), 1);
    assert_eq!(cache.status(K::Csv).source, Source::Validated);
    assert_eq!(cache.status(K::Kv).source, Source::Cache);

    let after = read_file(&path);
    assert_eq!(after.sections["key_value"], before.sections["key_value"]);
    assert_eq!(after.sections["vector"], before.sections["vector"]);
    assert_ne!(
        after.sections["csv"].section_hash,
        before.sections["csv"].section_hash
    );
}

#[test]
fn a_save_keeps_the_record_of_an_unconfigured_section_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = ProbeConfig {
        vector: None,
        ..ProbeConfig::ok()
    };
    let cache = open_at(config.clone(), dir.path(), &clock);
    let path = cache.path().unwrap().to_owned();
    let before = read_file(&path);

    clock.advance(Duration::from_secs(5));
    let changed = ProbeConfig {
        csv: config.csv.with_value("ok, elsewhere"),
        ..config.clone()
    };
    open_at(changed, dir.path(), &clock);
    let after = read_file(&path);
    assert_ne!(after.sections["csv"], before.sections["csv"]);
    assert_eq!(after.sections["vector"], before.sections["vector"]);
    assert_eq!(after.sections["key_value"], before.sections["key_value"]);
}

#[test]
fn fields_outside_sections_do_not_invalidate() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig::ok();
    AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    let relabelled = ProbeConfig {
        label: "another label".into(),
        ..config.clone()
    };
    AvailabilityCache::open(relabelled, dir.path().join("s.yaml")).unwrap();
    assert_eq!(config.total_calls(), 3);
}

#[test]
fn unconfigured_sections_are_disabled_and_never_validated() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig {
        vector: None,
        ..ProbeConfig::ok()
    };
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    let vector = cache.status(K::Vector);
    assert_eq!(vector.source, Source::Unconfigured);
    assert!(!vector.enabled && !vector.validation_passed && vector.last_error.is_none());
    assert!(!cache.is_available(K::Vector));
    assert_eq!(config.total_calls(), 2);

    // Configuring it later validates just it.
    let probe = Probe::new("ok");
    let configured = ProbeConfig {
        vector: Some(probe.clone()),
        ..config.clone()
    };
    let cache = AvailabilityCache::open(configured, dir.path().join("s.yaml")).unwrap();
    assert_eq!((config.total_calls(), probe.calls()), (2, 1));
    assert!(cache.is_available(K::Vector));
}

#[test]
fn positive_results_expire_after_max_age() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = ProbeConfig::ok();
    open_at(config.clone(), dir.path(), &clock);
    clock.advance(Duration::from_secs(3599));
    open_at(config.clone(), dir.path(), &clock);
    assert_eq!(config.total_calls(), 3, "revalidated before max_age");
    clock.advance(Duration::from_secs(1));
    let cache = open_at(config.clone(), dir.path(), &clock);
    assert_eq!(config.total_calls(), 6, "not revalidated at max_age");
    assert_eq!(cache.status(K::Csv).source, Source::Validated);
}

#[test]
fn max_age_none_never_expires() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = ProbeConfig::ok();
    let open = || {
        AvailabilityCache::builder(config.clone())
            .config_path(dir.path().join("s.yaml"))
            .max_age(None)
            .clock(clock.clone())
            .open()
            .unwrap()
    };
    open();
    clock.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    open();
    assert_eq!(config.total_calls(), 3);
}

#[test]
fn failures_back_off_doubling_and_the_count_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = ProbeConfig {
        kv: Probe::new("fail:refused"),
        ..ProbeConfig::ok()
    };
    let kv = || config.kv.calls();
    let failures =
        |c: &AvailabilityCache<ProbeConfig>| c.record(K::Kv).unwrap().consecutive_failures;

    let c = open_at(config.clone(), dir.path(), &clock);
    assert_eq!((kv(), failures(&c)), (1, 1));
    // 1st failure: retry after 10 s.
    clock.advance(Duration::from_secs(9));
    open_at(config.clone(), dir.path(), &clock);
    assert_eq!(kv(), 1);
    clock.advance(Duration::from_secs(1));
    let c = open_at(config.clone(), dir.path(), &clock);
    assert_eq!((kv(), failures(&c)), (2, 2));
    // 2nd failure: 20 s.
    clock.advance(Duration::from_secs(19));
    open_at(config.clone(), dir.path(), &clock);
    assert_eq!(kv(), 2);
    clock.advance(Duration::from_secs(1));
    let c = open_at(config.clone(), dir.path(), &clock);
    assert_eq!((kv(), failures(&c)), (3, 3));
    // 3rd failure: 40 s; the count is in the file.
    let path = c.path().unwrap().to_owned();
    assert_eq!(
        read_file(&path).sections["key_value"].consecutive_failures,
        3
    );
    clock.advance(Duration::from_secs(39));
    open_at(config.clone(), dir.path(), &clock);
    assert_eq!(kv(), 3);
    // The other sections were never revalidated.
    assert_eq!(config.csv.calls(), 1);

    // A success resets the count.
    clock.advance(Duration::from_secs(1));
    let fixed = ProbeConfig {
        kv: config.kv.with_value("ok"),
        ..config.clone()
    };
    let c = open_at(fixed, dir.path(), &clock);
    assert_eq!((kv(), failures(&c)), (4, 0));
    assert!(c.is_available(K::Kv));
}

#[test]
fn backoff_is_capped_at_one_hour() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = ProbeConfig {
        kv: Probe::new("fail:down"),
        ..ProbeConfig::ok()
    };
    let open = || {
        AvailabilityCache::builder(config.clone())
            .config_path(dir.path().join("s.yaml"))
            .retry_failed_after(Duration::from_secs(1000))
            .clock(clock.clone())
            .open()
            .unwrap()
    };
    open(); // failure 1: 1000 s
    clock.advance(Duration::from_secs(1000));
    open(); // failure 2: 2000 s
    clock.advance(Duration::from_secs(2000));
    open(); // failure 3: 4000 s, capped at 3600 s
    assert_eq!(config.kv.calls(), 3);
    clock.advance(Duration::from_secs(3599));
    open();
    assert_eq!(config.kv.calls(), 3);
    clock.advance(Duration::from_secs(1));
    open();
    assert_eq!(config.kv.calls(), 4);
}

#[test]
fn timestamps_far_in_the_future_are_expired() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = ProbeConfig::ok();
    open_at(config.clone(), dir.path(), &clock);
    // A clock that went back 4 minutes: within tolerance, still fresh.
    let start = storage_availability::Clock::now(&clock);
    clock.set(start - Duration::from_secs(4 * 60));
    open_at(config.clone(), dir.path(), &clock);
    assert_eq!(config.total_calls(), 3);
    // Six minutes back: the records look written in the future, so they are stale.
    clock.set(start - Duration::from_secs(6 * 60));
    open_at(config.clone(), dir.path(), &clock);
    assert_eq!(config.total_calls(), 6);
}

#[test]
fn a_hung_validator_times_out_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig {
        kv: Probe::new("sleep:30000"), // kv has timeout_ms = 100
        ..ProbeConfig::ok()
    };
    let started = std::time::Instant::now();
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "open waited for the hung validator"
    );
    let kv = cache.status(K::Kv);
    assert!(!kv.is_available());
    assert_eq!(
        kv.last_error.as_deref(),
        Some("validation timed out after 100ms")
    );
    assert!(cache.is_available(K::Csv) && cache.is_available(K::Vector));
    assert_eq!(cache.stats().timeouts, 1);
}

#[test]
fn the_builder_timeout_applies_to_sections_without_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig {
        csv: Probe::new("sleep:30000"),
        ..ProbeConfig::ok()
    };
    let cache = AvailabilityCache::builder(config)
        .config_path(dir.path().join("s.yaml"))
        .validation_timeout(Duration::from_millis(50))
        .open()
        .unwrap();
    assert_eq!(
        cache.status(K::Csv).last_error.as_deref(),
        Some("validation timed out after 50ms")
    );
    assert!(cache.is_available(K::Kv));
}

#[test]
fn a_panicking_validator_fails_only_its_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig {
        csv: Probe::new("panic:disk on fire"),
        ..ProbeConfig::ok()
    };
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    let csv = cache.status(K::Csv);
    assert!(!csv.is_available());
    assert_eq!(
        csv.last_error.as_deref(),
        Some("validator panicked: disk on fire")
    );
    assert!(cache.is_available(K::Kv) && cache.is_available(K::Vector));
    assert_eq!(cache.stats().panics, 1);
    assert_eq!(config.total_calls(), 3);
}

#[test]
fn validators_run_in_parallel_within_max_parallel() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RUNNING: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    fn check(_: &u32) -> storage_availability::Outcome {
        let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
        PEAK.fetch_max(now, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        storage_availability::Outcome::ok()
    }
    #[derive(serde::Serialize, storage_availability::StorageAvailability)]
    struct Four {
        #[storage(validate = check)]
        a: u32,
        #[storage(validate = check)]
        b: u32,
        #[storage(validate = check)]
        c: u32,
        #[storage(validate = check)]
        d: u32,
    }
    let four = || Four {
        a: 1,
        b: 2,
        c: 3,
        d: 4,
    };
    AvailabilityCache::builder(four())
        .persist(false)
        .open()
        .unwrap();
    assert_eq!(
        PEAK.swap(0, Ordering::SeqCst),
        4,
        "validators did not overlap"
    );
    AvailabilityCache::builder(four())
        .persist(false)
        .max_parallel(2)
        .open()
        .unwrap();
    assert_eq!(
        PEAK.load(Ordering::SeqCst),
        2,
        "max_parallel was not respected"
    );
}

#[test]
fn a_corrupt_file_is_quarantined_and_regenerated() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig::ok();
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    let path = cache.path().unwrap().to_owned();
    std::fs::write(&path, b"{\"schema_version\": \"1.0\", \"sections\": {").unwrap();

    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    assert_eq!(config.total_calls(), 6);
    assert!(cache.statuses().iter().all(|(_, s)| s.is_available()));
    assert_eq!(cache.stats().corrupt_recovered, 1);
    read_file(&path); // parses again
    let quarantined: Vec<String> = files_in(dir.path())
        .into_iter()
        .filter(|n| n.contains(".corrupt-"))
        .collect();
    assert_eq!(quarantined.len(), 1, "{quarantined:?}");
    assert_eq!(
        std::fs::read(dir.path().join(&quarantined[0])).unwrap(),
        b"{\"schema_version\": \"1.0\", \"sections\": {"
    );
}

#[test]
fn another_major_version_is_replaced_and_a_newer_minor_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig::ok();
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    let path = cache.path().unwrap().to_owned();
    let text = std::fs::read_to_string(&path).unwrap();

    // A newer minor version with fields we do not know: read, nothing revalidated.
    let mut newer: serde_json::Value = serde_json::from_str(&text).unwrap();
    newer["schema_version"] = "1.7".into();
    newer["format_capabilities"] = serde_json::json!(["compression"]);
    newer["sections"]["csv"]["performance_metrics"] = serde_json::json!({"scan_ms": 1.5});
    std::fs::write(&path, serde_json::to_vec(&newer).unwrap()).unwrap();
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    assert_eq!(config.total_calls(), 3);
    assert_eq!(cache.status(K::Csv).source, Source::Cache);

    // Another major version: not understood, replaced (not quarantined).
    let mut other: serde_json::Value = serde_json::from_str(&text).unwrap();
    other["schema_version"] = "2.0".into();
    std::fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    assert_eq!(config.total_calls(), 6);
    assert_eq!(cache.stats().incompatible_replaced, 1);
    assert_eq!(read_file(&path).schema_version, "1.0");
    assert!(!files_in(dir.path()).iter().any(|n| n.contains(".corrupt-")));
}

#[test]
fn an_unwritable_location_keeps_results_in_memory_and_retries_the_save() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the cache's directory should be: no permission trick that root
    // would bypass.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let config = ProbeConfig::ok();
    let cache = AvailabilityCache::builder(config.clone())
        .cache_path(blocker.join("cache.json"))
        .open()
        .unwrap();
    assert!(cache.statuses().iter().all(|(_, s)| s.is_available()));
    let stats = cache.stats();
    assert_eq!((stats.saves, stats.save_failures), (0, 1));
    // Nothing stale, but the unsaved results are saved (and fail) again on refresh.
    let report = cache.refresh().unwrap();
    assert!(report.validated.is_empty() && !report.saved);
    assert_eq!(cache.stats().save_failures, 2);
    assert_eq!(config.total_calls(), 3);
    assert_eq!(files_in(dir.path()), ["not-a-dir"]);
}

#[test]
fn invalidate_revalidates_that_section_at_the_next_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig::ok();
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    let report = cache.refresh().unwrap();
    assert!(report.validated.is_empty());
    assert_eq!(report.reused, ["csv", "vector", "key_value"]);
    assert_eq!(config.total_calls(), 3);

    cache.invalidate(K::Kv);
    assert!(
        cache.is_available(K::Kv),
        "invalidate keeps the answer until refresh"
    );
    let report = cache.refresh().unwrap();
    assert_eq!(report.validated, ["key_value"]);
    assert!(report.saved);
    assert_eq!((config.kv.calls(), config.csv.calls()), (2, 1));
    // Once only.
    cache.refresh().unwrap();
    assert_eq!(config.kv.calls(), 2);
}

#[test]
fn clear_deletes_the_file_and_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig {
        vector: None,
        ..ProbeConfig::ok()
    };
    let cache = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    let path = cache.path().unwrap().to_owned();
    assert!(path.exists());
    cache.clear().unwrap();
    assert!(!path.exists());
    let csv = cache.status(K::Csv);
    assert_eq!(csv.source, Source::Pending);
    assert!(!csv.is_available());
    assert_eq!(cache.status(K::Vector).source, Source::Unconfigured);
    cache.clear().unwrap(); // twice is fine

    let report = cache.refresh().unwrap();
    assert_eq!(report.validated, ["csv", "key_value"]);
    assert!(cache.is_available(K::Csv));
    assert!(path.exists());
    assert_eq!(config.total_calls(), 4);
}

#[test]
fn in_memory_caches_touch_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig::ok();
    let cache = AvailabilityCache::builder(config.clone())
        .config_path(dir.path().join("s.yaml"))
        .persist(false)
        .open()
        .unwrap();
    assert_eq!(cache.path(), None);
    assert!(cache.is_available(K::Csv));
    assert_eq!(files_in(dir.path()), Vec::<String>::new());
    cache.refresh().unwrap();
    assert_eq!(config.total_calls(), 3);
}

#[test]
fn cache_path_overrides_the_derived_path() {
    let dir = tempfile::tempdir().unwrap();
    let custom: PathBuf = dir.path().join("custom.json");
    let cache = AvailabilityCache::builder(ProbeConfig::ok())
        .config_path(dir.path().join("s.yaml"))
        .cache_path(&custom)
        .open()
        .unwrap();
    assert_eq!(cache.path(), Some(custom.as_path()));
    assert_eq!(files_in(dir.path()), ["custom.json", "custom.json.lock"]);
}

#[cfg(unix)]
#[test]
fn cache_and_lock_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let cache = AvailabilityCache::open(ProbeConfig::ok(), dir.path().join("s.yaml")).unwrap();
    let path = cache.path().unwrap();
    for file in [
        path.to_owned(),
        PathBuf::from(format!("{}.lock", path.display())),
    ] {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}

#[test]
fn invalid_builder_options_are_typed_errors() {
    let bad = [
        AvailabilityCache::builder(ProbeConfig::ok())
            .max_parallel(0)
            .open(),
        AvailabilityCache::builder(ProbeConfig::ok())
            .validation_timeout(Duration::ZERO)
            .open(),
        AvailabilityCache::builder(ProbeConfig::ok())
            .max_file_bytes(0)
            .open(),
    ];
    for result in bad {
        match result {
            Err(Error::InvalidOption { option, reason }) => {
                assert!(!option.is_empty() && !reason.is_empty())
            }
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }
}

#[test]
fn real_cache_files_match_the_config_schema_and_the_checked_in_schema() {
    let dir = tempfile::tempdir().unwrap();
    let config = ProbeConfig {
        kv: Probe::new("fail:refused"),
        csv: Probe::new("warn:slow disk"),
        vector: None,
        ..ProbeConfig::ok()
    };
    let cache = AvailabilityCache::open(config, dir.path().join("s.yaml")).unwrap();
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache.path().unwrap()).unwrap()).unwrap();

    let specialised =
        serde_json::to_value(AvailabilityCache::<ProbeConfig>::json_schema()).unwrap();
    let names: Vec<&String> = specialised["properties"]["sections"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(names, ["csv", "key_value", "vector"]);
    let validator = jsonschema::validator_for(&specialised).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&file)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");

    let checked_in: serde_json::Value =
        serde_json::from_str(include_str!("../../schema/availability-cache.schema.json")).unwrap();
    assert!(
        jsonschema::validator_for(&checked_in)
            .unwrap()
            .is_valid(&file)
    );

    // A section this config does not have is rejected by its schema only.
    let mut other = file.clone();
    other["sections"]["json"] = other["sections"]["csv"].clone();
    assert!(!validator.is_valid(&other));
    assert!(
        jsonschema::validator_for(&checked_in)
            .unwrap()
            .is_valid(&other)
    );
}

#[test]
fn the_cache_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<AvailabilityCache<ProbeConfig>>();
}

#[test]
fn refresh_if_stale_touches_nothing_while_fresh_and_revalidates_what_expired() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let config = ProbeConfig::ok();
    let cache = open_at(config.clone(), dir.path(), &clock);
    let path = cache.path().unwrap().to_owned();
    assert_eq!(config.csv.calls(), 1);

    // Fresh in memory: the file is not even read (a file that would make every section
    // stale is ignored), nothing is validated or written.
    std::fs::write(&path, b"{ not json").unwrap();
    let report = cache.refresh_if_stale().unwrap();
    assert!(report.validated.is_empty() && !report.saved, "{report:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"{ not json");
    assert_eq!(config.csv.calls(), 1);
    assert_eq!(cache.stats().corrupt_recovered, 0);

    // Past max_age: every configured section is revalidated and saved.
    clock.advance(Duration::from_secs(3600));
    let report = cache.refresh_if_stale().unwrap();
    assert_eq!(report.validated.len(), 3, "{report:?}");
    assert!(report.saved);
    assert_eq!(config.csv.calls(), 2);
    assert_eq!(cache.stats().corrupt_recovered, 1);

    // An invalidation is stale too, and only that section is validated.
    cache.invalidate(K::Csv);
    let report = cache.refresh_if_stale().unwrap();
    assert_eq!(report.validated, ["csv"]);
    assert_eq!((config.csv.calls(), config.kv.calls()), (3, 2));
}
