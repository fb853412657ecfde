//! Anthropic provider against a local fake server: the request we send (method, path, headers,
//! body shape) and the response we parse, for chat, streaming, tools, structured output,
//! caching, usage and every error class.
#![cfg(feature = "anthropic")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use futures::StreamExt;
use llmkit_core::{
    ChatModel, ChatRequest, ErrorKind, FinishReason, Message, ResponseFormat, StreamEvent,
    ToolDefinition, collect_stream,
};
use llmkit_providers::anthropic::AnthropicModel;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sk-ant-test-0123456789abcdefSECRET";

/// A client per test: `#[tokio::test]` gives each test its own runtime, and a pooled
/// connection must not outlive the runtime that opened it.
fn client() -> reqwest::Client {
    llmkit_providers::http::build_client(&llmkit_providers::http::HttpClientOptions::default())
        .unwrap()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/anthropic/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn model(server: &MockServer) -> AnthropicModel {
    AnthropicModel::builder("claude-sonnet-4-5")
        .api_key(KEY)
        .base_url(server.uri())
        .http_client(client())
        .build()
        .unwrap()
}

fn ok_json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .insert_header("request-id", "req_fake_1")
        .set_body_string(body)
}

async fn last_body(server: &MockServer) -> Value {
    let reqs = server.received_requests().await.unwrap();
    serde_json::from_slice(&reqs.last().unwrap().body).unwrap()
}

#[tokio::test]
async fn plain_chat_sends_headers_and_parses_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .and(header("content-type", "application/json"))
        .respond_with(ok_json(&fixture("message-cache-usage.response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let m = model(&server);
    let r = m
        .chat(
            ChatRequest::new(vec![
                Message::system("Answer from the refund policy."),
                Message::user("Refund window?"),
            ])
            .with_request_id("llmkit-req-1"),
        )
        .await
        .unwrap();
    assert_eq!(r.text(), "Refunds are accepted within 30 days.");
    assert_eq!(r.provider, "anthropic");
    assert_eq!(r.provider_request_id.as_deref(), Some("req_fake_1"));
    assert_eq!(r.request_id.as_deref(), Some("llmkit-req-1"));
    assert_eq!(r.usage.input_tokens, 25 + 2048);
    assert_eq!(r.usage.cached_input_tokens, 2048);
    let body = last_body(&server).await;
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["system"][0]["text"], "Answer from the refund policy.");
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "Refund window?"}]}])
    );
}

#[tokio::test]
async fn tool_call_round_trip() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ok_json(&fixture("message-tool-use.response.json")))
        .mount(&server)
        .await;
    let m = model(&server);
    let tool = ToolDefinition::new(
        "get_weather",
        "Weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    );
    let req = ChatRequest::user("Weather in Paris?").with_tool(tool.clone());
    let r = m.chat(req).await.unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let call = r.tool_calls()[0].clone();
    assert_eq!(call.arguments["city"], "Paris");

    let follow = ChatRequest::new(vec![
        Message::user("Weather in Paris?"),
        r.message.clone(),
        Message::tool_result(&call.id, r#"{"temp_c": 18}"#),
    ])
    .with_tool(tool);
    m.chat(follow).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(body["messages"][1]["role"], "assistant");
    assert_eq!(body["messages"][1]["content"][1]["type"], "tool_use");
    assert_eq!(body["messages"][1]["content"][1]["id"], "toolu_llmkit_02");
    assert_eq!(
        body["messages"][2]["content"][0],
        json!({"type": "tool_result", "tool_use_id": "toolu_llmkit_02", "content": "{\"temp_c\": 18}"})
    );
}

#[tokio::test]
async fn structured_output_returns_json_text() {
    let server = MockServer::start().await;
    let reply = json!({
        "id": "msg_s", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "tool_use", "id": "toolu_s", "name": "Verdict", "input": {"approved": true}}],
        "stop_reason": "tool_use", "usage": {"input_tokens": 50, "output_tokens": 9}
    });
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ok_json(&reply.to_string()))
        .mount(&server)
        .await;
    let r = model(&server)
        .chat(
            ChatRequest::user("Approve?").with_response_format(ResponseFormat::JsonSchema {
                name: "Verdict".into(),
                schema: json!({"type": "object", "properties": {"approved": {"type": "boolean"}}}),
                strict: true,
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.text(), r#"{"approved":true}"#);
    assert_eq!(r.finish_reason, FinishReason::Stop);
    let body = last_body(&server).await;
    assert_eq!(
        body["tool_choice"],
        json!({"type": "tool", "name": "Verdict"})
    );
}

#[tokio::test]
async fn streaming_assembles_and_sends_stream_true() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .insert_header("request-id", "req_stream_1")
                .set_body_string(fixture("stream-text-tool.sse")),
        )
        .mount(&server)
        .await;
    let m = model(&server);
    let stream = m.stream(ChatRequest::user("Weather?")).await.unwrap();
    let r = collect_stream(stream, m.info()).await.unwrap();
    assert_eq!(r.text(), "Checking the weather.");
    assert_eq!(r.tool_calls()[0].arguments, json!({"city": "Paris"}));
    assert_eq!(r.provider_request_id.as_deref(), Some("req_stream_1"));
    assert_eq!(r.usage.input_tokens, 1540);
    assert_eq!(last_body(&server).await["stream"], true);
}

#[tokio::test]
async fn stream_error_event_and_early_end() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(fixture("stream-error-midway.sse")),
        )
        .mount(&server)
        .await;
    let m = model(&server);
    let events: Vec<_> = m
        .stream(ChatRequest::user("x"))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(matches!(
        events.iter().find(|e| e.is_ok()),
        Some(Ok(StreamEvent::Start { .. }))
    ));
    let err = events.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);

    // Cut after the first delta: no message_stop, so the stream is truncated.
    let cut: String = fixture("stream-text-tool.sse")
        .split("\n\n")
        .take(4)
        .collect::<Vec<_>>()
        .join("\n\n");
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

/// Issue 17 item 2: a stream cut off before `message_stop` must end with `Err(Truncated)` from
/// the stream itself (not only from a collector that notices the missing `Done`), and never
/// with a `Done`.
#[tokio::test]
async fn stream_cut_before_message_stop_ends_with_a_truncated_error() {
    let cut: String = fixture("stream-text-tool.sse")
        .split("\n\n")
        .take(4)
        .map(|e| format!("{e}\n\n"))
        .collect();
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(cut),
        )
        .mount(&server)
        .await;
    let m = model(&server);
    let events: Vec<_> = m
        .stream(ChatRequest::user("x").with_request_id("req-cut"))
        .await
        .unwrap()
        .collect()
        .await;
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Ok(StreamEvent::Done { .. }))),
        "{events:?}"
    );
    let err = events.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Truncated);
    assert_eq!(err.provider(), Some("anthropic"));
    assert_eq!(err.request_id(), Some("req-cut"));
}

#[tokio::test]
async fn error_classes() {
    let cases: Vec<(u16, String, Option<&str>, ErrorKind)> = vec![
        (429, fixture("error-429-rate-limit.response.json"), Some("7"), ErrorKind::RateLimited),
        (529, fixture("error-529-overloaded.response.json"), None, ErrorKind::Overloaded),
        (401, fixture("error-401-echoes-key.response.json"), None, ErrorKind::Auth),
        (
            400,
            json!({"type": "error", "error": {"type": "invalid_request_error", "message": "messages: field required"}}).to_string(),
            None,
            ErrorKind::InvalidRequest,
        ),
        (
            404,
            json!({"type": "error", "error": {"type": "not_found_error", "message": "model: claude-x"}}).to_string(),
            None,
            ErrorKind::NotFound,
        ),
        (
            500,
            json!({"type": "error", "error": {"type": "api_error", "message": "Internal server error"}}).to_string(),
            None,
            ErrorKind::Server,
        ),
    ];
    for (status, body, retry_after, kind) in cases {
        let server = MockServer::start().await;
        let mut resp = ResponseTemplate::new(status)
            .insert_header("content-type", "application/json")
            .insert_header("request-id", "req_err")
            .set_body_string(body);
        if let Some(ra) = retry_after {
            resp = resp.insert_header("retry-after", ra);
        }
        Mock::given(method("POST"))
            .respond_with(resp)
            .mount(&server)
            .await;
        let err = model(&server)
            .chat(ChatRequest::user("hi"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "status {status}: {err}");
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.provider(), Some("anthropic"));
        assert!(err.provider_request_id().is_some());
        if retry_after.is_some() {
            assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        }
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains("0123456789abcdefSECRET"), "{shown}");
            assert!(!shown.contains("SECRETabc123"), "{shown}");
        }
    }
}

#[tokio::test]
async fn connection_refused_is_transport() {
    // A port nobody listens on (wiremock pools its servers, so a dropped one still answers).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let m = AnthropicModel::builder("claude-sonnet-4-5")
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{port}"))
        .http_client(client())
        .build()
        .unwrap();
    let err = m.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(!format!("{err:?}").contains("SECRET"));
}

#[test]
fn debug_never_shows_the_key() {
    let m = AnthropicModel::builder("claude-sonnet-4-5")
        .api_key(KEY)
        .http_client(client())
        .build()
        .unwrap();
    let b = AnthropicModel::builder("claude-sonnet-4-5").api_key(KEY);
    for shown in [
        format!("{m:?}"),
        format!("{b:?}"),
        format!("{:?}", m.info()),
    ] {
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}

#[tokio::test]
async fn factory_builds_it_from_the_environment() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", KEY))
        .respond_with(ok_json(&fixture("message-tool-use.response.json")))
        .mount(&server)
        .await;
    let uri = server.uri();
    let m = llmkit_providers::factory::from_lookup(|name| match name {
        "LLMKIT_PROVIDER" => Some("anthropic".to_owned()),
        "LLMKIT_MODEL" => Some("claude-haiku-4-5".to_owned()),
        "ANTHROPIC_API_KEY" => Some(KEY.to_owned()),
        "ANTHROPIC_BASE_URL" => Some(uri.clone()),
        _ => None,
    })
    .unwrap();
    assert_eq!(m.info().provider, "anthropic");
    assert_eq!(m.info().model, "claude-haiku-4-5");
    assert_eq!(
        m.info().system_instructions,
        llmkit_core::SystemInstructions::Separate,
        "traces record the system prompt as gen_ai.system_instructions"
    );
    m.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(last_body(&server).await["model"], "claude-haiku-4-5");

    let err = llmkit_providers::factory::from_lookup(|name| match name {
        "LLMKIT_PROVIDER" => Some("anthropic".to_owned()),
        "LLMKIT_MODEL" => Some("claude-haiku-4-5".to_owned()),
        _ => None,
    })
    .err()
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("ANTHROPIC_API_KEY"));
}
