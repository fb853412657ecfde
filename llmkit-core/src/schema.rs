//! JSON Schema dialect transforms shared by every provider.
//!
//! A Rust type's schema comes from schemars ([`schema_for`]); each provider accepts a different
//! subset of JSON Schema. [`to_dialect`] turns the full schema into the form one provider accepts
//! ([`SchemaDialect`]) and returns a [`TransformedSchema`]: the schema to send plus every
//! [`DroppedConstraint`] the provider cannot enforce. Nothing is lost silently: the
//! structured-output machinery always re-checks a reply against the **original** schema
//! client-side, so a dropped `maxLength` still holds.
//!
//! A schema a provider cannot express at all (a map under OpenAI strict mode, a recursive type
//! for Gemini, a non-object root for a tool input) is rejected with an
//! [`ErrorKind::Unsupported`] error that names the JSON pointer of the offending node; callers
//! may then fall back to a non-strict mode or to [`SchemaDialect::PromptOnly`].
//!
//! ```
//! use llmkit_core::schema::{to_dialect, SchemaDialect};
//! use serde_json::json;
//!
//! let schema = json!({
//!     "type": "object",
//!     "properties": {
//!         "name": {"type": "string", "maxLength": 40},
//!         "nickname": {"type": ["string", "null"]}
//!     },
//!     "required": ["name"]
//! });
//! let out = to_dialect(&schema, SchemaDialect::OpenAiStrict)?;
//! assert_eq!(out.schema["additionalProperties"], json!(false));
//! assert_eq!(out.schema["required"], json!(["name", "nickname"]));
//! assert_eq!(out.dropped[0].keyword, "maxLength");
//! # Ok::<(), llmkit_core::Error>(())
//! ```

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, ErrorKind, Result};

/// The JSON Schema subset a provider accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SchemaDialect {
    /// OpenAI (and Azure OpenAI) `response_format: json_schema` with `strict: true`: every
    /// property required (optional ones made nullable), `additionalProperties: false` on every
    /// object, a keyword whitelist, an object root, and size limits ([`OPENAI_MAX_DEPTH`] and
    /// friends). `$defs`/`$ref` are kept.
    OpenAiStrict,
    /// Anthropic tool `input_schema` (used to force structured output through a tool call):
    /// plain JSON Schema with an object root.
    Anthropic,
    /// Gemini `responseSchema`: the OpenAPI 3.0 subset. `$ref`s are inlined (recursive types are
    /// rejected), `anyOf` with `null` and `type: [T, "null"]` become `nullable: true`, and
    /// unsupported keywords (`additionalProperties`, `const`, `exclusiveMinimum`, ...) are dropped.
    Gemini,
    /// Ollama `format`: plain JSON Schema, sent unchanged except for `$schema`.
    Ollama,
    /// No native support: the schema goes into the instructions unchanged.
    PromptOnly,
}

impl SchemaDialect {
    /// The dialect for an OpenTelemetry provider name (`openai`, `azure.ai.openai`,
    /// `anthropic`, `gcp.gemini`, `gemini`, `ollama`); anything else is [`SchemaDialect::PromptOnly`].
    pub fn for_provider(provider: &str) -> Self {
        match provider {
            "openai" | "azure.ai.openai" | "azure" => SchemaDialect::OpenAiStrict,
            "anthropic" => SchemaDialect::Anthropic,
            "gcp.gemini" | "gemini" | "gcp.vertex_ai" => SchemaDialect::Gemini,
            "ollama" => SchemaDialect::Ollama,
            _ => SchemaDialect::PromptOnly,
        }
    }

    /// A stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaDialect::OpenAiStrict => "openai_strict",
            SchemaDialect::Anthropic => "anthropic",
            SchemaDialect::Gemini => "gemini",
            SchemaDialect::Ollama => "ollama",
            SchemaDialect::PromptOnly => "prompt_only",
        }
    }
}

impl fmt::Display for SchemaDialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A constraint the target dialect cannot enforce, removed from the schema sent to the provider.
/// The original schema still checks it client-side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedConstraint {
    /// JSON pointer of the schema node that held it, e.g. `/properties/name`.
    pub path: String,
    /// The keyword, e.g. `maxLength`.
    pub keyword: String,
    /// Why it was dropped.
    pub reason: String,
}

impl fmt::Display for DroppedConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {} ({})", self.keyword, self.reason)
    }
}

/// The result of [`to_dialect`]: the schema to send and what it no longer says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformedSchema {
    /// The schema in the provider's dialect.
    pub schema: Value,
    /// Constraints removed on the way, in document order.
    pub dropped: Vec<DroppedConstraint>,
}

/// OpenAI strict mode: deepest object nesting accepted.
pub const OPENAI_MAX_DEPTH: usize = 10;
/// OpenAI strict mode: most object properties accepted across the whole schema.
pub const OPENAI_MAX_PROPERTIES: usize = 5000;
/// OpenAI strict mode: most enum values accepted across the whole schema.
pub const OPENAI_MAX_ENUM_VALUES: usize = 1000;
/// OpenAI strict mode: most characters of property names, definition names, enum and const
/// values accepted across the whole schema.
pub const OPENAI_MAX_SCHEMA_CHARS: usize = 120_000;

/// The JSON Schema of `T` as schemars generates it (draft 2020-12).
///
/// ```
/// #[derive(schemars::JsonSchema)]
/// struct Verdict { decision: String, confidence: f64 }
/// let schema = llmkit_core::schema::schema_for::<Verdict>();
/// assert_eq!(schema["type"], "object");
/// ```
pub fn schema_for<T: schemars::JsonSchema + ?Sized>() -> Value {
    schemars::SchemaGenerator::default()
        .into_root_schema_for::<T>()
        .to_value()
}

/// Transforms `schema` into `dialect`, reporting every constraint it had to drop.
///
/// Never panics; fails with [`ErrorKind::Unsupported`] when the dialect cannot express the
/// schema (the message names the node's JSON pointer and what to change).
pub fn to_dialect(schema: &Value, dialect: SchemaDialect) -> Result<TransformedSchema> {
    let mut out = TransformedSchema {
        schema: schema.clone(),
        dropped: Vec::new(),
    };
    match dialect {
        SchemaDialect::PromptOnly => {}
        SchemaDialect::Ollama => {
            if let Value::Object(map) = &mut out.schema {
                map.remove("$schema");
            }
        }
        SchemaDialect::Anthropic => {
            require_object_root(schema, dialect)?;
            if let Value::Object(map) = &mut out.schema {
                map.remove("$schema");
            }
        }
        SchemaDialect::OpenAiStrict => {
            require_object_root(schema, dialect)?;
            if let Value::Object(map) = &mut out.schema {
                map.remove("$schema");
            }
            let mut ctx = StrictCtx::default();
            strict_node(&mut out.schema, "", 1, &mut ctx)?;
            check_openai_limits(&ctx)?;
            out.dropped = ctx.dropped;
        }
        SchemaDialect::Gemini => {
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
            out.schema = gemini_node(schema, "", &defs, &mut ctx)?;
            out.dropped = ctx.dropped;
        }
    }
    Ok(out)
}

fn unsupported(dialect: SchemaDialect, path: &str, what: &str) -> Error {
    let path = if path.is_empty() { "/" } else { path };
    Error::new(
        ErrorKind::Unsupported,
        format!("{dialect} schema cannot express {what} at {path}"),
    )
}

fn type_names(node: &Map<String, Value>) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn require_object_root(schema: &Value, dialect: SchemaDialect) -> Result<()> {
    let Some(root) = schema.as_object() else {
        return Err(unsupported(
            dialect,
            "",
            "a non-object root (wrap the type in a struct)",
        ));
    };
    let types = type_names(root);
    let is_object = types == ["object"] || (types.is_empty() && root.contains_key("properties"));
    if is_object && !root.contains_key("anyOf") && !root.contains_key("oneOf") {
        Ok(())
    } else {
        Err(unsupported(
            dialect,
            "",
            "a root that is not a plain object (wrap the type in a struct)",
        ))
    }
}

fn child(path: &str, segment: &str) -> String {
    // JSON pointer escaping (RFC 6901): property names may contain `/` or `~`.
    let escaped = segment.replace('~', "~0").replace('/', "~1");
    format!("{path}/{escaped}")
}

// ---------------------------------------------------------------------------------------------
// OpenAI strict

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

/// Keywords that only annotate: removed without a report because they constrain nothing.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "$comment",
    "default",
    "examples",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
    "contentEncoding",
    "contentMediaType",
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

fn strict_node(node: &mut Value, path: &str, depth: usize, ctx: &mut StrictCtx) -> Result<()> {
    let dialect = SchemaDialect::OpenAiStrict;
    let map = match node {
        Value::Object(map) => map,
        Value::Bool(true) => {
            return Err(unsupported(dialect, path, "a schema accepting any value"));
        }
        Value::Bool(false) => return Err(unsupported(dialect, path, "a schema accepting nothing")),
        _ => return Err(unsupported(dialect, path, "a schema that is not an object")),
    };

    // oneOf is not accepted; anyOf is. For disjoint alternatives (what serde enums produce)
    // the two mean the same; the exclusivity is re-checked client-side.
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
        // A single-element allOf (older generators wrap `$ref` + description this way) is the
        // element itself.
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
            _ => return Err(unsupported(dialect, path, "allOf with several schemas")),
        }
    }

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
        if ref_only && matches!(key.as_str(), "description" | "title") {
            map.remove(&key);
            continue;
        }
        map.remove(&key);
        if !ANNOTATIONS.contains(&key.as_str()) {
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

    if let Some(Value::Array(values)) = map.get("enum") {
        ctx.enum_values += values.len();
        ctx.chars += values.iter().map(value_chars).sum::<usize>();
    }
    if let Some(v) = map.get("const") {
        ctx.chars += value_chars(v);
    }

    let types: Vec<String> = type_names(map).into_iter().map(str::to_owned).collect();
    let is_object = types.iter().any(|t| t == "object") || map.contains_key("properties");
    let has_shape = !types.is_empty()
        || map.contains_key("$ref")
        || map.contains_key("anyOf")
        || map.contains_key("enum")
        || map.contains_key("const")
        || map.contains_key("properties");
    if !has_shape {
        return Err(unsupported(
            dialect,
            path,
            "a schema accepting any value (give the field a concrete type)",
        ));
    }

    let mut child_depth = depth;
    if is_object {
        if depth > ctx.max_depth {
            ctx.max_depth = depth;
            ctx.deepest_path = path.to_owned();
        }
        child_depth = depth + 1;
        match map.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) if !map.contains_key("properties") => {
                return Err(unsupported(
                    dialect,
                    path,
                    "an open object (use a struct with named fields)",
                ));
            }
            Some(Value::Bool(true)) => {}
            Some(_) => {
                return Err(unsupported(
                    dialect,
                    path,
                    "a map with free-form keys (use a vec of key/value structs)",
                ));
            }
        }
        if !map.contains_key("properties") && !types.is_empty() {
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
    }

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
            return Err(unsupported(dialect, path, "a non-schema `items`"));
        }
        None => {}
    }
    if types.iter().any(|t| t == "array") && !map.contains_key("items") {
        return Err(unsupported(
            dialect,
            path,
            "an array without an item schema (tuples are not supported; use a struct)",
        ));
    }
    if let Some(Value::Array(alts)) = map.get_mut("anyOf") {
        for (i, alt) in alts.iter_mut().enumerate() {
            strict_node(
                alt,
                &child(&child(path, "anyOf"), &i.to_string()),
                depth,
                ctx,
            )?;
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
    let dialect = SchemaDialect::OpenAiStrict;
    if ctx.max_depth > OPENAI_MAX_DEPTH {
        return Err(unsupported(
            dialect,
            &ctx.deepest_path,
            &format!(
                "{} levels of object nesting (limit {OPENAI_MAX_DEPTH})",
                ctx.max_depth
            ),
        ));
    }
    if ctx.properties > OPENAI_MAX_PROPERTIES {
        return Err(unsupported(
            dialect,
            "",
            &format!(
                "{} object properties (limit {OPENAI_MAX_PROPERTIES})",
                ctx.properties
            ),
        ));
    }
    if ctx.enum_values > OPENAI_MAX_ENUM_VALUES {
        return Err(unsupported(
            dialect,
            "",
            &format!(
                "{} enum values (limit {OPENAI_MAX_ENUM_VALUES})",
                ctx.enum_values
            ),
        ));
    }
    if ctx.chars > OPENAI_MAX_SCHEMA_CHARS {
        return Err(unsupported(
            dialect,
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
fn is_nullable(node: &Value) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Gemini (OpenAPI 3.0 subset)

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

fn gemini_node(
    node: &Value,
    path: &str,
    defs: &DefsView<'_>,
    ctx: &mut GeminiCtx,
) -> Result<Value> {
    let dialect = SchemaDialect::Gemini;
    ctx.nodes += 1;
    if ctx.stack.len() > GEMINI_MAX_INLINE_DEPTH || path.len() > 4096 {
        return Err(unsupported(dialect, path, "a schema nested this deeply"));
    }
    if ctx.nodes > GEMINI_MAX_NODES {
        return Err(unsupported(
            dialect,
            path,
            &format!("a schema of more than {GEMINI_MAX_NODES} nodes once references are inlined"),
        ));
    }
    let map = match node {
        Value::Object(map) => map,
        Value::Bool(true) => return Ok(Value::Object(Map::new())),
        _ => return Err(unsupported(dialect, path, "a schema that is not an object")),
    };

    if let Some(reference) = map.get("$ref") {
        let reference = reference.as_str().unwrap_or_default().to_owned();
        if ctx.stack.contains(&reference) {
            return Err(unsupported(
                dialect,
                path,
                &format!(
                    "the recursive reference `{reference}` (break the cycle or use another provider)"
                ),
            ));
        }
        let Some(target) = defs.resolve(&reference) else {
            return Err(unsupported(
                dialect,
                path,
                &format!("the unresolvable reference `{reference}`"),
            ));
        };
        ctx.stack.push(reference);
        let inlined = gemini_node(target, path, defs, ctx);
        ctx.stack.pop();
        let mut inlined = inlined?;
        // Keywords beside `$ref` (a field's doc comment) override the definition's.
        if let Value::Object(out) = &mut inlined {
            for key in ["description", "title"] {
                if let Some(v) = map.get(key) {
                    out.insert(key.into(), v.clone());
                }
            }
        }
        return Ok(inlined);
    }

    let mut out = Map::new();
    let mut nullable = map.get("nullable").and_then(Value::as_bool) == Some(true);

    // Types: `[T, "null"]` becomes `T` + nullable; several non-null types become anyOf.
    let mut types: Vec<String> = type_names(map).into_iter().map(str::to_owned).collect();
    if types.iter().any(|t| t == "null") {
        nullable = true;
        types.retain(|t| t != "null");
    }
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

    let mut alternatives: Vec<Value> = Vec::new();
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = map.get(key) {
            if key == "oneOf" {
                ctx.dropped.push(DroppedConstraint {
                    path: path.to_owned(),
                    keyword: "oneOf".into(),
                    reason: "rewritten as anyOf; exclusivity is checked client-side".into(),
                });
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
    }
    if let Some(Value::Array(all)) = map.get("allOf") {
        // Gemini has no allOf: a single element is the schema itself; more cannot be merged
        // safely, so they are rejected.
        match all.as_slice() {
            [single] => {
                let p = child(&child(path, "allOf"), "0");
                let merged = gemini_node(single, &p, defs, ctx)?;
                if let Value::Object(m) = merged {
                    for (k, v) in m {
                        out.entry(k).or_insert(v);
                    }
                }
            }
            _ => return Err(unsupported(dialect, path, "allOf with several schemas")),
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
        match key.as_str() {
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
                _ => ctx.dropped.push(DroppedConstraint {
                    path: path.to_owned(),
                    keyword: "items".into(),
                    reason: "gemini accepts only a single item schema".into(),
                }),
            },
            "enum" => {
                if let Value::Array(values) = value {
                    if values.iter().any(Value::is_null) {
                        nullable = true;
                    }
                    let strings: Vec<Value> =
                        values.iter().filter(|v| v.is_string()).cloned().collect();
                    let non_null = values.iter().filter(|v| !v.is_null()).count();
                    if strings.len() == non_null && !strings.is_empty() {
                        out.insert("enum".into(), Value::Array(strings));
                        out.entry("type").or_insert_with(|| json!("STRING"));
                    } else if non_null > 0 {
                        ctx.dropped.push(DroppedConstraint {
                            path: path.to_owned(),
                            keyword: "enum".into(),
                            reason: "gemini enums hold strings only".into(),
                        });
                    }
                }
            }
            "const" => match value {
                Value::String(_) => {
                    out.insert("enum".into(), json!([value]));
                    out.entry("type").or_insert_with(|| json!("STRING"));
                }
                Value::Null => nullable = true,
                _ => ctx.dropped.push(DroppedConstraint {
                    path: path.to_owned(),
                    keyword: "const".into(),
                    reason: "gemini has no const; only string constants become enums".into(),
                }),
            },
            "format" => {
                if value.as_str().is_some_and(|f| GEMINI_FORMATS.contains(&f)) {
                    out.insert("format".into(), value.clone());
                } else {
                    ctx.dropped.push(DroppedConstraint {
                        path: path.to_owned(),
                        keyword: "format".into(),
                        reason: format!("format {value} is not supported by gemini"),
                    });
                }
            }
            "additionalProperties" => {
                if value != &Value::Bool(true) {
                    ctx.dropped.push(DroppedConstraint {
                        path: path.to_owned(),
                        keyword: "additionalProperties".into(),
                        reason: "not supported by gemini".into(),
                    });
                }
            }
            k if GEMINI_KEEP.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            k if ANNOTATIONS.contains(&k) => {}
            _ => ctx.dropped.push(DroppedConstraint {
                path: path.to_owned(),
                keyword: key.clone(),
                reason: "not supported by gemini".into(),
            }),
        }
    }
    if nullable {
        out.insert("nullable".into(), Value::Bool(true));
    }
    Ok(Value::Object(out))
}

/// A name providers accept for a schema or tool: `^[a-zA-Z0-9_-]{1,64}$` (OpenAI schema names,
/// Anthropic and OpenAI tool names). Other characters become `_` (schemars names generics
/// `Page<Item>`), the result is cut at 64 characters, and an empty name becomes `fallback`.
pub fn wire_name(raw: &str, fallback: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if cleaned.is_empty() {
        fallback.to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use proptest::prelude::*;
    use schemars::JsonSchema;

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    enum Decision {
        Approve,
        Reject,
        Escalate,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Address {
        street: String,
        city: String,
        zip: Option<String>,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Contact {
        Email { address: String },
        Phone { number: String, ext: Option<u32> },
    }

    /// A typical extraction target.
    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Customer {
        /// Full name.
        name: String,
        age: Option<u8>,
        decision: Decision,
        /// Where the customer lives.
        address: Address,
        /// The address before the last move.
        previous: Option<Address>,
        tags: Vec<String>,
        contacts: Vec<Contact>,
        #[schemars(length(max = 40))]
        nickname: String,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct WithMap {
        scores: BTreeMap<String, f64>,
    }

    #[allow(dead_code)]
    #[derive(JsonSchema)]
    struct Tree {
        label: String,
        children: Vec<Tree>,
    }

    /// Every object node in `v` (outside `$defs` keys themselves).
    fn objects(v: &Value, out: &mut Vec<Map<String, Value>>) {
        match v {
            Value::Object(m) => {
                if m.contains_key("properties") {
                    out.push(m.clone());
                }
                for (_, c) in m {
                    objects(c, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| objects(c, out)),
            _ => {}
        }
    }

    fn keys_anywhere(v: &Value, key: &str) -> bool {
        match v {
            Value::Object(m) => m.contains_key(key) || m.values().any(|c| keys_anywhere(c, key)),
            Value::Array(a) => a.iter().any(|c| keys_anywhere(c, key)),
            _ => false,
        }
    }

    #[test]
    fn openai_strict_requires_everything_and_closes_objects() {
        let schema = schema_for::<Customer>();
        let out = to_dialect(&schema, SchemaDialect::OpenAiStrict).unwrap();
        let mut objs = Vec::new();
        objects(&out.schema, &mut objs);
        assert!(objs.len() >= 4, "{:#}", out.schema);
        for o in &objs {
            assert_eq!(o["additionalProperties"], json!(false), "{o:?}");
            let props: Vec<&String> = o["properties"].as_object().unwrap().keys().collect();
            let req: Vec<&str> = o["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(props.len(), req.len());
        }
        assert!(!keys_anywhere(&out.schema, "oneOf"));
        assert!(!keys_anywhere(&out.schema, "$schema"));
        assert!(keys_anywhere(&out.schema, "$defs"), "defs stay");
        // The optional nested struct may be null; the max length and u8 format were reported.
        assert!(is_nullable(&out.schema["properties"]["previous"]));
        assert!(is_nullable(&out.schema["properties"]["age"]));
        assert!(!is_nullable(&out.schema["properties"]["name"]));
        let kw: Vec<&str> = out.dropped.iter().map(|d| d.keyword.as_str()).collect();
        assert!(kw.contains(&"maxLength"), "{kw:?}");
        assert!(kw.contains(&"format"), "{kw:?}");
        assert!(
            out.dropped
                .iter()
                .any(|d| d.path == "/properties/nickname" && d.keyword == "maxLength")
        );
    }

    #[test]
    fn openai_strict_makes_optional_non_option_fields_nullable() {
        let schema = json!({
            "type": "object",
            "properties": {
                "a": {"type": "string", "enum": ["x", "y"]},
                "b": {"$ref": "#/$defs/B", "description": "bee"},
                "c": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
                "d": {"type": "integer"}
            },
            "required": ["d"],
            "$defs": {"B": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]}}
        });
        let out = to_dialect(&schema, SchemaDialect::OpenAiStrict)
            .unwrap()
            .schema;
        assert_eq!(out["properties"]["a"]["type"], json!(["string", "null"]));
        assert_eq!(out["properties"]["a"]["enum"], json!(["x", "y", null]));
        assert_eq!(
            out["properties"]["b"],
            json!({"anyOf": [{"$ref": "#/$defs/B"}, {"type": "null"}], "description": "bee"})
        );
        assert_eq!(out["properties"]["c"]["anyOf"][2], json!({"type": "null"}));
        assert_eq!(out["properties"]["d"], json!({"type": "integer"}));
        assert_eq!(out["$defs"]["B"]["additionalProperties"], json!(false));
    }

    #[test]
    fn openai_strict_leaves_nothing_beside_ref() {
        let schema = json!({
            "type": "object",
            "properties": {"b": {"$ref": "#/$defs/B", "description": "bee", "maxLength": 3}},
            "required": ["b"],
            "$defs": {"B": {"type": "string"}}
        });
        let out = to_dialect(&schema, SchemaDialect::OpenAiStrict).unwrap();
        assert_eq!(out.schema["properties"]["b"], json!({"$ref": "#/$defs/B"}));
        assert_eq!(out.dropped.len(), 1, "{:?}", out.dropped);
        assert_eq!(out.dropped[0].keyword, "maxLength");
        // Every `$ref` in a schemars schema ends up alone.
        fn refs_alone(v: &Value) -> bool {
            match v {
                Value::Object(m) if m.contains_key("$ref") => m.len() == 1,
                Value::Object(m) => m.values().all(refs_alone),
                Value::Array(a) => a.iter().all(refs_alone),
                _ => true,
            }
        }
        let out = to_dialect(&schema_for::<Customer>(), SchemaDialect::OpenAiStrict).unwrap();
        assert!(refs_alone(&out.schema), "{:#}", out.schema);
    }

    #[test]
    fn openai_strict_rejects_maps_and_non_object_roots() {
        let err = to_dialect(&schema_for::<WithMap>(), SchemaDialect::OpenAiStrict).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.message().contains("/properties/scores"), "{err}");
        assert!(err.message().contains("map"), "{err}");

        let err =
            to_dialect(&schema_for::<Vec<String>>(), SchemaDialect::OpenAiStrict).unwrap_err();
        assert!(err.message().contains("wrap the type in a struct"), "{err}");
        let err = to_dialect(&schema_for::<Decision>(), SchemaDialect::Anthropic).unwrap_err();
        assert!(err.message().starts_with("anthropic schema"), "{err}");
    }

    #[test]
    fn openai_strict_enforces_nesting_limit() {
        let mut schema = json!({"type": "object", "properties": {"leaf": {"type": "string"}}, "required": ["leaf"]});
        for _ in 0..OPENAI_MAX_DEPTH {
            schema = json!({"type": "object", "properties": {"n": schema}, "required": ["n"]});
        }
        let err = to_dialect(&schema, SchemaDialect::OpenAiStrict).unwrap_err();
        assert!(err.message().contains("levels of object nesting"), "{err}");
        // One level less is fine.
        let ok = schema["properties"]["n"].clone();
        to_dialect(&ok, SchemaDialect::OpenAiStrict).unwrap();
    }

    #[test]
    fn openai_strict_allows_recursion_through_defs() {
        let out = to_dialect(&schema_for::<Tree>(), SchemaDialect::OpenAiStrict).unwrap();
        assert!(keys_anywhere(&out.schema, "$ref"));
    }

    #[test]
    fn anthropic_keeps_the_schema() {
        let schema = schema_for::<Customer>();
        let out = to_dialect(&schema, SchemaDialect::Anthropic).unwrap();
        assert!(out.dropped.is_empty());
        assert_eq!(out.schema["properties"], schema["properties"]);
        assert!(out.schema.get("$schema").is_none());
    }

    #[test]
    fn gemini_inlines_refs_and_uses_nullable() {
        let out = to_dialect(&schema_for::<Customer>(), SchemaDialect::Gemini).unwrap();
        let s = &out.schema;
        assert!(!keys_anywhere(s, "$ref"), "{s:#}");
        assert!(!keys_anywhere(s, "$defs"));
        assert!(!keys_anywhere(s, "additionalProperties"));
        assert!(!keys_anywhere(s, "oneOf"));
        assert_eq!(s["type"], "OBJECT");
        assert_eq!(s["properties"]["age"]["type"], "INTEGER");
        assert_eq!(s["properties"]["age"]["nullable"], true);
        assert_eq!(s["properties"]["previous"]["nullable"], true);
        assert_eq!(s["properties"]["previous"]["type"], "OBJECT");
        assert_eq!(
            s["properties"]["address"]["properties"]["city"]["type"],
            "STRING"
        );
        assert_eq!(
            s["properties"]["decision"]["enum"],
            json!(["Approve", "Reject", "Escalate"])
        );
        assert_eq!(s["properties"]["name"]["description"], "Full name.");
        assert_eq!(
            s["properties"]["address"]["description"],
            "Where the customer lives."
        );
        assert_eq!(s["properties"]["nickname"]["maxLength"], 40);
        // Internally tagged enum: `const` tags become single-value enums.
        let contact = &s["properties"]["contacts"]["items"]["anyOf"];
        assert_eq!(contact[0]["properties"]["kind"]["enum"], json!(["email"]));
    }

    #[test]
    fn gemini_rejects_recursion_and_maps_lose_additional_properties() {
        let err = to_dialect(&schema_for::<Tree>(), SchemaDialect::Gemini).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported);
        assert!(err.message().contains("recursive reference"), "{err}");
        let out = to_dialect(&schema_for::<WithMap>(), SchemaDialect::Gemini).unwrap();
        assert!(
            out.dropped
                .iter()
                .any(|d| d.keyword == "additionalProperties" && d.path == "/properties/scores")
        );
    }

    #[test]
    fn ollama_and_prompt_only_keep_the_schema() {
        let schema = schema_for::<WithMap>();
        let o = to_dialect(&schema, SchemaDialect::Ollama).unwrap();
        assert_eq!(o.schema["properties"], schema["properties"]);
        assert!(o.schema.get("$schema").is_none());
        let p = to_dialect(&schema, SchemaDialect::PromptOnly).unwrap();
        assert_eq!(p.schema, schema);
    }

    #[test]
    fn provider_names_map_to_dialects() {
        assert_eq!(
            SchemaDialect::for_provider("openai"),
            SchemaDialect::OpenAiStrict
        );
        assert_eq!(
            SchemaDialect::for_provider("gcp.gemini"),
            SchemaDialect::Gemini
        );
        assert_eq!(
            SchemaDialect::for_provider("scripted"),
            SchemaDialect::PromptOnly
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            prop::sample::select(vec![
                "object",
                "array",
                "string",
                "null",
                "integer",
                "#/$defs/A",
                "#/$defs/B",
                "#/definitions/A",
                "x"
            ])
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec![
                        "type",
                        "properties",
                        "required",
                        "items",
                        "anyOf",
                        "oneOf",
                        "allOf",
                        "$ref",
                        "$defs",
                        "definitions",
                        "enum",
                        "const",
                        "format",
                        "additionalProperties",
                        "nullable",
                        "A",
                        "B",
                        "minLength"
                    ])
                    .prop_map(str::to_owned),
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn no_dialect_panics_on_arbitrary_json(v in arb_json()) {
            for d in [
                SchemaDialect::OpenAiStrict,
                SchemaDialect::Anthropic,
                SchemaDialect::Gemini,
                SchemaDialect::Ollama,
                SchemaDialect::PromptOnly,
            ] {
                let _ = to_dialect(&v, d);
            }
        }
    }
}
