//! Driver parity: the blocking driver (`open`, `refresh`) and the tokio driver (`open_async`,
//! `refresh_async`) take the same steps in the same order. A recording `CacheStore` around a
//! `FileStore` logs every call; for each starting state (cold, warm, corrupt, one section
//! changed, the lock timing out) both drivers must leave the same trace and the same file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use storage_availability::schema::CacheFile;
use storage_availability::{
    AvailabilityCache, CacheStore, FileStore, LockOutcome, ManualClock, StoreRead,
};
use storage_availability_tests::{ProbeConfig, ProbeConfigKind as K};

#[derive(Debug, Clone)]
struct Recording {
    inner: Arc<FileStore>,
    trace: Arc<Mutex<Vec<String>>>,
    lock_times_out: bool,
}

impl Recording {
    fn new(path: &Path, lock_times_out: bool) -> Self {
        Recording {
            inner: Arc::new(FileStore::new(path)),
            trace: Arc::default(),
            lock_times_out,
        }
    }
    fn log(&self, call: String) {
        self.trace.lock().unwrap().push(call);
    }
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.trace.lock().unwrap())
    }
}

impl CacheStore for Recording {
    fn location(&self) -> Option<&Path> {
        self.inner.location()
    }
    fn load(&self, max_bytes: u64) -> StoreRead {
        let loaded = self.inner.load(max_bytes);
        let what = match &loaded {
            StoreRead::Missing => "missing",
            StoreRead::File(_) => "file",
            StoreRead::Corrupt(_) => "corrupt",
            StoreRead::Unusable(_) => "unusable",
            StoreRead::NotRegular(_) => "not regular",
            StoreRead::Untrusted(_) => "untrusted",
            _ => "other",
        };
        self.log(format!("load: {what}"));
        loaded
    }
    fn lock(&self, timeout: Duration) -> LockOutcome {
        if self.lock_times_out {
            self.log("lock: timed out".into());
            return LockOutcome::TimedOut;
        }
        let outcome = self.inner.lock(timeout);
        let what = match &outcome {
            LockOutcome::Locked(_) => "locked",
            LockOutcome::TimedOut => "timed out",
            _ => "unavailable",
        };
        self.log(format!("lock: {what}"));
        outcome
    }
    fn save(&self, file: &CacheFile) -> std::io::Result<()> {
        self.log(format!("save: {} sections", file.sections.len()));
        self.inner.save(file)
    }
    fn quarantine(&self, now: SystemTime) -> std::io::Result<Option<PathBuf>> {
        self.log("quarantine".into());
        self.inner.quarantine(now)
    }
    fn sweep(&self) -> usize {
        self.log("sweep".into());
        self.inner.sweep()
    }
    fn remove(&self) -> std::io::Result<()> {
        self.log("remove".into());
        self.inner.remove()
    }
}

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
}

/// The file as both drivers must leave it: validator durations are the only field that
/// may differ (they are measured).
fn file_at(path: &Path) -> Option<CacheFile> {
    let bytes = std::fs::read(path).ok()?;
    let mut file: CacheFile = serde_json::from_slice(&bytes).ok()?;
    for record in file.sections.values_mut() {
        record.duration_ms = 0.0;
    }
    Some(file)
}

/// What one driver did from `initial` (the file's bytes, if any): the trace of `open`, then
/// of a `refresh` after invalidating one section, and the file after each.
type Run = (
    Vec<String>,
    Option<CacheFile>,
    Vec<String>,
    Option<CacheFile>,
);

fn run_blocking(config: ProbeConfig, initial: Option<&[u8]>, lock_times_out: bool) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.availability.json");
    if let Some(bytes) = initial {
        std::fs::write(&path, bytes).unwrap();
    }
    let store = Recording::new(&path, lock_times_out);
    let cache = AvailabilityCache::builder(config)
        .store(store.clone())
        .clock(clock())
        .open()
        .unwrap();
    let (open_trace, open_file) = (store.take(), file_at(&path));
    cache.invalidate(K::Kv);
    cache.refresh().unwrap();
    (open_trace, open_file, store.take(), file_at(&path))
}

fn run_async(config: ProbeConfig, initial: Option<&[u8]>, lock_times_out: bool) -> Run {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.availability.json");
        if let Some(bytes) = initial {
            std::fs::write(&path, bytes).unwrap();
        }
        let store = Recording::new(&path, lock_times_out);
        let cache = AvailabilityCache::builder(config)
            .store(store.clone())
            .clock(clock())
            .open_async()
            .await
            .unwrap();
        let (open_trace, open_file) = (store.take(), file_at(&path));
        cache.invalidate(K::Kv);
        cache.refresh_async().await.unwrap();
        (open_trace, open_file, store.take(), file_at(&path))
    })
}

/// A file saved by a cold start of `config`.
fn saved_by(config: ProbeConfig) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.availability.json");
    AvailabilityCache::builder(config)
        .cache_path(&path)
        .clock(clock())
        .open()
        .unwrap();
    std::fs::read(&path).unwrap()
}

fn assert_parity(case: &str, initial: Option<&[u8]>, config: &ProbeConfig, lock_times_out: bool) {
    let blocking = run_blocking(config.clone(), initial, lock_times_out);
    let tokio = run_async(config.clone(), initial, lock_times_out);
    assert_eq!(blocking.0, tokio.0, "{case}: the traces of open differ");
    assert_eq!(blocking.1, tokio.1, "{case}: the files after open differ");
    assert_eq!(blocking.2, tokio.2, "{case}: the traces of refresh differ");
    assert_eq!(
        blocking.3, tokio.3,
        "{case}: the files after refresh differ"
    );
}

#[test]
fn cold_start() {
    let config = ProbeConfig::ok();
    assert_parity("cold", None, &config, false);
    let trace = run_blocking(config, None, false).0;
    assert_eq!(
        trace,
        [
            "load: missing",
            "lock: locked",
            "load: missing",
            "sweep",
            "save: 3 sections"
        ]
    );
}

#[test]
fn warm_start() {
    let config = ProbeConfig::ok();
    let file = saved_by(config.clone());
    assert_parity("warm", Some(&file), &config, false);
    assert_eq!(run_blocking(config, Some(&file), false).0, ["load: file"]);
}

#[test]
fn corrupt_file() {
    let config = ProbeConfig::ok();
    assert_parity("corrupt", Some(b"{ not json"), &config, false);
    assert_eq!(
        run_blocking(config, Some(b"{ not json"), false).0,
        [
            "load: corrupt",
            "lock: locked",
            "load: corrupt",
            "sweep",
            "quarantine",
            "save: 3 sections"
        ]
    );
}

#[test]
fn one_section_changed() {
    let config = ProbeConfig::ok();
    let file = saved_by(config.clone());
    let changed = ProbeConfig {
        csv: config.csv.with_value("elsewhere"),
        ..config.clone()
    };
    assert_parity("one changed", Some(&file), &changed, false);
}

#[test]
fn lock_timeout() {
    let config = ProbeConfig::ok();
    assert_parity("lock timeout, cold", None, &config, true);
    assert_parity("lock timeout, corrupt", Some(b"{ not json"), &config, true);
    assert_eq!(
        run_blocking(config, None, true).0,
        ["load: missing", "lock: timed out"]
    );
}
