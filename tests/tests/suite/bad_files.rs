// The body of the `bad_files` suite, run through both drivers: `tests/tests/bad_files.rs` (blocking)
// and `tests/tests/bad_files_async.rs` (tokio) each define `driver` and include this file.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use storage_availability::schema::CacheFile;
use storage_availability::{AvailabilityCache, FileStore, ManualClock, Source, Stats};
use storage_availability_tests::{LoggedConfig, LoggedConfigKind as K};

thread_local! {
    /// Inputs tried by the running test (libtest runs each test on its own thread).
    static TRIED: Cell<usize> = const { Cell::new(0) };
}

fn tried() {
    TRIED.with(|t| t.set(t.get() + 1));
}

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000))
}

fn config() -> LoggedConfig {
    LoggedConfig::new("ok", "fail:refused", Some("warn:almost full"), None)
}

fn open(path: &Path) -> (AvailabilityCache<LoggedConfig>, LoggedConfig) {
    let config = config();
    let cache = driver::open(
        AvailabilityCache::builder(config.clone())
            .cache_path(path)
            .clock(clock()),
    )
    .unwrap();
    (cache, config)
}

/// A valid cache file for `config()` at `clock()`, pretty-printed as the store writes it.
fn valid_file() -> &'static [u8] {
    static VALID: OnceLock<Vec<u8>> = OnceLock::new();
    VALID.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        open(&path);
        std::fs::read(&path).unwrap()
    })
}

fn valid_value() -> serde_json::Value {
    serde_json::from_slice(valid_file()).unwrap()
}

fn assert_correct(cache: &AvailabilityCache<LoggedConfig>) {
    let csv = cache.status(K::Csv);
    assert!(csv.is_available() && csv.last_error.is_none(), "{csv:?}");
    let kv = cache.status(K::Kv);
    assert!(!kv.is_available(), "{kv:?}");
    assert_eq!(kv.last_error.as_deref(), Some("refused"));
    let vector = cache.status(K::Vector);
    assert!(vector.is_available(), "{vector:?}");
    assert_eq!(vector.warnings, ["almost full"]);
}

fn assert_valid_file(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let file: CacheFile = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} left invalid: {e}", path.display()));
    storage_availability::schema::is_compatible(&file.schema_version).unwrap();
}

fn quarantined(path: &Path) -> Vec<PathBuf> {
    FileStore::new(path).quarantined()
}

/// What the cache must do with a planted file.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Does not parse: moved aside as `.corrupt-*`, every section validated, a new file saved.
    Quarantined,
    /// Another version or unreadable: replaced by the next save, not moved aside.
    Replaced,
    /// A compatible file: read, nothing validated, nothing written.
    Read,
    /// Parses, but its records are not fresh: revalidated and rewritten, not moved aside.
    Revalidated,
}

/// Plants `bytes` at a fresh cache path, opens, and checks what `expect` says.
fn check(name: &str, bytes: &[u8], expect: Expect) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    check_in(&path, name, bytes, expect);
}

fn check_in(path: &Path, name: &str, bytes: &[u8], expect: Expect) {
    tried();
    std::fs::write(path, bytes).unwrap();
    let before = quarantined(path).len();
    let (cache, config) = open(path);
    assert_correct(&cache);
    let stats: Stats = cache.stats();
    let context = format!("{name}: {expect:?}, {stats:?}");
    match expect {
        Expect::Quarantined => {
            assert_eq!(config.total_calls(), 3, "{context}");
            assert_eq!(stats.corrupt_recovered, 1, "{context}");
            assert_eq!(stats.saves, 1, "{context}");
            let moved = quarantined(path);
            let newest = moved
                .last()
                .unwrap_or_else(|| panic!("{context}: not moved"));
            assert!(moved.len() > before.min(2), "{context}");
            assert_eq!(std::fs::read(newest).unwrap(), bytes, "{context}");
        }
        Expect::Replaced | Expect::Revalidated => {
            assert_eq!(config.total_calls(), 3, "{context}");
            assert_eq!(stats.saves, 1, "{context}");
            assert_eq!(stats.corrupt_recovered, 0, "{context}");
            assert_eq!(
                stats.incompatible_replaced,
                u64::from(expect == Expect::Replaced),
                "{context}"
            );
            assert_eq!(quarantined(path).len(), before, "{context}");
        }
        Expect::Read => {
            assert_eq!(config.total_calls(), 0, "{context}");
            assert_eq!((stats.saves, stats.hits), (0, 3), "{context}");
            for (kind, status) in cache.statuses() {
                assert_eq!(status.source, Source::Cache, "{context}: {kind}");
            }
            assert_eq!(std::fs::read(path).unwrap(), bytes, "{context}: rewritten");
        }
    }
    assert_valid_file(path);
}

/// `valid_value()` changed by `edit`, compact.
fn edited(edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut value = valid_value();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

/// `valid_file()` with the text `from` replaced by `to` (once).
fn replaced(from: &str, to: &str) -> Vec<u8> {
    let text = String::from_utf8(valid_file().to_vec()).unwrap();
    assert!(text.contains(from), "{from} not in the valid file");
    text.replacen(from, to, 1).into_bytes()
}

fn report(test: &str) {
    println!("bad_files::{test}: {} inputs", TRIED.with(Cell::get));
}

#[test]
fn the_valid_file_is_read() {
    check("valid", valid_file(), Expect::Read);
}

#[test]
fn an_empty_file_is_quarantined() {
    check("empty", b"", Expect::Quarantined);
    check("whitespace", b" \n\t\n", Expect::Quarantined);
    report("an_empty_file_is_quarantined");
}

#[test]
fn a_valid_file_truncated_at_every_byte_is_quarantined() {
    let valid = valid_file();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    let mut read = 0;
    for len in 0..valid.len() {
        let prefix = &valid[..len];
        // Only the trailing newline may go: what remains is still the whole document.
        let whole = prefix.trim_ascii_end() == valid.trim_ascii_end();
        read += usize::from(whole);
        let expect = if whole {
            Expect::Read
        } else {
            Expect::Quarantined
        };
        check_in(&path, &format!("truncated at {len}"), prefix, expect);
    }
    assert_eq!(read, 1);
    assert!(
        quarantined(&path).len() <= 3,
        "more than 3 quarantined kept"
    );
    println!(
        "truncation: {} prefixes of a {}-byte file tried, {} read whole, the rest quarantined",
        valid.len(),
        valid.len(),
        read
    );
}

#[test]
fn invalid_utf8_is_quarantined() {
    let mut bytes = replaced(
        "storage-availability 0.1.0",
        "storage-availability \u{1}.1.0",
    );
    let at = bytes.iter().position(|b| *b == 1).unwrap();
    bytes[at] = 0xff;
    check("invalid UTF-8 in a string", &bytes, Expect::Quarantined);
    let mut bytes = replaced("\"sections\"", "\"secti\u{1}ns\"");
    let at = bytes.iter().position(|b| *b == 1).unwrap();
    bytes[at] = 0xc3; // a lone lead byte
    check("invalid UTF-8 in a key", &bytes, Expect::Quarantined);
    check("UTF-16 BOM", b"\xff\xfe{\x00}\x00", Expect::Quarantined);
    report("invalid_utf8_is_quarantined");
}

#[test]
fn wrong_json_types_are_quarantined() {
    use serde_json::json;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("array document", b"[]".to_vec()),
        ("null document", b"null".to_vec()),
        ("string document", b"\"cache\"".to_vec()),
        ("number document", b"42".to_vec()),
        (
            "sections is an array",
            edited(|v| v["sections"] = json!([])),
        ),
        ("metadata is null", edited(|v| v["metadata"] = json!(null))),
        (
            "schema_version is a number",
            edited(|v| v["schema_version"] = json!(1.0)),
        ),
        (
            "enabled is a string",
            edited(|v| v["sections"]["csv"]["enabled"] = json!("yes")),
        ),
        (
            "checked_at is a number",
            edited(|v| v["sections"]["csv"]["checked_at"] = json!(1_732_450_000)),
        ),
        (
            "checked_at is not RFC 3339",
            edited(|v| v["sections"]["csv"]["checked_at"] = json!("yesterday")),
        ),
        (
            "section_hash is not 64 hex digits",
            edited(|v| v["sections"]["csv"]["section_hash"] = json!("ABC")),
        ),
        (
            "errors is a string",
            edited(|v| v["sections"]["csv"]["errors"] = json!("none")),
        ),
        (
            "consecutive_failures is negative",
            edited(|v| v["sections"]["key_value"]["consecutive_failures"] = json!(-1)),
        ),
        (
            "a section is a list",
            edited(|v| v["sections"]["csv"] = json!([1, 2])),
        ),
    ];
    for (name, bytes) in cases {
        check(name, &bytes, Expect::Quarantined);
    }
    report("wrong_json_types_are_quarantined");
}

#[test]
fn missing_required_fields_are_quarantined_and_extra_fields_ignored() {
    let remove = |pointer: &'static str| {
        edited(move |v| {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            v.pointer_mut(parent)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .remove(key)
                .unwrap();
        })
    };
    for pointer in [
        "/metadata",
        "/sections",
        "/schema_version",
        "/metadata/generated_at",
        "/sections/csv/section_hash",
        "/sections/csv/checked_at",
        "/sections/csv/enabled",
        "/sections/csv/duration_ms",
    ] {
        check(
            &format!("missing {pointer}"),
            &remove(pointer),
            Expect::Quarantined,
        );
    }
    // Fields with a default may be missing.
    for pointer in [
        "/sections/csv/errors",
        "/sections/csv/warnings",
        "/sections/csv/consecutive_failures",
    ] {
        check(
            &format!("missing {pointer}"),
            &remove(pointer),
            Expect::Read,
        );
    }
    use serde_json::json;
    let extra = edited(|v| {
        v["compression"] = json!("none");
        v["metadata"]["hostname"] = json!("build-7");
        v["sections"]["csv"]["performance_metrics"] = json!({"scan_ms": 1.5});
    });
    check("extra fields, same version", &extra, Expect::Read);
    report("missing_required_fields_are_quarantined_and_extra_fields_ignored");
}

#[test]
fn other_major_versions_are_replaced_and_a_newer_minor_is_read() {
    use serde_json::json;
    for version in ["2.0", "0.9", "10.0", "one", "1", "1.x", ""] {
        let bytes = edited(|v| v["schema_version"] = json!(version));
        check(
            &format!("schema_version {version:?}"),
            &bytes,
            Expect::Replaced,
        );
    }
    // A version we do not know, in a file we cannot parse otherwise: still replaced.
    check(
        "major 3 with an unknown layout",
        br#"{"schema_version": "3.0", "entries": [1, 2, 3]}"#,
        Expect::Replaced,
    );
    let newer = edited(|v| {
        v["schema_version"] = json!("1.7");
        v["format_capabilities"] = json!(["compression"]);
        v["sections"]["csv"]["performance_metrics"] = json!({"scan_ms": 1.5});
    });
    check("newer minor 1.7 with extra fields", &newer, Expect::Read);
    report("other_major_versions_are_replaced_and_a_newer_minor_is_read");
}

#[test]
fn numbers_out_of_range_are_quarantined_or_read_without_panic() {
    // Past u64 (and u32): does not parse.
    check(
        "consecutive_failures 2^64",
        &replaced(
            "\"consecutive_failures\": 1",
            "\"consecutive_failures\": 18446744073709551616",
        ),
        Expect::Quarantined,
    );
    check(
        "consecutive_failures 2^32",
        &replaced(
            "\"consecutive_failures\": 1",
            "\"consecutive_failures\": 4294967296",
        ),
        Expect::Quarantined,
    );
    check(
        "duration_ms 1e400",
        &replaced("\"duration_ms\": ", "\"duration_ms\": 1e400, \"x\": "),
        Expect::Quarantined,
    );
    // In range of f64 / u32 but absurd: read as is, no panic converting them.
    check(
        "duration_ms 1e300",
        &replaced("\"duration_ms\": ", "\"duration_ms\": 1e300, \"x\": "),
        Expect::Read,
    );
    check(
        "consecutive_failures u32::MAX",
        &replaced(
            "\"consecutive_failures\": 1",
            "\"consecutive_failures\": 4294967295",
        ),
        Expect::Read,
    );
    // Checked in the year 9999: parses, treated as expired (clock skew), revalidated.
    use serde_json::json;
    let future = edited(|v| {
        for section in ["csv", "key_value", "vector"] {
            v["sections"][section]["checked_at"] = json!("9999-12-31T23:59:59Z");
        }
    });
    check("checked_at in the year 9999", &future, Expect::Revalidated);
    report("numbers_out_of_range_are_quarantined_or_read_without_panic");
}

#[test]
fn nesting_100000_deep_is_refused_without_overflowing_the_stack() {
    const DEPTH: usize = 100_000;
    let arrays = format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH));
    check(
        "100,000 nested arrays",
        arrays.as_bytes(),
        Expect::Quarantined,
    );
    let objects = format!("{}{}", "{\"a\":".repeat(DEPTH), "}".repeat(DEPTH));
    check(
        "100,000 nested objects",
        objects.as_bytes(),
        Expect::Quarantined,
    );
    let in_metadata = format!(
        "{{\"schema_version\": \"1.0\", \"metadata\": {}{}}}",
        "[".repeat(DEPTH),
        "]".repeat(DEPTH)
    );
    check("deep metadata", in_metadata.as_bytes(), Expect::Quarantined);
    // Deep nesting in a field we ignore is skipped iteratively: the file is read.
    let in_extra = replaced(
        "\"sections\"",
        &format!(
            "\"extra\": {}{}, \"sections\"",
            "[".repeat(DEPTH),
            "]".repeat(DEPTH)
        ),
    );
    check("deep unknown field", &in_extra, Expect::Read);
    report("nesting_100000_deep_is_refused_without_overflowing_the_stack");
}

#[test]
fn a_50_mb_file_is_quarantined_unread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    tried();
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(50 << 20).unwrap(); // sparse: 50 MB of zeros, no blocks written
    drop(file);
    let (cache, config) = open(&path);
    assert_correct(&cache);
    assert_eq!(config.total_calls(), 3);
    assert_eq!(cache.stats().corrupt_recovered, 1);
    let moved = quarantined(&path);
    assert_eq!(moved.len(), 1);
    assert_eq!(std::fs::metadata(&moved[0]).unwrap().len(), 50 << 20);
    assert_valid_file(&path);
}

/// Opens on another thread and fails (instead of hanging the suite) past a generous bound.
fn open_within_bound(path: &Path) -> (AvailabilityCache<LoggedConfig>, LoggedConfig) {
    let path = path.to_owned();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(open(&path)).unwrap());
    receive
        .recv_timeout(Duration::from_secs(60))
        .expect("open hung on a non-regular file")
}

/// Something that is not a regular file at the cache path: left alone, results in memory.
fn check_not_regular(name: &str, path: &Path, still_there: impl Fn(&Path) -> bool) {
    tried();
    for round in 0..2 {
        let (cache, config) = open_within_bound(path);
        assert_correct(&cache);
        // Nothing is saved, so every open validates again.
        assert_eq!(config.total_calls(), 3, "{name}, round {round}");
        let stats = cache.stats();
        assert_eq!(
            (stats.saves, stats.save_failures, stats.corrupt_recovered),
            (0, 0, 0),
            "{name}"
        );
        assert!(still_there(path), "{name} was moved or deleted");
        assert!(quarantined(path).is_empty(), "{name} was quarantined");
        // Nothing is written in its place either, and a refresh stays in memory too.
        assert!(!driver::refresh(&cache).unwrap().saved, "{name}");
        cache.clear().unwrap();
        assert!(still_there(path), "{name} was deleted by clear");
    }
}

#[test]
fn a_directory_at_the_cache_path_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("user-data"), b"mine").unwrap();
    check_not_regular("a directory", &path, |p| {
        p.is_dir() && std::fs::read(p.join("user-data")).unwrap() == b"mine"
    });
}

#[cfg(unix)]
#[test]
fn a_fifo_at_the_cache_path_neither_blocks_nor_is_touched() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    let status = std::process::Command::new("mkfifo")
        .arg(&path)
        .status()
        .expect("run mkfifo");
    assert!(status.success());
    check_not_regular("a FIFO", &path, |p| {
        std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_fifo())
    });
}

#[cfg(unix)]
#[test]
fn a_symlink_to_dev_zero_is_neither_read_forever_nor_touched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    check_not_regular("a symlink to /dev/zero", &path, |p| {
        std::fs::read_link(p).is_ok_and(|target| target == Path::new("/dev/zero"))
    });
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    std::fs::write(&path, valid_file()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&path).is_ok() {
        println!(
            "SKIPPED an_unreadable_file_is_replaced: this process can read a mode-000 file (running as root)"
        );
        return;
    }
    tried();
    let (cache, config) = open(&path);
    assert_correct(&cache);
    assert_eq!(config.total_calls(), 3);
    let stats = cache.stats();
    assert_eq!((stats.incompatible_replaced, stats.saves), (1, 1));
    assert!(quarantined(&path).is_empty());
    assert_valid_file(&path);
}

/// A symlink at the cache path to a regular file (a valid cache file, even) is never
/// followed: not trusted, every section validated, the link replaced by our own file (the
/// rename replaces the link itself), its target untouched.
#[cfg(unix)]
#[test]
fn a_symlink_to_a_regular_file_is_not_followed_and_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("elsewhere.json");
    std::fs::write(&target, valid_file()).unwrap();
    let path = dir.path().join("cache.json");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    tried();
    let (cache, config) = open(&path);
    assert_correct(&cache);
    assert_eq!(config.total_calls(), 3, "read through the symlink");
    let stats = cache.stats();
    assert_eq!((stats.untrusted, stats.saves), (1, 1));
    assert!(quarantined(&path).is_empty());
    assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
    assert_valid_file(&path);
    assert_eq!(std::fs::read(&target).unwrap(), valid_file());
}
