//! What `#[derive(StorageAvailability)]` generates, checked at run time.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use storage_availability::{
    KeyContext, Outcome, Scope, SectionSpec, StorageAvailability, StorageKind, section_key,
    section_key_with,
};

static CSV_CALLS: AtomicUsize = AtomicUsize::new(0);
static VECTOR_CALLS: AtomicUsize = AtomicUsize::new(0);
static KV_CALLS: AtomicUsize = AtomicUsize::new(0);

#[derive(Serialize, StorageAvailability)]
struct StorageConfig {
    #[storage(validate = check_csv)]
    csv: String,
    #[storage(validate = check_vector, timeout_ms = 2000, scope = "shared")]
    vector: Option<String>,
    #[storage(validate = check_kv, name = "key_value", version = 2, scope = "host")]
    kv: Vec<u32>,
    app_name: String,
}

#[expect(clippy::ptr_arg, reason = "a validator takes &FieldType")]
fn check_csv(dir: &String) -> Outcome {
    CSV_CALLS.fetch_add(1, Ordering::SeqCst);
    if dir.is_empty() {
        Outcome::failed("empty csv dir")
    } else {
        Outcome::ok()
    }
}

fn check_vector(_: &String) -> Result<(), String> {
    VECTOR_CALLS.fetch_add(1, Ordering::SeqCst);
    Err("vector provider unreachable".to_owned())
}

#[expect(clippy::ptr_arg, reason = "a validator takes &FieldType")]
fn check_kv(items: &Vec<u32>) -> Result<(), std::io::Error> {
    KV_CALLS.fetch_add(1, Ordering::SeqCst);
    if items.is_empty() {
        Err(std::io::Error::other("no kv items"))
    } else {
        Ok(())
    }
}

fn config() -> StorageConfig {
    StorageConfig {
        csv: "data/csv".to_owned(),
        vector: Some("http://vector".to_owned()),
        kv: vec![1, 2, 3],
        app_name: "demo".to_owned(),
    }
}

#[test]
fn all_is_in_declaration_order_and_index_matches() {
    assert_eq!(
        StorageConfigKind::ALL,
        &[
            StorageConfigKind::Csv,
            StorageConfigKind::Vector,
            StorageConfigKind::Kv
        ]
    );
    for (i, kind) in StorageConfigKind::ALL.iter().enumerate() {
        assert_eq!(kind.index(), i);
        assert_eq!(StorageConfigKind::ALL[kind.index()], *kind);
    }
}

#[test]
fn names_round_trip() {
    let names: Vec<&str> = StorageConfigKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(names, ["csv", "vector", "key_value"]);
    for kind in StorageConfigKind::ALL {
        assert_eq!(StorageConfigKind::from_name(kind.name()), Some(*kind));
        assert_eq!(kind.name().parse::<StorageConfigKind>(), Ok(*kind));
        assert_eq!(kind.to_string(), kind.name());
    }
    // The field name is not a name when `name = "..."` replaces it.
    assert_eq!(StorageConfigKind::from_name("kv"), None);
    assert_eq!(StorageConfigKind::from_name("CSV"), None);
    assert_eq!(StorageConfigKind::from_name(""), None);
}

#[test]
fn from_str_error_names_the_input_and_the_choices() {
    let err = "redis".parse::<StorageConfigKind>().unwrap_err();
    assert_eq!(err.name(), "redis");
    assert_eq!(
        err.to_string(),
        "unknown storage section `redis`; expected one of `csv`, `vector`, `key_value`"
    );
}

#[test]
fn kind_is_ordered_hashable_and_debug() {
    assert!(StorageConfigKind::Csv < StorageConfigKind::Vector);
    assert!(StorageConfigKind::Vector < StorageConfigKind::Kv);
    let mut sorted = vec![
        StorageConfigKind::Kv,
        StorageConfigKind::Csv,
        StorageConfigKind::Vector,
    ];
    sorted.sort();
    assert_eq!(sorted, StorageConfigKind::ALL);
    let set: HashSet<_> = StorageConfigKind::ALL.iter().copied().collect();
    assert_eq!(set.len(), 3);
    assert_eq!(format!("{:?}", StorageConfigKind::Kv), "Kv");
}

/// The validator counters are shared by the tests that call validators; they run one at a
/// time under this lock so the counts are exact.
static COUNTERS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn counts() -> [usize; 3] {
    [
        CSV_CALLS.load(Ordering::SeqCst),
        VECTOR_CALLS.load(Ordering::SeqCst),
        KV_CALLS.load(Ordering::SeqCst),
    ]
}

#[test]
fn validate_dispatches_to_the_sections_validator() {
    let _guard = COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = config();
    let [csv, vector, kv] = counts();

    assert!(cfg.validate(StorageConfigKind::Csv).is_ok());
    assert_eq!(counts(), [csv + 1, vector, kv]);

    let outcome = cfg.validate(StorageConfigKind::Vector);
    assert_eq!(outcome.last_error(), Some("vector provider unreachable"));
    assert_eq!(counts(), [csv + 1, vector + 1, kv]);

    assert!(cfg.validate(StorageConfigKind::Kv).is_ok());
    assert_eq!(counts(), [csv + 1, vector + 1, kv + 1]);

    let empty = StorageConfig {
        kv: Vec::new(),
        csv: String::new(),
        ..config()
    };
    assert_eq!(
        empty.validate(StorageConfigKind::Kv).last_error(),
        Some("no kv items")
    );
    assert_eq!(
        empty.validate(StorageConfigKind::Csv).last_error(),
        Some("empty csv dir")
    );
    assert_eq!(counts(), [csv + 2, vector + 1, kv + 2]);
}

#[test]
fn unconfigured_option_section_is_not_validated() {
    let _guard = COUNTERS.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = StorageConfig {
        vector: None,
        ..config()
    };
    assert!(!cfg.is_configured(StorageConfigKind::Vector));
    assert!(cfg.is_configured(StorageConfigKind::Csv));
    assert!(cfg.is_configured(StorageConfigKind::Kv));
    assert!(config().is_configured(StorageConfigKind::Vector));

    let before = counts();
    let outcome = cfg.validate(StorageConfigKind::Vector);
    assert!(!outcome.is_ok());
    assert_eq!(
        outcome.last_error(),
        Some("storage section `vector` is not configured")
    );
    assert_eq!(counts(), before, "no validator runs for a `None` section");
}

#[test]
fn timeout_version_and_scope_come_from_the_attributes() {
    assert_eq!(StorageConfig::timeout(StorageConfigKind::Csv), None);
    assert_eq!(
        StorageConfig::timeout(StorageConfigKind::Vector),
        Some(Duration::from_millis(2000))
    );
    assert_eq!(StorageConfig::timeout(StorageConfigKind::Kv), None);
    assert_eq!(StorageConfig::version(StorageConfigKind::Csv), 1);
    assert_eq!(StorageConfig::version(StorageConfigKind::Vector), 1);
    assert_eq!(StorageConfig::version(StorageConfigKind::Kv), 2);
    assert_eq!(StorageConfig::scope(StorageConfigKind::Csv), Scope::Host);
    assert_eq!(
        StorageConfig::scope(StorageConfigKind::Vector),
        Scope::Shared
    );
    assert_eq!(StorageConfig::scope(StorageConfigKind::Kv), Scope::Host);
    assert_eq!(StorageConfig::app_version(), env!("CARGO_PKG_VERSION"));
}

#[test]
fn section_key_matches_the_documented_computation() {
    let cfg = config();
    let context = KeyContext::new(env!("CARGO_PKG_VERSION"));
    let ty = concat!(module_path!(), "::StorageConfig");
    assert_eq!(StorageConfig::config_type(), ty);
    assert_eq!(StorageConfig::config_type(), "derive::StorageConfig");
    assert_eq!(
        cfg.section_key(StorageConfigKind::Csv),
        section_key(&SectionSpec::new(ty, "csv"), &context, Some(&cfg.csv)).unwrap()
    );
    assert_eq!(
        cfg.section_key(StorageConfigKind::Kv),
        section_key(
            &SectionSpec::new(ty, "key_value").version(2),
            &context,
            Some(&cfg.kv)
        )
        .unwrap()
    );
    assert_eq!(
        cfg.section_key(StorageConfigKind::Vector),
        storage_availability::section_key_with_scope(
            &SectionSpec::new(ty, "vector"),
            Scope::Shared,
            &context,
            cfg.vector.as_ref()
        )
        .unwrap()
    );
    // `None` is "not configured", and differs from any configured value.
    let none = StorageConfig {
        vector: None,
        ..config()
    };
    assert_eq!(
        none.section_key(StorageConfigKind::Vector),
        section_key(
            &SectionSpec::new(ty, "vector").scope(Scope::Shared),
            &context,
            None::<&String>
        )
        .unwrap()
    );
    assert_ne!(
        none.section_key(StorageConfigKind::Vector),
        cfg.section_key(StorageConfigKind::Vector)
    );
    // The context's application version is the builder's; the default is the crate's.
    let other = KeyContext::new("9.9.9");
    assert_ne!(
        cfg.section_key_in(StorageConfigKind::Csv, &other).unwrap(),
        cfg.section_key(StorageConfigKind::Csv)
    );
}

#[test]
fn fields_without_storage_are_not_hashed() {
    let a = config();
    let b = StorageConfig {
        app_name: "other".to_owned(),
        ..config()
    };
    for kind in StorageConfigKind::ALL {
        assert_eq!(a.section_key(*kind), b.section_key(*kind));
    }
}

/// A config without `Option` sections, a named kind enum, every default.
#[derive(Serialize, StorageAvailability)]
#[availability(kind = "Section")]
struct Plain {
    #[storage(validate = always_ok)]
    s3_bucket: u8,
}

fn always_ok(_: &u8) -> Outcome {
    Outcome::ok()
}

#[test]
fn kind_name_can_be_set_and_defaults_apply() {
    assert_eq!(Section::ALL, &[Section::S3Bucket]);
    assert_eq!(Section::S3Bucket.name(), "s3_bucket");
    let plain = Plain { s3_bucket: 7 };
    assert!(plain.is_configured(Section::S3Bucket));
    assert!(plain.validate(Section::S3Bucket).is_ok());
    assert_eq!(Plain::timeout(Section::S3Bucket), None);
    assert_eq!(Plain::version(Section::S3Bucket), 1);
    assert_eq!(Plain::scope(Section::S3Bucket), Scope::Host);
}

/// The key-related attributes: `key_with`, `max_age_secs`, `cache = false`, `cwd = false`.
#[derive(Serialize, StorageAvailability)]
struct Keyed {
    #[storage(validate = check_db, key_with = password_digest)]
    db: Db,
    #[storage(validate = check_db, key_with = password_digest, max_age_secs = 60)]
    replica: Option<Db>,
    #[storage(validate = always_ok, cache = false, cwd = false)]
    quick: u8,
    #[storage(validate = always_ok, cache = true)]
    cached: u8,
}

#[derive(Serialize)]
struct Db {
    url: String,
    #[serde(skip_serializing)]
    password: String,
}

fn check_db(_: &Db) -> Outcome {
    Outcome::ok()
}

/// Borrows from the section: the result may be a reference.
fn password_digest(db: &Db) -> &str {
    &db.password
}

#[test]
fn key_attributes_reach_the_trait() {
    let db = || Db {
        url: "postgres://db".into(),
        password: "one".into(),
    };
    let keyed = Keyed {
        db: db(),
        replica: None,
        quick: 1,
        cached: 2,
    };
    assert_eq!(KeyedKind::ALL.len(), 4);
    assert_eq!(Keyed::max_age(KeyedKind::Db), None);
    assert_eq!(
        Keyed::max_age(KeyedKind::Replica),
        Some(Duration::from_secs(60))
    );
    assert!(Keyed::reused_across_starts(KeyedKind::Db));
    assert!(!Keyed::reused_across_starts(KeyedKind::Quick));
    assert!(Keyed::reused_across_starts(KeyedKind::Cached));

    let context = KeyContext::new("1.0.0");
    let ty = Keyed::config_type();
    assert_eq!(
        keyed.section_key_in(KeyedKind::Db, &context).unwrap(),
        section_key_with(
            &SectionSpec::new(ty, "db"),
            &context,
            Some(&keyed.db),
            Some(&"one")
        )
        .unwrap()
    );
    // A password serde does not show is in the key through `key_with`.
    let other = Keyed {
        db: Db {
            password: "two".into(),
            ..db()
        },
        ..keyed
    };
    assert_ne!(
        other.section_key_in(KeyedKind::Db, &context).unwrap(),
        keyed_key(&context)
    );
    // `cwd = false`: another working directory, the same key.
    let elsewhere = context.clone().with_working_dir("/somewhere/else");
    assert_eq!(
        other.section_key_in(KeyedKind::Quick, &context).unwrap(),
        other.section_key_in(KeyedKind::Quick, &elsewhere).unwrap()
    );
    assert_ne!(
        other.section_key_in(KeyedKind::Cached, &context).unwrap(),
        other.section_key_in(KeyedKind::Cached, &elsewhere).unwrap()
    );
}

fn keyed_key(context: &KeyContext) -> storage_availability::SectionKey {
    section_key_with(
        &SectionSpec::new(Keyed::config_type(), "db"),
        context,
        Some(&Db {
            url: "postgres://db".into(),
            password: "one".into(),
        }),
        Some(&"one"),
    )
    .unwrap()
}

/// The kind enum's inherent `ALL` and `name()` give what the trait gives, without importing
/// `StorageKind`; a struct named `Storage` (kind enum `StorageKind`) works with the README's
/// imports, through a real cache.
mod inherent_kind_items {
    use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};

    #[derive(serde::Serialize, StorageAvailability)]
    pub(super) struct Storage {
        #[storage(validate = check_dir)]
        dir: u8,
        #[storage(validate = check_db, name = "database")]
        db: u8,
    }

    fn check_dir(_: &u8) -> Outcome {
        Outcome::ok()
    }

    fn check_db(_: &u8) -> Outcome {
        Outcome::failed("down")
    }

    #[test]
    fn all_and_name_match_the_trait() {
        assert_eq!(StorageKind::ALL, [StorageKind::Dir, StorageKind::Db]);
        let names: Vec<&str> = StorageKind::ALL.iter().map(|kind| kind.name()).collect();
        assert_eq!(names, ["dir", "database"]);
        assert_eq!(
            StorageKind::ALL,
            <StorageKind as storage_availability::StorageKind>::ALL
        );
        for &kind in StorageKind::ALL {
            assert_eq!(
                kind.name(),
                storage_availability::StorageKind::name(kind),
                "{kind:?}"
            );
            assert_eq!(kind.to_string(), kind.name());
        }
    }

    #[test]
    fn a_struct_named_storage_runs_through_a_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache =
            AvailabilityCache::open(Storage { dir: 1, db: 2 }, dir.path().join("s.yaml")).unwrap();
        assert!(cache.is_available(StorageKind::Dir));
        assert!(!cache.is_available(StorageKind::Db));
    }
}

/// `#[storage(validate = path, deref)]`: the validator takes what the section type
/// dereferences to (`&str`, `&Path`, `&[T]`), for plain, `Option` and async sections; other
/// sections keep `&FieldType` and generic validators.
mod deref_validators {
    use std::fmt::Debug;
    use std::path::{Path, PathBuf};

    use storage_availability::{Outcome, StorageAvailability};

    #[derive(serde::Serialize, StorageAvailability)]
    struct Config {
        #[storage(validate = check_name, deref)]
        name: String,
        #[storage(validate = check_dir, deref)]
        dir: PathBuf,
        #[storage(validate = check_bytes, deref)]
        bytes: Vec<u8>,
        #[storage(validate = check_name, deref)]
        alias: Option<String>,
        #[storage(validate = check_generic)]
        port: u16,
        #[storage(validate = check_generic)]
        host: String,
        #[storage(validate = check_owned)]
        owner: String,
    }

    fn check_name(name: &str) -> Result<(), String> {
        if name.is_empty() {
            Err("empty name".to_owned())
        } else {
            Ok(())
        }
    }

    fn check_dir(dir: &Path) -> Outcome {
        if dir.is_absolute() {
            Outcome::ok()
        } else {
            Outcome::failed(format!("{} is relative", dir.display()))
        }
    }

    fn check_bytes(bytes: &[u8]) -> Outcome {
        if bytes.len() == 2 {
            Outcome::ok()
        } else {
            Outcome::failed("want two bytes")
        }
    }

    fn check_generic<T: Debug>(value: &T) -> Outcome {
        Outcome::failed(format!("{value:?}"))
    }

    #[expect(
        clippy::ptr_arg,
        reason = "a validator without `deref` takes &FieldType"
    )]
    fn check_owned(owner: &String) -> Outcome {
        Outcome::failed(owner.clone())
    }

    #[test]
    fn validators_get_the_deref_target() {
        let config = Config {
            name: "csv".to_owned(),
            dir: PathBuf::from("data"),
            bytes: vec![1, 2],
            alias: Some(String::new()),
            port: 80,
            host: "db".to_owned(),
            owner: "me".to_owned(),
        };
        assert!(config.validate(ConfigKind::Name).is_ok());
        assert_eq!(
            config.validate(ConfigKind::Dir).last_error(),
            Some("data is relative")
        );
        assert!(config.validate(ConfigKind::Bytes).is_ok());
        assert_eq!(
            config.validate(ConfigKind::Alias).last_error(),
            Some("empty name")
        );
        assert_eq!(config.validate(ConfigKind::Port).last_error(), Some("80"));
        assert_eq!(
            config.validate(ConfigKind::Host).last_error(),
            Some("\"db\"")
        );
        assert_eq!(config.validate(ConfigKind::Owner).last_error(), Some("me"));
    }

    #[derive(serde::Serialize, StorageAvailability)]
    struct AsyncConfig {
        #[storage(validate = ping, async, deref)]
        url: String,
    }

    async fn ping(url: &str) -> Result<(), String> {
        if url.starts_with("http://") {
            Ok(())
        } else {
            Err(format!("not http: {url}"))
        }
    }

    #[tokio::test]
    async fn async_validators_get_the_deref_target() {
        let config = AsyncConfig {
            url: "ftp://x".to_owned(),
        };
        let outcome = config
            .validate_async(AsyncConfigKind::Url)
            .expect("async section")
            .await;
        assert_eq!(outcome.last_error(), Some("not http: ftp://x"));
    }
}
