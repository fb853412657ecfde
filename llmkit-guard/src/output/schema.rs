//! JSON Schema conformance of the model's answer.
//!
//! [`SchemaGuard`] compiles the schema once, at construction, with the `jsonschema` crate, then
//! checks each answer: the whole text, or one of the JSON values embedded in it (a fenced
//! ```` ```json ```` block, an object after some prose), must validate. Finding the values is
//! structured output's job ([`json_candidates`]), so the guard and the re-ask loop read a reply
//! the same way. Reasons list the first candidate's first three violations with their JSON
//! pointer.
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
use llmkit_core::structured::json_candidates;
pub use llmkit_core::structured::violations;

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
        let candidates = json_candidates(text);
        if candidates.iter().any(|v| self.validator.is_valid(v)) {
            return Decision::allow("schema");
        }
        let reasons = match candidates.first() {
            None => vec!["answer is not valid json".to_owned()],
            Some(v) => violations(&self.validator, v, 3),
        };
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

    #[tokio::test]
    async fn reads_a_reply_as_structured_output_does() {
        let g = SchemaGuard::new(&serde_json::json!({
            "type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}
        }))
        .unwrap();
        let ctx = GuardContext::output();
        for ok in [
            " {\"a\":1} ",
            "Here:\n```json\n{\"a\":2}\n```\nbye",
            // A draft and a final answer: one valid candidate is enough (the old outermost-span
            // reading parsed `{"b":1} final: {"a":3}` as one value and failed it).
            "draft: {\"b\":1} final: {\"a\":3}",
        ] {
            assert!(g.check(ok, &ctx).await.is_allow(), "{ok}");
        }
        let d = g.check("no json", &ctx).await;
        assert_eq!(d.reasons, ["answer is not valid json"]);
        let d = g.check("so {\"a\": \"x\"} ok", &ctx).await;
        assert!(
            d.is_block() && d.reasons[0].contains("/a"),
            "{:?}",
            d.reasons
        );
        assert!(SchemaGuard::new(&serde_json::json!({"type": 12})).is_err());
    }
}
