//! Resilience: the OpenAI provider against a local fake server that throttles, fails, stalls, then answers.
//!
//! Run with `cargo run --example resilience`. Offline: the "OpenAI" server is an in-process fake
//! on 127.0.0.1 that answers 429 with Retry-After, then 503, then a reply too slow for the attempt
//! timeout, then success. The recommended per-target stack (Retry → Breaker → Limit → Timeout)
//! rides it out; a second run against a server that stays down shows the breaker opening and the
//! application's planned degraded answer instead of an error.

#[path = "../tests/support/fault_server.rs"]
mod fault_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fault_server::{Fault, FaultServer, openai_completion, openai_error};
use llmkit::core::resilience::{
    Backoff, CircuitBreakerLayer, Degrade, Jitter, LimitLayer, RetryLayer, TimeoutLayer,
    target_pipeline,
};
use llmkit::core::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, Layer, ModelInfo, Result, async_trait,
};
use llmkit::providers::factory::from_config;
use llmkit::providers::{ProviderConfig, ProviderKind};
use tokio::time::Instant;

/// Prints every attempt as it reaches the provider: the innermost wrapper of the example stack.
struct PrintAttempts {
    inner: Arc<dyn ChatModel>,
    attempt: AtomicU32,
    started: Instant,
}

#[async_trait]
impl ChatModel for PrintAttempts {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let n = self.attempt.fetch_add(1, Ordering::SeqCst) + 1;
        let at = self.started.elapsed();
        let result = self.inner.chat(request).await;
        match &result {
            Ok(resp) => println!("  attempt {n} at {at:>8.2?}: ok, {:?}", resp.text()),
            Err(e) => println!("  attempt {n} at {at:>8.2?}: {e}"),
        }
        result
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        self.inner.stream(request).await
    }
}

/// The real OpenAI provider pointed at the fake server, bounded by the attempt timeout and
/// wrapped in the printing layer (outside the timeout, so timed-out attempts print too).
fn openai(server: &FaultServer) -> Result<Arc<dyn ChatModel>> {
    let provider = from_config(
        &ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o-mini")
            .with_api_key("sk-example-not-a-real-key-0000000000")
            .with_base_url(server.base_url()),
    )?;
    Ok(Arc::new(PrintAttempts {
        inner: TimeoutLayer::new()
            .attempt(Duration::from_millis(700))
            .layer(provider),
        attempt: AtomicU32::new(0),
        started: Instant::now(),
    }))
}

fn stack(provider: Arc<dyn ChatModel>, breakers: &CircuitBreakerLayer) -> Arc<dyn ChatModel> {
    target_pipeline(
        RetryLayer::new()
            .max_attempts(5)
            .max_retry_after(Duration::from_secs(2))
            .backoff(
                Backoff::exponential()
                    .base(Duration::from_millis(100))
                    .max(Duration::from_secs(1))
                    .jitter(Jitter::Decorrelated),
            ),
        breakers.clone(),
        Some(
            LimitLayer::new()
                .max_concurrency(4)
                .requests_per_minute(600),
        ),
        // The attempt timeout is applied inside the printing wrapper (see `openai`).
        TimeoutLayer::new().no_attempt_limit().no_stream_limits(),
    )
    .build(provider)
}

#[derive(Debug, Clone)]
enum Verdict {
    Answer(String),
    Escalate { confidence: f32, reason: String },
}

#[tokio::main]
async fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    println!("1) a flaky provider: 429 (Retry-After 1 s), 503, a 3 s stall, then success");
    let server = FaultServer::start().await?;
    server.push([
        Fault::json(
            429,
            openai_error(
                "Rate limit reached for requests",
                "requests",
                "rate_limit_exceeded",
            ),
        )
        .header("retry-after", "1"),
        Fault::json(
            503,
            openai_error("The server is overloaded", "server_error", ""),
        ),
        Fault::SlowBody {
            delay: Duration::from_secs(3),
            body: openai_completion("too late"),
        },
        Fault::json(
            200,
            openai_completion("Refunds are accepted within 30 days of purchase."),
        ),
    ]);
    let breakers = CircuitBreakerLayer::new().consecutive_failures(5);
    let model = stack(openai(&server)?, &breakers);
    let started = Instant::now();
    let resp = model
        .chat(ChatRequest::user("Can I get a refund after 60 days?"))
        .await?;
    println!(
        "  answer after {:.2?}: {:?} (model {})",
        started.elapsed(),
        resp.text(),
        resp.model
    );
    for note in resp.trail.entries() {
        println!("  trail {}/{}: {}", note.layer, note.event, note.detail);
    }
    for b in breakers.snapshots() {
        println!(
            "  breaker {}/{}: {} (consecutive failures {})",
            b.provider, b.model, b.state, b.consecutive_failures
        );
    }

    println!("\n2) a provider that stays down: the breaker opens, the app degrades as planned");
    let down = FaultServer::start().await?;
    down.fallback(Fault::json(
        503,
        openai_error("down for maintenance", "server_error", ""),
    ));
    let breakers = CircuitBreakerLayer::new().consecutive_failures(3);
    let model = stack(openai(&down)?, &breakers);
    let plan = Degrade::new(
        Verdict::Escalate {
            confidence: 0.0,
            reason: "model unavailable — routed to a human".into(),
        },
        "model unavailable — routed to a human",
    );
    for call in 1..=2 {
        let outcome = plan
            .run(async {
                let resp = model.chat(ChatRequest::user("Refund order 42?")).await?;
                Ok(Verdict::Answer(resp.text()))
            })
            .await?;
        let state = breakers
            .snapshots()
            .first()
            .map_or("none".to_owned(), |b| b.state.to_string());
        let cause = outcome.error().map_or("-", |e| e.kind().as_str());
        match outcome.value() {
            Verdict::Escalate { confidence, reason } => println!(
                "  call {call}: degraded (cause {cause}): escalate, confidence {confidence}, {reason:?} (breaker {state})"
            ),
            Verdict::Answer(text) => println!("  call {call}: answered {text:?} (breaker {state})"),
        }
    }
    println!(
        "  the server saw {} requests: the open breaker failed the rest fast",
        down.request_count()
    );
    Ok(())
}
