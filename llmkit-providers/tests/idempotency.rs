//! Issue 17 item 5, provider side: the request's idempotency key goes out in the header the
//! provider documents, and it is the same on every retry of one logical call (the retry layer
//! resends one request; the provider must not mint a key per attempt). Providers that document
//! no such header get none (docs/providers.md, "Idempotency keys").
#![cfg(feature = "azure")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use llmkit_core::resilience::{Backoff, RetryLayer};
use llmkit_core::{ChatModel, ChatRequest, Layer};
use llmkit_providers::{ProviderConfig, ProviderKind, from_config};
use llmkit_testkit::{CannedResponse, FakeServer};
use serde_json::json;

const KEY: &str = "idem-7f3c-logical-call-1";

fn retried(model: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
    RetryLayer::new()
        .no_budget()
        .max_attempts(3)
        .backoff(Backoff::exponential().base(Duration::from_millis(1)))
        .layer(model)
}

fn server_error() -> CannedResponse {
    CannedResponse::json(
        500,
        &json!({"error": {"message": "internal", "type": "server_error"}}),
    )
}

fn openai_reply() -> CannedResponse {
    CannedResponse::json(
        200,
        &json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        }),
    )
}

fn openai_family(kind: ProviderKind, base: &str) -> ProviderConfig {
    match kind {
        ProviderKind::Azure => ProviderConfig::new(kind, "gpt-4o-mini")
            .with_base_url(base)
            .with_api_key("k"),
        _ => ProviderConfig::new(kind, "gpt-4o-mini")
            .with_base_url(format!("{base}/v1"))
            .with_api_key("k"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_family_sends_one_key_across_retries() {
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::OpenAiCompatible,
        ProviderKind::Azure,
    ] {
        let server = FakeServer::start().await.unwrap();
        server.push(server_error());
        server.push(server_error());
        server.push(openai_reply());
        let model = retried(from_config(&openai_family(kind, &server.base_url())).unwrap());
        let reply = model
            .chat(ChatRequest::user("hi").with_idempotency_key(KEY))
            .await
            .unwrap();
        assert_eq!(reply.text(), "ok");
        let sent = server.requests();
        assert_eq!(sent.len(), 3, "{kind}");
        for request in &sent {
            assert_eq!(request.header("idempotency-key"), Some(KEY), "{kind}");
        }

        // Streams carry it too, and a request without a key sends no header.
        let server = FakeServer::start().await.unwrap();
        server.push(server_error());
        server.push(CannedResponse::sse(
            "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        ));
        server.push(openai_reply());
        let model = retried(from_config(&openai_family(kind, &server.base_url())).unwrap());
        let events: Vec<_> = model
            .stream(ChatRequest::user("hi").with_idempotency_key(KEY))
            .await
            .unwrap()
            .collect()
            .await;
        assert!(events.iter().all(Result::is_ok), "{kind}: {events:?}");
        model.chat(ChatRequest::user("hi")).await.unwrap();
        let sent = server.requests();
        assert_eq!(sent.len(), 3, "{kind}");
        assert_eq!(sent[0].header("idempotency-key"), Some(KEY));
        assert_eq!(sent[1].header("idempotency-key"), Some(KEY));
        assert_eq!(sent[2].header("idempotency-key"), None, "{kind}");
    }
}

/// Anthropic, Gemini and Ollama document no idempotency header: none is sent, whatever the
/// request carries (the key still identifies the call in llmkit's own trace and stores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_without_a_documented_header_send_none() {
    let configs = |base: &str| {
        vec![
            ProviderConfig::new(ProviderKind::Anthropic, "claude-sonnet-4-5")
                .with_base_url(base)
                .with_api_key("k"),
            ProviderConfig::new(ProviderKind::Gemini, "gemini-2.5-flash")
                .with_base_url(base)
                .with_api_key("k"),
            ProviderConfig::new(ProviderKind::Ollama, "llama3.2").with_base_url(base),
        ]
    };
    let server = FakeServer::start().await.unwrap();
    for config in configs(&server.base_url()) {
        let model = from_config(&config).unwrap();
        // The fake server has no canned reply left: each call fails after one request.
        let _ = model
            .chat(ChatRequest::user("hi").with_idempotency_key(KEY))
            .await;
    }
    let sent = server.requests();
    assert_eq!(sent.len(), 3);
    for request in sent {
        assert!(
            request
                .headers
                .iter()
                .all(|(name, value)| !name.contains("idempotency") && value != KEY),
            "{request:?}"
        );
    }
}
