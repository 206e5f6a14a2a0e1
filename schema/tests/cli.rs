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
    assert_eq!(printed, good_file());
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
