//! The vocabulary of schema transforms: [`SchemaDialect`], [`DroppedConstraint`],
//! [`TransformedSchema`], and the node helpers every dialect's transform uses (JSON pointers,
//! type lists, the object-root rule, annotation keywords).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, ErrorKind, Result};

/// The JSON Schema subset a provider accepts. Which provider speaks which dialect is provider
/// knowledge and lives in `llmkit-providers` (`ProviderKind::schema_dialect`), not here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SchemaDialect {
    /// OpenAI (and Azure OpenAI) `response_format: json_schema` with `strict: true`: every
    /// property required (optional ones made nullable), `additionalProperties: false` on every
    /// object, a keyword whitelist, an object root, and size limits ([`OPENAI_MAX_DEPTH`](super::OPENAI_MAX_DEPTH) and
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

/// The result of [`to_dialect`](super::to_dialect): the schema to send and what it no longer says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformedSchema {
    /// The schema in the provider's dialect.
    pub schema: Value,
    /// Constraints removed on the way, in document order.
    pub dropped: Vec<DroppedConstraint>,
}

/// Keywords that only annotate: removed without a report because they constrain nothing.
pub(crate) const ANNOTATIONS: &[&str] = &[
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

pub(crate) fn unsupported(dialect: SchemaDialect, path: &str, what: &str) -> Error {
    let path = if path.is_empty() { "/" } else { path };
    Error::new(
        ErrorKind::Unsupported,
        format!("{dialect} schema cannot express {what} at {path}"),
    )
}

pub(crate) fn type_names(node: &Map<String, Value>) -> Vec<&str> {
    match node.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn require_object_root(schema: &Value, dialect: SchemaDialect) -> Result<()> {
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

pub(crate) fn child(path: &str, segment: &str) -> String {
    // JSON pointer escaping (RFC 6901): property names may contain `/` or `~`.
    let escaped = segment.replace('~', "~0").replace('/', "~1");
    format!("{path}/{escaped}")
}
