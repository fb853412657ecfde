//! End-to-end fault injection: the real OpenAI provider module against a local HTTP server that
//! resets connections, throttles, fails with 500/503/529, stalls bodies, sends malformed JSON and
//! cuts SSE streams; every fault goes through the recommended per-target stack
//! (Retry → Breaker → Limit → Timeout → provider) and the test asserts the classification, the
//! retries and the final outcome.
//!
//! Real sockets need the real clock (a paused tokio clock would jump ahead while the runtime
//! waits on I/O), so every duration here is tens to hundreds of milliseconds.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/fault_server.rs"]
mod fault_server;

use std::sync::Arc;
use std::time::Duration;

use fault_server::{Fault, FaultServer, openai_completion, openai_error, openai_sse};
use futures::StreamExt;
use llmkit::core::resilience::{
    Backoff, CircuitBreakerLayer, CircuitState, FallbackLayer, Jitter, LimitLayer, RetryLayer,
    TimeoutLayer, target_pipeline,
};
use llmkit::core::{ChatModel, ChatRequest, Error, ErrorKind, Layer, StreamEvent};
use llmkit::providers::factory::from_config;
use llmkit::providers::{ProviderConfig, ProviderKind};
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The real OpenAI provider pointed at the fault server.
fn openai(server: &FaultServer) -> Arc<dyn ChatModel> {
    from_config(
        &ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o-mini")
            .with_api_key("sk-test-fault-injection-000000000000")
            .with_base_url(server.base_url())
            .with_timeout(Duration::from_secs(10)),
    )
    .unwrap()
}

/// The recommended per-target stack with test-sized timings.
fn stack(server: &FaultServer, breakers: &CircuitBreakerLayer) -> Arc<dyn ChatModel> {
    target_pipeline(
        RetryLayer::new()
            .max_attempts(3)
            .max_retry_after(ms(400))
            // Millisecond-scale timings: a retry with 100 ms left before the deadline may finish.
            .min_attempt_time(ms(100))
            .backoff(
                Backoff::exponential()
                    .base(ms(20))
                    .max(ms(80))
                    .jitter(Jitter::Full),
            ),
        breakers.clone(),
        Some(LimitLayer::new().max_concurrency(8)),
        TimeoutLayer::new()
            .attempt(ms(400))
            .first_token(ms(400))
            .idle(ms(300)),
    )
    .build(openai(server))
}

async fn server_with(faults: Vec<Fault>) -> FaultServer {
    let server = FaultServer::start().await.unwrap();
    server.push(faults);
    server
}

fn ok(text: &str) -> Fault {
    Fault::json(200, openai_completion(text))
}

fn failed_attempts(resp: &llmkit::core::ChatResponse) -> Vec<String> {
    resp.trail
        .by_layer("retry")
        .filter(|e| e.event == "attempt_failed")
        .map(|e| e.detail.clone())
        .collect()
}

#[tokio::test]
async fn connection_reset_is_transport_and_retried() {
    let server = server_with(vec![Fault::Reset]).await;
    let bare = openai(&server)
        .chat(ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(bare.kind(), ErrorKind::Transport, "{bare}");
    assert!(bare.is_retryable());

    server.push(vec![Fault::Reset, ok("after reset")]);
    let model = stack(&server, &CircuitBreakerLayer::new());
    let resp = model.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(resp.text(), "after reset");
    let failed = failed_attempts(&resp);
    assert_eq!(failed.len(), 1);
    assert!(failed[0].contains("transport"), "{failed:?}");
    assert_eq!(server.request_count(), 1 + 2);
}

#[tokio::test]
async fn rate_limit_429_honours_retry_after() {
    let throttled = || {
        Fault::json(
            429,
            openai_error(
                "Rate limit reached for requests",
                "requests",
                "rate_limit_exceeded",
            ),
        )
        .header("retry-after-ms", "250")
        .header("retry-after", "1")
    };
    let server = server_with(vec![throttled()]).await;
    let bare = openai(&server)
        .chat(ChatRequest::user("hi"))
        .await
        .unwrap_err();
    assert_eq!(bare.kind(), ErrorKind::RateLimited);
    assert_eq!(bare.status(), Some(429));
    assert_eq!(bare.retry_after(), Some(ms(250)));

    server.push(vec![throttled(), ok("after waiting")]);
    let model = stack(&server, &CircuitBreakerLayer::new());
    let start = Instant::now();
    let resp = model.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(resp.text(), "after waiting");
    assert!(start.elapsed() >= ms(250), "waited {:?}", start.elapsed());
    assert!(failed_attempts(&resp)[0].contains("rate_limited"));
}

#[tokio::test]
async fn retry_after_above_the_cap_is_capped() {
    let server = server_with(vec![
        Fault::json(
            429,
            openai_error("slow down", "requests", "rate_limit_exceeded"),
        )
        .header("retry-after", "30"),
        ok("capped wait"),
    ])
    .await;
    let model = stack(&server, &CircuitBreakerLayer::new());
    let start = Instant::now();
    let resp = model.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(resp.text(), "capped wait");
    let waited = start.elapsed();
    assert!(
        waited >= ms(400) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
}

#[tokio::test]
async fn server_errors_are_classified_and_retried() {
    let cases = [
        (
            500,
            openai_error("internal error", "server_error", ""),
            ErrorKind::Server,
        ),
        (
            503,
            openai_error("service unavailable", "server_error", ""),
            ErrorKind::Server,
        ),
        (
            529,
            openai_error("overloaded", "overloaded_error", ""),
            ErrorKind::Overloaded,
        ),
    ];
    for (status, body, kind) in cases {
        let server = server_with(vec![Fault::json(status, body.clone())]).await;
        let bare = openai(&server)
            .chat(ChatRequest::user("hi"))
            .await
            .unwrap_err();
        assert_eq!((bare.kind(), bare.status()), (kind, Some(status)), "{bare}");

        server.push(vec![Fault::json(status, body), ok("recovered")]);
        let model = stack(&server, &CircuitBreakerLayer::new());
        let resp = model.chat(ChatRequest::user("hi")).await.unwrap();
        assert_eq!(resp.text(), "recovered", "status {status}");
        assert!(failed_attempts(&resp)[0].contains(kind.as_str()));
        assert_eq!(server.request_count(), 3);
    }
}

#[tokio::test]
async fn persistent_5xx_exhausts_retries_then_opens_the_breaker() {
    let server = FaultServer::start().await.unwrap();
    server.fallback(Fault::json(503, openai_error("down", "server_error", "")));
    let breakers = CircuitBreakerLayer::new().consecutive_failures(5);
    let model = stack(&server, &breakers);

    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.attempts().len(), 3, "every attempt kept");
    assert!(
        err.attempts()
            .iter()
            .all(|e: &Error| e.status() == Some(503))
    );
    assert_eq!(server.request_count(), 3);

    // Attempts 4 and 5 trip the breaker; the third attempt of this call fails fast.
    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen, "{err}");
    assert_eq!(server.request_count(), 5);
    assert_eq!(breakers.snapshots()[0].state, CircuitState::Open);

    let start = Instant::now();
    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CircuitOpen);
    assert!(start.elapsed() < ms(50), "failed fast");
    assert_eq!(server.request_count(), 5, "no request while open");
}

#[tokio::test]
async fn slow_body_hits_the_attempt_timeout_and_is_retried() {
    let server = server_with(vec![
        Fault::SlowBody {
            delay: Duration::from_secs(3),
            body: openai_completion("too late"),
        },
        ok("fast enough"),
    ])
    .await;
    let model = stack(&server, &CircuitBreakerLayer::new());
    let start = Instant::now();
    let resp = model.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(resp.text(), "fast enough");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(failed_attempts(&resp)[0].contains("timeout"));
}

#[tokio::test]
async fn overall_deadline_bounds_slow_attempts() {
    let server = FaultServer::start().await.unwrap();
    server.fallback(ok("late").after(Duration::from_secs(3)));
    let model = stack(&server, &CircuitBreakerLayer::new());
    let start = Instant::now();
    let err = model
        .chat(ChatRequest::user("hi").with_deadline((Instant::now() + ms(600)).into_std()))
        .await
        .unwrap_err();
    let took = start.elapsed();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(took >= ms(550) && took < ms(1_000), "{took:?}");
}

#[tokio::test]
async fn malformed_json_is_invalid_response_and_not_retried() {
    let server = server_with(vec![Fault::json(
        200,
        r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assi"#,
    )])
    .await;
    let model = stack(&server, &CircuitBreakerLayer::new());
    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
    assert_eq!(server.request_count(), 1, "a garbled body is not retried");
}

#[tokio::test]
async fn sse_cut_before_the_first_token_is_retried_when_retryable() {
    let server = server_with(vec![
        Fault::Sse {
            frames: openai_sse(&[]).into_iter().take(1).collect(),
            gap: ms(5),
            truncate: true,
        },
        Fault::Sse {
            frames: openai_sse(&["Hello", " world"]),
            gap: ms(5),
            truncate: false,
        },
    ])
    .await;
    let model = stack(&server, &CircuitBreakerLayer::new());
    // A connection cut mid-body is a transport failure (retryable), and nothing reached the
    // caller yet, so the retry layer tries again.
    let stream = model.stream(ChatRequest::user("hi")).await.unwrap();
    let resp = llmkit::core::collect_stream(stream, model.info())
        .await
        .unwrap();
    assert_eq!(resp.text(), "Hello world");
    assert_eq!(server.request_count(), 2, "retried before any token");
}

#[tokio::test]
async fn sse_cut_after_tokens_is_reported_not_retried() {
    let mut frames = openai_sse(&["Hel", "lo"]);
    frames.truncate(3); // role chunk + two content chunks, no finish, no [DONE]
    let server = server_with(vec![
        Fault::Sse {
            frames,
            gap: ms(5),
            truncate: true,
        },
        Fault::Sse {
            frames: openai_sse(&["never used"]),
            gap: ms(5),
            truncate: false,
        },
    ])
    .await;
    let model = stack(&server, &CircuitBreakerLayer::new());
    let mut stream = model.stream(ChatRequest::user("hi")).await.unwrap();
    let mut text = String::new();
    let mut error = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(StreamEvent::TextDelta { text: t }) => text.push_str(&t),
            Ok(_) => {}
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert_eq!(text, "Hello", "tokens delivered before the cut");
    let error = error.expect("the cut is reported");
    assert_eq!(error.kind(), ErrorKind::Transport, "{error}");
    assert_eq!(server.request_count(), 1, "never retried after tokens");
}

#[tokio::test]
async fn idempotency_key_travels_as_a_header_on_every_attempt() {
    let server = server_with(vec![
        Fault::json(503, openai_error("busy", "server_error", "")),
        ok("done"),
    ])
    .await;
    let model = stack(&server, &CircuitBreakerLayer::new());
    model
        .chat(ChatRequest::user("hi").with_idempotency_key("order-42"))
        .await
        .unwrap();
    let keys: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("idempotency-key").map(str::to_owned))
        .collect();
    assert_eq!(
        keys,
        [Some("order-42".to_owned()), Some("order-42".to_owned())]
    );
}

#[tokio::test]
async fn fallback_to_a_second_provider_when_the_first_is_down() {
    let primary = FaultServer::start().await.unwrap();
    primary.fallback(Fault::json(
        529,
        openai_error("overloaded", "overloaded_error", ""),
    ));
    let backup = server_with(vec![ok("backup answered")]).await;
    // Both servers report provider `openai` and model `gpt-4o-mini`: breakers are keyed by
    // provider+model, so each endpoint gets its own breaker layer.
    let model = FallbackLayer::new()
        .then(stack(&backup, &CircuitBreakerLayer::new()))
        .layer(stack(&primary, &CircuitBreakerLayer::new()));
    let resp = model.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(resp.text(), "backup answered");
    assert_eq!(primary.request_count(), 3);
    // One `fallback/attempt_failed` per request the skipped link sent (issue 17 item 4).
    let failed = resp
        .trail
        .by_layer("fallback")
        .filter(|e| e.event == "attempt_failed");
    assert_eq!(failed.count(), 3);
    let skipped: Vec<_> = resp
        .trail
        .by_layer("fallback")
        .filter(|e| e.event != "attempt_failed")
        .map(|e| format!("{} {}", e.event, e.detail))
        .collect();
    assert!(skipped[0].starts_with("skipped link 0"), "{skipped:?}");
    assert!(skipped[0].contains("overloaded"), "{skipped:?}");
    assert!(skipped[1].starts_with("answered link 1"), "{skipped:?}");
}
