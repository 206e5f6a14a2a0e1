//! A config struct named `Storage` compiles with a glob import of the crate: the local
//! `StorageKind` enum shadows the glob-imported `StorageKind` trait, and the generated code
//! names the trait only by its absolute path.

#![deny(warnings)]

use storage_availability::*;

#[derive(serde::Serialize, StorageAvailability)]
pub struct Storage {
    #[storage(validate = check_dir)]
    dir: u8,
}

fn check_dir(_: &u8) -> Outcome {
    Outcome::ok()
}

/// The trait's items stay reachable by path, e.g. in generic code.
fn first<K: storage_availability::StorageKind>() -> &'static str {
    K::ALL[0].name()
}

fn main() {
    assert_eq!(StorageKind::ALL, [StorageKind::Dir]);
    assert_eq!(StorageKind::Dir.name(), "dir");
    assert_eq!(first::<StorageKind>(), "dir");
    assert!(Storage { dir: 1 }.validate(StorageKind::Dir).is_ok());
}
