//! `availability`: print the cache file schema, check cache files against it, and inspect
//! one in a table.
//!
//! ```text
//! availability schema [--sections csv,vector]
//! availability check FILE... [--json] [--sections csv,vector] [--max-bytes N]
//! availability inspect FILE [--json] [--max-bytes N]
//! ```
//!
//! `check` validates each file against the JSON Schema (specialised to the given section
//! names with `--sections`), then checks that its `schema_version` has the major version this
//! tool reads, then that the library's types read it. It prints `FILE: ok` or one line per
//! violation, `FILE: POINTER: reason`; `--json` prints an array with one object per file:
//! `{"file", "status": "valid" | "invalid" | "unreadable", "errors": [{"pointer", "message"}]}`.
//!
//! `inspect` prints a header line (generator, generated_at, config path) and a table with one
//! row per section; `--json` prints the parsed file.
//!
//! Files are read exactly as the library reads them: only regular files of at most
//! `--max-bytes` (default 16 MiB), never through a symbolic link, opened without blocking
//! (a FIFO swapped in cannot hang the tool) and checked on the open handle; the read is
//! bounded as well. A file is valid when the schema accepts it and the library's one
//! acceptance rule reads it. Problems with a file
//! are reported on stderr as one line, `availability: <what>: <path>: <cause>`.
//!
//! # Exit status
//!
//! - `0`: success; with `check`, every file is valid.
//! - `1`: an invalid file: it does not match the schema, has another major version, the
//!   library cannot read it, or it is not UTF-8 or not JSON at all (content problems).
//! - `2`: a usage error, or a file that could not be read: missing, a directory, a FIFO or
//!   device, a symbolic link, unreadable, or over `--max-bytes`; also a failed write to
//!   stdout.
//!
//! With several files, the highest status wins. Colour is used only when stdout is a terminal
//! and `NO_COLOR` is not set to a non-empty value.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Parser, Subcommand};
use comfy_table::{Cell, Color, ContentArrangement, Table, presets};
use serde_json::{Value, json};
use storage_availability_schema::read::{self, ReadError};
use storage_availability_schema::{
    AcceptError, CacheFile, SectionRecord, VersionError, cache_file_schema, is_compatible,
    parse_cache_file, schema_for_sections,
};

/// Files larger than this are refused unless `--max-bytes` says otherwise.
const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Longest violation message or last error shown in text output, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

const AFTER_HELP: &str = "\
Exit status:
  0  success; with `check`, every file is valid
  1  invalid file: schema violation, unsupported major version, not readable by the
     library, not UTF-8 or not JSON
  2  usage error, or a file that could not be read (missing, a directory, a FIFO or
     device, a symbolic link, permission denied, over --max-bytes)
With several files the highest status wins.
Colour only when stdout is a terminal and NO_COLOR is unset or empty.";

/// Print, check and inspect storage-availability cache files.
#[derive(Debug, Parser)]
#[command(name = "availability", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the JSON Schema of the cache file.
    #[command(after_help = AFTER_HELP)]
    Schema {
        /// Specialise the schema to these section names (comma-separated): `sections` then
        /// accepts exactly these.
        #[arg(long, value_name = "NAMES", value_delimiter = ',')]
        sections: Option<Vec<String>>,
    },
    /// Check cache files against the schema and the version rule.
    #[command(after_help = AFTER_HELP)]
    Check {
        /// The cache files to check.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print a JSON array, one object per file, instead of text.
        #[arg(long)]
        json: bool,
        /// Check against the schema specialised to these section names (comma-separated):
        /// any other section is a violation.
        #[arg(long, value_name = "NAMES", value_delimiter = ',')]
        sections: Option<Vec<String>>,
        /// Refuse files larger than this many bytes.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BYTES)]
        max_bytes: u64,
    },
    /// Show one cache file as a table.
    #[command(after_help = AFTER_HELP)]
    Inspect {
        /// The cache file to show.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Print the parsed file as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Refuse files larger than this many bytes.
        #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BYTES)]
        max_bytes: u64,
    },
}

/// The exit status, ordered: the highest one wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Status {
    Ok = 0,
    Invalid = 1,
    Error = 2,
}

impl From<Status> for ExitCode {
    fn from(status: Status) -> Self {
        ExitCode::from(status as u8)
    }
}

/// A problem with one file, reported as `availability: <what>: <path>: <cause>`.
#[derive(Debug)]
struct Problem {
    status: Status,
    what: &'static str,
    path: PathBuf,
    cause: String,
}

impl Problem {
    fn io(what: &'static str, path: &Path, cause: impl fmt::Display) -> Self {
        Problem {
            status: Status::Error,
            what,
            path: path.to_owned(),
            cause: one_line(&cause.to_string()),
        }
    }

    fn invalid(what: &'static str, path: &Path, cause: impl fmt::Display) -> Self {
        Problem {
            status: Status::Invalid,
            ..Problem::io(what, path, cause)
        }
    }

    fn report(&self) {
        eprintln!("{self}");
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "availability: {}: {}: {}",
            self.what,
            self.path.display(),
            self.cause
        )
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let colour = io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty());
    let mut stdout = io::stdout().lock();
    let result = match cli.command {
        Command::Schema { sections } => schema(&mut stdout, sections.as_deref()),
        Command::Check {
            files,
            json,
            sections,
            max_bytes,
        } => check(
            &mut stdout,
            &files,
            json,
            sections.as_deref(),
            max_bytes,
            colour,
        ),
        Command::Inspect {
            file,
            json,
            max_bytes,
        } => inspect(&mut stdout, &file, json, max_bytes, colour),
    };
    let result = result.and_then(|status| stdout.flush().map(|()| status));
    match result {
        Ok(status) => status.into(),
        // `availability schema | head`: the reader has all it wanted.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Status::Error.into(),
        Err(e) => {
            eprintln!("availability: write failed: <stdout>: {e}");
            Status::Error.into()
        }
    }
}

/// The section names given to `--sections`, without empty entries.
fn section_names(sections: &[String]) -> Vec<&str> {
    sections
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect()
}

fn the_schema(sections: Option<&[String]>) -> schemars::Schema {
    match sections {
        Some(names) => schema_for_sections(&section_names(names)),
        None => cache_file_schema(),
    }
}

fn schema(out: &mut impl Write, sections: Option<&[String]>) -> io::Result<Status> {
    let text = serde_json::to_string_pretty(&the_schema(sections)).map_err(io::Error::other)?;
    writeln!(out, "{text}")?;
    Ok(Status::Ok)
}

/// Reads `path` exactly as the library does ([`read::read_bounded`]): a symbolic link is
/// refused, the open never blocks (a FIFO swapped in cannot hang the tool), the type and size
/// are checked on the open handle, and at most `limit + 1` bytes are read.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, Problem> {
    match read::read_bounded(path, limit) {
        Ok(read) => Ok(read.bytes),
        Err(e @ ReadError::TooLarge { .. }) => Err(Problem::io(
            "file too large",
            path,
            format_args!("{e} (--max-bytes)"),
        )),
        Err(ReadError::Missing) => Err(Problem::io(
            "cannot read",
            path,
            io::Error::from(io::ErrorKind::NotFound),
        )),
        Err(ReadError::NotRegular {
            kind: "a directory",
        }) => Err(Problem::io("cannot read", path, "is a directory")),
        Err(ReadError::NotRegular { kind }) => Err(Problem::io(
            "cannot read",
            path,
            format_args!("not a regular file ({kind})"),
        )),
        Err(ReadError::Symlink) => Err(Problem::io(
            "cannot read",
            path,
            "not a regular file (a symbolic link, never followed)",
        )),
        Err(ReadError::Io(e)) => Err(Problem::io("cannot read", path, e)),
        Err(e) => Err(Problem::io("cannot read", path, e)),
    }
}

/// Reads and parses `path` as JSON: I/O problems are [`Status::Error`], content problems
/// (not UTF-8, not JSON) [`Status::Invalid`]. Returns the bytes too, for the library's rule.
fn read_json(path: &Path, limit: u64) -> Result<(Vec<u8>, Value), Problem> {
    let bytes = read_bounded(path, limit)?;
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(Problem::invalid(
            "not UTF-8",
            path,
            format_args!("invalid byte at offset {}", e.valid_up_to()),
        ));
    }
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok((bytes, value)),
        Err(e) => Err(Problem::invalid("not JSON", path, e)),
    }
}

/// One violation: where (a JSON pointer, `""` for the whole file) and why.
#[derive(Debug, serde::Serialize)]
struct Violation {
    pointer: String,
    message: String,
}

impl Violation {
    fn new(pointer: &str, message: impl fmt::Display) -> Self {
        Violation {
            pointer: pointer.to_owned(),
            message: shorten(&one_line(&message.to_string())),
        }
    }
}

/// Every violation in `value`: the version rule first (another major version is not checked
/// against this schema at all), then the schema, then whether the library's types read it.
fn violations(validator: &jsonschema::Validator, bytes: &[u8], value: &Value) -> Vec<Violation> {
    if let Some(version) = value.get("schema_version").and_then(Value::as_str)
        && let Err(e @ VersionError::UnsupportedMajor { .. }) = is_compatible(version)
    {
        return vec![Violation::new("/schema_version", e)];
    }
    let found: Vec<Violation> = validator
        .iter_errors(value)
        .map(|e| Violation::new(e.instance_path().as_str(), &e))
        .collect();
    if !found.is_empty() {
        return found;
    }
    if let Some(version) = value.get("schema_version").and_then(Value::as_str)
        && let Err(e) = is_compatible(version)
    {
        return vec![Violation::new("/schema_version", e)];
    }
    match parse_cache_file(bytes) {
        Ok(_) => vec![],
        Err(e) => vec![Violation::new("", format_args!("not readable: {e}"))],
    }
}

fn check(
    out: &mut impl Write,
    files: &[PathBuf],
    as_json: bool,
    sections: Option<&[String]>,
    max_bytes: u64,
    colour: bool,
) -> io::Result<Status> {
    let schema = serde_json::to_value(the_schema(sections)).map_err(io::Error::other)?;
    let validator = match jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
    {
        Ok(validator) => validator,
        Err(e) => {
            eprintln!(
                "availability: invalid schema: <built in>: {}",
                one_line(&e.to_string())
            );
            return Ok(Status::Error);
        }
    };
    let mut worst = Status::Ok;
    let mut report = Vec::with_capacity(files.len());
    for path in files {
        let (status, found) = match read_json(path, max_bytes) {
            Ok((bytes, value)) => {
                let found = violations(&validator, &bytes, &value);
                let status = if found.is_empty() {
                    Status::Ok
                } else {
                    Status::Invalid
                };
                (status, found)
            }
            Err(problem) => {
                problem.report();
                let found = vec![Violation::new(
                    "",
                    format_args!("{}: {}", problem.what, problem.cause),
                )];
                (problem.status, found)
            }
        };
        worst = worst.max(status);
        if as_json {
            report.push(json!({
                "file": path.display().to_string(),
                "status": match status {
                    Status::Ok => "valid",
                    Status::Invalid => "invalid",
                    Status::Error => "unreadable",
                },
                "errors": found,
            }));
        } else if status == Status::Ok {
            writeln!(
                out,
                "{}: {}",
                path.display(),
                paint("ok", Color::Green, colour)
            )?;
        } else if status == Status::Invalid {
            for violation in &found {
                let pointer = if violation.pointer.is_empty() {
                    "<root>"
                } else {
                    &violation.pointer
                };
                writeln!(
                    out,
                    "{}: {}: {}",
                    path.display(),
                    paint(pointer, Color::Red, colour),
                    violation.message
                )?;
            }
        }
        // Unreadable files were reported on stderr.
    }
    if as_json {
        let text = serde_json::to_string_pretty(&report).map_err(io::Error::other)?;
        writeln!(out, "{text}")?;
    }
    Ok(worst)
}

fn inspect(
    out: &mut impl Write,
    path: &Path,
    as_json: bool,
    max_bytes: u64,
    colour: bool,
) -> io::Result<Status> {
    let file = match read_cache_file(path, max_bytes) {
        Ok(file) => file,
        Err(problem) => {
            problem.report();
            return Ok(problem.status);
        }
    };
    if as_json {
        let text = serde_json::to_string_pretty(&file).map_err(io::Error::other)?;
        writeln!(out, "{text}")?;
        return Ok(Status::Ok);
    }
    let now = SystemTime::now();
    let meta = &file.metadata;
    writeln!(
        out,
        "{}: schema {}, generator {}, generated_at {} ({}), config {}",
        path.display(),
        file.schema_version,
        meta.generator,
        meta.generated_at,
        age(meta.generated_at.0, now),
        meta.config_path.as_deref().unwrap_or("(none)"),
    )?;
    if file.sections.is_empty() {
        writeln!(out, "no sections")?;
        return Ok(Status::Ok);
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
            "passed",
            "checked",
            "duration",
            "failures",
            "last error",
        ]);
    for (name, record) in &file.sections {
        table.add_row(row(name, record, now, colour));
    }
    writeln!(out, "{table}")?;
    Ok(Status::Ok)
}

/// Reads a cache file the way the library does: the same reader, the same acceptance rule.
fn read_cache_file(path: &Path, max_bytes: u64) -> Result<CacheFile, Problem> {
    let (bytes, _) = read_json(path, max_bytes)?;
    parse_cache_file(&bytes).map_err(|e| match e {
        AcceptError::Version(e) => Problem::invalid("incompatible version", path, e),
        e => Problem::invalid("invalid cache file", path, e),
    })
}

fn row(name: &str, record: &SectionRecord, now: SystemTime, colour: bool) -> Vec<Cell> {
    let yes_no = |value: bool| {
        let cell = Cell::new(if value { "yes" } else { "no" });
        match (colour, value) {
            (false, _) => cell,
            (true, true) => cell.fg(Color::Green),
            (true, false) => cell.fg(Color::Red),
        }
    };
    vec![
        Cell::new(name),
        yes_no(record.enabled),
        yes_no(record.validation_passed),
        Cell::new(age(record.checked_at.0, now)),
        Cell::new(duration(record.duration_ms)),
        Cell::new(record.consecutive_failures),
        Cell::new(
            record
                .last_error
                .as_deref()
                .map(|e| shorten(&one_line(e)))
                .unwrap_or_default(),
        ),
    ]
}

/// How long ago `then` was, in its largest unit: `12s ago`, `3m ago`, `5h ago`, `2d ago`.
fn age(then: SystemTime, now: SystemTime) -> String {
    match now.duration_since(then) {
        Err(_) => "in the future".to_owned(),
        Ok(elapsed) => format!("{} ago", coarse(elapsed)),
    }
}

fn coarse(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        60..3_600 => format!("{}m", secs / 60),
        3_600..86_400 => format!("{}h", secs / 3_600),
        _ => format!("{}d", secs / 86_400),
    }
}

fn duration(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        format!("{ms} ms")
    } else if ms < 1_000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1_000.0)
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn shorten(s: &str) -> String {
    match s.char_indices().nth(MAX_MESSAGE_CHARS) {
        None => s.to_owned(),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

fn paint(text: &str, colour: Color, enabled: bool) -> String {
    if !enabled {
        return text.to_owned();
    }
    let code = match colour {
        Color::Green => 32,
        Color::Red => 31,
        _ => 0,
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ago = |secs| age(now - Duration::from_secs(secs), now);
        assert_eq!(ago(0), "0s ago");
        assert_eq!(ago(59), "59s ago");
        assert_eq!(ago(180), "3m ago");
        assert_eq!(ago(7_200), "2h ago");
        assert_eq!(ago(3 * 86_400), "3d ago");
        assert_eq!(age(now + Duration::from_secs(1), now), "in the future");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.84), "0.8 ms");
        assert_eq!(duration(1_234.0), "1.23 s");
        assert_eq!(duration(-1.0), "-1 ms");
    }

    #[test]
    fn messages_are_one_short_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
        let long = "é".repeat(MAX_MESSAGE_CHARS + 5);
        assert_eq!(shorten(&long).chars().count(), MAX_MESSAGE_CHARS + 1);
        assert_eq!(shorten("short"), "short");
    }

    #[test]
    fn exit_statuses_are_ordered() {
        assert!(Status::Ok < Status::Invalid && Status::Invalid < Status::Error);
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
