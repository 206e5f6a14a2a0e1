//! Items the derive's generated code calls. Not public API: no semver guarantees.

pub use crate::fingerprint::{
    KeyContext, KeyError, SectionKey, SectionSpec, section_key, section_key_with,
};
pub use crate::section::{
    BlockingValidators, Outcome, Scope, StorageAvailability, StorageKind, UnknownKind,
    ValidationFuture,
};
pub use core::time::Duration;

/// Calls a user validator. The derive emits this call at the span of the user's
/// `validate = path`, so a wrong argument or return type is reported there.
#[inline]
pub fn run_validator<T: ?Sized, R: Into<Outcome>>(
    validator: impl FnOnce(&T) -> R,
    value: &T,
) -> Outcome {
    validator(value).into()
}

/// Calls a user validator marked `deref` with what the section type dereferences to: `&str`
/// for a `String`, `&Path` for a `PathBuf`, `&[E]` for a `Vec<E>`. The target is named by
/// `T::Target`, never inferred from the validator, so a generic validator stays unambiguous.
/// Emitted at the span of `validate = path`, like [`run_validator`].
#[inline]
pub fn run_validator_deref<T: ?Sized + core::ops::Deref, R: Into<Outcome>>(
    validator: impl FnOnce(&T::Target) -> R,
    value: &T,
) -> Outcome {
    validator(core::ops::Deref::deref(value)).into()
}

/// Calls a user validator of a config with `#[availability(context = X)]`:
/// `fn(&Section, &X)`. Emitted at the span of `validate = path`, like [`run_validator`], so a
/// wrong second parameter is reported there.
#[inline]
pub fn run_validator_with<T: ?Sized, X: ?Sized, R: Into<Outcome>>(
    validator: impl FnOnce(&T, &X) -> R,
    value: &T,
    context: &X,
) -> Outcome {
    validator(value, context).into()
}

/// [`run_validator_deref`] with a context: `fn(&T::Target, &X)`.
#[inline]
pub fn run_validator_deref_with<T: ?Sized + core::ops::Deref, X: ?Sized, R: Into<Outcome>>(
    validator: impl FnOnce(&T::Target, &X) -> R,
    value: &T,
    context: &X,
) -> Outcome {
    validator(core::ops::Deref::deref(value), context).into()
}

/// The outcome of the plain `validate` of a config whose validators take a context: the
/// cache calls `validate_with`.
pub fn needs_context(name: &str) -> Outcome {
    Outcome::failed(format!(
        "storage section `{name}` has a validator that takes a context; call `validate_with`"
    ))
}

/// Fails to compile, at the field type's span, when a section type is not `Serialize`.
#[inline]
pub fn assert_serialize<T: ?Sized + serde::Serialize>() {}

/// The outcome reported if `validate` is called for an unconfigured (`None`) section.
pub fn unconfigured(name: &str) -> Outcome {
    Outcome::failed(format!("storage section `{name}` is not configured"))
}

/// For the bounds of a generic config's impl: `FieldType: Serialize`; and the kind enum's
/// `Serialize` (as its section name).
pub use serde::{Serialize, Serializer};

/// Calls a user `async` validator and boxes its future. Emitted at the span of the user's
/// `validate = path`: a blocking fn marked `async` ("is not a future") or a wrong argument
/// type is reported there.
#[inline]
pub fn run_async_validator<'a, T: ?Sized, F, R>(
    validator: impl FnOnce(&'a T) -> F,
    value: &'a T,
) -> ValidationFuture<'a>
where
    F: core::future::Future<Output = R> + Send + 'a,
    R: Into<Outcome>,
{
    let future = validator(value);
    Box::pin(async move { future.await.into() })
}

/// [`run_async_validator`] for a validator marked `deref`: it takes `&T::Target`.
#[inline]
pub fn run_async_validator_deref<'a, T: ?Sized + core::ops::Deref, F, R>(
    validator: impl FnOnce(&'a T::Target) -> F,
    value: &'a T,
) -> ValidationFuture<'a>
where
    F: core::future::Future<Output = R> + Send + 'a,
    R: Into<Outcome>,
{
    let future = validator(core::ops::Deref::deref(value));
    Box::pin(async move { future.await.into() })
}

/// [`run_async_validator`] with a context: `async fn(&Section, &X)`.
#[inline]
pub fn run_async_validator_with<'a, T: ?Sized, X: ?Sized, F, R>(
    validator: impl FnOnce(&'a T, &'a X) -> F,
    value: &'a T,
    context: &'a X,
) -> ValidationFuture<'a>
where
    F: core::future::Future<Output = R> + Send + 'a,
    R: Into<Outcome>,
{
    let future = validator(value, context);
    Box::pin(async move { future.await.into() })
}

/// [`run_async_validator_deref`] with a context: `async fn(&T::Target, &X)`.
#[inline]
pub fn run_async_validator_deref_with<'a, T: ?Sized + core::ops::Deref, X: ?Sized, F, R>(
    validator: impl FnOnce(&'a T::Target, &'a X) -> F,
    value: &'a T,
    context: &'a X,
) -> ValidationFuture<'a>
where
    F: core::future::Future<Output = R> + Send + 'a,
    R: Into<Outcome>,
{
    let future = validator(core::ops::Deref::deref(value), context);
    Box::pin(async move { future.await.into() })
}

/// The outcome of the blocking `validate` for a section whose validator is `async`.
pub fn async_only(name: &str) -> Outcome {
    Outcome::failed(format!(
        "storage section `{name}` has an async validator; open the cache with `open_async`"
    ))
}

/// Calls a user `key_with` function. Emitted at the span of the user's `key_with = path`, so
/// a wrong argument type, or a result that is not `Serialize`, is reported there.
#[inline]
pub fn run_key_with<'a, T: ?Sized, W: serde::Serialize>(
    key_with: impl FnOnce(&'a T) -> W,
    value: &'a T,
) -> W {
    key_with(value)
}
