//! A config struct named `Storage` (kind enum `StorageKind`) compiles with the README's
//! imports, under `#![deny(warnings)]`: the generated code never names the `StorageKind`
//! trait by a bare path, and the enum's inherent `ALL` and `name()` need no trait import.

#![deny(warnings)]

use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};

#[derive(serde::Serialize, StorageAvailability)]
struct Storage {
    #[storage(validate = check_dir)]
    dir: String,
    #[storage(validate = check_db, name = "database")]
    db: Option<u16>,
}

#[allow(clippy::ptr_arg)]
fn check_dir(_: &String) -> Outcome {
    Outcome::ok()
}

fn check_db(_: &u16) -> Result<(), String> {
    Ok(())
}

/// Type-checks the README's calls; not run (no file system in UI cases).
#[allow(dead_code)]
fn open(storage: Storage) -> Result<bool, storage_availability::Error> {
    let cache = AvailabilityCache::open(storage, "config/storage.yaml")?;
    Ok(StorageKind::ALL.iter().all(|&kind| cache.is_available(kind)))
}

fn main() {
    assert_eq!(StorageKind::ALL, [StorageKind::Dir, StorageKind::Db]);
    assert_eq!(StorageKind::Db.name(), "database");
    assert_eq!(StorageKind::Dir.to_string(), "dir");
    assert_eq!("database".parse(), Ok(StorageKind::Db));
}
