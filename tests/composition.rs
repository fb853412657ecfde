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

use futures::StreamExt;
use llmkit::core::budget::BudgetLayer;
use llmkit::core::cache::CacheLayer;
use llmkit::core::resilience::{
    CircuitBreakerLayer, DeadlineLayer, FallbackLayer, RetryLayer, TimeoutLayer, target_pipeline,
};
use llmkit::core::route::{RouteRule, Router};
use llmkit::core::telemetry::{ExportQueue, MemorySink, TraceLayer};
use llmkit::core::{
    ChatModel, ChatRequest, ChatResponse, Decimal, ErrorKind, Pipeline, PriceTable, Reply,
    ScriptedModel,
};
use tokio::time::Instant;

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

/// A provider that never answers in time.
fn stalls(name: &str) -> Arc<ScriptedModel> {
    priced(
        name,
        Reply::text("too late").after(Duration::from_secs(3600)),
    )
}

/// Issue 17 item 3: a 5 s per-attempt timeout with retries let the caller wait 17 s. With one
/// deadline per logical call (6 s), the caller gets `Timeout` by 6 s, and no retry starts that
/// could not finish before it (the backoff wait counts).
#[tokio::test(start_paused = true)]
async fn one_deadline_bounds_retries_fallback_and_streams() {
    let target = |m: Arc<ScriptedModel>| {
        target_pipeline(
            RetryLayer::new(),
            CircuitBreakerLayer::new(),
            None,
            TimeoutLayer::new().attempt(Duration::from_secs(5)),
        )
        .build(m)
    };

    // Retries alone.
    let provider = stalls("gpt-4o-mini");
    let model = Pipeline::builder()
        .layer(DeadlineLayer::new(Duration::from_secs(6)))
        .build(target(provider.clone()));
    let start = Instant::now();
    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        start.elapsed() <= Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        provider.call_count(),
        1,
        "after a 5 s attempt and a ≥0.5 s backoff, less than the minimum attempt time is left"
    );

    // A fallback chain: the second link gets what is left, never more.
    let (a, b) = (stalls("gpt-4o-mini"), stalls("gpt-4o"));
    let model = Pipeline::builder()
        .layer(DeadlineLayer::new(Duration::from_secs(6)))
        .layer(FallbackLayer::new().then(target(b.clone())))
        .build(target(a.clone()));
    let start = Instant::now();
    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(start.elapsed(), Duration::from_secs(6));
    assert_eq!((a.call_count(), b.call_count()), (1, 1));

    // Streams: a stalled stream ends with `Timeout` at the deadline, not the 30 s first-token bound.
    let provider = stalls("gpt-4o-mini");
    let model = Pipeline::builder()
        .layer(DeadlineLayer::new(Duration::from_secs(6)))
        .build(target(provider.clone()));
    let start = Instant::now();
    let err = match model.stream(ChatRequest::user("hi")).await {
        Err(e) => e,
        Ok(mut s) => loop {
            match s.next().await {
                Some(Err(e)) => break e,
                Some(Ok(_)) => {}
                None => panic!("the stream ended without an error"),
            }
        },
    };
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(
        start.elapsed() <= Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );

    // The caller's own sooner deadline wins.
    let provider = stalls("gpt-4o-mini");
    let model = Pipeline::builder()
        .layer(DeadlineLayer::new(Duration::from_secs(6)))
        .build(target(provider));
    let start = Instant::now();
    let req =
        ChatRequest::user("hi").with_deadline((Instant::now() + Duration::from_secs(2)).into_std());
    assert_eq!(
        model.chat(req).await.unwrap_err().kind(),
        ErrorKind::Timeout
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

/// Issue 17 item 4: attempts are the requests actually sent, counted once, in the error, its
/// message and the trace record (a `circuit_open` call that sent nothing was recorded as 2).
#[tokio::test(start_paused = true)]
async fn attempts_are_the_requests_actually_sent() {
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 64);
    let trace = TraceLayer::builder().export(queue.clone()).build();
    let breakers = CircuitBreakerLayer::new().consecutive_failures(3);
    let target = |m: Arc<ScriptedModel>| {
        target_pipeline(
            RetryLayer::new().max_attempts(3),
            breakers.clone(),
            None,
            TimeoutLayer::new(),
        )
        .build(m)
    };
    let primary = priced("gpt-4o-mini", Reply::server_error(503));
    let backup = priced("gpt-4o", Reply::text("from the backup"));
    let failing_only = Pipeline::builder()
        .layer(trace.clone())
        .build(target(primary.clone()));
    let with_backup = Pipeline::builder()
        .layer(trace)
        .layer(FallbackLayer::new().then(target(backup.clone())))
        .build(target(primary.clone()));

    // Three requests sent, all failed: the breaker opens.
    let err = failing_only.chat(ChatRequest::user("a")).await.unwrap_err();
    assert_eq!(primary.call_count(), 3);
    assert_eq!((err.attempts().len(), err.requests_sent()), (3, 3));
    assert!(err.to_string().contains("attempts=3"), "{err}");
    assert!(!err.to_string().contains("earlier"), "{err}");

    // The open circuit sends nothing: zero attempts.
    let err = failing_only.chat(ChatRequest::user("b")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(primary.call_count(), 3);
    assert_eq!((err.attempts().len(), err.requests_sent()), (0, 0));

    // The backup answers while the primary's circuit is open: one request in all.
    let resp = with_backup.chat(ChatRequest::user("c")).await.unwrap();
    assert_eq!(resp.text(), "from the backup");
    queue.flush().await;
    let attempts: Vec<u32> = sink.records().iter().map(|r| r.attempts).collect();
    assert_eq!(attempts, [3, 0, 1]);
}

/// Issue 17 item 5 (core side): one idempotency key per logical call unless the caller set
/// one, generated at the top of the stack, identical across retries and fallback links, and
/// recorded in the trace.
#[tokio::test(start_paused = true)]
async fn one_idempotency_key_per_logical_call() {
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 16);
    let primary = Arc::new(
        ScriptedModel::builder()
            .provider("openai")
            .model("gpt-4o-mini")
            .fallback(Reply::server_error(503))
            .build(),
    );
    let backup = priced("gpt-4o", Reply::text("ok"));
    let target = |m: Arc<ScriptedModel>| {
        target_pipeline(
            RetryLayer::new(),
            CircuitBreakerLayer::new().consecutive_failures(100),
            None,
            TimeoutLayer::new(),
        )
        .build(m)
    };
    let model = Pipeline::builder()
        .layer(TraceLayer::builder().export(queue.clone()).build())
        .layer(FallbackLayer::new().then(target(backup.clone())))
        .build(target(primary.clone()));
    model.chat(ChatRequest::user("a")).await.unwrap();
    model.chat(ChatRequest::user("b")).await.unwrap();
    let keys = |m: &ScriptedModel| -> Vec<String> {
        m.requests()
            .iter()
            .map(|r| r.meta.idempotency_key.clone().unwrap())
            .collect()
    };
    let (p, b) = (keys(&primary), keys(&backup));
    assert_eq!((p.len(), b.len()), (6, 2));
    assert!(
        p[..3].iter().chain(&b[..1]).all(|k| *k == p[0]),
        "{p:?} {b:?}"
    );
    assert!(
        p[3..].iter().chain(&b[1..]).all(|k| *k == p[3]),
        "{p:?} {b:?}"
    );
    assert_ne!(p[0], p[3], "each logical call has its own key");
    queue.flush().await;
    assert_eq!(
        sink.records()[0].idempotency_key.as_deref(),
        Some(p[0].as_str())
    );

    // A caller's key is kept.
    model
        .chat(ChatRequest::user("c").with_idempotency_key("order-42"))
        .await
        .unwrap();
    assert_eq!(keys(&backup)[2], "order-42");
}
