//! llmkit's GenAI spans in a real trace backend: Arize Phoenix (PyPI `arize-phoenix`, started by
//! `scripts/test-services.sh up`, address in `LLMKIT_TEST_PHOENIX_URL`). A traced call to an
//! OpenAI-compatible fake provider is exported over OTLP/HTTP (protobuf, what Phoenix accepts),
//! then read back through Phoenix's own REST API (`/v1/projects/{project}/spans/otlpv1`) and its
//! attributes asserted: names, types (string arrays, integer port), values, the redacted
//! content, and that the `traceparent` the provider received names this very span. A second
//! test opens Phoenix's UI on that trace in headless Chromium and saves
//! `docs/img/phoenix-trace.png` (shown in docs/observability.md).
//!
//! Ignored by default (they need the services); CI runs them with `cargo test -- --ignored`
//! after provisioning, where a missing service fails them.
#![cfg(feature = "otel")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/chromium.rs"]
mod chromium;
#[path = "support/services.rs"]
mod services;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chromium::{browse, chromium};
use llmkit::core::telemetry::otel::{OtlpConfig, OtlpProtocol};
use llmkit::core::telemetry::{CaptureConfig, MetricsRegistry, TraceLayer};
use llmkit::core::{ChatModel, ChatRequest, Message, Pipeline, PromptRef, ResponseFormat};
use llmkit::providers::openai::OpenAiModel;
use llmkit_testkit::{CannedResponse, FakeServer};
use serde_json::{Value, json};
use services::service;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// What one traced call left behind.
struct Traced {
    phoenix: String,
    project: String,
    /// The `traceparent` header the fake provider received.
    traceparent: String,
    port: u16,
}

/// Runs one traced chat call through a fake OpenAI-compatible provider, exported to Phoenix
/// under a fresh project.
async fn traced_call(project_prefix: &str) -> Traced {
    let phoenix = service("LLMKIT_TEST_PHOENIX_URL");
    let project = format!(
        "{project_prefix}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let server = FakeServer::start().await.unwrap();
    server.push(CannedResponse::json(
        200,
        &json!({
            "id": "chatcmpl-phoenix-1",
            "object": "chat.completion",
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant",
                    "content": "{\"verdict\":\"refund\",\"contact\":\"jane@example.com\"}"}}],
            "usage": {"prompt_tokens": 42, "completion_tokens": 30, "total_tokens": 72,
                "prompt_tokens_details": {"cached_tokens": 10},
                "completion_tokens_details": {"reasoning_tokens": 12}}
        }),
    ));
    let port: u16 = server
        .base_url()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let provider: Arc<dyn ChatModel> = Arc::new(
        OpenAiModel::compatible(format!("{}/v1", server.base_url()), "gpt-4o-mini").unwrap(),
    );
    let registry = MetricsRegistry::new();
    let model = Pipeline::builder()
        .layer(
            TraceLayer::builder()
                .metrics(registry.clone())
                .capture(CaptureConfig::enabled())
                .legacy_system_attribute(true)
                .build(),
        )
        .build(provider);
    let export = OtlpConfig::new("llmkit-phoenix-test")
        .endpoint(&phoenix)
        .protocol(OtlpProtocol::HttpProtobuf)
        .resource_attribute("openinference.project.name", &project)
        .install(registry)
        .unwrap();
    {
        let _guard = tracing_subscriber::registry()
            .with(export.tracing_layer())
            .set_default();
        let mut req = ChatRequest::new(vec![
            Message::system("Decide refunds. Answer in JSON."),
            Message::user("Refund order 1182? Reach me at jane@example.com"),
        ])
        .with_temperature(0.2)
        .with_max_tokens(200)
        .with_conversation_id("conv-7f3a")
        .with_prompt(PromptRef {
            id: "refund_verdict".into(),
            version: "3".into(),
            hash: "9f2c41aa".into(),
        })
        .with_response_format(ResponseFormat::Json);
        req.stop = vec!["END".into()];
        model.chat(req).await.unwrap();
    }
    export.shutdown();
    let requests = server.requests();
    let traceparent = requests[0]
        .header("traceparent")
        .expect("the provider request carries traceparent")
        .to_owned();
    Traced {
        phoenix,
        project,
        traceparent,
        port,
    }
}

/// The project's spans as Phoenix returns them, polled until one arrives (ingestion is
/// asynchronous) or 60 s pass.
async fn spans(phoenix: &str, project: &str) -> Vec<Value> {
    let url = format!("{phoenix}/v1/projects/{project}/spans/otlpv1?limit=100");
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let resp = client.get(&url).send().await.unwrap();
        let status = resp.status();
        let body = resp.text().await.unwrap();
        if status.is_success() {
            let v: Value = serde_json::from_str(&body).unwrap();
            let data = v["data"].as_array().cloned().unwrap_or_default();
            if !data.is_empty() {
                return data;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no span reached phoenix project {project}: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// An OTLP attribute value (`{"string_value": ..}`, `{"int_value": ..}`, `{"array_value":
/// {"values": [..]}}`, camelCase tolerated) as plain JSON.
fn plain(v: &Value) -> Value {
    let obj = v.as_object().unwrap();
    for (k, inner) in obj.iter().filter(|(_, inner)| !inner.is_null()) {
        match k.as_str() {
            "string_value" | "stringValue" | "bool_value" | "boolValue" | "double_value"
            | "doubleValue" => return inner.clone(),
            "int_value" | "intValue" => {
                return json!(
                    inner
                        .as_i64()
                        .or_else(|| inner.as_str()?.parse().ok())
                        .unwrap()
                );
            }
            "array_value" | "arrayValue" => {
                let values = inner["values"].as_array().cloned().unwrap_or_default();
                return Value::Array(values.iter().map(plain).collect());
            }
            _ => {}
        }
    }
    panic!("unknown attribute value {v}");
}

fn attribute(span: &Value, key: &str) -> Value {
    let attrs = span["attributes"].as_array().unwrap();
    let hits: Vec<&Value> = attrs.iter().filter(|a| a["key"] == key).collect();
    assert_eq!(hits.len(), 1, "{key} present once in {span}");
    plain(&hits[0]["value"])
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs phoenix: scripts/test-services.sh up"]
async fn phoenix_stores_the_genai_span_with_its_attributes() {
    let t = traced_call("llmkit-attrs").await;
    let spans = spans(&t.phoenix, &t.project).await;
    let span = spans
        .iter()
        .find(|s| s["name"] == "chat gpt-4o-mini")
        .unwrap_or_else(|| panic!("no chat span in {spans:?}"));

    // The span the provider saw as its parent is the one Phoenix stored (or its child).
    let parts: Vec<&str> = t.traceparent.split('-').collect();
    assert_eq!(span["trace_id"].as_str().unwrap(), parts[1], "{span}");

    let a = |k: &str| attribute(span, k);
    assert_eq!(a("gen_ai.operation.name"), "chat");
    assert_eq!(a("gen_ai.provider.name"), "openai_compatible");
    assert_eq!(a("gen_ai.system"), "openai_compatible");
    assert_eq!(a("gen_ai.request.model"), "gpt-4o-mini");
    assert_eq!(a("gen_ai.response.model"), "gpt-4o-mini-2024-07-18");
    assert_eq!(a("gen_ai.response.id"), "chatcmpl-phoenix-1");
    assert_eq!(a("gen_ai.response.finish_reasons"), json!(["stop"]));
    assert_eq!(a("gen_ai.request.stop_sequences"), json!(["END"]));
    assert_eq!(a("gen_ai.output.type"), "json");
    assert_eq!(a("gen_ai.conversation.id"), "conv-7f3a");
    assert_eq!(a("server.address"), "127.0.0.1");
    assert_eq!(a("server.port"), json!(t.port));
    assert_eq!(a("gen_ai.usage.input_tokens"), json!(42));
    assert_eq!(a("gen_ai.usage.output_tokens"), json!(30));
    assert_eq!(a("gen_ai.usage.cache_read.input_tokens"), json!(10));
    assert_eq!(a("gen_ai.usage.reasoning.output_tokens"), json!(12));
    assert_eq!(a("gen_ai.request.max_tokens"), json!(200));
    assert_eq!(a("llmkit.prompt.version"), "3");
    let input: Value = serde_json::from_str(a("gen_ai.input.messages").as_str().unwrap()).unwrap();
    assert_eq!(input[0]["role"], "system");
    assert_eq!(
        input[1]["parts"][0],
        json!({"type": "text", "content": "Refund order 1182? Reach me at [EMAIL]"})
    );
    let output: Value =
        serde_json::from_str(a("gen_ai.output.messages").as_str().unwrap()).unwrap();
    assert_eq!(output[0]["finish_reason"], "stop");
    let text = output[0]["parts"][0]["content"].as_str().unwrap();
    assert!(
        text.contains("[EMAIL]") && !text.contains("jane@"),
        "{text}"
    );
    assert!(
        !span.to_string().contains("jane@example.com"),
        "no raw e-mail anywhere"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs phoenix and chromium: scripts/test-services.sh up"]
async fn phoenix_ui_shows_the_llmkit_trace() {
    chromium();
    let t = traced_call("llmkit-ui").await;
    let spans = spans(&t.phoenix, &t.project).await;
    let span = spans
        .iter()
        .find(|s| s["name"] == "chat gpt-4o-mini")
        .unwrap();
    let trace_id = span["trace_id"].as_str().unwrap();
    // Phoenix's UI addresses projects by their GraphQL id.
    let projects: Value = reqwest::get(format!("{}/v1/projects", t.phoenix))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let project_id = projects["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == t.project.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/projects/{project_id}/traces/{trace_id}", t.phoenix);
    let dom = browse(&url, &["--virtual-time-budget=15000", "--dump-dom"]).stdout;
    assert!(
        dom.contains("chat gpt-4o-mini"),
        "the trace view names the span: {}",
        &dom[..dom.len().min(600)]
    );

    let shot = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/img/phoenix-trace.png");
    std::fs::create_dir_all(Path::new(shot).parent().unwrap()).unwrap();
    browse(
        &url,
        &[
            "--window-size=1440,1000",
            "--virtual-time-budget=15000",
            &format!("--screenshot={shot}"),
        ],
    );
    let png = std::fs::read(shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a real screenshot"
    );
}
