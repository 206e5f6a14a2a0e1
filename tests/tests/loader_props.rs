//! Property tests of the cache file loader, `Loaded::from_bytes` (issue 5): it never panics,
//! whatever the bytes (arbitrary, JSON-like, or a valid file with flipped, truncated,
//! inserted or deleted bytes), and a valid file always loads as `Loaded::File`, equal to
//! what was written. `fuzz/fuzz_targets/loader.rs` runs the same loader under libFuzzer.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use storage_availability::Loaded;
use storage_availability::schema::{
    CacheFile, Metadata, SectionHash, SectionRecord, Timestamp, is_compatible,
};

/// Cases per property, set explicitly so the normal `cargo test` run tries thousands.
const ARBITRARY_CASES: u32 = 4096;
const JSONISH_CASES: u32 = 4096;
const VALID_CASES: u32 = 2048;
const MUTATED_CASES: u32 = 4096;

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

/// The loader's verdict must agree with a plain typed parse plus the version rule.
fn check_loader(bytes: &[u8]) {
    let loaded = Loaded::from_bytes(bytes);
    let parses = serde_json::from_slice::<CacheFile>(bytes)
        .is_ok_and(|file| is_compatible(&file.schema_version).is_ok());
    assert_eq!(
        matches!(loaded, Loaded::File(_)),
        parses,
        "{loaded:?} for {:?}",
        String::from_utf8_lossy(bytes)
    );
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
        match Loaded::from_bytes(&bytes) {
            Loaded::File(read) => assert_same(&read, &file),
            other => panic!("a valid file loaded as {other:?}"),
        }
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

#[test]
fn the_case_counts_are_what_the_docs_report() {
    println!(
        "loader_props: {} proptest cases per run ({ARBITRARY_CASES} arbitrary, {JSONISH_CASES} JSON-like, {VALID_CASES} valid, {MUTATED_CASES} mutated)",
        ARBITRARY_CASES + JSONISH_CASES + VALID_CASES + MUTATED_CASES
    );
}
