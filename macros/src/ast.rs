//! The derive input as plain structs (thiserror-impl ast.rs). Every node keeps its
//! `original` syn node, so later stages can point at the user's tokens.

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, GenericArgument, Ident, PathArguments, Type};

use crate::attr::{self, Sp};
use crate::ctxt::Ctxt;

/// The struct that derives `StorageAvailability`.
pub(crate) struct Config<'a> {
    pub(crate) original: &'a DeriveInput,
    /// The name of the generated kind enum (`<Struct>Kind` or `#[availability(kind)]`).
    pub(crate) kind: Ident,
    /// `#[availability(context = Type)]`: validators take `(&Section, &Type)`.
    pub(crate) context: Option<Type>,
    /// The input is a struct with named fields (otherwise an error was recorded).
    pub(crate) is_named_struct: bool,
    /// The fields with a `#[storage]` attribute, in declaration order.
    pub(crate) sections: Vec<Section<'a>>,
}

/// One field with `#[storage(...)]`.
pub(crate) struct Section<'a> {
    pub(crate) original: &'a syn::Field,
    pub(crate) member: &'a Ident,
    pub(crate) attrs: attr::Field,
    /// The section name (from `name = "..."`, else the field name without `r#`).
    pub(crate) name: Sp<String>,
    /// `name` matches `[a-z][a-z0-9_]*` (otherwise an error was recorded).
    pub(crate) name_is_valid: bool,
    /// The kind enum's variant: the field name in UpperCamelCase. `None` when the field name
    /// gives no identifier (an error was recorded).
    pub(crate) variant: Option<Ident>,
    /// `T` when the field is an `Option<T>`: `None` means not configured.
    pub(crate) option_inner: Option<&'a Type>,
}

impl<'a> Config<'a> {
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Config<'a> {
        let container = attr::Container::from_ast(cx, input);
        let kind = container.kind.unwrap_or_else(|| {
            Ident::new(&format!("{}Kind", input.ident.unraw()), input.ident.span())
        });

        const NAMED: &str = "#[derive(StorageAvailability)] needs a struct with named fields, \
                             one per section: `struct StorageConfig { #[storage(validate = \
                             check_csv)] csv: CsvConfig }`";
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => Some(fields),
                Fields::Unnamed(fields) => {
                    cx.error_spanned_by(
                        fields,
                        format!(
                            "a tuple struct's fields have no names to use as sections; {NAMED}"
                        ),
                    );
                    None
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        format!("a unit struct has no fields to use as sections; {NAMED}"),
                    );
                    None
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    format!("an enum cannot derive StorageAvailability; {NAMED}"),
                );
                None
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    format!("a union cannot derive StorageAvailability; {NAMED}"),
                );
                None
            }
        };

        let sections = fields
            .map(|fields| {
                fields
                    .named
                    .iter()
                    .filter_map(|field| Section::from_ast(cx, field))
                    .collect()
            })
            .unwrap_or_default();

        Config {
            original: input,
            kind,
            context: container.context,
            is_named_struct: fields.is_some(),
            sections,
        }
    }
}

impl<'a> Section<'a> {
    /// `None` for a field without `#[storage]` (not a section) or without a name.
    fn from_ast(cx: &Ctxt, field: &'a syn::Field) -> Option<Section<'a>> {
        let attrs = attr::Field::from_ast(cx, field);
        let member = field.ident.as_ref()?;
        if !attrs.present {
            return None;
        }
        if attrs.clean && attrs.validate.is_none() {
            cx.error_spanned_by(
                &attrs.attr_tokens,
                "missing `validate`: every section needs a validator, \
                 `#[storage(validate = check_csv)]`",
            );
        }

        let field_name = member.unraw().to_string();
        let (name, name_is_valid) = match &attrs.name {
            Some(name) => (name.clone(), true),
            None => {
                let valid = attr::is_valid_section_name(&field_name);
                if !valid {
                    cx.error_spanned_by(
                        member,
                        format!(
                            "invalid section name `{field_name}` (taken from the field name): \
                             a section name must match `[a-z][a-z0-9_]*`; rename the field or \
                             set one with `#[storage(name = \"...\")]`"
                        ),
                    );
                }
                (Sp::new(field_name.clone(), member.span()), valid)
            }
        };

        let variant_name = upper_camel_case(&field_name);
        let variant = match syn::parse_str::<Ident>(&variant_name) {
            Ok(_) => Some(Ident::new(&variant_name, member.span())),
            Err(_) => {
                cx.error_spanned_by(
                    member,
                    format!(
                        "the field `{field_name}` gives the kind variant `{variant_name}`, \
                         which is not an identifier; rename the field"
                    ),
                );
                None
            }
        };

        Some(Section {
            original: field,
            member,
            option_inner: option_inner(&field.ty),
            attrs,
            name,
            name_is_valid,
            variant,
        })
    }

    /// The field's type.
    pub(crate) fn ty(&self) -> &'a Type {
        &self.original.ty
    }

    /// The span of the section's name: the `name = "..."` literal, else the field name.
    pub(crate) fn name_span(&self) -> Span {
        self.name.span
    }
}

/// `csv` -> `Csv`, `key_value` -> `KeyValue`, `s3_bucket` -> `S3Bucket`.
fn upper_camel_case(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for part in field.split('_') {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    out
}

/// `T` for `Option<T>`, `std::option::Option<T>`, `core::option::Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    match ty {
        Type::Group(group) => option_inner(&group.elem),
        Type::Paren(paren) => option_inner(&paren.elem),
        Type::Path(path) if path.qself.is_none() => {
            let last = path.path.segments.last()?;
            if last.ident != "Option" {
                return None;
            }
            let PathArguments::AngleBracketed(args) = &last.arguments else {
                return None;
            };
            let mut args = args.args.iter();
            match (args.next(), args.next()) {
                (Some(GenericArgument::Type(inner)), None) => Some(inner),
                _ => None,
            }
        }
        _ => None,
    }
}
