//! Shared helpers for the workspace tests: a probe section whose validator counts its calls
//! and behaves as its value says, and a config made of probes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use storage_availability::{Outcome, StorageAvailability};

pub mod fleet;

/// A section whose validator does what `value` says and counts its calls.
///
/// `value` is `"ok..."` (passes), `"warn:<text>"` (passes with a warning), `"fail:<text>"`
/// (fails with `<text>`), `"sleep:<ms>"` (sleeps, then passes) or `"panic:<text>"`.
/// Only `value` is serialised, so only it is part of the section's key.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// What the validator does; the section's content.
    pub value: String,
    /// Validator calls, shared by clones.
    #[serde(skip)]
    pub calls: Arc<AtomicUsize>,
}

impl Probe {
    /// A probe behaving as `value` says, with a fresh counter.
    pub fn new(value: &str) -> Self {
        Probe {
            value: value.to_owned(),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A probe with the same counter and another value.
    pub fn with_value(&self, value: &str) -> Self {
        Probe {
            value: value.to_owned(),
            calls: Arc::clone(&self.calls),
        }
    }

    /// How many times the validator ran.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The probe validator.
pub fn check_probe(probe: &Probe) -> Outcome {
    probe.calls.fetch_add(1, Ordering::SeqCst);
    let value = probe.value.as_str();
    if let Some(text) = value.strip_prefix("fail:") {
        Outcome::failed(text)
    } else if let Some(text) = value.strip_prefix("warn:") {
        Outcome::ok().with_warning(text)
    } else if let Some(ms) = value.strip_prefix("sleep:") {
        std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
        Outcome::ok()
    } else if let Some(text) = value.strip_prefix("panic:") {
        panic!("{text}")
    } else {
        Outcome::ok()
    }
}

/// Three probe sections: `csv`, `kv` (named `key_value`, 100 ms timeout) and an optional
/// `vector`.
#[derive(Debug, Clone, Serialize, StorageAvailability)]
pub struct ProbeConfig {
    /// Always configured.
    #[storage(validate = check_probe)]
    pub csv: Probe,
    /// Configured when `Some`.
    #[storage(validate = check_probe)]
    pub vector: Option<Probe>,
    /// With its own timeout.
    #[storage(validate = check_probe, name = "key_value", timeout_ms = 100)]
    pub kv: Probe,
    /// Not a section.
    pub label: String,
}

impl ProbeConfig {
    /// Every section passing, `vector` configured.
    pub fn ok() -> Self {
        ProbeConfig {
            csv: Probe::new("ok"),
            vector: Some(Probe::new("ok")),
            kv: Probe::new("ok"),
            label: "test".into(),
        }
    }

    /// The same sections with the same counters (a clone shares counters).
    pub fn total_calls(&self) -> usize {
        self.csv.calls() + self.kv.calls() + self.vector.as_ref().map_or(0, Probe::calls)
    }
}

/// A probe that also appends one line per validator call to a log file shared by
/// processes: `<pid> <section> <value>\n`, written with `O_APPEND` in one `write`, so lines
/// of concurrent processes never interleave.
///
/// Only `value` is serialised: a `LoggedProbe` serialises as a [`Probe`] with the same
/// value.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedProbe {
    /// What the validator does, as for [`Probe`].
    pub value: String,
    /// The section's name, written in the log.
    #[serde(skip)]
    pub section: &'static str,
    /// The shared log file; `None`: log nothing.
    #[serde(skip)]
    pub log: Option<Arc<std::path::PathBuf>>,
    /// Validator calls in this process, shared by clones.
    #[serde(skip)]
    pub calls: Arc<AtomicUsize>,
}

impl LoggedProbe {
    /// A probe for `section` behaving as `value` says, logging to `log`.
    pub fn new(section: &'static str, value: &str, log: Option<Arc<std::path::PathBuf>>) -> Self {
        LoggedProbe {
            value: value.to_owned(),
            section,
            log,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A probe with the same section, log and counter, and another value.
    pub fn with_value(&self, value: &str) -> Self {
        LoggedProbe {
            value: value.to_owned(),
            ..self.clone()
        }
    }

    /// How many times the validator ran in this process.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The logging validator: appends its line, then behaves as [`check_probe`].
pub fn check_logged(probe: &LoggedProbe) -> Outcome {
    probe.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(log) = &probe.log {
        use std::io::Write;
        let line = format!("{} {} {}\n", std::process::id(), probe.section, probe.value);
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log.as_path())
            .and_then(|mut f| f.write(line.as_bytes()));
        assert_eq!(
            written.ok(),
            Some(line.len()),
            "the log line was not written in one write"
        );
    }
    check_probe(&Probe::new(&probe.value))
}

/// The sections of [`ProbeConfig`] (same names; another config type, so other keys) with
/// validators that log every call: what the reliability tests run. Its timeouts are
/// generous (10 s), so a loaded machine never turns a result into a timeout.
#[derive(Debug, Clone, Serialize, StorageAvailability)]
pub struct LoggedConfig {
    /// Always configured.
    #[storage(validate = check_logged)]
    pub csv: LoggedProbe,
    /// Configured when `Some`.
    #[storage(validate = check_logged)]
    pub vector: Option<LoggedProbe>,
    /// With its own timeout.
    #[storage(validate = check_logged, name = "key_value", timeout_ms = 10000)]
    pub kv: LoggedProbe,
}

impl LoggedConfig {
    /// Sections with these values (`vector: None` when `vector` is `None`), logging to `log`.
    pub fn new(csv: &str, kv: &str, vector: Option<&str>, log: Option<&std::path::Path>) -> Self {
        let log = log.map(|p| Arc::new(p.to_owned()));
        LoggedConfig {
            csv: LoggedProbe::new("csv", csv, log.clone()),
            vector: vector.map(|v| LoggedProbe::new("vector", v, log.clone())),
            kv: LoggedProbe::new("key_value", kv, log),
        }
    }

    /// Validator calls in this process.
    pub fn total_calls(&self) -> usize {
        self.csv.calls() + self.kv.calls() + self.vector.as_ref().map_or(0, LoggedProbe::calls)
    }
}

/// The statuses of a cache as one JSON object by section name, without `source` and
/// `duration` (which differ between the process that validated and those that read):
/// what several processes or threads must agree on.
pub fn statuses_json<C: StorageAvailability>(
    cache: &storage_availability::AvailabilityCache<C>,
) -> serde_json::Value {
    use storage_availability::StorageKind;
    let mut map = serde_json::Map::new();
    for (kind, s) in cache.statuses() {
        let checked_at = s
            .checked_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        map.insert(
            kind.name().to_owned(),
            serde_json::json!({
                "enabled": s.enabled,
                "validation_passed": s.validation_passed,
                "last_error": s.last_error,
                "warnings": s.warnings,
                "checked_at_us": checked_at,
            }),
        );
    }
    serde_json::Value::Object(map)
}

/// The names of the temp files of interrupted saves (`.<name>.tmp-*`) in `dir`.
///
/// # Panics
///
/// If `dir` cannot be listed (a test helper).
pub fn temp_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("list the directory")
        .map(|e| {
            e.expect("read a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.contains(".tmp-"))
        .collect()
}
