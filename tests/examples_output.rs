//! The examples' printed output, asserted: each example's logic lives in a module under
//! `examples/support/` that the example and this test both include with `#[path]`, so the test
//! runs exactly what `cargo run --example NAME` prints (without running cargo inside cargo).

#[path = "../examples/support/cost_replay.rs"]
#[allow(dead_code)]
mod cost_replay;
#[path = "../examples/support/structured_demo.rs"]
#[allow(dead_code)]
mod structured_demo;

use llmkit::core::Decimal;
use llmkit::core::cost::PriceTable;

#[tokio::test]
async fn cost_example_prices_with_the_bundled_table_escalates_and_scores_quality() {
    let outcomes = cost_replay::replay().await.unwrap();
    let by = |name: &str| outcomes.iter().find(|o| o.name == name).unwrap().clone();
    let baseline = by("strong model only");
    let unchecked = by("routing, no answer check");
    let escalating = by("routing + escalation");
    let cached = by("+ response cache");
    let all = by("+ prompt caching + batch lane");

    // Quality per configuration: routing without a check is cheaper *and* worse, which the
    // report must show; escalation on the failed check brings quality back.
    assert_eq!(baseline.pass_rate, 1.0);
    assert!(unchecked.pass_rate < 0.95, "{unchecked:?}");
    assert!(unchecked.total_usd < baseline.total_usd);
    assert_eq!(escalating.pass_rate, 1.0);
    assert!(escalating.escalations > 0);
    assert_eq!(unchecked.escalations, 0);
    // Escalation pays for the rejected cheap attempt, so it costs more than routing alone.
    assert!(escalating.total_usd > unchecked.total_usd);
    assert!(escalating.total_usd < baseline.total_usd);
    // Each further lever lowers cost without losing quality.
    assert!(cached.cache_hits > 0 && cached.total_usd < escalating.total_usd);
    assert_eq!(cached.pass_rate, 1.0);
    assert!(all.total_usd < cached.total_usd && all.pass_rate == 1.0);
    assert_eq!(all.batched, cost_replay::REQUESTS / 10);
    // Prompt caching happened, and the prefix was re-written after lulls past the lifetime.
    assert!(all.prompt_cached_tokens > 0);
    assert!(all.prompt_cache_writes > 1);
    assert_eq!(cached.prompt_cached_tokens, 0);

    // Priced with the bundled table (the report names its version), not a private one.
    let table = PriceTable::bundled();
    let (_, strong) = table.lookup("openai", cost_replay::STRONG).unwrap();
    assert_eq!(strong.input, Decimal::new(200, 2), "gpt-4.1 input $2.00/M");
    assert!(baseline.total_usd > Decimal::ZERO);

    let report = cost_replay::render(&outcomes);
    assert!(
        report.contains(&format!("bundled price table {}", table.version())),
        "{report}"
    );
    assert!(report.contains("routing, no answer check"), "{report}");
}

#[test]
fn cost_example_gives_no_prompt_cache_discount_below_a_providers_minimum() {
    // The issue: a ~750-token prefix was discounted; OpenAI caches from 1,024 tokens.
    let rows = cost_replay::caching_table();
    let openai = rows.iter().find(|r| r.model == "openai/gpt-4.1").unwrap();
    assert_eq!((openai.min_prefix, openai.cached_of_750), (1_024, 0));
    assert!(
        openai.cached_of_shared >= 1_024 && openai.cached_of_shared % 128 == 0,
        "{openai:?}"
    );
    assert_eq!((openai.lifetime_secs, openai.write_premium), (300, None));
    let haiku = rows
        .iter()
        .find(|r| r.model == "anthropic/claude-haiku-4-5")
        .unwrap();
    assert_eq!(
        (haiku.min_prefix, haiku.cached_of_shared),
        (4_096, 0),
        "below Haiku 4.5's minimum"
    );
    let sonnet = rows
        .iter()
        .find(|r| r.model == "anthropic/claude-sonnet-4-5")
        .unwrap();
    assert_eq!(
        sonnet.write_premium,
        Some(Decimal::new(125, 2)),
        "writes cost 1.25x input"
    );
}

#[tokio::test]
async fn structured_output_example_says_which_model_and_reasks_offline() {
    let (model, which) = structured_demo::choose_model(|_| None).unwrap();
    assert!(which.contains("offline scripted model"), "{which}");
    let out = structured_demo::run(model).await.unwrap();
    assert!(out.contains("attempts: 2"), "{out}");
    assert!(out.contains("attempt 1 rejected"), "{out}");
    assert!(out.contains("\"decision\": \"approve\""), "{out}");
    assert!(out.contains("refund_verdict@1@"), "{out}");
}

#[test]
fn structured_output_example_honours_llmkit_provider() {
    let env = |name: &str| match name {
        "LLMKIT_PROVIDER" => Some("openai".to_owned()),
        "LLMKIT_MODEL" => Some("gpt-4.1-mini".to_owned()),
        "OPENAI_API_KEY" => Some("sk-test-not-a-real-key".to_owned()),
        _ => None,
    };
    let (model, which) = structured_demo::choose_model(env).unwrap();
    assert_eq!(model.info().provider, "openai");
    assert_eq!(model.info().model, "gpt-4.1-mini");
    assert!(
        which.contains("openai / gpt-4.1-mini (selected by LLMKIT_PROVIDER)"),
        "{which}"
    );
    assert!(!which.contains("sk-test"), "no key in the output");
}
