//! The fleet figures of BENCHMARKS.md ("## Fleet"):
//!
//! `cargo run --release -p storage-availability-tests --bin fleet_bench`
//!
//! 1. Cold start of 16 processes (4 simulated hosts x 4 processes, each host its own cache
//!    file) with and without Redis: wall time until the last process has its answers, and
//!    validator calls. The shared section's validator takes 300 ms (a remote probe), the
//!    host section's 20 ms.
//! 2. The extra cost of a Redis hit: opening a cache whose shared section is missing from
//!    the local file but fresh in Redis (connect + GET + save), against a warm local start
//!    and a local validation of a no-op validator; and the round trips alone.
//! 3. Scale: 64 processes (8 simulated hosts x 8 processes) of a config with two shared
//!    sections (`search`, `queue`: 300 ms each) and a host section (20 ms), without Redis
//!    (the floor), with Redis, and with Redis and crossed leases forced (even hosts are
//!    100 ms late to `search`'s lease, odd hosts 200 ms late to `queue`'s): wall time as a
//!    ratio to the floor of the same run, validator calls per shared section, and Redis
//!    commands per process start (`INFO commandstats`).
//!
//! `fleet_bench scale` runs only part 3.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use storage_availability::{AvailabilityCache, RedisStore, SharedStore};
use storage_availability_tests::fleet::{
    FleetConfig, FleetConfigKind, FleetProbe, RedisServer, logged_calls,
};

fn cold_fleet(dir: &Path, url: &str) -> (Duration, usize, usize) {
    let log = dir.join("calls.log");
    let node = std::env::current_exe()
        .unwrap()
        .with_file_name("fleet_node");
    let start = SystemTime::now() + Duration::from_millis(500);
    let start_ms = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut children = Vec::new();
    for host in 0..4 {
        let cache = dir.join(format!("host{host}.json"));
        for _ in 0..4 {
            children.push(
                Command::new(&node)
                    .arg(&cache)
                    .arg(url)
                    .arg(&log)
                    .arg(format!("host{host}"))
                    .arg("300:20")
                    .arg(start_ms.to_string())
                    .stdout(Stdio::null())
                    .spawn()
                    .expect("spawn fleet_node (build it with the same profile)"),
            );
        }
    }
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let wall = SystemTime::now().duration_since(start).unwrap_or_default();
    let calls = logged_calls(&log);
    let remote = calls.iter().filter(|(t, _)| t == "remote").count();
    (wall, remote, calls.len() - remote)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// One scale run: wall time, validator calls of `search`, `queue` and `local`, and the
/// Redis commands it cost (without the benchmark's own `INFO`).
struct ScaleRun {
    wall: Duration,
    search: usize,
    queue: usize,
    local: usize,
    commands: u64,
    lease_waits: u64,
    lease_timeouts: u64,
}

fn scale_run(dir: &Path, url: &str, crossed: bool, server: Option<&RedisServer>) -> ScaleRun {
    const HOSTS: usize = 8;
    const PROCESSES: usize = 8;
    let log = dir.join("calls.log");
    let node = std::env::current_exe()
        .unwrap()
        .with_file_name("fleet_node");
    let start = SystemTime::now() + Duration::from_millis(800);
    let start_ms = start
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut children = Vec::new();
    for host in 0..HOSTS {
        let cache = dir.join(format!("host{host}.json"));
        for _ in 0..PROCESSES {
            let mut command = Command::new(&node);
            command
                .arg(&cache)
                .arg(url)
                .arg(&log)
                .arg(format!("host{host}"))
                .arg("300:20")
                .arg(start_ms.to_string())
                .arg("--cross");
            if crossed {
                let delay = if host % 2 == 0 {
                    ":search:100"
                } else {
                    ":queue:200"
                };
                command.args(["--delay-lease", delay]);
            }
            children.push(
                command
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("spawn fleet_node (build it with the same profile)"),
            );
        }
    }
    let mut lease_waits = 0;
    let mut lease_timeouts = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        lease_waits += line["lease_waits"].as_u64().unwrap_or(0);
        lease_timeouts += line["lease_timeouts"].as_u64().unwrap_or(0);
    }
    let wall = SystemTime::now().duration_since(start).unwrap_or_default();
    let calls = logged_calls(&log);
    let count = |t: &str| calls.iter().filter(|(target, _)| target == t).count();
    ScaleRun {
        wall,
        search: count("search"),
        queue: count("queue"),
        local: count("local"),
        commands: server.and_then(RedisServer::commands_run).unwrap_or(0),
        lease_waits,
        lease_timeouts,
    }
}

fn scale(server: &mut RedisServer) {
    println!(
        "cold start, 64 processes (8 hosts x 8), two shared sections (300 ms each), host \
         section 20 ms; wall time as a ratio to the run without Redis"
    );
    for round in 0..3 {
        let mut floor = Duration::ZERO;
        for (label, redis, crossed) in [
            ("without Redis", false, false),
            ("with Redis", true, false),
            ("crossed leases", true, true),
        ] {
            server.restart();
            let url = if redis {
                server.url(None)
            } else {
                "-".to_owned()
            };
            let dir = tempfile_dir(&format!("scale-{round}-{}", label.replace(' ', "-")));
            let run = scale_run(&dir, &url, crossed, redis.then_some(&*server));
            if !redis {
                floor = run.wall;
            }
            println!(
                "  {label:>14}: wall {:>5} ms ({:.2}x), validator calls: search {}, queue {}, \
                 host {}; Redis commands per process {:.2}; lease waits {}, lease timeouts {}",
                run.wall.as_millis(),
                run.wall.as_secs_f64() / floor.as_secs_f64().max(1e-9),
                run.search,
                run.queue,
                run.local,
                run.commands as f64 / 64.0,
                run.lease_waits,
                run.lease_timeouts,
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn main() {
    let mut server = RedisServer::start(&[]);
    if std::env::args().nth(1).as_deref() == Some("scale") {
        scale(&mut server);
        return;
    }
    println!(
        "cold start, 16 processes (4 hosts x 4), shared validator 300 ms, host validator 20 ms"
    );
    for round in 0..3 {
        for (label, url) in [
            ("without Redis", "-".to_owned()),
            ("with Redis", server.url(None)),
        ] {
            // An empty Redis for each run: restarted, without persistence.
            server.restart();
            let dir = tempfile_dir(&format!("cold-{round}-{}", label.replace(' ', "-")));
            let (wall, remote, local) = cold_fleet(&dir, &url);
            println!(
                "  {label:>13}: wall {:>4} ms, validator calls: shared {remote}, host {local}",
                wall.as_millis()
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    let config = |target: &str| FleetConfig {
        remote: FleetProbe::new(target, "bench", None, 0),
        local: FleetProbe::new("local", "bench", None, 0),
    };
    const N: usize = 200;
    let dir = tempfile_dir("hit");
    let url = server.url(None);
    // Seed Redis.
    AvailabilityCache::builder(config("remote"))
        .cache_path(dir.join("seed.json"))
        .redis(&url)
        .open()
        .unwrap();
    let mut hit = Vec::new();
    let mut validated = Vec::new();
    let mut warm = Vec::new();
    for i in 0..N {
        // The host section is warm in every case; only the shared one differs.
        let path = dir.join(format!("hit{i}.json"));
        let seed = AvailabilityCache::builder(config("other"))
            .cache_path(&path)
            .open()
            .unwrap();
        drop(seed);
        let t = Instant::now();
        let c = AvailabilityCache::builder(config("remote"))
            .cache_path(&path)
            .redis(&url)
            .open()
            .unwrap();
        hit.push(t.elapsed());
        assert_eq!(c.status(FleetConfigKind::Remote).source.as_str(), "shared");

        let path = dir.join(format!("local{i}.json"));
        AvailabilityCache::builder(config("other"))
            .cache_path(&path)
            .open()
            .unwrap();
        let t = Instant::now();
        AvailabilityCache::builder(config(&format!("remote-{i}")))
            .cache_path(&path)
            .open()
            .unwrap();
        validated.push(t.elapsed());

        let t = Instant::now();
        AvailabilityCache::builder(config(&format!("remote-{i}")))
            .cache_path(&path)
            .redis(&url)
            .open()
            .unwrap();
        warm.push(t.elapsed());
    }
    let mut connect_get = Vec::new();
    let mut get = Vec::new();
    let key = "storage-availability:bench:probe";
    let store = RedisStore::new(&url).unwrap();
    store
        .set(key, &[b'x'; 300], Duration::from_secs(60))
        .unwrap();
    for _ in 0..N {
        let fresh = RedisStore::new(&url).unwrap();
        let t = Instant::now();
        fresh.get(key).unwrap();
        connect_get.push(t.elapsed());
        let t = Instant::now();
        store.get(key).unwrap();
        get.push(t.elapsed());
    }
    println!("one GET of a 300-byte record ({N} runs, median):");
    println!("  new connection + GET: {:>7.1?}", median(connect_get));
    println!("  GET on a connection:  {:>7.1?}", median(get));
    println!("open with the shared section stale locally ({N} runs, median):");
    println!(
        "  warm local file (no Redis command): {:>7.1?}",
        median(warm)
    );
    println!(
        "  validated locally (no-op validator, no Redis): {:>7.1?}",
        median(validated)
    );
    println!(
        "  Redis hit (connect + GET, then save): {:>7.1?}",
        median(hit)
    );
    let _ = std::fs::remove_dir_all(&dir);
    scale(&mut server);
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("fleet-bench-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
