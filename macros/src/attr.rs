//! Reads `#[storage(...)]` on fields and `#[availability(...)]` on the struct, one attribute
//! at a time (serde_derive internals/attr.rs). Checks that need a single value only, such as
//! `timeout_ms = 0` or a bad section name, are made here; checks across fields are in
//! `check.rs`.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Ident, Lit, LitStr, Path};

use crate::ctxt::Ctxt;
use crate::symbol::{
    ASYNC, AVAILABILITY, CACHE, CONTEXT, CWD, DEREF, KEY_WITH, KIND, MAX_AGE_SECS, NAME, OPTIONAL,
    RECHECK_SECS, SCOPE, STORAGE, Symbol, TIMEOUT_MS, VALIDATE, VERSION,
};

/// A value with the span of the token it came from, so a later check can point at it
/// (clap_derive utils/spanned.rs).
#[derive(Clone)]
pub(crate) struct Sp<T> {
    pub(crate) value: T,
    pub(crate) span: Span,
}

impl<T> Sp<T> {
    pub(crate) fn new(value: T, span: Span) -> Self {
        Sp { value, span }
    }
}

impl From<&LitStr> for Sp<String> {
    fn from(lit: &LitStr) -> Self {
        Sp::new(lit.value(), lit.span())
    }
}

/// One setting: a second `set` reports "duplicate ... attribute" on the second key and keeps
/// the first value (serde_derive `Attr`).
struct Attr<'c, T> {
    cx: &'c Ctxt,
    attr: Symbol,
    name: Symbol,
    value: Option<T>,
}

impl<'c, T> Attr<'c, T> {
    fn none(cx: &'c Ctxt, attr: Symbol, name: Symbol) -> Self {
        Attr {
            cx,
            attr,
            name,
            value: None,
        }
    }

    fn set<A: ToTokens>(&mut self, obj: A, value: T) {
        if self.value.is_some() {
            self.cx.error_spanned_by(
                obj,
                format!("duplicate {} attribute `{}`", self.attr, self.name),
            );
        } else {
            self.value = Some(value);
        }
    }

    fn get(self) -> Option<T> {
        self.value
    }
}

/// The section names the cache file accepts: `[a-z][a-z0-9_]*`.
pub(crate) fn is_valid_section_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
}

/// `#[storage(scope = "...")]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Host,
    Shared,
}

/// `#[availability(...)]` on the struct.
pub(crate) struct Container {
    /// `kind = "StorageKind"`: the name of the generated enum.
    pub(crate) kind: Option<Ident>,
    /// `context = Type`: what every validator receives besides its section.
    pub(crate) context: Option<syn::Type>,
}

impl Container {
    pub(crate) fn from_ast(cx: &Ctxt, input: &syn::DeriveInput) -> Self {
        let mut kind = Attr::none(cx, AVAILABILITY, KIND);
        let mut context = Attr::none(cx, AVAILABILITY, CONTEXT);

        for attr in &input.attrs {
            if attr.path() == STORAGE {
                cx.error_spanned_by(
                    attr,
                    "#[storage(...)] belongs on a section field, not on the struct: \
                     `#[storage(validate = path)] csv: CsvConfig`",
                );
                continue;
            }
            if attr.path() != AVAILABILITY {
                continue;
            }
            if let Err(err) = attr.parse_nested_meta(|meta| {
                if meta.path == KIND {
                    // #[availability(kind = "StorageKind")]
                    let lit = get_lit_str(&meta, KIND, "kind = \"StorageKind\"")?;
                    match lit.parse::<Ident>() {
                        Ok(ident) => kind.set(&meta.path, ident),
                        Err(_) => cx.error_spanned_by(
                            &lit,
                            format!(
                                "`{}` is not a type name; expected an identifier: \
                                 `kind = \"StorageKind\"`",
                                lit.value()
                            ),
                        ),
                    }
                    Ok(())
                } else if meta.path == CONTEXT {
                    // #[availability(context = AppContext)]
                    let ty: syn::Type = meta.value()?.parse().map_err(|err| {
                        syn::Error::new(
                            err.span(),
                            "expected a type: `#[availability(context = AppContext)]`",
                        )
                    })?;
                    context.set(&meta.path, ty);
                    Ok(())
                } else {
                    Err(meta.error(
                        "unknown availability attribute; expected `kind` or `context`: \
                         #[availability(kind = \"StorageKind\", context = AppContext)]",
                    ))
                }
            }) {
                cx.syn_error(err);
            }
        }

        Container {
            kind: kind.get(),
            context: context.get(),
        }
    }
}

/// `#[storage(...)]` on a field. `present` is false for fields that are not sections.
pub(crate) struct Field {
    /// The field carries at least one `#[storage]` attribute: it is a section.
    pub(crate) present: bool,
    /// The attributes parsed without an error (later checks that would only repeat an
    /// error are then skipped).
    pub(crate) clean: bool,
    /// The span of the first `#[storage]` attribute, for errors about the whole attribute.
    pub(crate) attr_tokens: TokenStream,
    pub(crate) validate: Option<Path>,
    pub(crate) name: Option<Sp<String>>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) version: Option<u32>,
    /// `scope = "..."`, with the span of its literal.
    pub(crate) scope: Option<Sp<Scope>>,
    /// `async`: the validator is an `async fn`.
    pub(crate) is_async: bool,
    /// `deref`: the validator takes `&<T as Deref>::Target` (`&str` for a `String`), with the
    /// span of the flag.
    pub(crate) deref: Option<Span>,
    /// `key_with = path`: a function whose result is part of the section's key.
    pub(crate) key_with: Option<Path>,
    /// `max_age_secs = N` (at least 1), with the span of the key.
    pub(crate) max_age_secs: Option<Sp<u64>>,
    /// `recheck_secs = N` (at least 1): how often a running service revalidates it.
    pub(crate) recheck_secs: Option<u64>,
    /// `cache = true | false`, with the span of the key.
    pub(crate) cache: Option<Sp<bool>>,
    /// `cwd = true | false`, with the span of the key.
    pub(crate) cwd: Option<Sp<bool>>,
    /// `optional` or `optional = true | false`: a failure makes the health report `warn`.
    pub(crate) optional: Option<bool>,
}

impl Field {
    pub(crate) fn from_ast(cx: &Ctxt, field: &syn::Field) -> Self {
        let mut validate = Attr::none(cx, STORAGE, VALIDATE);
        let mut name = Attr::none(cx, STORAGE, NAME);
        let mut timeout_ms = Attr::none(cx, STORAGE, TIMEOUT_MS);
        let mut version = Attr::none(cx, STORAGE, VERSION);
        let mut scope = Attr::none(cx, STORAGE, SCOPE);
        let mut is_async = Attr::none(cx, STORAGE, ASYNC);
        let mut deref = Attr::none(cx, STORAGE, DEREF);
        let mut key_with = Attr::none(cx, STORAGE, KEY_WITH);
        let mut max_age_secs = Attr::none(cx, STORAGE, MAX_AGE_SECS);
        let mut recheck_secs = Attr::none(cx, STORAGE, RECHECK_SECS);
        let mut cache = Attr::none(cx, STORAGE, CACHE);
        let mut cwd = Attr::none(cx, STORAGE, CWD);
        let mut optional = Attr::none(cx, STORAGE, OPTIONAL);
        let mut present = false;
        let mut attr_tokens = TokenStream::new();
        let errors_before = cx.error_count();
        let mut clean = true;

        for attr in &field.attrs {
            if attr.path() == AVAILABILITY {
                cx.error_spanned_by(
                    attr,
                    "#[availability(...)] belongs on the struct, not on a field; \
                     a section field takes #[storage(validate = path, ...)]",
                );
                clean = false;
                continue;
            }
            if attr.path() != STORAGE {
                continue;
            }
            if !present {
                attr_tokens = attr.to_token_stream();
            }
            present = true;
            if let Err(err) = attr.parse_nested_meta(|meta| {
                if meta.path == VALIDATE {
                    // #[storage(validate = path::to::function)]
                    let path: Path = meta.value()?.parse().map_err(|err| {
                        syn::Error::new(
                            err.span(),
                            "expected a path to a validator function: `validate = check_csv`",
                        )
                    })?;
                    validate.set(&meta.path, path);
                } else if meta.path == NAME {
                    // #[storage(name = "key_value")]
                    let lit = get_lit_str(&meta, NAME, "name = \"key_value\"")?;
                    let value = lit.value();
                    if is_valid_section_name(&value) {
                        name.set(&meta.path, Sp::from(&lit));
                    } else {
                        cx.error_spanned_by(
                            &lit,
                            format!(
                                "invalid section name `{value}`: a section name must match \
                                 `[a-z][a-z0-9_]*`, e.g. `name = \"key_value\"`"
                            ),
                        );
                    }
                } else if meta.path == TIMEOUT_MS {
                    // #[storage(timeout_ms = 2000)]
                    let lit = get_lit_int(&meta, TIMEOUT_MS, "timeout_ms = 2000")?;
                    match lit.base10_parse::<u64>() {
                        Ok(0) => cx.error_spanned_by(
                            &lit,
                            "timeout_ms must be at least 1 (milliseconds): `timeout_ms = 2000`; \
                             leave it out to use the cache's validation_timeout",
                        ),
                        Ok(ms) => timeout_ms.set(&meta.path, ms),
                        Err(_) => cx.error_spanned_by(
                            &lit,
                            "timeout_ms must be a positive whole number of milliseconds that fits in \
                             u64: `timeout_ms = 2000`",
                        ),
                    }
                } else if meta.path == VERSION {
                    // #[storage(version = 2)]
                    let lit = get_lit_int(&meta, VERSION, "version = 2")?;
                    match lit.base10_parse::<u32>() {
                        Ok(v) => version.set(&meta.path, v),
                        Err(_) => cx.error_spanned_by(
                            &lit,
                            "version must be a whole number that fits in u32: `version = 2`",
                        ),
                    }
                } else if meta.path == SCOPE {
                    // #[storage(scope = "host")] or #[storage(scope = "shared")]
                    let lit = get_lit_str(&meta, SCOPE, "scope = \"shared\"")?;
                    match lit.value().as_str() {
                        "host" => scope.set(&meta.path, Sp::new(Scope::Host, lit.span())),
                        "shared" => scope.set(&meta.path, Sp::new(Scope::Shared, lit.span())),
                        other => cx.error_spanned_by(
                            &lit,
                            format!(
                                "unknown scope `{other}`; expected `scope = \"host\"` \
                                 or `scope = \"shared\"`"
                            ),
                        ),
                    }
                } else if meta.path == ASYNC {
                    // #[storage(validate = path, async)]
                    if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                        return Err(meta.error(
                            "`async` is a flag and takes no value: \
                             `#[storage(validate = path, async)]`",
                        ));
                    }
                    is_async.set(&meta.path, ());
                } else if meta.path == DEREF {
                    // #[storage(validate = path, deref)]
                    if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                        return Err(meta.error(
                            "`deref` is a flag and takes no value: \
                             `#[storage(validate = path, deref)]`",
                        ));
                    }
                    deref.set(&meta.path, meta.path.span());
                } else if meta.path == KEY_WITH {
                    // #[storage(key_with = path::to::function)]
                    let path: Path = meta.value()?.parse().map_err(|err| {
                        syn::Error::new(
                            err.span(),
                            "expected a path to a function `fn(&T) -> impl Serialize` whose \
                             result joins the section's key: `key_with = password_digest`",
                        )
                    })?;
                    key_with.set(&meta.path, path);
                } else if meta.path == MAX_AGE_SECS {
                    // #[storage(max_age_secs = 3600)]
                    let lit = get_lit_int(&meta, MAX_AGE_SECS, "max_age_secs = 3600")?;
                    match lit.base10_parse::<u64>() {
                        Ok(0) => cx.error_spanned_by(
                            &lit,
                            "max_age_secs must be at least 1 (seconds): `max_age_secs = 3600`; \
                             for a section that is never reused across starts, use \
                             `cache = false`",
                        ),
                        Ok(secs) => max_age_secs.set(&meta.path, Sp::new(secs, meta.path.span())),
                        Err(_) => cx.error_spanned_by(
                            &lit,
                            "max_age_secs must be a positive whole number of seconds that fits \
                             in u64: `max_age_secs = 3600`",
                        ),
                    }
                } else if meta.path == RECHECK_SECS {
                    // #[storage(recheck_secs = 30)]
                    let lit = get_lit_int(&meta, RECHECK_SECS, "recheck_secs = 30")?;
                    match lit.base10_parse::<u64>() {
                        Ok(0) => cx.error_spanned_by(
                            &lit,
                            "recheck_secs must be at least 1 (seconds): `recheck_secs = 30`",
                        ),
                        Ok(secs) => recheck_secs.set(&meta.path, secs),
                        Err(_) => cx.error_spanned_by(
                            &lit,
                            "recheck_secs must be a positive whole number of seconds that fits \
                             in u64: `recheck_secs = 30`",
                        ),
                    }
                } else if meta.path == CACHE {
                    // #[storage(cache = false)]
                    let lit = get_lit_bool(&meta, CACHE, "cache = false")?;
                    cache.set(&meta.path, Sp::new(lit.value, lit.span()));
                } else if meta.path == CWD {
                    // #[storage(cwd = false)]
                    let lit = get_lit_bool(&meta, CWD, "cwd = false")?;
                    cwd.set(&meta.path, Sp::new(lit.value, lit.span()));
                } else if meta.path == OPTIONAL {
                    // #[storage(optional)] or #[storage(optional = false)]
                    let value = if meta.input.peek(syn::Token![=]) {
                        get_lit_bool(&meta, OPTIONAL, "optional = true")?.value
                    } else {
                        true
                    };
                    optional.set(&meta.path, value);
                } else {
                    return Err(meta.error(
                        "unknown storage attribute; expected `validate`, `name`, \
                         `timeout_ms`, `version`, `scope`, `async`, `deref`, `key_with`, \
                         `max_age_secs`, `recheck_secs`, `cache`, `cwd` or `optional`",
                    ));
                }
                Ok(())
            }) {
                cx.syn_error(err);
            }
        }

        let clean = clean && cx.error_count() == errors_before;
        Field {
            present,
            clean,
            attr_tokens,
            validate: validate.get(),
            name: name.get(),
            timeout_ms: timeout_ms.get(),
            version: version.get(),
            scope: scope.get(),
            is_async: is_async.get().is_some(),
            deref: deref.get(),
            key_with: key_with.get(),
            max_age_secs: max_age_secs.get(),
            recheck_secs: recheck_secs.get(),
            cache: cache.get(),
            cwd: cwd.get(),
            optional: optional.get(),
        }
    }
}

/// `key = "..."`: any other literal or token is an error on that token.
fn get_lit_str(meta: &ParseNestedMeta<'_>, key: Symbol, example: &str) -> syn::Result<LitStr> {
    match get_lit(meta, key, "a string", example)? {
        Lit::Str(lit) => Ok(lit),
        other => Err(wrong_type(&other, key, "a string", example)),
    }
}

/// `key = 123`: any other literal or token is an error on that token.
fn get_lit_int(meta: &ParseNestedMeta<'_>, key: Symbol, example: &str) -> syn::Result<syn::LitInt> {
    match get_lit(meta, key, "an integer", example)? {
        Lit::Int(lit) => Ok(lit),
        other => Err(wrong_type(&other, key, "an integer", example)),
    }
}

/// `key = true | false`: any other literal or token is an error on that token.
fn get_lit_bool(
    meta: &ParseNestedMeta<'_>,
    key: Symbol,
    example: &str,
) -> syn::Result<syn::LitBool> {
    match get_lit(meta, key, "a boolean", example)? {
        Lit::Bool(lit) => Ok(lit),
        other => Err(wrong_type(&other, key, "`true` or `false`", example)),
    }
}

fn get_lit(meta: &ParseNestedMeta<'_>, key: Symbol, what: &str, example: &str) -> syn::Result<Lit> {
    meta.value()?.parse::<Lit>().map_err(|err| {
        syn::Error::new(
            err.span(),
            format!("expected `{key}` to be {what} literal: `{example}`"),
        )
    })
}

fn wrong_type(lit: &Lit, key: Symbol, what: &str, example: &str) -> syn::Error {
    syn::Error::new_spanned(lit, format!("expected `{key}` to be {what}: `{example}`"))
}
