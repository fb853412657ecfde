//! Ollama provider against a local fake server: the request we send (method, path, body shape)
//! and the response we parse, for chat, NDJSON streaming, tools, structured output, embeddings
//! and errors.
#![cfg(feature = "ollama")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use llmkit_core::{
    ChatModel, ChatRequest, EmbeddingModel, EmbeddingRequest, ErrorKind, FinishReason, Message,
    ResponseFormat, ToolDefinition, collect_stream,
};
use llmkit_providers::ollama::OllamaModel;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A client per test: `#[tokio::test]` gives each test its own runtime, and a pooled
/// connection must not outlive the runtime that opened it.
fn client() -> reqwest::Client {
    llmkit_providers::http::build_client(&llmkit_providers::http::HttpClientOptions::default())
        .unwrap()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/ollama/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn model(server: &MockServer) -> OllamaModel {
    OllamaModel::builder("llama3.2")
        .host(server.uri())
        .http_client(client())
        .build()
        .unwrap()
}

async fn last_body(server: &MockServer) -> Value {
    let reqs = server.received_requests().await.unwrap();
    serde_json::from_slice(&reqs.last().unwrap().body).unwrap()
}

#[tokio::test]
async fn chat_path_body_and_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("chat.response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let r = model(&server)
        .chat(
            ChatRequest::new(vec![
                Message::system("Be brief."),
                Message::user("Refund window?"),
            ])
            .with_temperature(0.0),
        )
        .await
        .unwrap();
    assert_eq!(r.text(), "Refunds are accepted within 30 days.");
    assert_eq!(r.usage.input_tokens, 31);
    assert_eq!(r.usage.output_tokens, 11);
    let body = last_body(&server).await;
    assert_eq!(body["stream"], false);
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(body["options"]["temperature"], 0.0);
    let reqs = server.received_requests().await.unwrap();
    assert!(reqs[0].headers.get("authorization").is_none());
}

#[tokio::test]
async fn tool_round_trip_and_structured_output() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(fixture("chat-tools.response.json")),
        )
        .mount(&server)
        .await;
    let m = model(&server);
    let tool = ToolDefinition::new(
        "get_weather",
        "Weather",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    );
    let r = m
        .chat(ChatRequest::user("Paris and Rome?").with_tool(tool.clone()))
        .await
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let calls: Vec<_> = r.tool_calls().into_iter().cloned().collect();
    let follow = ChatRequest::new(vec![
        Message::user("Paris and Rome?"),
        r.message.clone(),
        Message::tool_result(&calls[0].id, "18C"),
        Message::tool_result(&calls[1].id, "24C"),
    ])
    .with_tool(tool)
    .with_response_format(ResponseFormat::JsonSchema {
        name: "w".into(),
        schema: json!({"type": "object", "properties": {"summary": {"type": "string"}}}),
        strict: false,
    });
    m.chat(follow).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(
        body["messages"][2],
        json!({"role": "tool", "content": "18C", "tool_name": "get_weather"})
    );
    assert_eq!(body["messages"][3]["tool_name"], "get_weather");
    assert_eq!(body["format"]["properties"]["summary"]["type"], "string");
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
}

#[tokio::test]
async fn ndjson_streaming() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-ndjson")
                .set_body_string(fixture("chat-stream.ndjson")),
        )
        .mount(&server)
        .await;
    let m = model(&server);
    let r = collect_stream(m.stream(ChatRequest::user("Sky?")).await.unwrap(), m.info())
        .await
        .unwrap();
    assert_eq!(r.text(), "The sky is blue.");
    assert_eq!(r.finish_reason, FinishReason::Length);
    assert_eq!(r.usage.input_tokens, 26);
    assert_eq!(last_body(&server).await["stream"], true);
}

#[tokio::test]
async fn mid_stream_error_and_truncation() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(fixture("chat-stream-error.ndjson")),
        )
        .mount(&server)
        .await;
    let m = model(&server);
    let err = collect_stream(m.stream(ChatRequest::user("x")).await.unwrap(), m.info())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);

    let cut: String = fixture("chat-stream.ndjson")
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(cut))
        .mount(&server)
        .await;
    let m = model(&server);
    let err = collect_stream(m.stream(ChatRequest::user("x")).await.unwrap(), m.info())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
}

#[tokio::test]
async fn embeddings() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/embed"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("embed.response.json")))
        .mount(&server)
        .await;
    let r = model(&server)
        .embed(EmbeddingRequest::new(["a", "b"]).with_model_name("all-minilm"))
        .await
        .unwrap();
    assert_eq!(r.embeddings.len(), 2);
    assert_eq!(r.usage.input_tokens, 16);
    assert_eq!(
        last_body(&server).await,
        json!({"model": "all-minilm", "input": ["a", "b"]})
    );
}

#[tokio::test]
async fn error_classes() {
    let cases = [
        (404, fixture("error-404.response.json"), ErrorKind::NotFound),
        (
            503,
            json!({"error": "server busy, please try again.  maximum pending requests exceeded"})
                .to_string(),
            ErrorKind::Overloaded,
        ),
        (
            400,
            json!({"error": "invalid options"}).to_string(),
            ErrorKind::InvalidRequest,
        ),
        (
            500,
            json!({"error": "llama runner process has terminated"}).to_string(),
            ErrorKind::Server,
        ),
    ];
    for (status, body, kind) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).set_body_string(body))
            .mount(&server)
            .await;
        let err = model(&server)
            .chat(ChatRequest::user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{status}");
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.provider(), Some("ollama"));
    }
}

trait WithModel {
    fn with_model_name(self, model: &str) -> Self;
}

impl WithModel for EmbeddingRequest {
    fn with_model_name(mut self, model: &str) -> Self {
        self.model = Some(model.to_owned());
        self
    }
}

#[tokio::test]
async fn factory_builds_it_from_the_environment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("chat.response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let uri = server.uri();
    let m = llmkit_providers::factory::from_lookup(|name| match name {
        "LLMKIT_PROVIDER" => Some("ollama".to_owned()),
        "LLMKIT_MODEL" => Some("qwen3:8b".to_owned()),
        "OLLAMA_HOST" => Some(uri.clone()),
        _ => None,
    })
    .unwrap();
    assert_eq!(m.info().provider, "ollama");
    m.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(last_body(&server).await["model"], "qwen3:8b");
}
