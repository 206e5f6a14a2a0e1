//! [`RedisStore`]: the fleet store on a Redis server (feature `redis`), with the `redis`
//! crate's synchronous client.
//!
//! One connection, made on first use (a warm start never connects) with a connect timeout,
//! then used with a response (read and write) timeout. Any error drops the connection (a
//! reply that timed out would leave the stream out of step); the next call reconnects, so a
//! restarted server is used again. Credentials come from the URL and are redacted from every
//! message this module builds, including the `redis` crate's own error texts.

use std::fmt;
use std::sync::{Mutex, Once, PoisonError};
use std::time::Duration;

use redis::{Client, Connection, RedisResult, Script};

use super::{SharedError, SharedStore};
use crate::error::Error;

/// Default time to open a connection (TCP, TLS and the handshake).
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

/// A [`SharedStore`] on a Redis server: `redis://[user:password@]host[:port][/db]`, or
/// `rediss://` for TLS (rustls with the platform's root certificates).
///
/// Short timeouts by default (connect 200 ms, response 500 ms): a slow or unreachable
/// server costs a refresh at most that long, then the refresh is local. The password never
/// appears in [`Debug`](fmt::Debug), in [`url`](Self::url), in logs or in error messages.
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
/// assert_eq!(store.url(), "rediss://app:***@redis.internal:6380/0");
/// let cache = AvailabilityCache::builder(Config { search: "https://search.internal".into() })
///     .config_path("config/storage.yaml")
///     .shared_store(store)
///     .open()?;
/// # Ok::<(), storage_availability::Error>(())
/// ```
pub struct RedisStore {
    client: Client,
    /// The URL with its password replaced by `***`.
    url: String,
    /// Texts to blank out of every message: the password, raw and decoded.
    secrets: Vec<String>,
    connect_timeout: Duration,
    response_timeout: Duration,
    connection: Mutex<Option<Connection>>,
    release: Script,
}

impl RedisStore {
    /// A store for the server at `url`. Nothing is connected yet. Fails only when the URL
    /// does not parse ([`Error::InvalidOption`], without the password in its message).
    ///
    /// ```
    /// use storage_availability::RedisStore;
    /// let store = RedisStore::new("redis://:hunter2@127.0.0.1:6379").unwrap();
    /// assert!(!format!("{store:?}").contains("hunter2"));
    /// let error = RedisStore::new("redis://:hunter2@[not a host").unwrap_err();
    /// assert!(!error.to_string().contains("hunter2"));
    /// ```
    pub fn new(url: &str) -> Result<Self, Error> {
        let (redacted, secrets) = redact_url(url);
        if url.starts_with("rediss://") {
            install_crypto_provider();
        }
        let client = Client::open(url).map_err(|error| Error::InvalidOption {
            option: "redis",
            reason: format!(
                "{redacted} is not a usable Redis URL: {}",
                scrub(&error.to_string(), url, &redacted, &secrets)
            ),
        })?;
        Ok(RedisStore {
            client,
            url: redacted,
            secrets,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
            connection: Mutex::new(None),
            release: Script::new(RELEASE_LEASE),
        })
    }

    /// How long opening a connection may take (TCP, TLS, authentication). Default: 200 ms.
    /// Zero is taken as 1 ms.
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

    /// The server's URL with the password replaced by `***`.
    ///
    /// ```
    /// # use storage_availability::RedisStore;
    /// let store = RedisStore::new("redis://user:pw@cache:6379/2")?;
    /// assert_eq!(store.url(), "redis://user:***@cache:6379/2");
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
            None => self.connect().map_err(|e| self.error("connect to", e))?,
        };
        let result = f(&mut connection).map_err(|e| self.error(op, e))?;
        *slot = Some(connection);
        Ok(result)
    }

    fn connect(&self) -> RedisResult<Connection> {
        let connection = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        connection.set_read_timeout(Some(self.response_timeout))?;
        connection.set_write_timeout(Some(self.response_timeout))?;
        Ok(connection)
    }

    fn error(&self, op: &str, error: redis::RedisError) -> SharedError {
        let text = error.to_string();
        SharedError::new(format!(
            "failed to {op} redis at {}: {}",
            self.url,
            scrub(&text, "", &self.url, &self.secrets)
        ))
    }
}

impl SharedStore for RedisStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SharedError> {
        self.with_connection("read from", |c| redis::cmd("GET").arg(key).query(c))
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

/// The URL with its password replaced by `***`, and the secrets to blank out of messages
/// (the password as written and percent-decoded, and the whole user-info part).
pub(crate) fn redact_url(url: &str) -> (String, Vec<String>) {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL: nothing can be told apart from a secret, so show nothing of it.
        return ("<redis URL>".to_owned(), vec![url.to_owned()]);
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return (url.to_owned(), Vec::new());
    };
    let userinfo = &authority[..at];
    let (shown, password) = match userinfo.split_once(':') {
        Some((user, password)) => (format!("{user}:***"), password),
        // `redis://secret@host` is read as a password by some clients: hide it too.
        None => ("***".to_owned(), userinfo),
    };
    let redacted = format!(
        "{}{shown}{}",
        &url[..scheme_end + 3],
        &rest[at..] // "@host..." and the path
    );
    let mut secrets = vec![userinfo.to_owned(), password.to_owned()];
    let decoded = percent_decode(password);
    if decoded != password {
        secrets.push(decoded);
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    (redacted, secrets)
}

/// `text` with the raw URL replaced by its redacted form and every secret by `***`.
pub(crate) fn scrub(text: &str, url: &str, redacted: &str, secrets: &[String]) -> String {
    let mut text = if url.is_empty() {
        text.to_owned()
    } else {
        text.replace(url, redacted)
    };
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

    #[test]
    fn passwords_are_redacted() {
        let (url, secrets) = redact_url("redis://user:p%40ss@host:6379/0");
        assert_eq!(url, "redis://user:***@host:6379/0");
        assert!(secrets.contains(&"p@ss".to_owned()));
        assert_eq!(
            scrub("auth p@ss failed", "", &url, &secrets),
            "auth *** failed"
        );
        assert_eq!(redact_url("rediss://:pw@h/").0, "rediss://:***@h/");
        assert_eq!(redact_url("redis://pw@h").0, "redis://***@h");
        assert_eq!(redact_url("redis://h:1").0, "redis://h:1");
        assert_eq!(redact_url("garbage").0, "<redis URL>");
    }
}
