//! JSON Schema dialect transforms shared by every provider.
//!
//! The files: [`dialect`] names the dialects and what a transform returns (and the node helpers
//! every transform shares); [`openai`] is OpenAI strict mode; [`gemini`] is Gemini's OpenAPI
//! subset; Anthropic, Ollama and prompt-only need no file of their own (an object root check
//! and `$schema` removal, in [`to_dialect`]).
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
//! [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) error that names the JSON pointer of the offending node; callers
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

pub mod dialect;
pub mod gemini;
pub mod openai;

use serde_json::Value;

pub use dialect::{DroppedConstraint, SchemaDialect, TransformedSchema};
pub use openai::{
    OPENAI_MAX_DEPTH, OPENAI_MAX_ENUM_VALUES, OPENAI_MAX_PROPERTIES, OPENAI_MAX_SCHEMA_CHARS,
};

use crate::error::Result;
use dialect::require_object_root;

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
/// Never panics; fails with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) when the
/// dialect cannot express the schema (the message names the node's JSON pointer and what to
/// change).
pub fn to_dialect(schema: &Value, dialect: SchemaDialect) -> Result<TransformedSchema> {
    match dialect {
        SchemaDialect::OpenAiStrict => openai::strict(schema),
        SchemaDialect::Gemini => gemini::transform(schema),
        SchemaDialect::Anthropic => {
            require_object_root(schema, dialect)?;
            Ok(without_schema_keyword(schema))
        }
        SchemaDialect::Ollama => Ok(without_schema_keyword(schema)),
        SchemaDialect::PromptOnly => Ok(TransformedSchema {
            schema: schema.clone(),
            dropped: Vec::new(),
        }),
    }
}

/// `schema` as it is but for the root `$schema` keyword, which providers reject or ignore.
fn without_schema_keyword(schema: &Value) -> TransformedSchema {
    let mut schema = schema.clone();
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
    }
    TransformedSchema {
        schema,
        dropped: Vec::new(),
    }
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
mod tests;
