//! Feature `metrics`: what the cache records through the `metrics` facade, read back from a
//! real recorder (`metrics-util`'s `DebuggingRecorder`) after a cold open with one failing
//! section, a warm open, a corrupt file and a failing fleet store.

use std::collections::BTreeMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use storage_availability::{
    AvailabilityCache, Outcome, SharedError, SharedStore, StorageAvailability,
};

#[derive(serde::Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = check_csv)]
    csv: String,
    #[storage(validate = check_kv, name = "key_value")]
    kv: String,
    #[storage(validate = check_csv)]
    vector: Option<String>,
}

fn check_csv(_: &String) -> Outcome {
    Outcome::ok()
}

fn check_kv(addr: &String) -> Outcome {
    Outcome::failed(format!("cannot reach {addr}"))
}

fn config() -> Config {
    Config {
        csv: "data".into(),
        kv: "127.0.0.1:1".into(),
        vector: None,
    }
}

/// Every metric, as `name{label=value,...}` -> its value (a histogram: its sample count).
fn read(snapshotter: &Snapshotter) -> BTreeMap<String, f64> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = format!("{}{{{}}}", key.name(), labels.join(","));
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.0,
                DebugValue::Histogram(samples) => samples.len() as f64,
            };
            (name, value)
        })
        .collect()
}

#[test]
fn cold_then_warm_open_report_gauges_histograms_and_counters() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("storage.yaml");

    metrics::with_local_recorder(&recorder, || {
        let cache = AvailabilityCache::open(config(), &config_path).unwrap();
        assert!(!cache.is_available(ConfigKind::Kv));
    });
    let cold = read(&snapshotter);
    let expected_cold = [
        ("storage_availability_section_available{section=csv}", 1.0),
        (
            "storage_availability_section_available{section=key_value}",
            0.0,
        ),
        // Unconfigured: published as unavailable, never validated.
        (
            "storage_availability_section_available{section=vector}",
            0.0,
        ),
        ("storage_availability_misses_total{section=csv}", 1.0),
        ("storage_availability_misses_total{section=key_value}", 1.0),
        (
            "storage_availability_validation_failures_total{section=key_value}",
            1.0,
        ),
        (
            "storage_availability_validation_duration_seconds{section=csv,outcome=passed}",
            1.0,
        ),
        (
            "storage_availability_validation_duration_seconds{section=key_value,outcome=failed}",
            1.0,
        ),
    ];
    for (name, value) in expected_cold {
        assert_eq!(cold.get(name), Some(&value), "{name} in {cold:#?}");
    }
    assert!(
        !cold.keys().any(|k| k.contains("hits_total")),
        "no hits on a cold open: {cold:#?}"
    );
    assert!(!cold.contains_key("storage_availability_misses_total{section=vector}"));

    // Warm: every answer from the file (the failure too, within its retry backoff).
    metrics::with_local_recorder(&recorder, || {
        let cache = AvailabilityCache::open(config(), &config_path).unwrap();
        assert_eq!(cache.stats().hits, 2);
    });
    let warm = read(&snapshotter);
    for (name, value) in [
        ("storage_availability_hits_total{section=csv}", 1.0),
        ("storage_availability_hits_total{section=key_value}", 1.0),
        // `DebuggingRecorder` snapshots report counters since the previous snapshot:
        // no new miss, no validation, no failure.
        ("storage_availability_misses_total{section=csv}", 0.0),
        ("storage_availability_misses_total{section=key_value}", 0.0),
        ("storage_availability_section_available{section=csv}", 1.0),
        (
            "storage_availability_section_available{section=key_value}",
            0.0,
        ),
        (
            "storage_availability_validation_failures_total{section=key_value}",
            0.0,
        ),
        (
            "storage_availability_validation_duration_seconds{section=csv,outcome=passed}",
            0.0,
        ),
    ] {
        assert_eq!(warm.get(name), Some(&value), "{name} in {warm:#?}");
    }
    assert!(!warm.contains_key("storage_availability_quarantines_total{}"));

    // A corrupt file: moved aside (a quarantine) and regenerated.
    let cache_file = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".availability.json"))
        .unwrap();
    std::fs::write(&cache_file, b"{ not json").unwrap();
    metrics::with_local_recorder(&recorder, || {
        let cache = AvailabilityCache::open(config(), &config_path).unwrap();
        assert_eq!(cache.stats().corrupt_recovered, 1);
    });
    let after = read(&snapshotter);
    assert_eq!(
        after.get("storage_availability_quarantines_total{}"),
        Some(&1.0),
        "{after:#?}"
    );
    assert_eq!(
        after.get("storage_availability_misses_total{section=csv}"),
        Some(&1.0)
    );
}

/// A fleet store that is always down.
#[derive(Debug)]
struct Down;

impl SharedStore for Down {
    fn get(&self, _: &str) -> Result<Option<Vec<u8>>, SharedError> {
        Err(SharedError::new("connection refused"))
    }
    fn set(&self, _: &str, _: &[u8], _: Duration) -> Result<(), SharedError> {
        Err(SharedError::new("connection refused"))
    }
    fn try_lease(&self, _: &str, _: &str, _: Duration) -> Result<bool, SharedError> {
        Err(SharedError::new("connection refused"))
    }
    fn release_lease(&self, _: &str, _: &str) -> Result<bool, SharedError> {
        Err(SharedError::new("connection refused"))
    }
}

#[derive(serde::Serialize, StorageAvailability)]
struct Shared {
    #[storage(validate = check_csv, scope = "shared")]
    search: String,
}

#[test]
fn a_failing_fleet_store_is_counted_once_per_refresh() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let cache = AvailabilityCache::builder(Shared {
            search: "https://search.internal".into(),
        })
        .persist(false)
        .shared_store(Down)
        .open()
        .unwrap();
        assert!(cache.is_available(SharedKind::Search));
        assert_eq!(cache.stats().shared_errors, 1);
    });
    let values = read(&snapshotter);
    assert_eq!(
        values.get("storage_availability_fleet_errors_total{}"),
        Some(&1.0),
        "{values:#?}"
    );
    assert_eq!(
        values.get("storage_availability_section_available{section=search}"),
        Some(&1.0)
    );
}
