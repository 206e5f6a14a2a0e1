//! Properties of section keys, through configs that use `#[derive(StorageAvailability)]`.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde::Serialize;
use storage_availability::{
    KeyContext, Outcome, SectionSpec, StorageAvailability, StorageKind, section_key,
};

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Inner {
    id: u32,
    label: String,
    tags: HashMap<String, bool>,
}

#[derive(Debug, Clone, Serialize, StorageAvailability)]
struct Config {
    #[storage(validate = ok)]
    hashed: HashMap<String, u32>,
    #[storage(validate = ok, name = "sorted_map", version = 3)]
    sorted: BTreeMap<String, Vec<i64>>,
    #[storage(validate = ok)]
    inner: Option<Inner>,
    #[storage(validate = ok, scope = "shared")]
    plain: String,
    /// Not a section: never hashed.
    note: String,
}

fn ok<T>(_: &T) -> Outcome {
    Outcome::ok()
}

/// Map entries, as they are inserted.
type Entries<V> = Vec<(String, V)>;

/// Entries with unique keys, in an arbitrary order.
fn entries<V: std::fmt::Debug + Clone>(
    value: impl Strategy<Value = V>,
) -> impl Strategy<Value = Entries<V>> {
    prop::collection::btree_map("[a-z0-9_]{0,8}", value, 0..12)
        .prop_map(|map| map.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
}

/// The same entries in two independent orders.
fn twice_shuffled<V: std::fmt::Debug + Clone>(
    value: impl Strategy<Value = V>,
) -> impl Strategy<Value = (Entries<V>, Entries<V>)> {
    entries(value).prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
}

fn inner() -> impl Strategy<Value = Inner> {
    (any::<u32>(), ".{0,12}", entries(any::<bool>())).prop_map(|(id, label, tags)| Inner {
        id,
        label,
        tags: tags.into_iter().collect(),
    })
}

fn config() -> impl Strategy<Value = Config> {
    (
        entries(any::<u32>()),
        entries(prop::collection::vec(any::<i64>(), 0..4)),
        prop::option::of(inner()),
        ".{0,16}",
    )
        .prop_map(|(hashed, sorted, inner, plain)| Config {
            hashed: hashed.into_iter().collect(),
            sorted: sorted.into_iter().collect(),
            inner,
            plain,
            note: String::new(),
        })
}

fn keys(config: &Config) -> Vec<String> {
    ConfigKind::ALL
        .iter()
        .map(|kind| config.section_key(*kind).to_string())
        .collect()
}

fn is_lower_hex_64(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Changes one section of `config`, so that its value differs from before.
fn change(config: &mut Config, kind: ConfigKind, salt: u32) {
    match kind {
        ConfigKind::Hashed => {
            // A new entry, or a flipped value if that key was already there.
            let len = config.hashed.len();
            *config.hashed.entry(format!("new{len}")).or_insert(salt) ^= 1;
        }
        ConfigKind::Sorted => config.sorted.entry("k".to_owned()).or_default().push(1),
        ConfigKind::Inner => {
            config.inner = match config.inner.take() {
                None => Some(Inner {
                    id: salt,
                    label: String::new(),
                    tags: HashMap::new(),
                }),
                Some(mut inner) => {
                    inner.id = inner.id.wrapping_add(1);
                    Some(inner)
                }
            }
        }
        ConfigKind::Plain => config.plain.push('x'),
    }
}

proptest! {
    #[test]
    fn keys_ignore_map_insertion_order(
        (hashed, hashed2) in twice_shuffled(any::<u32>()),
        (sorted, sorted2) in twice_shuffled(prop::collection::vec(any::<i64>(), 0..4)),
        (tags, tags2) in twice_shuffled(any::<bool>()),
    ) {
        let build = |hashed: Vec<(String, u32)>,
                     sorted: Vec<(String, Vec<i64>)>,
                     tags: Vec<(String, bool)>| Config {
            hashed: hashed.into_iter().collect(),
            sorted: sorted.into_iter().collect(),
            inner: Some(Inner { id: 1, label: "l".to_owned(), tags: tags.into_iter().collect() }),
            plain: "p".to_owned(),
            note: String::new(),
        };
        let a = build(hashed, sorted, tags);
        let b = build(hashed2, sorted2, tags2);
        prop_assert_eq!(keys(&a), keys(&b));
    }

    #[test]
    fn keys_are_64_lowercase_hex(config in config()) {
        for key in keys(&config) {
            prop_assert!(is_lower_hex_64(&key), "{key}");
        }
    }

    #[test]
    fn derived_keys_are_the_documented_keys(config in config()) {
        let context = KeyContext::new(env!("CARGO_PKG_VERSION"));
        let spec = |name| SectionSpec::new(Config::config_type(), name);
        prop_assert_eq!(
            config.section_key(ConfigKind::Hashed),
            section_key(&spec("hashed"), &context, Some(&config.hashed)).unwrap()
        );
        prop_assert_eq!(
            config.section_key(ConfigKind::Sorted),
            section_key(&spec("sorted_map").version(3), &context, Some(&config.sorted)).unwrap()
        );
        prop_assert_eq!(
            config.section_key(ConfigKind::Inner),
            section_key(&spec("inner"), &context, config.inner.as_ref()).unwrap()
        );
        prop_assert_eq!(
            config.section_key(ConfigKind::Plain),
            storage_availability::section_key_with_scope(
                &spec("plain"),
                storage_availability::Scope::Shared,
                &context,
                Some(&config.plain),
            )
            .unwrap()
        );
    }

    #[test]
    fn changing_one_section_changes_its_key_and_no_other(
        config in config(),
        index in 0..ConfigKind::ALL.len(),
        salt in any::<u32>(),
    ) {
        let kind = ConfigKind::ALL[index];
        let before = keys(&config);
        let mut changed = config.clone();
        change(&mut changed, kind, salt);
        let after = keys(&changed);
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            if i == kind.index() {
                prop_assert_ne!(b, a, "changed section {} kept its key", kind);
            } else {
                prop_assert_eq!(b, a, "changing {} changed {}", kind, ConfigKind::ALL[i]);
            }
        }
    }

    #[test]
    fn fields_that_are_not_sections_never_change_keys(config in config(), note in ".{0,16}") {
        let mut other = config.clone();
        other.note = note;
        prop_assert_eq!(keys(&config), keys(&other));
    }

    #[test]
    fn name_version_and_app_version_are_part_of_the_key(
        name in "[a-z][a-z0-9_]{0,12}",
        other_name in "[a-z][a-z0-9_]{0,12}",
        version in any::<u32>(),
        other_version in any::<u32>(),
        app in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        other_app in "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}",
        value in entries(any::<u32>()),
    ) {
        let value: BTreeMap<String, u32> = value.into_iter().collect();
        let key = |name: &str, version: u32, app: &str| {
            section_key(
                &SectionSpec::new("app::Config", name).version(version),
                &KeyContext::new(app),
                Some(&value),
            )
            .unwrap()
        };
        let base = key(&name, version, &app);
        prop_assert!(is_lower_hex_64(&base));
        prop_assert_eq!(base, key(&name, version, &app));
        if other_name != name {
            prop_assert_ne!(base, key(&other_name, version, &app));
        }
        if other_version != version {
            prop_assert_ne!(base, key(&name, other_version, &app));
        }
        if other_app != app {
            prop_assert_ne!(base, key(&name, version, &other_app));
        }
    }

    /// Non-finite floats never share a key with each other or with `null`.
    #[test]
    fn floats_have_distinct_keys(a in prop::num::f64::ANY, b in prop::num::f64::ANY) {
        let key = |v: f64| {
            section_key(&SectionSpec::new("app::Config", "f"), &KeyContext::new("1"), Some(&v))
                .unwrap()
        };
        let same = (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits();
        prop_assert_eq!(key(a) == key(b), same, "{} {}", a, b);
    }
}
