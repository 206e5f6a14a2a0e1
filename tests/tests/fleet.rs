//! The fleet store against a real `redis-server` (issue 9): one validation per shared
//! section for a whole fleet, lease takeover after a SIGKILL, Redis killed, paused and
//! restarted, garbage records, TTLs, a warm start without a Redis command, shared failure
//! backoff, and no password in any log line or error message.
//!
//! Each test starts its own server on a free port (`RedisServer`, killed on drop).

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use storage_availability::{
    AvailabilityCache, Clock, ManualClock, RedisStore, SharedStore, Source, StorageAvailability,
};
use storage_availability_tests::fleet::{
    BlackHole, FleetConfig, FleetConfigKind as K, FleetProbe, RedisServer, SilentListener,
    logged_calls,
};

fn config(remote: &str, host: &str, log: Option<&Path>, sleep_ms: u64) -> FleetConfig {
    FleetConfig {
        remote: FleetProbe::new(remote, host, log, sleep_ms),
        local: FleetProbe::new("local", host, log, sleep_ms),
    }
}

fn redis(server: &RedisServer) -> redis::Connection {
    redis::Client::open(server.url(None))
        .unwrap()
        .get_connection()
        .unwrap()
}

fn keys(conn: &mut redis::Connection) -> Vec<String> {
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(conn).unwrap();
    keys.sort();
    keys
}

fn pttl(conn: &mut redis::Connection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(conn).unwrap()
}

/// The key of the `remote` section of `config` under the default namespace.
fn remote_key(config: &FleetConfig) -> String {
    format!(
        "storage-availability:{}:remote:{}",
        FleetConfig::config_type(),
        config.section_key(K::Remote).as_str()
    )
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn clock() -> ManualClock {
    ManualClock::new(SystemTime::now())
}

#[test]
fn four_hosts_of_four_processes_validate_each_shared_section_once() {
    let server = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let start_at = unix_ms(SystemTime::now() + Duration::from_millis(600));
    let mut children = Vec::new();
    for host in 0..4 {
        let cache = dir
            .path()
            .join(format!("host{host}"))
            .join("availability.json");
        std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
        for _ in 0..4 {
            let child = Command::new(env!("CARGO_BIN_EXE_fleet_node"))
                .arg(&cache)
                .arg(server.url(None))
                .arg(&log)
                .arg(format!("host{host}"))
                .arg("300")
                .arg(start_at.to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            children.push(child);
        }
    }
    let outputs: Vec<serde_json::Value> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect();
    for out in &outputs {
        assert_eq!(out["remote_ok"], true, "{out}");
        assert_eq!(out["local_ok"], true, "{out}");
        assert_eq!(out["shared_errors"], 0, "{out}");
    }

    let calls = logged_calls(&log);
    let remote: Vec<_> = calls.iter().filter(|(t, _)| t == "remote").collect();
    assert_eq!(
        remote.len(),
        1,
        "one validation of the shared section: {calls:?}"
    );
    for host in 0..4 {
        let host = format!("host{host}");
        let local = calls.iter().filter(|(t, h)| t == "local" && *h == host);
        assert_eq!(
            local.count(),
            1,
            "one validation per host of its own section: {calls:?}"
        );
    }
    let sources = |s: &str| outputs.iter().filter(|o| o["remote"] == s).count();
    assert_eq!(sources("validated"), 1);
    assert_eq!(
        sources("shared"),
        3,
        "the other hosts read it from Redis: {outputs:?}"
    );
    assert_eq!(
        sources("cache"),
        12,
        "their neighbours read it from the file"
    );

    // Only the shared section reached Redis, with a TTL; no lease is left behind.
    let mut conn = redis(&server);
    let keys = keys(&mut conn);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].contains(":remote:") && !keys[0].ends_with(":lease"));
    assert!(pttl(&mut conn, &keys[0]) > 0);
}

#[test]
fn a_killed_lease_holder_is_taken_over_after_its_lease() {
    let server = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    // Host A validates slowly (1.5 s of its 2 s timeout: the lease is 3 s) and is killed.
    let mut holder = Command::new(env!("CARGO_BIN_EXE_fleet_node"))
        .arg(dir.path().join("a.json"))
        .arg(server.url(None))
        .arg(&log)
        .arg("hostA")
        .arg("1500")
        .arg("0")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !logged_calls(&log).iter().any(|(t, _)| t == "remote") {
        assert!(Instant::now() < deadline, "host A never started validating");
        std::thread::sleep(Duration::from_millis(10));
    }
    let killed_at = Instant::now();
    holder.kill().unwrap();
    holder.wait().unwrap();

    let cache = AvailabilityCache::builder(config("remote", "hostB", Some(&log), 10))
        .cache_path(dir.path().join("b.json"))
        .redis(&server.url(None))
        .open()
        .unwrap();
    let waited = killed_at.elapsed();
    assert_eq!(cache.status(K::Remote).source, Source::Validated);
    assert!(cache.is_available(K::Remote));
    let stats = cache.stats();
    assert_eq!(
        (stats.lease_waits, stats.lease_timeouts),
        (1, 0),
        "{stats:?}"
    );
    // B waited for the dead holder's lease to expire, and not much longer.
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
    assert!(waited < Duration::from_millis(4500), "{waited:?}");
    let remote = logged_calls(&log)
        .into_iter()
        .filter(|(t, _)| t == "remote")
        .map(|(_, h)| h)
        .collect::<Vec<_>>();
    assert_eq!(remote, ["hostA", "hostB"]);
    let mut conn = redis(&server);
    assert_eq!(keys(&mut conn), [remote_key(cache.config())]);
}

#[test]
fn redis_killed_mid_run_gives_local_answers_without_hanging() {
    let mut server = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = AvailabilityCache::builder(config("remote", "a", None, 0))
        .cache_path(dir.path().join("a.json"))
        .max_age(Some(Duration::from_secs(60)))
        .clock(clock.clone())
        .redis(&server.url(None))
        .open()
        .unwrap();
    assert_eq!(cache.stats().shared_publishes, 1);

    server.kill();
    clock.advance(Duration::from_secs(61));
    let started = Instant::now();
    let report = cache.refresh().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.validated, ["remote", "local"]);
    assert!(cache.is_available(K::Remote));
    assert_eq!(cache.config().remote.calls(), 2);
    let stats = cache.stats();
    assert_eq!((stats.shared_errors, stats.shared_publishes), (1, 1));

    // A new process meanwhile: connection refused, local answers, start-up not delayed.
    let started = Instant::now();
    let other = AvailabilityCache::builder(config("fail-remote", "b", None, 0))
        .cache_path(dir.path().join("b.json"))
        .redis(&server.url(None))
        .open()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!other.is_available(K::Remote));
    assert_eq!(
        other.status(K::Remote).last_error.as_deref(),
        Some("fail-remote is down")
    );
    assert_eq!(other.stats().shared_errors, 1);
}

#[test]
fn a_paused_redis_costs_at_most_its_timeouts() {
    let server = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let store = Arc::new(
        RedisStore::new(&server.url(None))
            .unwrap()
            .connect_timeout(Duration::from_millis(200))
            .response_timeout(Duration::from_millis(300)),
    );
    let cache = AvailabilityCache::builder(config("remote", "a", None, 0))
        .cache_path(dir.path().join("a.json"))
        .max_age(Some(Duration::from_secs(60)))
        .clock(clock.clone())
        .shared_store(Arc::clone(&store))
        .open()
        .unwrap();
    assert_eq!(cache.stats().shared_publishes, 1);

    // Connected, then the server stops answering: one response timeout, then local.
    server.pause(true);
    clock.advance(Duration::from_secs(61));
    let started = Instant::now();
    cache.refresh().unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_millis(1000),
        "{took:?}"
    );
    assert!(cache.is_available(K::Remote));
    assert_eq!(cache.stats().shared_errors, 1);

    // A new connection to the stopped server: one connect timeout, then local.
    let started = Instant::now();
    let other = AvailabilityCache::builder(config("remote", "b", None, 0))
        .cache_path(dir.path().join("b.json"))
        .shared_store(Arc::clone(&store))
        .open()
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(other.status(K::Remote).source, Source::Validated);
    assert_eq!(other.stats().shared_errors, 1);
    server.pause(false);
}

#[test]
fn a_restarted_redis_is_used_again() {
    let mut server = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let cache = AvailabilityCache::builder(config("remote", "a", None, 0))
        .cache_path(dir.path().join("a.json"))
        .max_age(Some(Duration::from_secs(60)))
        .clock(clock.clone())
        .redis(&server.url(None))
        .open()
        .unwrap();
    server.kill();
    clock.advance(Duration::from_secs(61));
    cache.refresh().unwrap();
    assert_eq!(cache.stats().shared_errors, 1);

    server.restart();
    clock.advance(Duration::from_secs(61));
    cache.refresh().unwrap();
    let stats = cache.stats();
    assert_eq!(
        (stats.shared_errors, stats.shared_publishes),
        (1, 2),
        "{stats:?}"
    );
    let mut conn = redis(&server);
    assert_eq!(keys(&mut conn), [remote_key(cache.config())]);

    // And another host reads it from there.
    let other = AvailabilityCache::builder(config("remote", "b", None, 0))
        .cache_path(dir.path().join("b.json"))
        .clock(clock.clone())
        .redis(&server.url(None))
        .open()
        .unwrap();
    assert_eq!(other.status(K::Remote).source, Source::Shared);
    assert_eq!(other.config().remote.calls(), 0);
}

#[test]
fn a_garbage_record_is_ignored_and_replaced() {
    let server = RedisServer::start(&[]);
    let mut conn = redis(&server);
    let probe = config("remote", "a", None, 0);
    let key = remote_key(&probe);
    let good = {
        let dir = tempfile::tempdir().unwrap();
        let cache = AvailabilityCache::builder(probe.clone())
            .cache_path(dir.path().join("seed.json"))
            .redis(&server.url(None))
            .open()
            .unwrap();
        assert_eq!(cache.stats().shared_publishes, 1);
        let good: String = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
        good
    };
    let other_hash = good.replace(probe.section_key(K::Remote).as_str(), &"ab".repeat(32));
    let other_schema = good.replace("\"schema_version\":\"1.0\"", "\"schema_version\":\"9.0\"");
    assert_ne!(other_hash, good);
    assert_ne!(other_schema, good);
    for garbage in [
        "not json at all",
        "{\"schema_version\":\"1.0\"}",
        &other_hash,
        &other_schema,
    ] {
        let () = redis::cmd("SET")
            .arg(&key)
            .arg(garbage)
            .query(&mut conn)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cache = AvailabilityCache::builder(probe.clone())
            .cache_path(dir.path().join("a.json"))
            .redis(&server.url(None))
            .open()
            .unwrap();
        assert_eq!(
            cache.status(K::Remote).source,
            Source::Validated,
            "{garbage}"
        );
        assert!(cache.is_available(K::Remote));
        let stats = cache.stats();
        assert_eq!(
            (stats.shared_ignored, stats.shared_publishes),
            (1, 1),
            "{garbage}"
        );
        let replaced: String = redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
        let record: serde_json::Value = serde_json::from_str(&replaced).unwrap();
        assert_eq!(
            record["section_hash"],
            probe.section_key(K::Remote).as_str()
        );
        assert_eq!(record["schema_version"], "1.0");
        assert!(pttl(&mut conn, &key) > 0, "the replacement has a TTL");
    }
}

#[test]
fn every_key_carries_a_ttl() {
    let server = RedisServer::start(&[]);
    let mut conn = redis(&server);
    let dir = tempfile::tempdir().unwrap();
    let open = |remote: &str, name: &str, max_age: Option<Duration>| {
        AvailabilityCache::builder(config(remote, "a", None, 0))
            .cache_path(dir.path().join(name))
            .max_age(max_age)
            .retry_failed_after(Duration::from_secs(20))
            .redis(&server.url(None))
            .open()
            .unwrap()
    };
    let good = open("remote", "good.json", Some(Duration::from_secs(600)));
    let ttl = pttl(&mut conn, &remote_key(good.config()));
    assert!(
        ttl > 590_000 && ttl <= 600_000,
        "good result: max_age, got {ttl} ms"
    );

    let forever = open("remote-2", "forever.json", None);
    let ttl = pttl(&mut conn, &remote_key(forever.config()));
    assert!(
        ttl > 86_000_000 && ttl <= 86_400_000,
        "max_age None: 24 h, got {ttl} ms"
    );

    let failed = open("fail-remote", "failed.json", Some(Duration::from_secs(600)));
    assert!(!failed.is_available(K::Remote));
    let ttl = pttl(&mut conn, &remote_key(failed.config()));
    // Fresh for the 20 s backoff; kept until the next failure's window (40 s) ends, so
    // the fleet's failure count survives the retry.
    assert!(
        ttl > 30_000 && ttl <= 40_000,
        "failure: the backoff window, got {ttl} ms"
    );

    for key in keys(&mut conn) {
        assert!(pttl(&mut conn, &key) > 0, "{key} has no TTL");
        assert!(!key.ends_with(":lease"), "lease {key} left behind");
    }
}

#[test]
fn the_failure_backoff_is_shared_by_the_fleet() {
    let server = RedisServer::start(&[]);
    let mut conn = redis(&server);
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let open = |host: &str| {
        AvailabilityCache::builder(config("fail-remote", host, None, 0))
            .cache_path(dir.path().join(format!("{host}.json")))
            .retry_failed_after(Duration::from_secs(10))
            .clock(clock.clone())
            .redis(&server.url(None))
            .open()
            .unwrap()
    };
    let a = open("a");
    assert_eq!(a.record(K::Remote).unwrap().consecutive_failures, 1);
    // Within the backoff, another host takes the failure from Redis.
    let b = open("b");
    assert_eq!(b.status(K::Remote).source, Source::Shared);
    assert_eq!(b.config().remote.calls(), 0);
    // Past it, a third host retries and counts on from the fleet's count.
    clock.advance(Duration::from_secs(11));
    let c = open("c");
    assert_eq!(c.status(K::Remote).source, Source::Validated);
    assert_eq!(c.record(K::Remote).unwrap().consecutive_failures, 2);
    let stored: String = redis::cmd("GET")
        .arg(remote_key(c.config()))
        .query(&mut conn)
        .unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["consecutive_failures"], 2);
}

fn commandstats(conn: &mut redis::Connection) -> Vec<String> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(conn).unwrap();
    info.lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .map(|l| l.split(':').next().unwrap().to_owned())
        .filter(|c| c != "info" && !c.starts_with("config"))
        .collect()
}

fn connections_received(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("stats").query(conn).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_warm_start_makes_no_redis_command() {
    let server = RedisServer::start(&[]);
    let mut conn = redis(&server);
    let dir = tempfile::tempdir().unwrap();
    let open = |host: &str| {
        AvailabilityCache::builder(config("remote", host, None, 0))
            .cache_path(dir.path().join(format!("{host}.json")))
            .redis(&server.url(None))
            .open()
            .unwrap()
    };
    let cold = open("a");
    assert_eq!(cold.status(K::Remote).source, Source::Validated);
    let from_redis = open("b");
    assert_eq!(from_redis.status(K::Remote).source, Source::Shared);

    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut conn)
        .unwrap();
    let before = connections_received(&mut conn);
    for host in ["a", "b"] {
        let warm = open(host);
        assert_eq!(
            warm.status(K::Remote).source,
            Source::Cache,
            "{host}: the file has it"
        );
        assert_eq!(warm.status(K::Local).source, Source::Cache);
        assert_eq!(warm.stats().shared_hits, 0);
    }
    assert_eq!(commandstats(&mut conn), Vec::<String>::new());
    assert_eq!(
        connections_received(&mut conn),
        before,
        "not even a connection"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn open_async_shares_through_redis_too() {
    let server = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let open = |host: &str| {
        AvailabilityCache::builder(config("remote", host, None, 0))
            .cache_path(dir.path().join(format!("{host}.json")))
            .redis(&server.url(None))
            .open_async()
    };
    let a = open("a").await.unwrap();
    assert_eq!(a.status(K::Remote).source, Source::Validated);
    assert_eq!(a.stats().shared_publishes, 1);
    let b = open("b").await.unwrap();
    assert_eq!(b.status(K::Remote).source, Source::Shared);
    assert_eq!(b.status(K::Local).source, Source::Validated);
    assert_eq!(b.config().remote.calls(), 0);
}

/// Collects every log line of the current thread, at every level.
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

#[test]
fn the_password_appears_in_no_log_line_and_no_error_message() {
    const PASSWORD: &str = "Pw-s3cret-42";
    const WRONG: &str = "Wrong-pw-77";
    let mut server = RedisServer::start(&["--requirepass", PASSWORD]);
    let dir = tempfile::tempdir().unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let mut texts = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        let open = |name: &str, url: &str| {
            AvailabilityCache::builder(config("remote", name, None, 0))
                .cache_path(dir.path().join(format!("{name}.json")))
                .redis(url)
                .open()
                .unwrap()
        };
        let good = server.url(Some(&format!(":{PASSWORD}")));
        let a = open("a", &good);
        assert_eq!(a.stats().shared_publishes, 1, "authenticated");
        let b = open("b", &good);
        assert_eq!(b.status(K::Remote).source, Source::Shared);
        texts.push(format!("{a:?} {b:?}"));

        let wrong = open("c", &server.url(Some(&format!("default:{WRONG}"))));
        assert_eq!(wrong.stats().shared_errors, 1, "authentication refused");
        let tls = open(
            "d",
            &format!("rediss://:{PASSWORD}@127.0.0.1:{}/", server.port()),
        );
        assert_eq!(tls.stats().shared_errors, 1, "no TLS on this server");
        server.kill();
        let down = open("e", &good);
        assert_eq!(down.stats().shared_errors, 1, "connection refused");

        for url in [
            format!("redis://:{PASSWORD}@[::1"),
            format!("redis://:{PASSWORD}@127.0.0.1:notaport/"),
            format!("http://:{PASSWORD}@127.0.0.1/"),
        ] {
            let error = AvailabilityCache::builder(config("remote", "f", None, 0))
                .redis(&url)
                .open()
                .unwrap_err();
            texts.push(format!("{error} {error:?}"));
            let builder = AvailabilityCache::builder(config("remote", "f", None, 0)).redis(&good);
            texts.push(format!("{builder:?}"));
            if let Err(error) = RedisStore::new(&url) {
                texts.push(format!("{error} {error:?}"));
            }
        }
        texts.push(format!("{:?}", RedisStore::new(&good).unwrap()));
    });
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("fleet store unavailable"), "{logs}");
    assert!(
        logs.contains(":***@127.0.0.1"),
        "the URL is logged redacted: {logs}"
    );
    for secret in [PASSWORD, WRONG] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
        for text in &texts {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

// ---- Issue 14: crossed leases, one connect deadline, redaction, signed records ----

/// Two hosts in one process, each forced to win the lease of one of two shared sections
/// (`host A` gets `search`, `host B` gets `queue`): a lease is tried only once the other
/// host holds its own, and (to make "no wait" deterministic) a host's look for the other
/// section after publishing its own waits until the other has published too.
#[derive(Debug)]
struct Crossing {
    inner: RedisStore,
    me: usize,
    parts: [&'static str; 2],
    state: Arc<(Mutex<CrossState>, std::sync::Condvar)>,
}

#[derive(Debug, Default)]
struct CrossState {
    holds: [bool; 2],
    published: [bool; 2],
}

impl Crossing {
    fn pair(url: &str) -> (Crossing, Crossing) {
        let state = Arc::new((Mutex::new(CrossState::default()), std::sync::Condvar::new()));
        let host = |me| Crossing {
            inner: RedisStore::new(url).unwrap(),
            me,
            parts: [":search:", ":queue:"],
            state: Arc::clone(&state),
        };
        (host(0), host(1))
    }

    fn wait_for(&self, ready: impl Fn(&CrossState) -> bool) {
        let (lock, condvar) = &*self.state;
        let guard = lock.lock().unwrap();
        let _ = condvar
            .wait_timeout_while(guard, Duration::from_secs(10), |s| !ready(s))
            .unwrap();
    }

    fn update(&self, f: impl FnOnce(&mut CrossState)) {
        let (lock, condvar) = &*self.state;
        f(&mut lock.lock().unwrap());
        condvar.notify_all();
    }

    fn mine(&self, key: &str) -> bool {
        key.contains(self.parts[self.me])
    }

    fn theirs(&self, key: &str) -> bool {
        key.contains(self.parts[1 - self.me])
    }
}

impl storage_availability::SharedStore for Crossing {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, storage_availability::SharedError> {
        Ok(self.get_with_ttl(key)?.map(|(value, _)| value))
    }
    fn get_with_ttl(
        &self,
        key: &str,
    ) -> Result<Option<(Vec<u8>, Option<Duration>)>, storage_availability::SharedError> {
        let published = self.state.0.lock().unwrap().published[self.me];
        if self.theirs(key) && published {
            let peer = 1 - self.me;
            self.wait_for(|s| s.published[peer]);
        }
        self.inner.get_with_ttl(key)
    }
    fn set(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), storage_availability::SharedError> {
        self.inner.set(key, value, ttl)?;
        if self.mine(key) {
            self.update(|s| s.published[self.me] = true);
        }
        Ok(())
    }
    fn try_lease(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, storage_availability::SharedError> {
        if self.theirs(key) {
            let peer = 1 - self.me;
            self.wait_for(|s| s.holds[peer]);
        }
        let won = self.inner.try_lease(key, token, ttl)?;
        if won && self.mine(key) {
            self.update(|s| s.holds[self.me] = true);
        }
        Ok(won)
    }
    fn release_lease(
        &self,
        key: &str,
        token: &str,
    ) -> Result<bool, storage_availability::SharedError> {
        self.inner.release_lease(key, token)
    }
}

#[test]
fn crossed_leases_cost_one_validation_per_section_and_no_lease_wait() {
    use storage_availability_tests::fleet::{CrossConfig, CrossConfigKind as X};
    let server = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let (a, b) = Crossing::pair(&server.url(None));
    let started = Instant::now();
    let open = |host: &'static str, store: Crossing| {
        let config = CrossConfig::new(host, Some(&log), 300, 20);
        let path = dir.path().join(format!("{host}.json"));
        move || {
            let cache = AvailabilityCache::builder(config)
                .cache_path(path)
                .shared_store(store)
                .open()
                .unwrap();
            (cache, started.elapsed())
        }
    };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(open("hostA", a));
        let b = scope.spawn(open("hostB", b));
        (a.join().unwrap(), b.join().unwrap())
    });
    let ((a, a_took), (b, b_took)) = (a, b);

    // The crossing happened: each host validated the section whose lease it won.
    assert_eq!(a.status(X::Search).source, Source::Validated);
    assert_eq!(a.status(X::Queue).source, Source::Shared);
    assert_eq!(b.status(X::Search).source, Source::Shared);
    assert_eq!(b.status(X::Queue).source, Source::Validated);
    let calls = logged_calls(&log);
    for section in ["search", "queue"] {
        let n = calls.iter().filter(|(t, _)| t == section).count();
        assert_eq!(
            n, 1,
            "one validation of {section} for both hosts: {calls:?}"
        );
    }
    for cache in [&a, &b] {
        let stats = cache.stats();
        assert_eq!(
            (stats.lease_waits, stats.lease_timeouts, stats.shared_errors),
            (0, 0, 0),
            "no host waited for the other's lease: {stats:?}"
        );
        assert!(cache.is_available(X::Search) && cache.is_available(X::Queue));
    }
    // The lease is 3 s (2 s timeout + 1 s); sitting it out took 4 s before.
    for took in [a_took, b_took] {
        assert!(took < Duration::from_millis(1500), "{took:?}");
    }
}

/// Runs `hosts` x `processes` of `fleet_node` (with `flags(host)`) at one instant, and
/// returns their JSON lines.
fn run_fleet(
    server: &RedisServer,
    dir: &Path,
    hosts: usize,
    processes: usize,
    sleep: &str,
    flags: impl Fn(usize) -> Vec<String>,
) -> Vec<serde_json::Value> {
    let log = dir.join("calls.log");
    let start_at = unix_ms(SystemTime::now() + Duration::from_millis(600));
    let mut children = Vec::new();
    for host in 0..hosts {
        let cache = dir.join(format!("host{host}")).join("availability.json");
        std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
        for _ in 0..processes {
            let child = Command::new(env!("CARGO_BIN_EXE_fleet_node"))
                .arg(&cache)
                .arg(server.url(None))
                .arg(&log)
                .arg(format!("host{host}"))
                .arg(sleep)
                .arg(start_at.to_string())
                .args(flags(host))
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            children.push(child);
        }
    }
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            serde_json::from_slice(&out.stdout).unwrap()
        })
        .collect()
}

fn assert_one_validation_each(log: &Path, hosts: usize, outputs: &[serde_json::Value]) {
    let calls = logged_calls(log);
    for section in ["search", "queue"] {
        let n = calls.iter().filter(|(t, _)| t == section).count();
        assert_eq!(n, 1, "one validation of {section} for the fleet: {calls:?}");
    }
    for host in 0..hosts {
        let host = format!("host{host}");
        let n = calls
            .iter()
            .filter(|(t, h)| t == "local" && *h == host)
            .count();
        assert_eq!(n, 1, "one validation of {host}'s own section: {calls:?}");
    }
    for out in outputs {
        for section in ["search", "queue", "local"] {
            assert_eq!(out[format!("{section}_ok")], true, "{out}");
        }
        assert_eq!(out["shared_errors"], 0, "{out}");
        assert_eq!(out["lease_timeouts"], 0, "{out}");
        // The lease is 3 s: nobody sat it out.
        assert!(out["elapsed_ms"].as_f64().unwrap() < 2500.0, "{out}");
    }
}

#[test]
fn four_hosts_of_three_processes_validate_each_of_two_shared_sections_once_every_run() {
    let mut server = RedisServer::start(&[]);
    for run in 0..4 {
        server.restart();
        let dir = tempfile::tempdir().unwrap();
        // Runs 2 and 3 force the crossing: even hosts are late to `search`'s lease, odd
        // hosts to `queue`'s, so one host of each kind wins one lease each.
        let outputs = run_fleet(&server, dir.path(), 4, 3, "300:20", |host| {
            let mut flags = vec!["--cross".to_owned()];
            if run >= 2 {
                let delay = if host % 2 == 0 {
                    ":search:100"
                } else {
                    ":queue:200"
                };
                flags.extend(["--delay-lease".to_owned(), delay.to_owned()]);
            }
            flags
        });
        assert_one_validation_each(&dir.path().join("calls.log"), 4, &outputs);
        if run >= 2 {
            let validated_by = |section: &str| {
                outputs.iter().find(|o| o[section] == "validated").map(|o| {
                    o["host"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches("host")
                        .parse::<usize>()
                        .unwrap()
                        % 2
                })
            };
            assert_eq!(validated_by("search"), Some(1), "run {run}: {outputs:?}");
            assert_eq!(validated_by("queue"), Some(0), "run {run}: {outputs:?}");
        }
    }
}

/// The connect deadline plus 100 ms: what any unreachable server may cost.
const DEADLINE_BOUND: Duration = Duration::from_millis(300);

/// `store.get` fails within the deadline bound with a timeout message; returns it.
fn times_out(store: &RedisStore) -> String {
    let started = Instant::now();
    let error = store.get("k").unwrap_err().to_string();
    let took = started.elapsed();
    assert!(took <= DEADLINE_BOUND, "{took:?}: {error}");
    assert!(error.contains("timed out after 200ms"), "{error}");
    assert!(
        !error.contains("os error") && !error.contains("temporarily unavailable"),
        "{error}"
    );
    error
}

#[test]
fn a_silent_server_costs_one_connect_deadline_with_or_without_a_password() {
    let silent = SilentListener::start();
    for userinfo in [None, Some(":pw"), Some("user:pw")] {
        let url = match userinfo {
            Some(u) => format!("redis://{u}@127.0.0.1:{}/3", silent.port()),
            None => format!("redis://127.0.0.1:{}/", silent.port()),
        };
        let store = RedisStore::new(&url).unwrap();
        times_out(&store);
    }

    // Through the cache: the shared section is validated locally, start-up barely waits.
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let cache = AvailabilityCache::builder(config("remote", "a", None, 0))
        .cache_path(dir.path().join("a.json"))
        .redis(&format!("redis://:pw@127.0.0.1:{}/", silent.port()))
        .open()
        .unwrap();
    assert!(
        started.elapsed() <= DEADLINE_BOUND,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(cache.status(K::Remote).source, Source::Validated);
    assert_eq!(cache.stats().shared_errors, 1);
}

#[test]
fn a_black_holed_address_list_costs_one_connect_deadline() {
    let holes: Vec<BlackHole> = (0..4).filter_map(|_| BlackHole::start()).collect();
    if holes.len() < 4 {
        eprintln!("note: could not fill a listener's accept queue here; skipping");
        return;
    }
    let addresses: Vec<SocketAddr> = holes
        .iter()
        .map(|h| SocketAddr::from((Ipv4Addr::LOCALHOST, h.port())))
        .collect();
    // A single black hole really drops the connection attempt (checked, so that the test
    // below measures what it claims to).
    let probe = std::net::TcpStream::connect_timeout(&addresses[0], Duration::from_millis(300));
    assert!(probe.is_err(), "not black-holed: {probe:?}");

    let list = addresses.clone();
    let store = RedisStore::new("redis://redis.internal:6379/")
        .unwrap()
        .resolver(move |_, _| Ok(list.clone()));
    let error = times_out(&store);
    assert!(error.contains("redis.internal:6379"), "{error}");

    // Every resolved address is tried within the deadline: a server after three black
    // holes is still reached.
    let server = RedisServer::start(&[]);
    let mut list = addresses[..3].to_vec();
    list.push(SocketAddr::from((Ipv4Addr::LOCALHOST, server.port())));
    let store = RedisStore::new("redis://redis.internal/")
        .unwrap()
        .resolver(move |_, _| Ok(list.clone()));
    let started = Instant::now();
    assert_eq!(store.get("k").unwrap(), None);
    assert!(
        started.elapsed() <= DEADLINE_BOUND,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_resolver_that_never_answers_costs_one_connect_deadline() {
    let store = RedisStore::new("redis://:pw@redis.internal:6379/")
        .unwrap()
        .resolver(|_, _| {
            std::thread::sleep(Duration::from_secs(30));
            Err(std::io::Error::other("no answer"))
        });
    let error = times_out(&store);
    assert!(error.contains("resolving redis.internal"), "{error}");
    // The hung lookup is not stacked up: the next attempt fails at once while it runs.
    let started = Instant::now();
    let error = store.get("k").unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_millis(50), "{error}");
    assert!(error.contains("still running"), "{error}");

    // Through the cache, from a name in the URL.
    let dir = tempfile::tempdir().unwrap();
    let store = RedisStore::new("redis://redis.internal/")
        .unwrap()
        .resolver(|_, _| {
            std::thread::sleep(Duration::from_secs(30));
            Ok(Vec::new())
        });
    let started = Instant::now();
    let cache = AvailabilityCache::builder(config("remote", "a", None, 0))
        .cache_path(dir.path().join("a.json"))
        .shared_store(store)
        .open()
        .unwrap();
    assert!(
        started.elapsed() <= DEADLINE_BOUND,
        "{:?}",
        started.elapsed()
    );
    assert_eq!(cache.stats().shared_errors, 1);
    assert!(cache.is_available(K::Remote));
}

#[test]
fn a_response_timeout_is_reported_as_a_timeout() {
    let server = RedisServer::start(&[]);
    let store = RedisStore::new(&server.url(None))
        .unwrap()
        .response_timeout(Duration::from_millis(150));
    assert_eq!(store.get("k").unwrap(), None);
    server.pause(true);
    let started = Instant::now();
    let error = store.get("k").unwrap_err().to_string();
    let took = started.elapsed();
    server.pause(false);
    assert!(took < Duration::from_millis(250), "{took:?}");
    assert!(error.contains("timed out after 150ms"), "{error}");
    assert!(!error.contains("os error"), "{error}");
}

#[test]
fn no_url_form_shows_its_password_anywhere() {
    const SECRET: &str = "Pw7-secret";
    let server = RedisServer::start(&["--requirepass", SECRET]);
    let dir = tempfile::tempdir().unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let port = server.port();
    let socket = dir.path().join("none.sock");
    let socket = socket.display();
    // Passwords with unencoded '/', '#', '?', '@' around the marked secret, in every form
    // the `redis` crate accepts; a wrong password where the server is reached.
    let forms = [
        format!("redis://:{SECRET}@127.0.0.1:{port}/"),
        format!("redis://default:{SECRET}@127.0.0.1:{port}/0"),
        format!("redis://{SECRET}@127.0.0.1:{port}"),
        format!("redis://:{SECRET}/x@127.0.0.1:{port}/"),
        format!("redis://:{SECRET}#x@127.0.0.1:{port}/"),
        format!("redis://:{SECRET}?x@127.0.0.1:{port}/"),
        format!("redis://:{SECRET}@x@127.0.0.1:{port}/"),
        format!("redis://default:x/{SECRET}@127.0.0.1:{port}/"),
        format!("redis://{SECRET}#/x@127.0.0.1:{port}/"),
        format!("redis://127.0.0.1:{port}/0?password={SECRET}"),
        format!("redis://127.0.0.1:{port}/0?user=default&password={SECRET}#x"),
        format!("rediss://:{SECRET}@127.0.0.1:{port}/"),
        format!("rediss://default:{SECRET}@127.0.0.1:{port}/#insecure"),
        format!("redis+unix://{socket}?pass={SECRET}"),
        format!("redis+unix://{socket}?db=1&user=u&pass={SECRET}/#?@x"),
        format!("unix://{socket}?pass={SECRET}"),
        format!("unix:{socket}?user=u&pass={SECRET}"),
        format!("valkey://:{SECRET}@127.0.0.1:{port}/"),
    ];
    let mut texts = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        for (i, url) in forms.iter().enumerate() {
            let builder = AvailabilityCache::builder(config(&format!("remote-{i}"), "a", None, 0))
                .cache_path(dir.path().join(format!("{i}.json")))
                .redis(url);
            texts.push(format!("{builder:?}"));
            match builder.open() {
                Ok(cache) => texts.push(format!("{:?}", cache.stats())),
                Err(error) => texts.push(format!("{error} {error:?}")),
            }
            match RedisStore::new(url) {
                Ok(store) => {
                    texts.push(format!("{} {store:?}", store.url()));
                    if let Err(error) = store.get("k") {
                        texts.push(format!("{error} {error:?}"));
                    }
                }
                Err(error) => texts.push(format!("{error} {error:?}")),
            }
        }
    });
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("fleet store unavailable"), "{logs}");
    assert!(!logs.contains(SECRET), "the password in the logs:\n{logs}");
    for text in &texts {
        assert!(!text.contains(SECRET), "the password in {text}");
        assert!(!text.contains("7-sec"), "a piece of the password in {text}");
    }
}

/// The stored record of the `remote` section of `config`.
fn stored(conn: &mut redis::Connection, config: &FleetConfig) -> Option<String> {
    redis::cmd("GET")
        .arg(remote_key(config))
        .query(conn)
        .unwrap()
}

#[test]
fn unsigned_mis_signed_and_moved_records_are_ignored_with_a_secret() {
    const KEY: &str = "fleet key of the test";
    let server = RedisServer::start(&[]);
    let mut conn = redis(&server);
    let dir = tempfile::tempdir().unwrap();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let open = |remote: &str, host: &str, secret: Option<&str>| {
        let mut builder = AvailabilityCache::builder(config(remote, host, None, 0))
            .cache_path(dir.path().join(format!("{host}.json")))
            .redis(&server.url(None));
        if let Some(secret) = secret {
            builder = builder.shared_secret(secret);
            assert!(!format!("{builder:?}").contains(secret), "{builder:?}");
        }
        builder.open().unwrap()
    };
    tracing::subscriber::with_default(subscriber, || {
        // A signed record is used by a host with the same key.
        let a = open("remote", "a", Some(KEY));
        let signed = stored(&mut conn, a.config()).unwrap();
        assert!(signed.contains("\"signature\":\""), "{signed}");
        let b = open("remote", "b", Some(KEY));
        assert_eq!(b.status(K::Remote).source, Source::Shared);
        assert_eq!(b.stats().shared_unsigned, 0);

        // An unsigned record (written without the key, or by anyone who can write Redis)
        // is ignored, validated here and overwritten with a signed one.
        let plain = open("remote-2", "plain", None);
        assert!(
            !stored(&mut conn, plain.config())
                .unwrap()
                .contains("signature")
        );
        let c = open("remote-2", "c", Some(KEY));
        assert_eq!(c.status(K::Remote).source, Source::Validated);
        let stats = c.stats();
        assert_eq!(
            (stats.shared_unsigned, stats.shared_ignored),
            (1, 1),
            "{stats:?}"
        );
        assert!(
            stored(&mut conn, c.config())
                .unwrap()
                .contains("\"signature\":\"")
        );

        // Signed with another key.
        let d = open("remote", "d", Some("another key"));
        assert_eq!(d.status(K::Remote).source, Source::Validated);
        assert_eq!(d.stats().shared_unsigned, 1);
        let e = open("remote", "e", Some(KEY));
        assert_eq!(
            e.stats().shared_unsigned,
            1,
            "d overwrote it with its own key"
        );

        // A validly signed record moved to another section hash, with or without the hash
        // inside rewritten, and a signed failure turned into a success.
        let good = open("remote-3", "f", Some(KEY));
        let signed = stored(&mut conn, good.config()).unwrap();
        let other = config("remote-4", "g", None, 0);
        let moved = signed.replace(
            good.config().section_key(K::Remote).as_str(),
            other.section_key(K::Remote).as_str(),
        );
        for value in [&signed, &moved] {
            let () = redis::cmd("SET")
                .arg(remote_key(&other))
                .arg(value)
                .arg("PX")
                .arg(60_000)
                .query(&mut conn)
                .unwrap();
            let g = open("remote-4", "g", Some(KEY));
            assert_eq!(g.status(K::Remote).source, Source::Validated);
            assert_eq!(g.stats().shared_unsigned, 1);
            std::fs::remove_file(dir.path().join("g.json")).unwrap();
        }
        let failed = open("fail-5", "h", Some(KEY));
        let signed = stored(&mut conn, failed.config()).unwrap();
        let forged = signed
            .replace("\"validation_passed\":false", "\"validation_passed\":true")
            .replace("\"enabled\":false", "\"enabled\":true");
        assert_ne!(forged, signed);
        let () = redis::cmd("SET")
            .arg(remote_key(failed.config()))
            .arg(&forged)
            .arg("PX")
            .arg(60_000)
            .query(&mut conn)
            .unwrap();
        let i = open("fail-5", "i", Some(KEY));
        assert_eq!(i.stats().shared_unsigned, 1);
        assert!(
            !i.is_available(K::Remote),
            "the forged success is not believed"
        );
    });
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warnings = logs
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("without a valid signature"))
        .count();
    assert!(warnings >= 1, "{logs}");
    assert!(!logs.contains(KEY), "the key in the logs:\n{logs}");
}

#[test]
fn a_shared_answer_copied_into_the_file_expires_with_its_fleet_key() {
    let server = RedisServer::start(&[]);
    let mut conn = redis(&server);
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let open = |host: &str| {
        AvailabilityCache::builder(config("remote", host, None, 0))
            .cache_path(dir.path().join(format!("{host}.json")))
            .max_age(Some(Duration::from_secs(3600)))
            .clock(clock.clone())
            .redis(&server.url(None))
            .open()
            .unwrap()
    };
    let a = open("a");
    assert_eq!(a.status(K::Remote).source, Source::Validated);
    // The key has 2 s left (whoever wrote it, and however it was set).
    let () = redis::cmd("PEXPIRE")
        .arg(remote_key(a.config()))
        .arg(2_000)
        .query(&mut conn)
        .unwrap();
    let b = open("b");
    assert_eq!(b.status(K::Remote).source, Source::Shared);
    let expires = b.record(K::Remote).unwrap().checked_at.0 + Duration::from_secs(3600);
    let limit = clock.now() + Duration::from_millis(2_000);
    assert!(expires <= limit, "{expires:?} > {limit:?}");
    assert!(
        expires + Duration::from_millis(500) > limit,
        "not shortened more than needed"
    );

    // Within the key's TTL the next start reads the file; past it, not.
    clock.advance(Duration::from_millis(1_000));
    assert_eq!(open("b").status(K::Remote).source, Source::Cache);
    clock.advance(Duration::from_millis(1_500));
    assert_ne!(open("b").status(K::Remote).source, Source::Cache);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossed_leases_in_open_async_cost_one_validation_per_section_too() {
    use storage_availability_tests::fleet::{CrossConfig, CrossConfigKind as X};
    let server = RedisServer::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.log");
    let (a, b) = Crossing::pair(&server.url(None));
    let started = Instant::now();
    let open = |host: &str, store: Crossing| {
        AvailabilityCache::builder(CrossConfig::new(host, Some(&log), 300, 20))
            .cache_path(dir.path().join(format!("{host}.json")))
            .shared_store(store)
            .open_async()
    };
    let (a, b) = tokio::join!(open("hostA", a), open("hostB", b));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.status(X::Search).source, Source::Validated);
    assert_eq!(b.status(X::Queue).source, Source::Validated);
    assert_eq!(a.status(X::Queue).source, Source::Shared);
    assert_eq!(b.status(X::Search).source, Source::Shared);
    let calls = logged_calls(&log);
    for section in ["search", "queue"] {
        let n = calls.iter().filter(|(t, _)| t == section).count();
        assert_eq!(n, 1, "{section}: {calls:?}");
    }
    for cache in [&a, &b] {
        let stats = cache.stats();
        assert_eq!(
            (stats.lease_waits, stats.lease_timeouts),
            (0, 0),
            "{stats:?}"
        );
    }
}

/// The real resolver against a DNS server that never answers: a private mount namespace
/// whose `/etc/resolv.conf` names a loopback UDP socket that reads and never replies. The
/// system resolver would wait its 5 s x 2 attempts; the start waits the connect deadline.
#[test]
fn a_silent_dns_server_costs_one_connect_deadline() {
    let unshare = Path::new("/usr/bin/unshare");
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root || !unshare.exists() {
        eprintln!("note: needs root and unshare(1) for a private resolv.conf; skipping");
        return;
    }
    // A loopback address of its own, so that parallel runs do not collide on port 53.
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let ip = Ipv4Addr::new(127, 53, (nanos >> 8) as u8, (nanos as u8).max(1));
    let Ok(dns) = std::net::UdpSocket::bind((ip, 53)) else {
        eprintln!("note: cannot bind {ip}:53; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!("nameserver {ip}\noptions timeout:5 attempts:2\n"),
    )
    .unwrap();
    let script = format!(
        "mount --bind '{}' /etc/resolv.conf && exec \"$0\" \"$@\"",
        resolv.display()
    );
    let out = Command::new(unshare)
        .args(["-m", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_fleet_node"))
        .arg(dir.path().join("a.json"))
        .arg("redis://:pw@redis.internal:6379/")
        .arg(dir.path().join("calls.log"))
        .arg("hostA")
        .arg("0")
        .arg("0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The lookup did reach the silent server (the test measures what it claims to).
    dns.set_nonblocking(true).unwrap();
    let mut query = [0u8; 512];
    assert!(dns.recv_from(&mut query).is_ok(), "no DNS query was sent");
    assert_eq!(line["shared_errors"], 1, "{line}");
    assert_eq!(line["remote"], "validated", "{line}");
    // The deadline (200 ms) + 100 ms, plus the start's own file work (a save with fsyncs).
    let took = line["elapsed_ms"].as_f64().unwrap();
    assert!(took < 400.0, "{line}");
}

/// A shared section with its own `max_age_secs`, and one whose `Serialize` panics.
#[derive(serde::Serialize, storage_availability::StorageAvailability)]
struct PerSection {
    #[storage(validate = check_string, scope = "shared", max_age_secs = 120)]
    short: String,
    #[storage(validate = check_exploding, scope = "shared")]
    exploding: Exploding,
}

fn check_string(_: &String) -> storage_availability::Outcome {
    storage_availability::Outcome::ok()
}

struct Exploding;

impl serde::Serialize for Exploding {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("this section cannot be serialised")
    }
}

fn check_exploding(_: &Exploding) -> storage_availability::Outcome {
    storage_availability::Outcome::ok()
}

/// Regression (merge of issues 12 and 14): the fleet used the builder's `max_age` for a
/// section with its own `max_age_secs`, and published uncacheable sections under a random
/// key at every start.
#[test]
fn the_fleet_honours_max_age_secs_and_never_publishes_an_uncacheable_section() {
    let server = RedisServer::start(&[]);
    let mut conn = redis(&server);
    let dir = tempfile::tempdir().unwrap();
    let cache = AvailabilityCache::builder(PerSection {
        short: "search.internal".into(),
        exploding: Exploding,
    })
    .cache_path(dir.path().join("per-section.json"))
    .max_age(Some(Duration::from_secs(3600)))
    .redis(&server.url(None))
    .open()
    .unwrap();
    assert!(cache.is_available(PerSectionKind::Short));
    assert!(cache.is_available(PerSectionKind::Exploding));
    assert_eq!(cache.stats().uncacheable, 1);

    let keys = keys(&mut conn);
    assert_eq!(
        keys.len(),
        1,
        "only the cacheable section is published: {keys:?}"
    );
    assert!(
        keys[0].starts_with(&format!(
            "storage-availability:{}:short:",
            PerSection::config_type()
        )),
        "{keys:?}"
    );
    let ttl = pttl(&mut conn, &keys[0]);
    assert!(
        ttl > 110_000 && ttl <= 120_000,
        "the section's max_age_secs, not the builder's max_age: {ttl} ms"
    );
}
