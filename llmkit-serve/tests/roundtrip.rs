//! llmkit's own OpenAI provider pointed at the serving router: every request and reply crosses
//! real HTTP in both directions (non-streaming, SSE, tools, response_format, errors, headers).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use llmkit_core::resilience::CircuitBreakerLayer;
use llmkit_core::telemetry::TraceLayer;
use llmkit_core::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, FinishReason, ModelInfo,
    Pipeline, Reply, ResponseFormat, ScriptedModel, StreamEvent, ToolDefinition, collect_stream,
};
use llmkit_providers::openai::OpenAiModel;
use llmkit_serve::{Readiness, Serve};

async fn start(serve: &Serve) -> String {
    let listener = llmkit_serve::bind("127.0.0.1:0").await.unwrap();
    let addr = axum::serve::Listener::local_addr(&listener).unwrap();
    let app = serve.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn client(base: &str) -> OpenAiModel {
    OpenAiModel::builder("gpt-4o-mini")
        .api_key("sk-test-not-a-secret")
        .base_url(format!("{base}/v1"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn text_round_trip_non_streaming_and_streaming() {
    let model = Arc::new(
        ScriptedModel::builder()
            .model("served-model")
            .fallback(Reply::text("hello from the stack"))
            .chunk_chars(4)
            .build(),
    );
    let serve = Serve::builder(model.clone()).build();
    let base = start(&serve).await;
    let c = client(&base);

    let r = c
        .chat(ChatRequest::user("hi").with_request_id("req-42"))
        .await
        .unwrap();
    assert_eq!(r.text(), "hello from the stack");
    assert_eq!(r.model, "served-model");
    assert_eq!(r.finish_reason, FinishReason::Stop);
    assert!(r.usage.input_tokens > 0 && r.usage.output_tokens > 0);

    let stream = c.stream(ChatRequest::user("hi")).await.unwrap();
    let r = collect_stream(stream, c.info()).await.unwrap();
    assert_eq!(r.text(), "hello from the stack");
    assert!(r.usage.output_tokens > 0, "include_usage chunk arrived");
    assert_eq!(model.call_count(), 2);
}

#[tokio::test]
async fn tools_and_response_format_pass_through() {
    let model = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::tool_call(
                "lookup_order",
                serde_json::json!({"order": "A-17"}),
            ))
            .reply(Reply::tool_call(
                "lookup_order",
                serde_json::json!({"order": "B-2"}),
            ))
            .reply(Reply::json(&serde_json::json!({"decision": "approve"})))
            .build(),
    );
    let serve = Serve::builder(model.clone()).build();
    let c = client(&start(&serve).await);
    let tool = ToolDefinition::new(
        "lookup_order",
        "Finds an order",
        serde_json::json!({"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}),
    );
    let r = c
        .chat(ChatRequest::user("where is A-17").with_tool(tool.clone()))
        .await
        .unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "lookup_order");
    assert_eq!(calls[0].arguments, serde_json::json!({"order": "A-17"}));

    let stream = c
        .stream(ChatRequest::user("and B-2").with_tool(tool))
        .await
        .unwrap();
    let r = collect_stream(stream, c.info()).await.unwrap();
    assert_eq!(
        r.tool_calls()[0].arguments,
        serde_json::json!({"order": "B-2"})
    );

    let schema = serde_json::json!({"type": "object", "properties": {"decision": {"type": "string"}}, "required": ["decision"], "additionalProperties": false});
    let r = c
        .chat(
            ChatRequest::user("verdict?").with_response_format(ResponseFormat::JsonSchema {
                name: "verdict".into(),
                schema: schema.clone(),
                strict: true,
            }),
        )
        .await
        .unwrap();
    assert_eq!(r.text(), r#"{"decision":"approve"}"#);

    let seen = model.requests();
    assert_eq!(seen[0].tools[0].name, "lookup_order");
    assert_eq!(
        seen[0].tools[0].parameters["required"],
        serde_json::json!(["order"])
    );
    match &seen[2].response_format {
        ResponseFormat::JsonSchema {
            name,
            schema: s,
            strict,
        } => {
            assert_eq!(name, "verdict");
            assert!(strict);
            assert_eq!(s["properties"]["decision"]["type"], "string");
        }
        other => panic!("response_format lost: {other:?}"),
    }
}

#[tokio::test]
async fn request_id_reaches_the_model_and_comes_back() {
    let model = Arc::new(ScriptedModel::always("ok"));
    let serve = Serve::builder(model.clone()).build();
    let base = start(&serve).await;
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .header("x-request-id", "trace-me-7")
        .json(&serde_json::json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-id"], "trace-me-7");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["id"], "chatcmpl-trace-me-7");
    assert_eq!(
        model.requests()[0].meta.request_id.as_deref(),
        Some("trace-me-7")
    );
}

async fn post(base: &str, headers: &[(&str, &str)], body: serde_json::Value) -> reqwest::Response {
    let mut req = reqwest::Client::new().post(format!("{base}/v1/chat/completions"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.json(&body).send().await.unwrap()
}

fn hi() -> serde_json::Value {
    serde_json::json!({"model": "x", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn errors_have_openai_shape_status_and_retry_after() {
    let model = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::fail(
                Error::new(ErrorKind::LimitExceeded, "tenant limit")
                    .with_retry_after(Duration::from_secs(3)),
            ))
            .reply(Reply::fail(Error::new(
                ErrorKind::BudgetExceeded,
                "tenant budget spent",
            )))
            .reply(Reply::fail(Error::new(
                ErrorKind::CircuitOpen,
                "circuit open",
            )))
            .reply(Reply::fail(Error::new(ErrorKind::Server, "upstream 500")))
            .build(),
    );
    let serve = Serve::builder(model).build();
    let base = start(&serve).await;
    for (status, retry_after, code) in [
        (429, Some("3"), "limit_exceeded"),
        (429, Some("60"), "budget_exceeded"),
        (503, None, "circuit_open"),
        (502, None, "server"),
    ] {
        let resp = post(&base, &[], hi()).await;
        assert_eq!(resp.status().as_u16(), status, "{code}");
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
            retry_after.map(str::to_owned),
            "{code}"
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], code);
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(body["error"]["type"].is_string());
    }
    // A malformed body is a 400 naming the field, not a plain-text rejection.
    let resp = post(
        &base,
        &[],
        serde_json::json!({"messages": [{"role": "wizard", "content": "x"}]}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["param"], "messages[0].role");
}

#[tokio::test]
async fn llmkit_client_sees_the_limit_as_rate_limited_with_the_wait() {
    let model = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::fail(
                Error::new(ErrorKind::LimitExceeded, "busy")
                    .with_retry_after(Duration::from_secs(4)),
            ))
            .build(),
    );
    let c = client(&start(&Serve::builder(model).build()).await);
    let err = c.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(4)));
}

#[tokio::test]
async fn deadline_header_is_honoured_with_504() {
    let model = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::text("late").after(Duration::from_secs(10)))
            .build(),
    );
    let serve = Serve::builder(model).build();
    let base = start(&serve).await;
    let started = Instant::now();
    let resp = post(&base, &[("x-llmkit-timeout-ms", "200")], hi()).await;
    assert_eq!(resp.status(), 504);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout");

    // The server's cap applies when the caller asks for more.
    let capped = Serve::builder(Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::text("late").after(Duration::from_secs(10)))
            .build(),
    ))
    .max_deadline(Duration::from_millis(200))
    .build();
    let base = start(&capped).await;
    let started = Instant::now();
    let resp = post(&base, &[("x-stainless-timeout", "600")], hi()).await;
    assert_eq!(resp.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A model whose stream sends some text, then fails.
struct BreaksMidStream {
    info: ModelInfo,
}

#[async_trait]
impl ChatModel for BreaksMidStream {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    async fn chat(&self, _: ChatRequest) -> llmkit_core::Result<ChatResponse> {
        Err(Error::new(ErrorKind::Server, "not used"))
    }
    async fn stream(&self, _: ChatRequest) -> llmkit_core::Result<ChatStream> {
        let events = vec![
            Ok(StreamEvent::Start {
                model: "m".into(),
                provider_request_id: None,
            }),
            Ok(StreamEvent::TextDelta {
                text: "partial ".into(),
            }),
            Err(Error::new(
                ErrorKind::Overloaded,
                "upstream overloaded mid-stream",
            )),
        ];
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

#[tokio::test]
async fn a_stream_that_fails_midway_is_an_error_for_the_client_not_a_short_answer() {
    let model = Arc::new(BreaksMidStream {
        info: ModelInfo::new("test", "m"),
    });
    let c = client(&start(&Serve::builder(model).build()).await);
    let stream = c.stream(ChatRequest::user("hi")).await.unwrap();
    let err = collect_stream(stream, c.info()).await.unwrap_err();
    assert_ne!(
        err.kind(),
        ErrorKind::Truncated,
        "the error event was read: {err}"
    );

    // The raw SSE: text, then an error event, and no [DONE].
    let model = Arc::new(BreaksMidStream {
        info: ModelInfo::new("test", "m"),
    });
    let base = start(&Serve::builder(model).build()).await;
    let mut body = hi();
    body["stream"] = serde_json::json!(true);
    let text = post(&base, &[], body).await.text().await.unwrap();
    assert!(text.contains("partial "), "{text}");
    assert!(text.contains(r#""code":"overloaded""#), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
}

#[tokio::test]
async fn streaming_ends_with_done() {
    let model = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::text("abc"))
            .build(),
    );
    let base = start(&Serve::builder(model).build()).await;
    let mut body = hi();
    body["stream"] = serde_json::json!(true);
    let resp = post(&base, &[], body).await;
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut bytes = resp.bytes_stream();
    let mut text = String::new();
    while let Some(b) = bytes.next().await {
        text.push_str(&String::from_utf8_lossy(&b.unwrap()));
    }
    let datas: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(datas.last(), Some(&"[DONE]"));
    assert!(
        datas
            .iter()
            .any(|d| d.contains(r#""finish_reason":"stop""#))
    );
}

#[tokio::test]
async fn health_readiness_and_metrics_follow_the_breaker() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .model("flaky")
            .reply(Reply::server_error(500))
            .reply(Reply::server_error(500))
            .fallback(Reply::text("ok"))
            .build(),
    );
    let trace = TraceLayer::new();
    let breakers = CircuitBreakerLayer::new()
        .consecutive_failures(2)
        .cool_down(Duration::from_millis(300));
    let model: Arc<dyn ChatModel> = Pipeline::builder()
        .layer(trace.clone())
        .layer(breakers.clone())
        .build(provider);
    let serve = Serve::builder(model.clone())
        .metrics(trace.metrics().clone())
        .readiness(Readiness::new().breakers(breakers.clone()))
        .build();
    let base = start(&serve).await;
    let http = reqwest::Client::new();
    let get = |path: &'static str| {
        let http = http.clone();
        let base = base.clone();
        async move { http.get(format!("{base}{path}")).send().await.unwrap() }
    };
    assert_eq!(get("/healthz").await.status(), 200);
    assert_eq!(get("/readyz").await.status(), 200);
    for _ in 0..2 {
        assert_eq!(post(&base, &[], hi()).await.status(), 502);
    }
    let resp = get("/readyz").await;
    assert_eq!(resp.status(), 503);
    let report: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(report["breakers"][0]["state"], "open");
    assert_eq!(
        post(&base, &[], hi()).await.status(),
        503,
        "open circuit is a 503"
    );
    assert_eq!(
        get("/healthz").await.status(),
        200,
        "liveness does not follow readiness"
    );

    let page = get("/metrics").await.text().await.unwrap();
    assert!(
        page.contains(r#"llmkit_circuit_state{provider="scripted",model="flaky",state="open"} 1"#),
        "{page}"
    );
    assert!(
        page.contains(r#"llmkit_http_requests_total{route="/v1/chat/completions",status="502"} 2"#),
        "{page}"
    );
    assert!(
        page.contains("gen_ai_client_operation_duration_seconds"),
        "{page}"
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        get("/readyz").await.status(),
        200,
        "half-open after the cool-down"
    );
    assert_eq!(post(&base, &[], hi()).await.status(), 200);
    let page = get("/metrics").await.text().await.unwrap();
    assert!(
        page.contains(
            r#"llmkit_circuit_state{provider="scripted",model="flaky",state="closed"} 1"#
        ),
        "{page}"
    );
}

#[tokio::test]
async fn model_names_select_versions() {
    let v1 = Arc::new(
        ScriptedModel::builder()
            .model("v1")
            .fallback(Reply::text("one"))
            .build(),
    );
    let v2 = Arc::new(
        ScriptedModel::builder()
            .model("v2")
            .fallback(Reply::text("two"))
            .build(),
    );
    let serve = Serve::builder(v1.clone())
        .model("support-v2", v2.clone())
        .build();
    let base = start(&serve).await;
    let mut body = hi();
    body["model"] = "support-v2".into();
    let r: serde_json::Value = post(&base, &[], body).await.json().await.unwrap();
    assert_eq!(r["choices"][0]["message"]["content"], "two");
    let r: serde_json::Value = post(&base, &[], hi()).await.json().await.unwrap();
    assert_eq!(r["choices"][0]["message"]["content"], "one");

    let strict = Serve::builder(v1).strict_models(true).build();
    let base = start(&strict).await;
    let resp = post(&base, &[], hi()).await;
    assert_eq!(resp.status(), 404);
    let models: serde_json::Value = reqwest::get(format!("{base}/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["data"][0]["id"], "v1");
}

#[tokio::test]
async fn request_hook_can_refuse_and_stamp() {
    let model = Arc::new(ScriptedModel::always("ok"));
    let serve = Serve::builder(model.clone())
        .on_request(|headers, req| {
            let key = headers.get("authorization").and_then(|v| v.to_str().ok());
            if key != Some("Bearer good") {
                return Err(llmkit_serve::ApiError::unauthorized());
            }
            req.meta.tenant = Some("acme".into());
            Ok(())
        })
        .build();
    let base = start(&serve).await;
    let resp = post(&base, &[("authorization", "Bearer bad")], hi()).await;
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("bad"), "the key is never echoed: {text}");
    assert_eq!(
        post(&base, &[("authorization", "Bearer good")], hi())
            .await
            .status(),
        200
    );
    assert_eq!(model.requests()[0].meta.tenant.as_deref(), Some("acme"));
}
