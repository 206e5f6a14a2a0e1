//! Crash safety (issue 5): a process saving in a tight loop is killed with SIGKILL at random
//! moments, at least 200 times. After every kill the cache file is absent or a complete file
//! that the checked-in JSON Schema accepts, no file is ever quarantined (nothing torn was
//! seen), and a fresh open answers correctly. Temp files left by kills are swept by a later
//! save once older than ten minutes, and younger ones are left alone.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use storage_availability::schema::CacheFile;
use storage_availability::{AvailabilityCache, Source, StoreRead};
use storage_availability_tests::{LoggedConfig, LoggedConfigKind as K};

const PROBE: &str = env!("CARGO_BIN_EXE_availability-probe");
const KILLS: usize = 200;
const TIME_BOUND: Duration = Duration::from_secs(60);
/// The two configs `availability-probe save-loop` alternates (see its source).
const CONFIGS: [(&str, &str, Option<&str>); 2] = [
    ("ok", "ok", Some("ok")),
    ("fail:config b", "warn:config b", None),
];

/// The checked-in schema, the contract external tooling validates against.
fn schema() -> jsonschema::Validator {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../schema/availability-cache.schema.json")).unwrap();
    jsonschema::validator_for(&schema).unwrap()
}

/// xorshift64*: random delays without a dependency; the seed is printed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(".cache.json.tmp-")
        })
        .collect();
    found.sort();
    found
}

fn assert_nothing_quarantined(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".corrupt-"), "a torn file was seen: {name}");
    }
}

/// Opens the cache with config `which` and checks every answer.
fn open_and_check(cache: &Path, which: usize) -> AvailabilityCache<LoggedConfig> {
    let (csv, kv, vector) = CONFIGS[which];
    let opened = AvailabilityCache::builder(LoggedConfig::new(csv, kv, vector, None))
        .cache_path(cache)
        .open()
        .unwrap();
    let (csv, kv, vector) = (
        opened.status(K::Csv),
        opened.status(K::Kv),
        opened.status(K::Vector),
    );
    if which == 0 {
        assert!(csv.is_available() && kv.is_available() && vector.is_available());
        assert!(kv.warnings.is_empty() && csv.last_error.is_none());
    } else {
        assert!(!csv.is_available());
        assert_eq!(csv.last_error.as_deref(), Some("config b"));
        assert!(kv.is_available());
        assert_eq!(kv.warnings, ["config b"]);
        assert_eq!(vector.source, Source::Unconfigured);
    }
    opened
}

#[test]
fn sigkill_during_saves_never_leaves_a_torn_file() {
    let validator = schema();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache.json");
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = Rng(seed);
    let started = Instant::now();
    let (mut kills, mut files_checked) = (0usize, 0usize);

    while kills < KILLS && started.elapsed() < TIME_BOUND {
        let mut child = Command::new(PROBE)
            .arg("save-loop")
            .arg(&cache)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start availability-probe");
        std::thread::sleep(Duration::from_micros(1_000 + rng.below(15_000)));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        // Killed by our SIGKILL, not ended by a panic or an error of its own.
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "the save loop ended by itself: {status:?}"
        );
        kills += 1;

        match std::fs::read(&cache) {
            Ok(bytes) => {
                let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!(
                        "kill {kills}: torn cache file ({e}): {}",
                        String::from_utf8_lossy(&bytes)
                    )
                });
                if let Err(error) = validator.validate(&value) {
                    panic!("kill {kills}: the schema rejects the file: {error}\n{value:#}");
                }
                serde_json::from_value::<CacheFile>(value).unwrap();
                assert!(matches!(StoreRead::from_bytes(&bytes), StoreRead::File(_)));
                files_checked += 1;
            }
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "kill {kills}"),
        }
        assert_nothing_quarantined(dir.path());
        // A fresh process (here: a fresh cache) answers correctly from whatever was left.
        open_and_check(&cache, rng.below(2) as usize);
        assert_nothing_quarantined(dir.path());
    }
    let elapsed = started.elapsed();
    assert!(
        kills >= KILLS || elapsed >= TIME_BOUND,
        "only {kills} kills in {elapsed:?}"
    );
    assert!(files_checked > 0, "no kill ever left a file to check");

    // Leftover temp files: a save sweeps those older than ten minutes and keeps younger ones.
    let leftovers = temp_files(dir.path());
    let young = dir.path().join(".cache.json.tmp-0-young");
    std::fs::write(&young, b"a save in progress").unwrap();
    let planted = if leftovers.is_empty() {
        // No kill landed between create and rename this time: plant one to prove the sweep.
        let old = dir.path().join(".cache.json.tmp-0-planted");
        std::fs::write(&old, b"{").unwrap();
        vec![old]
    } else {
        Vec::new()
    };
    let eleven_minutes_ago = SystemTime::now() - Duration::from_secs(11 * 60);
    for path in leftovers.iter().chain(&planted) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(eleven_minutes_ago)
            .unwrap();
    }
    // Whatever the file holds now, one of the two configs has a stale section.
    let first = open_and_check(&cache, 0);
    let second = open_and_check(&cache, 1);
    let swept = first.stats().temp_files_swept + second.stats().temp_files_swept;
    assert_eq!(swept as usize, leftovers.len() + planted.len());
    assert_eq!(temp_files(dir.path()), [young], "young temp file swept");
    println!(
        "crash: {kills} SIGKILLs in {elapsed:.1?} (seed {seed:#x}), {files_checked} files left by kills parsed and matched the schema, \
         {} leftover temp files found, {swept} swept after back-dating{}",
        leftovers.len(),
        if planted.is_empty() {
            ""
        } else {
            " (none left by kills: one planted)"
        }
    );
}
