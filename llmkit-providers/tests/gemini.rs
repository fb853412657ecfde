//! Gemini provider (AI Studio and Vertex AI) against a local fake server: the request we send
//! (method, path, headers, body shape) and the response we parse.
#![cfg(feature = "gemini")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use llmkit_core::{
    ChatModel, ChatRequest, EmbeddingModel, EmbeddingRequest, ErrorKind, FinishReason, Message,
    ResponseFormat, ToolDefinition, collect_stream,
};
use llmkit_providers::gemini::GeminiModel;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "AIzaSyTEST0123456789abcdefSECRET";
const TOKEN: &str = "ya29.TEST0123456789abcdefSECRET";

/// A client per test: `#[tokio::test]` gives each test its own runtime, and a pooled
/// connection must not outlive the runtime that opened it.
fn client() -> reqwest::Client {
    llmkit_providers::http::build_client(&llmkit_providers::http::HttpClientOptions::default())
        .unwrap()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/gemini/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn studio(server: &MockServer) -> GeminiModel {
    GeminiModel::builder("gemini-2.5-flash")
        .api_key(KEY)
        .base_url(server.uri())
        .http_client(client())
        .build()
        .unwrap()
}

fn vertex(server: &MockServer) -> GeminiModel {
    GeminiModel::vertex("gemini-2.5-flash", "proj-1", "europe-west4")
        .access_token(TOKEN)
        .base_url(server.uri())
        .http_client(client())
        .build()
        .unwrap()
}

fn ok(body: String) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .insert_header("content-type", "application/json")
        .set_body_string(body)
}

async fn last_body(server: &MockServer) -> Value {
    let reqs = server.received_requests().await.unwrap();
    serde_json::from_slice(&reqs.last().unwrap().body).unwrap()
}

#[tokio::test]
async fn studio_chat_path_header_body_and_usage() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.5-flash:generateContent"))
        .and(header("x-goog-api-key", KEY))
        .respond_with(ok(fixture("generate-content-text.response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let m = studio(&server);
    let r = m
        .chat(ChatRequest::new(vec![
            Message::system("Answer from the policy."),
            Message::user("Refund window?"),
            Message::assistant("Which product?"),
            Message::user("Shoes."),
        ]))
        .await
        .unwrap();
    assert_eq!(r.text(), "Refunds are accepted within 30 days.");
    assert_eq!(r.provider, "gcp.gemini");
    assert_eq!(r.usage.cached_input_tokens, 1024);
    assert_eq!(r.usage.reasoning_tokens, 21);
    let body = last_body(&server).await;
    assert_eq!(
        body["systemInstruction"]["parts"][0]["text"],
        "Answer from the policy."
    );
    assert_eq!(body["contents"].as_array().unwrap().len(), 3);
    assert_eq!(body["contents"][1]["role"], "model");
    let reqs = server.received_requests().await.unwrap();
    assert!(
        reqs[0].url.query().is_none(),
        "the key travels in a header, never the url"
    );
}

#[tokio::test]
async fn vertex_chat_uses_bearer_and_project_path() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent",
        ))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ok(fixture("generate-content-text.response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let r = vertex(&server).chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(r.provider, "gcp.vertex_ai");
}

#[tokio::test]
async fn tool_call_round_trip_keeps_signatures() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(fixture("function-call-signature.response.json")))
        .mount(&server)
        .await;
    let m = studio(&server);
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
        Message::tool_result(&calls[0].id, "18"),
        Message::tool_result(&calls[1].id, "24"),
    ])
    .with_tool(tool);
    m.chat(follow).await.unwrap();
    let body = last_body(&server).await;
    assert_eq!(
        body["contents"][1]["parts"][0]["thoughtSignature"],
        "c2lnbmF0dXJlLW9uZQ=="
    );
    assert_eq!(
        body["contents"][2]["parts"][1]["functionResponse"]["name"],
        "get_weather"
    );
    assert_eq!(
        body["tools"][0]["functionDeclarations"][0]["parameters"]["properties"]["city"]["type"],
        "STRING"
    );
}

#[tokio::test]
async fn structured_output_sends_response_schema() {
    let server = MockServer::start().await;
    let reply = json!({
        "candidates": [{"content": {"role": "model", "parts": [{"text": "{\"city\": \"Mexico City\"}"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 6}
    });
    Mock::given(method("POST"))
        .respond_with(ok(reply.to_string()))
        .mount(&server)
        .await;
    let schema = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {"city": {"type": "string"}},
        "required": ["city"]
    });
    let r = studio(&server)
        .chat(
            ChatRequest::user("Largest city in Mexico?").with_response_format(
                ResponseFormat::JsonSchema {
                    name: "City".into(),
                    schema,
                    strict: true,
                },
            ),
        )
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text()).unwrap();
    assert_eq!(v["city"], "Mexico City");
    let body = last_body(&server).await;
    let g = &body["generationConfig"];
    assert_eq!(g["responseMimeType"], "application/json");
    assert_eq!(g["responseSchema"]["properties"]["city"]["type"], "STRING");
    assert!(g["responseSchema"].get("additionalProperties").is_none());
    assert!(r.trail.has("gemini", "schema_dropped"));
}

#[tokio::test]
async fn streaming_uses_alt_sse_and_assembles() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        ))
        .and(query_param("alt", "sse"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/event-stream")
                .set_body_string(fixture("stream-text.sse")),
        )
        .mount(&server)
        .await;
    let m = studio(&server);
    let r = collect_stream(
        m.stream(ChatRequest::user("Capital?")).await.unwrap(),
        m.info(),
    )
    .await
    .unwrap();
    assert_eq!(r.text(), "The capital of France is Paris.");
    assert_eq!(r.usage.input_tokens, 13);
    assert_eq!(r.usage.output_tokens, 12);
}

#[tokio::test]
async fn blocked_prompt_is_content_filtered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ok(fixture("prompt-blocked.response.json")))
        .mount(&server)
        .await;
    let err = studio(&server)
        .chat(ChatRequest::user("x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFiltered);
}

#[tokio::test]
async fn error_classes() {
    let cases = [
        (
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
            ErrorKind::RateLimited,
        ),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
            ErrorKind::Overloaded,
        ),
        (
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            ErrorKind::Auth,
        ),
        (
            403,
            "PERMISSION_DENIED",
            "Permission denied on resource project proj-1.",
            ErrorKind::Auth,
        ),
        (
            404,
            "NOT_FOUND",
            "models/gemini-x is not found.",
            ErrorKind::NotFound,
        ),
        (
            400,
            "INVALID_ARGUMENT",
            "Invalid JSON payload received.",
            ErrorKind::InvalidRequest,
        ),
        (
            500,
            "INTERNAL",
            "An internal error has occurred.",
            ErrorKind::Server,
        ),
    ];
    for (status, code, msg, kind) in cases {
        let server = MockServer::start().await;
        let body = json!({"error": {"code": status, "message": msg, "status": code}});
        let mut resp = ResponseTemplate::new(status).set_body_json(body);
        if status == 429 {
            resp = resp.insert_header("retry-after", "3");
        }
        Mock::given(method("POST"))
            .respond_with(resp)
            .mount(&server)
            .await;
        for m in [studio(&server), vertex(&server)] {
            let err = m.chat(ChatRequest::user("hi")).await.unwrap_err();
            assert_eq!(err.kind(), kind, "{status} {code}");
            assert_eq!(err.status(), Some(status));
            // The shared mapper prefers the numeric `code` over the canonical `status`.
            assert!(
                err.provider_code()
                    .is_some_and(|c| c == code || c == status.to_string())
            );
            if status == 429 {
                assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
            }
        }
    }
}

#[tokio::test]
async fn errors_echoing_the_key_are_scrubbed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_string(fixture("error-400-key-echo.response.json")),
        )
        .mount(&server)
        .await;
    let err = studio(&server)
        .chat(ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("0123456789abcdefSECRET"), "{shown}");
    }
}

#[tokio::test]
async fn embeddings_batch() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/v1beta/models/gemini-embedding-001:batchEmbedContents",
        ))
        .and(header("x-goog-api-key", KEY))
        .respond_with(ok(fixture("embed-batch.response.json")))
        .mount(&server)
        .await;
    let m = studio(&server);
    let mut req = EmbeddingRequest::new(["first", "second"]);
    req.dimensions = Some(3);
    let r = m.embed(req).await.unwrap();
    assert_eq!(r.embeddings.len(), 2);
    assert_eq!(r.embeddings[1], vec![0.4, 0.5, -0.6]);
    let body = last_body(&server).await;
    assert_eq!(
        body["requests"][1],
        json!({"model": "models/gemini-embedding-001", "content": {"parts": [{"text": "second"}]}, "outputDimensionality": 3})
    );
}

#[tokio::test]
async fn vertex_embeddings_predict() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/v1/projects/proj-1/locations/europe-west4/publishers/google/models/gemini-embedding-001:predict",
        ))
        .respond_with(ok(json!({"predictions": [
            {"embeddings": {"values": [0.1, 0.2], "statistics": {"token_count": 2.0, "truncated": false}}},
            {"embeddings": {"values": [0.3, 0.4], "statistics": {"token_count": 3.0, "truncated": false}}}
        ]})
        .to_string()))
        .mount(&server)
        .await;
    let r = vertex(&server)
        .embed(EmbeddingRequest::new(["a", "b c"]))
        .await
        .unwrap();
    assert_eq!(r.embeddings, vec![vec![0.1, 0.2], vec![0.3, 0.4]]);
    assert_eq!(r.usage.input_tokens, 5);
    assert_eq!(
        last_body(&server).await["instances"][1],
        json!({"content": "b c"})
    );
}

#[test]
fn debug_never_shows_credentials() {
    let s = GeminiModel::builder("m").api_key(KEY).build().unwrap();
    let v = GeminiModel::vertex("m", "p", "l")
        .access_token(TOKEN)
        .http_client(client())
        .build()
        .unwrap();
    let b = GeminiModel::builder("m").api_key(KEY);
    for shown in [format!("{s:?}"), format!("{v:?}"), format!("{b:?}")] {
        assert!(!shown.contains("SECRET"), "{shown}");
    }
}

#[tokio::test]
async fn factory_builds_vertex_from_a_toml_section() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/v1/projects/proj-9/locations/global/publishers/google/models/gemini-2.5-pro:generateContent",
        ))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ok(fixture("generate-content-text.response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let text = format!(
        "provider = \"vertex\"\nmodel = \"gemini-2.5-pro\"\ngcp_project = \"proj-9\"\ngcp_location = \"global\"\naccess_token = \"{TOKEN}\"\nbase_url = \"{}\"\n",
        server.uri()
    );
    let config: llmkit_providers::ProviderConfig = toml::from_str(&text).unwrap();
    assert!(!format!("{config:?}").contains("SECRET"));
    let m = llmkit_providers::from_config(&config).unwrap();
    assert_eq!(m.info().provider, "gcp.vertex_ai");
    m.chat(ChatRequest::user("hi")).await.unwrap();

    let studio = llmkit_providers::factory::from_lookup(|name| match name {
        "LLMKIT_PROVIDER" => Some("gemini".to_owned()),
        "LLMKIT_MODEL" => Some("gemini-2.5-flash".to_owned()),
        "GEMINI_API_KEY" => Some(KEY.to_owned()),
        _ => None,
    })
    .unwrap();
    assert_eq!(studio.info().provider, "gcp.gemini");
    assert_eq!(
        studio.info().system_instructions,
        llmkit_core::SystemInstructions::Separate
    );
    let embed = llmkit_providers::embedding_from_config(
        &llmkit_providers::ProviderConfig::new(llmkit_providers::ProviderKind::Gemini, "")
            .with_api_key(KEY)
            .with_embedding_model("text-embedding-004"),
    )
    .unwrap();
    assert_eq!(embed.info().provider, "gcp.gemini");
}
