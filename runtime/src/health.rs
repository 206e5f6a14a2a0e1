//! [`Health`]: the cache's answers in the health check response format of
//! draft-inadome-httpapi-health-check (`application/health+json`), for a readiness route.
//!
//! Built only from [`AvailabilityCache::statuses`] and [`StorageAvailability::is_optional`].

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use storage_availability_schema::Timestamp;

use crate::cache::AvailabilityCache;
use crate::section::{Availability, Source, StorageAvailability, StorageKind};

/// `pass`, `warn` or `fail`: the status of one check and of the whole report. Ordered from
/// best to worst, so the report's status is the `max` of its checks'.
///
/// ```
/// use storage_availability::HealthStatus;
/// assert!(HealthStatus::Pass < HealthStatus::Warn && HealthStatus::Warn < HealthStatus::Fail);
/// assert_eq!(serde_json::to_string(&HealthStatus::Warn).unwrap(), r#""warn""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Healthy.
    Pass,
    /// Healthy, with concerns: an optional section failed, or a validator warned.
    Warn,
    /// Unhealthy: a required section is unavailable.
    Fail,
}

impl HealthStatus {
    /// `"pass"`, `"warn"` or `"fail"`.
    ///
    /// ```
    /// use storage_availability::HealthStatus;
    /// assert_eq!(HealthStatus::Warn.as_str(), "warn");
    /// assert!(HealthStatus::Fail > HealthStatus::Warn);
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Pass => "pass",
            HealthStatus::Warn => "warn",
            HealthStatus::Fail => "fail",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One section's check in a [`Health`] report: the object in the array at
/// `checks["<section>:availability"]`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use storage_availability::{Availability, HealthCheck, HealthStatus, Source};
///
/// let status = Availability {
///     enabled: true,
///     validation_passed: true,
///     last_error: None,
///     errors: vec![],
///     warnings: vec![],
///     checked_at: UNIX_EPOCH + Duration::from_secs(1_764_064_800),
///     duration: Duration::from_micros(12_500),
///     source: Source::Validated,
/// };
/// let check = HealthCheck::new("csv", &status, false);
/// assert_eq!(check.status, HealthStatus::Pass);
/// assert_eq!(
///     serde_json::to_string(&check).unwrap(),
///     r#"{"componentId":"csv","componentType":"datastore","status":"pass","time":"2025-11-25T10:00:00.000000Z","observedValue":12.5,"observedUnit":"ms"}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HealthCheck {
    /// The section's name.
    pub component_id: &'static str,
    /// Always `"datastore"`: every section is a storage the service depends on.
    pub component_type: &'static str,
    /// This section's status (see [`HealthCheck::new`] for the rules).
    pub status: HealthStatus,
    /// When the section was checked (RFC 3339, UTC); absent for a time that cannot be written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// How long the validation took, in milliseconds; absent when no validator ran
    /// (unconfigured or pending sections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_value: Option<f64>,
    /// `"ms"` with `observed_value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_unit: Option<&'static str>,
    /// Why the check is not `pass`: the last error, or the warnings; `"not configured"` for
    /// an unconfigured section (a `pass`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// The `output` of an unconfigured section.
const NOT_CONFIGURED: &str = "not configured";
/// The `output` of a pending section.
const PENDING: &str = "no answer yet: not validated since the results were cleared";

impl HealthCheck {
    /// The check of section `name` with availability `status`; `optional` for
    /// `#[storage(optional)]`. The rules:
    ///
    /// - available without warnings: `pass`; with warnings: `warn`, the warnings in `output`;
    /// - configured and failed: `fail`, or `warn` when optional, the last error in `output`;
    /// - pending (no answer yet, [`Source::Pending`]): like a failure (`fail`, or `warn` when
    ///   optional): what is not known to be available is not reported available;
    /// - unconfigured (`None`, [`Source::Unconfigured`]): `pass` with output
    ///   `"not configured"`, since the service was set up without it.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use storage_availability::{Availability, HealthCheck, HealthStatus, Source};
    ///
    /// let failed = Availability {
    ///     enabled: false,
    ///     validation_passed: false,
    ///     last_error: Some("connection refused".into()),
    ///     errors: vec!["connection refused".into()],
    ///     warnings: vec![],
    ///     checked_at: SystemTime::now(),
    ///     duration: Duration::from_millis(3),
    ///     source: Source::Validated,
    /// };
    /// assert_eq!(HealthCheck::new("kv", &failed, false).status, HealthStatus::Fail);
    /// let optional = HealthCheck::new("kv", &failed, true);
    /// assert_eq!(optional.status, HealthStatus::Warn);
    /// assert_eq!(optional.output.as_deref(), Some("connection refused"));
    /// ```
    pub fn new(name: &'static str, status: &Availability, optional: bool) -> Self {
        let failing = if optional {
            HealthStatus::Warn
        } else {
            HealthStatus::Fail
        };
        let ran = !matches!(status.source, Source::Unconfigured | Source::Pending);
        let (health, output) = match status.source {
            Source::Unconfigured => (HealthStatus::Pass, Some(NOT_CONFIGURED.to_owned())),
            Source::Pending => (failing, Some(PENDING.to_owned())),
            _ if status.is_available() => {
                if status.warnings.is_empty() {
                    (HealthStatus::Pass, None)
                } else {
                    (HealthStatus::Warn, Some(status.warnings.join("; ")))
                }
            }
            _ => {
                let error = status
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "validation failed".to_owned());
                (failing, Some(error))
            }
        };
        HealthCheck {
            component_id: name,
            component_type: "datastore",
            status: health,
            time: Timestamp(status.checked_at).to_rfc3339(),
            observed_value: ran.then(|| millis(status.duration)),
            observed_unit: ran.then_some("ms"),
            output,
        }
    }

    /// The key of this check in the report's `checks` object: `"<section>:availability"`.
    ///
    /// ```
    /// # use std::time::SystemTime;
    /// # use storage_availability::{Availability, HealthCheck, Source};
    /// # let status = Availability { enabled: false, validation_passed: true, last_error: None,
    /// #     errors: vec![], warnings: vec![], checked_at: SystemTime::now(),
    /// #     duration: Default::default(), source: Source::Unconfigured };
    /// assert_eq!(HealthCheck::new("csv", &status, false).key(), "csv:availability");
    /// ```
    pub fn key(&self) -> String {
        format!("{}:availability", self.component_id)
    }
}

/// A health report of every section, in the health check response format
/// (draft-inadome-httpapi-health-check, media type [`Health::CONTENT_TYPE`]).
///
/// The report's `status` is the worst of its checks': `fail` when a required (not
/// `#[storage(optional)]`) configured section is unavailable or has no answer yet, `warn`
/// when only optional sections failed or a validator warned, `pass` otherwise. Unconfigured
/// sections are listed as `pass` with output `"not configured"`. Serialized as:
///
/// ```json
/// {
///   "status": "fail",
///   "checks": {
///     "csv:availability": [{"componentId": "csv", "componentType": "datastore",
///       "status": "pass", "time": "2026-11-25T10:00:00.000000Z",
///       "observedValue": 0.42, "observedUnit": "ms"}],
///     "key_value:availability": [{"componentId": "key_value", "componentType": "datastore",
///       "status": "fail", "time": "2026-11-25T10:00:00.000000Z",
///       "observedValue": 1.3, "observedUnit": "ms",
///       "output": "cannot connect to 127.0.0.1:6379: connection refused"}]
///   }
/// }
/// ```
///
/// # Example
///
/// ```
/// use storage_availability::{AvailabilityCache, HealthStatus, Outcome, StorageAvailability};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config {
///     #[storage(validate = check)]
///     csv: String,
///     #[storage(validate = check, optional)]
///     search: String,
/// }
/// fn check(value: &String) -> Outcome {
///     if value.is_empty() { Outcome::failed("not set") } else { Outcome::ok() }
/// }
///
/// let dir = tempfile::tempdir().unwrap();
/// let config = Config { csv: "data".into(), search: String::new() };
/// let cache = AvailabilityCache::open(config, dir.path().join("storage.yaml")).unwrap();
/// let health = cache.health();
/// assert_eq!(health.status, HealthStatus::Warn); // only the optional section failed
/// assert_eq!(health.http_status(), 200);
/// let json: serde_json::Value = serde_json::to_value(&health).unwrap();
/// assert_eq!(json["checks"]["search:availability"][0]["output"], "not set");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Health {
    /// The worst status of the checks (`pass` when there are none).
    pub status: HealthStatus,
    /// One check per section, in declaration order.
    pub checks: Vec<HealthCheck>,
}

impl Health {
    /// The media type of the serialized report: `application/health+json`.
    ///
    /// ```
    /// use storage_availability::Health;
    /// assert_eq!(Health::CONTENT_TYPE, "application/health+json");
    /// ```
    pub const CONTENT_TYPE: &'static str = "application/health+json";

    /// The report of `statuses` (as [`AvailabilityCache::statuses`] returns them) for config
    /// `C`, whose [`is_optional`](StorageAvailability::is_optional) says which sections
    /// only warn.
    ///
    /// ```
    /// # use storage_availability::{AvailabilityCache, Health, HealthStatus, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] csv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let cache = AvailabilityCache::open(Config { csv: "x".into() }, dir.path().join("s.yaml")).unwrap();
    /// let health = Health::from_statuses::<Config>(&cache.statuses());
    /// assert_eq!(health, cache.health());
    /// assert_eq!(health.status, HealthStatus::Pass);
    /// ```
    pub fn from_statuses<C: StorageAvailability>(statuses: &[(C::Kind, Availability)]) -> Self {
        let checks: Vec<HealthCheck> = statuses
            .iter()
            .map(|(kind, status)| HealthCheck::new(kind.name(), status, C::is_optional(*kind)))
            .collect();
        let status = checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(HealthStatus::Pass);
        Health { status, checks }
    }

    /// The HTTP status of a readiness route for this report: 200 for `pass` and `warn`, 503
    /// (Service Unavailable) for `fail`.
    ///
    /// ```
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] csv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::failed("down") }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::open(Config { csv: "x".into() }, dir.path().join("s.yaml")).unwrap();
    /// assert_eq!(cache.health().http_status(), 503);
    /// ```
    pub fn http_status(&self) -> u16 {
        match self.status {
            HealthStatus::Pass | HealthStatus::Warn => 200,
            HealthStatus::Fail => 503,
        }
    }

    /// The report as JSON (the body of a readiness route).
    ///
    /// ```
    /// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] csv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let cache = AvailabilityCache::open(Config { csv: "x".into() }, dir.path().join("s.yaml")).unwrap();
    /// assert!(cache.health().to_json().starts_with(r#"{"status":"pass","checks":{"csv:availability":[{"#));
    /// ```
    pub fn to_json(&self) -> String {
        // Cannot fail: every field is a string, a number or a map with string keys.
        serde_json::to_string(self).unwrap_or_else(|error| {
            format!(
                r#"{{"status":"fail","output":{}}}"#,
                serde_json::Value::String(error.to_string())
            )
        })
    }
}

impl Serialize for Health {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Checks<'a>(&'a [HealthCheck]);
        impl Serialize for Checks<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for check in self.0 {
                    map.serialize_entry(&check.key(), std::slice::from_ref(check))?;
                }
                map.end()
            }
        }
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("status", &self.status)?;
        map.serialize_entry("checks", &Checks(&self.checks))?;
        map.end()
    }
}

impl<C: StorageAvailability> AvailabilityCache<C> {
    /// Every section's current answer as a [`Health`] report (no I/O, no validation): the
    /// body of a readiness route, with [`Health::http_status`] as its status.
    ///
    /// ```
    /// # use storage_availability::{AvailabilityCache, HealthStatus, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] csv: String }
    /// # fn check(_: &String) -> Outcome { Outcome::ok() }
    /// # let dir = tempfile::tempdir().unwrap();
    /// let cache = AvailabilityCache::open(Config { csv: "x".into() }, dir.path().join("s.yaml")).unwrap();
    /// let health = cache.health();
    /// assert_eq!(health.status, HealthStatus::Pass);
    /// assert_eq!(health.http_status(), 200);
    /// ```
    pub fn health(&self) -> Health {
        Health::from_statuses::<C>(&self.statuses())
    }
}

/// A duration as a number of milliseconds, to the microsecond.
fn millis(duration: Duration) -> f64 {
    duration.as_micros() as f64 / 1000.0
}

/// Serializes a duration as a number of milliseconds (for `#[serde(serialize_with)]`).
pub(crate) fn serialize_ms<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(millis(*duration))
}

/// Serializes a time as RFC 3339 in UTC, or `null` when it cannot be written (before 1970).
pub(crate) fn serialize_time<S: Serializer>(
    time: &SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    Timestamp(*time).to_rfc3339().serialize(serializer)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_764_064_800)
    }

    fn passed(warnings: &[&str]) -> Availability {
        Availability {
            enabled: true,
            validation_passed: true,
            last_error: None,
            errors: vec![],
            warnings: warnings.iter().map(|w| (*w).to_owned()).collect(),
            checked_at: at(),
            duration: Duration::from_micros(1_250),
            source: Source::Validated,
        }
    }

    fn failed(error: &str) -> Availability {
        Availability {
            enabled: false,
            validation_passed: false,
            last_error: Some(error.to_owned()),
            errors: vec![error.to_owned()],
            warnings: vec![],
            checked_at: at(),
            duration: Duration::from_millis(3),
            source: Source::Validated,
        }
    }

    fn with_source(source: Source) -> Availability {
        Availability {
            enabled: false,
            validation_passed: source == Source::Unconfigured,
            last_error: None,
            errors: vec![],
            warnings: vec![],
            checked_at: at(),
            duration: Duration::ZERO,
            source,
        }
    }

    #[test]
    fn passed_is_pass_without_output() {
        let check = HealthCheck::new("csv", &passed(&[]), false);
        assert_eq!(check.status, HealthStatus::Pass);
        assert_eq!(check.output, None);
        assert_eq!(check.observed_value, Some(1.25));
    }

    #[test]
    fn warnings_make_warn_with_output() {
        let check = HealthCheck::new("csv", &passed(&["almost full", "slow"]), false);
        assert_eq!(check.status, HealthStatus::Warn);
        assert_eq!(check.output.as_deref(), Some("almost full; slow"));
    }

    #[test]
    fn failed_required_is_fail_and_failed_optional_is_warn() {
        let required = HealthCheck::new("kv", &failed("refused"), false);
        assert_eq!(required.status, HealthStatus::Fail);
        assert_eq!(required.output.as_deref(), Some("refused"));
        let optional = HealthCheck::new("kv", &failed("refused"), true);
        assert_eq!(optional.status, HealthStatus::Warn);
        assert_eq!(optional.output.as_deref(), Some("refused"));
    }

    #[test]
    fn unconfigured_is_pass_never_fail() {
        for optional in [false, true] {
            let check = HealthCheck::new("s", &with_source(Source::Unconfigured), optional);
            assert_eq!(check.status, HealthStatus::Pass);
            assert_eq!(check.output.as_deref(), Some("not configured"));
            assert_eq!(check.observed_value, None);
        }
    }

    #[test]
    fn pending_is_fail_or_warn_when_optional() {
        let required = HealthCheck::new("s", &with_source(Source::Pending), false);
        assert_eq!(required.status, HealthStatus::Fail);
        assert!(required.output.unwrap().contains("no answer yet"));
        let optional = HealthCheck::new("s", &with_source(Source::Pending), true);
        assert_eq!(optional.status, HealthStatus::Warn);
    }

    #[test]
    fn unwritable_time_is_left_out() {
        let mut status = passed(&[]);
        status.checked_at = UNIX_EPOCH - Duration::from_secs(1);
        let check = HealthCheck::new("csv", &status, false);
        assert_eq!(check.time, None);
        let json = serde_json::to_value(&check).unwrap();
        assert!(json.get("time").is_none());
    }

    #[test]
    fn report_status_is_the_worst_check() {
        let health = |checks: Vec<HealthCheck>| {
            let status = checks
                .iter()
                .map(|c| c.status)
                .max()
                .unwrap_or(HealthStatus::Pass);
            Health { status, checks }
        };
        assert_eq!(health(vec![]).status, HealthStatus::Pass);
        assert_eq!(health(vec![]).http_status(), 200);
        let warn = health(vec![
            HealthCheck::new("a", &passed(&[]), false),
            HealthCheck::new("b", &failed("x"), true),
        ]);
        assert_eq!((warn.status, warn.http_status()), (HealthStatus::Warn, 200));
        let fail = health(vec![
            HealthCheck::new("a", &failed("x"), false),
            HealthCheck::new("b", &failed("x"), true),
        ]);
        assert_eq!((fail.status, fail.http_status()), (HealthStatus::Fail, 503));
    }

    #[test]
    fn json_snapshot() {
        let health = Health {
            status: HealthStatus::Fail,
            checks: vec![
                HealthCheck::new("csv", &passed(&[]), false),
                HealthCheck::new("key_value", &failed("connection refused"), false),
                HealthCheck::new("search", &with_source(Source::Unconfigured), true),
            ],
        };
        assert_eq!(
            health.to_json(),
            concat!(
                r#"{"status":"fail","checks":{"#,
                r#""csv:availability":[{"componentId":"csv","componentType":"datastore","status":"pass","time":"2025-11-25T10:00:00.000000Z","observedValue":1.25,"observedUnit":"ms"}],"#,
                r#""key_value:availability":[{"componentId":"key_value","componentType":"datastore","status":"fail","time":"2025-11-25T10:00:00.000000Z","observedValue":3.0,"observedUnit":"ms","output":"connection refused"}],"#,
                r#""search:availability":[{"componentId":"search","componentType":"datastore","status":"pass","time":"2025-11-25T10:00:00.000000Z","output":"not configured"}]"#,
                r#"}}"#
            )
        );
    }

    #[test]
    fn availability_and_report_json() {
        let json = serde_json::to_string(&failed("refused")).unwrap();
        assert_eq!(
            json,
            r#"{"enabled":false,"validation_passed":false,"last_error":"refused","errors":["refused"],"warnings":[],"checked_at":"2025-11-25T10:00:00.000000Z","duration_ms":3.0,"source":"validated"}"#
        );
        let mut status = with_source(Source::Pending);
        status.checked_at = UNIX_EPOCH - Duration::from_secs(1);
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(json["checked_at"], serde_json::Value::Null);
        assert_eq!(json["source"], "pending");

        let report = crate::RefreshReport {
            validated: vec!["csv"],
            reused: vec!["kv"],
            went_down: vec!["csv"],
            came_back: vec![],
            changed: vec!["csv"],
            saved: true,
            duration: Duration::from_micros(2_500),
        };
        assert_eq!(
            serde_json::to_string(&report).unwrap(),
            r#"{"validated":["csv"],"reused":["kv"],"went_down":["csv"],"came_back":[],"changed":["csv"],"saved":true,"duration_ms":2.5}"#
        );
        let stats = serde_json::to_value(crate::Stats {
            hits: 3,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(stats["hits"], 3);
        assert_eq!(stats["uncacheable"], 0);
    }

    #[test]
    fn source_serializes_as_its_name() {
        for source in [
            Source::Cache,
            Source::Validated,
            Source::Unconfigured,
            Source::Shared,
            Source::Pending,
            Source::Stale,
        ] {
            assert_eq!(
                serde_json::to_value(source).unwrap(),
                serde_json::Value::String(source.as_str().to_owned())
            );
        }
    }
}
