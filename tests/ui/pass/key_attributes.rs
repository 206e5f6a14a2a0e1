//! `key_with`, `max_age_secs`, `cache` and `cwd` on a generic config, under
//! `#![deny(warnings)]`; `key_with` may return a borrow of the section.
#![deny(warnings)]

use std::time::Duration;

use storage_availability::{KeyContext, Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Config<T: Clone> {
    #[storage(validate = check::<T>, key_with = token::<T>, max_age_secs = 3600)]
    remote: Option<Remote<T>>,
    #[storage(validate = check_u8, cache = false, cwd = false)]
    quick: u8,
    #[storage(validate = check_u8, cache = true, cwd = true)]
    dir: u8,
}

#[derive(serde::Serialize)]
struct Remote<T> {
    url: String,
    #[serde(skip)]
    token: String,
    #[serde(skip)]
    extra: Option<T>,
}

fn check<T>(remote: &Remote<T>) -> Outcome {
    let _ = &remote.extra;
    Outcome::ok()
}

fn token<T>(remote: &Remote<T>) -> &str {
    &remote.token
}

fn check_u8(_: &u8) -> Outcome {
    Outcome::ok()
}

fn main() {
    let config = Config::<u8> {
        remote: Some(Remote { url: "u".into(), token: "t".into(), extra: None }),
        quick: 1,
        dir: 2,
    };
    assert_eq!(Config::<u8>::max_age(ConfigKind::Remote), Some(Duration::from_secs(3600)));
    assert!(!Config::<u8>::reused_across_starts(ConfigKind::Quick));
    assert!(Config::<u8>::reused_across_starts(ConfigKind::Dir));
    assert!(config.section_key_in(ConfigKind::Remote, &KeyContext::new("1")).is_ok());
}
