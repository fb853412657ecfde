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

use llmkit_core::telemetry::otel::{OtlpConfig, OtlpExport};
use llmkit_core::telemetry::{MetricsRegistry, TraceLayer};
use llmkit_core::{ChatRequest, Pipeline, PromptRef, ScriptedModel};
use opentelemetry_otlp::WithExportConfig as _;
use tracing_subscriber::layer::SubscriberExt;

type Received = Arc<Mutex<Vec<(String, String)>>>;
type Headers = Arc<Mutex<Vec<String>>>;

/// A minimal OTLP/HTTP collector: records (path, body) of each POST and answers `{}`.
fn fake_collector() -> (String, Received) {
    let (url, received, _) = fake_collector_with_headers();
    (url, received)
}

/// [`fake_collector`] that also keeps every request header line (lower-cased name).
fn fake_collector_with_headers() -> (String, Received, Headers) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Received = Arc::default();
    let headers: Headers = Arc::default();
    let log = received.clone();
    let header_log = headers.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            stream.set_nodelay(true).unwrap();
            let log = log.clone();
            let header_log = header_log.clone();
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
                            header_log.lock().unwrap().push(format!(
                                "{}:{}",
                                k.to_ascii_lowercase(),
                                v.trim()
                            ));
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
    (format!("http://{addr}"), received, headers)
}

/// One `gpt-4o` chat call through a traced pipeline recording into `registry`, with its spans
/// exported by `export`.
async fn chat_exported(export: &OtlpExport, registry: &MetricsRegistry, req: ChatRequest) {
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
    model.chat(req).await.unwrap();
}

#[tokio::test]
async fn spans_and_metrics_are_exported_over_otlp_http_json() {
    let (endpoint, received) = fake_collector();
    let registry = MetricsRegistry::new();
    let export = OtlpConfig::new("llmkit-test")
        .endpoint(endpoint)
        .install(registry.clone())
        .unwrap();
    let prompt = PromptRef {
        id: "p".into(),
        version: "7".into(),
        hash: "h".into(),
    };
    chat_exported(
        &export,
        &registry,
        ChatRequest::user("hi").with_prompt(prompt),
    )
    .await;
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

#[tokio::test]
async fn genai_histograms_arrays_and_headers_reach_the_collector() {
    let (endpoint, received, headers) = fake_collector_with_headers();
    let registry = MetricsRegistry::new();
    let export = OtlpConfig::new("llmkit-test")
        .endpoint(endpoint)
        .header("x-collector-key", "k-123")
        .install(registry.clone())
        .unwrap();
    let mut req = ChatRequest::user("hi");
    req.stop = vec!["END".into()];
    chat_exported(&export, &registry, req).await;
    export.shutdown();

    let received = received.lock().unwrap().clone();
    let traces: String = received
        .iter()
        .filter(|(p, _)| p == "/v1/traces")
        .map(|(_, b)| b.as_str())
        .collect();
    let metrics: String = received
        .iter()
        .filter(|(p, _)| p == "/v1/metrics")
        .map(|(_, b)| b.as_str())
        .collect();
    let compact = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let traces = compact(&traces);
    // String arrays, not JSON text inside a string.
    assert!(
        traces.contains(r#""key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"stop"}]}}"#),
        "{traces}"
    );
    assert!(
        traces.contains(r#""key":"gen_ai.request.stop_sequences","value":{"arrayValue":{"values":[{"stringValue":"END"}]}}"#),
        "{traces}"
    );
    assert_eq!(
        traces.matches("gen_ai.response.finish_reasons").count(),
        1,
        "one key, once"
    );
    // Counts are OTLP integers, not text (tracing-opentelemetry exports u64 fields as strings).
    assert!(
        traces.contains(r#""key":"gen_ai.usage.input_tokens","value":{"intValue":"#),
        "{traces}"
    );
    assert!(traces.contains(r#""kind":3"#), "span kind client: {traces}");
    let metrics = compact(&metrics);
    assert!(
        metrics.contains("gen_ai.client.operation.duration"),
        "{metrics}"
    );
    assert!(metrics.contains("gen_ai.client.token.usage"), "{metrics}");
    assert!(
        metrics.contains(r#""explicitBounds":[0.01,0.02,0.04,0.08,0.16,0.32,0.64,1.28,2.56,5.12,10.24,20.48,40.96,81.92]"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#""explicitBounds":[1.0,4.0,16.0,64.0,256.0,1024.0,4096.0,16384.0,65536.0,262144.0,1048576.0,4194304.0,16777216.0,67108864.0]"#)
            || metrics.contains(r#""explicitBounds":[1,4,16,64,256,1024,4096,16384,65536,262144,1048576,4194304,16777216,67108864]"#),
        "{metrics}"
    );
    assert!(!metrics.contains("llmkit_request_duration_p95_seconds"));
    let headers = headers.lock().unwrap().clone();
    assert!(
        headers.iter().any(|h| h == "x-collector-key:k-123"),
        "{headers:?}"
    );
}

#[test]
fn otlp_config_debug_never_prints_header_values() {
    let config = OtlpConfig::new("svc").header("authorization", "Bearer sk-live-secret");
    let text = format!("{config:?}");
    assert!(
        text.contains("authorization") && !text.contains("sk-live-secret"),
        "{text}"
    );
}

#[test]
fn invalid_otlp_settings_are_config_errors_naming_no_secret() {
    let err = OtlpConfig::new("svc")
        .header("bad header", "secret-value")
        .install(MetricsRegistry::new())
        .unwrap_err();
    assert_eq!(err.kind(), llmkit_core::ErrorKind::Config);
    assert!(!err.to_string().contains("secret-value"), "{err}");
    let err = OtlpConfig::new("svc")
        .ca_certificate_pem("not a certificate")
        .install(MetricsRegistry::new())
        .unwrap_err();
    assert_eq!(err.kind(), llmkit_core::ErrorKind::Config);
}

#[tokio::test]
async fn a_bring_your_own_tracer_provider_gets_the_spans_and_stays_running() {
    use opentelemetry::trace::TracerProvider as _;
    let (endpoint, received) = fake_collector();
    // Built off the async runtime: the exporter's blocking HTTP client owns a runtime.
    let mine = std::thread::spawn(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpJson)
            .with_endpoint(format!("{endpoint}/v1/traces"))
            .build()
            .unwrap();
        opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .build()
    })
    .join()
    .unwrap();
    let export = OtlpConfig::new("byo")
        .endpoint("http://127.0.0.1:9")
        .tracer_provider(mine.clone())
        .install(MetricsRegistry::new())
        .unwrap();
    chat_exported(&export, &MetricsRegistry::new(), ChatRequest::user("hi")).await;
    export.shutdown();
    let got = received.lock().unwrap().clone();
    assert!(
        got.iter()
            .any(|(p, b)| p == "/v1/traces" && b.contains("chat gpt-4o")),
        "{got:?}"
    );
    // Still running after llmkit's shutdown: the application owns it.
    let _still_usable = mine.tracer("after");
    std::thread::spawn(move || mine.shutdown())
        .join()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn traceparent_of_the_current_span_is_injected() {
    use llmkit_core::telemetry::propagation::inject_current;
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let export = OtlpConfig::new("tp")
        .endpoint("http://127.0.0.1:9")
        .install(MetricsRegistry::new())
        .unwrap();
    let mut outside = Vec::new();
    inject_current(|k, v| outside.push((k.to_owned(), v.to_owned())));
    assert!(outside.is_empty(), "no span, no header: {outside:?}");
    {
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::registry().with(export.tracing_layer()),
        );
        let span = tracing::info_span!("call");
        let _entered = span.enter();
        let mut headers = Vec::new();
        inject_current(|k, v| headers.push((k.to_owned(), v.to_owned())));
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        assert_eq!(
            headers,
            vec![(
                "traceparent".to_owned(),
                format!("00-{}-{}-01", sc.trace_id(), sc.span_id())
            )]
        );
    }
    export.shutdown();
}

#[tokio::test]
async fn protobuf_protocol_sends_binary_otlp() {
    use llmkit_core::telemetry::otel::OtlpProtocol;
    let (endpoint, received, headers) = fake_collector_with_headers();
    let export = OtlpConfig::new("proto")
        .endpoint(endpoint)
        .protocol(OtlpProtocol::HttpProtobuf)
        .install(MetricsRegistry::new())
        .unwrap();
    chat_exported(&export, &MetricsRegistry::new(), ChatRequest::user("hi")).await;
    export.shutdown();
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .any(|(p, _)| p == "/v1/traces")
    );
    let headers = headers.lock().unwrap().clone();
    assert!(
        headers
            .iter()
            .any(|h| h == "content-type:application/x-protobuf"),
        "{headers:?}"
    );
}
