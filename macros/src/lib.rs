//! `#[derive(StorageAvailability)]` for the storage-availability crate.
//!
//! Placeholder: the derive is being written (issue 2).

use proc_macro::TokenStream;

/// Derives `storage_availability::StorageAvailability` (not yet implemented).
#[proc_macro_derive(StorageAvailability, attributes(storage, availability))]
pub fn derive_storage_availability(_input: TokenStream) -> TokenStream {
    TokenStream::new()
}
