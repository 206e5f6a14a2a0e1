//! A readiness endpoint that notices outages: `storage_availability::axum::router` over a
//! cache kept fresh by its background refresher, with a real TCP check.
//!
//! ```text
//! KV_ADDR=127.0.0.1:6379 cargo run -p storage-availability-extras --example readiness [ADDR]
//! curl -i http://127.0.0.1:3000/ready    # 200 (pass, warn) or 503 (fail): application/health+json
//! ```
//!
//! Stop the key-value store and `/ready` answers 503 within `recheck_every` (5 s) plus the
//! check's timeout (1 s); start it again and it answers 200 as quickly.

use std::{path::Path, path::PathBuf, sync::Arc, time::Duration};

use storage_availability::{AvailabilityCache, Outcome, Refresher, StorageAvailability, checks};

/// The service's storage: a writable data directory, a key-value store, optionally search.
#[derive(serde::Serialize, StorageAvailability)]
pub(crate) struct ServiceConfig {
    #[storage(validate = check_dir)]
    pub(crate) data: PathBuf,
    #[storage(validate = ping, deref, timeout_ms = 1000, name = "key_value")]
    pub(crate) kv: String,
    #[storage(validate = ping, deref, timeout_ms = 1000, optional)]
    pub(crate) search: Option<String>,
}

/// The data directory is created if need be, then probed with a real write.
fn check_dir(dir: &PathBuf) -> Outcome {
    std::fs::create_dir_all(dir).map_or_else(
        |e| Outcome::failed(e.to_string()),
        |()| checks::dir_writable(dir),
    )
}

/// A real TCP connection to `host:port` within 900 ms.
fn ping(addr: &str) -> Outcome {
    checks::tcp_connect(addr, Duration::from_millis(900))
}

/// The router and the refresher that keeps its answers fresh (stops when dropped).
pub(crate) async fn service(
    config: ServiceConfig,
    config_path: &Path,
    recheck_every: Duration,
) -> Result<(axum::Router, Refresher), storage_availability::Error> {
    let cache = AvailabilityCache::builder(config)
        .config_path(config_path)
        .recheck_every(recheck_every)
        .open_async()
        .await?;
    let cache = Arc::new(cache);
    let refresher = cache.spawn_refresher(); // a tokio task: revalidates what is due
    Ok((storage_availability::axum::router(cache), refresher))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::temp_dir().join("storage-availability-readiness");
    let config = ServiceConfig {
        data: root.join("data"),
        kv: std::env::var("KV_ADDR").unwrap_or_else(|_| "127.0.0.1:6379".into()),
        search: std::env::var("SEARCH_ADDR").ok(),
    };
    let every = Duration::from_secs(5);
    let (app, _refresher) = service(config, &root.join("service.toml"), every).await?;
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    axum::serve(tokio::net::TcpListener::bind(addr).await?, app).await?;
    Ok(())
}
