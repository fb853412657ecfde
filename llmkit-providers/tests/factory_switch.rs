//! Switching provider is a configuration change: the same code, three environments, three
//! providers (each on a local fake server).
#![cfg(feature = "azure")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use llmkit_core::{ChatModel, ChatRequest, EmbeddingModel, EmbeddingRequest};
use llmkit_providers::factory::{embedding_from_lookup, from_lookup};
use llmkit_testkit::{CannedResponse, FakeServer};
use serde_json::json;

/// Provider-neutral application code.
async fn ask(model: Arc<dyn ChatModel>) -> String {
    model.chat(ChatRequest::user("hi")).await.unwrap().text()
}

fn env(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<&str, String> = pairs.into_iter().collect();
    move |k| map.get(k).cloned()
}

#[tokio::test]
async fn same_code_on_three_providers() {
    let reply = common::own_fixture("openai/reply.response.json");
    let server = FakeServer::start().await.unwrap();
    for _ in 0..3 {
        server.push(CannedResponse::raw(200, "application/json", reply.clone()));
    }
    let base = server.base_url();
    let envs = [
        env(vec![
            ("LLMKIT_PROVIDER", "openai".into()),
            ("LLMKIT_MODEL", "gpt-4o-mini".into()),
            ("OPENAI_API_KEY", "sk-a".into()),
            ("OPENAI_BASE_URL", format!("{base}/v1")),
        ]),
        env(vec![
            ("LLMKIT_PROVIDER", "openai_compatible".into()),
            ("LLMKIT_MODEL", "qwen2.5".into()),
            ("OPENAI_BASE_URL", format!("{base}/v1")),
        ]),
        env(vec![
            ("LLMKIT_PROVIDER", "azure".into()),
            ("AZURE_OPENAI_ENDPOINT", base.clone()),
            ("AZURE_OPENAI_API_KEY", "azure-key".into()),
            ("AZURE_OPENAI_DEPLOYMENT", "prod".into()),
        ]),
    ];
    let mut providers = Vec::new();
    for lookup in envs {
        let model = from_lookup(lookup).unwrap();
        providers.push(model.info().provider.clone());
        assert_eq!(ask(model).await, "It is 18°C and sunny in Paris.");
    }
    assert_eq!(
        providers,
        ["openai", "openai_compatible", "azure.ai.openai"]
    );
    let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/v1/chat/completions",
            "/v1/chat/completions",
            "/openai/deployments/prod/chat/completions"
        ]
    );
}

#[tokio::test]
async fn embeddings_from_the_environment() {
    let server = FakeServer::start().await.unwrap();
    server.push(CannedResponse::json(
        200,
        &json!({"data": [{"index": 0, "embedding": [0.25, 0.5]}], "model": "text-embedding-3-small", "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
    ));
    let model = embedding_from_lookup(env(vec![
        ("LLMKIT_PROVIDER", "openai".into()),
        ("LLMKIT_EMBEDDING_MODEL", "text-embedding-3-small".into()),
        ("OPENAI_API_KEY", "sk-a".into()),
        ("OPENAI_BASE_URL", format!("{}/v1", server.base_url())),
    ]))
    .unwrap();
    let r = model.embed(EmbeddingRequest::new(["hello"])).await.unwrap();
    assert_eq!(r.embeddings, vec![vec![0.25, 0.5]]);
    assert_eq!(r.usage.input_tokens, 2);
    assert_eq!(
        server.requests()[0].json().unwrap()["encoding_format"],
        "float"
    );
}
