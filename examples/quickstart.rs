//! Quickstart: one call through a pipeline, offline on the scripted model unless `LLMKIT_PROVIDER` selects a real one.
//!
//! Run with `cargo run --example quickstart`. To use a real provider set `LLMKIT_PROVIDER`,
//! `LLMKIT_MODEL` and its key, e.g. `LLMKIT_PROVIDER=openai LLMKIT_MODEL=gpt-4o-mini
//! OPENAI_API_KEY=... cargo run --example quickstart` (see docs/providers.md).

use std::sync::Arc;

use llmkit::core::{ChatModel, ChatRequest, Message, Pipeline, ScriptedModel};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider: Arc<dyn ChatModel> = if std::env::var_os("LLMKIT_PROVIDER").is_some() {
        let provider = llmkit::providers::from_env()?;
        println!(
            "using {} / {} (selected by LLMKIT_PROVIDER)",
            provider.info().provider,
            provider.info().model
        );
        provider
    } else {
        let provider = ScriptedModel::builder()
            .model("scripted-model")
            .reply(
                "Refunds are accepted within 30 days of purchase; after 60 days we cannot refund.",
            )
            .build();
        println!(
            "using {} / {} (offline test double: no network, no API key; set LLMKIT_PROVIDER to use a real provider)",
            provider.info().provider,
            provider.info().model
        );
        Arc::new(provider)
    };

    let model = Pipeline::builder().build(provider);
    let request = ChatRequest::new(vec![
        Message::system("Answer from the refund policy in one sentence."),
        Message::user("Can I get a refund after 60 days?"),
    ])
    .with_temperature(0.0);

    let response = model.chat(request).await?;
    println!("answer:      {}", response.text());
    println!("answered by: {} / {}", response.provider, response.model);
    println!(
        "usage:       {} input + {} output tokens",
        response.usage.input_tokens, response.usage.output_tokens
    );
    println!(
        "request id:  {}",
        response.request_id.as_deref().unwrap_or("-")
    );
    Ok(())
}
