//! Composition tests: the stacks that `docs/` shows, built exactly as shown through the public
//! facade API, checked end to end under concurrency (issue 17).
//!
//! Each test names the doc and the stack it builds. Limits, deadlines, attempt counts, trails,
//! settled cost, cache and fallback behaviour are asserted, not just "it answered".

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use llmkit::core::budget::BudgetLayer;
use llmkit::core::cache::CacheLayer;
use llmkit::core::route::{RouteRule, Router};
use llmkit::core::{
    ChatModel, ChatRequest, ChatResponse, Decimal, ErrorKind, Pipeline, PriceTable, Reply,
    ScriptedModel,
};

/// A provider double reporting a real, priced provider and model.
fn priced(model: &str, reply: Reply) -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::builder()
            .provider("openai")
            .model(model)
            .fallback(reply)
            .build(),
    )
}

/// What a response really cost, priced from the bundled table by the model that answered.
fn real_cost(table: &PriceTable, resp: &ChatResponse) -> Decimal {
    match &resp.cost {
        Some(c) => c.total_usd,
        None => table
            .cost(&resp.provider, &resp.model, &resp.usage)
            .map(|c| c.total_usd)
            .unwrap_or_else(|| panic!("{}/{} is not in the table", resp.provider, resp.model)),
    }
}

/// docs/cost.md and docs/production-checklist.md: Cache → Budget → Router. The budget sits
/// outside the router, so it sees the router's own `ModelInfo` (`router/<name>`), which no price
/// table knows. It must price the routes the router may call (the most expensive one), never $0
/// (issue 17 item 1: 100 concurrent calls spent 44× a $0.02 global limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_budget_router_never_overspends_a_global_limit() {
    let table = PriceTable::bundled();
    let long = "a careful, detailed answer. ".repeat(80); // ~560 output tokens
    let cheap = priced(
        "gpt-4o-mini",
        Reply::text("short answer").after(Duration::from_millis(20)),
    );
    let strong = priced(
        "gpt-4o",
        Reply::text(long.clone()).after(Duration::from_millis(20)),
    );
    let router = Router::builder("support")
        .route("cheap", cheap.clone())
        .route("strong", strong.clone())
        .rule(RouteRule::tag("tier", "enterprise"), "strong")
        .default_route("cheap")
        .build()
        .unwrap();
    let limit = Decimal::new(2, 2); // $0.02
    let budget = BudgetLayer::new(table.clone())
        .global_usd(limit, Duration::from_secs(3600))
        .default_output_tokens(600);
    let model = Pipeline::builder()
        .layer(CacheLayer::new())
        .layer(budget.clone())
        .build(Arc::new(router));

    let mut tasks = Vec::new();
    for i in 0..100 {
        let model = model.clone();
        tasks.push(tokio::spawn(async move {
            let req = ChatRequest::user(format!("question {i}: explain the contract terms"))
                .with_tag("tier", if i % 2 == 0 { "enterprise" } else { "free" })
                .with_temperature(0.0);
            model.chat(req).await
        }));
    }
    let mut spent = Decimal::ZERO;
    let (mut answered, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Ok(resp) => {
                answered += 1;
                spent += real_cost(&table, &resp);
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::BudgetExceeded, "{e}");
                refused += 1;
            }
        }
    }
    assert!(
        spent <= limit,
        "spent ${spent} of a ${limit} limit ({answered} answered, {refused} refused)"
    );
    assert!(answered > 0, "the budget admitted nothing");
    assert!(
        refused > 0,
        "100 calls cannot fit in $0.02 at gpt-4o prices"
    );
    assert_eq!(
        cheap.call_count() + strong.call_count(),
        answered,
        "refused calls reached no provider"
    );
}
