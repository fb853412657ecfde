#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! With the `otel` feature, spans and metrics reach an OTLP/HTTP collector (a local fake here).
#![cfg(feature = "otel")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use llmkit_core::telemetry::otel::OtlpConfig;
use llmkit_core::telemetry::{MetricsRegistry, TraceLayer};
use llmkit_core::{ChatRequest, Pipeline, PromptRef, ScriptedModel};
use tracing_subscriber::layer::SubscriberExt;

type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A minimal OTLP/HTTP collector: records (path, body) of each POST and answers `{}`.
fn fake_collector() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let log = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            stream.set_nodelay(true).unwrap();
            let log = log.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut request_line = String::new();
                    if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = request_line
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("")
                        .to_owned();
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).unwrap();
                        let h = header.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = h.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0u8; length];
                    reader.read_exact(&mut body).unwrap();
                    log.lock()
                        .unwrap()
                        .push((path, String::from_utf8_lossy(&body).into_owned()));
                    writer
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}")
                        .unwrap();
                }
            });
        }
    });
    (format!("http://{addr}"), received)
}

#[tokio::test]
async fn spans_and_metrics_are_exported_over_otlp_http_json() {
    let (endpoint, received) = fake_collector();
    let registry = MetricsRegistry::new();
    let export = OtlpConfig::new("llmkit-test")
        .endpoint(endpoint)
        .install(registry.clone())
        .unwrap();
    {
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(export.tracing_layer()),
        );
        let provider = Arc::new(
            ScriptedModel::builder()
                .provider("openai")
                .model("gpt-4o")
                .reply("ok")
                .build(),
        );
        let model = Pipeline::builder()
            .layer(TraceLayer::builder().metrics(registry.clone()).build())
            .build(provider);
        let prompt = PromptRef {
            id: "p".into(),
            version: "7".into(),
            hash: "h".into(),
        };
        model
            .chat(ChatRequest::user("hi").with_prompt(prompt))
            .await
            .unwrap();
    }
    export.shutdown();

    let received = received.lock().unwrap().clone();
    let traces: Vec<_> = received.iter().filter(|(p, _)| p == "/v1/traces").collect();
    let metrics: Vec<_> = received
        .iter()
        .filter(|(p, _)| p == "/v1/metrics")
        .collect();
    assert!(!traces.is_empty(), "no spans exported: {received:?}");
    let body = &traces[0].1;
    for needle in [
        "chat gpt-4o",
        "gen_ai.provider.name",
        "gen_ai.usage.input_tokens",
        "llmkit.prompt.version",
        "llmkit.cost_usd",
        "llmkit-test",
    ] {
        assert!(body.contains(needle), "{needle} missing from {body}");
    }
    assert!(
        metrics
            .iter()
            .any(|(_, b)| b.contains("llmkit_requests_total")),
        "{metrics:?}"
    );
}
