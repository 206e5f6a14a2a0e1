//! `metrics`: cache files as OpenMetrics text for node_exporter's textfile collector.
//!
//! Only the subset that both the OpenMetrics parser and the Prometheus text format (which
//! node_exporter's textfile collector reads) accept: `# HELP` and `# TYPE ... gauge` lines,
//! one block of samples per family, label values escaped (`\\`, `\"`, `\n`), and `# EOF`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::UNIX_EPOCH;

use serde_json::{Value, json};
use storage_availability_schema::CacheFile;

/// The families, in output order: name and help text.
const FAMILIES: [(&str, &str); 7] = [
    (
        "storage_availability_section_available",
        "1 when the section is enabled and its last validation passed, else 0.",
    ),
    (
        "storage_availability_section_enabled",
        "1 when the section is enabled in the config, else 0.",
    ),
    (
        "storage_availability_section_checked_timestamp_seconds",
        "When the section was last validated, in Unix seconds.",
    ),
    (
        "storage_availability_section_validation_duration_seconds",
        "How long the section's last validation took, in seconds.",
    ),
    (
        "storage_availability_section_consecutive_failures",
        "Failed validations of the section in a row (0 after a success).",
    ),
    (
        "storage_availability_section_warnings",
        "Warnings of the section's last validation.",
    ),
    (
        "storage_availability_cache_generated_timestamp_seconds",
        "When the cache file was written, in Unix seconds.",
    ),
];

/// One sample: the index of its family in [`FAMILIES`], its labels and value.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    family: usize,
    labels: Vec<(&'static str, String)>,
    value: f64,
}

fn unix_seconds(t: std::time::SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The samples of one cache file.
pub(crate) fn samples(file: &CacheFile) -> Vec<Sample> {
    let meta = &file.metadata;
    let base = vec![
        ("config_type", meta.config_type.clone()),
        ("config_path", meta.config_path.clone().unwrap_or_default()),
    ];
    let mut out = Vec::new();
    for (name, record) in &file.sections {
        let mut labels = base.clone();
        labels.push(("section", name.clone()));
        let values = [
            f64::from(u8::from(record.enabled && record.validation_passed)),
            f64::from(u8::from(record.enabled)),
            unix_seconds(record.checked_at.0),
            record.duration_ms / 1_000.0,
            f64::from(record.consecutive_failures),
            record.warnings.len() as f64,
        ];
        for (family, value) in values.into_iter().enumerate() {
            out.push(Sample {
                family,
                labels: labels.clone(),
                value,
            });
        }
    }
    out.push(Sample {
        family: FAMILIES.len() - 1,
        labels: base,
        value: unix_seconds(meta.generated_at.0),
    });
    out
}

/// Drops samples whose family and labels repeat an earlier one (the same config in two
/// files): an exposition must not repeat a series. Returns how many were dropped.
pub(crate) fn dedup(samples: &mut Vec<Sample>) -> usize {
    let before = samples.len();
    let mut seen = HashSet::new();
    samples.retain(|s| seen.insert((s.family, s.labels.clone())));
    before - samples.len()
}

/// The OpenMetrics text of `samples`, ending with `# EOF`.
pub(crate) fn render(samples: &[Sample]) -> String {
    let mut text = String::new();
    for (index, (name, help)) in FAMILIES.iter().enumerate() {
        let _ = writeln!(text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(text, "# TYPE {name} gauge");
        for sample in samples.iter().filter(|s| s.family == index) {
            text.push_str(name);
            text.push('{');
            for (i, (key, value)) in sample.labels.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let _ = write!(text, "{key}=\"{}\"", escape_label(value));
            }
            text.push('}');
            let _ = writeln!(text, " {}", number(sample.value));
        }
    }
    text.push_str("# EOF\n");
    text
}

/// The samples as JSON: `[{"name", "labels": {...}, "value"}]`.
pub(crate) fn to_json(samples: &[Sample]) -> Value {
    Value::Array(
        samples
            .iter()
            .map(|s| {
                let labels: serde_json::Map<String, Value> = s
                    .labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), Value::String(v.clone())))
                    .collect();
                json!({ "name": FAMILIES[s.family].0, "labels": labels, "value": s.value })
            })
            .collect(),
    )
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A help text: backslash and line feed escaped.
fn escape_help(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("line\nnext"), "line\\nnext");
        assert_eq!(number(1.0), "1");
        assert_eq!(number(0.0008), "0.0008");
        assert_eq!(number(f64::INFINITY), "+Inf");
    }
}
