//! [`RedisStore`]: the fleet store on a Redis server (feature `redis`), with the `redis`
//! crate's synchronous client.
//!
//! One connection, made on first use (a warm start never connects) within one connect
//! deadline, then used with a response (read and write) timeout per command. Any error
//! drops the connection (a reply that timed out would leave the stream out of step); the
//! next call reconnects, so a restarted server is used again.
//!
//! The connect deadline covers everything: name resolution, every resolved address and the
//! handshake (TLS, `AUTH`, `SELECT`). The `redis` crate applies its timeout to each step
//! (each address, each setup reply) and cannot bound name resolution, so the whole setup
//! runs on a helper thread that the caller waits for until the deadline; past it, the
//! helper is abandoned (it ends on its own timeouts and its late connection is dropped)
//! and one more attempt is refused while it is still running. Within the helper, the
//! resolved addresses share what is left of the deadline, so a list of black-holed
//! addresses cannot cost more than the deadline either.
//!
//! Credentials come from the URL. Redaction works on the parsed URL: the user info and the `user`, `pass` and `password` query parameters are replaced by `***`,
//! other parameters and fragments are not shown, and a URL that does not parse is never
//! echoed at all. Every message this module builds has the secrets blanked out, including
//! the `redis` crate's own error texts.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

use redis::{
    Client, Connection, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisResult, Script,
};

use super::{SharedError, SharedStore};
use crate::error::Error;

/// Default time to open a connection: name resolution, TCP, TLS and the handshake.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// Default time to wait for a reply (and to send a command).
pub(crate) const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

/// Deletes the lease only if it still holds our token: another host's lease (taken after
/// ours expired) is never released by us.
const RELEASE_LEASE: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
else
    return 0
end
"#;

/// What [`RedisStore::new`] says of a URL that does not parse, without any of it.
const UNPARSABLE: &str = "the Redis URL does not parse, so it is not shown (it may hold a \
    password); use redis://, rediss://, redis+unix:// or unix://, and percent-encode \
    '/', '#', '?', '@' and '%' in a user name or password";

/// Resolves a host name and port to socket addresses (see [`RedisStore::resolver`]).
type Resolve = dyn Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync;

/// A [`SharedStore`] on a Redis server: `redis://[user:password@]host[:port][/db]`,
/// `rediss://` for TLS (rustls with the platform's root certificates), or a Unix socket
/// (`redis+unix:///path?db=0&user=u&pass=p`, `unix:///path?...`).
///
/// Short timeouts by default (connect 200 ms, response 500 ms): a slow or unreachable
/// server costs a refresh at most that long, then the refresh is local. The connect timeout
/// is one deadline for name resolution, every resolved address and the handshake. The
/// password never appears in [`Debug`](fmt::Debug), in [`url`](Self::url), in logs or in
/// error messages.
///
/// # Example
///
/// ```no_run
/// use std::time::Duration;
/// use storage_availability::{AvailabilityCache, Outcome, RedisStore, StorageAvailability};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config {
///     #[storage(validate = check_search, scope = "shared")]
///     search: String,
/// }
/// fn check_search(_: &String) -> Outcome { Outcome::ok() }
///
/// let store = RedisStore::new("rediss://app:s3cret@redis.internal:6380/0")?
///     .connect_timeout(Duration::from_millis(100))
///     .response_timeout(Duration::from_millis(250));
/// assert_eq!(store.url(), "rediss://***:***@redis.internal:6380/0");
/// let cache = AvailabilityCache::builder(Config { search: "https://search.internal".into() })
///     .config_path("config/storage.yaml")
///     .shared_store(store)
///     .open()?;
/// # Ok::<(), storage_availability::Error>(())
/// ```
pub struct RedisStore {
    /// The parsed URL (holds the password: never printed).
    info: ConnectionInfo,
    /// The URL with its credentials replaced by `***`.
    url: String,
    /// Texts to blank out of every message: the password, raw and decoded.
    secrets: Arc<[String]>,
    connect_timeout: Duration,
    response_timeout: Duration,
    resolver: Option<Arc<Resolve>>,
    /// Set while a connection attempt's helper thread runs (possibly abandoned).
    connecting: Arc<AtomicBool>,
    connection: Mutex<Option<Connection>>,
    release: Script,
}

/// Why a connection could not be made or a command failed, before redaction.
#[derive(Debug)]
enum Failure {
    /// The connect deadline or the response timeout passed.
    TimedOut {
        after: Duration,
        during: String,
    },
    /// A previous attempt's helper thread is still running (a name lookup that hangs).
    StillConnecting,
    Redis(redis::RedisError),
    Io(io::Error),
}

impl From<redis::RedisError> for Failure {
    fn from(error: redis::RedisError) -> Self {
        Failure::Redis(error)
    }
}

/// (`redis` does not re-export `url::Url`, so this is a macro over the inferred type.)
/// The parsed URL as it may be shown, and the secrets to blank out of messages (the
/// password and the credential parameters, as written and percent-decoded).
macro_rules! redact {
    ($url:expr) => {{
        let url = $url;
        let mut secrets = Vec::new();
        let mut shown = String::from(url.scheme());
        shown.push(':');
        if url.has_authority() {
            shown.push_str("//");
            let user = url.username();
            match url.password() {
                // The user name too: with an unencoded ':' in a password, part of the password
                // is parsed as the user name.
                Some(password) => {
                    secrets.push(password.to_owned());
                    secrets.push(percent_decode(password));
                    if !user.is_empty() {
                        secrets.push(user.to_owned());
                        secrets.push(percent_decode(user));
                        shown.push_str("***");
                    }
                    shown.push_str(":***@");
                }
                // `redis://secret@host` is read as a password by some clients: hide it too.
                None if !user.is_empty() => {
                    secrets.push(user.to_owned());
                    secrets.push(percent_decode(user));
                    shown.push_str("***@");
                }
                None => {}
            }
            if let Some(host) = url.host_str() {
                shown.push_str(host);
            }
            if let Some(port) = url.port() {
                shown.push_str(&format!(":{port}"));
            }
        }
        shown.push_str(url.path());
        let mut query = Vec::new();
        for pair in url.query().unwrap_or_default().split('&') {
            let (name, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(&name.replace('+', " "));
            if SECRET_PARAMETERS.contains(&name.as_str()) {
                if name.starts_with("pass") {
                    secrets.push(raw.to_owned());
                    secrets.push(percent_decode(&raw.replace('+', " ")));
                }
                query.push(format!("{name}=***"));
            } else if SHOWN_PARAMETERS.contains(&name.as_str()) {
                query.push(pair.to_owned());
            }
        }
        if !query.is_empty() {
            shown.push('?');
            shown.push_str(&query.join("&"));
        }
        match url.fragment() {
            Some("insecure") => shown.push_str("#insecure"),
            // Not used by the client; possibly the tail of a password with an unencoded '#'.
            Some(fragment) => secrets.push(fragment.to_owned()),
            None => {}
        }
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        (shown, secrets)
    }};
}

impl RedisStore {
    /// A store for the server at `url`. Nothing is connected yet. Fails only when the URL
    /// does not parse or is not usable ([`Error::InvalidOption`]); its message never
    /// contains the URL's secrets, and a URL that does not parse is not shown at all.
    ///
    /// ```
    /// use storage_availability::RedisStore;
    /// let store = RedisStore::new("redis://:hunter2@127.0.0.1:6379").unwrap();
    /// assert!(!format!("{store:?}").contains("hunter2"));
    /// // An unencoded '/' in the password: the URL does not parse and is never echoed.
    /// let error = RedisStore::new("redis://:hunt/er2@127.0.0.1:6379").unwrap_err();
    /// assert!(!error.to_string().contains("hunt"));
    /// ```
    pub fn new(url: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidOption {
            option: "redis",
            reason,
        };
        let Some(parsed) = redis::parse_redis_url(url) else {
            return Err(invalid(UNPARSABLE.to_owned()));
        };
        if misplaced_at(url, parsed.scheme().ends_with("unix")) {
            return Err(invalid(UNPARSABLE.to_owned()));
        }
        let (redacted, secrets) = redact!(&parsed);
        if matches!(parsed.scheme(), "rediss" | "valkeys") {
            install_crypto_provider();
        }
        // A URL that parses but is refused may still hold a mis-split password (a port,
        // a path): it is not shown either.
        let info = parsed.into_connection_info().map_err(|error| {
            invalid(format!(
                "the Redis URL is not usable ({}); it is not shown, as it may hold a password",
                scrub(&error.to_string(), &secrets)
            ))
        })?;
        Ok(RedisStore {
            info,
            url: redacted,
            secrets: secrets.into(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            resolver: None,
            connecting: Arc::new(AtomicBool::new(false)),
            connection: Mutex::new(None),
            release: Script::new(RELEASE_LEASE),
        })
    }

    /// How long opening a connection may take, all told: name resolution, every resolved
    /// address, TCP, TLS and the handshake (`AUTH`, `SELECT`). Default: 200 ms. Zero is
    /// taken as 1 ms.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::RedisStore;
    /// let store = RedisStore::new("redis://127.0.0.1")?.connect_timeout(Duration::from_millis(50));
    /// # Ok::<(), storage_availability::Error>(())
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How long to wait for each reply (and to send each command). Default: 500 ms. Zero
    /// is taken as 1 ms.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use storage_availability::RedisStore;
    /// let store = RedisStore::new("redis://127.0.0.1")?.response_timeout(Duration::from_millis(100));
    /// # Ok::<(), storage_availability::Error>(())
    /// ```
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How the host name of a `redis://` URL is resolved to addresses. Default: the system
    /// resolver (`ToSocketAddrs`). For service discovery of your own, or to test. It runs on
    /// the connection's helper thread, within the connect deadline: one that never returns
    /// costs the deadline, not more, and while it hangs every further connection attempt of
    /// this store fails at once (rather than stacking up threads). The addresses are tried in order, sharing what is
    /// left of the deadline. Not used for IP addresses, Unix sockets or `rediss://` (TLS
    /// checks the certificate against the name; the system resolves it, within the same
    /// deadline).
    ///
    /// ```
    /// # use storage_availability::RedisStore;
    /// use std::net::{Ipv4Addr, SocketAddr};
    /// let store = RedisStore::new("redis://redis.internal:6379")?
    ///     .resolver(|_host, port| Ok(vec![SocketAddr::from((Ipv4Addr::LOCALHOST, port))]));
    /// # Ok::<(), storage_availability::Error>(())
    /// ```
    pub fn resolver(
        mut self,
        resolve: impl Fn(&str, u16) -> io::Result<Vec<SocketAddr>> + Send + Sync + 'static,
    ) -> Self {
        self.resolver = Some(Arc::new(resolve));
        self
    }

    /// The server's URL with its credentials replaced by `***`: the user info (user name
    /// and password), and the values of the `user`, `pass` and
    /// `password` query parameters. Other query parameters than `db` and `protocol`, and
    /// fragments other than `#insecure`, are left out.
    ///
    /// ```
    /// # use storage_availability::RedisStore;
    /// let store = RedisStore::new("redis://user:pw@cache:6379/2")?;
    /// assert_eq!(store.url(), "redis://***:***@cache:6379/2");
    /// let store = RedisStore::new("redis+unix:///run/redis.sock?db=1&pass=pw")?;
    /// assert_eq!(store.url(), "redis+unix:///run/redis.sock?db=1&pass=***");
    /// # Ok::<(), storage_availability::Error>(())
    /// ```
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs `f` on the connection, connecting first if needed; drops the connection on any
    /// error.
    fn with_connection<R>(
        &self,
        op: &str,
        f: impl FnOnce(&mut Connection) -> RedisResult<R>,
    ) -> Result<R, SharedError> {
        let mut slot = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut connection = match slot.take() {
            Some(connection) => connection,
            None => self
                .connect()
                .map_err(|e| self.error("connect to", e, self.connect_timeout))?,
        };
        let result = f(&mut connection)
            .map_err(|e| self.error(op, Failure::Redis(e), self.response_timeout))?;
        *slot = Some(connection);
        Ok(result)
    }

    /// A new connection, within the connect deadline (see the module's documentation).
    fn connect(&self) -> Result<Connection, Failure> {
        if self.connecting.swap(true, Ordering::SeqCst) {
            return Err(Failure::StillConnecting);
        }
        let deadline = Instant::now() + self.connect_timeout;
        let stage = Arc::new(Mutex::new(String::from("starting")));
        let (sender, receiver) = mpsc::sync_channel(1);
        let helper = {
            let info = self.info.clone();
            let resolver = self.resolver.clone();
            let connecting = Arc::clone(&self.connecting);
            let stage = Arc::clone(&stage);
            let response_timeout = self.response_timeout;
            move || {
                let result = connect_before(&info, resolver.as_deref(), deadline, &stage).and_then(
                    |connection| {
                        connection.set_read_timeout(Some(response_timeout))?;
                        connection.set_write_timeout(Some(response_timeout))?;
                        Ok(connection)
                    },
                );
                connecting.store(false, Ordering::SeqCst);
                // The caller may have given up: the late connection is dropped.
                let _ = sender.send(result);
            }
        };
        if let Err(error) = std::thread::Builder::new()
            .name("storage-availability-redis-connect".to_owned())
            .spawn(helper)
        {
            self.connecting.store(false, Ordering::SeqCst);
            return Err(Failure::Io(error));
        }
        match receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(result) => result,
            Err(_) => Err(Failure::TimedOut {
                after: self.connect_timeout,
                during: stage.lock().unwrap_or_else(PoisonError::into_inner).clone(),
            }),
        }
    }

    /// A message without secrets; timeouts are reported as such, after `timeout`.
    fn error(&self, op: &str, failure: Failure, timeout: Duration) -> SharedError {
        let is_timeout = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            )
        };
        let reason = match failure {
            Failure::TimedOut { after, during } => format!("timed out after {after:?} ({during})"),
            Failure::StillConnecting => {
                "the previous connection attempt is still running (a name lookup that does not \
                 answer?)"
                    .to_owned()
            }
            Failure::Redis(e) if e.is_timeout() => format!("timed out after {timeout:?}"),
            Failure::Io(e) if is_timeout(&e) => format!("timed out after {timeout:?}"),
            Failure::Redis(e) => scrub(&e.to_string(), &self.secrets),
            Failure::Io(e) => scrub(&e.to_string(), &self.secrets),
        };
        SharedError::new(format!("failed to {op} redis at {}: {reason}", self.url))
    }
}

/// Connects to the server of `info` before `deadline`, noting in `stage` what it is doing.
fn connect_before(
    info: &ConnectionInfo,
    resolver: Option<&Resolve>,
    deadline: Instant,
    stage: &Mutex<String>,
) -> Result<Connection, Failure> {
    let set_stage = |text: String| {
        *stage.lock().unwrap_or_else(PoisonError::into_inner) = text;
    };
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
    };
    let timed_out = |during: &str| Failure::TimedOut {
        after: Duration::ZERO,
        during: during.to_owned(),
    };
    let ConnectionAddr::Tcp(host, port) = info.addr() else {
        // TLS (the name is needed for the certificate) and Unix sockets: the `redis` crate
        // connects, bounded by the caller's deadline.
        set_stage("connecting and handshaking".to_owned());
        let left = remaining().ok_or_else(|| timed_out("connecting"))?;
        return Ok(Client::open(info.clone())?.get_connection_with_timeout(left)?);
    };
    let addresses = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, *port)],
        Err(_) => {
            set_stage(format!("resolving {host}"));
            match resolver {
                Some(resolve) => resolve(host, *port),
                None => (host.as_str(), *port)
                    .to_socket_addrs()
                    .map(Iterator::collect),
            }
            .map_err(Failure::Io)?
        }
    };
    if addresses.is_empty() {
        return Err(Failure::Io(io::Error::other(format!(
            "{host} resolved to no address"
        ))));
    }
    let mut last = None;
    for (tried, address) in addresses.iter().enumerate() {
        let Some(left) = remaining() else { break };
        // The addresses left share what is left of the deadline.
        let share = left / u32::try_from(addresses.len() - tried).unwrap_or(u32::MAX);
        set_stage(format!(
            "connecting to {address}, address {} of {}",
            tried + 1,
            addresses.len()
        ));
        let info = info.clone().set_addr(ConnectionAddr::Tcp(
            address.ip().to_string(),
            address.port(),
        ));
        match Client::open(info).and_then(|client| client.get_connection_with_timeout(share)) {
            Ok(connection) => return Ok(connection),
            Err(error) => last = Some(error),
        }
    }
    Err(last.map_or_else(|| timed_out("connecting"), Failure::Redis))
}

impl SharedStore for RedisStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> {
        self.with_connection("read from", |c| redis::cmd("GET").arg(key).query(c))
    }

    fn get_with_ttl(&self, key: &str) -> Result<Option<(Vec<u8>, Option<Duration>)>, SharedError> {
        self.with_connection("read from", |c| {
            let (value, ttl): (Option<Vec<u8>>, i64) = redis::pipe()
                .cmd("GET")
                .arg(key)
                .cmd("PTTL")
                .arg(key)
                .query(c)?;
            // PTTL: -1 without a TTL, -2 when the key is gone.
            let ttl = u64::try_from(ttl).ok().map(Duration::from_millis);
            Ok(value.map(|value| (value, ttl)))
        })
    }

    fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), SharedError> {
        self.with_connection("write to", |c| {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .query(c)
        })
    }

    fn try_lease(&self, key: &str, token: &str, ttl: Duration) -> Result<bool, SharedError> {
        self.with_connection("take a lease in", |c| {
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .query(c)?;
            Ok(set.is_some())
        })
    }

    fn release_lease(&self, key: &str, token: &str) -> Result<bool, SharedError> {
        self.with_connection("release a lease in", |c| {
            let deleted: i64 = self.release.key(key).arg(token).invoke(c)?;
            Ok(deleted == 1)
        })
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("resolver", &self.resolver.as_ref().map(|_| "custom"))
            .finish_non_exhaustive()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// rustls needs a process-wide crypto provider; ring's, unless the application installed
/// one already (then this does nothing).
fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Query parameters that hold credentials: shown as `name=***`.
const SECRET_PARAMETERS: [&str; 4] = ["user", "username", "pass", "password"];
/// Query parameters shown as they are.
const SHOWN_PARAMETERS: [&str; 2] = ["db", "protocol"];

/// Whether `raw` has an `@` after its authority other than in the value of a credential
/// query parameter (or, for Unix sockets, in the path): the sign of a password with an
/// unencoded `/`, `?` or `#`, which moved the rest of the user info out of the authority
/// (`redis://pa#ss@host` parses as host `pa`). Such a URL is refused, not shown.
fn misplaced_at(raw: &str, unix: bool) -> bool {
    let after_scheme = raw
        .find("://")
        .map_or_else(|| raw.find(':').map_or(raw.len(), |i| i + 1), |i| i + 3);
    let rest = &raw[after_scheme..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = &rest[authority_end..];
    let (before_fragment, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = before_fragment
        .split_once('?')
        .unwrap_or((before_fragment, ""));
    if fragment.contains('@') || (!unix && path.contains('@')) {
        return true;
    }
    query.split('&').any(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        name.contains('@')
            || (value.contains('@') && !SECRET_PARAMETERS.contains(&percent_decode(name).as_str()))
    })
}

/// `text` with every secret replaced by `***`.
fn scrub(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for secret in secrets {
        text = text.replace(secret.as_str(), "***");
    }
    text
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if let [b'%', high, low, ..] = bytes[i..]
            && let (Some(high), Some(low)) = (hex(high), hex(low))
        {
            out.push((high * 16 + low) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything a URL can show up in: `url()` and `Debug`, or the error and its `Debug`.
    fn texts(url: &str) -> String {
        match RedisStore::new(url) {
            Ok(store) => format!("{} | {store:?}", store.url()),
            Err(error) => format!("{error} | {error:?}"),
        }
    }

    /// Every URL form the `redis` crate accepts, with `{u}` for a user and `{p}` for a
    /// password, as written (not encoded).
    const FORMS: &[&str] = &[
        "redis://:{p}@127.0.0.1:6379",
        "redis://{u}:{p}@redis.internal:6379/2",
        "redis://{p}@redis.internal",
        "redis://redis.internal/?password={p}",
        "redis://redis.internal:6379/0?user={u}&password={p}&protocol=resp3",
        "rediss://{u}:{p}@redis.internal:6380/0",
        "rediss://:{p}@redis.internal/#insecure",
        "valkey://{u}:{p}@[::1]:7000/3",
        "valkeys://:{p}@redis.internal",
        "redis+unix:///run/redis.sock?pass={p}",
        "redis+unix:///run/redis.sock?db=1&user={u}&pass={p}",
        "unix:///run/redis.sock?user={u}&pass={p}",
        "unix:/run/redis.sock?pass={p}&db=3",
        "valkey+unix:///run/valkey.sock?pass={p}",
    ];

    #[test]
    fn known_forms_are_redacted_from_the_parsed_url() {
        let cases = [
            (
                "redis://user:pw@cache:6379/2",
                "redis://***:***@cache:6379/2",
            ),
            ("redis://:pw@h/", "redis://:***@h/"),
            ("redis://pw@h", "redis://***@h"),
            ("redis://h:1", "redis://h:1"),
            ("redis://u:p@ss@h:6379/2", "redis://***:***@h:6379/2"),
            ("redis://h/0?password=se#cret", "redis://h/0?password=***"),
            (
                "redis://h/0?protocol=resp3&user=u&password=p&other=x",
                "redis://h/0?protocol=resp3&user=***&password=***",
            ),
            ("rediss://:pw@h/#insecure", "rediss://:***@h/#insecure"),
            (
                "redis+unix:///run/r.sock?db=1&pass=a/b@c",
                "redis+unix:///run/r.sock?db=1&pass=***",
            ),
            (
                "unix:///run/r.sock?user=u&pass=pw",
                "unix:///run/r.sock?user=***&pass=***",
            ),
        ];
        for (url, expected) in cases {
            assert_eq!(RedisStore::new(url).unwrap().url(), expected, "{url}");
        }
        for unparsable in [
            "garbage",
            "http://:pw@h/",
            "redis://:p/w@h",
            "redis://u:12/34@h",
        ] {
            let text = texts(unparsable);
            assert!(text.contains("not shown"), "{text}");
        }
    }

    #[test]
    fn scrub_blanks_every_secret() {
        let secrets = vec!["p@ss".to_owned(), "p%40ss".to_owned()];
        assert_eq!(
            scrub("auth p@ss or p%40ss failed", &secrets),
            "auth *** or *** failed"
        );
    }

    /// A password of three marked pieces joined by characters that break URLs
    /// (unencoded '/', '#', '?', '@' and friends), and a user name with one, in every form
    /// and every combination: no piece is ever shown, whether the URL parses or not.
    #[test]
    fn no_piece_of_a_password_is_ever_shown() {
        const SPECIALS: [char; 11] = ['/', '#', '?', '@', ':', '%', '&', '=', '+', ' ', '!'];
        let mut checked = 0;
        for form in FORMS {
            for first in SPECIALS {
                for second in SPECIALS {
                    for user_special in ['/', '#', '?', '@', ':', 'x'] {
                        let password = format!("Qa7{first}Wm3{second}Zr8");
                        let user = format!("usr{user_special}Kv5");
                        let url = form.replace("{u}", &user).replace("{p}", &password);
                        let text = texts(&url);
                        for piece in ["Qa7", "Wm3", "Zr8", "Kv5"] {
                            assert!(!text.contains(piece), "{piece} of {url} in {text}");
                        }
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, FORMS.len() * 11 * 11 * 6);
    }
}
