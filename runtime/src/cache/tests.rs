//! Smoke tests with a hand-written config; the full suite is in the `tests` crate.
use super::*;
use crate::section::Source;
use crate::section::{BlockingValidators, Outcome};
use crate::{KeyContext, SectionKey};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::test_support::K;

static CALLS: AtomicUsize = AtomicUsize::new(0);

struct Cfg {
    a: u32,
    b: Option<u32>,
}
impl BlockingValidators for Cfg {}
impl StorageAvailability for Cfg {
    type Kind = K;
    type Context = ();
    fn config_type() -> &'static str {
        "cache::tests::Cfg"
    }
    fn section_key_in(&self, kind: K, context: &KeyContext) -> Result<SectionKey, crate::KeyError> {
        let spec = crate::SectionSpec::new(Self::config_type(), kind.name());
        match kind {
            K::A => crate::section_key(&spec, context, Some(&self.a)),
            K::B => crate::section_key(&spec, context, self.b.as_ref()),
        }
    }
    fn validate(&self, kind: K) -> Outcome {
        CALLS.fetch_add(1, Ordering::SeqCst);
        match kind {
            K::A if self.a == 0 => Outcome::failed("zero"),
            _ => Outcome::ok(),
        }
    }
    fn is_configured(&self, kind: K) -> bool {
        kind == K::A || self.b.is_some()
    }
    fn timeout(_: K) -> Option<Duration> {
        None
    }
    fn version(_: K) -> u32 {
        1
    }
    fn app_version() -> &'static str {
        "t"
    }
}

/// Hand-written: overrides only `section_key` (the old way), or neither key method.
struct Legacy {
    implements_section_key: bool,
}
impl BlockingValidators for Legacy {}
impl StorageAvailability for Legacy {
    type Kind = K;
    type Context = ();
    fn section_key(&self, kind: K) -> SectionKey {
        if self.implements_section_key {
            let spec = crate::SectionSpec::new("cache::tests::Legacy", kind.name());
            crate::section_key(&spec, &KeyContext::new("t"), Some(&1))
                .unwrap_or_else(|_| SectionKey::never_matching())
        } else {
            crate::fingerprint::default_section_key(|| {
                self.section_key_in(kind, &KeyContext::new("t"))
            })
        }
    }
    fn validate(&self, _: K) -> Outcome {
        Outcome::ok()
    }
    fn is_configured(&self, _: K) -> bool {
        true
    }
    fn timeout(_: K) -> Option<Duration> {
        None
    }
    fn version(_: K) -> u32 {
        1
    }
    fn app_version() -> &'static str {
        "t"
    }
}

#[test]
fn hand_written_impls_with_only_section_key_or_neither_work() {
    let dir = tempfile::tempdir().unwrap();
    let open = |implements_section_key| {
        AvailabilityCache::builder(Legacy {
            implements_section_key,
        })
        .cache_path(dir.path().join(format!("{implements_section_key}.json")))
        .open()
        .unwrap()
    };
    // Only `section_key`: its keys are used, and reused at the next open.
    assert_eq!(open(true).stats().uncacheable, 0);
    assert_eq!(open(true).status(K::A).source, Source::Cache);
    // Neither: no recursion without end, just uncacheable sections.
    let legacy = Legacy {
        implements_section_key: false,
    };
    assert!(matches!(
        legacy.section_key_in(K::A, &KeyContext::new("t")),
        Err(crate::KeyError::NotImplemented { .. })
    ));
    assert_eq!(legacy.section_key(K::A).len(), 64);
    let cache = open(false);
    assert_eq!(cache.stats().uncacheable, 2);
    assert!(cache.is_available(K::A));
    assert_eq!(open(false).status(K::A).source, Source::Validated);
}

#[test]
fn cold_then_warm_then_changed() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("s.yaml");
    let calls = || CALLS.load(Ordering::SeqCst);
    let c = AvailabilityCache::open(Cfg { a: 1, b: None }, &cfg_path).unwrap();
    assert_eq!(calls(), 1);
    assert!(c.is_available(K::A));
    assert_eq!(c.status(K::B).source, Source::Unconfigured);
    assert_eq!(c.stats().saves, 1);
    let c = AvailabilityCache::open(Cfg { a: 1, b: None }, &cfg_path).unwrap();
    assert_eq!(calls(), 1);
    assert_eq!(c.status(K::A).source, Source::Cache);
    assert_eq!(c.stats().saves, 0);
    let c = AvailabilityCache::open(Cfg { a: 0, b: Some(2) }, &cfg_path).unwrap();
    assert_eq!(calls(), 3);
    assert!(!c.is_available(K::A));
    assert_eq!(c.status(K::A).last_error.as_deref(), Some("zero"));
    assert_eq!(c.record(K::A).unwrap().consecutive_failures, 1);
    c.invalidate(K::A);
    let report = c.refresh().unwrap();
    assert_eq!(report.validated, ["a"]);
    assert_eq!(c.record(K::A).unwrap().consecutive_failures, 2);
    assert_eq!(calls(), 4);
}

#[test]
fn is_available_agrees_with_status_through_every_publish() {
    // `Legacy`, not `Cfg`: `Cfg` counts its validations for another test.
    let dir = tempfile::tempdir().unwrap();
    let agree = |c: &AvailabilityCache<Legacy>| {
        for &k in K::ALL {
            assert_eq!(c.is_available(k), c.status(k).is_available(), "{k:?}");
        }
    };
    let c = AvailabilityCache::builder(Legacy {
        implements_section_key: true,
    })
    .cache_path(dir.path().join("agree.json"))
    .build()
    .unwrap();
    agree(&c);
    assert!(!c.is_available(K::A), "pending is not available");
    c.refresh().unwrap();
    agree(&c);
    assert!(c.is_available(K::A) && c.is_available(K::B));
    c.clear().unwrap();
    agree(&c);
    assert!(!c.is_available(K::A));
}
