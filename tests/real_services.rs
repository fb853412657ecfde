//! Integration tests against software no one on this project wrote: a small real LLM (Gemma 3
//! 270M via node-llama-cpp behind an OpenAI-compatible shim) and the third-party mock server
//! `llm-mock-api` (OpenAI and Anthropic wire formats).
//!
//! They need `scripts/test-services.sh up` (which exports `LLMKIT_TEST_LLAMA_URL` and
//! `LLMKIT_TEST_MOCK_URL`), so they are `#[ignore]`d: a plain `cargo test` lists them as ignored.
//! Run them with `cargo test --workspace --all-features -- --ignored` after provisioning; a
//! missing service then fails the test (see `support/services.rs`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use llmkit::core::{
    ChatModel, ChatRequest, FinishReason, Message, StructuredExt, ToolDefinition, collect_stream,
};
use llmkit::providers::anthropic::AnthropicModel;
use llmkit::providers::openai::OpenAiModel;
use schemars::JsonSchema;
use serde::Deserialize;

#[path = "support/services.rs"]
mod services;
use services::service;

fn llama() -> Arc<dyn ChatModel> {
    let url = service("LLMKIT_TEST_LLAMA_URL");
    Arc::new(OpenAiModel::compatible(url, "gemma-3-270m-q4_k_m").unwrap())
}

#[tokio::test]
#[ignore = "needs the real model: run scripts/test-services.sh up"]
async fn real_model_chat_has_openai_shape_and_usage() {
    let model = llama();
    let req = ChatRequest::new(vec![
        Message::system("You are a helpful assistant."),
        Message::user("Write one sentence about the sea."),
    ])
    .with_max_tokens(24)
    .with_temperature(0.0);
    let resp = model.chat(req).await.unwrap();
    assert_eq!(resp.model, "gemma-3-270m-q4_k_m");
    assert!(resp.usage.input_tokens > 0, "{:?}", resp.usage);
    assert!(
        matches!(
            resp.finish_reason,
            FinishReason::Stop | FinishReason::Length
        ),
        "{:?}",
        resp.finish_reason
    );
    assert!(resp.provider_request_id.is_some());
    println!("real model said: {:?} ({:?})", resp.text(), resp.usage);
}

#[tokio::test]
#[ignore = "needs the real model: run scripts/test-services.sh up"]
async fn real_model_stream_assembles_with_usage() {
    let model = llama();
    let req = ChatRequest::user("Count from one to five:")
        .with_max_tokens(20)
        .with_temperature(0.0);
    let stream = model.stream(req.clone()).await.unwrap();
    let streamed = collect_stream(stream, model.info()).await.unwrap();
    assert!(streamed.usage.input_tokens > 0, "usage chunk arrived");
    // Greedy decoding: the non-streamed reply must match the streamed assembly.
    let whole = model.chat(req).await.unwrap();
    assert_eq!(streamed.text(), whole.text());
    assert_eq!(streamed.usage.output_tokens, whole.usage.output_tokens);
}

/// A shape the real model must fill through llama.cpp's JSON-schema grammar.
#[derive(Debug, Deserialize, JsonSchema)]
struct City {
    name: String,
    population: u64,
    coastal: bool,
}

#[tokio::test]
#[ignore = "needs the real model: run scripts/test-services.sh up"]
async fn real_model_structured_output_is_schema_valid() {
    let model = llama();
    let req = ChatRequest::user("Describe a city as JSON.")
        .with_max_tokens(80)
        .with_temperature(0.0);
    let generated = model.generate::<City>(req).await.unwrap();
    assert!(generated.attempts >= 1);
    assert!(generated.usage.input_tokens > 0);
    println!("real model city: {:?}", generated.value);
    let _ = (
        &generated.value.name,
        generated.value.population,
        generated.value.coastal,
    );
}

#[tokio::test]
#[ignore = "needs llm-mock-api: run scripts/test-services.sh up"]
async fn mock_server_openai_chat_stream_and_tools() {
    let base = service("LLMKIT_TEST_MOCK_URL");
    let model = OpenAiModel::compatible(format!("{base}/v1"), "gpt-4o").unwrap();
    let resp = model.chat(ChatRequest::user("ping")).await.unwrap();
    assert_eq!(resp.text(), "pong from the mock server");
    assert!(resp.usage.input_tokens > 0 && resp.usage.output_tokens > 0);

    let stream = model
        .stream(ChatRequest::user("stream long"))
        .await
        .unwrap();
    let streamed = collect_stream(stream, model.info()).await.unwrap();
    assert_eq!(
        streamed.text(),
        "One two three four five six seven eight nine ten eleven twelve."
    );

    let tool = ToolDefinition::new(
        "get_weather",
        "weather for a city",
        serde_json::json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    );
    let resp = model
        .chat(ChatRequest::user("weather in Paris?").with_tool(tool))
        .await
        .unwrap();
    let calls = resp.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments["city"], "Paris");
    assert_eq!(resp.finish_reason, FinishReason::ToolCalls);
}

#[tokio::test]
#[ignore = "needs llm-mock-api: run scripts/test-services.sh up"]
async fn mock_server_anthropic_chat_stream_and_tools() {
    let base = service("LLMKIT_TEST_MOCK_URL");
    let model = AnthropicModel::builder("claude-mock")
        .api_key("test-key-not-secret")
        .base_url(base)
        .build()
        .unwrap();
    let resp = model.chat(ChatRequest::user("ping")).await.unwrap();
    assert_eq!(resp.text(), "pong from the mock server");
    assert!(resp.usage.input_tokens > 0);

    let stream = model.stream(ChatRequest::user("ping")).await.unwrap();
    let streamed = collect_stream(stream, model.info()).await.unwrap();
    assert_eq!(streamed.text(), "pong from the mock server");
    assert!(streamed.usage.output_tokens > 0);

    let resp = model
        .chat(
            ChatRequest::user("weather please").with_tool(ToolDefinition::new(
                "get_weather",
                "weather",
                serde_json::json!({"type": "object"}),
            )),
        )
        .await
        .unwrap();
    assert_eq!(resp.finish_reason, FinishReason::ToolCalls);
    assert_eq!(resp.tool_calls()[0].arguments["unit"], "celsius");
}
