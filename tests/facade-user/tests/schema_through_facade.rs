//! `JsonSchema` derived through `llmkit::schemars` in a crate without a schemars dependency,
//! used for structured output through the recommended layers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use llmkit::prelude::*;
use serde::Deserialize;

/// How sure the model is.
#[derive(Debug, PartialEq, Deserialize, JsonSchema)]
#[schemars(crate = "llmkit::schemars")]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve,
    Reject,
}

/// The value the application acts on; the doc comments become schema descriptions.
#[derive(Debug, Deserialize, JsonSchema)]
#[schemars(crate = "llmkit::schemars")]
struct Verdict {
    /// What to do.
    decision: Decision,
    /// From 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    confidence: f64,
}

#[test]
fn the_schema_comes_from_the_reexported_schemars() {
    let schema = llmkit::schemars::schema_for!(Verdict);
    let json = schema.as_value();
    assert_eq!(json["properties"]["confidence"]["maximum"], 1.0, "{json}");
    assert_eq!(
        json["properties"]["confidence"]["description"],
        "From 0 to 1."
    );
    let required = json["required"].as_array().unwrap();
    assert!(required.iter().any(|r| r == "decision"), "{json}");
}

#[tokio::test]
async fn generate_validates_against_the_derived_schema_and_reasks() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .provider("openai")
            .model("gpt-4o-mini")
            // Out of the derived range, then valid: the re-ask comes from the derived schema.
            .reply(r#"{"decision": "approve", "confidence": 1.5}"#)
            .reply(r#"{"decision": "reject", "confidence": 0.8}"#)
            .build(),
    );
    let model = Pipeline::builder()
        .layer(CacheLayer::new())
        .layer(RetryLayer::new())
        .build(provider.clone());
    let out = model
        .generate::<Verdict>(ChatRequest::user("Refund after 75 days?").with_temperature(0.0))
        .await
        .unwrap();
    assert_eq!(out.value.decision, Decision::Reject);
    assert!((out.value.confidence - 0.8).abs() < 1e-9);
    assert_eq!(out.attempts, 2);
    assert!(
        out.rejected[0]
            .errors
            .iter()
            .any(|e| e.contains("confidence")),
        "{:?}",
        out.rejected
    );
    assert_eq!(provider.call_count(), 2);
}
