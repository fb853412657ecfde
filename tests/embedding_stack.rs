//! A real embedding provider (the OpenAI client over HTTP, against a local fake server) behind
//! the recommended layers, built from the same `Pipeline` a chat model uses (issue 19 item 3).

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
use llmkit::core::resilience::{Backoff, CircuitBreakerLayer, RetryLayer, TimeoutLayer};
use llmkit::core::telemetry::{ExportQueue, MemorySink, TraceLayer};
use llmkit::core::{Decimal, EmbeddingModel, EmbeddingRequest, ErrorKind, Pipeline, PriceTable};
use llmkit::providers::openai::OpenAiEmbeddings;
use llmkit::providers::{ProviderConfig, ProviderKind};
use llmkit_testkit::{CannedResponse, FakeServer};
use serde_json::json;

fn rate_limited() -> CannedResponse {
    CannedResponse::json(
        429,
        &json!({"error": {"message": "Rate limit reached for text-embedding-3-small", "type": "requests", "code": "rate_limit_exceeded"}}),
    )
    .with_header("retry-after-ms", "200")
}

fn vectors(n: usize, tokens: u64) -> CannedResponse {
    let data: Vec<_> = (0..n)
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [0.25, -0.5, i as f32]}))
        .collect();
    CannedResponse::json(
        200,
        &json!({"object": "list", "data": data, "model": "text-embedding-3-small",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

async fn embedder(server: &FakeServer) -> Arc<dyn EmbeddingModel> {
    Arc::new(
        OpenAiEmbeddings::from_config(
            &ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o-mini")
                .with_embedding_model("text-embedding-3-small")
                .with_api_key("sk-test")
                .with_base_url(format!("{}/v1", server.base_url())),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn openai_embeddings_behind_the_recommended_layers() {
    let server = FakeServer::start().await.unwrap();
    server.push(rate_limited());
    server.push(vectors(2, 9));
    let sink = MemorySink::new();
    let queue = ExportQueue::spawn(Arc::new(sink.clone()), 64);
    let budget = BudgetLayer::new(PriceTable::bundled())
        .per_tenant_usd(Decimal::ONE, Duration::from_secs(3600));
    let layers = Pipeline::builder()
        .layer(TraceLayer::builder().export(queue.clone()).build())
        .layer(CacheLayer::new())
        .layer(budget.clone())
        .layer(RetryLayer::new().backoff(Backoff::exponential().base(Duration::from_millis(10))))
        .layer(CircuitBreakerLayer::new())
        .layer(TimeoutLayer::new().attempt(Duration::from_secs(10)));
    let model = layers.build_embedding(embedder(&server).await).unwrap();

    let ask = || {
        let mut r = EmbeddingRequest::new(["how do refunds work", "shipping times"]);
        r.meta.tenant = Some("acme".into());
        r
    };
    let resp = model.embed(ask()).await.unwrap();
    assert_eq!(resp.embeddings.len(), 2);
    assert_eq!(resp.embeddings[1], vec![0.25, -0.5, 1.0]);
    assert_eq!(server.requests().len(), 2, "the 429 was retried once");
    assert!(resp.trail.has("retry", "attempt_failed"));
    // Settled at the real usage: 9 tokens at $0.02 per million.
    let real = Decimal::from(9) * Decimal::new(2, 2) / Decimal::from(1_000_000);
    assert_eq!(resp.cost.as_ref().map(|c| c.total_usd), Some(real));
    assert_eq!(budget.tenant_spend("acme").await.unwrap(), real);

    let again = model.embed(ask()).await.unwrap();
    assert_eq!(again.embeddings, resp.embeddings);
    assert_eq!(server.requests().len(), 2, "the cache answered");

    queue.flush().await;
    let records = sink.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].operation, "embeddings");
    assert_eq!(records[0].attempts, 2);
    assert_eq!(records[0].usage.map(|u| u.input_tokens), Some(9));
    assert!(records[1].cache_hit);
}

#[tokio::test]
async fn an_embedding_quota_error_is_not_retried() {
    let server = FakeServer::start().await.unwrap();
    server.push(CannedResponse::json(
        429,
        &json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "code": "insufficient_quota"}}),
    ));
    let model = Pipeline::builder()
        .layer(RetryLayer::new())
        .build_embedding(embedder(&server).await)
        .unwrap();
    let err = model.embed(EmbeddingRequest::new(["a"])).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(server.requests().len(), 1);
}
