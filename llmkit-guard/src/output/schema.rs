//! JSON Schema conformance of the model's answer.
//!
//! [`SchemaGuard`] compiles the schema once, at construction, with the `jsonschema` crate, then
//! checks each answer: the whole text, or the first fenced ```` ```json ```` block, or the outermost
//! `{...}` / `[...]` span, must parse and validate. Reasons list the first three violations with
//! their JSON pointer.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use llmkit_guard::{Guard, GuardContext};
//! use llmkit_guard::output::schema::SchemaGuard;
//!
//! let g = SchemaGuard::new(&serde_json::json!({
//!     "type": "object", "required": ["amount"],
//!     "properties": {"amount": {"type": "number", "maximum": 100}}
//! }))?;
//! let ctx = GuardContext::output();
//! assert!(g.check(r#"{"amount": 20}"#, &ctx).await.is_allow());
//! let d = g.check(r#"{"amount": 500}"#, &ctx).await;
//! assert!(d.is_block());
//! assert!(d.reason().contains("/amount"));
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use async_trait::async_trait;
use llmkit_core::Error;
use serde_json::Value;

use crate::guard::{Action, Decision, Guard, GuardContext, Verdict};

/// Compiles a JSON Schema into a validator.
///
/// # Errors
/// [`llmkit_core::ErrorKind::Config`] when the schema itself is invalid.
pub fn compile_schema(schema: &Value) -> Result<jsonschema::Validator, Error> {
    jsonschema::validator_for(schema)
        .map_err(|e| Error::config(format!("invalid json schema: {e}")))
}

// How a violation reads is llmkit-core's (`pointer: message`, one bounded line), shared with the
// structured-output re-ask.
pub use llmkit_core::structured::violations;

/// The JSON value in a model's answer: the whole text, a fenced json block, or the outermost
/// object or array.
pub fn extract_json(text: &str) -> Option<Value> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str(t) {
        return Some(v);
    }
    if let Some(start) = t.find("```") {
        let after = t.get(start + 3..)?;
        let body_start = after.find('\n').map(|i| i + 1).unwrap_or(0);
        let body = after.get(body_start..)?;
        if let Some(end) = body.find("```") {
            if let Ok(v) = serde_json::from_str(body.get(..end)?.trim()) {
                return Some(v);
            }
        }
    }
    for (open, close) in [('{', '}'), ('[', ']')] {
        if let (Some(s), Some(e)) = (t.find(open), t.rfind(close)) {
            if s < e {
                if let Ok(v) = serde_json::from_str(t.get(s..=e)?) {
                    return Some(v);
                }
            }
        }
    }
    None
}

/// The schema guard. Default action [`Action::Block`]; [`Action::Flag`] records violations
/// without stopping (redaction does not apply and behaves like block).
#[must_use]
pub struct SchemaGuard {
    validator: jsonschema::Validator,
    action: Action,
}

impl std::fmt::Debug for SchemaGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaGuard")
            .field("action", &self.action)
            .finish()
    }
}

impl SchemaGuard {
    /// A guard for `schema`.
    ///
    /// # Errors
    /// [`llmkit_core::ErrorKind::Config`] when the schema is invalid.
    pub fn new(schema: &Value) -> Result<Self, Error> {
        Ok(SchemaGuard {
            validator: compile_schema(schema)?,
            action: Action::Block,
        })
    }

    /// Sets the action.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }
}

#[async_trait]
impl Guard for SchemaGuard {
    fn name(&self) -> &str {
        "schema"
    }

    async fn check(&self, text: &str, _ctx: &GuardContext<'_>) -> Decision {
        let reasons = match extract_json(text) {
            None => vec!["answer is not valid json".to_owned()],
            Some(v) => violations(&self.validator, &v, 3),
        };
        if reasons.is_empty() {
            return Decision::allow("schema");
        }
        let mut d = Decision::block("schema", 1.0, "");
        d.reasons = reasons;
        if self.action == Action::Flag {
            d.verdict = Verdict::Flag;
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extraction() {
        assert_eq!(
            extract_json(" {\"a\":1} "),
            Some(serde_json::json!({"a":1}))
        );
        assert_eq!(
            extract_json("Here:\n```json\n{\"a\":2}\n```\nbye"),
            Some(serde_json::json!({"a":2}))
        );
        assert_eq!(extract_json("so [1,2] ok"), Some(serde_json::json!([1, 2])));
        assert_eq!(extract_json("no json"), None);
        assert!(SchemaGuard::new(&serde_json::json!({"type": 12})).is_err());
    }
}
