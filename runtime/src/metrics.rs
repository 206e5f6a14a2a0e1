//! Metrics through the [`metrics`](https://docs.rs/metrics) crate's facade (feature
//! `metrics`): the cache records them, and whichever recorder the application installs
//! (`metrics-exporter-prometheus`, StatsD, OpenTelemetry...) exports them. Without a
//! recorder they cost next to nothing; without the feature no metrics code is compiled.
//!
//! | name | type | labels | what |
//! | --- | --- | --- | --- |
//! | `storage_availability_section_available` | gauge | `section` | 1 when the section is available, 0 otherwise; set whenever a refresh publishes new answers (`open` included) |
//! | `storage_availability_validation_duration_seconds` | histogram | `section`, `outcome` | how long each validator ran; `outcome` is `passed`, `failed`, `timed_out` or `panicked` |
//! | `storage_availability_hits_total` | counter | `section` | answers reused from a fresh record (file, memory or fleet store) |
//! | `storage_availability_misses_total` | counter | `section` | sections found stale and validated |
//! | `storage_availability_validation_failures_total` | counter | `section` | validations that did not pass (failed, timed out or panicked) |
//! | `storage_availability_quarantines_total` | counter | | corrupt or oversized cache files moved aside |
//! | `storage_availability_fleet_errors_total` | counter | | refreshes in which the fleet store failed (the rest of that refresh worked locally) |
//!
//! Section labels are the section names of the cache file (`csv`, `key_value`). The same
//! counts, per cache rather than per process, are in
//! [`AvailabilityCache::stats`](crate::AvailabilityCache::stats).
//!
//! # Example
//!
//! ```
//! use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
//!
//! #[derive(serde::Serialize, StorageAvailability)]
//! struct Config {
//!     #[storage(validate = check)]
//!     csv: String,
//! }
//! fn check(_: &String) -> Outcome { Outcome::ok() }
//!
//! // Install a recorder first, e.g. `metrics_exporter_prometheus::PrometheusBuilder::new()
//! // .install()`; then every cache of the process reports through it.
//! let cache = AvailabilityCache::builder(Config { csv: "data".into() })
//!     .persist(false)
//!     .open()
//!     .unwrap();
//! // storage_availability_section_available{section="csv"} is now 1,
//! // storage_availability_misses_total{section="csv"} 1.
//! assert!(cache.is_available(ConfigKind::Csv));
//! ```

use std::sync::Mutex;
use std::time::Duration;

use crate::stats::{Counters, RefreshReport};
use crate::validate::Ending;

/// `storage_availability_section_available{section}`
///
/// ```
/// assert_eq!(storage_availability::metrics::SECTION_AVAILABLE, "storage_availability_section_available");
/// ```
pub const SECTION_AVAILABLE: &str = "storage_availability_section_available";
/// `storage_availability_validation_duration_seconds{section, outcome}`
///
/// ```
/// assert_eq!(storage_availability::metrics::VALIDATION_DURATION_SECONDS, "storage_availability_validation_duration_seconds");
/// ```
pub const VALIDATION_DURATION_SECONDS: &str = "storage_availability_validation_duration_seconds";
/// `storage_availability_hits_total{section}`
///
/// ```
/// assert_eq!(storage_availability::metrics::HITS_TOTAL, "storage_availability_hits_total");
/// ```
pub const HITS_TOTAL: &str = "storage_availability_hits_total";
/// `storage_availability_misses_total{section}`
///
/// ```
/// assert_eq!(storage_availability::metrics::MISSES_TOTAL, "storage_availability_misses_total");
/// ```
pub const MISSES_TOTAL: &str = "storage_availability_misses_total";
/// `storage_availability_validation_failures_total{section}`
///
/// ```
/// assert_eq!(storage_availability::metrics::VALIDATION_FAILURES_TOTAL, "storage_availability_validation_failures_total");
/// ```
pub const VALIDATION_FAILURES_TOTAL: &str = "storage_availability_validation_failures_total";
/// `storage_availability_quarantines_total`
///
/// ```
/// assert_eq!(storage_availability::metrics::QUARANTINES_TOTAL, "storage_availability_quarantines_total");
/// ```
pub const QUARANTINES_TOTAL: &str = "storage_availability_quarantines_total";
/// `storage_availability_fleet_errors_total`
///
/// ```
/// assert_eq!(storage_availability::metrics::FLEET_ERRORS_TOTAL, "storage_availability_fleet_errors_total");
/// ```
pub const FLEET_ERRORS_TOTAL: &str = "storage_availability_fleet_errors_total";

/// The cache-wide counts already reported, so that each refresh reports only what it added.
#[derive(Debug, Default)]
pub(crate) struct Reported(Mutex<(u64, u64)>);

/// One validator finished: its duration, and a failure if it did not pass.
pub(crate) fn validated(section: &'static str, duration: Duration, ending: Ending, passed: bool) {
    let outcome = match ending {
        Ending::TimedOut => "timed_out",
        Ending::Panicked => "panicked",
        Ending::Completed if passed => "passed",
        Ending::Completed => "failed",
    };
    metrics::histogram!(VALIDATION_DURATION_SECONDS, "section" => section, "outcome" => outcome)
        .record(duration.as_secs_f64());
    if !passed {
        metrics::counter!(VALIDATION_FAILURES_TOTAL, "section" => section).increment(1);
    }
}

/// A refresh published new answers: `sections` gives each section's name and whether it is
/// available now.
pub(crate) fn published(
    sections: impl Iterator<Item = (&'static str, bool)>,
    report: &RefreshReport,
    counters: &Counters,
) {
    for (section, available) in sections {
        metrics::gauge!(SECTION_AVAILABLE, "section" => section).set(if available {
            1.0
        } else {
            0.0
        });
    }
    for &section in &report.reused {
        metrics::counter!(HITS_TOTAL, "section" => section).increment(1);
    }
    for &section in &report.validated {
        metrics::counter!(MISSES_TOTAL, "section" => section).increment(1);
    }
    let stats = counters.snapshot();
    let now = (stats.corrupt_recovered, stats.shared_errors);
    let mut reported = counters
        .metrics
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (quarantines, fleet_errors) = *reported;
    if now.0 > quarantines {
        metrics::counter!(QUARANTINES_TOTAL).increment(now.0 - quarantines);
    }
    if now.1 > fleet_errors {
        metrics::counter!(FLEET_ERRORS_TOTAL).increment(now.1 - fleet_errors);
    }
    *reported = now;
}
