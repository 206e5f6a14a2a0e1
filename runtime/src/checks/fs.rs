//! File-system checks: a writable directory, a readable file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::Outcome;

/// What the probe file holds while it exists.
const PROBE_CONTENT: &[u8] = b"storage-availability write probe; safe to delete\n";

/// Checks that `dir` is an existing directory this process can write to, with a real write
/// probe: it creates a file with a unique name (`.storage-availability-probe-…`) in `dir`,
/// writes to it, syncs it to the disk, and removes it.
///
/// This is what a save does, so it catches what a look at the permission bits cannot: a
/// read-only mount, a full disk or quota, an ACL, a network file system that refuses writes.
/// It does not create `dir`: a missing directory fails (create it first if that is what you
/// want to check). The probe file is removed whether a later step fails or not; if the
/// removal itself fails, the outcome says so and names the file.
///
/// The error names the directory and the step that failed: `… does not exist`,
/// `… is not a directory`, `cannot create a file in …`, `cannot write to …`,
/// `cannot sync …`, `cannot remove …`.
///
/// A blocking call; from an `async` validator use
#[cfg_attr(feature = "tokio", doc = "[`dir_writable_async`].")]
#[cfg_attr(
    not(feature = "tokio"),
    doc = "`dir_writable_async` (feature `tokio`)."
)]
///
/// ```
/// use storage_availability::checks;
///
/// let dir = std::env::temp_dir();
/// assert!(checks::dir_writable(&dir).is_ok());
///
/// let missing = dir.join("no-such-directory-here");
/// let outcome = checks::dir_writable(&missing);
/// assert!(outcome.last_error().unwrap().contains("does not exist"));
/// ```
pub fn dir_writable(dir: impl AsRef<Path>) -> Outcome {
    let dir = dir.as_ref();
    match probe_dir(dir) {
        Ok(()) => Outcome::ok(),
        Err(error) => Outcome::failed(error),
    }
}

/// Checks that `path` is a regular file this process can open and read (it reads at most
/// one byte; an empty file passes).
///
/// Symbolic links are followed. A directory, a FIFO, a socket or a device fails without
/// being opened, so the check never blocks on a FIFO with no writer.
///
/// A blocking call; from an `async` validator use
#[cfg_attr(feature = "tokio", doc = "[`file_readable_async`].")]
#[cfg_attr(
    not(feature = "tokio"),
    doc = "`file_readable_async` (feature `tokio`)."
)]
///
/// ```
/// use storage_availability::checks;
///
/// let file = std::env::temp_dir().join("file_readable-doc-example.txt");
/// std::fs::write(&file, "hello").unwrap();
/// assert!(checks::file_readable(&file).is_ok());
///
/// let outcome = checks::file_readable(std::env::temp_dir());
/// assert!(outcome.last_error().unwrap().contains("is a directory"));
/// # std::fs::remove_file(&file).unwrap();
/// ```
pub fn file_readable(path: impl AsRef<Path>) -> Outcome {
    let path = path.as_ref();
    match read_one_byte(path) {
        Ok(()) => Outcome::ok(),
        Err(error) => Outcome::failed(error),
    }
}

/// [`dir_writable`] for `async` validators: the same probe, on tokio's blocking thread pool
/// (`spawn_blocking`), so the runtime's workers never wait for the disk.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use storage_availability::checks;
///
/// let outcome = checks::dir_writable_async(std::env::temp_dir()).await;
/// assert!(outcome.is_ok());
/// # }
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub fn dir_writable_async(dir: impl AsRef<Path>) -> impl Future<Output = Outcome> + Send + 'static {
    let dir = dir.as_ref().to_path_buf();
    super::on_blocking_thread("directory", move || dir_writable(&dir))
}

/// [`file_readable`] for `async` validators: the same check, on tokio's blocking thread pool
/// (`spawn_blocking`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use storage_availability::checks;
///
/// let missing = std::env::temp_dir().join("no-such-file-here.txt");
/// let outcome = checks::file_readable_async(&missing).await;
/// assert!(outcome.last_error().unwrap().contains("does not exist"));
/// # }
/// ```
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub fn file_readable_async(
    path: impl AsRef<Path>,
) -> impl Future<Output = Outcome> + Send + 'static {
    let path = path.as_ref().to_path_buf();
    super::on_blocking_thread("file", move || file_readable(&path))
}

fn probe_dir(dir: &Path) -> Result<(), String> {
    let shown = dir.display();
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(format!("{shown} is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!("{shown} does not exist"));
        }
        Err(e) => return Err(format!("cannot look up {shown}: {e}")),
    }

    let (file, probe) =
        create_probe(dir).map_err(|e| format!("cannot create a file in {shown}: {e}"))?;
    let written = write_and_sync(file);
    let removed = std::fs::remove_file(&probe);
    let failed_step = match written {
        Ok(()) => None,
        Err((step, e)) => Some(format!("cannot {step} a file in {shown}: {e}")),
    };
    match (failed_step, removed) {
        (None, Ok(())) => Ok(()),
        (Some(step), Ok(())) => Err(step),
        (step, Err(e)) => {
            tracing::warn!(
                target: "storage_availability",
                probe = %probe.display(),
                error = %e,
                "could not remove the write probe file"
            );
            let removal = format!(
                "cannot remove the probe file {} (delete it by hand): {e}",
                probe.display()
            );
            Err(match step {
                Some(step) => format!("{step}; {removal}"),
                None => removal,
            })
        }
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "the write probe syncs as a save does, to see the disk accept the write"
)]
fn write_and_sync(mut file: File) -> Result<(), (&'static str, io::Error)> {
    file.write_all(PROBE_CONTENT).map_err(|e| ("write to", e))?;
    file.sync_all().map_err(|e| ("sync", e))
}

/// Creates a new file with a name no other probe (of this or another process) uses.
fn create_probe(dir: &Path) -> io::Result<(File, PathBuf)> {
    let mut last_error = None;
    for _ in 0..8 {
        let path = dir.join(format!(
            ".storage-availability-probe-{}-{:016x}",
            std::process::id(),
            crate::random::random_u64()
        ));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| io::Error::other("no unique probe file name")))
}

fn read_one_byte(path: &Path) -> Result<(), String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => {}
        Ok(meta) if meta.is_dir() => return Err(format!("{shown} is a directory, not a file")),
        Ok(_) => return Err(format!("{shown} is not a regular file")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!("{shown} does not exist"));
        }
        Err(e) => return Err(format!("cannot look up {shown}: {e}")),
    }
    let mut file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let mut byte = [0u8; 1];
    file.read(&mut byte)
        .map(drop)
        .map_err(|e| format!("cannot read {shown}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn a_writable_directory_passes_and_keeps_no_probe() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..3 {
            let outcome = dir_writable(dir.path());
            assert!(outcome.is_ok(), "{:?}", outcome.errors());
        }
        assert!(entries(dir.path()).is_empty(), "{:?}", entries(dir.path()));
    }

    #[test]
    fn probe_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let (_a, first) = create_probe(dir.path()).unwrap();
        let (_b, second) = create_probe(dir.path()).unwrap();
        assert_ne!(first, second);
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(".storage-availability-probe-"), "{name}");
    }

    #[test]
    fn a_missing_directory_fails_and_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let outcome = dir_writable(&missing);
        let error = outcome.last_error().unwrap();
        assert!(error.contains("does not exist"), "{error}");
        assert!(error.contains("missing"), "{error}");
        assert!(!missing.exists());
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let outcome = dir_writable(&file);
        let error = outcome.last_error().unwrap();
        assert!(error.contains("is not a directory"), "{error}");
        assert_eq!(std::fs::read(&file).unwrap(), b"x");
    }

    #[test]
    fn a_regular_file_is_readable_even_when_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("empty");
        std::fs::write(&file, "").unwrap();
        assert!(file_readable(&file).is_ok());
        std::fs::write(&file, "content").unwrap();
        assert!(file_readable(&file).is_ok());
    }

    #[test]
    fn missing_files_and_directories_are_not_readable_files() {
        let dir = tempfile::tempdir().unwrap();
        let error = file_readable(dir.path().join("nope")).errors().join("");
        assert!(error.contains("does not exist"), "{error}");
        let error = file_readable(dir.path()).errors().join("");
        assert!(error.contains("is a directory"), "{error}");
    }
}
