//! Writes the generated code: the `<Struct>Kind` enum and `impl StorageAvailability`. The only
//! file that quotes code. Paths are absolute (`::storage_availability::__private`, `::core`,
//! `::std`) and locals start with `__`, so the user's names cannot interfere.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{DeriveInput, Ident, WhereClause};

use crate::ast::{Config, Section};
use crate::attr::{Scope, Sp};
use crate::check;
use crate::ctxt::Ctxt;
use crate::fallback;

/// Runs every stage. On error: the errors, plus the fallback (`fallback.rs`), so the user
/// sees one error, not thirty.
pub(crate) fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let config = Config::from_ast(&cx, input);
    check::check(&cx, &config);
    match cx.check() {
        Ok(()) => expand(&config),
        Err(err) => fallback::expand(&config, &err),
    }
}

pub(crate) fn private() -> TokenStream {
    quote!(::storage_availability::__private)
}

/// A section of a config that compiled without errors: every part is present.
struct Sec<'s, 'a> {
    section: &'s Section<'a>,
    variant: &'s Ident,
    name: &'s str,
}

fn expand(config: &Config<'_>) -> TokenStream {
    let private = private();
    let kind = &config.kind;
    let secs: Vec<Sec<'_, '_>> = config
        .sections
        .iter()
        .filter_map(|section| {
            Some(Sec {
                section,
                variant: section.variant.as_ref()?,
                name: &section.name.value,
            })
        })
        .collect();

    let variants: Vec<&Ident> = secs.iter().map(|s| s.variant).collect();
    let names: Vec<&str> = secs.iter().map(|s| s.name).collect();
    let indices = 0..secs.len();

    let ident = &config.original.ident;

    let serialize_asserts = secs.iter().map(|s| {
        let ty = s.section.ty();
        quote_spanned! {ty.span()=> ::storage_availability::__private::assert_serialize::<#ty>();}
    });

    let section_key_arms = secs.iter().map(|s| {
        let variant = s.variant;
        let name = s.name;
        let attrs = &s.section.attrs;
        let version = attrs.version.unwrap_or(1);
        let scope = scope_tokens(attrs.scope.as_ref());
        let cwd = attrs.cwd.as_ref().is_none_or(|cwd| cwd.value);
        let ty = s.section.ty();
        let inner = s.section.option_inner.unwrap_or(ty);
        let mut member = s.section.member.clone();
        member.set_span(ty.span());
        // At the type's span, like the `assert_serialize` above: a type that is not
        // `Serialize` is reported once, on the type.
        let call = match &attrs.key_with {
            Some(path) => {
                // At the function's span: a wrong argument type, or a result that is not
                // `Serialize`, is reported on `key_with = path`.
                let extra = quote_spanned! {path.span()=>
                    ::storage_availability::__private::run_key_with::<#inner, _>(#path, __value)
                };
                // The key at the function's span too: a result that is not `Serialize` is
                // then reported once (rustc merges the two identical errors).
                quote_spanned! {path.span()=>
                    {
                        let __extra = #extra;
                        ::storage_availability::__private::section_key_with(
                            &__spec,
                            __context,
                            ::core::option::Option::Some(__value),
                            ::core::option::Option::Some(&__extra),
                        )
                    }
                }
            }
            None => quote_spanned! {ty.span()=>
                ::storage_availability::__private::section_key(
                    &__spec,
                    __context,
                    ::core::option::Option::Some(__value),
                )
            },
        };
        let body = if s.section.option_inner.is_some() {
            quote! {
                match &self.#member {
                    ::core::option::Option::Some(__value) => #call,
                    ::core::option::Option::None => #private::section_key(
                        &__spec,
                        __context,
                        ::core::option::Option::None::<&#inner>,
                    ),
                }
            }
        } else {
            quote! {
                {
                    let __value = &self.#member;
                    #call
                }
            }
        };
        quote! {
            #kind::#variant => {
                let __spec = #private::SectionSpec::new(
                    <Self as #private::StorageAvailability>::config_type(),
                    #name,
                )
                .version(#version)
                .scope(#scope)
                .working_dir(#cwd);
                #body
            }
        }
    });

    let validate_arms = secs.iter().map(|s| {
        let variant = s.variant;
        let name = s.name;
        let member = s.section.member;
        let call = match &s.section.attrs.validate {
            // Validated by `validate_async`; the blocking entry points need
            // `BlockingValidators`, which a config with an async validator lacks.
            Some(_) if s.section.attrs.is_async => quote!(#private::async_only(#name)),
            Some(path) => {
                let inner = s.section.option_inner.unwrap_or(s.section.ty());
                // At the validator path's span: a wrong argument or return type, or a
                // `deref` section type that is not `Deref`, is reported on `validate = path`,
                // not on the derive.
                let deref = s.section.attrs.deref.is_some();
                match &config.context {
                    // `fn(&Section, &Context)`: a wrong second parameter is reported on
                    // `validate = path` too.
                    Some(context) => {
                        let run = if deref {
                            quote!(run_validator_deref_with)
                        } else {
                            quote!(run_validator_with)
                        };
                        quote_spanned! {path.span()=>
                            ::storage_availability::__private::#run::<#inner, #context, _>(
                                #path, __value, __ctx,
                            )
                        }
                    }
                    None => {
                        let run = if deref {
                            quote!(run_validator_deref)
                        } else {
                            quote!(run_validator)
                        };
                        quote_spanned! {path.span()=>
                            ::storage_availability::__private::#run::<#inner, _>(#path, __value)
                        }
                    }
                }
            }
            // Unreachable: a missing `validate` is an error, and errors take the fallback.
            None => quote!(::core::unreachable!()),
        };
        if s.section.option_inner.is_some() {
            quote! {
                #kind::#variant => match &self.#member {
                    ::core::option::Option::Some(__value) => #call,
                    ::core::option::Option::None => #private::unconfigured(#name),
                },
            }
        } else {
            quote! {
                #kind::#variant => {
                    let __value = &self.#member;
                    #call
                }
            }
        }
    });

    let is_configured = if secs.iter().any(|s| s.section.option_inner.is_some()) {
        let arms = secs.iter().map(|s| {
            let variant = s.variant;
            let member = s.section.member;
            if s.section.option_inner.is_some() {
                quote!(#kind::#variant => ::core::option::Option::is_some(&self.#member),)
            } else {
                quote!(#kind::#variant => true,)
            }
        });
        quote!(match __kind { #(#arms)* })
    } else {
        quote! {
            let _ = __kind;
            true
        }
    };

    let any_async = secs.iter().any(|s| s.section.attrs.is_async);
    let async_methods = if any_async {
        let arms = secs.iter().filter(|s| s.section.attrs.is_async).map(|s| {
            let variant = s.variant;
            let member = s.section.member;
            let inner = s.section.option_inner.unwrap_or(s.section.ty());
            let call = match &s.section.attrs.validate {
                // At the validator path's span, as for blocking validators: a blocking fn
                // marked `async`, or a wrong argument type, is reported there.
                Some(path) => {
                    let deref = s.section.attrs.deref.is_some();
                    match &config.context {
                        Some(context) => {
                            let run = if deref {
                                quote!(run_async_validator_deref_with)
                            } else {
                                quote!(run_async_validator_with)
                            };
                            quote_spanned! {path.span()=>
                                ::storage_availability::__private::#run::<#inner, #context, _, _>(
                                    #path, __value, __ctx,
                                )
                            }
                        }
                        None => {
                            let run = if deref {
                                quote!(run_async_validator_deref)
                            } else {
                                quote!(run_async_validator)
                            };
                            quote_spanned! {path.span()=>
                                ::storage_availability::__private::#run::<#inner, _, _>(#path, __value)
                            }
                        }
                    }
                }
                None => quote!(::core::unreachable!()),
            };
            if s.section.option_inner.is_some() {
                quote! {
                    #kind::#variant => match &self.#member {
                        ::core::option::Option::Some(__value) => ::core::option::Option::Some(#call),
                        ::core::option::Option::None => ::core::option::Option::None,
                    },
                }
            } else {
                quote! {
                    #kind::#variant => {
                        let __value = &self.#member;
                        ::core::option::Option::Some(#call)
                    }
                }
            }
        });
        let async_variants = secs
            .iter()
            .filter(|s| s.section.attrs.is_async)
            .map(|s| s.variant);
        let signature = match &config.context {
            Some(context) => quote! {
                fn validate_async_with<'__a>(
                    &'__a self,
                    __kind: #kind,
                    __ctx: &'__a #context,
                ) -> ::core::option::Option<#private::ValidationFuture<'__a>>
            },
            None => quote! {
                fn validate_async(&self, __kind: #kind) -> ::core::option::Option<#private::ValidationFuture<'_>>
            },
        };
        quote! {
            #signature {
                #[allow(unreachable_patterns)]
                match __kind {
                    #(#arms)*
                    _ => ::core::option::Option::None,
                }
            }

            fn is_async(__kind: #kind) -> ::core::primitive::bool {
                ::core::matches!(__kind, #(#kind::#async_variants)|*)
            }
        }
    } else {
        TokenStream::new()
    };
    let timeouts = secs.iter().map(|s| match s.section.attrs.timeout_ms {
        Some(ms) => quote! {
            ::core::option::Option::Some(::core::time::Duration::from_millis(#ms))
        },
        None => quote!(::core::option::Option::None),
    });
    let versions = secs.iter().map(|s| s.section.attrs.version.unwrap_or(1));
    let scopes = secs
        .iter()
        .map(|s| scope_tokens(s.section.attrs.scope.as_ref()));
    let max_ages = secs.iter().map(|s| match &s.section.attrs.max_age_secs {
        Some(secs) => {
            let secs = secs.value;
            quote! {
                ::core::option::Option::Some(::core::time::Duration::from_secs(#secs))
            }
        }
        None => quote!(::core::option::Option::None),
    });
    let rechecks = secs.iter().map(|s| match s.section.attrs.recheck_secs {
        Some(secs) => quote! {
            ::core::option::Option::Some(::core::time::Duration::from_secs(#secs))
        },
        None => quote!(::core::option::Option::None),
    });
    let reused = secs.iter().map(|s| {
        s.section
            .attrs
            .cache
            .as_ref()
            .is_none_or(|cache| cache.value)
    });
    let optionals = secs
        .iter()
        .map(|s| s.section.attrs.optional.unwrap_or(false));
    let config_type = ident.unraw().to_string();
    let validate = match &config.context {
        // Validators take the context: the cache calls `validate_with`; `validate` alone
        // cannot run them.
        Some(context) => quote! {
            fn validate(&self, __kind: #kind) -> #private::Outcome {
                #private::needs_context(#kind::name(__kind))
            }

            fn validate_with(&self, __kind: #kind, __ctx: &#context) -> #private::Outcome {
                match __kind {
                    #(#validate_arms)*
                }
            }
        },
        None => quote! {
            fn validate(&self, __kind: #kind) -> #private::Outcome {
                match __kind {
                    #(#validate_arms)*
                }
            }
        },
    };

    let items = Items {
        all: quote!(&[#(#kind::#variants),*]),
        name: quote! {
            match self {
                #(#kind::#variants => #names,)*
            }
        },
        from_name: quote! {
            match __name {
                #(#names => ::core::option::Option::Some(#kind::#variants),)*
                _ => ::core::option::Option::None,
            }
        },
        index: quote! {
            match self {
                #(#kind::#variants => #indices,)*
            }
        },
        display: quote! {
            __formatter.write_str(#kind::name(*self))
        },
        from_str: quote! {
            match <Self as #private::StorageKind>::from_name(__name) {
                ::core::option::Option::Some(__kind) => ::core::result::Result::Ok(__kind),
                ::core::option::Option::None => ::core::result::Result::Err(
                    #private::UnknownKind::new(__name, &[#(#names),*]),
                ),
            }
        },
        storage_availability: quote! {
            fn config_type() -> &'static ::core::primitive::str {
                ::core::concat!(::core::module_path!(), "::", #config_type)
            }

            fn section_key_in(
                &self,
                __kind: #kind,
                __context: &#private::KeyContext,
            ) -> ::core::result::Result<#private::SectionKey, #private::KeyError> {
                #(#serialize_asserts)*
                match __kind {
                    #(#section_key_arms)*
                }
            }

            #validate

            fn is_configured(&self, __kind: #kind) -> ::core::primitive::bool {
                #is_configured
            }

            fn timeout(__kind: #kind) -> ::core::option::Option<::core::time::Duration> {
                match __kind {
                    #(#kind::#variants => #timeouts,)*
                }
            }

            fn version(__kind: #kind) -> ::core::primitive::u32 {
                match __kind {
                    #(#kind::#variants => #versions,)*
                }
            }

            fn scope(__kind: #kind) -> #private::Scope {
                match __kind {
                    #(#kind::#variants => #scopes,)*
                }
            }

            fn app_version() -> &'static ::core::primitive::str {
                ::core::env!("CARGO_PKG_VERSION")
            }

            fn max_age(__kind: #kind) -> ::core::option::Option<::core::time::Duration> {
                match __kind {
                    #(#kind::#variants => #max_ages,)*
                }
            }

            fn recheck_every(__kind: #kind) -> ::core::option::Option<::core::time::Duration> {
                match __kind {
                    #(#kind::#variants => #rechecks,)*
                }
            }

            fn reused_across_starts(__kind: #kind) -> ::core::primitive::bool {
                match __kind {
                    #(#kind::#variants => #reused,)*
                }
            }

            fn is_optional(__kind: #kind) -> ::core::primitive::bool {
                match __kind {
                    #(#kind::#variants => #optionals,)*
                }
            }

            #async_methods
        },
        blocking: !any_async,
    };
    let sections: Vec<(&Ident, &str)> = secs.iter().map(|s| (s.variant, s.name)).collect();
    impls(config, &sections, items)
}

/// The bodies of the generated items; [`impls`] wraps them in their headers. `expand` fills
/// them in, `fallback` makes them `unreachable!()`.
pub(crate) struct Items {
    /// The value of the inherent `Kind::ALL` (the trait's `ALL` is the same).
    pub(crate) all: TokenStream,
    /// The body of the inherent `Kind::name(self)` (the trait's `name` calls it).
    pub(crate) name: TokenStream,
    /// The body of `StorageKind::from_name(__name)`.
    pub(crate) from_name: TokenStream,
    /// The body of `StorageKind::index(self)`.
    pub(crate) index: TokenStream,
    /// The body of `Display::fmt(&self, __formatter)`.
    pub(crate) display: TokenStream,
    /// The body of `FromStr::from_str(__name)`.
    pub(crate) from_str: TokenStream,
    /// Inside `impl StorageAvailability for Struct`, after `type Kind`.
    pub(crate) storage_availability: TokenStream,
    /// Also `impl BlockingValidators for Struct` (no section is `async`).
    pub(crate) blocking: bool,
}

/// The kind enum with `sections` as its variants, and every impl the derive writes, with
/// `items` as their bodies: the one place that writes the impl headers.
pub(crate) fn impls(config: &Config<'_>, sections: &[(&Ident, &str)], items: Items) -> TokenStream {
    let private = private();
    let kind = &config.kind;
    let vis = &config.original.vis;
    let kind_enum = kind_enum(config, sections.iter().copied());
    let ident = &config.original.ident;
    let (impl_generics, ty_generics, _) = config.original.generics.split_for_impl();
    let where_clause = where_clause(config);
    // At the type's span: a context that is not `Send + Sync + 'static` is reported there.
    let context_type = match &config.context {
        Some(context) => quote_spanned!(context.span()=> type Context = #context;),
        None => quote!(
            type Context = ();
        ),
    };
    let Items {
        all,
        name,
        from_name,
        index,
        display,
        from_str,
        storage_availability,
        blocking,
    } = items;
    let blocking_impl = if blocking {
        quote! {
            #[automatically_derived]
            impl #impl_generics #private::BlockingValidators for #ident #ty_generics #where_clause {}
        }
    } else {
        TokenStream::new()
    };

    quote! {
        #kind_enum

        #[doc(hidden)]
        const _: () = {
            // At the enum's visibility, so users need not import `StorageKind`.
            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #kind {
                /// Every section, in declaration order (the same as `StorageKind::ALL`).
                #vis const ALL: &'static [Self] = #all;

                /// The section's name as stored in the cache file (the same as
                /// `StorageKind::name`).
                #vis fn name(self) -> &'static ::core::primitive::str {
                    #name
                }
            }

            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #private::StorageKind for #kind {
                const ALL: &'static [Self] = #kind::ALL;

                fn name(self) -> &'static ::core::primitive::str {
                    #kind::name(self)
                }

                fn from_name(__name: &::core::primitive::str) -> ::core::option::Option<Self> {
                    #from_name
                }

                fn index(self) -> ::core::primitive::usize {
                    #index
                }
            }

            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl ::core::fmt::Display for #kind {
                fn fmt(&self, __formatter: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                    #display
                }
            }

            // Serialized as the section's name, like `Display`.
            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #private::Serialize for #kind {
                fn serialize<__S: #private::Serializer>(
                    &self,
                    __serializer: __S,
                ) -> ::core::result::Result<__S::Ok, __S::Error> {
                    #private::Serializer::serialize_str(__serializer, #kind::name(*self))
                }
            }

            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl ::core::str::FromStr for #kind {
                type Err = #private::UnknownKind;

                fn from_str(__name: &::core::primitive::str) -> ::core::result::Result<Self, #private::UnknownKind> {
                    #from_str
                }
            }

            #[automatically_derived]
            #[allow(unused_qualifications)]
            impl #impl_generics #private::StorageAvailability for #ident #ty_generics #where_clause {
                type Kind = #kind;
                #context_type

                #storage_availability
            }

            #blocking_impl
        };
    }
}

/// The enum itself, with the documentation `#![deny(missing_docs)]` asks for.
fn kind_enum<'s>(
    config: &Config<'_>,
    sections: impl Iterator<Item = (&'s Ident, &'s str)>,
) -> TokenStream {
    let vis = &config.original.vis;
    let kind = &config.kind;
    let ident = &config.original.ident;
    let doc = format!(
        "The storage sections of `{ident}`, generated by `#[derive(StorageAvailability)]`."
    );
    let variants = sections.map(|(variant, name)| {
        let doc = format!("The `{name}` section.");
        quote! {
            #[doc = #doc]
            #variant,
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(
            ::core::fmt::Debug,
            ::core::clone::Clone,
            ::core::marker::Copy,
            ::core::cmp::PartialEq,
            ::core::cmp::Eq,
            ::core::hash::Hash,
            ::core::cmp::PartialOrd,
            ::core::cmp::Ord,
        )]
        #vis enum #kind {
            #(#variants)*
        }
    }
}

/// The struct's where clause, plus, for a generic struct, the bounds the trait needs:
/// `Self: Send + Sync + 'static` and `FieldType: Serialize` for every section.
fn where_clause(config: &Config<'_>) -> Option<WhereClause> {
    let generics = &config.original.generics;
    let mut where_clause = generics.where_clause.clone();
    if generics.params.is_empty() {
        return where_clause;
    }
    let ident = &config.original.ident;
    let (_, ty_generics, _) = generics.split_for_impl();
    let predicates = &mut where_clause
        .get_or_insert_with(|| WhereClause {
            where_token: Default::default(),
            predicates: Default::default(),
        })
        .predicates;
    predicates.push(syn::parse_quote! {
        #ident #ty_generics: ::core::marker::Send + ::core::marker::Sync + 'static
    });
    for section in &config.sections {
        let ty = section.ty();
        predicates.push(syn::parse_quote_spanned! {ty.span()=>
            #ty: ::storage_availability::__private::Serialize
        });
        if let Some(inner) = section.option_inner {
            predicates.push(syn::parse_quote_spanned! {inner.span()=>
                #inner: ::storage_availability::__private::Serialize
            });
        }
    }
    where_clause
}

fn scope_tokens(scope: Option<&Sp<Scope>>) -> TokenStream {
    match scope.map_or(Scope::Host, |scope| scope.value) {
        Scope::Host => quote!(::storage_availability::__private::Scope::Host),
        Scope::Shared => quote!(::storage_availability::__private::Scope::Shared),
    }
}
