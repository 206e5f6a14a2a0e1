//! Validator context: application state (an HTTP client, a pool, a base URL) that every
//! validator of a config receives, declared with `#[availability(context = T)]` and given
//! with [`AvailabilityCacheBuilder::context`](crate::AvailabilityCacheBuilder::context).
//!
//! The builder carries whether a context was given in its type (`NoContext`, the default,
//! or [`WithContext`]), so opening a config that needs one without it, or giving a value of
//! another type, does not compile.

use std::sync::Arc;

use crate::section::StorageAvailability;

/// The state of an [`AvailabilityCacheBuilder`](crate::AvailabilityCacheBuilder) before
/// [`.context(value)`](crate::AvailabilityCacheBuilder::context): no validator context given.
/// It can be opened only when the config declares none.
///
/// # Example
///
/// ```
/// use storage_availability::{AvailabilityCache, AvailabilityCacheBuilder, NoContext, Outcome, StorageAvailability};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config { #[storage(validate = check)] kv: u16 }
/// fn check(_: &u16) -> Outcome { Outcome::ok() }
///
/// let builder: AvailabilityCacheBuilder<Config, NoContext> =
///     AvailabilityCache::builder(Config { kv: 6379 });
/// assert!(builder.persist(false).open().unwrap().is_available(ConfigKind::Kv));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoContext;

/// The state of an [`AvailabilityCacheBuilder`](crate::AvailabilityCacheBuilder) after
/// [`.context(value)`](crate::AvailabilityCacheBuilder::context).
///
/// # Example
///
/// ```
/// use storage_availability::{AvailabilityCache, AvailabilityCacheBuilder, Outcome, StorageAvailability, WithContext};
///
/// struct Client { base: String }
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// #[availability(context = Client)]
/// struct Config { #[storage(validate = check)] search: String }
/// fn check(path: &String, client: &Client) -> Outcome {
///     if client.base.is_empty() || path.is_empty() { Outcome::failed("no URL") } else { Outcome::ok() }
/// }
///
/// let builder: AvailabilityCacheBuilder<Config, WithContext<Client>> =
///     AvailabilityCache::builder(Config { search: "/health".into() })
///         .context(Client { base: "http://127.0.0.1:9200".into() });
/// assert!(builder.persist(false).open().unwrap().is_available(ConfigKind::Search));
/// ```
#[derive(Debug, Clone)]
pub struct WithContext<T>(Arc<T>);

impl<T> WithContext<T> {
    pub(crate) fn new(context: Arc<T>) -> Self {
        WithContext(context)
    }
}

/// A validator context a config can be opened without: `()`, what the derive declares for a
/// config without `#[availability(context = T)]`.
///
/// # Example
///
/// ```
/// use storage_availability::{ContextFree, StorageAvailability};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config { #[storage(validate = check)] kv: u16 }
/// fn check(_: &u16) -> Result<(), String> { Ok(()) }
///
/// fn opens_without_context<C: StorageAvailability>() where C::Context: ContextFree {}
/// opens_without_context::<Config>();
/// ```
#[diagnostic::on_unimplemented(
    message = "this config's validators take a context of type `{Self}`, and none was given",
    label = "the config needs a validator context",
    note = "give it with the builder: `AvailabilityCache::builder(config).context(value).open()` \
            (or `.open_async()`); `AvailabilityCache::open(config, path)` is for configs \
            without `#[availability(context = ...)]`"
)]
pub trait ContextFree: Send + Sync + 'static {
    /// The context of a config that needs none.
    #[doc(hidden)]
    fn unit() -> Self;
}

impl ContextFree for () {
    fn unit() -> Self {}
}

/// What the builder's state gives the cache: the context, or `()` for a config without one.
/// Implemented by [`NoContext`] (for configs whose context is [`ContextFree`]) and by
/// [`WithContext`] holding the config's context.
///
/// # Example
///
/// ```
/// use storage_availability::{ContextState, NoContext, StorageAvailability};
///
/// #[derive(serde::Serialize, StorageAvailability)]
/// struct Config { #[storage(validate = check)] kv: u16 }
/// fn check(_: &u16) -> Result<(), String> { Ok(()) }
///
/// fn can_open<C: StorageAvailability, X: ContextState<C>>() {}
/// can_open::<Config, NoContext>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{C}`'s validators take a context, and none was given",
    label = "needs `.context(value)` first",
    note = "give the context with the builder: `AvailabilityCache::builder(config).context(value).open()`"
)]
pub trait ContextState<C: StorageAvailability> {
    /// The context the cache keeps.
    #[doc(hidden)]
    fn resolve(self) -> Arc<C::Context>;
}

impl<C: StorageAvailability> ContextState<C> for NoContext
where
    C::Context: ContextFree,
{
    fn resolve(self) -> Arc<C::Context> {
        Arc::new(C::Context::unit())
    }
}

impl<C, T> ContextState<C> for WithContext<T>
where
    C: StorageAvailability<Context = T>,
    T: Send + Sync + 'static,
{
    fn resolve(self) -> Arc<T> {
        self.0
    }
}
