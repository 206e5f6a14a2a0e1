//! The traits the derive implements, and the values a validation produces.

use std::fmt;
use std::hash::Hash;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use crate::fingerprint::{self, KeyContext, KeyError, SectionKey};

/// The typed list of a config's sections: the `<Struct>Kind` enum the derive generates.
///
/// # Example
///
/// ```
/// use storage_availability::{Outcome, StorageAvailability, StorageKind};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config {
///     #[storage(validate = check, name = "key_value")]
///     kv: String,
/// }
/// fn check(_: &String) -> Outcome { Outcome::ok() }
///
/// assert_eq!(ConfigKind::ALL, &[ConfigKind::Kv]);
/// assert_eq!(ConfigKind::Kv.name(), "key_value");
/// assert_eq!(ConfigKind::from_name("key_value"), Some(ConfigKind::Kv));
/// assert_eq!("key_value".parse::<ConfigKind>().ok(), Some(ConfigKind::Kv));
/// ```
pub trait StorageKind:
    Copy
    + Eq
    + Hash
    + Ord
    + fmt::Debug
    + fmt::Display
    + FromStr<Err = UnknownKind>
    + Send
    + Sync
    + 'static
{
    /// Every section, in declaration order. `ALL[k.index()] == k`.
    const ALL: &'static [Self];

    /// The section's name as stored in the cache file (`[a-z][a-z0-9_]*`).
    fn name(self) -> &'static str;

    /// The section called `name`, if there is one.
    fn from_name(name: &str) -> Option<Self>;

    /// The section's position in [`StorageKind::ALL`].
    fn index(self) -> usize;
}

/// The error of [`FromStr`] on a generated kind enum: the name matched no section.
///
/// ```
/// use storage_availability::{Outcome, StorageAvailability};
/// # #[derive(serde::Serialize, StorageAvailability)]
/// # struct Config { #[storage(validate = check)] csv: u8, #[storage(validate = check)] kv: u8 }
/// # fn check(_: &u8) -> Outcome { Outcome::ok() }
/// let error = "vector".parse::<ConfigKind>().unwrap_err();
/// assert_eq!(error.name(), "vector");
/// assert_eq!(error.to_string(), "unknown storage section `vector`; expected one of `csv`, `kv`");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind {
    name: String,
    expected: &'static [&'static str],
}

impl UnknownKind {
    /// An error for `name`, listing the names that would have been accepted.
    ///
    /// ```
    /// use storage_availability::UnknownKind;
    /// let error = UnknownKind::new("vector", &["csv", "kv"]);
    /// assert_eq!(error.name(), "vector");
    /// ```
    pub fn new(name: &str, expected: &'static [&'static str]) -> Self {
        UnknownKind {
            name: name.to_owned(),
            expected,
        }
    }

    /// The name that matched no section.
    ///
    /// ```
    /// use storage_availability::UnknownKind;
    /// assert_eq!(UnknownKind::new("vector", &["csv"]).name(), "vector");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown storage section `{}`; expected one of ",
            self.name
        )?;
        for (i, name) in self.expected.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "`{name}`")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownKind {}

/// Where a section's answer may be shared from (see README.md, "Running a fleet").
///
/// ```
/// use storage_availability::{Outcome, Scope, StorageAvailability};
/// # #[derive(serde::Serialize, StorageAvailability)]
/// # struct Config {
/// #     #[storage(validate = check)] csv: u8,
/// #     #[storage(validate = check, scope = "shared")] search: u8,
/// # }
/// # fn check(_: &u8) -> Outcome { Outcome::ok() }
/// assert_eq!(Config::scope(ConfigKind::Csv), Scope::Host);
/// assert_eq!(Config::scope(ConfigKind::Search), Scope::Shared);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum Scope {
    /// The answer depends on this machine (a local directory): never shared.
    #[default]
    Host,
    /// The answer is the same from every host (a remote service's configuration).
    Shared,
}

impl Scope {
    /// `"host"` or `"shared"`.
    ///
    /// ```
    /// use storage_availability::Scope;
    /// assert_eq!(Scope::Shared.as_str(), "shared");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Host => "host",
            Scope::Shared => "shared",
        }
    }
}

/// A config whose sections can be validated and cached: implemented by
/// `#[derive(StorageAvailability)]`.
///
/// A hand-written implementation is possible (the benchmarks use one for 10,000 sections): it
/// implements [`section_key_in`](Self::section_key_in) with
/// [`section_key`](crate::section_key) or [`section_key_with`](crate::section_key_with),
/// which compute keys the way the derive does, and [`config_type`](Self::config_type).
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use storage_availability::{KeyContext, Outcome, StorageAvailability};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config {
///     #[storage(validate = check_dir, timeout_ms = 500)]
///     csv: std::path::PathBuf,
///     #[storage(validate = check_url, version = 2, max_age_secs = 600, cwd = false)]
///     vector: Option<String>,
///     #[storage(validate = check_url, cache = false, cwd = false)]
///     health: String,
///     app_name: String, // not a section
/// }
/// fn check_dir(p: &std::path::PathBuf) -> Result<(), String> {
///     if p.as_os_str().is_empty() { Err("empty path".into()) } else { Ok(()) }
/// }
/// fn check_url(_: &String) -> Outcome { Outcome::ok() }
///
/// let cfg = Config {
///     csv: "data".into(),
///     vector: None,
///     health: "http://localhost/health".into(),
///     app_name: "demo".into(),
/// };
/// assert!(cfg.validate(ConfigKind::Csv).is_ok());
/// assert!(!cfg.is_configured(ConfigKind::Vector));
/// assert_eq!(Config::timeout(ConfigKind::Csv), Some(Duration::from_millis(500)));
/// assert_eq!(Config::version(ConfigKind::Vector), 2);
/// assert_eq!(Config::max_age(ConfigKind::Vector), Some(Duration::from_secs(600)));
/// assert!(!Config::reused_across_starts(ConfigKind::Health));
/// assert_eq!(Config::config_type(), concat!(module_path!(), "::Config"));
/// assert_eq!(cfg.section_key(ConfigKind::Csv).len(), 64);
/// // The key in another context: here, another application version.
/// let other = cfg.section_key_in(ConfigKind::Csv, &KeyContext::new("2.0.0")).unwrap();
/// assert_ne!(other, cfg.section_key(ConfigKind::Csv));
/// ```
pub trait StorageAvailability: Send + Sync + 'static {
    /// The generated enum of sections.
    type Kind: StorageKind;

    /// What every validator receives besides its section: `#[availability(context = T)]`,
    /// given with [`.context(value)`](crate::AvailabilityCacheBuilder::context). `()` when
    /// the validators take none (the derive's default; a hand-written implementation writes
    /// `type Context = ();`). The context is not part of any section key: what the answer
    /// depends on belongs in the section or in `key_with`.
    type Context: Send + Sync + 'static;

    /// The config type's identity, part of every key and recorded in the cache file
    /// (`metadata.config_type`): the derive gives `module_path!()::StructName`. The default,
    /// for hand-written implementations, is [`std::any::type_name`], which may change
    /// between compilers: override it with a fixed string.
    fn config_type() -> &'static str {
        std::any::type_name::<Self>()
    }

    /// The cache key of one section in the default context: this process's host and working
    /// directory, and [`app_version`](Self::app_version). See
    /// [`section_key_in`](Self::section_key_in) for what it covers. Never panics: a key that
    /// cannot be computed is one that no record matches.
    fn section_key(&self, kind: Self::Kind) -> SectionKey {
        fingerprint::default_section_key(|| {
            self.section_key_in(kind, &KeyContext::new(Self::app_version()))
        })
    }

    /// The cache key of one section in `context` (the cache's application version, host and
    /// working directory): SHA-256 over the key format, the config type, the section's name,
    /// version and scope, whether it is configured, the application version, for host-scoped
    /// sections the host identity and working directory, the canonical JSON of its value and
    /// what its `key_with` function returns (README.md, "What is cached, and when it is
    /// revalidated").
    ///
    /// `Err` when it cannot be computed: the section is then uncacheable (validated at every
    /// open, never reused). The default, for hand-written implementations that only
    /// implement [`section_key`](Self::section_key), returns that key; implement at least
    /// one of the two.
    fn section_key_in(
        &self,
        kind: Self::Kind,
        context: &KeyContext,
    ) -> Result<SectionKey, KeyError> {
        let _ = context;
        fingerprint::default_section_key_in(kind.name(), || self.section_key(kind))
    }

    /// Runs the section's validator. An unconfigured section (`None`) is not validated: the
    /// result is a failed outcome that says so, and the cache never calls this for it.
    fn validate(&self, kind: Self::Kind) -> Outcome;

    /// Runs the section's validator with the config's context. The default, for configs
    /// whose validators take no context, calls [`validate`](Self::validate); the derive
    /// implements it for `#[availability(context = T)]`. The cache always calls this one.
    ///
    /// ```
    /// use storage_availability::{Outcome, StorageAvailability};
    ///
    /// struct Limits { max_len: usize }
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// #[availability(context = Limits)]
    /// struct Config {
    ///     #[storage(validate = check, deref)]
    ///     kv: String,
    /// #   #[storage(validate = ping, async, deref)]
    /// #   search: String,
    /// }
    /// fn check(addr: &str, limits: &Limits) -> Outcome {
    ///     if addr.len() > limits.max_len { Outcome::failed("too long") } else { Outcome::ok() }
    /// }
    /// # async fn ping(_: &str, _: &Limits) -> Outcome { Outcome::ok() }
    /// let config = Config { kv: "127.0.0.1:6379".into(), search: "s".into() };
    /// assert!(config.validate_with(ConfigKind::Kv, &Limits { max_len: 64 }).is_ok());
    /// assert!(!config.validate_with(ConfigKind::Kv, &Limits { max_len: 4 }).is_ok());
    /// // The plain `validate` has no context to give: it says so.
    /// assert!(!config.validate(ConfigKind::Kv).is_ok());
    /// ```
    fn validate_with(&self, kind: Self::Kind, context: &Self::Context) -> Outcome {
        let _ = context;
        self.validate(kind)
    }

    /// [`validate_async`](Self::validate_async) with the config's context, like
    /// [`validate_with`](Self::validate_with).
    ///
    /// ```
    /// use storage_availability::{Outcome, StorageAvailability};
    ///
    /// struct Limits { max_len: usize }
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// #[availability(context = Limits)]
    /// struct Config {
    ///     #[storage(validate = check, deref)]
    ///     kv: String,
    /// #   #[storage(validate = ping, async, deref)]
    /// #   search: String,
    /// }
    /// fn check(addr: &str, limits: &Limits) -> Outcome {
    ///     if addr.len() > limits.max_len { Outcome::failed("too long") } else { Outcome::ok() }
    /// }
    /// # async fn ping(_: &str, _: &Limits) -> Outcome { Outcome::ok() }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let config = Config { kv: "127.0.0.1:6379".into(), search: "s".into() };
    /// let limits = Limits { max_len: 64 };
    /// let future = config.validate_async_with(ConfigKind::Search, &limits).unwrap();
    /// assert!(future.await.is_ok());
    /// // Blocking sections have no future: the cache runs them with `validate_with`.
    /// assert!(config.validate_async_with(ConfigKind::Kv, &limits).is_none());
    /// # }
    /// ```
    fn validate_async_with<'a>(
        &'a self,
        kind: Self::Kind,
        context: &'a Self::Context,
    ) -> Option<ValidationFuture<'a>> {
        let _ = context;
        self.validate_async(kind)
    }

    /// `false` for an `Option` section that is `None`: disabled, its validator never runs.
    fn is_configured(&self, kind: Self::Kind) -> bool;

    /// The section's own timeout (`timeout_ms`), if it has one.
    fn timeout(kind: Self::Kind) -> Option<Duration>;

    /// The section's version (`version = N`, default 1): bump it to revalidate after a
    /// validator changes.
    fn version(kind: Self::Kind) -> u32;

    /// Where the section's answer may be shared from. Default: [`Scope::Host`].
    fn scope(kind: Self::Kind) -> Scope {
        let _ = kind;
        Scope::Host
    }

    /// The application's version (the user crate's `CARGO_PKG_VERSION`), part of every key
    /// unless the builder's
    /// [`app_version`](crate::AvailabilityCacheBuilder::app_version) sets another.
    fn app_version() -> &'static str;

    /// The section's own `max_age_secs`: how long its positive result is reused; `None`
    /// (the default) for the builder's `max_age`.
    fn max_age(kind: Self::Kind) -> Option<Duration> {
        let _ = kind;
        None
    }

    /// The section's own `recheck_secs`: how often a running service revalidates it
    /// ([`refresh_if_stale`](crate::AvailabilityCache::refresh_if_stale) and the
    /// [refresher](crate::AvailabilityCache::spawn_refresher)); `None` (the default) for the
    /// builder's [`recheck_every`](crate::AvailabilityCacheBuilder::recheck_every).
    ///
    /// ```
    /// use std::time::Duration;
    /// use storage_availability::{Outcome, StorageAvailability};
    ///
    /// #[derive(serde::Serialize, StorageAvailability)]
    /// struct Config {
    ///     #[storage(validate = check, recheck_secs = 5)]
    ///     kv: String,
    ///     #[storage(validate = check)]
    ///     csv: String,
    /// }
    /// fn check(_: &String) -> Outcome { Outcome::ok() }
    ///
    /// assert_eq!(Config::recheck_every(ConfigKind::Kv), Some(Duration::from_secs(5)));
    /// assert_eq!(Config::recheck_every(ConfigKind::Csv), None);
    /// ```
    fn recheck_every(kind: Self::Kind) -> Option<Duration> {
        let _ = kind;
        None
    }

    /// `false` for `#[storage(cache = false)]`: the section's result is never reused from
    /// the cache file (it is validated at every open); a refresh in the same process may
    /// reuse it like any other. Default: `true`.
    fn reused_across_starts(kind: Self::Kind) -> bool {
        let _ = kind;
        true
    }

    /// The validation of a section whose validator is `async`
    /// (`#[storage(validate = path, async)]`); `None` for blocking validators and
    /// unconfigured sections. Run by `open_async` (feature `tokio`).
    fn validate_async(&self, kind: Self::Kind) -> Option<ValidationFuture<'_>> {
        let _ = kind;
        None
    }

    /// `true` when the section's validator is `async`.
    fn is_async(kind: Self::Kind) -> bool {
        let _ = kind;
        false
    }

    /// `true` for `#[storage(optional)]`: the service works, degraded, without the section,
    /// so its failure makes [`AvailabilityCache::health`](crate::AvailabilityCache::health)
    /// `warn` rather than `fail`. Default: `false`.
    fn is_optional(kind: Self::Kind) -> bool {
        let _ = kind;
        false
    }
}

/// The boxed future of an `async` validator.
///
/// ```
/// use storage_availability::{Outcome, ValidationFuture};
/// let future: ValidationFuture<'static> = Box::pin(async { Outcome::ok() });
/// # drop(future);
/// ```
pub type ValidationFuture<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'a>>;

/// A config whose validators are all blocking, so the blocking
/// [`AvailabilityCache::open`](crate::AvailabilityCache::open) and
/// [`refresh`](crate::AvailabilityCache::refresh) can run them. The derive implements it
/// when no section is `#[storage(..., async)]`; a hand-written implementation of
/// [`StorageAvailability`] without async validators implements it with an empty `impl`.
///
/// ```
/// use storage_availability::{AvailabilityCache, BlockingValidators, Outcome, StorageAvailability};
/// # #[derive(serde::Serialize, StorageAvailability)]
/// # struct Config { #[storage(validate = check)] kv: u8 }
/// # fn check(_: &u8) -> Outcome { Outcome::ok() }
/// // Generic code that opens any blocking config without a validator context:
/// fn open_in_memory<C: BlockingValidators<Context = ()>>(config: C) -> AvailabilityCache<C> {
///     AvailabilityCache::builder(config).persist(false).open().unwrap()
/// }
/// assert!(open_in_memory(Config { kv: 1 }).is_available(ConfigKind::Kv));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` has async validators, so it cannot be opened with the blocking API",
    label = "this config has a `#[storage(validate = ..., async)]` section",
    note = "use `AvailabilityCache::open_async` or `builder(..).open_async()` (feature `tokio`)"
)]
pub trait BlockingValidators: StorageAvailability {}

/// What a validator found: passed or failed, with error and warning messages.
///
/// Validators may return `Outcome` or anything that converts into it, such as
/// `Result<(), E>` with `E: Display`. The error is recorded with `{:#}`, so an
/// `anyhow::Error` keeps its chain of causes ("cannot open data: permission denied").
///
/// # Example
///
/// ```
/// use storage_availability::Outcome;
///
/// let ok = Outcome::ok().with_warning("directory is almost full");
/// assert!(ok.is_ok());
/// assert_eq!(ok.warnings(), ["directory is almost full"]);
///
/// let failed: Outcome = Err::<(), _>("permission denied").into();
/// assert!(!failed.is_ok());
/// assert_eq!(failed.last_error(), Some("permission denied"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[must_use]
pub struct Outcome {
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Outcome {
    /// The section passed.
    ///
    /// ```
    /// assert!(storage_availability::Outcome::ok().is_ok());
    /// ```
    pub fn ok() -> Self {
        Outcome::default()
    }

    /// The section failed with `error`.
    ///
    /// ```
    /// let outcome = storage_availability::Outcome::failed("connection refused");
    /// assert_eq!(outcome.last_error(), Some("connection refused"));
    /// ```
    #[doc(alias = "error")]
    #[doc(alias = "fail")]
    pub fn failed(error: impl Into<String>) -> Self {
        Outcome {
            errors: vec![error.into()],
            warnings: Vec::new(),
        }
    }

    /// Adds an error: the outcome is then a failure.
    ///
    /// ```
    /// let outcome = storage_availability::Outcome::ok().with_error("disk full");
    /// assert!(!outcome.is_ok());
    /// ```
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.errors.push(error.into());
        self
    }

    /// Adds a warning: it does not make the outcome fail.
    ///
    /// ```
    /// let outcome = storage_availability::Outcome::ok().with_warning("90% full");
    /// assert!(outcome.is_ok());
    /// assert_eq!(outcome.warnings(), ["90% full"]);
    /// ```
    pub fn with_warning(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    /// `true` when there is no error.
    ///
    /// ```
    /// use storage_availability::Outcome;
    /// assert!(Outcome::ok().is_ok() && !Outcome::failed("no").is_ok());
    /// ```
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Every error, oldest first.
    ///
    /// ```
    /// let outcome = storage_availability::Outcome::failed("a").with_error("b");
    /// assert_eq!(outcome.errors(), ["a", "b"]);
    /// ```
    pub fn errors(&self) -> &[String] {
        &self.errors
    }

    /// The last error, which [`Availability::last_error`] reports.
    ///
    /// ```
    /// let outcome = storage_availability::Outcome::failed("a").with_error("b");
    /// assert_eq!(outcome.last_error(), Some("b"));
    /// ```
    pub fn last_error(&self) -> Option<&str> {
        self.errors.last().map(String::as_str)
    }

    /// Every warning.
    ///
    /// ```
    /// let outcome = storage_availability::Outcome::ok().with_warning("slow");
    /// assert_eq!(outcome.warnings(), ["slow"]);
    /// ```
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Splits the outcome into its errors and warnings.
    ///
    /// ```
    /// let (errors, warnings) = storage_availability::Outcome::failed("a").with_warning("w").into_parts();
    /// assert_eq!((errors, warnings), (vec!["a".to_owned()], vec!["w".to_owned()]));
    /// ```
    pub fn into_parts(self) -> (Vec<String>, Vec<String>) {
        (self.errors, self.warnings)
    }
}

impl<E: fmt::Display> From<Result<(), E>> for Outcome {
    fn from(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Outcome::ok(),
            // `{:#}`: anyhow and others show their whole chain of causes with it.
            Err(e) => Outcome::failed(format!("{e:#}")),
        }
    }
}

/// Where a section's current answer came from. Serialized as [`Source::as_str`].
///
/// ```
/// use storage_availability::{AvailabilityCache, Outcome, Source, StorageAvailability};
/// # #[derive(serde::Serialize, StorageAvailability)]
/// # struct Config { #[storage(validate = check)] csv: u8, #[storage(validate = check)] kv: Option<u8> }
/// # fn check(_: &u8) -> Outcome { Outcome::ok() }
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("storage.yaml");
/// let cold = AvailabilityCache::open(Config { csv: 1, kv: None }, &path).unwrap();
/// assert_eq!(cold.status(ConfigKind::Csv).source, Source::Validated);
/// assert_eq!(cold.status(ConfigKind::Kv).source, Source::Unconfigured);
/// let warm = AvailabilityCache::open(Config { csv: 1, kv: None }, &path).unwrap();
/// assert_eq!(warm.status(ConfigKind::Csv).source, Source::Cache);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Source {
    /// Read from the cache file: the config is unchanged and the record fresh.
    Cache,
    /// Validated by this process.
    Validated,
    /// Not configured (`None`): disabled, no validator called.
    Unconfigured,
    /// Read from a store shared by a fleet of hosts.
    Shared,
    /// No answer yet: the results were cleared and no refresh has run since.
    Pending,
    /// Read from the cache file although its `max_age` is over, within the builder's
    /// [`stale_while_revalidate`](crate::AvailabilityCacheBuilder::stale_while_revalidate)
    /// window: a passed result that a start answered with at once, and that the start
    /// revalidates in the background, once (then [`Source::Validated`]). Never a
    /// failed result. The health report treats it like [`Source::Cache`].
    Stale,
}

impl Source {
    /// A short lowercase name: `cache`, `validated`, `unconfigured`, `shared`, `pending`.
    ///
    /// ```
    /// use storage_availability::Source;
    /// assert_eq!(Source::Cache.as_str(), "cache");
    /// assert_eq!(serde_json::to_string(&Source::Validated).unwrap(), r#""validated""#);
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Cache => "cache",
            Source::Validated => "validated",
            Source::Unconfigured => "unconfigured",
            Source::Shared => "shared",
            Source::Pending => "pending",
            Source::Stale => "stale",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The availability of one section, as the cache answers it.
///
/// # Example
///
/// ```no_run
/// # use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
/// # #[derive(serde::Serialize, StorageAvailability)]
/// # struct Config { #[storage(validate = check)] csv: String }
/// # fn check(_: &String) -> Outcome { Outcome::ok() }
/// # let cache = AvailabilityCache::open(Config { csv: "x".into() }, "storage.yaml").unwrap();
/// let csv = cache.status(ConfigKind::Csv);
/// if !csv.is_available() {
///     eprintln!("csv storage unavailable: {:?}", csv.last_error);
/// }
/// ```
///
/// Serialized (`Serialize`) with `duration` as `duration_ms`, a number of milliseconds, and
/// `checked_at` as an RFC 3339 UTC string (`null` for a time before 1970):
/// `{"enabled":true,"validation_passed":true,"last_error":null,"errors":[],"warnings":[],
/// "checked_at":"2026-11-25T10:00:00.000000Z","duration_ms":12.5,"source":"validated"}`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Availability {
    /// Configured and validated successfully: the storage may be used.
    pub enabled: bool,
    /// The validator passed.
    pub validation_passed: bool,
    /// The last error of the validation, if it failed.
    pub last_error: Option<String>,
    /// Every error of the validation.
    pub errors: Vec<String>,
    /// Warnings of the validation (they do not make it fail).
    pub warnings: Vec<String>,
    /// When the validation ran.
    #[serde(serialize_with = "crate::health::serialize_time")]
    pub checked_at: SystemTime,
    /// How long the validation took.
    #[serde(rename = "duration_ms", serialize_with = "crate::health::serialize_ms")]
    pub duration: Duration,
    /// Where this answer came from.
    pub source: Source,
}

impl Availability {
    /// `enabled && validation_passed`.
    ///
    /// ```
    /// use storage_availability::{AvailabilityCache, Outcome, StorageAvailability};
    /// # #[derive(serde::Serialize, StorageAvailability)]
    /// # struct Config { #[storage(validate = check)] kv: u8 }
    /// # fn check(v: &u8) -> Outcome { if *v == 0 { Outcome::failed("zero") } else { Outcome::ok() } }
    /// let cache = AvailabilityCache::builder(Config { kv: 0 }).persist(false).open().unwrap();
    /// let status = cache.status(ConfigKind::Kv);
    /// assert!(status.enabled || !status.is_available());
    /// assert!(!status.is_available());
    /// ```
    pub fn is_available(&self) -> bool {
        self.enabled && self.validation_passed
    }
}
