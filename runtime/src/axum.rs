//! An axum 0.8 router serving the cache's [`Health`] report (feature `axum`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
//!
//! #[derive(serde::Serialize, StorageAvailability)]
//! struct Config {
//!     #[storage(validate = check)]
//!     csv: String,
//! }
//! fn check(_: &String) -> Outcome { Outcome::ok() }
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = Arc::new(AvailabilityCache::open(Config { csv: "data".into() }, "storage.yaml")?);
//! let app = storage_availability::axum::router(cache);
//! // axum::serve(tokio::net::TcpListener::bind("127.0.0.1:3000").await?, app).await?;
//! # let _ = app;
//! # Ok(()) }
//! ```

use std::sync::Arc;

use ::axum::Router;
use ::axum::http::{HeaderValue, StatusCode, header};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::get;

use crate::cache::AvailabilityCache;
use crate::health::Health;
use crate::section::StorageAvailability;

/// A router with two routes, both answering the cache's current [`Health`] report as
/// `application/health+json` (no validation runs in a request):
///
/// - `GET /ready`: 200 when the report is `pass` or `warn`, 503 when it is `fail` (a
///   required section is unavailable or has no answer yet): a readiness probe.
/// - `GET /health`: the same report with the same status codes, under the name monitors of
///   the health check format expect.
///
/// Both answer `Cache-Control: no-store`. The answers are as fresh as the cache's: keep
/// them fresh while the service runs with
/// [`spawn_refresher`](AvailabilityCache::spawn_refresher), so that a dependency that dies
/// turns `/ready` to 503 within `recheck_every` plus its validation timeout. Merge the router into the application's
/// with [`Router::merge`], or nest it with [`Router::nest`].
///
/// ```
/// # use std::sync::Arc;
/// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
/// # #[derive(serde::Serialize, StorageAvailability)]
/// # struct Config { #[storage(validate = check)] csv: String }
/// # fn check(_: &String) -> Outcome { Outcome::ok() }
/// # let dir = tempfile::tempdir().unwrap();
/// let cache = AvailabilityCache::open(Config { csv: "x".into() }, dir.path().join("s.yaml")).unwrap();
/// let app: axum::Router = axum::Router::new()
///     .nest("/status", storage_availability::axum::router(Arc::new(cache)));
/// # let _ = app;
/// ```
pub fn router<C: StorageAvailability>(cache: Arc<AvailabilityCache<C>>) -> Router {
    let health = Arc::clone(&cache);
    Router::new()
        .route("/ready", get(move || report(cache)))
        .route("/health", get(move || report(health)))
}

async fn report<C: StorageAvailability>(cache: Arc<AvailabilityCache<C>>) -> Response {
    let health = cache.health();
    let status =
        StatusCode::from_u16(health.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (
        status,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(Health::CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        health.to_json(),
    )
        .into_response()
}
