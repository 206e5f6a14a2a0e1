//! Every input of a validator's answer is in its section key (issue 12), end to end: over
//! random configs and random changes of any key input, a validator runs exactly for the
//! configured sections whose inputs changed, and never for an unconfigured one.
//!
//! The working directory is one of the inputs, and it is process-wide: every test of this
//! binary holds `CWD` while it runs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use proptest::prelude::*;
use serde::Serialize;
use storage_availability::{AvailabilityCache, Source, StorageAvailability, StorageKind};
use storage_availability_tests::{Probe, check_probe};

static CWD: Mutex<()> = Mutex::new(());

/// Runs `f` in `dir`, then goes back.
fn in_dir<R>(dir: &Path, f: impl FnOnce() -> R) -> R {
    let before = std::env::current_dir().unwrap();
    std::env::set_current_dir(dir).unwrap();
    let result = f();
    std::env::set_current_dir(before).unwrap();
    result
}

/// A probe with a password that serde does not show.
#[derive(Debug, Clone, Serialize)]
struct Secret {
    probe: Probe,
    #[serde(skip_serializing)]
    password: String,
}

fn check_secret(secret: &Secret) -> storage_availability::Outcome {
    check_probe(&secret.probe)
}

fn password(secret: &Secret) -> &str {
    &secret.password
}

/// Two config types with the same sections: a change of type is a change of every key.
macro_rules! config_type {
    ($module:ident) => {
        mod $module {
            use super::*;

            #[derive(Debug, Clone, Serialize, StorageAvailability)]
            pub(crate) struct Config {
                /// Host-scoped: a relative path answers differently elsewhere.
                #[storage(validate = check_probe)]
                pub(crate) plain: Probe,
                #[storage(validate = check_probe)]
                pub(crate) optional: Option<Probe>,
                #[storage(validate = check_secret, key_with = password)]
                pub(crate) secret: Secret,
                #[storage(validate = check_probe, scope = "shared")]
                pub(crate) shared: Probe,
                #[storage(validate = check_probe, cwd = false)]
                pub(crate) no_cwd: Probe,
            }
        }
    };
}

config_type!(one);
config_type!(two);

/// Everything the keys depend on.
#[derive(Debug, Clone, PartialEq)]
struct Inputs {
    plain: String,
    optional: Option<String>,
    secret: String,
    password: String,
    shared: String,
    no_cwd: String,
    app_version: String,
    second_type: bool,
    /// Index into the test's two working directories.
    cwd: usize,
}

/// The sections, in declaration order.
const NAMES: [&str; 5] = ["plain", "optional", "secret", "shared", "no_cwd"];

impl Inputs {
    /// Whether each section is configured.
    fn configured(&self) -> [bool; 5] {
        [true, self.optional.is_some(), true, true, true]
    }

    /// Whether each section's key differs between `self` and `other`.
    fn changed(&self, other: &Inputs) -> [bool; 5] {
        let common = self.app_version != other.app_version || self.second_type != other.second_type;
        let cwd = self.cwd != other.cwd;
        [
            common || cwd || self.plain != other.plain,
            common || cwd || self.optional != other.optional,
            common || cwd || self.secret != other.secret || self.password != other.password,
            common || self.shared != other.shared,
            common || self.no_cwd != other.no_cwd,
        ]
    }
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ok".to_owned()),
        Just("ok:a".to_owned()),
        Just("ok:b".to_owned())
    ]
}

fn inputs() -> impl Strategy<Value = Inputs> {
    (
        (value(), prop::option::of(value()), value(), value()),
        (value(), value(), prop_oneof![Just("1.0.0"), Just("1.1.0")]),
        (any::<bool>(), 0..2usize),
    )
        .prop_map(
            |((plain, optional, secret, password), (shared, no_cwd, app), (second, cwd))| Inputs {
                plain,
                optional,
                secret,
                password,
                shared,
                no_cwd,
                app_version: app.to_owned(),
                second_type: second,
                cwd,
            },
        )
}

/// `base` with a random subset of its inputs replaced by those of `other`.
fn changed() -> impl Strategy<Value = (Inputs, Inputs)> {
    (inputs(), inputs(), prop::collection::vec(any::<bool>(), 9)).prop_map(|(base, other, take)| {
        let mut next = base.clone();
        let pick = |i: usize| take[i];
        if pick(0) {
            next.plain = other.plain.clone();
        }
        if pick(1) {
            next.optional = other.optional.clone();
        }
        if pick(2) {
            next.secret = other.secret.clone();
        }
        if pick(3) {
            next.password = other.password.clone();
        }
        if pick(4) {
            next.shared = other.shared.clone();
        }
        if pick(5) {
            next.no_cwd = other.no_cwd.clone();
        }
        if pick(6) {
            next.app_version = other.app_version.clone();
        }
        if pick(7) {
            next.second_type = other.second_type;
        }
        if pick(8) {
            next.cwd = other.cwd;
        }
        (base, next)
    })
}

/// Opens a cache for `inputs` at `cache_path` in its working directory; returns, per
/// section, the validator calls and the answer's source.
fn open(inputs: &Inputs, cache_path: &Path, dirs: &[PathBuf; 2]) -> Vec<(usize, Source)> {
    macro_rules! run {
        ($module:ident) => {{
            let config = $module::Config {
                plain: Probe::new(&inputs.plain),
                optional: inputs.optional.as_deref().map(Probe::new),
                secret: Secret {
                    probe: Probe::new(&inputs.secret),
                    password: inputs.password.clone(),
                },
                shared: Probe::new(&inputs.shared),
                no_cwd: Probe::new(&inputs.no_cwd),
            };
            let cache = in_dir(&dirs[inputs.cwd], || {
                AvailabilityCache::builder(config.clone())
                    .cache_path(cache_path)
                    .app_version(&inputs.app_version)
                    .open()
                    .unwrap()
            });
            let calls = [
                config.plain.calls(),
                config.optional.as_ref().map_or(0, Probe::calls),
                config.secret.probe.calls(),
                config.shared.calls(),
                config.no_cwd.calls(),
            ];
            <$module::Config as StorageAvailability>::Kind::ALL
                .iter()
                .map(|kind| (calls[kind.index()], cache.status(*kind).source))
                .collect()
        }};
    }
    if inputs.second_type {
        run!(two)
    } else {
        run!(one)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn a_validator_runs_exactly_for_the_configured_sections_whose_inputs_changed(
        (before, after) in changed()
    ) {
        let _cwd = CWD.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let dir = tempfile::tempdir().unwrap();
        let dirs = [dir.path().join("a"), dir.path().join("b")];
        for d in &dirs {
            std::fs::create_dir(d).unwrap();
        }
        let cache_path = dir.path().join("cache.availability.json");

        let first = open(&before, &cache_path, &dirs);
        for (i, (calls, source)) in first.iter().enumerate() {
            let configured = before.configured()[i];
            prop_assert_eq!(*calls, usize::from(configured), "{}", NAMES[i]);
            let expected = if configured { Source::Validated } else { Source::Unconfigured };
            prop_assert_eq!(*source, expected, "{}", NAMES[i]);
        }

        let second = open(&after, &cache_path, &dirs);
        let changed = before.changed(&after);
        for (i, (calls, source)) in second.iter().enumerate() {
            let configured = after.configured()[i];
            let expected_calls = usize::from(configured && changed[i]);
            prop_assert_eq!(
                *calls, expected_calls,
                "{}: configured {}, changed {}", NAMES[i], configured, changed[i]
            );
            let expected_source = match (configured, changed[i]) {
                (false, _) => Source::Unconfigured,
                (true, true) => Source::Validated,
                (true, false) => Source::Cache,
            };
            prop_assert_eq!(*source, expected_source, "{}", NAMES[i]);
        }
    }
}

/// A section with a relative path: what it names depends on the working directory.
#[derive(Debug, Clone, Serialize, StorageAvailability)]
struct Relative {
    #[storage(validate = check_dir)]
    data: PathBuf,
    /// Holds no relative path: the working directory does not matter to it.
    #[storage(validate = check_probe, cwd = false)]
    url: Probe,
}

#[expect(clippy::ptr_arg, reason = "a validator takes &FieldType")]
fn check_dir(dir: &PathBuf) -> Result<(), String> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(format!("{} is not a directory here", dir.display()))
    }
}

#[test]
fn a_relative_path_is_revalidated_from_another_working_directory() {
    let _cwd = CWD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().unwrap();
    let (with_data, without) = (dir.path().join("with"), dir.path().join("without"));
    std::fs::create_dir_all(with_data.join("data")).unwrap();
    std::fs::create_dir(&without).unwrap();
    let cache_path = dir.path().join("cache.availability.json");
    let config = Relative {
        data: PathBuf::from("data"),
        url: Probe::new("ok"),
    };
    let open = |cwd: &Path| {
        in_dir(cwd, || {
            AvailabilityCache::builder(config.clone())
                .cache_path(&cache_path)
                .open()
                .unwrap()
        })
    };
    assert!(open(&with_data).is_available(RelativeKind::Data));
    let elsewhere = open(&without);
    assert!(!elsewhere.is_available(RelativeKind::Data));
    assert_eq!(
        elsewhere.status(RelativeKind::Data).source,
        Source::Validated
    );
    // `cwd = false`: the other section is reused.
    assert_eq!(elsewhere.status(RelativeKind::Url).source, Source::Cache);
    assert_eq!(config.url.calls(), 1);
}
