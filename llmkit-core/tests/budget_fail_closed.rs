//! Money fails closed (issue 17 item 1): the budget prices what will actually be called, never
//! reserves $0 for a model it cannot price, and settles with the answering model's real usage.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use llmkit_core::budget::{BudgetLayer, OverBudget, Pricer};
use llmkit_core::resilience::{FallbackLayer, RetryLayer, TimeoutLayer};
use llmkit_core::route::{RouteRule, Router};
use llmkit_core::{
    Candidate, ChatModel, ChatRequest, Cost, Decimal, ErrorKind, Layer, Pipeline, Reply,
    ScriptedModel, Usage,
};

/// $1 per million tokens for `small`, $100 for `large`; nothing else is known.
fn pricer() -> Arc<dyn Pricer> {
    Arc::new(|_: &str, model: &str, usage: &Usage| {
        let per_million = match model {
            "small" => Decimal::from(1),
            "large" => Decimal::from(100),
            _ => return None,
        };
        let total = Decimal::from(usage.input_tokens + usage.output_tokens) * per_million
            / Decimal::from(1_000_000);
        Some(Cost {
            total_usd: total,
            ..Default::default()
        })
    })
}

fn model(name: &str, reply: &str) -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::builder()
            .provider("p")
            .model(name)
            .fallback(reply)
            .build(),
    )
}

/// Routes to `small` unless tagged `hard=yes`.
fn small_or_large() -> Router {
    Router::builder("r")
        .route("cheap", model("small", "ok"))
        .route("strong", model("large", "ok"))
        .rule(RouteRule::tag("hard", "yes"), "strong")
        .default_route("cheap")
        .build()
        .unwrap()
}

/// 1,000 output tokens + "hi" (1 token) at $100/M = $0.1001 on `large`.
fn request() -> ChatRequest {
    ChatRequest::user("hi").with_max_tokens(1_000)
}

#[tokio::test]
async fn router_is_priced_by_its_most_expensive_route() {
    let router = small_or_large();
    let budget = BudgetLayer::new(pricer()).per_request_usd(Decimal::new(5, 2)); // $0.05
    assert_eq!(
        budget.worst_case(&router, &request()).unwrap(),
        Decimal::new(1001, 4)
    );
    let stack = budget.layer(Arc::new(router));
    // Even a call that would take the cheap route is refused: the router may pick `large`.
    let err = stack.chat(request()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded, "{err}");
}

#[tokio::test]
async fn escalation_reserves_for_both_paid_replies() {
    let router = Router::builder("r")
        .route("cheap", model("small", "unsure"))
        .route("strong", model("large", "sure"))
        .escalate("cheap", "strong", |r| r.text() != "unsure")
        .default_route("cheap")
        .build()
        .unwrap();
    let candidates = router.candidates();
    assert!(
        candidates.iter().any(|c| c.models.len() == 2),
        "{candidates:?}"
    );
    let budget = BudgetLayer::new(pricer());
    // $0.001001 on small + $0.1001 on large.
    assert_eq!(
        budget.worst_case(&router, &request()).unwrap(),
        Decimal::new(101101, 6)
    );
}

#[tokio::test]
async fn an_unpriced_model_is_refused_with_its_name_unless_allowed() {
    let unknown = model("mystery-1", "ok");
    let stack = BudgetLayer::new(pricer()).layer(unknown.clone());
    let err = stack.chat(request()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("p/mystery-1"), "{err}");
    assert_eq!(unknown.call_count(), 0, "refused before the call");

    // Through a fallback: a priced primary does not hide an unpriced backup.
    let chain = FallbackLayer::new()
        .then(unknown.clone())
        .layer(model("small", "ok"));
    let err = BudgetLayer::new(pricer())
        .layer(chain)
        .chat(request())
        .await
        .unwrap_err();
    assert!(err.message().contains("p/mystery-1"), "{err}");

    // The explicit opt-out admits it.
    let allowed = BudgetLayer::new(pricer())
        .allow_unpriced(true)
        .layer(unknown.clone());
    assert_eq!(allowed.chat(request()).await.unwrap().text(), "ok");
}

#[tokio::test]
async fn candidates_pass_through_resilience_layers_and_pipelines() {
    let target = Pipeline::builder()
        .layer(RetryLayer::new())
        .layer(TimeoutLayer::new())
        .build(model("large", "ok"));
    let chain = FallbackLayer::new()
        .then(model("small", "ok"))
        .layer(target);
    let names: Vec<String> = chain
        .candidates()
        .into_iter()
        .flat_map(|c: Candidate| c.models.into_iter().map(|m| m.model))
        .collect();
    assert_eq!(names, ["large", "small"]);
}

#[tokio::test]
async fn settles_with_the_answering_models_real_usage() {
    // Reserve for `large` (the router may pick it), answer on `small`: the tenant is charged
    // what `small` really cost, not the reservation.
    let router = small_or_large();
    let budget = BudgetLayer::new(pricer()).per_tenant_usd(Decimal::ONE, Duration::from_secs(60));
    let stack = budget.layer(Arc::new(router));
    let resp = stack.chat(request().with_tenant("t")).await.unwrap();
    let real = Decimal::from(resp.usage.input_tokens + resp.usage.output_tokens)
        / Decimal::from(1_000_000);
    assert_eq!(budget.tenant_spend("t").await.unwrap(), real);

    // Streams settle too, when `Done` arrives.
    let mut stream = stack.stream(request().with_tenant("s")).await.unwrap();
    while let Some(ev) = stream.next().await {
        ev.unwrap();
    }
    drop(stream);
    assert!(
        budget.tenant_spend("s").await.unwrap() < Decimal::new(1, 4),
        "{}",
        budget.tenant_spend("s").await.unwrap()
    );
    assert!(budget.tenant_spend("s").await.unwrap() > Decimal::ZERO);
}

#[tokio::test]
async fn downgrade_target_is_priced_by_its_candidates() {
    let budget = BudgetLayer::new(pricer())
        .per_request_usd(Decimal::new(5, 2))
        .on_exceed(OverBudget::Downgrade(model("mystery-2", "cheap")));
    let err = budget
        .layer(model("large", "ok"))
        .chat(request())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.message().contains("mystery-2"), "{err}");
}

#[tokio::test]
async fn a_scripted_reply_stays_unbilled_on_failure() {
    let failing = Arc::new(
        ScriptedModel::builder()
            .provider("p")
            .model("small")
            .reply(Reply::server_error(500))
            .build(),
    );
    let budget = BudgetLayer::new(pricer()).per_tenant_usd(Decimal::ONE, Duration::from_secs(60));
    let stack = budget.layer(failing);
    assert!(stack.chat(request().with_tenant("t")).await.is_err());
    assert_eq!(budget.tenant_spend("t").await.unwrap(), Decimal::ZERO);
}
