//! Cost levers replayed on 1,000 requests, each configuration priced with the bundled price table and scored for quality.
//!
//! Run with `cargo run --example cost --features eval`. Offline: scripted stand-ins answer as `openai/gpt-4.1`
//! (strong) and `openai/gpt-4.1-mini` (cheap) and are priced with `PriceTable::bundled()`.
//! Provider prompt caching follows each provider's rules from `llmkit::core::cost::caching`
//! (OpenAI caches prefixes of 1,024 tokens or more, in 128-token steps, for about 5 minutes
//! after last use) on a simulated clock. The router escalates a cheap reply that fails the
//! answer check (JSON with confidence ≥ 0.7) to the strong model, and llmkit-eval scores every
//! configuration's answers, so a saving that loses quality shows up in the same row.
//! The replay itself lives in `examples/support/cost_replay.rs`; `tests/examples_output.rs`
//! asserts the numbers printed here.

#[path = "support/cost_replay.rs"]
mod cost_replay;

#[tokio::main]
async fn main() -> llmkit::core::Result<()> {
    let outcomes = cost_replay::replay().await?;
    print!("{}", cost_replay::render(&outcomes));
    Ok(())
}
