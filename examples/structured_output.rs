//! Structured output: a refund verdict from a versioned prompt, validated, re-asked once, and traced to its prompt.
//!
//! Run with `cargo run --example structured_output`. Offline by default: the scripted model
//! first answers with prose around an invalid object (an unknown decision and a confidence above
//! 1), then with a valid one. With `LLMKIT_PROVIDER` set (and `LLMKIT_MODEL` and the provider's
//! key, see docs/providers.md) the same code asks that provider; the first line printed says
//! which model answered. The logic lives in `examples/support/structured_demo.rs`, which
//! `tests/examples_output.rs` runs too.

#[path = "support/structured_demo.rs"]
mod structured_demo;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (model, which) = structured_demo::choose_model(|name| std::env::var(name).ok())?;
    println!("{which}");
    print!("{}", structured_demo::run(model).await?);
    Ok(())
}
