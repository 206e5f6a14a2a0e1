//! Single-flight across processes (issue 5): eight processes started at once on one cache
//! file validate each section exactly once in total and print identical statuses; after a
//! change to one section, exactly that section is revalidated, once.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

const PROCESSES: usize = 8;
const PROBE: &str = env!("CARGO_BIN_EXE_availability-probe");

/// Starts `PROCESSES` helpers at once with these section values and returns their output
/// lines, parsed.
fn race(cache: &Path, log: &Path, values: &[&str]) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(PROBE)
                .arg("open")
                .arg(cache)
                .arg(log)
                .args(values)
                .stdout(Stdio::piped())
                .spawn()
                .expect("start availability-probe")
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{:?}", out.status);
            let text = String::from_utf8(out.stdout).unwrap();
            assert_eq!(text.lines().count(), 1, "{text}");
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

/// Validator calls in the log, by section: `<pid> <section> <value>` lines.
fn logged(log: &Path) -> BTreeMap<String, Vec<String>> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut calls: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (_pid, section, value) = (parts.next(), parts.next().unwrap(), parts.next().unwrap());
        calls
            .entry(section.to_owned())
            .or_default()
            .push(value.to_owned());
    }
    calls
}

fn assert_identical(outputs: &[serde_json::Value]) {
    let pids: std::collections::BTreeSet<u64> =
        outputs.iter().map(|o| o["pid"].as_u64().unwrap()).collect();
    assert_eq!(pids.len(), PROCESSES, "not {PROCESSES} distinct processes");
    for output in outputs {
        assert_eq!(
            output["statuses"], outputs[0]["statuses"],
            "two processes saw different statuses"
        );
    }
}

#[test]
fn processes_racing_on_a_cold_cache_validate_each_section_once() {
    let dir = tempfile::tempdir().unwrap();
    let (cache, log) = (dir.path().join("cache.json"), dir.path().join("calls.log"));
    // A slow csv validator keeps the first process busy while the others start.
    let values = ["csv=sleep:300", "kv=fail:refused", "vector=warn:slow disk"];

    let outputs = race(&cache, &log, &values);
    let calls = logged(&log);
    assert_eq!(calls["csv"], ["sleep:300"], "{calls:?}");
    assert_eq!(calls["key_value"], ["fail:refused"], "{calls:?}");
    assert_eq!(calls["vector"], ["warn:slow disk"], "{calls:?}");
    assert_eq!(calls.len(), 3);
    assert_identical(&outputs);
    let statuses = &outputs[0]["statuses"];
    assert_eq!(statuses["csv"]["validation_passed"], true);
    assert_eq!(statuses["key_value"]["last_error"], "refused");
    assert_eq!(statuses["vector"]["warnings"][0], "slow disk");
    let validations: u64 = outputs
        .iter()
        .map(|o| o["validations"].as_u64().unwrap())
        .sum();
    let saves: u64 = outputs.iter().map(|o| o["saves"].as_u64().unwrap()).sum();
    assert_eq!((validations, saves), (3, 1));
    let cold = statuses.clone();

    // One section changed: exactly it is revalidated, once, by one of the eight.
    std::fs::remove_file(&log).unwrap();
    let changed = ["csv=sleep:300", "kv=ok now", "vector=warn:slow disk"];
    let outputs = race(&cache, &log, &changed);
    let calls = logged(&log);
    assert_eq!(
        calls,
        BTreeMap::from([("key_value".to_owned(), vec!["ok now".to_owned()])])
    );
    assert_identical(&outputs);
    let statuses = &outputs[0]["statuses"];
    assert_eq!(statuses["key_value"]["validation_passed"], true);
    assert_eq!(statuses["key_value"]["last_error"], serde_json::Value::Null);
    assert_eq!(statuses["csv"], cold["csv"], "csv was not reused");
    assert_eq!(statuses["vector"], cold["vector"], "vector was not reused");
    let sources: Vec<&serde_json::Value> = outputs
        .iter()
        .map(|o| &o["sources"]["key_value"])
        .filter(|s| *s == "validated")
        .collect();
    assert_eq!(sources.len(), 1, "{outputs:?}");
    for output in &outputs {
        assert_eq!(output["sources"]["csv"], "cache");
    }
    println!(
        "{PROCESSES} processes raced twice: 3 validations on the cold start, 1 after the change"
    );
}
