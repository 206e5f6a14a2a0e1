//! Attribute and key names, as constants (serde_derive internals/symbol.rs).

use std::fmt::{self, Display};
use syn::{Ident, Path};

#[derive(Copy, Clone)]
pub(crate) struct Symbol(&'static str);

/// `#[storage(...)]` on a section field.
pub(crate) const STORAGE: Symbol = Symbol("storage");
/// `#[availability(...)]` on the struct.
pub(crate) const AVAILABILITY: Symbol = Symbol("availability");

/// `#[storage(validate = path::to::function)]`
pub(crate) const VALIDATE: Symbol = Symbol("validate");
/// `#[storage(name = "key_value")]`
pub(crate) const NAME: Symbol = Symbol("name");
/// `#[storage(timeout_ms = 2000)]`
pub(crate) const TIMEOUT_MS: Symbol = Symbol("timeout_ms");
/// `#[storage(version = 2)]`
pub(crate) const VERSION: Symbol = Symbol("version");
/// `#[storage(scope = "shared")]`
pub(crate) const SCOPE: Symbol = Symbol("scope");
/// `#[storage(validate = path, async)]`
pub(crate) const ASYNC: Symbol = Symbol("async");
/// `#[storage(validate = path, deref)]`
pub(crate) const DEREF: Symbol = Symbol("deref");
/// `#[storage(key_with = path::to::function)]`
pub(crate) const KEY_WITH: Symbol = Symbol("key_with");
/// `#[storage(max_age_secs = 3600)]`
pub(crate) const MAX_AGE_SECS: Symbol = Symbol("max_age_secs");
/// `#[storage(recheck_secs = 30)]`
pub(crate) const RECHECK_SECS: Symbol = Symbol("recheck_secs");
/// `#[storage(cache = false)]`
pub(crate) const CACHE: Symbol = Symbol("cache");
/// `#[storage(cwd = false)]`
pub(crate) const CWD: Symbol = Symbol("cwd");

/// `#[storage(optional)]` or `#[storage(optional = true)]`
pub(crate) const OPTIONAL: Symbol = Symbol("optional");

/// `#[availability(kind = "StorageKind")]`
pub(crate) const KIND: Symbol = Symbol("kind");

/// `#[availability(context = AppContext)]`
pub(crate) const CONTEXT: Symbol = Symbol("context");

impl PartialEq<Symbol> for Ident {
    fn eq(&self, word: &Symbol) -> bool {
        self == word.0
    }
}

impl PartialEq<Symbol> for &Ident {
    fn eq(&self, word: &Symbol) -> bool {
        *self == word.0
    }
}

impl PartialEq<Symbol> for Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl PartialEq<Symbol> for &Path {
    fn eq(&self, word: &Symbol) -> bool {
        self.is_ident(word.0)
    }
}

impl Display for Symbol {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.0)
    }
}
