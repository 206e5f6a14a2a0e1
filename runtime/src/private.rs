//! Items the derive's generated code calls. Not public API: no semver guarantees.

pub use crate::fingerprint::{SectionKey, section_key_with_scope};
pub use crate::section::{Outcome, Scope, StorageAvailability, StorageKind, UnknownKind};
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

/// Fails to compile, at the field type's span, when a section type is not `Serialize`.
#[inline]
pub fn assert_serialize<T: ?Sized + serde::Serialize>() {}

/// The outcome reported if `validate` is called for an unconfigured (`None`) section.
pub fn unconfigured(name: &str) -> Outcome {
    Outcome::failed(format!("storage section `{name}` is not configured"))
}

/// For the bounds of a generic config's impl: `FieldType: Serialize`.
pub use serde::Serialize;
