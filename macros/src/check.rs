//! Rules that need more than one field or attribute: at least one section, unique section
//! names, unique kind variants (none named `ALL`), no contradicting attributes on a section.
//! Rules about one value are checked in `attr.rs` while it is parsed.

use std::collections::HashMap;

use crate::ast::Config;
use crate::attr::Scope;
use crate::ctxt::Ctxt;

pub(crate) fn check(cx: &Ctxt, config: &Config<'_>) {
    check_has_sections(cx, config);
    check_unique_names(cx, config);
    check_unique_variants(cx, config);
    check_contradictions(cx, config);
}

/// Attributes of one section that cannot hold together, reported on the second of them.
fn check_contradictions(cx: &Ctxt, config: &Config<'_>) {
    for section in config.sections.iter().filter(|s| s.attrs.clean) {
        let attrs = &section.attrs;
        let shared = attrs
            .scope
            .as_ref()
            .is_some_and(|scope| scope.value == Scope::Shared);
        if let Some(cache) = attrs.cache.as_ref().filter(|cache| !cache.value) {
            if attrs.max_age_secs.is_some() {
                cx.syn_error(syn::Error::new(
                    cache.span,
                    "`cache = false` never reuses the section's result across starts, so \
                     `max_age_secs` would have no effect; keep one of them",
                ));
            } else if shared {
                cx.syn_error(syn::Error::new(
                    cache.span,
                    "`cache = false` validates the section at every start, which contradicts \
                     sharing its answer with other hosts (`scope = \"shared\"`); keep one of them",
                ));
            }
        }
        if let Some(cwd) = &attrs.cwd
            && shared
        {
            cx.syn_error(syn::Error::new(
                cwd.span,
                "`cwd` applies to host-scoped sections only: the key of a `scope = \"shared\"` \
                 section never covers the host or the working directory; remove `cwd`",
            ));
        }
    }
}

fn check_has_sections(cx: &Ctxt, config: &Config<'_>) {
    if config.is_named_struct && config.sections.is_empty() {
        cx.error_spanned_by(
            &config.original.ident,
            "no storage section: mark at least one field as a section with \
             `#[storage(validate = path)]`",
        );
    }
}

fn check_unique_names(cx: &Ctxt, config: &Config<'_>) {
    let mut seen = HashMap::new();
    for section in config.sections.iter().filter(|s| s.name_is_valid) {
        if let Some(first) = seen.insert(section.name.value.as_str(), section.member) {
            // Keep pointing at the first holder of the name.
            seen.insert(section.name.value.as_str(), first);
            cx.syn_error(syn::Error::new(
                section.name_span(),
                format!(
                    "duplicate section name `{}`: the field `{}` already uses it; give this \
                     section another name with `#[storage(name = \"...\")]`",
                    section.name.value, first
                ),
            ));
        }
    }
}

fn check_unique_variants(cx: &Ctxt, config: &Config<'_>) {
    let mut seen = HashMap::new();
    for section in &config.sections {
        let Some(variant) = &section.variant else {
            continue;
        };
        let key = variant.to_string();
        if key == "ALL" {
            // The enum's inherent `ALL` constant would be shadowed by the variant.
            cx.error_spanned_by(
                section.member,
                format!(
                    "the field `{}` gives the kind variant `ALL`, which clashes with the \
                     kind enum's `ALL` constant; rename the field",
                    section.member
                ),
            );
        } else if let Some(first) = seen.get(&key) {
            cx.error_spanned_by(
                section.member,
                format!(
                    "the fields `{first}` and `{}` both give the kind variant `{key}`; \
                     rename one of them",
                    section.member
                ),
            );
        } else {
            seen.insert(key, section.member);
        }
    }
}
