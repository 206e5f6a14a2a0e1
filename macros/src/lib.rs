//! `#[derive(StorageAvailability)]` for the storage-availability crate.
//!
//! Do not depend on this crate directly: use `storage_availability::StorageAvailability`,
//! which re-exports the derive. The generated code calls `storage_availability::__private`,
//! whose version is pinned to this crate's.
//!
//! The stages follow thiserror-impl and serde_derive: `ast` reads the struct into plain
//! structs (with the help of `attr`, which reads one attribute at a time), `check` runs the
//! rules that need several fields, and `expand` writes the code. Errors collect in a `Ctxt`;
//! on error the derive emits them with a fallback impl, and never panics.

mod ast;
mod attr;
mod check;
mod ctxt;
mod expand;
mod fallback;
mod symbol;

use proc_macro::TokenStream;
use syn::{DeriveInput, parse_macro_input};

/// Derives `storage_availability::StorageAvailability` and a `<Struct>Kind` enum of sections,
/// with inherent `ALL` and `name()` (the same as the `StorageKind` trait's).
///
/// Every field with `#[storage(validate = path, ...)]` is a section; other fields are neither
/// sections nor hashed. Keys: `validate = path` (required), `name = "..."`,
/// `timeout_ms = N`, `version = N`, `scope = "host" | "shared"`, `async`, `deref` (the
/// validator takes `&<T as Deref>::Target`: `&str` for a `String`, `&Path` for a `PathBuf`),
/// `key_with = path` (a `fn(&T) -> impl Serialize` whose result joins the section's key),
/// `max_age_secs = N`, `recheck_secs = N` (how often a running service revalidates the
/// section), `cache = false` (never reused across starts) and `cwd = false` (the
/// working directory is not in a host-scoped section's key). On the struct,
/// `#[availability(kind = "Name")]` renames the generated enum, and
/// `#[availability(context = Type)]` gives every validator a second argument, `&Type`
/// (`fn(&Section, &Type)`, `async fn(&Section, &Type)`), which the builder's
/// `.context(value)` supplies; opening without it does not compile. The context is not
/// part of the cache key. See the `storage_availability` crate docs.
#[proc_macro_derive(StorageAvailability, attributes(storage, availability))]
pub fn derive_storage_availability(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
