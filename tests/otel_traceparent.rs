#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! With the `otel` feature, provider requests carry the W3C `traceparent` of the current span
//! (issue 19): sent through the providers' shared transport, to a local fake server.
#![cfg(feature = "otel")]

use std::sync::Arc;

use llmkit::core::telemetry::otel::OtlpConfig;
use llmkit::core::telemetry::{MetricsRegistry, TraceLayer};
use llmkit::core::{ChatModel, ChatRequest, Pipeline};
use llmkit::providers::openai::OpenAiModel;
use llmkit_testkit::{CannedResponse, FakeServer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn completion() -> CannedResponse {
    CannedResponse::json(
        200,
        &serde_json::json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "ok"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        }),
    )
}

/// `00-<32 hex trace id>-<16 hex span id>-<flags>` with non-zero ids, as W3C requires.
fn trace_id(traceparent: &str) -> String {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[1].len(), 32);
    assert_eq!(parts[2].len(), 16);
    for id in &parts[1..3] {
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()) && id.chars().any(|c| c != '0'));
    }
    parts[1].to_owned()
}

#[tokio::test]
async fn provider_requests_carry_the_current_traceparent_only_when_traced() {
    let server = FakeServer::start().await.unwrap();
    for _ in 0..3 {
        server.push(completion());
    }
    let provider: Arc<dyn ChatModel> = Arc::new(
        OpenAiModel::compatible(format!("{}/v1", server.base_url()), "gpt-4o-mini").unwrap(),
    );
    let model = Pipeline::builder().layer(TraceLayer::new()).build(provider);
    // Nothing listens on port 9: spans are dropped by the exporter, which is fine here.
    let export = OtlpConfig::new("traceparent-test")
        .endpoint("http://127.0.0.1:9")
        .install(MetricsRegistry::new())
        .unwrap();

    model.chat(ChatRequest::user("untraced")).await.unwrap();
    {
        let _guard = tracing_subscriber::registry()
            .with(export.tracing_layer())
            .set_default();
        model.chat(ChatRequest::user("first")).await.unwrap();
        model.chat(ChatRequest::user("second")).await.unwrap();
    }
    export.shutdown();

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[0].header("traceparent"),
        None,
        "no OpenTelemetry layer, no header"
    );
    let first = trace_id(requests[1].header("traceparent").unwrap());
    let second = trace_id(requests[2].header("traceparent").unwrap());
    assert_ne!(first, second, "each call is its own trace");
}
