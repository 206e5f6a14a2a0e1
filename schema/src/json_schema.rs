//! The JSON Schema of the cache file, generic and specialised to one config's sections.

use schemars::Schema;
use serde_json::{Map, Value};

use crate::CacheFile;

/// The JSON Schema (draft 2020-12) of a cache file, for any config: `sections` may hold any
/// section name. This is the schema checked in as `schema/availability-cache.schema.json`.
///
/// Doc comments of the types become descriptions. Timestamps carry `format: date-time` and
/// [`TIMESTAMP_PATTERN`](crate::TIMESTAMP_PATTERN) (the `Z` suffix is required), section
/// hashes the pattern `^[0-9a-f]{64}$`, `schema_version` the pattern `^[0-9]+\.[0-9]+$`.
/// No object rejects unknown properties: a newer minor version may add fields.
///
/// ```
/// let schema = storage_availability_schema::cache_file_schema();
/// assert_eq!(schema.get("title").unwrap(), "storage-availability cache file");
/// assert_eq!(
///     schema.pointer("/$defs/SectionHash/pattern").unwrap(),
///     "^[0-9a-f]{64}$",
/// );
/// ```
pub fn cache_file_schema() -> Schema {
    schemars::schema_for!(CacheFile)
}

/// The cache file schema specialised to one config: `sections` lists exactly `names` as
/// properties, each a `SectionRecord`, none of them required (a file may hold only some
/// sections), and rejects any other name (`additionalProperties: false`).
///
/// Duplicate names are listed once. This is what a config's `json_schema()` returns.
///
/// ```
/// use serde_json::json;
///
/// let schema = storage_availability_schema::schema_for_sections(&["csv", "key_value"]);
/// let sections = schema.pointer("/properties/sections").unwrap();
/// assert_eq!(sections["additionalProperties"], json!(false));
/// assert_eq!(sections["properties"]["csv"], json!({ "$ref": "#/$defs/SectionRecord" }));
/// assert!(sections["properties"].get("vector").is_none());
/// assert!(sections.get("required").is_none());
/// ```
pub fn schema_for_sections(names: &[&str]) -> Schema {
    let mut schema = cache_file_schema();
    let record = Value::Object(Map::from_iter([(
        "$ref".to_owned(),
        Value::String("#/$defs/SectionRecord".to_owned()),
    )]));
    let mut unique: Vec<&str> = Vec::with_capacity(names.len());
    for name in names {
        if !unique.contains(name) {
            unique.push(name);
        }
    }
    let properties: Map<String, Value> = unique
        .iter()
        .map(|name| ((*name).to_owned(), record.clone()))
        .collect();
    let listed = unique
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ");

    let sections = schema
        .pointer_mut("/properties/sections")
        .and_then(Value::as_object_mut)
        .expect("the CacheFile schema has a `sections` object property");
    let description = match sections.get("description").and_then(Value::as_str) {
        Some(base) if names.is_empty() => format!("{base} This config has no sections."),
        Some(base) => format!("{base} This config's sections: {listed}; no other."),
        None => format!("This config's sections: {listed}; no other."),
    };
    sections.insert("description".to_owned(), Value::String(description));
    sections.insert("properties".to_owned(), Value::Object(properties));
    sections.insert("additionalProperties".to_owned(), Value::Bool(false));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn generic_schema_accepts_any_section_name() {
        let schema = cache_file_schema();
        assert_eq!(
            schema.pointer("/properties/sections/additionalProperties"),
            Some(&json!({ "$ref": "#/$defs/SectionRecord" }))
        );
        assert!(schema.pointer("/properties/sections/properties").is_none());
    }

    #[test]
    fn patterns_and_formats() {
        let schema = cache_file_schema();
        assert_eq!(
            schema.pointer("/$defs/Timestamp/format"),
            Some(&json!("date-time"))
        );
        assert_eq!(
            schema.pointer("/$defs/Timestamp/pattern"),
            Some(&json!(crate::TIMESTAMP_PATTERN))
        );
        assert_eq!(
            schema.pointer("/$defs/SectionHash/pattern"),
            Some(&json!("^[0-9a-f]{64}$"))
        );
        assert_eq!(
            schema.pointer("/properties/schema_version/pattern"),
            Some(&json!(r"^[0-9]+\.[0-9]+$"))
        );
        assert_eq!(
            schema.pointer("/$defs/SectionRecord/properties/duration_ms/minimum"),
            Some(&json!(0.0))
        );
    }

    #[test]
    fn every_field_has_a_description() {
        let schema = cache_file_schema();
        let mut objects = vec![schema.as_value()];
        objects.extend(schema.get("$defs").unwrap().as_object().unwrap().values());
        for object in objects {
            if let Some(properties) = object.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    assert!(
                        property.get("description").is_some(),
                        "property {name} has no description"
                    );
                }
            }
            assert!(object.get("description").is_some(), "{object:#}");
        }
    }

    #[test]
    fn descriptions_hold_no_rustdoc_examples() {
        let text = serde_json::to_string(&cache_file_schema()).unwrap();
        assert!(!text.contains("```"), "{text}");
    }

    #[test]
    fn no_object_rejects_unknown_fields() {
        let text = serde_json::to_string(&cache_file_schema()).unwrap();
        assert!(!text.contains("\"additionalProperties\":false"), "{text}");
    }

    #[test]
    fn specialised_schema_lists_exactly_the_names() {
        let schema = schema_for_sections(&["csv", "vector", "csv"]);
        let sections = schema.pointer("/properties/sections").unwrap();
        let names: Vec<&String> = sections["properties"].as_object().unwrap().keys().collect();
        assert_eq!(names, ["csv", "vector"]);
        assert_eq!(sections["additionalProperties"], json!(false));
        assert_eq!(sections["type"], json!("object"));
        assert!(sections.get("required").is_none());
        assert!(
            sections["description"]
                .as_str()
                .unwrap()
                .ends_with(" This config's sections: `csv`, `vector`; no other."),
            "{sections:#}"
        );
        // Everything else is the generic schema.
        let mut generic = cache_file_schema();
        let mut specialised = schema.clone();
        generic.pointer_mut("/properties/sections").unwrap().take();
        specialised
            .pointer_mut("/properties/sections")
            .unwrap()
            .take();
        assert_eq!(generic, specialised);
    }

    #[test]
    fn specialised_schema_without_sections_rejects_all() {
        let schema = schema_for_sections(&[]);
        let sections = schema.pointer("/properties/sections").unwrap();
        assert_eq!(sections["properties"], json!({}));
        assert_eq!(sections["additionalProperties"], json!(false));
    }
}
