//! The code emitted after an error (thiserror-impl fallback.rs): the kind enum with every
//! section that has a valid variant (once each), and the impls `expand` writes, with bodies that are
//! `unreachable!()`. They never run, since the crate does not compile; they only stop
//! follow-up errors where the user names the enum, its `ALL`/`name()`, or the trait. The impl
//! headers come from [`expand::impls`], so the two cannot drift apart.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use crate::ast::Config;
use crate::expand::{self, Items};

pub(crate) fn expand(config: &Config<'_>, error: &syn::Error) -> TokenStream {
    let private = expand::private();
    let kind = &config.kind;
    let mut sections: Vec<(&Ident, &str)> = Vec::new();
    for section in &config.sections {
        // Not a variant `ALL` (an error): it would shadow the enum's `ALL` constant.
        if let Some(variant) = &section.variant
            && variant != "ALL"
            && !sections.iter().any(|(seen, _)| *seen == variant)
        {
            sections.push((variant, section.name.value.as_str()));
        }
    }
    let variants = sections.iter().map(|(variant, _)| *variant);
    let unreachable = quote!(::core::unreachable!());

    let items = Items {
        all: quote!(&[#(#kind::#variants),*]),
        name: unreachable.clone(),
        from_name: quote! {
            let _ = __name;
            #unreachable
        },
        index: unreachable.clone(),
        display: quote! {
            let _ = __formatter;
            #unreachable
        },
        from_str: quote! {
            let _ = __name;
            #unreachable
        },
        storage_availability: quote! {
            fn section_key(&self, _: #kind) -> #private::SectionKey {
                #unreachable
            }
            fn validate(&self, _: #kind) -> #private::Outcome {
                #unreachable
            }
            fn is_configured(&self, _: #kind) -> ::core::primitive::bool {
                #unreachable
            }
            fn timeout(_: #kind) -> ::core::option::Option<::core::time::Duration> {
                #unreachable
            }
            fn version(_: #kind) -> ::core::primitive::u32 {
                #unreachable
            }
            fn app_version() -> &'static ::core::primitive::str {
                #unreachable
            }
        },
        blocking: true,
    };
    let errors = error.to_compile_error();
    let impls = expand::impls(config, &sections, items);
    quote! {
        #errors
        #impls
    }
}
