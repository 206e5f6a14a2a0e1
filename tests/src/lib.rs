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
