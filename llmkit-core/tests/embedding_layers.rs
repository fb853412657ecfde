//! Embedding models get the same layers as chat models (issue 19 item 3): retry, breaker,
//! timeout and deadline, trace (with cost), cache and budget, each built through
//! `Layer::layer_embedding` / `Pipeline::build_embedding`, and one composed stack.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use llmkit_core::budget::{BudgetLayer, FlatPricer};
use llmkit_core::cache::CacheLayer;
use llmkit_core::cost::PriceTable;
use llmkit_core::resilience::{
    Backoff, CircuitBreakerLayer, CircuitState, DeadlineLayer, RetryLayer, TimeoutLayer,
};
use llmkit_core::telemetry::{ExportQueue, MemorySink, TraceLayer};
use llmkit_core::{
    Decimal, EmbeddingModel, EmbeddingRequest, ErrorKind, Layer, Pipeline, Reply, ScriptedModel,
    layer_fn,
};

fn embedder() -> ScriptedModel {
    ScriptedModel::builder()
        .provider("openai")
        .model("text-embedding-3-small")
        .embedding_dimensions(16)
        .build()
}

fn scripted(replies: Vec<Reply>) -> Arc<ScriptedModel> {
    let mut b = ScriptedModel::builder()
        .provider("openai")
        .model("text-embedding-3-small")
        .embedding_dimensions(16);
    for r in replies {
        b = b.embed_reply(r);
    }
    Arc::new(b.build())
}

#[tokio::test(start_paused = true)]
async fn retry_answers_after_a_429_from_the_embedding_provider() {
    let provider = scripted(vec![Reply::rate_limited(Duration::from_secs(2))]);
    let model = RetryLayer::new()
        .backoff(Backoff::exponential().base(Duration::from_millis(100)))
        .layer_embedding(provider.clone())
        .unwrap();
    let start = tokio::time::Instant::now();
    let resp = model
        .embed(EmbeddingRequest::new(["refund policy"]))
        .await
        .unwrap();
    assert_eq!(resp.embeddings.len(), 1);
    assert_eq!(
        provider.embed_requests().len(),
        2,
        "the 429 was retried once"
    );
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "Retry-After was honoured"
    );
    assert!(resp.trail.has("retry", "attempt_failed"));
    assert!(resp.trail.has("retry", "answered"));
}

#[tokio::test(start_paused = true)]
async fn retry_gives_up_on_a_non_retryable_embedding_error() {
    let provider = scripted(vec![Reply::fail(llmkit_core::Error::new(
        ErrorKind::InvalidRequest,
        "input too long",
    ))]);
    let model = RetryLayer::new().layer_embedding(provider.clone()).unwrap();
    let err = model.embed(EmbeddingRequest::new(["x"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert_eq!(provider.embed_requests().len(), 1);
    assert_eq!(err.attempts().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_on_a_failing_embedding_endpoint_and_fails_fast() {
    let provider = scripted(vec![Reply::server_error(503); 5]);
    let breakers = CircuitBreakerLayer::new().consecutive_failures(2);
    let model = breakers.layer_embedding(provider.clone()).unwrap();
    for _ in 0..2 {
        let e = model.embed(EmbeddingRequest::new(["a"])).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Server);
    }
    let err = model.embed(EmbeddingRequest::new(["a"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert_eq!(
        provider.embed_requests().len(),
        2,
        "the open circuit sent nothing"
    );
    let snap = breakers
        .existing("openai", "text-embedding-3-small")
        .unwrap()
        .snapshot();
    assert_eq!(snap.state, CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn timeout_bounds_one_embedding_attempt() {
    let provider = scripted(vec![Reply::text("").after(Duration::from_secs(90))]);
    let model = TimeoutLayer::new()
        .attempt(Duration::from_secs(10))
        .layer_embedding(provider)
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = model.embed(EmbeddingRequest::new(["a"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(start.elapsed(), Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn deadline_bounds_every_embedding_retry_together() {
    let provider = scripted(vec![Reply::text("").after(Duration::from_secs(600)); 5]);
    let model = Pipeline::builder()
        .layer(DeadlineLayer::new(Duration::from_secs(6)))
        .layer(RetryLayer::new())
        .layer(TimeoutLayer::new().attempt(Duration::from_secs(5)))
        .build_embedding(provider)
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = model.embed(EmbeddingRequest::new(["a"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(
        start.elapsed() <= Duration::from_secs(6),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn trace_records_and_prices_an_embedding_call() {
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 64);
    let trace = TraceLayer::builder().export(queue.clone()).build();
    let metrics = trace.metrics().clone();
    let model = Pipeline::builder()
        .layer(trace)
        .build_embedding(Arc::new(embedder()))
        .unwrap();
    // 8 characters -> 2 tokens per input with the scripted model's count.
    let resp = model
        .embed(EmbeddingRequest::new(["abcdefgh", "ijklmnop"]))
        .await
        .unwrap();
    let cost = resp.cost.clone().expect("priced from the bundled table");
    // text-embedding-3-small: $0.02 per million input tokens.
    assert_eq!(
        cost.total_usd,
        Decimal::from(resp.usage.input_tokens) * Decimal::new(2, 2) / Decimal::from(1_000_000)
    );
    assert_eq!(cost.price_table, PriceTable::bundled().version());
    queue.flush().await;
    let records = sink.records();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r.operation, "embeddings");
    assert_eq!(r.provider, "openai");
    assert_eq!(r.request_model, "text-embedding-3-small");
    assert_eq!(r.usage.unwrap().input_tokens, resp.usage.input_tokens);
    assert_eq!(r.request_id, resp.request_id);
    assert!(r.request_id.is_some());
    assert_eq!(r.attempts, 1);
    assert!(!r.cost_unknown);
    assert_eq!(metrics.snapshot().total().requests, 1);
}

#[tokio::test]
async fn trace_records_a_failed_embedding_call() {
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 64);
    let provider = scripted(vec![Reply::server_error(500)]);
    let model = TraceLayer::builder()
        .export(queue.clone())
        .build()
        .layer_embedding(provider)
        .unwrap();
    let err = model.embed(EmbeddingRequest::new(["a"])).await.unwrap_err();
    queue.flush().await;
    let records = sink.records();
    assert_eq!(records[0].operation, "embeddings");
    assert_eq!(records[0].error_type, Some(err.kind()));
}

#[tokio::test]
async fn cache_hits_the_same_input_and_embeds_only_new_ones() {
    let provider = Arc::new(embedder());
    let cache = CacheLayer::new();
    let stats = cache.stats_handle();
    let model = cache.layer_embedding(provider.clone()).unwrap();

    let first = model
        .embed(EmbeddingRequest::new(["alpha beta", "gamma"]))
        .await
        .unwrap();
    assert!(first.trail.has("cache", "miss"));
    let again = model
        .embed(EmbeddingRequest::new(["alpha beta", "gamma"]))
        .await
        .unwrap();
    assert!(again.trail.has("cache", "hit"));
    assert_eq!(again.embeddings, first.embeddings);
    assert_eq!(again.usage.input_tokens, 0, "a hit costs nothing");
    assert_eq!(provider.embed_requests().len(), 1);

    // One cached input, one new: only the new one goes upstream, in input order.
    let mixed = model
        .embed(EmbeddingRequest::new(["delta", "alpha beta"]))
        .await
        .unwrap();
    let sent = provider.embed_requests();
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].inputs, vec!["delta".to_owned()]);
    assert_eq!(mixed.embeddings[1], first.embeddings[0]);
    assert_eq!(
        mixed.embeddings[0],
        llmkit_core::scripted::hashed_embedding("delta", 16)
    );
    let s = stats.get();
    assert_eq!((s.hits, s.misses), (3, 3), "counted per input");

    // Opting out goes upstream.
    let mut req = EmbeddingRequest::new(["gamma"]);
    req.meta.no_cache = true;
    model.embed(req).await.unwrap();
    assert_eq!(provider.embed_requests().len(), 3);
}

#[tokio::test]
async fn cache_keys_embeddings_by_model_and_dimensions() {
    let provider = Arc::new(embedder());
    let model = CacheLayer::new().layer_embedding(provider.clone()).unwrap();
    model.embed(EmbeddingRequest::new(["same"])).await.unwrap();
    let mut shorter = EmbeddingRequest::new(["same"]);
    shorter.dimensions = Some(8);
    let resp = model.embed(shorter).await.unwrap();
    assert_eq!(resp.embeddings[0].len(), 8);
    let mut other = EmbeddingRequest::new(["same"]);
    other.model = Some("text-embedding-3-large".into());
    model.embed(other).await.unwrap();
    assert_eq!(
        provider.embed_requests().len(),
        3,
        "no hit across dimensions or models"
    );
}

#[tokio::test]
async fn budget_refuses_an_unpriced_embedding_model() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .provider("acme")
            .model("secret-embedder")
            .build(),
    );
    let budget = BudgetLayer::new(PriceTable::bundled()).per_request_usd(Decimal::ONE);
    let model = budget.layer_embedding(provider.clone()).unwrap();
    let err = model.embed(EmbeddingRequest::new(["a"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("acme/secret-embedder"), "{err}");
    assert!(
        provider.embed_requests().is_empty(),
        "refused before the call"
    );

    let open = BudgetLayer::new(PriceTable::bundled())
        .allow_unpriced(true)
        .layer_embedding(provider.clone())
        .unwrap();
    open.embed(EmbeddingRequest::new(["a"])).await.unwrap();
    assert_eq!(provider.embed_requests().len(), 1);
}

#[tokio::test]
async fn budget_reserves_and_settles_embedding_spend() {
    // $1 per million input tokens.
    let pricer = Arc::new(FlatPricer::per_million(Decimal::ONE, Decimal::ZERO));
    // The scripted provider counts about four characters per token.
    let provider = Arc::new(ScriptedModel::builder().build());
    let budget =
        BudgetLayer::new(pricer).per_tenant_usd(Decimal::new(1, 5), Duration::from_secs(3600)); // $0.00001 = 10 tokens
    let model = budget.layer_embedding(provider.clone()).unwrap();
    let mut small = EmbeddingRequest::new(["abcdefgh"]); // 2 tokens
    small.meta.tenant = Some("acme".into());
    let resp = model.embed(small).await.unwrap();
    assert!(resp.trail.has("budget", "settled"));
    assert_eq!(
        budget.tenant_spend("acme").await.unwrap(),
        Decimal::new(2, 6)
    );

    let mut big = EmbeddingRequest::new(["x".repeat(400)]); // 100 tokens
    big.meta.tenant = Some("acme".into());
    let err = model.embed(big).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BudgetExceeded);
    assert_eq!(
        provider.embed_requests().len(),
        1,
        "refused before the call"
    );
    assert_eq!(
        budget.tenant_spend("acme").await.unwrap(),
        Decimal::new(2, 6),
        "nothing reserved"
    );
}

#[tokio::test]
async fn a_layer_without_an_embedding_form_is_named_not_skipped() {
    let err = Pipeline::builder()
        .layer(RetryLayer::new())
        .layer(layer_fn("tag", |r| r))
        .build_embedding(Arc::new(embedder()))
        .err()
        .expect("refused");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("MapRequestLayer"), "{err}");
}

/// The recommended order, outermost first, as one embedding stack:
/// Trace → Deadline → Cache → Budget → Retry → Breaker → Timeout → provider.
#[tokio::test(start_paused = true)]
async fn composed_embedding_stack() {
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 64);
    let breakers = CircuitBreakerLayer::new();
    let budget = BudgetLayer::new(PriceTable::bundled())
        .per_tenant_usd(Decimal::ONE, Duration::from_secs(86_400));
    let cache = CacheLayer::new();
    let stats = cache.stats_handle();
    let stack = Pipeline::builder()
        .layer(TraceLayer::builder().export(queue.clone()).build())
        .layer(DeadlineLayer::new(Duration::from_secs(30)))
        .layer(cache)
        .layer(budget.clone())
        .layer(RetryLayer::new().backoff(Backoff::exponential().base(Duration::from_millis(50))))
        .layer(breakers.clone())
        .layer(TimeoutLayer::new().attempt(Duration::from_secs(5)));
    let provider = scripted(vec![
        Reply::rate_limited(Duration::from_secs(1)),
        Reply::text("").after(Duration::from_secs(60)),
    ]);
    let model = stack.build_embedding(provider.clone()).unwrap();

    let ask = || {
        let mut r = EmbeddingRequest::new(["how do refunds work", "shipping times"]);
        r.meta.tenant = Some("acme".into());
        r
    };
    let first = model.embed(ask()).await.unwrap();
    assert_eq!(first.embeddings.len(), 2);
    assert_eq!(
        provider.embed_requests().len(),
        3,
        "a 429, a timed-out attempt, then an answer"
    );
    assert_eq!(first.trail.by_layer("retry").count(), 3);
    assert!(first.trail.has("budget", "settled"));
    assert!(budget.tenant_spend("acme").await.unwrap() > Decimal::ZERO);
    assert_eq!(
        breakers.snapshots()[0].state,
        CircuitState::Closed,
        "two failures stay under the default threshold"
    );

    let second = model.embed(ask()).await.unwrap();
    assert_eq!(second.embeddings, first.embeddings);
    assert_eq!(provider.embed_requests().len(), 3, "served from the cache");
    assert_eq!(stats.get().hits, 2);

    queue.flush().await;
    let records = sink.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].attempts, 3);
    assert!(!records[0].cache_hit);
    assert!(records[1].cache_hit);
    assert_eq!(records[1].attempts, 0, "a hit sent no request");
    assert_eq!(
        records[1].cost.as_ref().map(|c| c.total_usd),
        Some(Decimal::ZERO)
    );
    assert!(records.iter().all(|r| r.operation == "embeddings"));
}

#[tokio::test(start_paused = true)]
async fn semantic_cache_embeds_through_the_layers() {
    use llmkit_core::cache::SemanticCacheLayer;
    use llmkit_core::{ChatModel, ChatRequest};

    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 64);
    let embedder = scripted(vec![Reply::overloaded()]);
    let layers = Pipeline::builder()
        .layer(TraceLayer::builder().export(queue.clone()).build())
        .layer(RetryLayer::new().backoff(Backoff::exponential().base(Duration::from_millis(10))));
    let semantic = SemanticCacheLayer::new(embedder.clone())
        .with_embedding_layers(&layers)
        .unwrap();
    let provider = Arc::new(ScriptedModel::always("Paris"));
    let model = semantic.layer(provider.clone());
    let ask = || {
        let mut r = ChatRequest::user("what is the capital of france");
        r.meta.tags.insert("semantic_cache".into(), "on".into());
        r
    };
    model.chat(ask()).await.unwrap();
    let second = model.chat(ask()).await.unwrap();
    assert!(second.trail.has("semantic_cache", "hit"));
    assert_eq!(provider.call_count(), 1);
    assert_eq!(
        embedder.embed_requests().len(),
        3,
        "one retried lookup, then one"
    );
    queue.flush().await;
    let records = sink.records();
    assert_eq!(records.len(), 2);
    assert!(records.iter().all(|r| r.operation == "embeddings"));
    assert_eq!(records[0].attempts, 2);

    // A layer without an embedding form is refused, not skipped.
    let err = SemanticCacheLayer::new(embedder)
        .with_embedding_layers(&Pipeline::builder().layer(layer_fn("tag", |r| r)))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
}
