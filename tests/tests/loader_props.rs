//! Property tests of the cache file loader, `StoreRead::from_bytes` (issue 5): it never panics,
//! whatever the bytes (arbitrary, JSON-like, or a valid file with flipped, truncated,
//! inserted or deleted bytes), and a valid file always loads as `StoreRead::File`, equal to
//! what was written. `fuzz/fuzz_targets/loader.rs` runs the same loader under libFuzzer.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use serde_json::{Value, json};
use storage_availability::StoreRead;
use storage_availability::schema::{
    CacheFile, Metadata, SectionHash, SectionRecord, Timestamp, parse_cache_file,
};

/// Cases per property, set explicitly so the normal `cargo test` run tries thousands.
const ARBITRARY_CASES: u32 = 4096;
const JSONISH_CASES: u32 = 4096;
const VALID_CASES: u32 = 2048;
const MUTATED_CASES: u32 = 4096;
const EDITED_CASES: u32 = 2048;

/// `cases` cases; a failing input is saved next to this file (`loader_props.regressions`)
/// and replayed first by later runs.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    }
}

/// The checked-in schema, validating formats as `availability check` does.
fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../schema/availability-cache.schema.json"))
                .unwrap();
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap()
    })
}

/// The loader's verdict must be the schema crate's one acceptance rule, and anything it
/// accepts the checked-in schema must accept too (whatever the schema rejects, the loader
/// rejects). Returns whether the loader accepted.
fn check_loader(bytes: &[u8]) -> bool {
    let loaded = StoreRead::from_bytes(bytes);
    let accepted = matches!(loaded, StoreRead::File(_));
    assert_eq!(
        accepted,
        parse_cache_file(bytes).is_ok(),
        "{loaded:?} for {:?}",
        String::from_utf8_lossy(bytes)
    );
    if accepted {
        let value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        let errors: Vec<String> = schema()
            .iter_errors(&value)
            .map(|e| format!("{}: {e}", e.instance_path().as_str()))
            .collect();
        assert!(
            errors.is_empty(),
            "the loader accepted what the schema rejects: {errors:?} in {value:#}"
        );
    }
    accepted
}

/// Timestamps the format can hold, at the microsecond precision it stores.
fn timestamp() -> impl Strategy<Value = Timestamp> {
    // 1970-01-01 .. 9999-12-31.
    (0u64..253_402_300_799_000_000)
        .prop_map(|us| Timestamp(SystemTime::UNIX_EPOCH + Duration::from_micros(us)))
}

fn section_hash() -> impl Strategy<Value = SectionHash> {
    "[0-9a-f]{64}".prop_map(|hex| SectionHash::new(hex).unwrap())
}

fn record() -> impl Strategy<Value = SectionRecord> {
    (
        section_hash(),
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(any::<String>()),
        proptest::collection::vec(any::<String>(), 0..3),
        proptest::collection::vec(any::<String>(), 0..3),
        timestamp(),
        0.0f64..1e12,
        any::<u32>(),
    )
        .prop_map(
            |(section_hash, enabled, passed, last_error, errors, warnings, at, ms, failures)| {
                SectionRecord {
                    section_hash,
                    enabled,
                    validation_passed: passed,
                    last_error,
                    errors,
                    warnings,
                    checked_at: at,
                    duration_ms: ms,
                    consecutive_failures: failures,
                }
            },
        )
}

fn cache_file() -> impl Strategy<Value = CacheFile> {
    (
        0u32..1000,
        any::<String>(),
        timestamp(),
        any::<String>(),
        proptest::option::of(any::<String>()),
        proptest::option::of(0.0f64..4e9),
        any::<String>(),
        proptest::collection::btree_map("[a-z][a-z0-9_]{0,12}", record(), 0..5),
    )
        .prop_map(
            |(
                minor,
                generator,
                generated_at,
                config_type,
                config_path,
                mtime,
                platform,
                sections,
            )| {
                CacheFile {
                    schema_version: format!("1.{minor}"),
                    metadata: Metadata {
                        generator,
                        generated_at,
                        config_type,
                        config_path,
                        config_mtime: mtime,
                        platform,
                    },
                    sections,
                }
            },
        )
}

fn bytes_of(file: &CacheFile, pretty: bool) -> Vec<u8> {
    if pretty {
        serde_json::to_vec_pretty(file).unwrap()
    } else {
        serde_json::to_vec(file).unwrap()
    }
}

/// Floats are parsed to within an ulp (serde_json without `float_roundtrip`).
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= a.abs().max(b.abs()) * 1e-15
}

fn assert_same(read: &CacheFile, written: &CacheFile) {
    assert_eq!(read.schema_version, written.schema_version);
    let (r, w) = (&read.metadata, &written.metadata);
    assert_eq!(
        (
            &r.generator,
            r.generated_at,
            &r.config_type,
            &r.config_path,
            &r.platform
        ),
        (
            &w.generator,
            w.generated_at,
            &w.config_type,
            &w.config_path,
            &w.platform
        )
    );
    match (r.config_mtime, w.config_mtime) {
        (Some(a), Some(b)) => assert!(close(a, b), "{a} != {b}"),
        (a, b) => assert_eq!(a, b),
    }
    let names = |s: &BTreeMap<String, SectionRecord>| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&read.sections), names(&written.sections));
    for (name, w) in &written.sections {
        let r = &read.sections[name];
        assert!(close(r.duration_ms, w.duration_ms), "{name}");
        let mut r = r.clone();
        r.duration_ms = w.duration_ms;
        assert_eq!(&r, w, "{name}");
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Positions are taken modulo the length at the time the mutation applies.
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        3 => (any::<usize>(), proptest::collection::vec(json_byte(), 1..8))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        2 => (any::<usize>(), 1usize..16).prop_map(|(at, len)| Mutation::Delete { at, len }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match *mutation {
        Mutation::Flip { at, mask } => {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] ^= mask;
            }
        }
        Mutation::Truncate { at } => bytes.truncate(pos(at, bytes.len())),
        Mutation::Insert { at, bytes: ref new } => {
            let i = pos(at, bytes.len());
            bytes.splice(i..i, new.iter().copied());
        }
        Mutation::Delete { at, len } => {
            let i = pos(at, bytes.len());
            let end = (i + len).min(bytes.len());
            bytes.drain(i..end);
        }
    }
}

/// Bytes that steer a parser into its interesting corners.
fn json_byte() -> impl Strategy<Value = u8> {
    prop::sample::select(b"{}[]\":,.-+eE0123456789 \n\\u0aftrulsn1.\xff\xc3\x80".to_vec())
}

proptest! {
    #![proptest_config(config(ARBITRARY_CASES))]
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check_loader(&bytes);
    }
}

proptest! {
    #![proptest_config(config(JSONISH_CASES))]
    #[test]
    fn json_like_bytes_never_panic(bytes in proptest::collection::vec(json_byte(), 0..512)) {
        check_loader(&bytes);
    }
}

proptest! {
    #![proptest_config(config(VALID_CASES))]
    #[test]
    fn a_valid_file_always_loads_as_file(file in cache_file(), pretty in any::<bool>()) {
        let bytes = bytes_of(&file, pretty);
        match StoreRead::from_bytes(&bytes) {
            StoreRead::File(read) => assert_same(&read, &file),
            other => panic!("a valid file loaded as {other:?}"),
        }
        assert!(check_loader(&bytes));
    }
}

proptest! {
    #![proptest_config(config(MUTATED_CASES))]
    #[test]
    fn mutated_valid_files_never_panic(
        file in cache_file(),
        pretty in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
    ) {
        let mut bytes = bytes_of(&file, pretty);
        for m in &mutations {
            apply(&mut bytes, m);
        }
        check_loader(&bytes);
    }
}

/// An edit of a document's JSON tree: at the `at`-th node (modulo the node count, in
/// document order), put a value, remove the node, or turn an object into the array of its
/// values (which serde's derived structs alone would read).
#[derive(Debug, Clone)]
enum Edit {
    Set { at: usize, value: Value },
    Remove { at: usize },
    ObjectToArray { at: usize },
}

/// Values that probe the schema's rules: signs, ranges, types, patterns, formats.
fn probe_value() -> impl Strategy<Value = Value> {
    let fixed: Vec<Value> = vec![
        json!(-5.0),
        json!(-0.0),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(1e300),
        json!(4294967295u64),
        json!(4294967296u64),
        json!(null),
        json!(true),
        json!(""),
        json!("AKIA-SECRET"),
        json!([]),
        json!(["a", 1]),
        json!({}),
        json!({"x": 1}),
        json!("1.0"),
        json!("1"),
        json!("2.0"),
        json!("1.0.0"),
        json!("01.7"),
        json!("1.x"),
        json!("2026-11-25T10:00:00Z"),
        json!("2026-11-25T10:00:00.5Z"),
        json!("2026-11-25T10:00:60Z"),
        json!("2026-12-31T23:59:60Z"),
        json!("2026-11-25T10:00:00+00:00"),
        json!("2026-11-25t10:00:00z"),
        json!("2026-02-30T10:00:00Z"),
        json!("1969-12-31T23:59:59Z"),
        json!("0000-01-01T00:00:00Z"),
        json!("9999-12-31T23:59:59.999999999Z"),
        json!("a".repeat(64)),
        json!("A".repeat(64)),
        json!("a".repeat(63)),
    ];
    prop_oneof![
        3 => prop::sample::select(fixed),
        1 => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        1 => any::<i64>().prop_map(|i| json!(i)),
        1 => "[0-9a-fA-F]{62,66}".prop_map(Value::String),
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,3})?Z"
            .prop_map(Value::String),
        1 => "[0-9]{1,3}\\.[0-9]{1,3}".prop_map(Value::String),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => (any::<usize>(), probe_value()).prop_map(|(at, value)| Edit::Set { at, value }),
        2 => any::<usize>().prop_map(|at| Edit::Remove { at }),
        1 => any::<usize>().prop_map(|at| Edit::ObjectToArray { at }),
    ]
}

/// JSON pointers of every node below the root, in document order.
fn pointers(value: &Value, here: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let at = format!("{here}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(at.clone());
                pointers(child, at, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let at = format!("{here}/{i}");
                out.push(at.clone());
                pointers(child, at, out);
            }
        }
        _ => {}
    }
}

fn apply_edit(doc: &mut Value, edit: &Edit) {
    let mut all = vec![String::new()];
    pointers(doc, String::new(), &mut all);
    let pick = |at: usize| all[at % all.len()].clone();
    match edit {
        Edit::Set { at, value } => {
            if let Some(node) = doc.pointer_mut(&pick(*at)) {
                *node = value.clone();
            }
        }
        Edit::Remove { at } => {
            let pointer = pick(*at);
            if let Some((parent, key)) = pointer.rsplit_once('/') {
                let key = key.replace("~1", "/").replace("~0", "~");
                match doc.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&key);
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = key.parse::<usize>()
                            && i < items.len()
                        {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        Edit::ObjectToArray { at } => {
            if let Some(node) = doc.pointer_mut(&pick(*at))
                && let Value::Object(map) = node
            {
                *node = Value::Array(map.values().cloned().collect());
            }
        }
    }
}

proptest! {
    #![proptest_config(config(EDITED_CASES))]
    /// The differential test: generated documents edited at the JSON level (a value of the
    /// wrong type, sign or format, a field removed, an object written as an array); whatever
    /// the loader accepts, the checked-in schema accepts.
    #[test]
    fn whatever_the_loader_accepts_the_schema_accepts(
        file in cache_file(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let mut doc = serde_json::to_value(&file).unwrap();
        for e in &edits {
            apply_edit(&mut doc, e);
        }
        check_loader(&serde_json::to_vec(&doc).unwrap());
    }
}

/// A way to break a document.
type Breaker<'a> = Box<dyn Fn(&mut Value) + 'a>;

/// The rejections the schema makes that serde's types alone would not: each one is
/// rejected by the loader too.
#[test]
fn the_loader_rejects_what_the_schema_rejects() {
    let file = serde_json::to_value(
        cache_file()
            .prop_filter("a section", |f| !f.sections.is_empty())
            .new_tree(&mut proptest::test_runner::TestRunner::deterministic())
            .unwrap()
            .current(),
    )
    .unwrap();
    let name = file["sections"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    let cases: Vec<(&str, Breaker<'_>)> = vec![
        (
            "duration_ms -5.0",
            Box::new(|v| v["sections"][&name]["duration_ms"] = json!(-5.0)),
        ),
        (
            "consecutive_failures -1",
            Box::new(|v| v["sections"][&name]["consecutive_failures"] = json!(-1)),
        ),
        (
            "an uppercase hash",
            Box::new(|v| v["sections"][&name]["section_hash"] = json!("A".repeat(64))),
        ),
        (
            "a timestamp with an offset",
            Box::new(|v| v["sections"][&name]["checked_at"] = json!("2026-11-25T10:00:00+00:00")),
        ),
        (
            "a leap second at 10:00",
            Box::new(|v| v["metadata"]["generated_at"] = json!("2026-11-25T10:00:60Z")),
        ),
        (
            "a record as an array",
            Box::new(|v| {
                let values: Vec<Value> = v["sections"][&name]
                    .as_object()
                    .unwrap()
                    .values()
                    .cloned()
                    .collect();
                v["sections"][&name] = Value::Array(values);
            }),
        ),
        (
            "metadata as an array",
            Box::new(|v| {
                let values: Vec<Value> = v["metadata"]
                    .as_object()
                    .unwrap()
                    .values()
                    .cloned()
                    .collect();
                v["metadata"] = Value::Array(values);
            }),
        ),
        (
            "the whole file as an array",
            Box::new(|v| {
                let values: Vec<Value> = v.as_object().unwrap().values().cloned().collect();
                *v = Value::Array(values);
            }),
        ),
    ];
    for (what, break_it) in cases {
        let mut doc = file.clone();
        break_it(&mut doc);
        assert!(!schema().is_valid(&doc), "{what}: the schema accepts it");
        let bytes = serde_json::to_vec(&doc).unwrap();
        assert!(
            !matches!(StoreRead::from_bytes(&bytes), StoreRead::File(_)),
            "{what}: the loader accepts it"
        );
    }
}

#[test]
fn the_case_counts_are_what_the_docs_report() {
    println!(
        "loader_props: {} proptest cases per run ({ARBITRARY_CASES} arbitrary, {JSONISH_CASES} JSON-like, {VALID_CASES} valid, {MUTATED_CASES} mutated, {EDITED_CASES} edited at the JSON level)",
        ARBITRARY_CASES + JSONISH_CASES + VALID_CASES + MUTATED_CASES + EDITED_CASES
    );
}
