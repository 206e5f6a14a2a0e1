//! The cache file layer under a hostile local user (issue 13): one test per attack.
//!
//! The tests that need a second user run as root (as in CI) and spawn helpers as uid/gid
//! 65534 (`nobody`) with `CommandExt::uid/gid`, in a `1777` directory like `/tmp`; without
//! root they print a note and skip. Each attack worked on the code before the trust rules.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use storage_availability::{AvailabilityCache, FileStore, ManualClock, Source};
use storage_availability_tests::{LoggedConfig, LoggedConfigKind as K};

const NOBODY: u32 = 65534;
const HELPER: &str = env!("CARGO_BIN_EXE_trust-helper");
const SECRET: &str = "AKIA-TRUST-TEST-SECRET-7f3e";

/// Whether this process runs as root (a file it creates is owned by uid 0).
fn running_as_root() -> bool {
    let file = tempfile::tempfile().unwrap();
    file.metadata().unwrap().uid() == 0
}

fn skip_unless_root(test: &str) -> bool {
    if running_as_root() {
        return false;
    }
    println!("SKIPPED {test}: needs root to run a second user (uid {NOBODY})");
    true
}

/// A directory every user may write, with the sticky bit, like `/tmp`.
fn shared_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// A command run as `nobody`. The helper binary runs from a copy that `nobody` can reach,
/// in that copy's directory: the build directory may sit below one only root can enter (a
/// fresh clone under `mktemp -d`), and a working directory `nobody` cannot enter would make
/// its host-scoped keys uncomputable.
fn as_nobody(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let program = program.as_ref();
    let mut command = if program == std::ffi::OsStr::new(HELPER) {
        let copy = helper_for_nobody();
        let mut command = Command::new(copy);
        command.current_dir(copy.parent().unwrap_or(Path::new("/")));
        command
    } else {
        Command::new(program)
    };
    command.uid(NOBODY).gid(NOBODY);
    command
}

/// `HELPER` copied, once per test process, into a directory of mode 0755 under the temp
/// directory.
fn helper_for_nobody() -> &'static Path {
    static COPY: OnceLock<PathBuf> = OnceLock::new();
    COPY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!(
            "storage-availability-trust-helper-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("trust-helper");
        std::fs::copy(HELPER, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    })
}

fn run_as_nobody(program: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) {
    let mut command = as_nobody(program);
    for arg in args {
        command.arg(arg);
    }
    let status = command.status().unwrap();
    assert!(status.success(), "{program} as nobody failed");
}

/// Every log line of this test binary, captured once for all tests.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl Write for Capture {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buffer
    })
    .clone()
}

/// The captured log lines that mention `needle`.
fn log_lines_with(needle: &str) -> Vec<String> {
    let logs = logs();
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    text.lines()
        .filter(|line| line.contains(needle))
        .map(str::to_owned)
        .collect()
}

fn config(kv: &str) -> LoggedConfig {
    LoggedConfig::new("ok", kv, None, None)
}

fn open_at(path: &Path, config: &LoggedConfig) -> AvailabilityCache<LoggedConfig> {
    AvailabilityCache::builder(config.clone())
        .cache_path(path)
        .lock_timeout(Duration::from_secs(20))
        .open()
        .unwrap()
}

/// The cache file a victim writes for `config`, as JSON.
fn real_file(config: &LoggedConfig) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("real.json");
    open_at(&path, config);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// `file` with every record saying "passed".
fn all_passed(mut file: Value) -> Value {
    for record in file["sections"].as_object_mut().unwrap().values_mut() {
        record["enabled"] = json!(true);
        record["validation_passed"] = json!(true);
        record["last_error"] = json!(null);
        record["errors"] = json!([]);
        record["consecutive_failures"] = json!(0);
    }
    file
}

fn assert_kv_refused(cache: &AvailabilityCache<LoggedConfig>) {
    let kv = cache.status(K::Kv);
    assert!(!kv.is_available(), "a forged record answered: {kv:?}");
    assert_eq!(kv.last_error.as_deref(), Some("refused"));
    assert_eq!(kv.source, Source::Validated);
    assert!(cache.status(K::Csv).is_available());
}

#[test]
fn another_users_cache_file_saying_passed_is_not_trusted() {
    if skip_unless_root("another_users_cache_file_saying_passed_is_not_trusted") {
        return;
    }
    let shared = shared_dir();
    let victim = config("fail:refused");
    // The attacker copies a file with the right hashes, every record "passed".
    let forged = shared.path().join("forged.json");
    let file = all_passed(real_file(&config("fail:refused")));
    std::fs::write(&forged, serde_json::to_vec(&file).unwrap()).unwrap();
    let path = shared.path().join("cache.json");
    run_as_nobody("cp", &[&forged, &path]);
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), NOBODY);

    let cache = open_at(&path, &victim);
    assert_kv_refused(&cache);
    assert_eq!(victim.total_calls(), 2, "every section validated afresh");
    assert_eq!(cache.stats().untrusted, 1);
    // Root may replace it in the sticky directory: the file is ours now, and trusted.
    assert_eq!(std::fs::metadata(&path).unwrap().uid(), 0);
    let again = open_at(&path, &victim);
    assert_eq!(again.stats().untrusted, 0);
    assert_kv_refused_from_file(&again);
}

fn assert_kv_refused_from_file(cache: &AvailabilityCache<LoggedConfig>) {
    let kv = cache.status(K::Kv);
    assert!(!kv.is_available());
    assert_eq!(kv.source, Source::Cache);
}

#[test]
fn a_cache_file_writable_by_others_is_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    for mode in [0o666, 0o664, 0o646] {
        std::fs::write(
            &path,
            serde_json::to_vec(&all_passed(real_file(&config("fail:refused")))).unwrap(),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let fresh = config("fail:refused");
        let cache = open_at(&path, &fresh);
        assert_kv_refused(&cache);
        assert_eq!(cache.stats().untrusted, 1, "mode {mode:o}");
        // Replaced by our own private file.
        assert_eq!(
            std::fs::metadata(&path).unwrap().mode() & 0o777,
            0o600,
            "mode {mode:o}"
        );
    }
}

#[test]
fn a_symlinked_lock_file_creates_nothing_at_its_target() {
    if skip_unless_root("a_symlinked_lock_file_creates_nothing_at_its_target") {
        return;
    }
    let shared = shared_dir();
    let private = tempfile::tempdir().unwrap();
    // `/etc/nologin` in the attack; a file in a directory only root may write here.
    let target = private.path().join("nologin");
    let path = shared.path().join("cache.json");
    let lock = shared.path().join("cache.json.lock");
    run_as_nobody("ln", &[&"-s", &target, &lock]);

    let victim = config("fail:refused");
    let started = Instant::now();
    let cache = open_at(&path, &victim);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_kv_refused(&cache);
    assert!(
        std::fs::symlink_metadata(&target).is_err(),
        "a file was created through the planted symlink"
    );
    assert!(std::fs::symlink_metadata(&lock).unwrap().is_symlink());
}

#[test]
fn a_lock_file_held_by_another_user_is_not_waited_on() {
    if skip_unless_root("a_lock_file_held_by_another_user_is_not_waited_on") {
        return;
    }
    let shared = shared_dir();
    let path = shared.path().join("cache.json");
    let lock = shared.path().join("cache.json.lock");
    let mut holder = as_nobody(HELPER)
        .arg("hold-lock")
        .arg(&lock)
        .arg("60000")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    assert_eq!(std::fs::metadata(&lock).unwrap().uid(), NOBODY);

    let victim = config("fail:refused");
    let started = Instant::now();
    let cache = open_at(&path, &victim); // lock_timeout 20 s
    let waited = started.elapsed();
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert!(
        waited < Duration::from_secs(5),
        "waited {waited:?} on another user's lock"
    );
    assert_kv_refused(&cache);
    assert_eq!(cache.stats().lock_timeouts, 0);
}

#[test]
fn a_symlink_at_the_cache_path_is_not_followed_and_its_secret_is_not_logged() {
    if skip_unless_root("a_symlink_at_the_cache_path_is_not_followed_and_its_secret_is_not_logged")
    {
        return;
    }
    logs();
    let shared = shared_dir();
    let private = tempfile::tempdir().unwrap();
    let secret = private.path().join("credentials.json");
    // A JSON string: serde's error for it used to quote it ("invalid type: string ...").
    let content = format!("\"{SECRET}\"");
    std::fs::write(&secret, &content).unwrap();
    let path = shared.path().join("cache.json");
    run_as_nobody("ln", &[&"-s", &secret, &path]);

    let victim = config("fail:refused");
    let cache = open_at(&path, &victim);
    let leaked = log_lines_with(SECRET);
    assert!(leaked.is_empty(), "the secret was logged: {leaked:?}");
    assert_kv_refused(&cache);
    assert_eq!(cache.stats().untrusted, 1);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), content);
    // The link itself was replaced by our file; its target was never written.
    assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
}

/// Creates `path` with `content` and the given mtime.
fn file_with_mtime(path: &Path, content: &[u8], modified: SystemTime) {
    std::fs::write(path, content).unwrap();
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
}

#[test]
fn planted_corrupt_names_and_a_clock_step_back_keep_the_fresh_evidence() {
    if skip_unless_root("planted_corrupt_names_and_a_clock_step_back_keep_the_fresh_evidence") {
        return;
    }
    let shared = shared_dir();
    let path = shared.path().join("cache.json");
    let name = |suffix: &str| shared.path().join(format!("cache.json{suffix}"));
    // Our own evidence from before a clock step back: higher numbers, older mtimes.
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let ours: Vec<PathBuf> = ["-1800000000", "-1800000000-1", "-1800000000-2"]
        .iter()
        .map(|n| name(&format!(".corrupt{n}")))
        .collect();
    for (i, old) in ours.iter().enumerate() {
        file_with_mtime(old, b"old", hour_ago + Duration::from_secs(i as u64));
    }
    // Another user's names, numbered past anything we will write.
    let planted: Vec<PathBuf> = [".corrupt-9999999999", ".corrupt-9999999999-1"]
        .iter()
        .map(|n| name(n))
        .collect();
    for p in &planted {
        run_as_nobody("touch", &[p]);
    }
    std::fs::write(&path, b"{ not json").unwrap();

    // The clock stepped back a day.
    let clock = ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_799_913_600));
    let victim = config("fail:refused");
    let cache = AvailabilityCache::builder(victim.clone())
        .cache_path(&path)
        .clock(clock)
        .open()
        .unwrap();
    assert_kv_refused(&cache);
    assert_eq!(cache.stats().corrupt_recovered, 1);
    let fresh = name(".corrupt-1799913600");
    assert_eq!(
        std::fs::read(&fresh).expect("the fresh evidence was deleted"),
        b"{ not json"
    );
    for p in &planted {
        assert!(
            p.exists(),
            "another user's file was deleted: {}",
            p.display()
        );
    }
    // Three of ours are kept: the fresh one and the two newest by mtime.
    assert!(!ours[0].exists());
    assert!(ours[1].exists() && ours[2].exists());
    assert_eq!(FileStore::new(&path).quarantined().len(), 3 + planted.len());
}

#[test]
fn another_users_files_named_like_our_temp_files_are_not_swept() {
    if skip_unless_root("another_users_files_named_like_our_temp_files_are_not_swept") {
        return;
    }
    let shared = shared_dir();
    let path = shared.path().join("cache.json");
    let planted = shared.path().join(".cache.json.tmp-1-0123456789abcdef");
    run_as_nobody("touch", &[&"-d", &"2 hours ago", &planted]);
    // One of ours, as old, is swept.
    let ours = shared.path().join(".cache.json.tmp-2-0123456789abcdef");
    file_with_mtime(&ours, b"", SystemTime::now() - Duration::from_secs(7200));
    let cache = open_at(&path, &config("fail:refused"));
    assert_kv_refused(&cache);
    assert!(
        planted.exists(),
        "another user's file was deleted by the sweep"
    );
    assert!(!ours.exists());
    assert_eq!(cache.stats().temp_files_swept, 1);
}

#[test]
fn without_the_lock_a_corrupt_file_is_left_in_place_and_the_log_says_so() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cache.json");
    std::fs::write(&path, b"{ not json").unwrap();
    // A lock file that is not ours: the cache goes on unlocked.
    std::os::unix::fs::symlink(
        dir.path().join("elsewhere"),
        path.with_extension("json.lock"),
    )
    .unwrap();
    let victim = config("fail:refused");
    let cache = open_at(&path, &victim);
    assert_kv_refused(&cache);
    assert!(
        std::fs::read(&path).unwrap() == b"{ not json",
        "the corrupt file was overwritten without the lock"
    );
    assert!(FileStore::new(&path).quarantined().is_empty());
    let lines = log_lines_with(&dir.path().display().to_string());
    assert!(
        lines.iter().any(|l| l.contains("left in place")),
        "{lines:#?}"
    );
    assert!(
        !lines.iter().any(|l| l.contains("moving it aside")),
        "{lines:#?}"
    );
}

#[test]
fn records_the_schema_rejects_are_not_trusted() {
    let good = real_file(&config("ok"));
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 4] = [
        ("duration_ms -5.0", |v| {
            for r in v["sections"].as_object_mut().unwrap().values_mut() {
                r["duration_ms"] = json!(-5.0);
            }
        }),
        ("records as arrays", |v| {
            for r in v["sections"].as_object_mut().unwrap().values_mut() {
                *r = Value::Array(r.as_object().unwrap().values().cloned().collect());
            }
        }),
        ("metadata as an array", |v| {
            v["metadata"] = Value::Array(
                v["metadata"]
                    .as_object()
                    .unwrap()
                    .values()
                    .cloned()
                    .collect(),
            );
        }),
        ("a leap second at 10:00", |v| {
            for r in v["sections"].as_object_mut().unwrap().values_mut() {
                r["checked_at"] = json!("2026-11-25T10:00:60Z");
            }
        }),
    ];
    for (what, edit) in cases {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        let mut file = good.clone();
        edit(&mut file);
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        let fresh = config("ok");
        let cache = open_at(&path, &fresh);
        assert_eq!(
            fresh.total_calls(),
            2,
            "{what}: a rejected record was reused"
        );
        assert_eq!(cache.stats().corrupt_recovered, 1, "{what}");
    }
}

#[test]
fn a_read_only_config_directory_caches_in_the_platform_cache_dir() {
    if skip_unless_root("a_read_only_config_directory_caches_in_the_platform_cache_dir") {
        return;
    }
    let base = tempfile::tempdir().unwrap();
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    // A ConfigMap: root's files in a directory nobody else may write.
    let config_dir = base.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    let config_path = config_dir.join("app.yaml");
    std::fs::write(&config_path, b"storage: {}\n").unwrap();
    std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    // The user's own platform cache directory.
    let home = base.path().join("home");
    std::fs::create_dir(&home).unwrap();
    std::os::unix::fs::chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    let xdg = home.join(".cache");

    let open = || -> Value {
        let out = as_nobody(HELPER)
            .arg("open-config")
            .arg(&config_path)
            .env("HOME", &home)
            .env("XDG_CACHE_HOME", &xdg)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let first = open();
    let used = PathBuf::from(first["path"].as_str().unwrap());
    assert!(
        used.starts_with(xdg.join("storage-availability")),
        "path() names {}",
        used.display()
    );
    assert!(used.is_file(), "path() names a file that was never written");
    assert_eq!(
        (first["saves"].as_u64(), first["save_failures"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(std::fs::metadata(&used).unwrap().uid(), NOBODY);
    // The next start reuses it.
    let second = open();
    assert_eq!(second["path"], first["path"]);
    assert_eq!(second["validations"].as_u64(), Some(0));
}
