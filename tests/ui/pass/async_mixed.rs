//! Blocking and async validators in one config, opened with `open_async`.
#![deny(warnings)]

use storage_availability::{AvailabilityCache, Outcome, Source, StorageAvailability};

/// A config mixing both kinds of validator.
#[derive(serde::Serialize, StorageAvailability)]
pub struct Config {
    #[storage(validate = check_csv)]
    csv: Vec<u8>,
    #[storage(validate = ping_kv, async, timeout_ms = 500)]
    kv: Vec<u8>,
    #[storage(validate = ping_vector, async)]
    vector: Option<Vec<u8>>,
}

fn check_csv(_: &Vec<u8>) -> Outcome {
    Outcome::ok()
}

async fn ping_kv(addr: &Vec<u8>) -> Result<(), String> {
    tokio::task::yield_now().await;
    if addr.is_empty() { Err("empty".into()) } else { Ok(()) }
}

async fn ping_vector(_: &Vec<u8>) -> Outcome {
    Outcome::failed("unreachable")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = Config { csv: vec![1], kv: vec![2], vector: None };
    assert!(Config::is_async(ConfigKind::Kv) && !Config::is_async(ConfigKind::Csv));
    let cache = runtime
        .block_on(AvailabilityCache::builder(config).persist(false).open_async())
        .unwrap();
    assert!(cache.is_available(ConfigKind::Csv));
    assert!(cache.is_available(ConfigKind::Kv));
    assert_eq!(cache.status(ConfigKind::Vector).source, Source::Unconfigured);
}
