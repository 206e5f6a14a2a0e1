//! The checked-in JSON Schema: fresh, and it accepts exactly the files the types write,
//! checked with an independent validator (the `jsonschema` crate).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use storage_availability_schema::{
    CacheFile, Metadata, SCHEMA_VERSION, SectionHash, SectionRecord, Timestamp, cache_file_schema,
    schema_for_sections,
};

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("availability-cache.schema.json")
}

/// Regenerates the schema; with `UPDATE_SCHEMA` set, writes it.
#[test]
fn checked_in_schema_is_fresh() {
    let fresh = serde_json::to_string_pretty(&cache_file_schema()).unwrap() + "\n";
    let path = schema_path();
    let mut checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    if std::env::var_os("UPDATE_SCHEMA").is_some() && checked_in != fresh {
        // Through a rename, so the other tests never read a half-written file.
        let temp = path.with_extension("json.tmp");
        std::fs::write(&temp, &fresh).unwrap();
        std::fs::rename(&temp, &path).unwrap();
        checked_in = fresh.clone();
    }
    assert!(
        checked_in == fresh,
        "{} is stale or missing; regenerate it with:\n\n    UPDATE_SCHEMA=1 cargo test -p storage-availability-schema\n",
        path.display()
    );
}

fn checked_in_schema() -> Value {
    let text = std::fs::read_to_string(schema_path()).expect("read the checked-in schema");
    serde_json::from_str(&text).expect("the checked-in schema is JSON")
}

fn validator(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("the schema compiles")
}

/// The instance paths of every violation, sorted.
fn violations(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = validator(schema);
    let mut paths: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| e.instance_path().as_str().to_owned())
        .collect();
    paths.sort();
    paths.dedup();
    paths
}

fn hash(byte: char) -> SectionHash {
    SectionHash::new(byte.to_string().repeat(64)).unwrap()
}

fn at(secs: u64, micros: u64) -> Timestamp {
    Timestamp(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros))
}

fn sample() -> CacheFile {
    let passed = SectionRecord {
        section_hash: hash('a'),
        enabled: true,
        validation_passed: true,
        last_error: None,
        errors: vec![],
        warnings: vec!["directory is almost full".into()],
        checked_at: at(1_764_064_800, 123_456),
        duration_ms: 0.8,
        consecutive_failures: 0,
    };
    let failed = SectionRecord {
        section_hash: hash('b'),
        enabled: false,
        validation_passed: false,
        last_error: Some("connection refused".into()),
        errors: vec!["connection refused".into()],
        warnings: vec![],
        checked_at: at(1_764_064_801, 0),
        duration_ms: 2000.0,
        consecutive_failures: 3,
    };
    CacheFile {
        schema_version: SCHEMA_VERSION.into(),
        metadata: Metadata {
            generator: "storage-availability 0.1.0".into(),
            generated_at: at(1_764_064_802, 5),
            config_type: "app::StorageConfig".into(),
            config_path: Some("/srv/app/config/storage.yaml".into()),
            config_mtime: Some(1_764_000_000.5),
            platform: "linux-x86_64".into(),
        },
        sections: BTreeMap::from([("csv".into(), passed), ("vector".into(), failed)]),
    }
}

fn sample_json() -> Value {
    serde_json::to_value(sample()).unwrap()
}

#[test]
fn files_written_by_the_types_are_valid() {
    let schema = checked_in_schema();
    let value = sample_json();
    assert_eq!(violations(&schema, &value), Vec::<String>::new());
    // And they read back unchanged.
    let back: CacheFile = serde_json::from_value(value).unwrap();
    assert_eq!(back, sample());
}

#[test]
fn minimal_files_are_valid() {
    let schema = checked_in_schema();
    let mut file = sample();
    file.sections.clear();
    file.metadata.config_path = None;
    file.metadata.config_mtime = None;
    let value = serde_json::to_value(&file).unwrap();
    assert_eq!(value["metadata"]["config_path"], Value::Null);
    assert_eq!(violations(&schema, &value), Vec::<String>::new());

    // Fields with defaults may be left out.
    let mut value = sample_json();
    for key in ["errors", "warnings", "consecutive_failures"] {
        value["sections"]["csv"]
            .as_object_mut()
            .unwrap()
            .remove(key);
    }
    assert_eq!(violations(&schema, &value), Vec::<String>::new());
    serde_json::from_value::<CacheFile>(value).unwrap();
}

#[test]
fn a_newer_minor_version_with_extra_fields_is_valid() {
    let schema = checked_in_schema();
    let mut value = sample_json();
    value["schema_version"] = json!("1.7");
    value["added_in_1_7"] = json!({ "anything": [1, 2, 3] });
    value["metadata"]["hostname"] = json!("build-42");
    value["sections"]["csv"]["retry_at"] = json!("2025-11-25T10:05:00Z");
    assert_eq!(violations(&schema, &value), Vec::<String>::new());
    // The types read it too, ignoring what they do not know.
    let file: CacheFile = serde_json::from_value(value).unwrap();
    assert_eq!(file.sections, sample().sections);
    storage_availability_schema::is_compatible(&file.schema_version).unwrap();
}

/// Applies `break_it` to a good file and returns the violations' instance paths.
fn broken(break_it: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut value = sample_json();
    break_it(&mut value);
    // One acceptance rule: whatever the schema rejects, the reader rejects.
    let bytes = serde_json::to_vec(&value).unwrap();
    assert!(
        storage_availability_schema::parse_cache_file(&bytes).is_err(),
        "the acceptance rule accepted {value:#}"
    );
    violations(&checked_in_schema(), &value)
}

/// Like [`broken`], and checks that the types refuse the file as well.
fn broken_for_serde_too(break_it: impl FnOnce(&mut Value)) -> Vec<String> {
    let mut value = sample_json();
    break_it(&mut value);
    assert!(
        serde_json::from_value::<CacheFile>(value.clone()).is_err(),
        "serde accepted {value:#}"
    );
    violations(&checked_in_schema(), &value)
}

#[test]
fn truncated_hash_is_rejected() {
    let paths =
        broken_for_serde_too(|v| v["sections"]["csv"]["section_hash"] = json!("a".repeat(63)));
    assert_eq!(paths, ["/sections/csv/section_hash"]);
}

#[test]
fn uppercase_hash_is_rejected() {
    let paths =
        broken_for_serde_too(|v| v["sections"]["csv"]["section_hash"] = json!("A".repeat(64)));
    assert_eq!(paths, ["/sections/csv/section_hash"]);
}

#[test]
fn non_utc_timestamp_is_rejected() {
    for ts in [
        "2025-11-25T11:00:00+01:00",
        "2025-11-25T10:00:00+00:00",
        "2025-11-25T10:00:00",
    ] {
        let paths = broken_for_serde_too(|v| v["metadata"]["generated_at"] = json!(ts));
        assert_eq!(paths, ["/metadata/generated_at"], "{ts}");
    }
}

#[test]
fn impossible_date_is_rejected_by_format() {
    // Matches the pattern; only `format: date-time` catches it.
    let paths = broken_for_serde_too(|v| {
        v["sections"]["vector"]["checked_at"] = json!("2025-02-30T10:00:00Z")
    });
    assert_eq!(paths, ["/sections/vector/checked_at"]);
}

#[test]
fn missing_fields_are_rejected() {
    assert_eq!(
        broken_for_serde_too(|v| {
            v["sections"]["csv"]
                .as_object_mut()
                .unwrap()
                .remove("enabled");
        }),
        ["/sections/csv"]
    );
    assert_eq!(
        broken_for_serde_too(|v| {
            v.as_object_mut().unwrap().remove("metadata");
        }),
        [""]
    );
    assert_eq!(
        broken_for_serde_too(|v| {
            v["metadata"]
                .as_object_mut()
                .unwrap()
                .remove("generated_at");
        }),
        ["/metadata"]
    );
}

#[test]
fn wrong_types_are_rejected() {
    assert_eq!(
        broken_for_serde_too(|v| v["sections"]["csv"]["enabled"] = json!("yes")),
        ["/sections/csv/enabled"]
    );
    assert_eq!(
        broken_for_serde_too(|v| v["sections"]["vector"]["consecutive_failures"] = json!(1.5)),
        ["/sections/vector/consecutive_failures"]
    );
    assert_eq!(
        broken(|v| v["sections"]["vector"]["errors"] = json!("connection refused")),
        ["/sections/vector/errors"]
    );
    assert_eq!(
        broken_for_serde_too(|v| v["sections"] = json!([])),
        ["/sections"]
    );
    assert_eq!(
        broken(|v| v["schema_version"] = json!(1.0)),
        ["/schema_version"]
    );
    assert_eq!(
        broken(|v| v["schema_version"] = json!("1")),
        ["/schema_version"]
    );
}

#[test]
fn negative_numbers_are_rejected() {
    assert_eq!(
        broken(|v| v["sections"]["csv"]["duration_ms"] = json!(-0.5)),
        ["/sections/csv/duration_ms"]
    );
    assert_eq!(
        broken_for_serde_too(|v| v["sections"]["vector"]["consecutive_failures"] = json!(-1)),
        ["/sections/vector/consecutive_failures"]
    );
}

#[test]
fn the_acceptance_rule_rejects_what_serde_alone_would_read() {
    // serde's derived types alone read these; the schema and `parse_cache_file` do not.
    for (what, break_it, pointer) in [
        (
            "negative duration_ms",
            (|v: &mut Value| v["sections"]["csv"]["duration_ms"] = json!(-1.0)) as fn(&mut Value),
            "/sections/csv/duration_ms",
        ),
        (
            "metadata as an array",
            |v: &mut Value| {
                let m = &v["metadata"];
                let array = json!([
                    m["generator"],
                    m["generated_at"],
                    m["config_type"],
                    m["config_path"],
                    m["config_mtime"],
                    m["platform"]
                ]);
                v["metadata"] = array;
            },
            "/metadata",
        ),
        (
            "a record as an array",
            |v: &mut Value| {
                let r = v["sections"]["csv"].clone();
                v["sections"]["csv"] = json!([
                    r["section_hash"],
                    r["enabled"],
                    r["validation_passed"],
                    r["last_error"],
                    r["errors"],
                    r["warnings"],
                    r["checked_at"],
                    r["duration_ms"],
                    r["consecutive_failures"]
                ]);
            },
            "/sections/csv",
        ),
        (
            "a leap second at 10:00",
            |v: &mut Value| v["sections"]["csv"]["checked_at"] = json!("2026-11-25T10:00:60Z"),
            "/sections/csv/checked_at",
        ),
    ] {
        assert_eq!(broken(break_it), [pointer], "{what}");
    }
}

#[test]
fn per_config_schema_rejects_unknown_sections() {
    let schema =
        serde_json::to_value(schema_for_sections(&["csv", "vector", "key_value"])).unwrap();
    // Exactly the known sections, or only some of them: valid.
    assert_eq!(violations(&schema, &sample_json()), Vec::<String>::new());
    let mut partial = sample_json();
    partial["sections"]
        .as_object_mut()
        .unwrap()
        .remove("vector");
    assert_eq!(violations(&schema, &partial), Vec::<String>::new());
    // An unknown section: invalid, at `sections`.
    let mut value = sample_json();
    value["sections"]["graph"] = value["sections"]["csv"].clone();
    assert_eq!(violations(&schema, &value), ["/sections"]);
    // The generic schema accepts it.
    assert_eq!(
        violations(&checked_in_schema(), &value),
        Vec::<String>::new()
    );
    // Records of known sections are still checked.
    let mut value = sample_json();
    value["sections"]["csv"]["section_hash"] = json!("nope");
    assert_eq!(violations(&schema, &value), ["/sections/csv/section_hash"]);
}

#[test]
fn per_config_schema_still_ignores_unknown_fields_elsewhere() {
    let schema = serde_json::to_value(schema_for_sections(&["csv", "vector"])).unwrap();
    let mut value = sample_json();
    value["schema_version"] = json!("1.3");
    value["sections"]["csv"]["new_field"] = json!(true);
    value["new_top_level"] = json!(null);
    assert_eq!(violations(&schema, &value), Vec::<String>::new());
}

#[test]
fn the_schema_is_valid_draft_2020_12() {
    let schema = checked_in_schema();
    assert_eq!(
        schema["$schema"],
        json!("https://json-schema.org/draft/2020-12/schema")
    );
    jsonschema::meta::validate(&schema).unwrap();
    jsonschema::meta::validate(&serde_json::to_value(schema_for_sections(&["a"])).unwrap())
        .unwrap();
}

/// The example in FORMAT.md (linked into this crate, so packaged with it) is a valid file.
#[test]
fn format_md_example_is_valid() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("FORMAT.md");
    let text = std::fs::read_to_string(&path).expect("read FORMAT.md");
    let example = text
        .split("## Example")
        .nth(1)
        .and_then(|rest| rest.split("```json\n").nth(1))
        .and_then(|rest| rest.split("\n```").next())
        .expect("FORMAT.md has a ```json block under ## Example");
    let value: Value = serde_json::from_str(example).unwrap();
    assert_eq!(
        violations(&checked_in_schema(), &value),
        Vec::<String>::new()
    );
    let schema = serde_json::to_value(schema_for_sections(&["csv", "vector"])).unwrap();
    assert_eq!(violations(&schema, &value), Vec::<String>::new());
    let file: CacheFile = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(file.schema_version, SCHEMA_VERSION);
    assert!(file.sections["csv"].validation_passed);
    assert!(!file.sections["vector"].validation_passed);
    // Written back by the types, it is the same JSON.
    assert_eq!(serde_json::to_value(&file).unwrap(), value);
}
