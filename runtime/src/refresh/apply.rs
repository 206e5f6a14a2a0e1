//! After validation: each validator's outcome becomes a record ([`Core::apply`], the one
//! place outcomes are recorded), the file to save, and what to publish ([`Core::finish`]).

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use storage_availability_schema::{CacheFile, Metadata, SCHEMA_VERSION, SectionRecord, Timestamp};

use super::{Core, Done, Entry, RefreshRun, Snapshot, TARGET, section_hash, truncate_to_micros};
use crate::fingerprint::SectionKey;
use crate::policy::{self, Planned, Stale};
use crate::section::{Availability, Source, StorageAvailability, StorageKind};
use crate::stats::{RefreshReport, bump};
use crate::validate::{Ending, Finished};

impl<C: StorageAvailability> Core<C> {
    /// Each stale section with its timeout.
    pub(crate) fn jobs(&self, stale: &[(C::Kind, Stale)]) -> Vec<(C::Kind, Duration)> {
        stale
            .iter()
            .map(|&(kind, _)| {
                let timeout = C::timeout(kind).unwrap_or(self.options.validation_timeout);
                (kind, timeout)
            })
            .collect()
    }

    /// Turns validation results into records in `plan`, counting and logging them: the one
    /// place where a validator's outcome is recorded. `file` is the last read of the file
    /// (for the failure counts it holds), `now` the time the round ended.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn apply(
        &self,
        plan: &mut [Planned],
        finished: Vec<Finished<C::Kind>>,
        file: Option<&CacheFile>,
        run: &RefreshRun,
        stale: &[(C::Kind, Stale)],
        now: SystemTime,
        elapsed: Duration,
    ) {
        // Stored with microsecond precision: answer with what the file will hold.
        let checked_at = truncate_to_micros(now);
        for done in finished {
            let index = done.kind.index();
            bump(&self.stats.validations, 1);
            crate::notify::log_validation(&done);
            match done.ending {
                Ending::TimedOut => bump(&self.stats.timeouts, 1),
                Ending::Panicked => bump(&self.stats.panics, 1),
                Ending::Completed => {}
            }
            let previous_failures = previous_failures(
                file,
                &run.current,
                done.kind.name(),
                index,
                &self.keys[index],
            );
            let passed = done.outcome.is_ok();
            crate::metrics::validated(done.kind.name(), done.duration, done.ending, passed);
            let (errors, warnings) = done.outcome.into_parts();
            let record = SectionRecord {
                section_hash: section_hash(&self.keys[index]),
                enabled: passed,
                validation_passed: passed,
                last_error: errors.last().cloned(),
                errors,
                warnings,
                checked_at: Timestamp(checked_at),
                duration_ms: done.duration.as_secs_f64() * 1000.0,
                consecutive_failures: policy::consecutive_failures(passed, previous_failures),
            };
            plan[index] = Planned::Reuse(record, Source::Validated);
        }
        if !stale.is_empty() {
            let reasons: Vec<String> = stale
                .iter()
                .map(|(kind, why)| format!("{} ({})", kind.name(), why.as_str()))
                .collect();
            tracing::info!(target: TARGET, sections = %reasons.join(", "), ?elapsed,
                "validated storage sections");
        }
    }

    /// The file to save: every planned record (unvalidated ones exactly as they were read).
    pub(crate) fn file_from(&self, plan: &[Planned], now: SystemTime) -> CacheFile {
        let sections = C::Kind::ALL
            .iter()
            .zip(plan)
            .filter_map(|(kind, p)| p.record().map(|r| (kind.name().to_owned(), r.clone())))
            .collect();
        CacheFile {
            schema_version: SCHEMA_VERSION.to_owned(),
            metadata: Metadata {
                generator: concat!("storage-availability ", env!("CARGO_PKG_VERSION")).to_owned(),
                generated_at: Timestamp(now),
                config_type: C::config_type().to_owned(),
                config_path: self.config_path.as_ref().map(|p| p.display().to_string()),
                config_mtime: None,
                platform: format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
            },
            sections,
        }
    }

    /// Counts the save's result and builds what to publish and report.
    pub(crate) fn finish(
        &self,
        plan: Vec<Planned>,
        run: &RefreshRun,
        stale: &[(C::Kind, Stale)],
        saved: Option<std::io::Result<()>>,
        now: SystemTime,
    ) -> Done {
        let mut report = RefreshReport::default();
        let unsaved = match saved {
            Some(Ok(())) => {
                bump(&self.stats.saves, 1);
                report.saved = true;
                Some(false)
            }
            Some(Err(error)) => {
                bump(&self.stats.save_failures, 1);
                let path = self
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                self.warn_save_once(&format!(
                    "failed to save cache file {path}: {error}; keeping results in memory and retrying at the next refresh"
                ));
                Some(true)
            }
            None => None,
        };
        // By index, so that finishing stays linear in the number of sections.
        let mut validated = vec![false; plan.len()];
        for &(kind, _) in stale {
            validated[kind.index()] = true;
        }
        let mut entries = Vec::with_capacity(plan.len());
        for (&kind, planned) in C::Kind::ALL.iter().zip(plan) {
            let entry = match planned {
                Planned::Reuse(record, source) => {
                    if validated[kind.index()] {
                        report.validated.push(kind.name());
                    } else if source != Source::Unconfigured {
                        report.reused.push(kind.name());
                    }
                    Entry {
                        availability: availability_of(&record, source),
                        record: Some(record),
                    }
                }
                // Only reachable if validation produced no record, which the runners rule
                // out; answer "unavailable" rather than panic.
                Planned::Stale(why) => Entry {
                    availability: Availability {
                        enabled: false,
                        validation_passed: false,
                        last_error: Some(format!("not validated: {}", why.as_str())),
                        errors: Vec::new(),
                        warnings: Vec::new(),
                        checked_at: now,
                        duration: Duration::ZERO,
                        source: Source::Pending,
                    },
                    record: None,
                },
            };
            entries.push(entry);
        }
        bump(&self.stats.misses, report.validated.len() as u64);
        bump(&self.stats.hits, report.reused.len() as u64);
        // What changed for readers: went down, came back, changed (`notify.rs`).
        crate::notify::diff::<C::Kind>(
            &run.current
                .entries
                .iter()
                .map(|e| &e.availability)
                .collect::<Vec<_>>(),
            &entries.iter().map(|e| &e.availability).collect::<Vec<_>>(),
            &mut report,
        );
        Done {
            snapshot: Snapshot::new(entries),
            report,
            validated,
            unsaved,
        }
    }

    pub(crate) fn warn_save_once(&self, message: &str) {
        if !self.warned_save.swap(true, Ordering::Relaxed) {
            tracing::warn!(target: TARGET, "{message}");
        } else {
            tracing::debug!(target: TARGET, "{message}");
        }
    }
}

/// The consecutive failures recorded for this very section content before this validation,
/// in the file and in memory.
fn previous_failures<'a>(
    file: Option<&'a CacheFile>,
    current: &'a Snapshot,
    name: &str,
    index: usize,
    key: &'a SectionKey,
) -> impl Iterator<Item = u32> + 'a {
    let same = move |r: &&SectionRecord| r.section_hash.as_str() == key.as_str();
    let from_file = file.and_then(|f| f.sections.get(name)).filter(same);
    let from_memory = current.entries[index].record.as_ref().filter(same);
    from_file
        .into_iter()
        .chain(from_memory)
        .map(policy::failures_of)
}

fn availability_of(record: &SectionRecord, source: Source) -> Availability {
    // An unconfigured section is disabled whatever its record says.
    let configured = source != Source::Unconfigured;
    Availability {
        enabled: configured && record.enabled,
        validation_passed: configured && record.validation_passed,
        last_error: record.last_error.clone(),
        errors: record.errors.clone(),
        warnings: record.warnings.clone(),
        checked_at: record.checked_at.0,
        duration: Duration::try_from_secs_f64(record.duration_ms / 1000.0).unwrap_or_default(),
        source,
    }
}
