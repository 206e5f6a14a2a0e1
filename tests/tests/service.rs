//! Staying right while a service runs (issue 16): the two clocks (`max_age` for starts,
//! `recheck_every` for a running service), the background refresher, change notifications,
//! end to end over HTTP with a real TCP dependency the test owns and kills.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use storage_availability::{AvailabilityCache, ManualClock, Outcome, StorageAvailability, checks};

const PING_TIMEOUT: Duration = Duration::from_millis(500);
const RECHECK: Duration = Duration::from_secs(1);

#[derive(serde::Serialize, StorageAvailability)]
struct Service {
    #[storage(validate = ping, deref, name = "key_value")]
    kv: String,
}

fn ping(addr: &str) -> Outcome {
    checks::tcp_connect(addr, PING_TIMEOUT)
}

/// `GET path` over a fresh connection; the status code.
fn status_of(addr: SocketAddr, path: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    raw.split(' ').nth(1).unwrap().parse().unwrap()
}

/// Polls `/ready` every 20 ms until it answers `want`; how long that took.
fn wait_for(addr: SocketAddr, want: u16, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if status_of(addr, "/ready") == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "/ready did not answer {want} within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ready_turns_503_when_the_dependency_dies_and_200_when_it_returns() {
    let dir = tempfile::tempdir().unwrap();
    let kv = TcpListener::bind("127.0.0.1:0").unwrap();
    let kv_addr = kv.local_addr().unwrap();
    let cache = Arc::new(
        AvailabilityCache::builder(Service {
            kv: kv_addr.to_string(),
        })
        .config_path(dir.path().join("service.toml"))
        .recheck_every(RECHECK)
        .open()
        .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _enter = runtime.enter();
    // Inside the runtime: the refresher is a tokio task.
    let refresher = cache.spawn_refresher();
    // The subscriber records every availability it is shown.
    let mut statuses = cache.subscribe();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    runtime.spawn(async move {
        while statuses.changed().await.is_ok() {
            let up = statuses.borrow_and_update()[0].1.is_available();
            log.lock().unwrap().push(up);
        }
    });
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = storage_availability::axum::router(Arc::clone(&cache));
    runtime.spawn(async move { axum::serve(listener, app).await });

    assert_eq!(status_of(addr, "/ready"), 200);
    // The dependency dies: seen within recheck_every + the check's timeout (+ slack).
    drop(kv);
    let bound = RECHECK + PING_TIMEOUT + Duration::from_secs(2);
    let down = wait_for(addr, 503, bound);
    eprintln!("503 after {down:?}");
    // It comes back on the same port.
    let kv = TcpListener::bind(kv_addr).unwrap();
    let up = wait_for(addr, 200, bound);
    eprintln!("200 again after {up:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(*seen.lock().unwrap(), [false, true]);
    let stats = cache.stats();
    assert_eq!(stats.transitions, 2, "{stats:?}");
    refresher.stop();
    drop(kv);
}

#[test]
fn a_thread_refresher_outside_a_runtime_notifies_callbacks() {
    let kv = TcpListener::bind("127.0.0.1:0").unwrap();
    let kv_addr = kv.local_addr().unwrap();
    let cache = Arc::new(
        AvailabilityCache::builder(Service {
            kv: kv_addr.to_string(),
        })
        .persist(false)
        .recheck_every(RECHECK)
        .open()
        .unwrap(),
    );
    let reports = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&reports);
    cache.on_change(move |report| {
        log.lock()
            .unwrap()
            .push((report.went_down.clone(), report.came_back.clone()));
    });
    let refresher = cache.spawn_refresher();
    assert!(refresher.is_running());
    drop(kv);
    let start = Instant::now();
    while cache.is_available(ServiceKind::Kv) {
        assert!(start.elapsed() < RECHECK + PING_TIMEOUT + Duration::from_secs(2));
        std::thread::sleep(Duration::from_millis(20));
    }
    let _kv = TcpListener::bind(kv_addr).unwrap();
    while !cache.is_available(ServiceKind::Kv) {
        assert!(start.elapsed() < 2 * (RECHECK + PING_TIMEOUT) + Duration::from_secs(4));
        std::thread::sleep(Duration::from_millis(20));
    }
    refresher.stop();
    assert_eq!(
        *reports.lock().unwrap(),
        [(vec!["key_value"], vec![]), (vec![], vec!["key_value"])]
    );
}

/// A config whose validator counts its calls and how many run at once.
#[derive(serde::Serialize, StorageAvailability)]
struct Counted {
    #[storage(validate = counted, recheck_secs = 30)]
    a: u32,
    #[storage(validate = counted)]
    b: u32,
}

static CALLS: AtomicUsize = AtomicUsize::new(0);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MOST_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static FAIL: AtomicUsize = AtomicUsize::new(0);

fn counted(_: &u32) -> Outcome {
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    MOST_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
    CALLS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(2));
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    if FAIL.load(Ordering::SeqCst) > 0 {
        Outcome::failed("down")
    } else {
        Outcome::ok()
    }
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

/// One test for everything that counts `CALLS` (statics shared by the test binary).
#[test]
fn the_two_clocks_with_a_manual_clock() {
    let clock = ManualClock::new(t0());
    let cache = Arc::new(
        AvailabilityCache::builder(Counted { a: 1, b: 2 })
            .persist(false)
            .clock(clock.clone())
            .max_parallel(1)
            .recheck_every(Duration::from_secs(60))
            .retry_failed_after(Duration::from_secs(3600))
            .open()
            .unwrap(),
    );
    assert_eq!(CALLS.load(Ordering::SeqCst), 2);

    // refresh_if_stale: `a` rechecks every 30 s (its attribute), `b` every 60 s (the
    // builder), whatever max_age (24 h) says.
    clock.advance(Duration::from_secs(29));
    assert!(cache.refresh_if_stale().unwrap().validated.is_empty());
    clock.advance(Duration::from_secs(1));
    assert_eq!(cache.refresh_if_stale().unwrap().validated, ["a"]);
    clock.advance(Duration::from_secs(30));
    assert_eq!(cache.refresh_if_stale().unwrap().validated, ["a", "b"]);
    // `refresh` (a start's rule) keeps using max_age: nothing to do.
    assert!(cache.refresh().unwrap().validated.is_empty());

    // A failure is retried after recheck_every in a running service, not after the
    // hour of retry_failed_after; the transitions are reported.
    FAIL.store(1, Ordering::SeqCst);
    clock.advance(Duration::from_secs(60));
    let report = cache.refresh_if_stale().unwrap();
    assert_eq!(report.went_down, ["a", "b"]);
    FAIL.store(0, Ordering::SeqCst);
    clock.advance(Duration::from_secs(30));
    let report = cache.refresh_if_stale().unwrap();
    assert_eq!(report.came_back, ["a"]);
    assert_eq!(cache.stats().transitions, 3);

    // The refresher and concurrent callers in simulated time: never two validations at
    // once (single flight, and max_parallel 1), and no section validated more often than
    // its recheck_every minus the refresh-ahead margin (a tenth).
    let calls_before = CALLS.load(Ordering::SeqCst);
    MOST_IN_FLIGHT.store(0, Ordering::SeqCst);
    let refresher = cache.spawn_refresher();
    let other = {
        let cache = Arc::clone(&cache);
        std::thread::spawn(move || {
            for _ in 0..100 {
                cache.refresh_if_stale().unwrap();
                std::thread::sleep(Duration::from_millis(3));
            }
        })
    };
    let simulated = Duration::from_secs(600);
    for _ in 0..60 {
        clock.advance(simulated / 60);
        std::thread::sleep(Duration::from_millis(5));
    }
    other.join().unwrap();
    refresher.stop();
    let calls = CALLS.load(Ordering::SeqCst) - calls_before;
    // a: at most 600 / 27 + 1, b: at most 600 / 54 + 1 (and `b`'s pending failure retry).
    assert!(calls <= 600 / 27 + 1 + 600 / 54 + 2, "{calls} validations");
    assert!(calls > 0);
    assert_eq!(MOST_IN_FLIGHT.load(Ordering::SeqCst), 1);
}

#[derive(serde::Serialize, StorageAvailability)]
struct Swr {
    #[storage(validate = swr_check)]
    kv: u32,
}

static SWR_CALLS: AtomicUsize = AtomicUsize::new(0);
static SWR_FAIL: AtomicUsize = AtomicUsize::new(0);
/// While set, the validator waits (up to 10 s) before answering, so that the test can see
/// what `open` answered before the background revalidation publishes.
static SWR_HOLD: AtomicBool = AtomicBool::new(false);

fn hold(flag: &AtomicBool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while flag.load(Ordering::SeqCst) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `done` until it holds, failing past `limit`.
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "not reached within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn swr_check(_: &u32) -> Outcome {
    SWR_CALLS.fetch_add(1, Ordering::SeqCst);
    hold(&SWR_HOLD);
    std::thread::sleep(Duration::from_millis(50));
    if SWR_FAIL.load(Ordering::SeqCst) > 0 {
        Outcome::failed("down")
    } else {
        Outcome::ok()
    }
}

#[test]
fn stale_while_revalidate_answers_a_start_at_once_and_revalidates_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storage.yaml");
    let clock = ManualClock::new(t0());
    let hour = Duration::from_secs(3600);
    let open = || {
        AvailabilityCache::builder(Swr { kv: 1 })
            .config_path(&path)
            .clock(clock.clone())
            .max_age(Some(hour))
            .stale_while_revalidate(Duration::from_secs(600))
            .open()
            .unwrap()
    };
    drop(open());
    assert_eq!(SWR_CALLS.load(Ordering::SeqCst), 1);

    // Past max_age, within the window: answered at once from the file, without waiting
    // for a validation (the one the start began in the background is held).
    clock.advance(hour + Duration::from_secs(60));
    SWR_HOLD.store(true, Ordering::SeqCst);
    let cache = open();
    let status = cache.status(SwrKind::Kv);
    assert_eq!(status.source, storage_availability::Source::Stale);
    assert!(status.is_available());
    assert_eq!(cache.health().http_status(), 200);
    // Without any further call, the start's background revalidation publishes the fresh
    // answer: one validation, one save.
    SWR_HOLD.store(false, Ordering::SeqCst);
    eventually(Duration::from_secs(5), || {
        cache.status(SwrKind::Kv).source == storage_availability::Source::Validated
    });
    assert_eq!(SWR_CALLS.load(Ordering::SeqCst), 2);
    let stats = cache.stats();
    assert_eq!((stats.validations, stats.saves), (1, 1));
    // The file holds the fresh answer: the next start reuses it.
    let next = open();
    assert_eq!(
        next.status(SwrKind::Kv).source,
        storage_availability::Source::Cache
    );
    assert_eq!(SWR_CALLS.load(Ordering::SeqCst), 2);
    drop(next);

    // Past the window: validated before open returns.
    clock.advance(hour + Duration::from_secs(601));
    let cache = open();
    assert_eq!(SWR_CALLS.load(Ordering::SeqCst), 3);
    assert_eq!(
        cache.status(SwrKind::Kv).source,
        storage_availability::Source::Validated
    );

    // A failed result is never served stale: once its retry is due, a start validates it.
    SWR_FAIL.store(1, Ordering::SeqCst);
    cache.invalidate(SwrKind::Kv);
    cache.refresh().unwrap();
    assert_eq!(SWR_CALLS.load(Ordering::SeqCst), 4);
    assert!(!cache.is_available(SwrKind::Kv));
    SWR_FAIL.store(0, Ordering::SeqCst);
    clock.advance(Duration::from_secs(31));
    let cache = open();
    assert_eq!(SWR_CALLS.load(Ordering::SeqCst), 5);
    assert_eq!(
        cache.status(SwrKind::Kv).source,
        storage_availability::Source::Validated
    );
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(serde::Serialize, StorageAvailability)]
struct Logged {
    #[storage(validate = logged_check, timeout_ms = 1000)]
    kv: u32,
}

/// 0: pass; 1: fail; 2: panic; 3: hang past the timeout.
static LOGGED_MODE: AtomicUsize = AtomicUsize::new(0);

fn logged_check(_: &u32) -> Outcome {
    match LOGGED_MODE.load(Ordering::SeqCst) {
        0 => Outcome::ok(),
        1 => Outcome::failed("connection refused"),
        2 => panic!("validator exploded"),
        _ => {
            std::thread::sleep(Duration::from_millis(1200));
            Outcome::ok()
        }
    }
}

#[test]
fn failures_timeouts_panics_and_transitions_are_logged() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storage.yaml");
    tracing::subscriber::with_default(subscriber, || {
        let cache = AvailabilityCache::open(Logged { kv: 1 }, &path).unwrap();
        drop(AvailabilityCache::open(Logged { kv: 1 }, &path).unwrap()); // warm
        for mode in [1, 0, 2, 0, 3] {
            LOGGED_MODE.store(mode, Ordering::SeqCst);
            cache.invalidate(LoggedKind::Kv);
            cache.refresh().unwrap();
        }
    });
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let has = |level: &str, words: &[&str]| {
        lines
            .iter()
            .any(|l| l.contains(level) && words.iter().all(|w| l.contains(w)))
    };
    assert!(has("DEBUG", &["warm start"]), "{text}");
    assert!(
        has("WARN", &["validation failed", "kv", "connection refused"]),
        "{text}"
    );
    assert!(has("WARN", &["went down", "kv"]), "{text}");
    assert!(has("INFO", &["came back", "kv"]), "{text}");
    assert!(
        has("WARN", &["validator panicked", "kv", "validator exploded"]),
        "{text}"
    );
    assert!(has("WARN", &["timed out", "kv"]), "{text}");
}

/// A section whose `Serialize` fails: its key cannot be computed.
struct Unkeyable;

impl serde::Serialize for Unkeyable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("cannot serialise"))
    }
}

#[derive(serde::Serialize, StorageAvailability)]
struct UnkeyableConfig {
    #[storage(validate = unkeyable_check)]
    section: Unkeyable,
}

static UNKEYABLE_CALLS: AtomicUsize = AtomicUsize::new(0);

fn unkeyable_check(_: &Unkeyable) -> Outcome {
    UNKEYABLE_CALLS.fetch_add(1, Ordering::SeqCst);
    Outcome::ok()
}

/// Regression: an uncacheable section was validated at every `refresh_if_stale`, so the
/// refresher (which looks every second) validated it every second.
#[test]
fn an_uncacheable_section_is_rechecked_every_recheck_every_not_at_every_look() {
    let clock = ManualClock::new(t0());
    let cache = AvailabilityCache::builder(UnkeyableConfig { section: Unkeyable })
        .persist(false)
        .clock(clock.clone())
        .open()
        .unwrap();
    assert_eq!(UNKEYABLE_CALLS.load(Ordering::SeqCst), 1);
    for _ in 0..5 {
        clock.advance(Duration::from_secs(5));
        cache.refresh_if_stale().unwrap();
    }
    assert_eq!(UNKEYABLE_CALLS.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(5)); // 30 s: the default recheck_every
    assert_eq!(cache.refresh_if_stale().unwrap().validated, ["section"]);
    // An explicit refresh still validates it (never reused across refreshes of a start's kind).
    cache.refresh().unwrap();
    assert_eq!(UNKEYABLE_CALLS.load(Ordering::SeqCst), 3);
}

#[derive(serde::Serialize, StorageAvailability)]
struct SwrAsync {
    #[storage(validate = swr_async_check, async)]
    kv: u32,
}

static SWR_ASYNC_CALLS: AtomicUsize = AtomicUsize::new(0);
static SWR_ASYNC_FAIL: AtomicBool = AtomicBool::new(false);
static SWR_ASYNC_HOLD: AtomicBool = AtomicBool::new(false);

async fn swr_async_check(_: &u32) -> Outcome {
    SWR_ASYNC_CALLS.fetch_add(1, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(10);
    while SWR_ASYNC_HOLD.load(Ordering::SeqCst) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    if SWR_ASYNC_FAIL.load(Ordering::SeqCst) {
        Outcome::failed("down")
    } else {
        Outcome::ok()
    }
}

/// `open_async` with `stale_while_revalidate`: the stale answer at once, then, without any
/// further call, one background revalidation (a tokio task); a section that now fails turns
/// unavailable the same way. Dropping the cache while it runs is harmless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_async_revalidates_what_it_served_stale_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("storage.yaml");
    let clock = ManualClock::new(t0());
    let hour = Duration::from_secs(3600);
    let open = || {
        AvailabilityCache::builder(SwrAsync { kv: 1 })
            .config_path(&path)
            .clock(clock.clone())
            .max_age(Some(hour))
            .stale_while_revalidate(Duration::from_secs(600))
            .open_async()
    };
    let calls = || SWR_ASYNC_CALLS.load(Ordering::SeqCst);
    drop(open().await.unwrap());
    assert_eq!(calls(), 1);

    clock.advance(hour + Duration::from_secs(60));
    SWR_ASYNC_HOLD.store(true, Ordering::SeqCst);
    let cache = open().await.unwrap();
    assert_eq!(
        cache.status(SwrAsyncKind::Kv).source,
        storage_availability::Source::Stale
    );
    assert!(cache.is_available(SwrAsyncKind::Kv));
    SWR_ASYNC_HOLD.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.status(SwrAsyncKind::Kv).source != storage_availability::Source::Validated {
        assert!(Instant::now() < deadline, "not revalidated within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(calls(), 2);
    assert_eq!((cache.stats().validations, cache.stats().saves), (1, 1));

    // Served stale again, and the dependency is down now: the background revalidation
    // makes it unavailable without any call.
    clock.advance(hour + Duration::from_secs(60));
    SWR_ASYNC_FAIL.store(true, Ordering::SeqCst);
    let cache = open().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while cache.is_available(SwrAsyncKind::Kv) {
        assert!(Instant::now() < deadline, "still available after 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        cache.status(SwrAsyncKind::Kv).source,
        storage_availability::Source::Validated
    );
    assert_eq!(calls(), 3);

    // Dropped while its background revalidation is held: harmless, and the next start
    // still answers (the file is left as it was, or saved whole).
    SWR_ASYNC_FAIL.store(false, Ordering::SeqCst);
    cache.invalidate(SwrAsyncKind::Kv);
    cache.refresh_async().await.unwrap();
    assert!(cache.is_available(SwrAsyncKind::Kv));
    clock.advance(hour + Duration::from_secs(60));
    SWR_ASYNC_HOLD.store(true, Ordering::SeqCst);
    let stale = open().await.unwrap();
    assert_eq!(
        stale.status(SwrAsyncKind::Kv).source,
        storage_availability::Source::Stale
    );
    drop(stale);
    SWR_ASYNC_HOLD.store(false, Ordering::SeqCst);
    let again = open().await.unwrap();
    assert!(again.is_available(SwrAsyncKind::Kv));
}
