//! `#[availability(context = T)]`: blocking, async and `deref` validators take the context,
//! given with `.context(value)`; the kind enum and `open_async` work as without one.
#![deny(warnings)]

use std::path::Path;
use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};

/// What the validators share.
pub struct AppContext {
    base_url: String,
}

/// A config whose validators take `&AppContext`.
#[derive(serde::Serialize, StorageAvailability)]
#[availability(context = AppContext)]
pub struct Config {
    #[storage(validate = check_csv)]
    csv: String,
    #[storage(validate = check_dir, deref)]
    dir: std::path::PathBuf,
    #[storage(validate = ping, async)]
    kv: Option<String>,
}

fn check_csv(_: &String, context: &AppContext) -> Outcome {
    if context.base_url.is_empty() { Outcome::failed("no base URL") } else { Outcome::ok() }
}

fn check_dir(dir: &Path, _: &AppContext) -> Result<(), String> {
    if dir.as_os_str().is_empty() { Err("empty".into()) } else { Ok(()) }
}

async fn ping(addr: &String, context: &AppContext) -> Outcome {
    tokio::task::yield_now().await;
    if addr.is_empty() || context.base_url.is_empty() { Outcome::failed("no") } else { Outcome::ok() }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let config = Config { csv: "csv".into(), dir: "data".into(), kv: Some("kv".into()) };
    let cache = runtime
        .block_on(
            AvailabilityCache::builder(config)
                .context(AppContext { base_url: "http://127.0.0.1".into() })
                .persist(false)
                .open_async(),
        )
        .unwrap();
    for kind in ConfigKind::ALL {
        assert!(cache.is_available(*kind));
    }
}
