//! The quickstart's printed output, asserted (the `tests/examples_output.rs` pattern: the
//! example's logic lives in `examples/support/quickstart.rs`, included here with `#[path]`).
//! Needs only the default features, like the README's `cargo run --example quickstart`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../examples/support/quickstart.rs"]
mod quickstart;

use std::sync::Arc;

use llmkit::core::ChatModel;

#[tokio::test]
async fn quickstart_shows_structured_answer_cache_hit_blocked_injection_and_trace() {
    let scripted = quickstart::scripted_provider();
    let (provider, which) =
        quickstart::choose_provider(|_| None, scripted.clone() as Arc<dyn ChatModel>).unwrap();
    assert!(
        which.contains("openai / gpt-4o-mini played offline"),
        "{which}"
    );
    let out = quickstart::run(provider).await.unwrap();

    // A validated structured answer, rendered from the versioned prompt.
    assert!(out.contains("prompt refund_question@1@"), "{out}");
    assert!(
        out.contains(
            "structured answer after 1 attempt(s): {\"refundable\":false,\"clause\":\"2\""
        ),
        "{out}"
    );
    // The same question again: answered by the cache, free.
    assert!(
        out.contains("served from the cache: refundable = false, 0 tokens, cost $0"),
        "{out}"
    );
    assert!(!out.contains("NOT served from the cache"), "{out}");
    // The injection attempt never reaches the cache or the provider.
    assert!(
        out.contains("blocked before the cache and the provider"),
        "{out}"
    );
    assert!(!out.contains("NOT blocked"), "{out}");
    assert_eq!(
        scripted.call_count(),
        1,
        "only the first call reached the provider\n{out}"
    );

    // Three trace records: prompt version, tokens and a real cost on the first; a free hit;
    // the blocked call as a GuardBlocked error.
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| {
            l.trim_start().starts_with(|c: char| c.is_ascii_digit())
                && l.contains("refund_question@1 ")
        })
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows[0].contains(" miss ") && rows[0].ends_with(" ok"),
        "{}",
        rows[0]
    );
    assert!(
        !rows[0].contains("unknown") && rows[0].contains("$0.0"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains(" hit ") && rows[1].contains(" 0/0 "),
        "{}",
        rows[1]
    );
    assert!(rows[2].ends_with("error GuardBlocked"), "{}", rows[2]);
    let json_line = out.lines().last().unwrap();
    let record: serde_json::Value = serde_json::from_str(json_line).unwrap();
    assert_eq!(record["prompt"]["id"], "refund_question");
    assert_eq!(record["prompt"]["version"], "1");
    assert!(
        record["usage"]["input_tokens"].as_u64().unwrap() > 0,
        "{record}"
    );
    assert!(record["cost"]["total_usd"].is_string(), "{record}");
}

#[test]
fn quickstart_honours_llmkit_provider_without_printing_the_key() {
    let env = |name: &str| match name {
        "LLMKIT_PROVIDER" => Some("anthropic".to_owned()),
        "LLMKIT_MODEL" => Some("claude-haiku-4-5".to_owned()),
        "ANTHROPIC_API_KEY" => Some("sk-ant-test-not-a-real-key".to_owned()),
        _ => None,
    };
    let (model, which) = quickstart::choose_provider(env, quickstart::scripted_provider()).unwrap();
    assert_eq!(model.info().provider, "anthropic");
    assert!(
        which.contains("anthropic / claude-haiku-4-5 (selected by LLMKIT_PROVIDER)"),
        "{which}"
    );
    assert!(!which.contains("sk-ant"), "no key in the output");
}
