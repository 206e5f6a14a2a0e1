//! A readiness endpoint for an async service, with axum.
//!
//! ```text
//! cargo run --example readiness --features tokio            # listens on 127.0.0.1:3000
//! cargo run --example readiness --features tokio -- 127.0.0.1:8080
//! curl -i http://127.0.0.1:3000/ready          # 200 when every required section is available
//! curl http://127.0.0.1:3000/availability      # every section's record
//! ```
//!
//! `GET /ready` answers 200 when every required section is available and 503 otherwise, with
//! a JSON body of the per-section records in the cache file's format; `GET /availability`
//! returns all records. A background task calls `refresh_if_stale_async` every 30 seconds, so
//! expired answers and failed sections whose backoff is over are revalidated while the
//! handlers keep answering from memory.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use storage_availability::schema::SectionRecord;
use storage_availability::{AvailabilityCache, Outcome, StorageAvailability, checks};

/// The service's storage configuration.
#[derive(Debug, Clone, Serialize, StorageAvailability)]
pub(crate) struct ServiceConfig {
    /// A local data directory that must be writable.
    #[storage(validate = check_dir)]
    pub(crate) data: PathBuf,
    /// A key-value store at `host:port` that must accept a TCP connection.
    #[storage(validate = ping, async, deref, timeout_ms = 1000, name = "key_value")]
    pub(crate) kv: String,
    /// An optional search service at `host:port`.
    #[storage(validate = ping, async, deref, timeout_ms = 1000)]
    pub(crate) search: Option<String>,
}

/// The data directory is created if need be, then probed with a real write.
fn check_dir(dir: &PathBuf) -> Outcome {
    match std::fs::create_dir_all(dir) {
        Ok(()) => checks::dir_writable(dir),
        Err(e) => Outcome::failed(format!("cannot create {}: {e}", dir.display())),
    }
}

/// A TCP connection within 900 ms (the section's timeout is 1000 ms), every resolved
/// address tried.
async fn ping(addr: &str) -> Outcome {
    checks::tcp_connect_async(addr, Duration::from_millis(900)).await
}

/// The handlers' state: the cache and the sections `/ready` requires.
#[derive(Clone)]
pub(crate) struct AppState {
    /// The availability cache, shared with the refresh task.
    pub(crate) cache: Arc<AvailabilityCache<ServiceConfig>>,
    /// The sections without which the service is not ready.
    pub(crate) required: Arc<[ServiceConfigKind]>,
}

/// The JSON body of both routes.
#[derive(Debug, Serialize)]
pub(crate) struct Body {
    /// Every required section is available.
    pub(crate) ready: bool,
    /// The records, by section name, in the cache file's format.
    pub(crate) sections: BTreeMap<&'static str, Option<SectionRecord>>,
}

fn body(state: &AppState, kinds: &[ServiceConfigKind]) -> Body {
    Body {
        ready: state.required.iter().all(|&k| state.cache.is_available(k)),
        sections: kinds
            .iter()
            .map(|&k| (k.name(), state.cache.record(k)))
            .collect(),
    }
}

async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Body>) {
    let body = body(&state, &state.required);
    let status = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

async fn availability(State(state): State<AppState>) -> Json<Body> {
    Json(body(&state, ServiceConfigKind::ALL))
}

/// The routes: `GET /ready` and `GET /availability`.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .route("/availability", get(availability))
        .with_state(state)
}

/// Keeps the answers fresh: revalidates only what expired or is due for a retry.
pub(crate) async fn refresh_every(cache: Arc<AvailabilityCache<ServiceConfig>>, period: Duration) {
    let mut interval = tokio::time::interval(period);
    interval.tick().await; // the first tick is immediate; `open_async` just validated
    loop {
        interval.tick().await;
        if let Err(error) = cache.refresh_if_stale_async().await {
            eprintln!("availability refresh failed: {error}");
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()?;
    let root = std::env::temp_dir().join("storage-availability-readiness");
    let config = ServiceConfig {
        data: root.join("data"),
        kv: std::env::var("KV_ADDR").unwrap_or_else(|_| "127.0.0.1:6379".into()),
        search: std::env::var("SEARCH_ADDR").ok(),
    };
    let cache = Arc::new(AvailabilityCache::open_async(config, root.join("service.toml")).await?);
    for (kind, status) in cache.statuses() {
        println!(
            "{kind}: {} ({})",
            if status.is_available() {
                "available"
            } else {
                "unavailable"
            },
            status
                .last_error
                .as_deref()
                .unwrap_or(status.source.as_str())
        );
    }
    tokio::spawn(refresh_every(Arc::clone(&cache), Duration::from_secs(30)));

    let state = AppState {
        cache,
        required: Arc::from([ServiceConfigKind::Data, ServiceConfigKind::Kv]),
    };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(state)).await?;
    Ok(())
}
