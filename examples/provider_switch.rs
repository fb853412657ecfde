//! Provider switch: the same code runs on whichever provider the environment selects, offline on the scripted model when none is set.
//!
//! Run offline with `cargo run --example provider_switch`. Switch provider with configuration
//! only, for example:
//! `LLMKIT_PROVIDER=openai LLMKIT_MODEL=gpt-4o-mini OPENAI_API_KEY=... cargo run --example provider_switch`,
//! `LLMKIT_PROVIDER=ollama LLMKIT_MODEL=llama3.2 cargo run --example provider_switch`, or
//! `LLMKIT_PROVIDER=openai_compatible OPENAI_BASE_URL=http://127.0.0.1:8000/v1 LLMKIT_MODEL=qwen2.5 ...`.

use std::sync::Arc;

use futures::StreamExt;
use llmkit::core::{ChatModel, ChatRequest, Message, Pipeline, ScriptedModel, StreamEvent};

/// The provider from the environment, or the offline scripted model when `LLMKIT_PROVIDER` is
/// unset. A set but incomplete configuration is an error naming the variable to fix.
fn select_model() -> Result<Arc<dyn ChatModel>, llmkit::core::Error> {
    if std::env::var_os("LLMKIT_PROVIDER").is_some() {
        return llmkit::providers::from_env();
    }
    Ok(Arc::new(
        ScriptedModel::builder()
            .model("scripted-model")
            .reply("Paris is the capital of France.")
            .chunk_chars(6)
            .build(),
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let provider = select_model()?;
    let offline = std::env::var_os("LLMKIT_PROVIDER").is_none();
    println!(
        "using provider `{}`, model `{}`{}",
        provider.info().provider,
        provider.info().model,
        if offline {
            " (LLMKIT_PROVIDER unset: offline scripted model)"
        } else {
            " (selected by LLMKIT_PROVIDER)"
        }
    );

    // Everything below is provider-neutral: it never names a provider.
    let model = Pipeline::builder().build(provider);
    let request = ChatRequest::new(vec![
        Message::system("Answer in one short sentence."),
        Message::user("What is the capital of France?"),
    ])
    .with_max_tokens(64);

    let mut stream = model.stream(request).await?;
    print!("streamed:    ");
    let mut pieces = 0;
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta { text } => {
                pieces += 1;
                print!("{text}");
            }
            StreamEvent::Usage { usage } => print!(
                "\nusage:       {} input + {} output tokens",
                usage.input_tokens, usage.output_tokens
            ),
            StreamEvent::Done { finish_reason } => {
                println!(
                    "\nfinished:    {} after {pieces} text pieces",
                    finish_reason.as_str()
                )
            }
            _ => {}
        }
    }
    Ok(())
}
