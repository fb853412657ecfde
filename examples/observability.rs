//! Observability offline: traced calls across two prompt versions (with a retry and a failure), a per-call table, cost per request, p95 latency, a drift alert and a JSON-lines trace file.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use llmkit::core::async_trait;
use llmkit::core::telemetry::semconv;
use llmkit::core::telemetry::{
    CallRecord, DriftAlert, DriftMonitor, DriftRule, ExportQueue, JsonLinesSink, Signal, TraceLayer,
};
use llmkit::core::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, Layer, Message, ModelInfo,
    Pipeline, PromptRef, Reply, ScriptedModel,
};

/// A tiny retry layer for the example (the real one lives in llmkit's resilience module). It
/// notes each failed attempt in the trail, which is how the trace layer counts attempts.
struct RetryLayer {
    max_attempts: u32,
}

struct Retry {
    inner: Arc<dyn ChatModel>,
    max_attempts: u32,
}

impl Layer for RetryLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Retry {
            inner,
            max_attempts: self.max_attempts,
        })
    }
}

#[async_trait]
impl ChatModel for Retry {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    async fn chat(&self, request: ChatRequest) -> llmkit::core::Result<ChatResponse> {
        let mut failures: Vec<Error> = Vec::new();
        loop {
            match self.inner.chat(request.clone()).await {
                Ok(mut resp) => {
                    for e in &failures {
                        resp.trail.push(
                            semconv::TRAIL_LAYER_RETRY,
                            semconv::TRAIL_EVENT_ATTEMPT_FAILED,
                            e.kind().as_str(),
                        );
                    }
                    return Ok(resp);
                }
                Err(e) if e.is_retryable() && (failures.len() as u32 + 1) < self.max_attempts => {
                    tokio::time::sleep(e.retry_after().unwrap_or(Duration::from_millis(20))).await;
                    failures.push(e);
                }
                Err(e) => return Err(e.with_attempts(failures)),
            }
        }
    }

    async fn stream(&self, request: ChatRequest) -> llmkit::core::Result<ChatStream> {
        self.inner.stream(request).await
    }
}

fn prompt(version: &str, hash: &str) -> PromptRef {
    PromptRef {
        id: "refund_answer".into(),
        version: version.into(),
        hash: hash.into(),
    }
}

fn ask(question: &str, prompt: &PromptRef) -> ChatRequest {
    ChatRequest::new(vec![
        Message::system("Answer from the refund policy in one sentence."),
        Message::user(question),
    ])
    .with_prompt(prompt.clone())
    .with_temperature(0.0)
    .with_max_tokens(200)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Offline: a scripted test double posing as gpt-4o-mini so the bundled price table applies.
    let provider = Arc::new(
        ScriptedModel::builder()
            .provider("openai")
            .model("gpt-4o-mini")
            .reply(
                Reply::text("Yes, within 30 days with a receipt.")
                    .after(Duration::from_millis(120)),
            )
            .reply(
                Reply::text("Shoes can be returned unworn within 30 days.")
                    .after(Duration::from_millis(95)),
            )
            .reply(Reply::rate_limited(Duration::from_millis(50)))
            .reply(
                Reply::text("Refunds go back to the original card in 5 to 7 days.")
                    .after(Duration::from_millis(140)),
            )
            .reply(Reply::text("Gift cards are not refundable.").after(Duration::from_millis(80)))
            .reply(Reply::fail(Error::new(
                ErrorKind::ContextLength,
                "prompt exceeds the context window",
            )))
            .reply(
                Reply::text("Sale items can be exchanged, not refunded.")
                    .after(Duration::from_millis(110)),
            )
            .build(),
    );

    let path =
        std::env::temp_dir().join(format!("llmkit-observability-{}.jsonl", std::process::id()));
    let queue = ExportQueue::spawn(Arc::new(JsonLinesSink::create(&path)?), 1024);
    let drift = DriftMonitor::builder()
        .rule(DriftRule::new("error rate", Signal::ErrorRate, 5).at_most(0.1))
        .sink(|a: &DriftAlert| println!("ALERT  {a}"))
        .build();
    let trace = TraceLayer::builder()
        .export(queue.clone())
        .drift(drift)
        .build();
    let metrics = trace.metrics().clone();
    let model = Pipeline::builder()
        .layer(trace) // outermost: one span and one record per logical call
        .layer(RetryLayer { max_attempts: 3 })
        .build(provider);

    let v1 = prompt("1", "5d41402abc4b2a76b9719d911017c592");
    let v2 = prompt("2", "7d793037a0760186574b0282f2f435e7");
    let calls = [
        ("Can I get a refund after 20 days?", &v1),
        ("Can I return worn shoes?", &v1),
        ("How long does a refund take?", &v2), // rate limited once, then retried
        ("Can I refund a gift card?", &v2),
        ("(a very long pasted conversation)", &v2), // fails: not retryable
    ];
    for (question, p) in calls {
        match model.chat(ask(question, p)).await {
            Ok(r) => println!("ok     {} -> {}", p, r.text()),
            Err(e) => println!("error  {} -> {e}", p),
        }
    }
    // A streamed call: its span and record close when the stream ends.
    let mut stream = model.stream(ask("Are sale items refundable?", &v2)).await?;
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        if let llmkit::core::StreamEvent::TextDelta { text: t } = event? {
            text.push_str(&t);
        }
    }
    drop(stream);
    println!("stream {} -> {text}", v2);

    queue.flush().await;

    // Everything below is read back from the JSON-lines file alone.
    let records: Vec<CallRecord> = std::fs::read_to_string(&path)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    println!();
    println!(
        "{:<16} {:<12} {:>6} {:>6} {:>12} {:>9} {:>8}  result",
        "prompt", "model", "in", "out", "cost usd", "latency", "attempts"
    );
    for r in &records {
        let p = r
            .prompt
            .as_ref()
            .map(|p| format!("{}@{}", p.id, p.version))
            .unwrap_or_default();
        let (tin, tout) = r
            .usage
            .map_or((0, 0), |u| (u.input_tokens, u.output_tokens));
        let cost = match (&r.cost, r.cost_unknown) {
            (Some(c), _) => c.total_usd.to_string(),
            (None, true) => "unknown".into(),
            (None, false) => "-".into(),
        };
        let result = r.error_type.map_or_else(
            || r.finish_reason.clone().unwrap_or_default(),
            |k| k.to_string(),
        );
        println!(
            "{:<16} {:<12} {:>6} {:>6} {:>12} {:>7.1}ms {:>8}  {}{}",
            p,
            r.model(),
            tin,
            tout,
            cost,
            r.latency_ms,
            r.attempts,
            result,
            if r.stream { " (stream)" } else { "" }
        );
    }

    let snap = metrics.snapshot();
    let total = snap.total();
    println!();
    println!(
        "requests {}  errors {}  cost {} USD  cost/request {} USD  p95 latency {:.1} ms  (price table {})",
        total.requests,
        total.error_count(),
        total.cost_usd,
        total
            .cost_per_request()
            .map_or_else(|| "unknown".to_owned(), |c| c.round_dp(8).to_string()),
        total.latency_p95_ms,
        records
            .iter()
            .find_map(|r| r.cost.as_ref())
            .map_or("-", |c| c.price_table.as_str()),
    );
    for (key, s) in &snap.series {
        println!(
            "  {}: {} calls, p95 {:.1} ms, {} USD",
            key.prompt_version, s.requests, s.latency_p95_ms, s.cost_usd
        );
    }
    println!();
    println!("JSON-lines trace: {}", path.display());
    Ok(())
}
