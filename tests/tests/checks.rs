//! `storage_availability::checks` against real resources: directories and files on disk, TCP
//! listeners on 127.0.0.1, and a small HTTP server on 127.0.0.1 (no other network).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use storage_availability::{AvailabilityCache, Outcome, StorageAvailability, checks};

fn error_of(outcome: &Outcome) -> String {
    assert!(!outcome.is_ok(), "expected a failure");
    outcome.last_error().unwrap().to_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

// ---- directories and files ----

#[test]
fn dir_writable_passes_on_a_real_directory_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
    for _ in 0..5 {
        let outcome = checks::dir_writable(dir.path());
        assert!(outcome.is_ok(), "{:?}", outcome.errors());
    }
    assert_eq!(entries(dir.path()), ["keep.txt"]);
}

#[test]
fn dir_writable_fails_on_a_missing_directory_without_creating_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("a/b");
    let error = error_of(&checks::dir_writable(&missing));
    assert_eq!(error, format!("{} does not exist", missing.display()));
    assert!(!dir.path().join("a").exists());
}

#[test]
fn dir_writable_fails_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let error = error_of(&checks::dir_writable(&file));
    assert_eq!(error, format!("{} is not a directory", file.display()));
}

/// `/proc` refuses new files even to root: a real directory that is not writable.
#[cfg(target_os = "linux")]
#[test]
fn dir_writable_fails_where_the_kernel_refuses_files() {
    let error = error_of(&checks::dir_writable("/proc"));
    assert!(
        error.starts_with("cannot create a file in /proc: "),
        "{error}"
    );
}

#[cfg(unix)]
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let file = tempfile::NamedTempFile::new().unwrap();
    file.as_file().metadata().unwrap().uid() == 0
}

/// A directory of another user with mode 0755. As root (whom permission bits do not stop)
/// the check runs in a child process as uid 65534; as anyone else, in this process on a
/// directory made read-only with chmod.
#[cfg(unix)]
#[test]
fn dir_writable_fails_on_a_read_only_directory() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    if !running_as_root() {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).unwrap();
        let error = error_of(&checks::dir_writable(dir.path()));
        assert!(error.starts_with("cannot create a file in"), "{error}");
        assert!(error.contains("ermission denied"), "{error}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "read_only_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CHECKS_READ_ONLY_DIR", dir.path())
        .uid(65534)
        .gid(65534)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            eprintln!("note: cannot run the test binary as uid 65534 ({e}); skipped");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if stdout.contains("SKIP") {
        eprintln!("note: uid 65534 cannot reach the temp directory; skipped");
        return;
    }
    assert!(
        output.status.success() && stdout.contains("READ-ONLY FAILED AS EXPECTED"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(entries(dir.path()).is_empty());
}

/// Run by `dir_writable_fails_on_a_read_only_directory` as another user; a no-op otherwise.
#[test]
fn read_only_child() {
    let Some(dir) = std::env::var_os("CHECKS_READ_ONLY_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    if std::fs::metadata(&dir).is_err() {
        println!("SKIP");
        return;
    }
    let error = error_of(&checks::dir_writable(&dir));
    assert!(error.starts_with("cannot create a file in"), "{error}");
    assert!(error.contains("ermission denied"), "{error}");
    println!("READ-ONLY FAILED AS EXPECTED: {error}");
}

#[test]
fn file_readable_on_real_files() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, "a: 1\n").unwrap();
    assert!(checks::file_readable(&file).is_ok());

    let missing = dir.path().join("missing.yaml");
    let error = error_of(&checks::file_readable(&missing));
    assert_eq!(error, format!("{} does not exist", missing.display()));

    let error = error_of(&checks::file_readable(dir.path()));
    assert_eq!(
        error,
        format!("{} is a directory, not a file", dir.path().display())
    );
}

/// A FIFO with no writer would block an `open` for reading: the check refuses it first.
#[cfg(unix)]
#[test]
fn file_readable_refuses_a_fifo_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("note: no mkfifo; skipped");
        return;
    }
    let error = error_of(&checks::file_readable(&fifo));
    assert_eq!(error, format!("{} is not a regular file", fifo.display()));
}

// ---- TCP ----

fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

#[test]
fn tcp_connect_to_a_real_listener_and_a_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    assert!(checks::tcp_connect(&addr, Duration::from_secs(2)).is_ok());

    let closed = closed_port();
    let error = error_of(&checks::tcp_connect(&closed, Duration::from_secs(2)));
    assert!(
        error.starts_with(&format!("cannot connect to {closed}: ")),
        "{error}"
    );
    assert_eq!(error.matches(&closed).count(), 1, "{error}");
}

#[test]
fn tcp_connect_resolves_names() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // `localhost` may resolve to ::1 first, where nothing listens: the next address is tried.
    let outcome = checks::tcp_connect(&format!("localhost:{port}"), Duration::from_secs(2));
    assert!(outcome.is_ok(), "{:?}", outcome.errors());

    let error = error_of(&checks::tcp_connect("localhost", Duration::from_secs(1)));
    assert!(error.starts_with("cannot resolve localhost: "), "{error}");
}

#[tokio::test]
async fn tcp_connect_async_to_a_real_listener_and_a_closed_port() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    assert!(
        checks::tcp_connect_async(&addr, Duration::from_secs(2))
            .await
            .is_ok()
    );
    let port = listener.local_addr().unwrap().port();
    let by_name = checks::tcp_connect_async(&format!("localhost:{port}"), Duration::from_secs(2));
    assert!(by_name.await.is_ok());

    let closed = closed_port();
    let outcome = checks::tcp_connect_async(&closed, Duration::from_secs(2)).await;
    let error = error_of(&outcome);
    assert!(
        error.starts_with(&format!("cannot connect to {closed}: ")),
        "{error}"
    );
    assert_eq!(error.matches(&closed).count(), 1, "{error}");
}

// ---- HTTP ----

/// A tiny HTTP/1.1 server on 127.0.0.1: `/ok` answers 200, `/down` 503, `/moved` redirects
/// to `/ok`, `/slow` answers 200 after 3 s, anything else 404. It serves at most 64
/// connections, then stops by itself.
fn http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || serve(stream));
        }
    });
    base
}

fn serve(mut stream: TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line.split(' ').nth(1).unwrap_or("/");
    let head = match path.split('?').next().unwrap_or("") {
        "/ok" => "200 OK\r\n".to_owned(),
        "/down" => "503 Service Unavailable\r\n".to_owned(),
        "/moved" => "302 Found\r\nLocation: /ok\r\n".to_owned(),
        "/slow" => {
            std::thread::sleep(Duration::from_secs(3));
            "200 OK\r\n".to_owned()
        }
        _ => "404 Not Found\r\n".to_owned(),
    };
    let _ = stream.write_all(
        format!("HTTP/1.1 {head}Content-Length: 2\r\nConnection: close\r\n\r\nhi").as_bytes(),
    );
}

#[test]
fn http_ok_passes_on_2xx_and_fails_with_the_status_otherwise() {
    let base = http_server();
    let timeout = Duration::from_secs(5);
    assert!(checks::http_ok(&format!("{base}/ok"), timeout).is_ok());
    assert!(checks::http_ok(&format!("{base}/moved"), timeout).is_ok());

    let error = error_of(&checks::http_ok(&format!("{base}/down"), timeout));
    assert_eq!(
        error,
        format!("GET {base}/down answered 503 Service Unavailable")
    );
    let error = error_of(&checks::http_ok(&format!("{base}/nothing"), timeout));
    assert_eq!(error, format!("GET {base}/nothing answered 404 Not Found"));
}

#[test]
fn http_ok_reports_a_closed_port_and_a_timeout() {
    let closed = closed_port();
    let error = error_of(&checks::http_ok(
        &format!("http://{closed}/health"),
        Duration::from_secs(2),
    ));
    assert!(
        error.starts_with(&format!("GET http://{closed}/health: ")),
        "{error}"
    );

    let base = http_server();
    let started = Instant::now();
    let error = error_of(&checks::http_ok(
        &format!("{base}/slow"),
        Duration::from_millis(300),
    ));
    assert_eq!(error, format!("GET {base}/slow: no answer within 300ms"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn http_ok_never_shows_credentials() {
    let base = http_server();
    let with_secrets = base.replace("http://", "http://user:hunter2@") + "/down?token=hunter2";
    let error = error_of(&checks::http_ok(&with_secrets, Duration::from_secs(5)));
    assert!(!error.contains("hunter2"), "{error}");
    assert_eq!(
        error,
        format!("GET {base}/down answered 503 Service Unavailable")
    );
}

#[tokio::test]
async fn http_ok_async_against_a_real_server() {
    let base = http_server();
    let timeout = Duration::from_secs(5);
    assert!(
        checks::http_ok_async(&format!("{base}/ok"), timeout)
            .await
            .is_ok()
    );
    let outcome = checks::http_ok_async(&format!("{base}/down"), timeout).await;
    assert_eq!(
        error_of(&outcome),
        format!("GET {base}/down answered 503 Service Unavailable")
    );
    let outcome = checks::http_ok_async(&format!("{base}/slow"), Duration::from_millis(300)).await;
    assert_eq!(
        error_of(&outcome),
        format!("GET {base}/slow: no answer within 300ms")
    );
}

// ---- environment ----

#[test]
fn env_present_on_the_real_environment() {
    assert!(checks::env_present("PATH").is_ok());
    let error = error_of(&checks::env_present(
        "STORAGE_AVAILABILITY_SURELY_UNSET_VAR",
    ));
    assert_eq!(
        error,
        "environment variable STORAGE_AVAILABILITY_SURELY_UNSET_VAR is not set"
    );
}

// ---- as validators ----

#[derive(serde::Serialize, StorageAvailability)]
struct FsConfig {
    #[storage(validate = check_data)]
    data: PathBuf,
    #[storage(validate = check_settings)]
    settings: PathBuf,
}

fn check_data(dir: &PathBuf) -> Outcome {
    checks::dir_writable(dir)
}

fn check_settings(file: &PathBuf) -> Outcome {
    checks::file_readable(file)
}

#[test]
fn checks_serve_as_validators() {
    let dir = tempfile::tempdir().unwrap();
    let settings = dir.path().join("settings.toml");
    std::fs::write(&settings, "").unwrap();
    let config = FsConfig {
        data: dir.path().join("missing"),
        settings,
    };
    let cache = AvailabilityCache::builder(config)
        .persist(false)
        .open()
        .unwrap();
    assert!(cache.is_available(FsConfigKind::Settings));
    let data = cache.status(FsConfigKind::Data);
    assert!(!data.is_available());
    assert!(
        data.last_error.unwrap().ends_with("missing does not exist"),
        "the check's own message is the section's error"
    );
}

#[derive(serde::Serialize, StorageAvailability)]
struct AsyncConfig {
    #[storage(validate = checks::dir_writable_async, async)]
    data: PathBuf,
    #[storage(validate = checks::file_readable_async, async)]
    settings: PathBuf,
}

#[tokio::test]
async fn async_checks_serve_as_async_validators() {
    let dir = tempfile::tempdir().unwrap();
    let config = AsyncConfig {
        data: dir.path().to_path_buf(),
        settings: dir.path().join("missing.toml"),
    };
    let cache = AvailabilityCache::builder(config)
        .persist(false)
        .open_async()
        .await
        .unwrap();
    assert!(cache.is_available(AsyncConfigKind::Data));
    assert!(!cache.is_available(AsyncConfigKind::Settings));
    assert!(entries(dir.path()).is_empty());
}
