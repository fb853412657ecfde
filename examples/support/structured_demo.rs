//! The logic of `examples/structured_output.rs`, shared with `tests/examples_output.rs` (included
//! there with `#[path]`) so the test checks what the example prints.

use std::sync::Arc;

use llmkit::core::prompt::PromptRegistry;
use llmkit::core::structured::Structured;
use llmkit::core::{Capabilities, ChatModel, ScriptedModel};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The decision the application acts on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Refund.
    Approve,
    /// No refund.
    Reject,
    /// A human decides.
    Escalate,
}

/// The verdict the application acts on.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct RefundVerdict {
    /// What to do.
    pub decision: Decision,
    /// How sure the model is, from 0 to 1.
    #[schemars(range(min = 0.0, max = 1.0))]
    pub confidence: f64,
    /// Policy clauses behind the decision.
    pub reasons: Vec<String>,
}

/// The model to ask, and a line saying which one it is: the provider `LLMKIT_PROVIDER` selects
/// (read through `lookup`, the process environment in the example), or the scripted model,
/// whose first reply is invalid (prose around an unknown decision and a confidence above 1) and
/// whose second is valid, so the re-ask is visible offline.
pub fn choose_model(
    lookup: impl Fn(&str) -> Option<String>,
) -> llmkit::core::Result<(Arc<dyn ChatModel>, String)> {
    if lookup("LLMKIT_PROVIDER").is_some() {
        let config = llmkit::providers::factory::config_from_lookup(&lookup)?;
        let model = llmkit::providers::from_config(&config)?;
        let line = format!(
            "model:    {} / {} (selected by LLMKIT_PROVIDER)",
            model.info().provider,
            model.info().model
        );
        return Ok((model, line));
    }
    let model = ScriptedModel::builder()
        .model("scripted-verdict")
        // No native JSON-schema support: the schema goes into the system message.
        .capabilities(Capabilities::default())
        .reply("Sure! My verdict: {\"decision\": \"yes\", \"confidence\": 1.4, \"reasons\": []}")
        .reply(
            "```json\n{\"decision\": \"approve\", \"confidence\": 0.92, \"reasons\": [\"clause 1: unopened and within 30 days\"]}\n```",
        )
        .build();
    let line = format!(
        "model:    {} / {} (offline scripted model: LLMKIT_PROVIDER is not set)",
        model.info().provider,
        model.info().model
    );
    Ok((Arc::new(model), line))
}

/// Renders the prompt, asks `model` for a [`RefundVerdict`] (re-asking on invalid replies) and
/// returns the report the example prints.
pub async fn run(model: Arc<dyn ChatModel>) -> Result<String, Box<dyn std::error::Error>> {
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

    let mut out = String::new();
    out.push_str(&format!(
        "prompt:   {prompt_ref} (sha256 {})\n",
        prompt_ref.hash
    ));
    out.push_str(&format!("attempts: {}\n", verdict.attempts));
    for rejected in &verdict.rejected {
        out.push_str(&format!("  attempt {} rejected:\n", rejected.attempt));
        for e in &rejected.errors {
            out.push_str(&format!("    - {e}\n"));
        }
    }
    out.push_str(&format!(
        "usage:    {} input + {} output tokens over all attempts\n",
        verdict.usage.input_tokens, verdict.usage.output_tokens
    ));
    out.push_str(&format!(
        "verdict:  {}\n",
        serde_json::to_string_pretty(&verdict.value)?
    ));
    let diff = prompts.diff("refund_verdict@production", "refund_verdict@canary")?;
    let (added, removed) = diff.stats();
    out.push_str(&format!(
        "\ncanary vs production: +{added} -{removed} lines\n{diff}\n"
    ));
    Ok(out)
}
