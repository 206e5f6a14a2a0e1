//! `inspect`: one cache file per section, with its warnings, status and when it expires.

use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use serde_json::{Value, json};
use storage_availability_schema::{CacheFile, SectionRecord, Timestamp};

use crate::{age, coarse, duration, one_line, shorten};

/// A failed section is never retried later than this after its check, unless
/// `--retry-failed-after` itself is longer (the library's cap).
const MAX_BACKOFF: Duration = Duration::from_secs(3_600);

/// A `checked_at` further ahead than this counts as expired (the library's clock-skew rule).
const FUTURE_TOLERANCE: Duration = Duration::from_secs(300);

/// The library's freshness options, as given on the command line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Freshness {
    /// `None`: a passed record never expires by age.
    pub(crate) max_age: Option<Duration>,
    pub(crate) retry_failed_after: Duration,
}

/// When a record stops being reused by age (its section hash must match as well, which only
/// the application can tell).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Expiry {
    Never,
    /// Still fresh; expires at the given time, this long from now.
    In {
        at: SystemTime,
        left: Duration,
    },
    /// Expired at the given time, this long ago.
    Expired {
        at: SystemTime,
        ago: Duration,
    },
    /// `checked_at` lies more than 5 minutes in the future: treated as expired.
    Future,
}

impl Freshness {
    /// `retry_failed_after * 2^(failures - 1)`, capped at one hour (or at
    /// `retry_failed_after` when that is longer); 0 failures count as one.
    pub(crate) fn backoff(&self, consecutive_failures: u32) -> Duration {
        let doublings = consecutive_failures.saturating_sub(1).min(31);
        self.retry_failed_after
            .saturating_mul(1u32 << doublings)
            .min(MAX_BACKOFF.max(self.retry_failed_after))
    }

    pub(crate) fn expiry(&self, record: &SectionRecord, now: SystemTime) -> Expiry {
        let checked = record.checked_at.0;
        if checked
            .duration_since(now)
            .is_ok_and(|ahead| ahead > FUTURE_TOLERANCE)
        {
            return Expiry::Future;
        }
        let lifetime = if record.validation_passed {
            match self.max_age {
                Some(max_age) => max_age,
                None => return Expiry::Never,
            }
        } else {
            self.backoff(record.consecutive_failures)
        };
        let Some(at) = checked.checked_add(lifetime) else {
            return Expiry::Never;
        };
        match at.duration_since(now) {
            Ok(left) if !left.is_zero() => Expiry::In { at, left },
            Ok(_) => Expiry::Expired {
                at,
                ago: Duration::ZERO,
            },
            Err(e) => Expiry::Expired {
                at,
                ago: e.duration(),
            },
        }
    }
}

impl Expiry {
    fn text(&self) -> String {
        match self {
            Expiry::Never => "never".to_owned(),
            Expiry::In { left, .. } => format!("in {}", coarse(*left)),
            Expiry::Expired { ago, .. } => format!("expired {} ago", coarse(*ago)),
            Expiry::Future => "expired (checked in the future)".to_owned(),
        }
    }

    fn is_fresh(&self) -> bool {
        matches!(self, Expiry::Never | Expiry::In { .. })
    }
}

fn status(record: &SectionRecord) -> &'static str {
    if record.validation_passed {
        "passed"
    } else {
        "failed"
    }
}

/// The JSON of one inspected file: the file itself, each section with `status`,
/// `available`, `age_seconds`, `expires_at`, `expires_in_seconds` (negative once expired;
/// `null` for never) and `expired`, plus `file` and `trusted`.
pub(crate) fn to_json(
    path: &Path,
    file: &CacheFile,
    untrusted: Option<&str>,
    freshness: Freshness,
    now: SystemTime,
) -> io::Result<Value> {
    let mut value = serde_json::to_value(file).map_err(io::Error::other)?;
    if let Some(sections) = value.get_mut("sections").and_then(Value::as_object_mut) {
        for (name, record) in &file.sections {
            let Some(Value::Object(out)) = sections.get_mut(name) else {
                continue;
            };
            let expiry = freshness.expiry(record, now);
            let age = match now.duration_since(record.checked_at.0) {
                Ok(d) => d.as_secs_f64(),
                Err(e) => -e.duration().as_secs_f64(),
            };
            let (expires_at, expires_in) = match expiry {
                Expiry::Never => (Value::Null, Value::Null),
                Expiry::In { at, left } => (rfc3339(at), json!(left.as_secs_f64())),
                Expiry::Expired { at, ago } => (rfc3339(at), json!(-ago.as_secs_f64())),
                Expiry::Future => (Value::Null, json!(0.0)),
            };
            out.insert("status".into(), json!(status(record)));
            out.insert(
                "available".into(),
                json!(record.enabled && record.validation_passed),
            );
            out.insert("age_seconds".into(), json!(age));
            out.insert("expires_at".into(), expires_at);
            out.insert("expires_in_seconds".into(), expires_in);
            out.insert("expired".into(), json!(!expiry.is_fresh()));
        }
    }
    if let Value::Object(map) = &mut value {
        map.insert("file".into(), json!(path.display().to_string()));
        map.insert("trusted".into(), json!(untrusted.is_none()));
        if let Some(reason) = untrusted {
            map.insert("untrusted_reason".into(), json!(reason));
        }
    }
    Ok(value)
}

fn rfc3339(at: SystemTime) -> Value {
    Timestamp(at)
        .to_rfc3339()
        .map_or(Value::Null, Value::String)
}

/// The text of one inspected file: a header line and a table.
pub(crate) fn write_text(
    out: &mut impl Write,
    path: &Path,
    file: &CacheFile,
    untrusted: Option<&str>,
    freshness: Freshness,
    now: SystemTime,
    colour: bool,
) -> io::Result<()> {
    let meta = &file.metadata;
    writeln!(
        out,
        "{}: schema {}, generator {}, generated_at {} ({}), config_type {}, config {}",
        path.display(),
        file.schema_version,
        meta.generator,
        meta.generated_at,
        age(meta.generated_at.0, now),
        meta.config_type,
        meta.config_path.as_deref().unwrap_or("(none)"),
    )?;
    if let Some(reason) = untrusted {
        writeln!(
            out,
            "warning: the library does not trust this file (it {reason}): it validates afresh"
        )?;
    }
    if file.sections.is_empty() {
        writeln!(out, "no sections")?;
        return Ok(());
    }
    let mut table = Table::new();
    table
        .load_preset(if io::stdout().is_terminal() {
            presets::UTF8_FULL_CONDENSED
        } else {
            presets::ASCII_FULL_CONDENSED
        })
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header([
            "section",
            "enabled",
            "status",
            "checked at",
            "duration",
            "failures",
            "expires",
            "warnings",
            "last error",
        ]);
    for (name, record) in &file.sections {
        table.add_row(row(name, record, freshness, now, colour));
    }
    writeln!(out, "{table}")?;
    writeln!(
        out,
        "(expiry by age with --max-age {} and --retry-failed-after {}; a section whose \
         config changed is validated again at once)",
        freshness.max_age.map_or_else(|| "none".to_owned(), option),
        option(freshness.retry_failed_after),
    )
}

/// A duration as it would be given on the command line: `24h`, `30s`, `90m`.
fn option(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        humantime::format_duration(d).to_string()
    } else if secs.is_multiple_of(3_600) {
        format!("{}h", secs / 3_600)
    } else if secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn row(
    name: &str,
    record: &SectionRecord,
    freshness: Freshness,
    now: SystemTime,
    colour: bool,
) -> Vec<Cell> {
    let painted = |text: String, good: bool| {
        let cell = Cell::new(text);
        match (colour, good) {
            (false, _) => cell,
            (true, true) => cell.fg(Color::Green),
            (true, false) => cell.fg(Color::Red),
        }
    };
    let expiry = freshness.expiry(record, now);
    let checked = record
        .checked_at
        .to_rfc3339()
        .map(|t| {
            // Seconds are enough in a table.
            let short = t.split('.').next().unwrap_or(&t).trim_end_matches('Z');
            format!("{short}Z ({})", age(record.checked_at.0, now))
        })
        .unwrap_or_else(|| age(record.checked_at.0, now));
    let warnings = record
        .warnings
        .iter()
        .map(|w| shorten(&one_line(w)))
        .collect::<Vec<_>>()
        .join("; ");
    vec![
        Cell::new(name),
        painted(
            if record.enabled { "yes" } else { "no" }.to_owned(),
            record.enabled,
        ),
        painted(status(record).to_owned(), record.validation_passed),
        Cell::new(checked),
        Cell::new(duration(record.duration_ms)),
        Cell::new(record.consecutive_failures),
        painted(expiry.text(), expiry.is_fresh()),
        if warnings.is_empty() || !colour {
            Cell::new(warnings)
        } else {
            Cell::new(warnings).fg(Color::Yellow)
        },
        Cell::new(
            record
                .last_error
                .as_deref()
                .map(|e| shorten(&one_line(e)))
                .unwrap_or_default(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(passed: bool, failures: u32, checked_at: SystemTime) -> SectionRecord {
        serde_json::from_value(json!({
            "section_hash": "a".repeat(64), "enabled": true, "validation_passed": passed,
            "last_error": null, "checked_at": Timestamp(checked_at).to_rfc3339().unwrap(),
            "duration_ms": 1.0, "consecutive_failures": failures,
        }))
        .unwrap()
    }

    #[test]
    fn expiry_follows_the_library_rules() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let fresh = Freshness {
            max_age: Some(Duration::from_secs(86_400)),
            retry_failed_after: Duration::from_secs(30),
        };
        let hour_ago = now - Duration::from_secs(3_600);
        let left = |e: Expiry| match e {
            Expiry::In { left, .. } => left.as_secs() as i64,
            Expiry::Expired { ago, .. } => -(ago.as_secs() as i64),
            other => panic!("{other:?}"),
        };
        assert_eq!(left(fresh.expiry(&record(true, 0, hour_ago), now)), 82_800);
        // 30 s, 60 s, 120 s ... capped at 1 h; 0 failures count as one.
        let ten_ago = now - Duration::from_secs(10);
        assert_eq!(left(fresh.expiry(&record(false, 0, ten_ago), now)), 20);
        assert_eq!(left(fresh.expiry(&record(false, 1, ten_ago), now)), 20);
        assert_eq!(left(fresh.expiry(&record(false, 3, ten_ago), now)), 110);
        assert_eq!(left(fresh.expiry(&record(false, 30, ten_ago), now)), 3_590);
        assert_eq!(left(fresh.expiry(&record(false, 1, hour_ago), now)), -3_570);
        let never = Freshness {
            max_age: None,
            ..fresh
        };
        assert_eq!(never.expiry(&record(true, 0, hour_ago), now), Expiry::Never);
        let ahead = now + Duration::from_secs(301);
        assert_eq!(fresh.expiry(&record(true, 0, ahead), now), Expiry::Future);
        let long = Freshness {
            retry_failed_after: Duration::from_secs(7_200),
            ..fresh
        };
        assert_eq!(long.backoff(5), Duration::from_secs(7_200));
    }
}
