// The body of the `faults` suite, run through both drivers: `tests/tests/faults.rs` (blocking)
// and `tests/tests/faults_async.rs` (tokio) each define `driver` and include this file.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use storage_availability_tests::temp_files;

use storage_availability::schema::CacheFile;
use storage_availability::{
    AvailabilityCache, FaultInjector, FileStore, SaveStep, Source, StorageAvailability,
};
use storage_availability_tests::{LoggedConfig, LoggedConfigKind as K};

/// Fails the chosen step while armed, and records every step reached.
#[derive(Debug, Default)]
struct Faults {
    fail_at: Mutex<Option<SaveStep>>,
    write_after: Mutex<Option<usize>>,
    reached: Mutex<Vec<SaveStep>>,
}

impl Faults {
    fn arm(&self, step: SaveStep, write_after: Option<usize>) {
        *self.fail_at.lock().unwrap() = Some(step);
        *self.write_after.lock().unwrap() = write_after;
        self.reached.lock().unwrap().clear();
    }

    fn disarm(&self) {
        *self.fail_at.lock().unwrap() = None;
        *self.write_after.lock().unwrap() = None;
    }

    /// How many times `step` was reached since the last `arm`.
    fn reached(&self, step: SaveStep) -> usize {
        self.reached
            .lock()
            .unwrap()
            .iter()
            .filter(|s| **s == step)
            .count()
    }
}

impl FaultInjector for Faults {
    fn before(&self, step: SaveStep) -> io::Result<()> {
        self.reached.lock().unwrap().push(step);
        if *self.fail_at.lock().unwrap() == Some(step) && self.write_after.lock().unwrap().is_none()
        {
            return Err(io::Error::other(format!("injected failure at {step:?}")));
        }
        Ok(())
    }

    fn fail_write_after(&self) -> Option<usize> {
        *self.write_after.lock().unwrap()
    }
}

fn open_with(
    config: &LoggedConfig,
    path: &Path,
    faults: &Arc<Faults>,
) -> AvailabilityCache<LoggedConfig> {
    let store = FileStore::new(path).with_faults(Arc::clone(faults) as Arc<dyn FaultInjector>);
    driver::open(AvailabilityCache::builder(config.clone()).store(store)).unwrap()
}

fn read_file(path: &Path) -> CacheFile {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The key_value record in the file is the one for `config`.
fn file_has(path: &Path, config: &LoggedConfig) -> bool {
    read_file(path).sections["key_value"].section_hash.as_str()
        == config.section_key(K::Kv).as_str()
}

/// Saves a first file, then changes `kv` with `step` failing: the first file must survive.
fn failing_save_keeps_the_previous_file(step: SaveStep, write_after: Option<usize>) {
    let context = format!("{step:?}, write_after {write_after:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    let faults = Arc::new(Faults::default());
    let config = LoggedConfig::new("ok", "ok", Some("ok"), None);
    open_with(&config, &path, &faults);
    let before = std::fs::read(&path).unwrap();

    faults.arm(step, write_after);
    let changed = LoggedConfig {
        kv: config.kv.with_value("fail:down"),
        ..config.clone()
    };
    let cache = open_with(&changed, &path, &faults);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "{context}: file changed"
    );
    assert_eq!(temp_files(dir.path()), Vec::<String>::new(), "{context}");
    let kv = cache.status(K::Kv);
    assert!(!kv.is_available(), "{context}");
    assert_eq!(kv.last_error.as_deref(), Some("down"), "{context}");
    assert_eq!(kv.source, Source::Validated);
    assert!(cache.is_available(K::Csv) && cache.is_available(K::Vector));
    assert_eq!(cache.status(K::Csv).source, Source::Cache, "{context}");
    let stats = cache.stats();
    assert_eq!((stats.saves, stats.save_failures), (0, 1), "{context}");
    // A failure that may be transient is retried twice, with a fresh temp file each time.
    assert_eq!(faults.reached(SaveStep::Create), 3, "{context}");

    faults.disarm();
    let report = driver::refresh(&cache).unwrap();
    assert!(report.validated.is_empty(), "{context}: {report:?}");
    assert!(
        report.saved,
        "{context}: the unsaved results were not saved"
    );
    assert!(file_has(&path, &changed), "{context}");
    assert_eq!(temp_files(dir.path()), Vec::<String>::new(), "{context}");
    assert_eq!((cache.stats().saves, cache.stats().save_failures), (1, 1));
    assert_eq!((config.kv.calls(), config.csv.calls()), (2, 1), "{context}");
}

#[test]
fn a_failed_create_keeps_the_previous_file() {
    failing_save_keeps_the_previous_file(SaveStep::Create, None);
}

#[test]
fn a_failed_write_keeps_the_previous_file() {
    failing_save_keeps_the_previous_file(SaveStep::Write, None);
}

#[test]
fn a_partial_write_keeps_the_previous_file() {
    // Nothing written, one byte, part of the file, and all of it before the failure.
    for n in [0, 1, 100, 1 << 20] {
        failing_save_keeps_the_previous_file(SaveStep::Write, Some(n));
    }
}

#[test]
fn a_failed_sync_keeps_the_previous_file() {
    failing_save_keeps_the_previous_file(SaveStep::Sync, None);
}

#[test]
fn a_failed_rename_keeps_the_previous_file() {
    failing_save_keeps_the_previous_file(SaveStep::Rename, None);
}

#[test]
fn a_failed_directory_sync_comes_after_the_rename() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    let faults = Arc::new(Faults::default());
    let config = LoggedConfig::new("ok", "ok", Some("ok"), None);
    open_with(&config, &path, &faults);

    faults.arm(SaveStep::SyncDir, None);
    let changed = LoggedConfig {
        kv: config.kv.with_value("fail:down"),
        ..config.clone()
    };
    let cache = open_with(&changed, &path, &faults);
    // The new file is in place and valid; the save counts as done (durability across a
    // power loss is weakened, which is logged).
    assert!(file_has(&path, &changed));
    assert_eq!(temp_files(dir.path()), Vec::<String>::new());
    assert_eq!(faults.reached(SaveStep::SyncDir), 1);
    let stats = cache.stats();
    assert_eq!((stats.saves, stats.save_failures), (1, 0));
    assert_eq!(
        cache.status(K::Kv).last_error.as_deref(),
        Some("down"),
        "in-memory answer"
    );
    faults.disarm();
    assert!(
        !driver::refresh(&cache).unwrap().saved,
        "nothing was left unsaved"
    );
}

#[cfg(unix)]
#[test]
fn an_unwritable_directory_keeps_results_in_memory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("read-only");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let restore = || {
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    if std::fs::write(locked.join("probe"), b"").is_ok() {
        restore();
        println!(
            "SKIPPED an_unwritable_directory_keeps_results_in_memory: this process writes into a mode-555 directory (running as root); \
             a_path_under_a_regular_file_keeps_results_in_memory_until_it_can_save covers an unwritable location"
        );
        return;
    }
    let faults = Arc::new(Faults::default());
    let config = LoggedConfig::new("ok", "ok", Some("ok"), None);
    let cache = open_with(&config, &locked.join("cache.json"), &faults);
    assert!(cache.statuses().iter().all(|(_, s)| s.is_available()));
    let stats = cache.stats();
    assert_eq!((stats.saves, stats.save_failures), (0, 1));
    // Permission denied will not go away in milliseconds: not retried within the save.
    assert_eq!(faults.reached(SaveStep::Create), 1);
    // ...but at the next refresh.
    driver::refresh(&cache).unwrap();
    assert_eq!(cache.stats().save_failures, 2);
    assert_eq!(config.total_calls(), 3);
    restore();
    assert_eq!(
        std::fs::read_dir(&locked).unwrap().count(),
        0,
        "files appeared"
    );
    // Writable again: the next refresh saves.
    assert!(driver::refresh(&cache).unwrap().saved);
    read_file(&locked.join("cache.json"));
}

#[test]
fn a_path_under_a_regular_file_keeps_results_in_memory_until_it_can_save() {
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the cache's directory should be: no permission trick that root
    // would bypass.
    let blocker = dir.path().join("state");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let path: PathBuf = blocker.join("cache.json");
    let faults = Arc::new(Faults::default());
    let config = LoggedConfig::new("ok", "ok", Some("ok"), None);
    let cache = open_with(&config, &path, &faults);
    assert!(cache.statuses().iter().all(|(_, s)| s.is_available()));
    let stats = cache.stats();
    assert_eq!((stats.saves, stats.save_failures), (0, 1));
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a directory");
    let report = driver::refresh(&cache).unwrap();
    assert!(!report.saved && report.validated.is_empty());
    assert_eq!(cache.stats().save_failures, 2);

    // The location becomes usable: the next refresh saves what is in memory, validating
    // nothing.
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir(&blocker).unwrap();
    let report = driver::refresh(&cache).unwrap();
    assert!(report.saved && report.validated.is_empty(), "{report:?}");
    assert_eq!(config.total_calls(), 3);
    assert_eq!(read_file(&path).sections.len(), 3);
}
