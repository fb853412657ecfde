//! OpenAI strict mode (`response_format: json_schema` with `strict: true`): every property
//! required (optional ones made nullable), `additionalProperties: false` on every object, a
//! keyword whitelist, nothing beside `$ref`, and the size limits OpenAI documents.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::dialect::{
    ANNOTATIONS, DroppedConstraint, SchemaDialect, TransformedSchema, child, require_object_root,
    type_names, unsupported,
};
use crate::error::Result;

/// OpenAI strict mode: deepest object nesting accepted.
pub const OPENAI_MAX_DEPTH: usize = 10;
/// OpenAI strict mode: most object properties accepted across the whole schema.
pub const OPENAI_MAX_PROPERTIES: usize = 5000;
/// OpenAI strict mode: most enum values accepted across the whole schema.
pub const OPENAI_MAX_ENUM_VALUES: usize = 1000;
/// OpenAI strict mode: most characters of property names, definition names, enum and const
/// values accepted across the whole schema.
pub const OPENAI_MAX_SCHEMA_CHARS: usize = 120_000;

#[derive(Default)]
struct StrictCtx {
    dropped: Vec<DroppedConstraint>,
    properties: usize,
    enum_values: usize,
    chars: usize,
    max_depth: usize,
    deepest_path: String,
}

/// Keywords OpenAI strict mode accepts; everything else is dropped and reported.
const OPENAI_KEYWORDS: &[&str] = &[
    "type",
    "description",
    "title",
    "enum",
    "const",
    "anyOf",
    "$ref",
    "$defs",
    "definitions",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
];

const OPENAI_FORMATS: &[&str] = &[
    "date-time",
    "time",
    "date",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uuid",
];

const DIALECT: SchemaDialect = SchemaDialect::OpenAiStrict;

/// The strict-mode form of `schema`, or why it has none.
pub(crate) fn strict(schema: &Value) -> Result<TransformedSchema> {
    require_object_root(schema, DIALECT)?;
    let mut out = schema.clone();
    if let Value::Object(map) = &mut out {
        map.remove("$schema");
    }
    let mut ctx = StrictCtx::default();
    strict_node(&mut out, "", 1, &mut ctx)?;
    check_openai_limits(&ctx)?;
    Ok(TransformedSchema {
        schema: out,
        dropped: ctx.dropped,
    })
}

/// Rewrites one node and, recursively, everything below it. `depth` counts object nesting.
fn strict_node(node: &mut Value, path: &str, depth: usize, ctx: &mut StrictCtx) -> Result<()> {
    let map = match node {
        Value::Object(map) => map,
        Value::Bool(true) => {
            return Err(unsupported(DIALECT, path, "a schema accepting any value"));
        }
        Value::Bool(false) => return Err(unsupported(DIALECT, path, "a schema accepting nothing")),
        _ => return Err(unsupported(DIALECT, path, "a schema that is not an object")),
    };
    merge_combinators(map, path, ctx)?;
    drop_unsupported_keywords(map, path, ctx);
    count_values(map, ctx);

    let types: Vec<String> = type_names(map).into_iter().map(str::to_owned).collect();
    let is_object = types.iter().any(|t| t == "object") || map.contains_key("properties");
    let has_shape = !types.is_empty()
        || ["$ref", "anyOf", "enum", "const", "properties"]
            .iter()
            .any(|k| map.contains_key(*k));
    if !has_shape {
        return Err(unsupported(
            DIALECT,
            path,
            "a schema accepting any value (give the field a concrete type)",
        ));
    }
    let child_depth = if is_object {
        close_object(map, path, depth, !types.is_empty(), ctx)?;
        depth + 1
    } else {
        depth
    };
    strict_children(map, path, depth, child_depth, &types, ctx)
}

/// `oneOf` becomes `anyOf` (strict mode accepts only the latter; for the disjoint alternatives
/// serde enums produce the two mean the same, and exclusivity is re-checked client-side); a
/// single-element `allOf` (older generators wrap `$ref` + description this way) is merged in.
fn merge_combinators(map: &mut Map<String, Value>, path: &str, ctx: &mut StrictCtx) -> Result<()> {
    if let Some(one_of) = map.remove("oneOf") {
        ctx.dropped.push(DroppedConstraint {
            path: path.to_owned(),
            keyword: "oneOf".into(),
            reason: "rewritten as anyOf; exclusivity is checked client-side".into(),
        });
        match map.get_mut("anyOf") {
            Some(Value::Array(existing)) => {
                if let Value::Array(more) = one_of {
                    existing.extend(more);
                }
            }
            _ => {
                map.insert("anyOf".into(), one_of);
            }
        }
    }
    if let Some(all_of) = map.get("allOf") {
        match all_of.as_array().map(Vec::as_slice) {
            Some([single]) if single.is_object() => {
                let single = single.clone();
                map.remove("allOf");
                if let Value::Object(inner) = single {
                    for (k, v) in inner {
                        map.entry(k).or_insert(v);
                    }
                }
            }
            _ => return Err(unsupported(DIALECT, path, "allOf with several schemas")),
        }
    }
    Ok(())
}

/// Removes keywords strict mode rejects, reporting those that constrained something.
fn drop_unsupported_keywords(map: &mut Map<String, Value>, path: &str, ctx: &mut StrictCtx) {
    // OpenAI rejects any keyword beside `$ref` ("$ref cannot have keywords {'description'}"),
    // although 2020-12 allows it and schemars emits it for documented struct-typed fields.
    let ref_only = map.contains_key("$ref");
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let allowed = if ref_only {
            key == "$ref" || key == "$defs" || key == "definitions"
        } else {
            OPENAI_KEYWORDS.contains(&key.as_str())
        };
        if allowed {
            continue;
        }
        map.remove(&key);
        let annotation = ANNOTATIONS.contains(&key.as_str())
            || (ref_only && matches!(key.as_str(), "description" | "title"));
        if !annotation {
            ctx.dropped.push(DroppedConstraint {
                path: path.to_owned(),
                keyword: key,
                reason: "not supported by openai strict mode".into(),
            });
        }
    }
    if let Some(Value::String(format)) = map.get("format")
        && !OPENAI_FORMATS.contains(&format.as_str())
    {
        ctx.dropped.push(DroppedConstraint {
            path: path.to_owned(),
            keyword: "format".into(),
            reason: format!("format `{format}` is not supported by openai strict mode"),
        });
        map.remove("format");
    }
}

/// Counts enum values and their characters toward the whole-schema limits.
fn count_values(map: &Map<String, Value>, ctx: &mut StrictCtx) {
    if let Some(Value::Array(values)) = map.get("enum") {
        ctx.enum_values += values.len();
        ctx.chars += values.iter().map(value_chars).sum::<usize>();
    }
    if let Some(v) = map.get("const") {
        ctx.chars += value_chars(v);
    }
}

/// Closes an object node: no additional properties, every property required, the optional
/// ones made nullable. Open objects and maps have no strict form.
fn close_object(
    map: &mut Map<String, Value>,
    path: &str,
    depth: usize,
    typed: bool,
    ctx: &mut StrictCtx,
) -> Result<()> {
    if depth > ctx.max_depth {
        ctx.max_depth = depth;
        ctx.deepest_path = path.to_owned();
    }
    match map.get("additionalProperties") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) if !map.contains_key("properties") => {
            return Err(unsupported(
                DIALECT,
                path,
                "an open object (use a struct with named fields)",
            ));
        }
        Some(Value::Bool(true)) => {}
        Some(_) => {
            return Err(unsupported(
                DIALECT,
                path,
                "a map with free-form keys (use a vec of key/value structs)",
            ));
        }
    }
    if !map.contains_key("properties") && typed {
        map.insert("properties".into(), Value::Object(Map::new()));
    }
    map.insert("additionalProperties".into(), Value::Bool(false));
    let required: BTreeSet<String> = map
        .get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let mut all_names = Vec::new();
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            ctx.properties += 1;
            ctx.chars += name.chars().count();
            all_names.push(Value::String(name.clone()));
            if !required.contains(name) && !is_nullable(prop) {
                make_nullable(prop);
            }
        }
    }
    map.insert("required".into(), Value::Array(all_names));
    Ok(())
}

/// Recurses into properties, definitions, items and `anyOf` alternatives.
fn strict_children(
    map: &mut Map<String, Value>,
    path: &str,
    depth: usize,
    child_depth: usize,
    types: &[String],
    ctx: &mut StrictCtx,
) -> Result<()> {
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        for (name, prop) in props.iter_mut() {
            let p = child(&child(path, "properties"), name);
            strict_node(prop, &p, child_depth, ctx)?;
        }
    }
    for key in ["$defs", "definitions"] {
        if let Some(Value::Object(defs)) = map.get_mut(key) {
            for (name, def) in defs.iter_mut() {
                ctx.chars += name.chars().count();
                let p = child(&child(path, key), name);
                // Definitions are referenced from somewhere below the root; counting them at
                // depth 1 under-estimates, the provider has the last word.
                strict_node(def, &p, 1, ctx)?;
            }
        }
    }
    match map.get_mut("items") {
        Some(items @ Value::Object(_)) => {
            strict_node(items, &child(path, "items"), child_depth, ctx)?;
        }
        Some(Value::Bool(_)) => {
            map.remove("items");
        }
        Some(_) => {
            return Err(unsupported(DIALECT, path, "a non-schema `items`"));
        }
        None => {}
    }
    if types.iter().any(|t| t == "array") && !map.contains_key("items") {
        return Err(unsupported(
            DIALECT,
            path,
            "an array without an item schema (tuples are not supported; use a struct)",
        ));
    }
    if let Some(Value::Array(alts)) = map.get_mut("anyOf") {
        for (i, alt) in alts.iter_mut().enumerate() {
            let p = child(&child(path, "anyOf"), &i.to_string());
            strict_node(alt, &p, depth, ctx)?;
        }
    }
    Ok(())
}

fn value_chars(v: &Value) -> usize {
    match v {
        Value::String(s) => s.chars().count(),
        other => other.to_string().len(),
    }
}

fn check_openai_limits(ctx: &StrictCtx) -> Result<()> {
    if ctx.max_depth > OPENAI_MAX_DEPTH {
        return Err(unsupported(
            DIALECT,
            &ctx.deepest_path,
            &format!(
                "{} levels of object nesting (limit {OPENAI_MAX_DEPTH})",
                ctx.max_depth
            ),
        ));
    }
    if ctx.properties > OPENAI_MAX_PROPERTIES {
        return Err(unsupported(
            DIALECT,
            "",
            &format!(
                "{} object properties (limit {OPENAI_MAX_PROPERTIES})",
                ctx.properties
            ),
        ));
    }
    if ctx.enum_values > OPENAI_MAX_ENUM_VALUES {
        return Err(unsupported(
            DIALECT,
            "",
            &format!(
                "{} enum values (limit {OPENAI_MAX_ENUM_VALUES})",
                ctx.enum_values
            ),
        ));
    }
    if ctx.chars > OPENAI_MAX_SCHEMA_CHARS {
        return Err(unsupported(
            DIALECT,
            "",
            &format!(
                "{} characters of names and enum values (limit {OPENAI_MAX_SCHEMA_CHARS})",
                ctx.chars
            ),
        ));
    }
    Ok(())
}

/// Whether a schema node already admits `null` (without following `$ref`s).
pub(crate) fn is_nullable(node: &Value) -> bool {
    let Some(map) = node.as_object() else {
        return matches!(node, Value::Bool(true));
    };
    if type_names(map).contains(&"null") {
        return true;
    }
    if let Some(Value::Array(values)) = map.get("enum")
        && values.iter().any(Value::is_null)
    {
        return true;
    }
    if map.get("const").is_some_and(Value::is_null) {
        return true;
    }
    ["anyOf", "oneOf"].iter().any(|k| {
        map.get(*k)
            .and_then(Value::as_array)
            .is_some_and(|alts| alts.iter().any(is_nullable))
    })
}

/// Makes an optional property nullable, the strict-mode way of saying "may be absent".
fn make_nullable(node: &mut Value) {
    let Value::Object(map) = node else { return };
    let is_plain_typed = matches!(map.get("type"), Some(Value::String(_) | Value::Array(_)))
        && !map.contains_key("$ref")
        && !map.contains_key("anyOf")
        && !map.contains_key("const");
    if is_plain_typed {
        match map.get_mut("type") {
            Some(Value::String(t)) => {
                let t = std::mem::take(t);
                map.insert("type".into(), json!([t, "null"]));
            }
            Some(Value::Array(types)) => types.push(Value::String("null".into())),
            _ => {}
        }
        if let Some(Value::Array(values)) = map.get_mut("enum") {
            values.push(Value::Null);
        }
        return;
    }
    let bare_any_of = !map.contains_key("$ref") && !map.contains_key("type");
    if bare_any_of && let Some(Value::Array(alts)) = map.get_mut("anyOf") {
        alts.push(json!({"type": "null"}));
        return;
    }
    let mut inner = std::mem::take(map);
    // Annotations move to the wrapper, where they stay visible to the model.
    for key in ["description", "title"] {
        if let Some(v) = inner.remove(key) {
            map.insert(key.into(), v);
        }
    }
    map.insert(
        "anyOf".into(),
        json!([Value::Object(inner), {"type": "null"}]),
    );
}
