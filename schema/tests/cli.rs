//! The `availability` tool, run as a process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::{Value, json};

fn availability() -> Command {
    let mut cmd = Command::cargo_bin("availability").unwrap();
    cmd.env_remove("NO_COLOR").timeout(Duration::from_secs(30));
    cmd
}

struct Output {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    Output {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn good_file() -> Value {
    json!({
        "schema_version": "1.0",
        "metadata": {
            "generator": "storage-availability 0.1.0",
            "generated_at": "2025-11-25T10:00:02.000000Z",
            "config_type": "app::StorageConfig",
            "config_path": "/srv/app/config/storage.yaml",
            "config_mtime": 1764000000.5,
            "platform": "linux-x86_64"
        },
        "sections": {
            "csv": {
                "section_hash": "a".repeat(64),
                "enabled": true,
                "validation_passed": true,
                "last_error": null,
                "errors": [],
                "warnings": [],
                "checked_at": "2025-11-25T10:00:00.123456Z",
                "duration_ms": 0.8,
                "consecutive_failures": 0
            },
            "vector": {
                "section_hash": "b".repeat(64),
                "enabled": false,
                "validation_passed": false,
                "last_error": "connection refused",
                "errors": ["connection refused"],
                "warnings": [],
                "checked_at": "2999-01-01T00:00:00.000000Z",
                "duration_ms": 2000.0,
                "consecutive_failures": 3
            }
        }
    })
}

/// Every field of `expected` is in `actual` with the same value (objects may have more).
fn assert_contains(actual: &Value, expected: &Value) {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => {
            for (key, value) in expected {
                let found = actual.get(key).unwrap_or_else(|| panic!("no {key:?}"));
                assert_contains(found, value);
            }
        }
        _ => assert_eq!(actual, expected),
    }
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    write(dir, name, serde_json::to_string_pretty(value).unwrap())
}

#[test]
fn schema_prints_the_checked_in_schema() {
    let out = run(availability().arg("schema"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("availability-cache.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(printed, checked_in);
}

#[test]
fn schema_with_sections_is_specialised() {
    let out = run(availability().args(["schema", "--sections", "csv,key_value"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    let sections = &printed["properties"]["sections"];
    assert_eq!(sections["additionalProperties"], json!(false));
    let names: Vec<&String> = sections["properties"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["csv", "key_value"]);
}

#[test]
fn check_good_file_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), "good.json", &good_file());
    let out = run(availability().arg("check").arg(&path));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("good.json: ok"), "{}", out.stdout);
    assert!(!out.stdout.contains('\x1b'), "colour without a terminal");
}

#[test]
fn check_newer_minor_with_extra_fields_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut value = good_file();
    value["schema_version"] = json!("1.4");
    value["sections"]["csv"]["new_field"] = json!([1]);
    let path = write_json(dir.path(), "newer.json", &value);
    let out = run(availability().arg("check").arg(&path));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

#[test]
fn check_broken_file_exits_1_with_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let mut value = good_file();
    value["sections"]["csv"]["section_hash"] = json!("A".repeat(64));
    value["sections"]["vector"]["duration_ms"] = json!(-3);
    let bad = write_json(dir.path(), "bad.json", &value);
    let good = write_json(dir.path(), "good.json", &good_file());
    let out = run(availability().arg("check").arg(&good).arg(&bad));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("good.json: ok"), "{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("bad.json: /sections/csv/section_hash: ")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("bad.json: /sections/vector/duration_ms: "),
        "{}",
        out.stdout
    );
}

#[test]
fn check_json_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut value = good_file();
    value["metadata"]["generated_at"] = json!("2025-11-25T11:00:00+01:00");
    let bad = write_json(dir.path(), "bad.json", &value);
    let good = write_json(dir.path(), "good.json", &good_file());
    let missing = dir.path().join("missing.json");
    let out = run(availability()
        .args(["check", "--json"])
        .arg(&good)
        .arg(&bad)
        .arg(&missing));
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let report = report.as_array().unwrap();
    assert_eq!(report.len(), 3);
    assert_eq!(report[0]["status"], "valid");
    assert_eq!(report[0]["errors"], json!([]));
    assert_eq!(report[1]["status"], "invalid");
    assert_eq!(report[1]["file"], json!(bad.display().to_string()));
    let pointers: Vec<&str> = report[1]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert!(pointers.contains(&"/metadata/generated_at"), "{pointers:?}");
    assert!(report[1]["errors"][0]["message"].is_string());
    assert_eq!(report[2]["status"], "unreadable");
    assert!(out.stderr.contains("missing.json"), "{}", out.stderr);
}

#[test]
fn check_with_sections_rejects_unknown_section() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), "good.json", &good_file());
    let ok = run(availability()
        .args(["check", "--sections", "csv,vector,key_value"])
        .arg(&path));
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let bad = run(availability()
        .args(["check", "--sections", "csv"])
        .arg(&path));
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    assert!(bad.stdout.contains(": /sections: "), "{}", bad.stdout);
    assert!(bad.stdout.contains("vector"), "{}", bad.stdout);
}

#[test]
fn check_other_major_version_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let mut value = good_file();
    value["schema_version"] = json!("2.0");
    let path = write_json(dir.path(), "v2.json", &value);
    let out = run(availability().arg("check").arg(&path));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("v2.json: /schema_version: ") && out.stdout.contains("major version"),
        "{}",
        out.stdout
    );
}

#[test]
fn check_file_the_types_cannot_read_is_invalid() {
    // Matches the schema, but a date before 1970 cannot be read by the library.
    let dir = tempfile::tempdir().unwrap();
    let mut value = good_file();
    value["sections"]["csv"]["checked_at"] = json!("1969-12-31T23:59:59Z");
    let path = write_json(dir.path(), "old.json", &value);
    let out = run(availability().arg("check").arg(&path));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("not readable"), "{}", out.stdout);
}

#[test]
fn check_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(availability()
        .arg("check")
        .arg(dir.path().join("missing.json")));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("availability: cannot read: ")
            && out.stderr.contains("missing.json: "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

/// Not JSON (or not UTF-8) is a content problem: exit 1, like any invalid file.
#[test]
fn check_not_json_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "notjson.json", "{ this is not json");
    let out = run(availability().arg("check").arg(&path));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.starts_with("availability: not JSON: ") && out.stderr.contains("notjson.json"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
}

#[test]
fn check_not_utf8_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "latin1.json", b"{\"a\": \"caf\xe9\"}");
    let out = run(availability().arg("check").arg(&path));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.starts_with("availability: not UTF-8: "),
        "{}",
        out.stderr
    );
}

#[test]
fn oversize_file_is_refused_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), "big.json", &good_file());
    for command in ["check", "inspect"] {
        let out = run(availability()
            .args([command, "--max-bytes", "100"])
            .arg(&path));
        assert_eq!(out.code, 2, "{command}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("availability: file too large: ")
                && out.stderr.contains("100-byte limit"),
            "{}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn directory_as_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["check", "inspect"] {
        let out = run(availability().arg(command).arg(dir.path()));
        assert_eq!(out.code, 2, "{command}");
        assert!(
            out.stderr.starts_with("availability: cannot read: ")
                && out.stderr.trim_end().ends_with("is a directory"),
            "{}",
            out.stderr
        );
    }
}

#[cfg(unix)]
#[test]
fn fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cache.json");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());
    let out = run(availability().arg("check").arg(&fifo));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("a FIFO"), "{}", out.stderr);
}

#[cfg(unix)]
#[test]
fn symlink_to_dev_zero_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("cache.json");
    std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
    let out = run(availability().arg("inspect").arg(&link));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("not a regular file"), "{}", out.stderr);
}

#[test]
fn inspect_table_lists_sections() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), "cache.json", &good_file());
    let out = run(availability().arg("inspect").arg(&path));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let first = out.stdout.lines().next().unwrap();
    assert!(
        first.contains("storage-availability 0.1.0")
            && first.contains("2025-11-25T10:00:02.000000Z")
            && first.contains("/srv/app/config/storage.yaml"),
        "{first}"
    );
    for expected in [
        "csv",
        "vector",
        "connection refused",
        "in the future",
        " ago",
        "0.8 ms",
        "2.00 s",
    ] {
        assert!(out.stdout.contains(expected), "{expected}:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains('\x1b'), "colour without a terminal");
}

#[test]
fn inspect_json_parses() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_json(dir.path(), "cache.json", &good_file());
    let out = run(availability().args(["inspect", "--json"]).arg(&path));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed["sections"]["vector"]["consecutive_failures"], 3);
    // The file itself, with fields added by the tool.
    assert_contains(&printed, &good_file());
    assert_eq!(printed["file"], json!(path.display().to_string()));
}

#[test]
fn inspect_invalid_file_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut value = good_file();
    value["sections"]["csv"]["section_hash"] = json!("abc");
    let path = write_json(dir.path(), "bad.json", &value);
    let out = run(availability().arg("inspect").arg(&path));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("availability: invalid cache file: "),
        "{}",
        out.stderr
    );
    let mut value = good_file();
    value["schema_version"] = json!("3.1");
    let path = write_json(dir.path(), "v3.json", &value);
    let out = run(availability().arg("inspect").arg(&path));
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .starts_with("availability: incompatible version: "),
        "{}",
        out.stderr
    );
}

#[test]
fn usage_errors_exit_2_and_help_documents_exit_codes() {
    assert_eq!(run(availability().arg("frobnicate")).code, 2);
    assert_eq!(run(&mut availability()).code, 2);
    assert_eq!(run(availability().arg("check")).code, 2);
    let help = run(availability().arg("--help"));
    assert_eq!(help.code, 0);
    assert!(
        help.stdout.contains("Exit status:") && help.stdout.contains("2  usage error"),
        "{}",
        help.stdout
    );
}

/// A FIFO swapped in between a type check and a blocking open would hang the tool forever
/// (nobody writes to it). The tool opens with `O_NONBLOCK` and checks the type on the open
/// handle, so every run returns promptly, whatever it found at the path.
#[cfg(unix)]
#[test]
fn check_returns_promptly_when_a_fifo_is_swapped_in() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cache.json");
    let good = write_json(dir.path(), "good.json", &good_file());
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("run mkfifo");
    assert!(made.success());

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let (stop, target, good, fifo) = (stop.clone(), target.clone(), good.clone(), fifo);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // The regular file, then the FIFO, at the same path.
                std::fs::rename(&good, &target).unwrap();
                std::fs::rename(&target, &good).unwrap();
                std::fs::rename(&fifo, &target).unwrap();
                std::fs::rename(&target, &fifo).unwrap();
            }
        })
    };
    let binary = assert_cmd::cargo::cargo_bin("availability");
    let (mut ok, mut refused) = (0, 0);
    for run in 0..300 {
        let mut child = std::process::Command::new(&binary)
            .arg("check")
            .arg(&target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(10) {
                child.kill().unwrap();
                child.wait().unwrap();
                stop.store(true, Ordering::Relaxed);
                panic!("`availability check` hung on run {run} (a FIFO was swapped in)");
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        match status.code() {
            Some(0) => ok += 1,
            Some(2) => refused += 1,
            other => panic!("unexpected exit {other:?}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    println!("{ok} runs read the file, {refused} found a FIFO or nothing; none hung");
}

// ---------------------------------------------------------------------------------------
// Config paths, expiry, invalidate, clear, metrics.

/// An RFC 3339 timestamp `secs_ago` seconds before now.
fn ago(secs_ago: u64) -> String {
    storage_availability_schema::Timestamp(
        std::time::SystemTime::now() - Duration::from_secs(secs_ago),
    )
    .to_rfc3339()
    .unwrap()
}

/// A cache file for `config_path` (absolute) and `config_type`: `csv` passed an hour ago
/// with a warning, `vector` failed twice 10 s ago.
fn cache_for(config_path: &Path, config_type: &str) -> Value {
    let mut value = good_file();
    value["metadata"]["config_path"] = json!(config_path.display().to_string());
    value["metadata"]["config_type"] = json!(config_type);
    value["sections"]["csv"]["checked_at"] = json!(ago(3_600));
    value["sections"]["csv"]["warnings"] = json!(["disk 91% full"]);
    value["sections"]["vector"]["enabled"] = json!(true);
    value["sections"]["vector"]["checked_at"] = json!(ago(10));
    value["sections"]["vector"]["consecutive_failures"] = json!(2);
    value
}

/// A config directory with `storage.yaml` and, when `with_cache`, its cache file
/// `storage.1234abcd.availability.json` plus a decoy of another config with the same stem.
/// The platform cache directory points into the temp dir too.
struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    cache: PathBuf,
}

fn setup(with_cache: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).unwrap();
    let config = write(&config_dir, "storage.yaml", "csv: data\nvector: redis\n");
    let cache = config_dir.join("storage.1234abcd.availability.json");
    if with_cache {
        write_json(
            &config_dir,
            "storage.1234abcd.availability.json",
            &cache_for(&config, "app::StorageConfig"),
        );
        write_json(
            &config_dir,
            "storage.deadbeef.availability.json",
            &cache_for(Path::new("/elsewhere/storage.yaml"), "app::StorageConfig"),
        );
    }
    Setup { dir, config, cache }
}

impl Setup {
    fn cmd(&self) -> Command {
        let mut cmd = availability();
        cmd.env("XDG_CACHE_HOME", self.dir.path().join("xdg"));
        cmd
    }
}

#[test]
fn a_config_path_finds_its_cache_file() {
    let s = setup(true);
    let out = run(s.cmd().arg("inspect").arg(&s.config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("storage.1234abcd.availability.json")
            && !out.stdout.contains("deadbeef"),
        "{}",
        out.stdout
    );
    let out = run(s.cmd().args(["check", "--json"]).arg(&s.config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report[0]["file"], json!(s.cache.display().to_string()));
    assert_eq!(report[0]["status"], "valid");
    // A relative config path works as well.
    let out =
        run(s
            .cmd()
            .current_dir(s.dir.path())
            .args(["inspect", "--json", "config/storage.yaml"]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed["file"], json!(s.cache.display().to_string()));
}

#[test]
fn a_config_path_without_a_cache_file_exits_2_naming_where_it_looked() {
    let s = setup(false);
    for command in ["inspect", "check", "metrics", "clear"] {
        let out = run(s.cmd().arg(command).arg(&s.config));
        assert_eq!(out.code, 2, "{command}: {}", out.stderr);
        let config_dir = s.config.parent().unwrap().display().to_string();
        assert!(
            out.stderr.starts_with("availability: no cache file: ")
                && out.stderr.contains(&config_dir)
                && out.stderr.contains("storage.*.availability.json")
                && !out.stderr.contains("not JSON"),
            "{command}: {}",
            out.stderr
        );
    }
}

#[test]
fn the_platform_cache_directory_is_searched_too() {
    let s = setup(false);
    let platform = s.dir.path().join("xdg").join("storage-availability");
    std::fs::create_dir_all(&platform).unwrap();
    write_json(
        &platform,
        "storage.0badf00d.availability.json",
        &cache_for(&s.config, "app::StorageConfig"),
    );
    let out = run(s.cmd().args(["inspect", "--json"]).arg(&s.config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(
        printed["file"]
            .as_str()
            .unwrap()
            .ends_with("storage.0badf00d.availability.json")
    );
}

#[test]
fn a_config_with_two_config_types_shows_both_and_changes_only_one() {
    let s = setup(true);
    let other = write_json(
        s.config.parent().unwrap(),
        "storage.9999aaaa.availability.json",
        &cache_for(&s.config, "other::Config"),
    );
    let out = run(s.cmd().args(["inspect", "--json"]).arg(&s.config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    let types: Vec<&str> = printed
        .as_array()
        .expect("an array for several files")
        .iter()
        .map(|f| f["metadata"]["config_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["app::StorageConfig", "other::Config"]);

    let out = run(s.cmd().arg("invalidate").arg(&s.config).arg("csv"));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("availability: several cache files: ")
            && out.stderr.contains("1234abcd")
            && out.stderr.contains("9999aaaa")
            && out.stderr.contains("--config-type"),
        "{}",
        out.stderr
    );
    let out = run(s.cmd().arg("invalidate").arg(&s.config).args([
        "csv",
        "--config-type",
        "other::Config",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let read = |p: &Path| -> Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    assert!(read(&other)["sections"].get("csv").is_none());
    assert!(read(&s.cache)["sections"].get("csv").is_some());
}

#[test]
fn inspect_shows_warnings_status_and_expiry() {
    let s = setup(true);
    let out = run(s.cmd().arg("inspect").arg(&s.cache));
    assert_eq!(out.code, 0, "{}", out.stderr);
    for expected in [
        "disk 91% full",
        "passed",
        "failed",
        "expires",
        "warnings",
        "app::StorageConfig",
    ] {
        assert!(out.stdout.contains(expected), "{expected}:\n{}", out.stdout);
    }
    // Passed an hour ago: 23 h left (shown in whole hours).
    assert!(
        out.stdout.contains("in 22h") || out.stdout.contains("in 23h"),
        "{}",
        out.stdout
    );
    // Two failures: retried 60 s after the check, 10 s ago.
    assert!(
        out.stdout.contains("in 49s") || out.stdout.contains("in 50s"),
        "{}",
        out.stdout
    );

    let out = run(s
        .cmd()
        .args([
            "inspect",
            "--json",
            "--max-age",
            "2h",
            "--retry-failed-after",
            "1m",
        ])
        .arg(&s.cache));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    let csv = &printed["sections"]["csv"];
    assert_eq!(csv["warnings"], json!(["disk 91% full"]));
    assert_eq!(csv["status"], "passed");
    assert_eq!(csv["available"], true);
    assert_eq!(csv["expired"], false);
    let left = csv["expires_in_seconds"].as_f64().unwrap();
    assert!((3_500.0..=3_600.0).contains(&left), "{left}");
    let vector = &printed["sections"]["vector"];
    assert_eq!(vector["status"], "failed");
    assert_eq!(vector["consecutive_failures"], 2);
    let left = vector["expires_in_seconds"].as_f64().unwrap();
    assert!((100.0..=110.0).contains(&left), "{left}");

    // Past --max-age: expired; `none`: never.
    let out = run(s.cmd().args(["inspect", "--max-age", "30m"]).arg(&s.cache));
    assert!(out.stdout.contains("expired 30m ago"), "{}", out.stdout);
    let out = run(s
        .cmd()
        .args(["inspect", "--json", "--max-age", "none"])
        .arg(&s.cache));
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        printed["sections"]["csv"]["expires_in_seconds"],
        Value::Null
    );
    assert_eq!(printed["sections"]["csv"]["expired"], false);
    assert_eq!(
        run(s.cmd().args(["inspect", "--max-age", "soon"]).arg(&s.cache)).code,
        2
    );
}

fn validator() -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("availability-cache.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

#[test]
fn invalidate_removes_the_section_and_the_file_stays_valid() {
    let s = setup(true);
    let out = run(s.cmd().arg("invalidate").arg(&s.config).arg("csv"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("invalidated csv"), "{}", out.stdout);
    let bytes = std::fs::read(&s.cache).unwrap();
    let value: Value = serde_json::from_slice(&bytes).unwrap();
    assert!(value["sections"].get("csv").is_none());
    assert!(value["sections"].get("vector").is_some());
    assert!(validator().is_valid(&value));
    storage_availability_schema::parse_cache_file(&bytes).expect("the library reads it");
    let out = run(s.cmd().arg("check").arg(&s.cache));
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The lock file stays; no temp file is left; the new file is private.
    let names: Vec<String> = std::fs::read_dir(s.cache.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp-")), "{names:?}");
    assert!(s.cache.with_extension("json.lock").exists(), "{names:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&s.cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // --json, the last section.
    let out = run(s
        .cmd()
        .args(["invalidate", "--json"])
        .arg(&s.cache)
        .arg("vector"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed["invalidated"], json!(["vector"]));
    let value: Value = serde_json::from_slice(&std::fs::read(&s.cache).unwrap()).unwrap();
    assert_eq!(value["sections"], json!({}));
    assert!(validator().is_valid(&value));
}

#[test]
fn invalidate_an_unknown_section_exits_2_listing_the_known_ones() {
    let s = setup(true);
    let before = std::fs::read(&s.cache).unwrap();
    let out = run(s
        .cmd()
        .arg("invalidate")
        .arg(&s.cache)
        .args(["csv", "nosuch"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("availability: unknown section: ")
            && out.stderr.contains("nosuch")
            && out.stderr.contains("its sections: csv, vector"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&s.cache).unwrap(), before, "nothing changed");
    assert_eq!(run(s.cmd().arg("invalidate").arg(&s.cache)).code, 2);
}

#[test]
fn clear_removes_the_file() {
    let s = setup(true);
    let out = run(s.cmd().arg("clear").arg(&s.config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!s.cache.exists());
    assert!(
        s.cache.with_extension("json.lock").exists(),
        "the lock file is never deleted"
    );
    let decoy = s.cache.with_file_name("storage.deadbeef.availability.json");
    assert!(decoy.exists(), "another config's cache file is left alone");
    // Already gone: not an error.
    let out = run(s.cmd().args(["clear", "--json"]).arg(&s.cache));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed["cleared"], false);
}

/// Not a test: the child process of `a_lock_held_by_another_process_...`. It takes the lock
/// given in `AVAILABILITY_TEST_HOLD_LOCK`, says `locked`, and holds it until stdin closes.
#[test]
fn lock_holder_child() {
    let Some(path) = std::env::var_os("AVAILABILITY_TEST_HOLD_LOCK") else {
        return;
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path).unwrap();
    file.lock().unwrap();
    // libtest may have printed "test lock_holder_child ... " on this line already.
    println!("locked");
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut rest);
        let _ = done.send(());
    });
    // Never outlive a parent that failed to close stdin by much.
    let _ = wait.recv_timeout(Duration::from_secs(60));
    drop(file);
}

#[test]
fn a_lock_held_by_another_process_makes_invalidate_wait_then_time_out() {
    use std::io::BufRead;
    use std::process::Stdio;
    use std::time::Instant;

    let s = setup(true);
    let lock = s.cache.with_extension("json.lock");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AVAILABILITY_TEST_HOLD_LOCK", &lock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(
        lines.any(|line| line.unwrap().trim_end().ends_with("locked")),
        "the child did not take the lock"
    );
    let before = std::fs::read(&s.cache).unwrap();
    for command in [
        &["invalidate", "--lock-timeout", "300ms"][..],
        &["clear", "--lock-timeout", "300ms"],
    ] {
        let started = Instant::now();
        let mut cmd = s.cmd();
        cmd.arg(command[0]).arg(&s.cache);
        if command[0] == "invalidate" {
            cmd.arg("csv");
        }
        let out = run(cmd.args(&command[1..]));
        let waited = started.elapsed();
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(
            out.stderr.starts_with("availability: lock timed out: ")
                && out.stderr.contains(".availability.json.lock")
                && out.stderr.contains("--lock-timeout"),
            "{}",
            out.stderr
        );
        assert!(waited >= Duration::from_millis(300), "{waited:?}");
        assert_eq!(std::fs::read(&s.cache).unwrap(), before, "nothing changed");
    }
    // Released: the same command goes through.
    drop(child.stdin.take());
    child.wait().unwrap();
    let out = run(s
        .cmd()
        .args(["invalidate", "--lock-timeout", "5s"])
        .arg(&s.cache)
        .arg("csv"));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[cfg(unix)]
#[test]
fn a_symlinked_cache_file_is_refused() {
    let s = setup(true);
    let link = s.cache.with_file_name("link.availability.json");
    std::os::unix::fs::symlink(&s.cache, &link).unwrap();
    let before = std::fs::read(&s.cache).unwrap();
    for args in [&["invalidate", "csv"][..], &["clear"], &["inspect"]] {
        let out = run(s.cmd().arg(args[0]).arg(&link).args(&args[1..]));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    }
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(std::fs::read(&s.cache).unwrap(), before);

    // A symlinked lock file is never created through.
    let target = s.dir.path().join("planted");
    std::os::unix::fs::symlink(&target, s.cache.with_extension("json.lock")).unwrap();
    let out = run(s.cmd().arg("clear").arg(&s.cache));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.starts_with("availability: refused: ") && out.stderr.contains("symbolic link"),
        "{}",
        out.stderr
    );
    assert!(!target.exists() && s.cache.exists());
}

#[cfg(unix)]
#[test]
fn a_cache_file_that_is_not_ours_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let s = setup(true);
    std::fs::set_permissions(&s.cache, std::fs::Permissions::from_mode(0o666)).unwrap();
    let before = std::fs::read(&s.cache).unwrap();
    for args in [&["invalidate", "csv"][..], &["clear"]] {
        let out = run(s.cmd().arg(args[0]).arg(&s.cache).args(&args[1..]));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("not ours") && out.stderr.contains("writable by every user"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(std::fs::read(&s.cache).unwrap(), before);
    // inspect shows it, with a warning that the library does not believe it.
    let out = run(s.cmd().arg("inspect").arg(&s.cache));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("does not trust"), "{}", out.stdout);

    // Another user's file (needs root to make one).
    std::fs::set_permissions(&s.cache, std::fs::Permissions::from_mode(0o600)).unwrap();
    if std::os::unix::fs::chown(&s.cache, Some(65534), Some(65534)).is_ok() {
        for args in [&["invalidate", "csv"][..], &["clear"]] {
            let out = run(s.cmd().arg(args[0]).arg(&s.cache).args(&args[1..]));
            assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
            assert!(out.stderr.contains("owned by uid 65534"), "{}", out.stderr);
        }
        assert_eq!(std::fs::read(&s.cache).unwrap(), before);
        std::os::unix::fs::chown(&s.cache, Some(0), Some(0)).unwrap();
    } else {
        println!("note: not root: the other user's file case is skipped");
    }

    // A lock file that is not ours is never waited on.
    let lock = s.cache.with_extension("json.lock");
    std::fs::write(&lock, b"").unwrap();
    std::fs::set_permissions(&lock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let started = std::time::Instant::now();
    let out = run(s
        .cmd()
        .args(["invalidate", "--lock-timeout", "20s"])
        .arg(&s.cache)
        .arg("csv"));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("the lock file is not ours"),
        "{}",
        out.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(std::fs::read(&s.cache).unwrap(), before);
}

/// Python's `prometheus_client` parses the output (skipped with a note when missing).
fn parse_with_prometheus_client(text: &str) -> Option<Value> {
    use std::io::Write as _;
    let have = std::process::Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        println!("note: skipped: python3 with prometheus_client is not installed");
        return None;
    }
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append({"family": family.name, "type": family.type, "name": s.name,
                    "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the OpenMetrics parser refused the output:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn metrics_are_openmetrics_that_prometheus_client_parses() {
    let s = setup(true);
    let mut odd = cache_for(
        Path::new(r#"/srv/we"ird\dir/storage.yaml"#),
        "app::Cfg<\"x\\y\">",
    );
    odd["sections"] = json!({ "spa ce\"q\\b": good_file()["sections"]["csv"].clone() });
    odd["sections"]["spa ce\"q\\b"]["warnings"] = json!(["w1", "w2"]);
    let odd_path = write_json(s.dir.path(), "odd.availability.json", &odd);

    let out = run(s.cmd().arg("metrics").arg(&s.config).arg(&odd_path));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.ends_with("# EOF\n"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("# TYPE storage_availability_section_available gauge")
            && out
                .stdout
                .contains("# HELP storage_availability_section_available "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(r#"config_type="app::Cfg<\"x\\y\">""#),
        "{}",
        out.stdout
    );
    let Some(parsed) = parse_with_prometheus_client(&out.stdout) else {
        return;
    };
    let value = |name: &str, config_type: &str, section: &str| -> f64 {
        parsed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["name"] == name
                    && s["labels"]["config_type"] == config_type
                    && s["labels"].get("section").is_none_or(|v| v == section)
            })
            .unwrap_or_else(|| panic!("no {name} {config_type} {section} in {parsed}"))["value"]
            .as_f64()
            .unwrap()
    };
    let ty = "app::StorageConfig";
    assert_eq!(
        value("storage_availability_section_available", ty, "csv"),
        1.0
    );
    assert_eq!(
        value("storage_availability_section_available", ty, "vector"),
        0.0
    );
    assert_eq!(
        value("storage_availability_section_enabled", ty, "vector"),
        1.0
    );
    assert_eq!(
        value(
            "storage_availability_section_consecutive_failures",
            ty,
            "vector"
        ),
        2.0
    );
    assert_eq!(
        value("storage_availability_section_warnings", ty, "csv"),
        1.0
    );
    assert_eq!(
        value(
            "storage_availability_section_validation_duration_seconds",
            ty,
            "vector"
        ),
        2.0
    );
    let checked = value(
        "storage_availability_section_checked_timestamp_seconds",
        ty,
        "csv",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - checked - 3_600.0).abs() < 60.0, "{checked}");
    assert_eq!(
        value(
            "storage_availability_cache_generated_timestamp_seconds",
            ty,
            ""
        ),
        1_764_064_802.0
    );
    // Escaped label values come back as they were.
    let odd_type = "app::Cfg<\"x\\y\">";
    assert_eq!(
        value(
            "storage_availability_section_warnings",
            odd_type,
            "spa ce\"q\\b"
        ),
        2.0
    );
    let sample = parsed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["labels"]["config_type"] == odd_type)
        .unwrap();
    assert_eq!(
        sample["labels"]["config_path"],
        r#"/srv/we"ird\dir/storage.yaml"#
    );
    assert_eq!(sample["labels"]["section"], "spa ce\"q\\b");

    // --output replaces a file atomically, readable by node_exporter; --json lists samples.
    let prom = s.dir.path().join("storage.prom");
    let out = run(s
        .cmd()
        .arg("metrics")
        .arg(&s.cache)
        .arg("--output")
        .arg(&prom));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&prom).unwrap();
    assert!(written.ends_with("# EOF\n") && written.contains("section=\"csv\""));
    // A cache file that cannot be read: exit 2, the previous file is kept.
    let out = run(s
        .cmd()
        .arg("metrics")
        .arg(&s.cache)
        .arg(s.dir.path().join("gone.availability.json"))
        .arg("-o")
        .arg(&prom));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("the previous file is kept"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read_to_string(&prom).unwrap(), written);
    let out = run(s.cmd().args(["metrics", "--json"]).arg(&s.cache));
    let samples: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(samples.as_array().unwrap().iter().any(|s| {
        s["name"] == "storage_availability_section_available" && s["labels"]["section"] == "csv"
    }));
}

#[test]
fn a_config_written_in_json_is_a_config_path_too() {
    let s = setup(false);
    let config = write(
        s.config.parent().unwrap(),
        "storage.json",
        r#"{"csv": {"base_dir": "data"}}"#,
    );
    let cache = write_json(
        s.config.parent().unwrap(),
        "storage.00c0ffee.availability.json",
        &cache_for(&config, "app::StorageConfig"),
    );
    let out = run(s.cmd().args(["inspect", "--json"]).arg(&config));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(printed["file"], json!(cache.display().to_string()));
}

#[test]
fn every_command_has_help_that_explains_it() {
    for (command, expected) in [
        ("inspect", "--max-age"),
        ("inspect", "--retry-failed-after"),
        ("invalidate", "--lock-timeout"),
        ("invalidate", "SECTION"),
        ("clear", "--lock-timeout"),
        ("metrics", "--output"),
        ("check", "--config-type"),
        ("schema", "--json"),
    ] {
        let out = run(availability().args([command, "--help"]));
        assert_eq!(out.code, 0, "{command}");
        assert!(
            out.stdout.contains(expected)
                && out.stdout.contains("--json")
                && out.stdout.contains("Exit status:")
                && out.stdout.contains("config file"),
            "{command} --help lacks {expected}:\n{}",
            out.stdout
        );
    }
}
