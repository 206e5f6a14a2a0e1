//! The fleet store against a real `redis-server` (issue 9): one validation per shared
//! section for a whole fleet, lease takeover after a SIGKILL, Redis killed, paused and
//! restarted, garbage records, TTLs, a warm start without a Redis command, shared failure
//! backoff, and no password in any log line or error message.
//!
//! Each test starts its own server on a free port (`RedisServer`, killed on drop).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use storage_availability::{
    AvailabilityCache, ManualClock, RedisStore, Source, StorageAvailability,
};
use storage_availability_tests::fleet::{
    FleetConfig, FleetConfigKind as K, FleetProbe, RedisServer, logged_calls,
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
        std::any::type_name::<FleetConfig>(),
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
