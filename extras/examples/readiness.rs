//! A readiness endpoint for an async service: `storage_availability::axum::router`.
//!
//! ```text
//! KV_ADDR=127.0.0.1:6379 cargo run -p storage-availability-extras --example readiness [ADDR]
//! curl -i http://127.0.0.1:3000/ready    # 200 (pass, warn) or 503 (fail): application/health+json
//! ```

use std::{path::PathBuf, sync::Arc, time::Duration};

use storage_availability::{AvailabilityCache, Outcome, StorageAvailability, checks};

/// The service's storage: a writable data directory, a key-value store, optionally search.
#[derive(serde::Serialize, StorageAvailability)]
pub(crate) struct ServiceConfig {
    #[storage(validate = check_dir)]
    pub(crate) data: PathBuf,
    #[storage(validate = ping, async, deref, timeout_ms = 1000, name = "key_value")]
    pub(crate) kv: String,
    #[storage(validate = ping, async, deref, timeout_ms = 1000, optional)]
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
async fn ping(addr: &str) -> Outcome {
    checks::tcp_connect_async(addr, Duration::from_millis(900)).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::env::temp_dir().join("storage-availability-readiness");
    let kv = std::env::var("KV_ADDR").unwrap_or_else(|_| "127.0.0.1:6379".into());
    let config = ServiceConfig {
        data: root.join("data"),
        kv,
        search: std::env::var("SEARCH_ADDR").ok(),
    };
    let cache = Arc::new(AvailabilityCache::open_async(config, root.join("service.toml")).await?);
    println!("{}", cache.health().to_json());
    let refresher = Arc::clone(&cache); // revalidates what expired or is due for a retry
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(30)).await;
            let _ = refresher.refresh_if_stale_async().await;
        }
    });
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    axum::serve(listener, storage_availability::axum::router(cache)).await?;
    Ok(())
}
