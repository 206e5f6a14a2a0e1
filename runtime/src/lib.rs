//! A correct, fast, crash-safe cache of storage availability checks.
//!
//! Applications validate their storage configuration at start-up (does the CSV directory
//! exist and is it writable, is a vector provider configured, is the key-value store
//! reachable). That is slow, so this crate caches each section's result in a file next to
//! the config, keyed by a SHA-256 of the section's content, and revalidates only the
//! sections that changed or expired.
//!
//! ```no_run
//! use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
//!
//! #[derive(serde::Serialize, StorageAvailability)]
//! struct StorageConfig {
//!     #[storage(validate = check_csv)]
//!     csv: std::path::PathBuf,
//!     #[storage(validate = check_vector, timeout_ms = 2000)]
//!     vector: Option<String>,
//!     app_name: String, // not a section
//! }
//! fn check_csv(dir: &std::path::PathBuf) -> Result<(), std::io::Error> {
//!     std::fs::create_dir_all(dir)
//! }
//! fn check_vector(provider: &String) -> Outcome {
//!     if provider.is_empty() { Outcome::failed("no provider") } else { Outcome::ok() }
//! }
//!
//! # fn main() -> Result<(), storage_availability::Error> {
//! let config = StorageConfig { csv: "data/csv".into(), vector: None, app_name: "app".into() };
//! let cache = AvailabilityCache::open(config, "config/storage.yaml")?;
//! if cache.is_available(StorageConfigKind::Csv) {
//!     // use the CSV storage
//! }
//! # Ok(()) }
//! ```
//!
//! See the crate's README for the options, what is cached and when it is revalidated.
//! [`checks`] has ready-made validators (a writable directory, a TCP endpoint, an HTTP
//! endpoint, an environment variable). Validators that need application state (a client,
//! a pool) take it as a second argument: `#[availability(context = T)]` on the struct and
//! [`AvailabilityCacheBuilder::context`] at the builder. With the feature `metrics`, the
//! cache reports through the `metrics` facade (see the module `metrics`).

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;
mod builder;
mod cache;
pub mod checks;
mod clock;
mod context;
mod drive;
mod error;
mod fingerprint;
mod fleet;
mod gate;
mod health;
#[cfg(not(feature = "metrics"))]
#[path = "metrics_off.rs"]
mod metrics;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod metrics;
mod notify;
mod policy;
mod random;
mod refresh;
mod refresher;
mod section;
mod stats;
mod store;
#[cfg(test)]
mod test_support;
mod validate;
#[cfg(feature = "tokio")]
mod validate_async;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use builder::AvailabilityCacheBuilder;
pub use cache::AvailabilityCache;
pub use clock::{Clock, ManualClock, SystemClock};
pub use context::{ContextFree, ContextState, NoContext, WithContext};
pub use error::Error;
pub use fingerprint::{
    KeyContext, KeyError, SectionKey, SectionSpec, canonical_json, section_key, section_key_with,
    section_key_with_scope,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use fleet::RedisStore;
pub use fleet::{DEFAULT_NAMESPACE, SharedError, SharedStore};
pub use health::{Health, HealthCheck, HealthStatus};
pub use notify::Statuses;
pub use refresher::Refresher;
pub use section::{
    Availability, BlockingValidators, Outcome, Scope, Source, StorageAvailability, StorageKind,
    UnknownKind, ValidationFuture,
};
pub use stats::{RefreshReport, Stats};
#[doc(hidden)]
pub use store::Loaded;
pub use store::{CacheStore, FileStore, LockOutcome, StoreLock, StoreRead};
#[doc(hidden)]
pub use store::{FaultInjector, SaveStep};

/// The cache file format types and their JSON Schema.
pub use storage_availability_schema as schema;

/// The JSON Schema library whose `Schema` [`AvailabilityCache::json_schema`] returns.
pub use schemars;

#[cfg(feature = "derive")]
#[cfg_attr(docsrs, doc(cfg(feature = "derive")))]
pub use storage_availability_macros::StorageAvailability;

/// The crate's README (shown on crates.io), compiled as a doctest so its example stays true.
#[cfg(all(doctest, feature = "derive"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
