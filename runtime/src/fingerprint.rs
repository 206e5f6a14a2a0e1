//! Section keys: SHA-256 over a versioned, unambiguous encoding of everything a validator's
//! answer depends on (README.md, "What is cached, and when it is revalidated"; FORMAT.md,
//! "Section keys").
//!
//! The hashed bytes are a sequence of fields, each a big-endian `u64` length and then its
//! bytes:
//!
//! 1. the key format tag, `storage-availability/2`;
//! 2. the config type identity (`module_path!()::StructName`, from the derive);
//! 3. the application version;
//! 4. the section's scope (`host` or `shared`);
//! 5. for a host-scoped section: the host identity, then the working directory (its bytes),
//!    or `no_working_dir` for a section that opted out with `#[storage(cwd = false)]`;
//! 6. the section name and its version (decimal);
//! 7. `configured` or `unconfigured`, and `key_with` or `no_key_with`;
//! 8. for a configured section: the canonical JSON of its value, then its length (`u64`);
//! 9. with `key_with`: the canonical JSON of what it returned, then its length.
//!
//! Every field before 8 has its length in front, 8 and 9 have theirs behind, and which of 8
//! and 9 are present is stated in 7: the encoding reads back one way only. Fields 1 to 5 are
//! the same for every section of one kind in one cache: the hasher's state after them is
//! made once per [`KeyContext`] and cloned for each key.
//!
//! Canonical JSON is written by this module's own serde `Serializer`, straight into the
//! hasher: object keys sorted (the entries of one object are buffered to sort them, nothing
//! else is), no white space, `NaN`, `Infinity` and `-Infinity` written as those bare words
//! (never as a shared `null`), and a `Some` whose content would be `null` marked with a `?`
//! per level (`Some(None)` is `?null`), so no two values of one type share an encoding.

use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::section::Scope;

mod canonical;

use canonical::{Canonical, HashOut};

/// The version of the key format: bump it to revalidate every section of every user.
pub(crate) const KEY_FORMAT: &str = "storage-availability/2";

/// A section's cache key: the full SHA-256, as 64 lowercase hex digits. Never truncated.
///
/// Dereferences to `str`.
///
/// # Example
///
/// ```
/// use storage_availability::{KeyContext, SectionSpec, section_key};
///
/// let spec = SectionSpec::new("app::StorageConfig", "csv");
/// let key = section_key(&spec, &KeyContext::new("1.0.0"), Some(&"data/")).unwrap();
/// assert_eq!(key.len(), 64);
/// assert!(key.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SectionKey([u8; 64]);

impl SectionKey {
    fn from_digest(digest: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; 64];
        for (i, byte) in digest.iter().take(32).enumerate() {
            out[2 * i] = HEX[usize::from(byte >> 4)];
            out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
        }
        SectionKey(out)
    }

    /// A key that no record will ever match (a digest of a process-unique nonce): the key of
    /// a section whose real key cannot be computed, so that it is validated every time.
    pub(crate) fn never_matching() -> Self {
        static NONCE: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let mut hasher = Sha256::new();
        hasher.update(b"storage-availability/uncacheable\0");
        hasher.update(nanos.to_le_bytes());
        hasher.update(std::process::id().to_le_bytes());
        hasher.update(NONCE.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        SectionKey::from_digest(&hasher.finalize())
    }

    /// The key as 64 lowercase hex digits.
    ///
    /// ```
    /// # use storage_availability::{KeyContext, SectionSpec, section_key};
    /// let spec = SectionSpec::new("app::StorageConfig", "csv");
    /// let key = section_key(&spec, &KeyContext::new("1.0.0"), Some(&1)).unwrap();
    /// assert_eq!(key.as_str().len(), 64);
    /// ```
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for SectionKey {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SectionKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SectionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SectionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SectionKey({})", self.as_str())
    }
}

impl PartialEq<str> for SectionKey {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SectionKey {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SectionKey {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl From<SectionKey> for String {
    fn from(key: SectionKey) -> String {
        key.as_str().to_owned()
    }
}

/// What a section's key depends on besides its value and the [`KeyContext`]: the config
/// type, the section's name, version and scope, and whether the working directory counts.
///
/// The derive builds one per section; a hand-written
/// [`StorageAvailability`](crate::StorageAvailability) implementation builds its own.
///
/// # Example
///
/// ```
/// use storage_availability::{Scope, SectionSpec};
///
/// const SPEC: SectionSpec<'static> = SectionSpec::new("app::StorageConfig", "key_value")
///     .version(2)
///     .scope(Scope::Host)
///     .working_dir(false);
/// assert_eq!(SPEC.name(), "key_value");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SectionSpec<'a> {
    config_type: &'a str,
    name: &'a str,
    version: u32,
    scope: Scope,
    working_dir: bool,
}

impl<'a> SectionSpec<'a> {
    /// Section `name` of the config type `config_type` (`module_path::StructName`), at
    /// version 1, host-scoped, with the working directory in its key.
    ///
    /// ```
    /// # use storage_availability::SectionSpec;
    /// let spec = SectionSpec::new("app::StorageConfig", "csv");
    /// assert_eq!(spec.config_type(), "app::StorageConfig");
    /// ```
    pub const fn new(config_type: &'a str, name: &'a str) -> Self {
        SectionSpec {
            config_type,
            name,
            version: 1,
            scope: Scope::Host,
            working_dir: true,
        }
    }

    /// The section's `version = N`.
    ///
    /// ```
    /// # use storage_availability::SectionSpec;
    /// assert_eq!(SectionSpec::new("app::Config", "csv").version(3).get_version(), 3);
    /// ```
    pub const fn version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// The section's scope: a host-scoped section's key also covers the host identity and
    /// (unless [`working_dir(false)`](Self::working_dir)) the working directory.
    ///
    /// ```
    /// # use storage_availability::{Scope, SectionSpec};
    /// let spec = SectionSpec::new("app::Config", "kv").scope(Scope::Shared);
    /// assert_eq!(spec.get_scope(), Scope::Shared);
    /// ```
    pub const fn scope(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// `false` (`#[storage(cwd = false)]`): the working directory is not part of this
    /// host-scoped section's key, for sections that hold no relative path.
    ///
    /// ```
    /// # use storage_availability::SectionSpec;
    /// assert!(!SectionSpec::new("app::Config", "kv").working_dir(false).has_working_dir());
    /// ```
    pub const fn working_dir(mut self, include: bool) -> Self {
        self.working_dir = include;
        self
    }

    /// The config type identity.
    ///
    /// ```
    /// # use storage_availability::SectionSpec;
    /// assert_eq!(SectionSpec::new("app::Config", "kv").config_type(), "app::Config");
    /// ```
    pub const fn config_type(&self) -> &'a str {
        self.config_type
    }

    /// The section name.
    ///
    /// ```
    /// # use storage_availability::SectionSpec;
    /// assert_eq!(SectionSpec::new("app::Config", "kv").name(), "kv");
    /// ```
    pub const fn name(&self) -> &'a str {
        self.name
    }

    /// The section version.
    ///
    /// ```
    /// # use storage_availability::SectionSpec;
    /// assert_eq!(SectionSpec::new("app::Config", "kv").get_version(), 1);
    /// ```
    pub const fn get_version(&self) -> u32 {
        self.version
    }

    /// The section scope.
    ///
    /// ```
    /// # use storage_availability::{Scope, SectionSpec};
    /// assert_eq!(SectionSpec::new("app::Config", "kv").get_scope(), Scope::Host);
    /// ```
    pub const fn get_scope(&self) -> Scope {
        self.scope
    }

    /// Whether a host-scoped key covers the working directory.
    ///
    /// ```
    /// # use storage_availability::SectionSpec;
    /// assert!(SectionSpec::new("app::Config", "kv").has_working_dir());
    /// ```
    pub const fn has_working_dir(&self) -> bool {
        self.working_dir
    }
}

/// The inputs of every key of one cache that come from outside the config: the application
/// version, the host identity and the working directory.
///
/// [`KeyContext::new`] reads the host identity (`/etc/machine-id`, else the host name) and
/// the current working directory; the cache builds one when it opens, with the version
/// that [`AvailabilityCacheBuilder::app_version`](crate::AvailabilityCacheBuilder::app_version)
/// set, else the config crate's `CARGO_PKG_VERSION`.
///
/// # Example
///
/// ```
/// use storage_availability::{KeyContext, SectionSpec, section_key};
///
/// let spec = SectionSpec::new("app::StorageConfig", "csv");
/// let here = KeyContext::new("1.0.0").with_host("a").with_working_dir("/srv/app");
/// let there = here.clone().with_host("b");
/// // The same relative path on another host is another key.
/// assert_ne!(
///     section_key(&spec, &here, Some(&"data/")).unwrap(),
///     section_key(&spec, &there, Some(&"data/")).unwrap(),
/// );
/// ```
#[derive(Debug, Clone)]
pub struct KeyContext {
    app_version: String,
    host: Option<Arc<str>>,
    working_dir: Option<PathBuf>,
    /// The hasher after the fields every section of one config type shares (see
    /// [`Prefixes`]), made at the first key: a cache's keys all start the same way.
    prefixes: OnceLock<Prefixes>,
}

impl PartialEq for KeyContext {
    fn eq(&self, other: &Self) -> bool {
        (&self.app_version, &self.host, &self.working_dir)
            == (&other.app_version, &other.host, &other.working_dir)
    }
}

impl Eq for KeyContext {}

/// For one config type, the SHA-256 state after the key's leading fields, per kind of
/// section: shared, host-scoped without and with the working directory (`None` when the
/// host or the directory is unknown).
#[derive(Debug, Clone)]
struct Prefixes {
    config_type: String,
    shared: Sha256,
    host: Option<Sha256>,
    host_cwd: Option<Sha256>,
}

impl KeyContext {
    /// The context of this process now: `app_version`, this host's identity, the current
    /// working directory.
    ///
    /// ```
    /// # use storage_availability::KeyContext;
    /// let context = KeyContext::new("2.1.0");
    /// assert_eq!(context.app_version(), "2.1.0");
    /// ```
    pub fn new(app_version: impl Into<String>) -> Self {
        KeyContext {
            app_version: app_version.into(),
            host: host_identity(),
            working_dir: std::env::current_dir().ok(),
            prefixes: OnceLock::new(),
        }
    }

    /// Another host identity (to compute what another host's key would be).
    ///
    /// ```
    /// # use storage_availability::KeyContext;
    /// assert_eq!(KeyContext::new("1").with_host("build-7").host(), Some("build-7"));
    /// ```
    pub fn with_host(mut self, host: impl AsRef<str>) -> Self {
        self.host = Some(Arc::from(host.as_ref()));
        self.prefixes = OnceLock::new();
        self
    }

    /// Another working directory.
    ///
    /// ```
    /// # use storage_availability::KeyContext;
    /// let context = KeyContext::new("1").with_working_dir("/srv");
    /// assert_eq!(context.working_dir(), Some(std::path::Path::new("/srv")));
    /// ```
    pub fn with_working_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.working_dir = Some(dir.as_ref().to_owned());
        self.prefixes = OnceLock::new();
        self
    }

    /// The application version in the keys.
    ///
    /// ```
    /// # use storage_availability::KeyContext;
    /// assert_eq!(KeyContext::new("1.2.3").app_version(), "1.2.3");
    /// ```
    pub fn app_version(&self) -> &str {
        &self.app_version
    }

    /// The host identity in host-scoped keys (`None`: unknown, host-scoped sections are then
    /// uncacheable).
    ///
    /// ```
    /// # use storage_availability::KeyContext;
    /// assert_eq!(KeyContext::new("1").with_host("h").host(), Some("h"));
    /// ```
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The working directory in host-scoped keys (`None`: unknown, such sections are then
    /// uncacheable).
    ///
    /// ```
    /// # use storage_availability::KeyContext;
    /// assert_eq!(KeyContext::new("1").working_dir(), std::env::current_dir().ok().as_deref());
    /// ```
    pub fn working_dir(&self) -> Option<&Path> {
        self.working_dir.as_deref()
    }

    /// The hasher after the leading fields of `spec`'s key: from the prefixes made for its
    /// config type (the first one asked for), else from scratch.
    fn prefix(&self, spec: &SectionSpec<'_>) -> Result<Sha256, KeyError> {
        let prefixes = self
            .prefixes
            .get_or_init(|| Prefixes::new(self, spec.config_type));
        if prefixes.config_type == spec.config_type {
            let ready = match (spec.scope, spec.working_dir) {
                (Scope::Shared, _) => Some(&prefixes.shared),
                (_, false) => prefixes.host.as_ref(),
                (_, true) => prefixes.host_cwd.as_ref(),
            };
            if let Some(hasher) = ready {
                return Ok(hasher.clone());
            }
        }
        self.prefix_from_scratch(spec.config_type, spec.scope, spec.working_dir)
            .map_err(|missing| missing(spec.name.to_owned()))
    }

    /// Fields 1 to 6 of a key (see the module documentation), or what is missing.
    fn prefix_from_scratch(
        &self,
        config_type: &str,
        scope: Scope,
        working_dir: bool,
    ) -> Result<Sha256, fn(String) -> KeyError> {
        let mut out = HashOut::default();
        out.field(KEY_FORMAT.as_bytes());
        out.field(config_type.as_bytes());
        out.field(self.app_version.as_bytes());
        out.field(scope.as_str().as_bytes());
        if scope == Scope::Host {
            let host = self
                .host
                .as_deref()
                .ok_or((|section| KeyError::NoHostIdentity { section }) as fn(String) -> _)?;
            out.field(host.as_bytes());
            if working_dir {
                let dir = self.working_dir.as_deref().ok_or(
                    (|section| KeyError::NoWorkingDirectory { section }) as fn(String) -> _,
                )?;
                out.field(dir.as_os_str().as_encoded_bytes());
            } else {
                out.field(b"no_working_dir");
            }
        }
        Ok(out.into_hasher())
    }
}

impl Prefixes {
    fn new(context: &KeyContext, config_type: &str) -> Self {
        let make = |scope, working_dir| {
            context
                .prefix_from_scratch(config_type, scope, working_dir)
                .ok()
        };
        Prefixes {
            config_type: config_type.to_owned(),
            shared: make(Scope::Shared, false).unwrap_or_default(),
            host: make(Scope::Host, false),
            host_cwd: make(Scope::Host, true),
        }
    }
}

/// This host's identity: `machine-id:<id>` from `/etc/machine-id` (or D-Bus's copy), else
/// `hostname:<name>`. Read once per process.
fn host_identity() -> Option<Arc<str>> {
    static HOST: OnceLock<Option<Arc<str>>> = OnceLock::new();
    HOST.get_or_init(|| {
        let read = |path: &str| -> Option<String> {
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(std::fs::File::open(path).ok()?, 4096),
                &mut text,
            )
            .ok()?;
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        };
        let machine_id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
            .into_iter()
            .find_map(read)
            .map(|id| format!("machine-id:{id}"));
        let host_name = || {
            ["/proc/sys/kernel/hostname", "/etc/hostname"]
                .into_iter()
                .find_map(read)
                .or_else(|| std::env::var("COMPUTERNAME").ok())
                .or_else(|| std::env::var("HOSTNAME").ok())
                .filter(|name| !name.is_empty())
                .map(|name| format!("hostname:{name}"))
        };
        machine_id.or_else(host_name).map(Arc::from)
    })
    .clone()
}

/// Why a section's key could not be computed: the section is then uncacheable (validated at
/// every open, never reused).
///
/// # Example
///
/// ```
/// use std::collections::HashMap;
/// use storage_availability::{KeyContext, KeyError, SectionSpec, section_key};
///
/// struct Broken;
/// impl serde::Serialize for Broken {
///     fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
///         Err(serde::ser::Error::custom("no"))
///     }
/// }
/// let spec = SectionSpec::new("app::Config", "csv");
/// let error = section_key(&spec, &KeyContext::new("1"), Some(&Broken)).unwrap_err();
/// assert!(matches!(error, KeyError::Serialize { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The section's (or its `key_with`'s) `Serialize` implementation failed.
    #[error("section `{section}` cannot be serialised for its key: {message}")]
    Serialize {
        /// The section name.
        section: String,
        /// serde's error.
        message: String,
    },
    /// Computing the key panicked (in `Serialize`, or in the `key_with` function).
    #[error("computing the key of section `{section}` panicked: {message}")]
    Panicked {
        /// The section name.
        section: String,
        /// The panic message.
        message: String,
    },
    /// A host-scoped section, and this host has no identity (no machine id, no host name).
    #[error("section `{section}` is host-scoped and this host has no identity")]
    NoHostIdentity {
        /// The section name.
        section: String,
    },
    /// A host-scoped section that covers the working directory, which is unknown (deleted).
    #[error("section `{section}` depends on the working directory, which is unknown")]
    NoWorkingDirectory {
        /// The section name.
        section: String,
    },
    /// Neither `section_key` nor `section_key_in` is implemented by a hand-written
    /// implementation of `StorageAvailability`.
    #[error("section `{section}`: neither `section_key` nor `section_key_in` is implemented")]
    NotImplemented {
        /// The section name.
        section: String,
    },
}

/// The key of a section without `key_with`, computed exactly as the derive does: `value` is
/// `None` for an unconfigured `Option` section (whose key never equals a configured one).
///
/// # Example
///
/// ```
/// use storage_availability::{KeyContext, SectionSpec, section_key};
///
/// let spec = SectionSpec::new("app::StorageConfig", "csv");
/// let context = KeyContext::new("1.0.0");
/// let a = section_key(&spec, &context, Some(&serde_json::json!({"a": 1, "b": 2}))).unwrap();
/// let b = section_key(&spec, &context, Some(&serde_json::json!({"b": 2, "a": 1}))).unwrap();
/// assert_eq!(a, b);
/// // Not configured is never the key of a value, not even of one that serialises as null.
/// assert_ne!(
///     section_key(&spec, &context, None::<&()>).unwrap(),
///     section_key(&spec, &context, Some(&())).unwrap(),
/// );
/// ```
pub fn section_key<T: Serialize + ?Sized>(
    spec: &SectionSpec<'_>,
    context: &KeyContext,
    value: Option<&T>,
) -> Result<SectionKey, KeyError> {
    section_key_with(spec, context, value, None::<&()>)
}

/// [`section_key`] with the scope set to `scope`: a shared section's key differs from the
/// host-scoped key of the same value, so a record can never move between the two.
///
/// # Example
///
/// ```
/// use storage_availability::{KeyContext, Scope, SectionSpec, section_key, section_key_with_scope};
///
/// let spec = SectionSpec::new("app::StorageConfig", "kv");
/// let context = KeyContext::new("1.0.0");
/// assert_ne!(
///     section_key_with_scope(&spec, Scope::Shared, &context, Some(&1)).unwrap(),
///     section_key(&spec, &context, Some(&1)).unwrap(),
/// );
/// ```
pub fn section_key_with_scope<T: Serialize + ?Sized>(
    spec: &SectionSpec<'_>,
    scope: Scope,
    context: &KeyContext,
    value: Option<&T>,
) -> Result<SectionKey, KeyError> {
    section_key(&spec.scope(scope), context, value)
}

/// The key of a section with `#[storage(key_with = path)]`: `key_with` is what the function
/// returned (`None` for an unconfigured section, whose function is not called).
///
/// # Example
///
/// ```
/// use storage_availability::{KeyContext, SectionSpec, section_key_with};
///
/// let spec = SectionSpec::new("app::StorageConfig", "db");
/// let context = KeyContext::new("1.0.0");
/// let url = "postgres://db/app";
/// // Two passwords that serde does not show: two keys.
/// assert_ne!(
///     section_key_with(&spec, &context, Some(&url), Some(&"digest-1")).unwrap(),
///     section_key_with(&spec, &context, Some(&url), Some(&"digest-2")).unwrap(),
/// );
/// ```
pub fn section_key_with<T: Serialize + ?Sized, W: Serialize + ?Sized>(
    spec: &SectionSpec<'_>,
    context: &KeyContext,
    value: Option<&T>,
    key_with: Option<&W>,
) -> Result<SectionKey, KeyError> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        encode(spec, context, value, key_with)
    }));
    match result {
        Ok(result) => result,
        Err(payload) => Err(KeyError::Panicked {
            section: spec.name.to_owned(),
            message: crate::validate::panic_message(&*payload),
        }),
    }
}

fn encode<T: Serialize + ?Sized, W: Serialize + ?Sized>(
    spec: &SectionSpec<'_>,
    context: &KeyContext,
    value: Option<&T>,
    key_with: Option<&W>,
) -> Result<SectionKey, KeyError> {
    let section = || spec.name.to_owned();
    let mut out = HashOut::new(context.prefix(spec)?);
    out.field(spec.name.as_bytes());
    let mut version = [0u8; 10]; // u32::MAX has 10 digits
    let mut cursor = std::io::Cursor::new(&mut version[..]);
    serde_json::to_writer(&mut cursor, &spec.version).map_err(|error| KeyError::Serialize {
        section: section(),
        message: error.to_string(),
    })?;
    let digits = cursor.position() as usize;
    out.field(&version[..digits]);
    out.field(if value.is_some() {
        b"configured"
    } else {
        b"unconfigured"
    });
    out.field(if key_with.is_some() {
        b"key_with".as_slice()
    } else {
        b"no_key_with"
    });
    let serialize_error = |error: serde_json::Error| KeyError::Serialize {
        section: section(),
        message: error.to_string(),
    };
    if let Some(value) = value {
        out.suffixed(value).map_err(serialize_error)?;
    }
    if let Some(key_with) = key_with {
        out.suffixed(key_with).map_err(serialize_error)?;
    }
    Ok(SectionKey::from_digest(&out.into_hasher().finalize()))
}

thread_local! {
    /// Set while the default `section_key_in` calls `section_key`: a default `section_key`
    /// reached then means the implementation overrides neither.
    static IN_DEFAULT_KEY: Cell<bool> = const { Cell::new(false) };
}

/// The default `StorageAvailability::section_key_in`: `section_key`'s answer.
pub(crate) fn default_section_key_in(
    name: &str,
    section_key: impl FnOnce() -> SectionKey,
) -> Result<SectionKey, KeyError> {
    if IN_DEFAULT_KEY.with(Cell::get) {
        return Err(KeyError::NotImplemented {
            section: name.to_owned(),
        });
    }
    IN_DEFAULT_KEY.with(|flag| flag.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(section_key));
    IN_DEFAULT_KEY.with(|flag| flag.set(false));
    let recursed = IN_DEFAULT_RECURSED.with(|flag| flag.replace(false));
    match result {
        Ok(_) if recursed => Err(KeyError::NotImplemented {
            section: name.to_owned(),
        }),
        Ok(key) => Ok(key),
        Err(payload) => Err(KeyError::Panicked {
            section: name.to_owned(),
            message: crate::validate::panic_message(&*payload),
        }),
    }
}

thread_local! {
    /// Set by a default `section_key` reached from the default `section_key_in`.
    static IN_DEFAULT_RECURSED: Cell<bool> = const { Cell::new(false) };
}

/// The default `StorageAvailability::section_key`: `section_key_in` in the default context;
/// a key no record matches when it cannot be computed.
pub(crate) fn default_section_key(
    section_key_in: impl FnOnce() -> Result<SectionKey, KeyError>,
) -> SectionKey {
    if IN_DEFAULT_KEY.with(Cell::get) {
        // Reached from the default `section_key_in`: neither method is implemented.
        IN_DEFAULT_RECURSED.with(|flag| flag.set(true));
        return SectionKey::never_matching();
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(section_key_in)) {
        Ok(Ok(key)) => key,
        Ok(Err(_)) | Err(_) => SectionKey::never_matching(),
    }
}

/// Canonical JSON of `value` as a string (for diagnostics and tests): the text that section
/// keys hash. Object keys sorted, no white space, `NaN`, `Infinity` and `-Infinity` as bare
/// words (so the text is JSON except for non-finite floats), and `?null` for a `Some` whose
/// content is `null`.
///
/// # Example
///
/// ```
/// use storage_availability::canonical_json;
///
/// let v = serde_json::json!({"b": 1, "a": [2, 3]});
/// assert_eq!(canonical_json(&v).unwrap(), r#"{"a":[2,3],"b":1}"#);
/// assert_eq!(canonical_json(&f64::NAN).unwrap(), "NaN");
/// assert_eq!(canonical_json(&Some(None::<u8>)).unwrap(), "?null");
/// ```
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    value.serialize(&mut Canonical::new(&mut out))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::ser::{self, Error as _};
    use std::collections::{BTreeMap, HashMap};

    fn spec(name: &str) -> SectionSpec<'_> {
        SectionSpec::new("app::Config", name)
    }

    fn context() -> KeyContext {
        KeyContext::new("0.1.0")
            .with_host("machine-id:abc")
            .with_working_dir("/srv/app")
    }

    fn key<T: Serialize + ?Sized>(name: &str, value: Option<&T>) -> SectionKey {
        section_key(&spec(name), &context(), value).unwrap()
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": {"y": 1, "x": [ {"d": 1, "c": 2} ]}, "a": null});
        assert_eq!(
            canonical_json(&v).unwrap(),
            r#"{"a":null,"b":{"x":[{"c":2,"d":1}],"y":1}}"#
        );
    }

    #[test]
    fn canonical_json_is_json_for_json_values() {
        #[derive(Serialize)]
        struct S {
            z: f64,
            a: Vec<Option<u8>>,
            s: &'static str,
            e: E,
            t: (i8, char),
        }
        #[derive(Serialize)]
        enum E {
            V { y: u8, x: u8 },
        }
        let s = S {
            z: 1.5,
            a: vec![None, Some(2)],
            s: "q\"\n",
            e: E::V { y: 1, x: 2 },
            t: (-1, 'c'),
        };
        let text = canonical_json(&s).unwrap();
        assert_eq!(
            text,
            r#"{"a":[null,2],"e":{"V":{"x":2,"y":1}},"s":"q\"\n","t":[-1,"c"],"z":1.5}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, serde_json::to_value(&s).unwrap());
    }

    #[test]
    fn non_finite_floats_and_nested_somes_are_distinct() {
        let texts = [
            canonical_json(&f64::NAN).unwrap(),
            canonical_json(&f64::INFINITY).unwrap(),
            canonical_json(&f64::NEG_INFINITY).unwrap(),
            canonical_json(&()).unwrap(),
            canonical_json(&Some(None::<u8>)).unwrap(),
            canonical_json(&Some(Some(None::<u8>))).unwrap(),
        ];
        assert_eq!(
            texts,
            ["NaN", "Infinity", "-Infinity", "null", "?null", "??null"]
        );
        assert_eq!(canonical_json(&f32::NAN).unwrap(), "NaN");
        assert_eq!(canonical_json(&Some(3)).unwrap(), "3");
        let keys = [
            key("x", Some(&f64::NAN)),
            key("x", Some(&f64::INFINITY)),
            key("x", Some(&f64::NEG_INFINITY)),
            key("x", Some(&())),
            key("x", None::<&()>),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn non_string_map_keys_are_json_strings() {
        let map: BTreeMap<u32, bool> = [(10, true), (9, false)].into_iter().collect();
        // Sorted by the encoded key, as strings.
        assert_eq!(canonical_json(&map).unwrap(), r#"{"10":true,"9":false}"#);
    }

    /// The documented encoding, computed independently.
    fn expected(fields: &[&[u8]], json: &[&[u8]]) -> String {
        let mut hasher = Sha256::new();
        for field in fields {
            hasher.update((field.len() as u64).to_be_bytes());
            hasher.update(field);
        }
        for text in json {
            hasher.update(text);
            hasher.update((text.len() as u64).to_be_bytes());
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn key_is_full_lowercase_sha256_of_the_documented_encoding() {
        let key = key(
            "csv",
            Some(&serde_json::json!({"b": 1, "a": f64::NAN.to_string()})),
        );
        assert_eq!(key.len(), 64);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        let host = expected(
            &[
                b"storage-availability/2",
                b"app::Config",
                b"0.1.0",
                b"host",
                b"machine-id:abc",
                b"/srv/app",
                b"csv",
                b"1",
                b"configured",
                b"no_key_with",
            ],
            &[br#"{"a":"NaN","b":1}"#],
        );
        assert_eq!(key.as_str(), host);

        let shared = section_key_with(
            &spec("kv").version(7).scope(Scope::Shared),
            &context(),
            Some(&1.5f64),
            Some(&"secret"),
        )
        .unwrap();
        let expected_shared = expected(
            &[
                b"storage-availability/2",
                b"app::Config",
                b"0.1.0",
                b"shared",
                b"kv",
                b"7",
                b"configured",
                b"key_with",
            ],
            &[b"1.5", br#""secret""#],
        );
        assert_eq!(shared.as_str(), expected_shared);

        let unconfigured =
            section_key(&spec("v").working_dir(false), &context(), None::<&u8>).unwrap();
        let expected_unconfigured = expected(
            &[
                b"storage-availability/2",
                b"app::Config",
                b"0.1.0",
                b"host",
                b"machine-id:abc",
                b"no_working_dir",
                b"v",
                b"1",
                b"unconfigured",
                b"no_key_with",
            ],
            &[],
        );
        assert_eq!(unconfigured.as_str(), expected_unconfigured);
    }

    #[test]
    fn every_input_is_in_the_key() {
        let base = key("csv", Some(&"data"));
        let other = |spec: SectionSpec<'_>, context: KeyContext| {
            section_key(&spec, &context, Some(&"data")).unwrap()
        };
        let variants = [
            other(SectionSpec::new("app::Other", "csv"), context()),
            other(spec("tsv"), context()),
            other(spec("csv").version(2), context()),
            other(spec("csv").scope(Scope::Shared), context()),
            other(spec("csv").working_dir(false), context()),
            other(spec("csv"), context().with_host("machine-id:def")),
            other(spec("csv"), context().with_working_dir("/elsewhere")),
            other(
                spec("csv"),
                KeyContext::new("0.2.0")
                    .with_host("machine-id:abc")
                    .with_working_dir("/srv/app"),
            ),
            key("csv", None::<&str>),
            key("csv", Some(&"data2")),
        ];
        for (i, v) in variants.iter().enumerate() {
            assert_ne!(*v, base, "variant {i}");
        }
        // Shared sections do not depend on the host or the directory.
        let shared = |context: KeyContext| {
            section_key(&spec("csv").scope(Scope::Shared), &context, Some(&1)).unwrap()
        };
        assert_eq!(
            shared(context()),
            shared(context().with_host("h2").with_working_dir("/x"))
        );
        // Opted out of the working directory: another directory, the same key.
        let no_cwd = |context: KeyContext| {
            section_key(&spec("csv").working_dir(false), &context, Some(&1)).unwrap()
        };
        assert_eq!(no_cwd(context()), no_cwd(context().with_working_dir("/x")));
    }

    #[test]
    fn a_context_shared_by_two_config_types_gives_each_its_own_keys() {
        let shared = context();
        let spec_a = SectionSpec::new("app::A", "csv");
        let spec_b = SectionSpec::new("app::B", "csv");
        let a = section_key(&spec_a, &shared, Some(&1)).unwrap();
        let b = section_key(&spec_b, &shared, Some(&1)).unwrap();
        assert_ne!(a, b);
        assert_eq!(b, section_key(&spec_b, &context(), Some(&1)).unwrap());
        assert_eq!(a, section_key(&spec_a, &context(), Some(&1)).unwrap());
    }

    #[test]
    fn hash_map_order_does_not_matter() {
        let mut a = HashMap::new();
        let mut b = BTreeMap::new();
        for i in 0..50 {
            a.insert(format!("k{i}"), i);
        }
        for i in (0..50).rev() {
            b.insert(format!("k{i}"), i);
        }
        assert_eq!(key("kv", Some(&a)), key("kv", Some(&b)));
    }

    #[test]
    fn failing_and_panicking_serialize_are_errors() {
        struct Fails;
        impl Serialize for Fails {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                Err(S::Error::custom("nope"))
            }
        }
        struct Panics;
        impl Serialize for Panics {
            fn serialize<S: ser::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
                panic!("boom")
            }
        }
        let error = section_key(&spec("x"), &context(), Some(&Fails)).unwrap_err();
        assert!(matches!(error, KeyError::Serialize { .. }), "{error}");
        let error = section_key(&spec("x"), &context(), Some(&Panics)).unwrap_err();
        assert_eq!(
            error,
            KeyError::Panicked {
                section: "x".into(),
                message: "boom".into()
            }
        );
    }

    #[test]
    fn unknown_host_or_directory_makes_host_sections_uncacheable() {
        let mut context = context();
        context.working_dir = None;
        context.prefixes = OnceLock::new();
        assert!(matches!(
            section_key(&spec("x"), &context, Some(&1)),
            Err(KeyError::NoWorkingDirectory { .. })
        ));
        assert!(section_key(&spec("x").working_dir(false), &context, Some(&1)).is_ok());
        context.host = None;
        context.prefixes = OnceLock::new();
        assert!(matches!(
            section_key(&spec("x").working_dir(false), &context, Some(&1)),
            Err(KeyError::NoHostIdentity { .. })
        ));
        assert!(section_key(&spec("x").scope(Scope::Shared), &context, Some(&1)).is_ok());
    }

    #[test]
    fn never_matching_keys_never_repeat() {
        assert_ne!(SectionKey::never_matching(), SectionKey::never_matching());
    }
}
