//! Structured output: a refund verdict from a versioned prompt, validated, re-asked once, and traced to its prompt.
//!
//! Offline by default: the scripted model first answers with prose around an invalid object
//! (an unknown decision and a confidence above 1), then with a valid one. When
//! `LLMKIT_PROVIDER` is set, an application would build the model with the providers factory
//! instead; nothing else in this file changes, because `generate` works on any `ChatModel`.

use std::sync::Arc;

use llmkit::core::prompt::PromptRegistry;
use llmkit::core::structured::Structured;
use llmkit::core::{Capabilities, ChatModel, ScriptedModel};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Decision {
    Approve,
    Reject,
    Escalate,
}

/// The verdict the application acts on.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
struct RefundVerdict {
    decision: Decision,
    /// How sure the model is, from 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    confidence: f64,
    /// Policy clauses behind the decision.
    reasons: Vec<String>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prompts =
        PromptRegistry::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/prompts"))?;
    let rendered = prompts.render(
        "refund_verdict@production",
        json!({
            "policy": "1. Unopened items are refunded within 30 days of purchase.\n2. Opened items are not refunded.",
            "request": "I bought headphones 12 days ago and never opened the box. Can I get my money back?",
        }),
    )?;
    let prompt_ref = rendered.prompt_ref.clone();
    let request = rendered.into_request();

    let model: Arc<dyn ChatModel> = Arc::new(
        ScriptedModel::builder()
            .model("scripted-verdict")
            // No native JSON-schema support: the schema goes into the system message.
            .capabilities(Capabilities::default())
            .reply("Sure! My verdict: {\"decision\": \"yes\", \"confidence\": 1.4, \"reasons\": []}")
            .reply(
                "```json\n{\"decision\": \"approve\", \"confidence\": 0.92, \"reasons\": [\"clause 1: unopened and within 30 days\"]}\n```",
            )
            .build(),
    );

    let verdict = Structured::<RefundVerdict>::new()
        .max_attempts(3)
        .validator(|v: &RefundVerdict| {
            if v.decision != Decision::Escalate && v.reasons.is_empty() {
                Err("/reasons: give at least one policy clause for approve or reject".into())
            } else {
                Ok(())
            }
        })
        .generate(&model, request)
        .await?;

    println!("prompt:   {prompt_ref} (sha256 {})", prompt_ref.hash);
    println!("attempts: {}", verdict.attempts);
    for rejected in &verdict.rejected {
        println!("  attempt {} rejected:", rejected.attempt);
        for e in &rejected.errors {
            println!("    - {e}");
        }
    }
    println!(
        "usage:    {} input + {} output tokens over all attempts",
        verdict.usage.input_tokens, verdict.usage.output_tokens
    );
    println!(
        "verdict:  {}",
        serde_json::to_string_pretty(&verdict.value)?
    );

    let diff = prompts.diff("refund_verdict@production", "refund_verdict@canary")?;
    let (added, removed) = diff.stats();
    println!("\ncanary vs production: +{added} -{removed} lines\n{diff}");
    Ok(())
}
