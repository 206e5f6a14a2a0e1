//! `open_async` and async validators (issue 8): mixed configs, concurrency, timeouts that
//! cancel, panics, lock waits that leave the runtime free, and cancellation safety.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use storage_availability_tests::temp_files;

use serde::Serialize;
use storage_availability::schema::CacheFile;
use storage_availability::{AvailabilityCache, FileStore, Outcome, Source, StorageAvailability};

/// A section whose async validator does what `value` says and counts its calls.
#[derive(Debug, Clone, Serialize)]
struct AsyncProbe {
    value: String,
    #[serde(skip)]
    calls: Arc<AtomicUsize>,
    #[serde(skip)]
    cancelled: Arc<AtomicBool>,
    /// Running and peak counts of "sleep:" validators sharing this gauge.
    #[serde(skip)]
    gauge: Arc<(AtomicUsize, AtomicUsize)>,
}

impl AsyncProbe {
    fn new(value: &str) -> Self {
        AsyncProbe {
            value: value.into(),
            calls: Arc::default(),
            cancelled: Arc::default(),
            gauge: Arc::default(),
        }
    }
    fn sharing(mut self, gauge: &Arc<(AtomicUsize, AtomicUsize)>) -> Self {
        self.gauge = Arc::clone(gauge);
        self
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Sets its flag when dropped before `disarm`: proves a timed-out future was cancelled.
struct CancelFlag(Arc<AtomicBool>, bool);
impl Drop for CancelFlag {
    fn drop(&mut self) {
        if self.1 {
            self.0.store(true, Ordering::SeqCst);
        }
    }
}

async fn check_async(probe: &AsyncProbe) -> Outcome {
    probe.calls.fetch_add(1, Ordering::SeqCst);
    let mut flag = CancelFlag(Arc::clone(&probe.cancelled), true);
    let value = probe.value.as_str();
    let outcome = if let Some(ms) = value.strip_prefix("sleep:") {
        let (running, peak) = &*probe.gauge;
        peak.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
        running.fetch_sub(1, Ordering::SeqCst);
        Outcome::ok()
    } else if let Some(text) = value.strip_prefix("fail:") {
        Outcome::failed(text)
    } else if let Some(text) = value.strip_prefix("panic:") {
        panic!("{text}")
    } else {
        Outcome::ok()
    };
    flag.1 = false;
    outcome
}

fn check_blocking(probe: &AsyncProbe) -> Result<(), String> {
    probe.calls.fetch_add(1, Ordering::SeqCst);
    match probe.value.strip_prefix("fail:") {
        Some(text) => Err(text.to_owned()),
        None => Ok(()),
    }
}

#[derive(Debug, Clone, Serialize, StorageAvailability)]
struct Mixed {
    #[storage(validate = check_async, async)]
    vector: AsyncProbe,
    #[storage(validate = check_async, async, timeout_ms = 100)]
    kv: AsyncProbe,
    #[storage(validate = check_blocking)]
    csv: AsyncProbe,
    #[storage(validate = check_async, async)]
    json: Option<AsyncProbe>,
}

impl Mixed {
    fn ok() -> Self {
        Mixed {
            vector: AsyncProbe::new("ok"),
            kv: AsyncProbe::new("ok"),
            csv: AsyncProbe::new("ok"),
            json: None,
        }
    }
    fn calls(&self) -> usize {
        self.vector.calls() + self.kv.calls() + self.csv.calls()
    }
}

#[tokio::test]
async fn mixed_configs_validate_cold_and_read_warm() {
    let dir = tempfile::tempdir().unwrap();
    let config = Mixed {
        csv: AsyncProbe::new("fail:no directory"),
        ..Mixed::ok()
    };
    let cache = AvailabilityCache::open_async(config.clone(), dir.path().join("s.yaml"))
        .await
        .unwrap();
    assert_eq!(config.calls(), 3);
    assert!(cache.is_available(MixedKind::Vector) && cache.is_available(MixedKind::Kv));
    assert_eq!(
        cache.status(MixedKind::Csv).last_error.as_deref(),
        Some("no directory")
    );
    assert_eq!(cache.status(MixedKind::Json).source, Source::Unconfigured);
    assert_eq!(cache.stats().saves, 1);

    let warm = AvailabilityCache::open_async(config.clone(), dir.path().join("s.yaml"))
        .await
        .unwrap();
    assert_eq!(config.calls(), 3);
    assert_eq!(warm.status(MixedKind::Vector).source, Source::Cache);
    let report = warm.refresh_async().await.unwrap();
    assert!(report.validated.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_validators_run_concurrently_and_timeouts_cancel_them() {
    let dir = tempfile::tempdir().unwrap();
    let gauge = Arc::default();
    let config = Mixed {
        vector: AsyncProbe::new("sleep:200").sharing(&gauge),
        kv: AsyncProbe::new("sleep:60000").sharing(&gauge), // its timeout is 100 ms
        json: Some(AsyncProbe::new("sleep:200").sharing(&gauge)),
        ..Mixed::ok()
    };
    let cache = AvailabilityCache::open_async(config.clone(), dir.path().join("s.yaml"))
        .await
        .unwrap();
    assert_eq!(
        gauge.1.load(Ordering::SeqCst),
        3,
        "the async validators did not overlap"
    );
    let kv = cache.status(MixedKind::Kv);
    assert_eq!(
        kv.last_error.as_deref(),
        Some("validation timed out after 100ms")
    );
    assert!(
        config.kv.cancelled.load(Ordering::SeqCst),
        "the timed-out future still runs"
    );
    assert!(cache.is_available(MixedKind::Vector) && cache.is_available(MixedKind::Json));
    assert_eq!(cache.stats().timeouts, 1);
}

#[tokio::test]
async fn an_async_panic_fails_only_its_section() {
    let dir = tempfile::tempdir().unwrap();
    let config = Mixed {
        vector: AsyncProbe::new("panic:index out of range"),
        ..Mixed::ok()
    };
    let cache = AvailabilityCache::open_async(config, dir.path().join("s.yaml"))
        .await
        .unwrap();
    assert_eq!(
        cache.status(MixedKind::Vector).last_error.as_deref(),
        Some("validator panicked: index out of range")
    );
    assert!(cache.is_available(MixedKind::Kv) && cache.is_available(MixedKind::Csv));
    assert_eq!(cache.stats().panics, 1);
}

#[tokio::test]
async fn blocking_configs_open_async_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = storage_availability_tests::ProbeConfig::ok();
    let cache = AvailabilityCache::builder(config.clone())
        .config_path(dir.path().join("s.yaml"))
        .open_async()
        .await
        .unwrap();
    assert_eq!(config.total_calls(), 3);
    assert!(cache.statuses().iter().all(|(_, s)| s.is_available()));
    // And the file is the one the blocking API reads.
    let blocking = AvailabilityCache::open(config.clone(), dir.path().join("s.yaml")).unwrap();
    assert_eq!(config.total_calls(), 3);
    assert_eq!(
        blocking
            .status(storage_availability_tests::ProbeConfigKind::Csv)
            .source,
        Source::Cache
    );
}

#[test]
fn waiting_for_the_lock_leaves_a_current_thread_runtime_free() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("s.yaml");
    let store = FileStore::for_config::<Mixed>(&config_path).unwrap();

    // Another process holds the cross-process lock for 300 ms.
    let mut holder = std::process::Command::new(env!("CARGO_BIN_EXE_availability-probe"))
        .arg("hold-lock")
        .arg(store.path())
        .arg("300")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ticks = Arc::new(AtomicUsize::new(0));
    let config = Mixed::ok();
    let cache = runtime.block_on(async {
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        let cache = AvailabilityCache::open_async(config.clone(), &config_path)
            .await
            .unwrap();
        ticker.abort();
        cache
    });
    assert!(holder.wait().unwrap().success());
    // The only runtime thread kept ticking while open_async waited about 300 ms.
    let ticks = ticks.load(Ordering::SeqCst);
    assert!(ticks >= 10, "the runtime was blocked: only {ticks} ticks");
    assert_eq!(cache.stats().saves, 1, "the lock was waited for, then used");
    assert_eq!(config.calls(), 3);
}

#[test]
fn dropping_open_async_at_any_point_leaves_no_debris() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut dropped_early, mut completed) = (0, 0);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("s.yaml");
    for round in 0..200 {
        // Alternate configs so that every round has something to validate and save.
        let config = Mixed {
            vector: AsyncProbe::new(&format!("sleep:{}", next() % 3)),
            csv: AsyncProbe::new(&format!("ok {round}")),
            ..Mixed::ok()
        };
        let budget = Duration::from_micros(next() % 4000);
        let outcome = runtime.block_on(async {
            tokio::time::timeout(
                budget,
                AvailabilityCache::open_async(config.clone(), &config_path),
            )
            .await
        });
        match outcome {
            Ok(_) => completed += 1,
            Err(_) => dropped_early += 1,
        }
        // The next open must not time out on a lock left behind: at most it waits for a
        // save the dropped future had already handed to a blocking thread.
        let next_open = runtime
            .block_on(
                AvailabilityCache::builder(config)
                    .config_path(&config_path)
                    .lock_timeout(Duration::from_secs(5))
                    .open_async(),
            )
            .unwrap();
        assert_eq!(next_open.stats().lock_timeouts, 0, "round {round}");
        assert!(
            next_open
                .statuses()
                .iter()
                .all(|(k, s)| { s.is_available() || *k == MixedKind::Json })
        );
        let path = next_open.path().unwrap();
        let file: CacheFile = serde_json::from_slice(&std::fs::read(path).unwrap())
            .unwrap_or_else(|e| panic!("round {round}: invalid file: {e}"));
        assert_eq!(file.schema_version, "1.0");
        assert_eq!(
            temp_files(dir.path()),
            Vec::<String>::new(),
            "round {round}"
        );
    }
    println!("open_async dropped early {dropped_early} times, completed {completed} times");
    assert!(
        dropped_early >= 50,
        "too few drops to mean anything: {dropped_early}"
    );
}

#[test]
fn open_async_outside_a_tokio_runtime_is_a_typed_error() {
    use std::task::{Context, Poll, Waker};
    let dir = tempfile::tempdir().unwrap();
    let future = AvailabilityCache::open_async(Mixed::ok(), dir.path().join("s.yaml"));
    let mut future = std::pin::pin!(future);
    // Poll it once with no runtime around, as another executor would.
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(Err(storage_availability::Error::NoAsyncRuntime { operation })) => {
            assert_eq!(operation, "open_async")
        }
        other => panic!(
            "expected NoAsyncRuntime, got {:?}",
            other.map(|r| r.map(drop))
        ),
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "touched the disk"
    );
}

#[tokio::test]
async fn refresh_if_stale_touches_nothing_while_fresh_and_revalidates_what_expired() {
    use storage_availability::ManualClock;
    use storage_availability_tests::{ProbeConfig, ProbeConfigKind as K};
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1 << 30));
    let config = ProbeConfig::ok();
    let cache = AvailabilityCache::builder(config.clone())
        .config_path(dir.path().join("storage.yaml"))
        .max_age(Some(Duration::from_secs(3600)))
        .clock(clock.clone())
        .open_async()
        .await
        .unwrap();
    let path = cache.path().unwrap().to_owned();
    std::fs::write(&path, b"{ not json").unwrap();
    let report = cache.refresh_if_stale_async().await.unwrap();
    assert!(report.validated.is_empty() && !report.saved, "{report:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"{ not json");
    assert_eq!(config.csv.calls(), 1);

    clock.advance(Duration::from_secs(3600));
    let report = cache.refresh_if_stale_async().await.unwrap();
    assert_eq!(report.validated.len(), 3, "{report:?}");
    assert!(report.saved);
    assert_eq!(cache.stats().corrupt_recovered, 1);

    cache.invalidate(K::Csv);
    let report = cache.refresh_if_stale_async().await.unwrap();
    assert_eq!(report.validated, ["csv"]);
    assert_eq!((config.csv.calls(), config.kv.calls()), (3, 2));
}
