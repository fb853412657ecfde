//! Quickstart: the recommended stack in one offline run — a structured answer, the same question served from the cache, a blocked injection attempt and the trace records with prompt version, tokens and cost.
//!
//! Run with `cargo run --example quickstart`. Offline the scripted test model plays OpenAI's
//! `gpt-4o-mini` (priced from the bundled table). To use a real provider set `LLMKIT_PROVIDER`,
//! `LLMKIT_MODEL` and its key, e.g. `LLMKIT_PROVIDER=openai LLMKIT_MODEL=gpt-4o-mini
//! OPENAI_API_KEY=... cargo run --example quickstart` (see docs/providers.md).

#[path = "support/quickstart.rs"]
mod quickstart;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (provider, which) = quickstart::choose_provider(
        |name| std::env::var(name).ok(),
        quickstart::scripted_provider(),
    )?;
    println!("{which}");
    print!("{}", quickstart::run(provider).await?);
    Ok(())
}
