//! Fleet helpers: configs with shared and host-scoped sections whose validators log every
//! call to a file shared by the processes of a test, a `redis-server` per test, a store
//! wrapper that delays leases (to force two hosts to win one lease each), and listeners
//! that never answer (to time the connect deadline).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use storage_availability::{Outcome, SharedError, SharedStore, StorageAvailability};

/// A section whose validator appends `start <target> <host> <pid>` to `log` (if set),
/// sleeps `sleep_ms`, and fails when `target` starts with `fail`. Only `target` is hashed.
#[derive(Debug, Clone, Serialize)]
pub struct FleetProbe {
    /// The section's content: the same on every host for a shared section.
    pub target: String,
    /// Where validator calls are appended (shared by every process of a test).
    #[serde(skip)]
    pub log: Option<PathBuf>,
    /// The simulated host's name, written to the log.
    #[serde(skip)]
    pub host: String,
    /// How long the validator takes.
    #[serde(skip)]
    pub sleep_ms: u64,
    /// Validator calls in this process.
    #[serde(skip)]
    pub calls: Arc<AtomicUsize>,
}

impl FleetProbe {
    /// A probe of `target` on `host`, logging to `log`.
    pub fn new(target: &str, host: &str, log: Option<&Path>, sleep_ms: u64) -> Self {
        FleetProbe {
            target: target.to_owned(),
            log: log.map(Path::to_owned),
            host: host.to_owned(),
            sleep_ms,
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Validator calls in this process.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// The probe validator.
pub fn check_fleet_probe(probe: &FleetProbe) -> Outcome {
    probe.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(log) = &probe.log {
        let line = format!(
            "start {} {} {}\n",
            probe.target,
            probe.host,
            std::process::id()
        );
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the validator log");
        // One write of one short line with O_APPEND: lines of processes never interleave.
        file.write_all(line.as_bytes())
            .expect("append to the validator log");
    }
    std::thread::sleep(Duration::from_millis(probe.sleep_ms));
    if probe.target.starts_with("fail") {
        Outcome::failed(format!("{} is down", probe.target))
    } else {
        Outcome::ok()
    }
}

/// A remote service seen the same from every host, and a local directory.
#[derive(Debug, Clone, Serialize, StorageAvailability)]
pub struct FleetConfig {
    /// Shared through the fleet store.
    #[storage(validate = check_fleet_probe, scope = "shared", timeout_ms = 2000)]
    pub remote: FleetProbe,
    /// Validated by each host.
    #[storage(validate = check_fleet_probe)]
    pub local: FleetProbe,
}

/// Two remote services seen the same from every host, and a local directory: the config
/// of the crossed-lease tests (host A may win `search`'s lease while host B wins `queue`'s).
#[derive(Debug, Clone, Serialize, StorageAvailability)]
pub struct CrossConfig {
    /// Shared through the fleet store.
    #[storage(validate = check_fleet_probe, scope = "shared", timeout_ms = 2000)]
    pub search: FleetProbe,
    /// Shared through the fleet store.
    #[storage(validate = check_fleet_probe, scope = "shared", timeout_ms = 2000)]
    pub queue: FleetProbe,
    /// Validated by each host.
    #[storage(validate = check_fleet_probe)]
    pub local: FleetProbe,
}

impl CrossConfig {
    /// Probes `search`, `queue` and `local` on `host`, logging to `log`; the shared
    /// validators take `shared_ms`, the host one `local_ms`.
    pub fn new(host: &str, log: Option<&Path>, shared_ms: u64, local_ms: u64) -> Self {
        CrossConfig {
            search: FleetProbe::new("search", host, log, shared_ms),
            queue: FleetProbe::new("queue", host, log, shared_ms),
            local: FleetProbe::new("local", host, log, local_ms),
        }
    }
}

/// A [`SharedStore`] that sleeps before taking the lease of some sections: with different
/// delays on different hosts, each host wins the lease of another section (`:search:` on
/// one, `:queue:` on the other), which is how crossed leases are forced across processes.
#[derive(Debug)]
pub struct DelayedLeases<S> {
    inner: S,
    /// Part of a lease key (such as `:search:`) and the delay before trying it.
    delays: Vec<(String, Duration)>,
}

impl<S> DelayedLeases<S> {
    /// `inner`, with `delays` (a part of the key, and how long to sleep first).
    pub fn new(inner: S, delays: Vec<(String, Duration)>) -> Self {
        DelayedLeases { inner, delays }
    }
}

impl<S: SharedStore> SharedStore for DelayedLeases<S> {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> {
        self.inner.get(key)
    }
    fn get_with_ttl(&self, key: &str) -> Result<Option<(Vec<u8>, Option<Duration>)>, SharedError> {
        self.inner.get_with_ttl(key)
    }
    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SharedError> {
        self.inner.set(key, value, ttl)
    }
    fn try_lease(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, SharedError> {
        for (part, delay) in &self.delays {
            if key.contains(part.as_str()) {
                std::thread::sleep(*delay);
            }
        }
        self.inner.try_lease(key, token, ttl)
    }
    fn release_lease(&self, key: &str, token: &str) -> Result<bool, SharedError> {
        self.inner.release_lease(key, token)
    }
}

/// A listener on 127.0.0.1 that accepts connections and never answers (nor closes them),
/// while it lives: a Redis server that hangs.
#[derive(Debug)]
pub struct SilentListener {
    port: u16,
    _accepted: Arc<std::sync::Mutex<Vec<TcpStream>>>,
}

impl SilentListener {
    /// Starts one on a free port.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a silent listener");
        let port = listener.local_addr().expect("its address").port();
        let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
        let keep = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                keep.lock().unwrap().push(stream);
            }
        });
        SilentListener {
            port,
            _accepted: accepted,
        }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// A listener on 127.0.0.1 whose accept queue is full, so that the kernel drops every new
/// connection attempt (the SYN goes unanswered): a black-holed address, on loopback only.
/// `None` if the queue could not be filled (then a test skips that case with a note).
#[derive(Debug)]
pub struct BlackHole {
    port: u16,
    _listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    /// Fills the accept queue of a new listener (never accepted from).
    pub fn start() -> Option<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").ok()?;
        let address = listener.local_addr().ok()?;
        let mut queued = Vec::new();
        // std listens with a backlog of 128; the queue holds backlog + 1 connections.
        for _ in 0..4096 {
            match TcpStream::connect_timeout(&address, Duration::from_millis(100)) {
                Ok(stream) => queued.push(stream),
                Err(_) => {
                    return Some(BlackHole {
                        port: address.port(),
                        _listener: listener,
                        _queued: queued,
                    });
                }
            }
        }
        None
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

/// The validator calls logged in `log`, as `(target, host)` pairs.
pub fn logged_calls(log: &Path) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            (parts.next() == Some("start")).then(|| {
                let target = parts.next().unwrap_or_default().to_owned();
                let host = parts.next().unwrap_or_default().to_owned();
                (target, host)
            })
        })
        .collect()
}

/// A `redis-server` of one test on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server on a free port, without persistence.
    ///
    /// Panics with instructions when `redis-server` is not installed.
    pub fn start(extra: &[&str]) -> Self {
        let port = free_port();
        let mut server = RedisServer {
            child: None,
            port,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        server.restart();
        server
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`, with `userinfo@` if given.
    pub fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(u) => format!("redis://{u}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The server's process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (after [`kill`](Self::kill)).
    pub fn restart(&mut self) {
        self.kill();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(std::env::temp_dir())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().unwrap_or_else(|error| {
            panic!(
                "cannot start redis-server ({error}); the fleet tests need it: \
                 `apt-get install redis-server` (.ci/run installs it)"
            )
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends SIGSTOP (`stop = true`) or SIGCONT: a server that accepts connections and
    /// never answers.
    pub fn pause(&self, stop: bool) {
        let pid = self.pid().expect("the server is running");
        let signal = if stop { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Commands the server ran since it started (`INFO commandstats`), without `INFO` and
    /// `CONFIG`; `None` if it does not answer.
    pub fn commands_run(&self) -> Option<u64> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"INFO commandstats\r\n").ok()?;
        // A bulk string: `$<length>\r\n<body>\r\n`.
        let mut reply = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).ok()?;
            if n == 0 {
                return None;
            }
            reply.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&reply);
            let (header, body) = text.split_once("\r\n")?;
            let length: usize = header.strip_prefix('$')?.parse().ok()?;
            if body.len() >= length {
                let body = &body[..length];
                return Some(
                    body.lines()
                        .filter_map(|l| l.strip_prefix("cmdstat_"))
                        .filter(|l| !l.starts_with("info:") && !l.starts_with("config"))
                        .filter_map(|l| {
                            l.split("calls=")
                                .nth(1)?
                                .split(',')
                                .next()?
                                .parse::<u64>()
                                .ok()
                        })
                        .sum(),
                );
            }
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut reply = [0u8; 64];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read(&mut reply).is_ok_and(|n| {
                reply[..n].starts_with(b"+PONG") || reply[..n].starts_with(b"-NOAUTH")
            })
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused server would not die of SIGKILL any later, but be sure it runs.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        self.kill();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a free port")
}
