//! `availability`: the operator's tool for storage-availability cache files.
//!
//! ```text
//! availability schema [--sections csv,vector]
//! availability check PATH... [--json] [--sections csv,vector]
//! availability inspect PATH [--json] [--max-age 24h|none] [--retry-failed-after 30s]
//! availability invalidate PATH SECTION... [--json] [--lock-timeout 30s]
//! availability clear PATH [--json] [--lock-timeout 30s]
//! availability metrics PATH... [--json] [--output FILE]
//! ```
//!
//! Every PATH is a cache file or a config file. A path that ends in `.availability.json`,
//! or holds a JSON object with a `schema_version` key, is a cache file and is used as is.
//! Any other path is a config path: the tool looks in the config's directory (and in the
//! per-user platform cache directory, `<cache dir>/storage-availability/`, where the library
//! keeps the file when the config's directory is read-only) for
//! `<stem>.*.availability.json` files whose `metadata.config_path` is the absolute config
//! path. None: an error naming where it looked (exit 2). Several (one per config type that
//! uses the config file): `check`, `inspect` and `metrics` take each of them, `invalidate`
//! and `clear` refuse and list them; `--config-type TYPE` picks one.
//!
//! `check` validates each file against the JSON Schema (specialised to the given section
//! names with `--sections`), then checks that its `schema_version` has the major version this
//! tool reads, then that the library's types read it. It prints `FILE: ok` or one line per
//! violation, `FILE: POINTER: reason`; `--json` prints an array with one object per file:
//! `{"file", "status": "valid" | "invalid" | "unreadable", "errors": [{"pointer", "message"}]}`.
//!
//! `inspect` prints a header line (generator, generated_at, config type and path) and a
//! table with one row per section: enabled, status (passed or failed), checked at, duration,
//! consecutive failures, when it expires, warnings and the last error. Expiry follows the
//! library's rules with `--max-age` (default 24h; `none`: never) for passed sections and the
//! failure backoff for failed ones (`--retry-failed-after`, default 30s, doubling per
//! consecutive failure, capped at 1h). `--json` prints the file with, per section, `status`,
//! `available`, `age_seconds`, `expires_at`, `expires_in_seconds` and `expired`, plus `file`
//! and `trusted` (an array of these when a config path has several cache files).
//!
//! `invalidate` removes sections' records, so the next open validates them again; `clear`
//! deletes the cache file. Both hold the cache's lock (`<cache file>.lock`, waited on for at
//! most `--lock-timeout`, default 30s), never follow a symbolic link and never touch a file
//! that is not ours (a regular file owned by this user or root, not writable by group or
//! others). `invalidate` rewrites the file atomically (temp file, sync, rename, directory
//! sync).
//!
//! `metrics` prints OpenMetrics text for node_exporter's textfile collector (per section:
//! `storage_availability_section_available`, `..._enabled`, `..._checked_timestamp_seconds`,
//! `..._validation_duration_seconds`, `..._consecutive_failures`, `..._warnings`, labelled
//! `config_type`, `config_path` and `section`; per file
//! `storage_availability_cache_generated_timestamp_seconds`), ending with `# EOF`.
//! `--output FILE` replaces FILE atomically, as the textfile collector wants, and only when
//! every PATH was read (otherwise the previous FILE is kept).
//!
//! Files are read exactly as the library reads them: only regular files of at most
//! `--max-bytes` (default 16 MiB), never through a symbolic link, opened without blocking
//! (a FIFO swapped in cannot hang the tool) and checked on the open handle; the read is
//! bounded as well. A file is valid when the schema accepts it and the library's one
//! acceptance rule reads it. Problems are reported on stderr as one line,
//! `availability: <what>: <path>: <cause>`.
//!
//! # Exit status
//!
//! - `0`: success; with `check`, every file is valid.
//! - `1`: an invalid file: it does not match the schema, has another major version, the
//!   library cannot read it, or it is not UTF-8 or not JSON at all (content problems).
//! - `2`: a usage error (also an unknown section for `invalidate`, or a config path with no
//!   cache file, or several for `invalidate`/`clear`), or a file that could not be read or
//!   changed: missing, a directory, a FIFO or device, a symbolic link, not ours, unreadable,
//!   over `--max-bytes`, the lock not taken within `--lock-timeout`; also a failed write to
//!   stdout.
//!
//! With several files, the highest status wins. Colour is used only when stdout is a terminal
//! and `NO_COLOR` is not set to a non-empty value.

use std::fmt;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use clap::{Args, Parser, Subcommand};
use comfy_table::Color;
use serde_json::{Value, json};
use storage_availability_schema::read::{self, ReadError};
use storage_availability_schema::{
    AcceptError, CacheFile, VersionError, cache_file_schema, is_compatible, parse_cache_file,
    schema_for_sections,
};

mod edit;
mod inspect;
mod locate;
mod metrics;

use inspect::Freshness;
use locate::{Found, Search};

/// Files larger than this are refused unless `--max-bytes` says otherwise.
const DEFAULT_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// Longest violation message or last error shown in text output, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

const AFTER_HELP: &str = "\
PATH is a cache file (`*.availability.json`, or any file holding a JSON object with a
`schema_version`) or a config file: then the tool looks in the config's directory (and in
the per-user platform cache directory) for `<stem>.*.availability.json` files whose
`metadata.config_path` is the config's absolute path. When there are several (one per config
type), check, inspect and metrics take each; invalidate and clear want one (--config-type).

Exit status:
  0  success; with `check`, every file is valid
  1  invalid file: schema violation, unsupported major version, not readable by the
     library, not UTF-8 or not JSON
  2  usage error (also: no cache file for a config, several where one is needed, an
     unknown section), or a file that could not be read or changed (missing, a directory,
     a FIFO or device, a symbolic link, not ours, permission denied, over --max-bytes,
     the lock not taken within --lock-timeout)
With several files the highest status wins.
Colour only when stdout is a terminal and NO_COLOR is unset or empty.";

/// Print, check, inspect, invalidate, clear and export storage-availability cache files.
#[derive(Debug, Parser)]
#[command(name = "availability", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How a PATH is read and, for a config path, which cache file it means.
#[derive(Debug, Args)]
struct FileOptions {
    /// For a config path: only the cache file written for this config type (its
    /// `metadata.config_type`, e.g. `app::StorageConfig`).
    #[arg(long, value_name = "TYPE")]
    config_type: Option<String>,
    /// Refuse files larger than this many bytes.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_BYTES)]
    max_bytes: u64,
}

impl FileOptions {
    fn search(&self) -> Search<'_> {
        Search {
            config_type: self.config_type.as_deref(),
            max_bytes: self.max_bytes,
        }
    }
}

/// How long a change waits for the cache's lock.
#[derive(Debug, Args)]
struct LockOptions {
    /// Wait at most this long for another process (an application validating, another
    /// `availability` run) to release the cache's lock, then give up with exit 2.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    lock_timeout: Duration,
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
        /// Accepted for symmetry: the schema is always printed as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check cache files against the schema, the version rule and the library's acceptance
    /// rule; prints `FILE: ok` or one line per violation.
    #[command(after_help = AFTER_HELP)]
    Check {
        /// The cache files (or config files) to check.
        #[arg(required = true, value_name = "PATH")]
        files: Vec<PathBuf>,
        /// Print a JSON array, one object per file, instead of text.
        #[arg(long)]
        json: bool,
        /// Check against the schema specialised to these section names (comma-separated):
        /// any other section is a violation.
        #[arg(long, value_name = "NAMES", value_delimiter = ',')]
        sections: Option<Vec<String>>,
        #[command(flatten)]
        file: FileOptions,
    },
    /// Show a cache file per section: enabled, passed or failed, checked at, duration,
    /// consecutive failures, when it expires, warnings and the last error.
    #[command(after_help = AFTER_HELP)]
    Inspect {
        /// The cache file, or the config file whose cache file to show.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Print JSON (the file plus, per section, status, available, age_seconds,
        /// expires_at, expires_in_seconds and expired) instead of a table.
        #[arg(long)]
        json: bool,
        /// How long the application reuses a passed result (its `max_age`), for the
        /// "expires" column; `none` for never.
        #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_max_age)]
        max_age: MaxAge,
        /// The application's `retry_failed_after`: a failed section is retried this long
        /// after its check, doubling per consecutive failure, capped at 1h.
        #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
        retry_failed_after: Duration,
        #[command(flatten)]
        file: FileOptions,
    },
    /// Remove sections' records from a cache file, so the next open validates them again.
    /// Holds the cache's lock; rewrites the file atomically; refuses symbolic links and
    /// files that are not ours.
    #[command(after_help = AFTER_HELP)]
    Invalidate {
        /// The cache file, or the config file whose cache file to change.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// The sections to forget. An unknown name changes nothing and exits 2, listing the
        /// file's sections.
        #[arg(required = true, value_name = "SECTION")]
        sections: Vec<String>,
        /// Print `{"file", "invalidated": [...]}` instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        lock: LockOptions,
        #[command(flatten)]
        file: FileOptions,
    },
    /// Delete a cache file, so the next open validates every section. Holds the cache's
    /// lock (the lock file itself is kept); refuses symbolic links and files that are not
    /// ours. A cache file that is already gone is not an error.
    #[command(after_help = AFTER_HELP)]
    Clear {
        /// The cache file, or the config file whose cache file to delete.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Print `{"file", "cleared": true | false}` instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        lock: LockOptions,
        #[command(flatten)]
        file: FileOptions,
    },
    /// Print cache files as OpenMetrics text for node_exporter's textfile collector, one
    /// series per section and family, ending with `# EOF`.
    #[command(after_help = AFTER_HELP)]
    Metrics {
        /// The cache files (or config files) to export.
        #[arg(required = true, value_name = "PATH")]
        files: Vec<PathBuf>,
        /// Print a JSON array of samples (`name`, `labels`, `value`) instead.
        #[arg(long)]
        json: bool,
        /// Write to this file instead of stdout, replacing it atomically (for the textfile
        /// collector's directory: name it `*.prom`); kept as it was when a PATH cannot be
        /// read.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        file: FileOptions,
    },
}

/// `--max-age`: a duration, or `none`.
#[derive(Debug, Clone, Copy)]
struct MaxAge(Option<Duration>);

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 30s, 5m, 24h)"))
}

fn parse_max_age(text: &str) -> Result<MaxAge, String> {
    match text {
        "none" | "never" => Ok(MaxAge(None)),
        text => parse_duration(text).map(|d| MaxAge(Some(d))),
    }
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
        Command::Schema { sections, json: _ } => schema(&mut stdout, sections.as_deref()),
        Command::Check {
            files,
            json,
            sections,
            file,
        } => check(
            &mut stdout,
            &files,
            json,
            sections.as_deref(),
            &file,
            colour,
        ),
        Command::Inspect {
            path,
            json,
            max_age,
            retry_failed_after,
            file,
        } => {
            let freshness = Freshness {
                max_age: max_age.0,
                retry_failed_after,
            };
            inspect(&mut stdout, &path, json, freshness, &file, colour)
        }
        Command::Invalidate {
            path,
            sections,
            json,
            lock,
            file,
        } => invalidate(&mut stdout, &path, &sections, json, &lock, &file),
        Command::Clear {
            path,
            json,
            lock,
            file,
        } => clear(&mut stdout, &path, json, &lock, &file),
        Command::Metrics {
            files,
            json,
            output,
            file,
        } => export_metrics(&mut stdout, &files, json, output.as_deref(), &file),
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
fn read_bounded(path: &Path, limit: u64) -> Result<read::ReadFile, Problem> {
    match read::read_bounded(path, limit) {
        Ok(read) => Ok(read),
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
/// (not UTF-8, not JSON) [`Status::Invalid`]. Returns the bytes too, for the library's rule,
/// and the metadata of the open handle, for the trust rule.
fn read_json(path: &Path, limit: u64) -> Result<(Vec<u8>, Value, std::fs::Metadata), Problem> {
    let read = read_bounded(path, limit)?;
    let (bytes, metadata) = (read.bytes, read.metadata);
    if let Err(e) = std::str::from_utf8(&bytes) {
        return Err(Problem::invalid(
            "not UTF-8",
            path,
            format_args!("invalid byte at offset {}", e.valid_up_to()),
        ));
    }
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok((bytes, value, metadata)),
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
    options: &FileOptions,
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
    let mut targets = Vec::with_capacity(files.len());
    for given in files {
        match locate::resolve(given, options.search()) {
            Ok(found) => targets.extend(found.into_iter().map(|f| (f.path, None))),
            Err(problem) => targets.push((given.clone(), Some(problem))),
        }
    }
    for (path, problem) in &targets {
        let read = match problem {
            None => read_json(path, options.max_bytes),
            Some(problem) => Err(Problem::io(problem.what, &problem.path, &problem.cause)),
        };
        let (status, found) = match read {
            Ok((bytes, value, _)) => {
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

/// The cache files `path` names (see [`locate::resolve`]); a problem is reported here.
fn resolve(path: &Path, options: &FileOptions) -> Result<Vec<Found>, Status> {
    locate::resolve(path, options.search()).map_err(|problem| {
        problem.report();
        problem.status
    })
}

/// The one cache file `path` names, for a change.
fn resolve_one(path: &Path, options: &FileOptions) -> Result<PathBuf, Status> {
    let mut found = resolve(path, options)?;
    if found.len() > 1 {
        let problem = locate::ambiguous(path, &found);
        problem.report();
        return Err(problem.status);
    }
    Ok(found.remove(0).path)
}

fn inspect(
    out: &mut impl Write,
    path: &Path,
    as_json: bool,
    freshness: Freshness,
    options: &FileOptions,
    colour: bool,
) -> io::Result<Status> {
    let found = match resolve(path, options) {
        Ok(found) => found,
        Err(status) => return Ok(status),
    };
    let now = SystemTime::now();
    let mut worst = Status::Ok;
    let mut values = Vec::new();
    for (index, found) in found.iter().enumerate() {
        let (file, untrusted) = match read_cache_file(&found.path, options.max_bytes) {
            Ok(read) => read,
            Err(problem) => {
                problem.report();
                worst = worst.max(problem.status);
                continue;
            }
        };
        if as_json {
            values.push(inspect::to_json(
                &found.path,
                &file,
                untrusted.as_deref(),
                freshness,
                now,
            )?);
        } else {
            if index > 0 {
                writeln!(out)?;
            }
            inspect::write_text(
                out,
                &found.path,
                &file,
                untrusted.as_deref(),
                freshness,
                now,
                colour,
            )?;
        }
    }
    if as_json && !values.is_empty() {
        let value = if found.len() == 1 {
            values.remove(0)
        } else {
            Value::Array(values)
        };
        let text = serde_json::to_string_pretty(&value).map_err(io::Error::other)?;
        writeln!(out, "{text}")?;
    }
    Ok(worst)
}

/// Reads a cache file the way the library does: the same reader, the same acceptance rule.
/// Also says why the library would not trust it (not ours), if so.
fn read_cache_file(path: &Path, max_bytes: u64) -> Result<(CacheFile, Option<String>), Problem> {
    let (bytes, _, metadata) = read_json(path, max_bytes)?;
    let file = parse_cache_file(&bytes).map_err(|e| match e {
        AcceptError::Version(e) => Problem::invalid("incompatible version", path, e),
        e => Problem::invalid("invalid cache file", path, e),
    })?;
    Ok((
        file,
        storage_availability_schema::trust::check(&metadata).err(),
    ))
}

fn invalidate(
    out: &mut impl Write,
    path: &Path,
    sections: &[String],
    as_json: bool,
    lock: &LockOptions,
    options: &FileOptions,
) -> io::Result<Status> {
    let cache = match resolve_one(path, options) {
        Ok(cache) => cache,
        Err(status) => return Ok(status),
    };
    let result = edit::lock(&cache, lock.lock_timeout)
        .and_then(|_guard| edit::invalidate(&cache, sections, options.max_bytes));
    if let Err(problem) = result {
        problem.report();
        return Ok(problem.status);
    }
    if as_json {
        let value = json!({ "file": cache.display().to_string(), "invalidated": sections });
        writeln!(out, "{value}")?;
    } else {
        writeln!(
            out,
            "{}: invalidated {} (validated again at the next open)",
            cache.display(),
            sections.join(", ")
        )?;
    }
    Ok(Status::Ok)
}

fn clear(
    out: &mut impl Write,
    path: &Path,
    as_json: bool,
    lock: &LockOptions,
    options: &FileOptions,
) -> io::Result<Status> {
    let cache = match resolve_one(path, options) {
        Ok(cache) => cache,
        Err(status) => return Ok(status),
    };
    let cleared = if std::fs::symlink_metadata(&cache).is_err() {
        // Nothing there: no lock file is created next to nothing.
        Ok(false)
    } else {
        edit::lock(&cache, lock.lock_timeout).and_then(|_guard| edit::clear(&cache))
    };
    let cleared = match cleared {
        Ok(cleared) => cleared,
        Err(problem) => {
            problem.report();
            return Ok(problem.status);
        }
    };
    if as_json {
        let value = json!({ "file": cache.display().to_string(), "cleared": cleared });
        writeln!(out, "{value}")?;
    } else if cleared {
        writeln!(
            out,
            "{}: deleted (every section is validated at the next open)",
            cache.display()
        )?;
    } else {
        writeln!(out, "{}: no cache file, nothing to clear", cache.display())?;
    }
    Ok(Status::Ok)
}

fn export_metrics(
    out: &mut impl Write,
    paths: &[PathBuf],
    as_json: bool,
    output: Option<&Path>,
    options: &FileOptions,
) -> io::Result<Status> {
    let mut worst = Status::Ok;
    let mut samples = Vec::new();
    let mut seen = Vec::new();
    for path in paths {
        let found = match resolve(path, options) {
            Ok(found) => found,
            Err(status) => {
                worst = worst.max(status);
                continue;
            }
        };
        for found in found {
            let key = std::fs::canonicalize(&found.path).unwrap_or_else(|_| found.path.clone());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            match read_cache_file(&found.path, options.max_bytes) {
                Ok((file, _)) => samples.extend(metrics::samples(&file)),
                Err(problem) => {
                    problem.report();
                    worst = worst.max(problem.status);
                }
            }
        }
    }
    let dropped = metrics::dedup(&mut samples);
    if dropped > 0 {
        eprintln!(
            "availability: duplicate series: {dropped} sample(s) repeat a config and section \
             of an earlier file and were left out"
        );
    }
    let text = if as_json {
        let mut text =
            serde_json::to_string_pretty(&metrics::to_json(&samples)).map_err(io::Error::other)?;
        text.push('\n');
        text
    } else {
        metrics::render(&samples)
    };
    match output {
        None => out.write_all(text.as_bytes())?,
        // Keep the last good file rather than replace it with a partial one; the textfile
        // collector's own `node_textfile_mtime_seconds` shows its age.
        Some(target) if worst != Status::Ok => Problem::io(
            "not written",
            target,
            "a cache file could not be read (see above); the previous file is kept",
        )
        .report(),
        Some(target) => {
            if let Err(e) = edit::write_atomic(target, text.as_bytes(), 0o644) {
                Problem::io("cannot write", target, e).report();
                worst = worst.max(Status::Error);
            }
        }
    }
    Ok(worst)
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
