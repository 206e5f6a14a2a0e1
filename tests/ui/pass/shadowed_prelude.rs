//! The generated code does not depend on the user's names: the prelude's `Result`, `Ok`,
//! `Err`, `Option`, `Some`, `None`, common trait names, primitive types and the crates'
//! names are shadowed here.

#![deny(warnings)]
#![allow(dead_code, non_camel_case_types)]

struct Result;
struct Ok;
struct Err;
struct Option;
struct Some;
struct None;
struct Default;
struct Into;
struct From;
struct Serialize;
struct Display;
struct Debug;
struct Send;
struct Sync;
struct Copy;
struct Clone;
struct Eq;
struct Ord;
struct Hash;
struct PartialEq;
struct PartialOrd;
struct FromStr;
struct Duration;
struct String;
struct Vec;
struct bool;
struct usize;
struct u32;
struct str;

mod core {}
mod std {}
mod serde {}
mod storage_availability {}

use ::storage_availability::{Outcome, StorageAvailability};

// serde's derive does not survive shadowed primitive types, so `Serialize` is written by hand.
#[derive(StorageAvailability)]
struct Config {
    #[storage(validate = check_csv, timeout_ms = 5, version = 2)]
    csv: u8,
    #[storage(validate = check_vector, scope = "shared")]
    vector: ::core::option::Option<u8>,
}

impl ::serde::Serialize for Config {
    fn serialize<S: ::serde::Serializer>(
        &self,
        serializer: S,
    ) -> ::core::result::Result<S::Ok, S::Error> {
        ::serde::Serialize::serialize(&(self.csv, self.vector), serializer)
    }
}

fn check_csv(_: &u8) -> Outcome {
    Outcome::ok()
}

fn check_vector(v: &u8) -> ::core::result::Result<(), &'static ::core::primitive::str> {
    if *v == 0 { ::core::result::Result::Err("zero") } else { ::core::result::Result::Ok(()) }
}

fn main() {
    let config = Config { csv: 1, vector: ::core::option::Option::Some(0) };
    assert!(config.validate(ConfigKind::Csv).is_ok());
    assert!(!config.validate(ConfigKind::Vector).is_ok());
    assert!(config.is_configured(ConfigKind::Vector));
    assert_eq!(ConfigKind::Vector.name(), "vector");
    assert_eq!(ConfigKind::ALL.len(), 2);
}
