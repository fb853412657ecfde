//! JSON Schema → the OpenAPI 3.0 subset Gemini's `responseSchema` and function `parameters`
//! accept.
//!
//! Gemini rejects keywords outside its subset (`$ref`, `additionalProperties`, `const`, type
//! arrays...). This transform inlines local `$ref`s, turns `type: [T, "null"]` into
//! `nullable: true`, `const` into a one-value `enum`, and drops everything else it does not
//! know, returning the dropped keywords by path so callers can say what the provider will not
//! enforce. The full original schema is still checked client-side by llmkit's structured-output
//! machinery, so a dropped constraint is never silently lost.

use serde_json::{Map, Value};

/// Keywords Gemini's Schema object understands and that we copy as they are.
const KEEP: &[&str] = &[
    "description",
    "format",
    "nullable",
    "enum",
    "minItems",
    "maxItems",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minProperties",
    "maxProperties",
    "title",
    "propertyOrdering",
];

/// Deepest `$ref` chain inlined; recursive schemas are cut here (the cut is reported).
const MAX_REF_DEPTH: usize = 8;

/// The transformed schema and the keywords that were dropped, as `path: keyword` strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Transformed {
    pub(crate) schema: Value,
    pub(crate) dropped: Vec<String>,
}

/// Transforms a JSON Schema into Gemini's dialect.
pub(crate) fn to_gemini(schema: &Value) -> Transformed {
    let mut dropped = Vec::new();
    let schema = convert(schema, schema, "#", 0, &mut dropped);
    Transformed { schema, dropped }
}

/// The schema only, for call sites that report nothing.
pub(crate) fn to_gemini_schema(schema: &Value) -> Value {
    to_gemini(schema).schema
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    root.pointer(pointer)
}

fn convert(
    node: &Value,
    root: &Value,
    path: &str,
    depth: usize,
    dropped: &mut Vec<String>,
) -> Value {
    let Value::Object(map) = node else {
        // `true` / `false` schemas have no Gemini equivalent; an unconstrained object is the
        // closest accepted shape.
        return Value::Object(Map::new());
    };
    if let Some(Value::String(reference)) = map.get("$ref") {
        if depth >= MAX_REF_DEPTH {
            dropped.push(format!(
                "{path}: $ref (recursion cut at depth {MAX_REF_DEPTH})"
            ));
            return serde_json::json!({"type": "object"});
        }
        return match resolve(root, reference) {
            Some(target) => convert(target, root, path, depth + 1, dropped),
            None => {
                dropped.push(format!("{path}: $ref {reference} (unresolved)"));
                serde_json::json!({"type": "object"})
            }
        };
    }
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "type" => match value {
                Value::String(_) => {
                    out.insert("type".into(), value.clone());
                }
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types
                        .iter()
                        .filter(|t| t.as_str() != Some("null"))
                        .collect();
                    if non_null.len() < types.len() {
                        out.insert("nullable".into(), Value::Bool(true));
                    }
                    match non_null.as_slice() {
                        [one] => {
                            out.insert("type".into(), (*one).clone());
                        }
                        _ => dropped.push(format!("{path}: type {value}")),
                    }
                }
                _ => dropped.push(format!("{path}: type")),
            },
            "properties" => {
                if let Value::Object(props) = value {
                    let converted: Map<String, Value> = props
                        .iter()
                        .map(|(name, sub)| {
                            let sub_path = format!("{path}/properties/{name}");
                            (name.clone(), convert(sub, root, &sub_path, depth, dropped))
                        })
                        .collect();
                    out.insert("properties".into(), Value::Object(converted));
                }
            }
            "items" => {
                let sub_path = format!("{path}/items");
                out.insert(
                    "items".into(),
                    convert(value, root, &sub_path, depth, dropped),
                );
            }
            "anyOf" | "oneOf" => {
                if let Value::Array(options) = value {
                    let mut converted = Vec::new();
                    for (i, sub) in options.iter().enumerate() {
                        if sub.get("type").and_then(Value::as_str) == Some("null") {
                            out.insert("nullable".into(), Value::Bool(true));
                            continue;
                        }
                        let sub_path = format!("{path}/{key}/{i}");
                        converted.push(convert(sub, root, &sub_path, depth, dropped));
                    }
                    if key == "oneOf" {
                        dropped.push(format!("{path}: oneOf (sent as anyOf)"));
                    }
                    match converted.len() {
                        0 => {}
                        // `Option<T>` from schemars: anyOf [T, null] is just a nullable T.
                        1 => {
                            if let Some(Value::Object(single)) = converted.pop() {
                                for (k, v) in single {
                                    out.entry(k).or_insert(v);
                                }
                            }
                        }
                        _ => {
                            out.insert("anyOf".into(), Value::Array(converted));
                        }
                    }
                }
            }
            "required" => {
                out.insert("required".into(), value.clone());
            }
            "const" => {
                out.insert("enum".into(), Value::Array(vec![value.clone()]));
            }
            "$schema" | "$defs" | "definitions" | "$id" | "$comment" => {}
            k if KEEP.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            other => dropped.push(format!("{path}: {other}")),
        }
    }
    // Gemini's enum is for strings only; numbers would be rejected.
    if let Some(Value::Array(values)) = out.get("enum") {
        if !values.iter().all(Value::is_string) {
            let values: Vec<Value> = values
                .iter()
                .map(|v| match v {
                    Value::String(s) => Value::String(s.clone()),
                    other => Value::String(other.to_string()),
                })
                .collect();
            dropped.push(format!("{path}: non-string enum values (sent as strings)"));
            out.insert("enum".into(), Value::Array(values));
            out.insert("type".into(), Value::String("string".into()));
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn schemars_style_schema_is_inlined_and_trimmed() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Order",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "item": {"$ref": "#/$defs/Item"},
                "note": {"type": ["string", "null"]},
                "kind": {"const": "order"},
                "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": true},
                "discount": {"anyOf": [{"$ref": "#/$defs/Discount"}, {"type": "null"}]}
            },
            "required": ["item", "kind"],
            "$defs": {
                "Item": {"type": "object", "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}, "required": ["name"]},
                "Discount": {"type": "number", "exclusiveMaximum": 1}
            }
        });
        let t = to_gemini(&schema);
        assert_eq!(
            t.schema,
            json!({
                "title": "Order",
                "type": "object",
                "properties": {
                    "item": {"type": "object", "properties": {"name": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}}, "required": ["name"]},
                    "note": {"type": "string", "nullable": true},
                    "kind": {"enum": ["order"]},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "discount": {"type": "number", "nullable": true}
                },
                "required": ["item", "kind"]
            })
        );
        assert!(
            t.dropped.contains(&"#: additionalProperties".to_owned()),
            "{:?}",
            t.dropped
        );
        assert!(t.dropped.iter().any(|d| d.contains("uniqueItems")));
        assert!(t.dropped.iter().any(|d| d.contains("exclusiveMaximum")));
    }

    #[test]
    fn recursion_is_cut_and_reported() {
        let schema = json!({"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}, "$ref": "#/$defs/Node"});
        let t = to_gemini(&schema);
        assert!(t.dropped.iter().any(|d| d.contains("recursion cut")));
        assert!(to_gemini(&json!({"$ref": "#/nope"})).dropped[0].contains("unresolved"));
    }

    #[test]
    fn numeric_enums_become_strings() {
        let t = to_gemini(&json!({"type": "integer", "enum": [1, 2]}));
        assert_eq!(t.schema, json!({"type": "string", "enum": ["1", "2"]}));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_always_gives_an_object(s in "[\\[\\]{}\",:a-z$#/0-9 ]{0,120}") {
            if let Ok(v) = serde_json::from_str::<Value>(&s) {
                let t = to_gemini(&v);
                proptest::prop_assert!(t.schema.is_object());
                if let Some(map) = t.schema.as_object() {
                    proptest::prop_assert!(!map.contains_key("$ref"));
                    proptest::prop_assert!(!map.contains_key("additionalProperties"));
                }
            }
        }
    }
}
