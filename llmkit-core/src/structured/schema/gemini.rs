//! Gemini `responseSchema`: the OpenAPI 3.0 subset. `$ref`s are inlined (recursive types are
//! rejected), `anyOf` with `null` and `type: [T, "null"]` become `nullable: true`, type names
//! are upper-case, enums hold strings only, and unsupported keywords are dropped and reported.

use serde_json::{Map, Value, json};

use super::dialect::{
    ANNOTATIONS, DroppedConstraint, SchemaDialect, TransformedSchema, child, type_names,
    unsupported,
};
use crate::error::Result;

const DIALECT: SchemaDialect = SchemaDialect::Gemini;

struct DefsView<'a> {
    root: &'a Value,
    defs: Option<&'a Map<String, Value>>,
    definitions: Option<&'a Map<String, Value>>,
}

impl DefsView<'_> {
    fn resolve(&self, reference: &str) -> Option<&Value> {
        if reference == "#" {
            return Some(self.root);
        }
        if let Some(name) = reference.strip_prefix("#/$defs/") {
            return self.defs?.get(&unescape(name));
        }
        if let Some(name) = reference.strip_prefix("#/definitions/") {
            return self.definitions?.get(&unescape(name));
        }
        None
    }
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// Fields of Gemini's `Schema` object that are carried over as they are.
const GEMINI_KEEP: &[&str] = &[
    "description",
    "title",
    "enum",
    "required",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "default",
    "example",
    "propertyOrdering",
];

const GEMINI_FORMATS: &[&str] = &["date-time", "enum", "int32", "int64", "float", "double"];

/// Guards against pathological input (inlining can grow a schema exponentially); Gemini would
/// reject such a schema anyway.
const GEMINI_MAX_INLINE_DEPTH: usize = 64;
const GEMINI_MAX_NODES: usize = 20_000;

#[derive(Default)]
struct GeminiCtx {
    stack: Vec<String>,
    dropped: Vec<DroppedConstraint>,
    nodes: usize,
}

impl GeminiCtx {
    fn drop(&mut self, path: &str, keyword: &str, reason: impl Into<String>) {
        self.dropped.push(DroppedConstraint {
            path: path.to_owned(),
            keyword: keyword.into(),
            reason: reason.into(),
        });
    }
}

/// The Gemini form of `schema`, or why it has none.
pub(crate) fn transform(schema: &Value) -> Result<TransformedSchema> {
    let root = schema.as_object();
    let defs = DefsView {
        root: schema,
        defs: root.and_then(|r| r.get("$defs")).and_then(Value::as_object),
        definitions: root
            .and_then(|r| r.get("definitions"))
            .and_then(Value::as_object),
    };
    let mut ctx = GeminiCtx::default();
    // The root is being inlined already: `$ref: "#"` anywhere below is a cycle.
    ctx.stack.push("#".to_owned());
    let schema = gemini_node(schema, "", &defs, &mut ctx)?;
    Ok(TransformedSchema {
        schema,
        dropped: ctx.dropped,
    })
}

/// Converts one node and, recursively, everything below it.
fn gemini_node(
    node: &Value,
    path: &str,
    defs: &DefsView<'_>,
    ctx: &mut GeminiCtx,
) -> Result<Value> {
    ctx.nodes += 1;
    if ctx.stack.len() > GEMINI_MAX_INLINE_DEPTH || path.len() > 4096 {
        return Err(unsupported(DIALECT, path, "a schema nested this deeply"));
    }
    if ctx.nodes > GEMINI_MAX_NODES {
        return Err(unsupported(
            DIALECT,
            path,
            &format!("a schema of more than {GEMINI_MAX_NODES} nodes once references are inlined"),
        ));
    }
    let map = match node {
        Value::Object(map) => map,
        Value::Bool(true) => return Ok(Value::Object(Map::new())),
        _ => return Err(unsupported(DIALECT, path, "a schema that is not an object")),
    };
    if let Some(reference) = map.get("$ref") {
        return inline_ref(map, reference.as_str().unwrap_or_default(), path, defs, ctx);
    }

    let mut out = Map::new();
    let mut nullable = map.get("nullable").and_then(Value::as_bool) == Some(true);
    nullable |= convert_types(map, &mut out);
    let (mut alternatives, null_alternative) = convert_alternatives(map, path, defs, ctx)?;
    nullable |= null_alternative;
    if let Some(Value::Array(all)) = map.get("allOf") {
        // Gemini has no allOf: a single element is the schema itself; more cannot be merged
        // safely, so they are rejected.
        match all.as_slice() {
            [single] => {
                let p = child(&child(path, "allOf"), "0");
                if let Value::Object(m) = gemini_node(single, &p, defs, ctx)? {
                    for (k, v) in m {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            _ => return Err(unsupported(DIALECT, path, "allOf with several schemas")),
        }
    }
    if alternatives.len() == 1 && !out.contains_key("type") {
        if let Some(Value::Object(m)) = alternatives.pop() {
            for (k, v) in m {
                out.entry(k).or_insert(v);
            }
        }
    } else if !alternatives.is_empty() {
        out.insert("anyOf".into(), Value::Array(alternatives));
    }
    for (key, value) in map {
        nullable |= convert_keyword(key, value, path, defs, ctx, &mut out)?;
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

/// The definition `reference` points at, converted in place of the `$ref`; keywords beside
/// the `$ref` (a field's doc comment) override the definition's.
fn inline_ref(
    map: &Map<String, Value>,
    reference: &str,
    path: &str,
    defs: &DefsView<'_>,
    ctx: &mut GeminiCtx,
) -> Result<Value> {
    if ctx.stack.iter().any(|r| r == reference) {
        return Err(unsupported(
            DIALECT,
            path,
            &format!(
                "the recursive reference `{reference}` (break the cycle or use another provider)"
            ),
        ));
    }
    let Some(target) = defs.resolve(reference) else {
        return Err(unsupported(
            DIALECT,
            path,
            &format!("the unresolvable reference `{reference}`"),
        ));
    };
    ctx.stack.push(reference.to_owned());
    let inlined = gemini_node(target, path, defs, ctx);
    ctx.stack.pop();
    let mut inlined = inlined?;
    if let Value::Object(out) = &mut inlined {
        for key in ["description", "title"] {
            if let Some(v) = map.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
    }
    Ok(inlined)
}

/// Types: `[T, "null"]` becomes `T` + nullable; several non-null types become `anyOf`.
/// Returns whether `null` was among them.
fn convert_types(map: &Map<String, Value>, out: &mut Map<String, Value>) -> bool {
    let mut types: Vec<String> = type_names(map).into_iter().map(str::to_owned).collect();
    let nullable = types.iter().any(|t| t == "null");
    types.retain(|t| t != "null");
    match types.as_slice() {
        [] => {}
        [single] => {
            out.insert("type".into(), Value::String(single.to_ascii_uppercase()));
        }
        several => {
            let alts = several
                .iter()
                .map(|t| json!({"type": t.to_ascii_uppercase()}))
                .collect();
            out.insert("anyOf".into(), Value::Array(alts));
        }
    }
    nullable
}

/// The converted `anyOf`/`oneOf` alternatives, without `{"type": "null"}` ones; the flag says
/// whether there was one.
fn convert_alternatives(
    map: &Map<String, Value>,
    path: &str,
    defs: &DefsView<'_>,
    ctx: &mut GeminiCtx,
) -> Result<(Vec<Value>, bool)> {
    let mut alternatives = Vec::new();
    let mut nullable = false;
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(alts)) = map.get(key) else {
            continue;
        };
        if key == "oneOf" {
            ctx.drop(
                path,
                "oneOf",
                "rewritten as anyOf; exclusivity is checked client-side",
            );
        }
        for (i, alt) in alts.iter().enumerate() {
            let is_null = alt
                .as_object()
                .is_some_and(|m| type_names(m) == ["null"] && m.len() == 1);
            if is_null {
                nullable = true;
                continue;
            }
            let p = child(&child(path, key), &i.to_string());
            alternatives.push(gemini_node(alt, &p, defs, ctx)?);
        }
    }
    Ok((alternatives, nullable))
}

/// Carries one keyword over, converts it, or drops and reports it. Returns whether it made the
/// node nullable (a `null` enum value or constant).
fn convert_keyword(
    key: &str,
    value: &Value,
    path: &str,
    defs: &DefsView<'_>,
    ctx: &mut GeminiCtx,
    out: &mut Map<String, Value>,
) -> Result<bool> {
    match key {
        // Handled by the caller.
        "type" | "anyOf" | "oneOf" | "allOf" | "nullable" | "$defs" | "definitions" => {}
        "properties" => {
            if let Value::Object(props) = value {
                let mut converted = Map::new();
                for (name, prop) in props {
                    let p = child(&child(path, "properties"), name);
                    converted.insert(name.clone(), gemini_node(prop, &p, defs, ctx)?);
                }
                out.insert("properties".into(), Value::Object(converted));
            }
        }
        "items" => match value {
            Value::Object(_) => {
                let p = child(path, "items");
                out.insert("items".into(), gemini_node(value, &p, defs, ctx)?);
            }
            Value::Bool(true) => {}
            _ => ctx.drop(path, "items", "gemini accepts only a single item schema"),
        },
        "enum" => return Ok(convert_enum(value, path, ctx, out)),
        "const" => match value {
            Value::String(_) => {
                out.insert("enum".into(), json!([value]));
                out.entry("type").or_insert_with(|| json!("STRING"));
            }
            Value::Null => return Ok(true),
            _ => ctx.drop(
                path,
                "const",
                "gemini has no const; only string constants become enums",
            ),
        },
        "format" => {
            if value.as_str().is_some_and(|f| GEMINI_FORMATS.contains(&f)) {
                out.insert("format".into(), value.clone());
            } else {
                ctx.drop(
                    path,
                    "format",
                    format!("format {value} is not supported by gemini"),
                );
            }
        }
        "additionalProperties" => {
            if value != &Value::Bool(true) {
                ctx.drop(path, "additionalProperties", "not supported by gemini");
            }
        }
        k if GEMINI_KEEP.contains(&k) => {
            out.insert(key.to_owned(), value.clone());
        }
        k if ANNOTATIONS.contains(&k) => {}
        _ => ctx.drop(path, key, "not supported by gemini"),
    }
    Ok(false)
}

/// String enums carry over (typed `STRING`); a `null` member makes the node nullable (the
/// return value); other members cannot be expressed and drop the enum.
fn convert_enum(
    value: &Value,
    path: &str,
    ctx: &mut GeminiCtx,
    out: &mut Map<String, Value>,
) -> bool {
    let Value::Array(values) = value else {
        return false;
    };
    let strings: Vec<Value> = values.iter().filter(|v| v.is_string()).cloned().collect();
    let non_null = values.iter().filter(|v| !v.is_null()).count();
    if strings.len() == non_null && !strings.is_empty() {
        out.insert("enum".into(), Value::Array(strings));
        out.entry("type").or_insert_with(|| json!("STRING"));
    } else if non_null > 0 {
        ctx.drop(path, "enum", "gemini enums hold strings only");
    }
    values.iter().any(Value::is_null)
}
