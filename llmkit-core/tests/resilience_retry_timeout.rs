//! Retry, timeout and degradation behaviour, on tokio's paused clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use llmkit_core::resilience::{
    Backoff, Degrade, Jitter, RetryBudget, RetryLayer, TimeoutLayer, target_pipeline,
};
use llmkit_core::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind, Layer, ModelInfo, Reply,
    ScriptedModel, StreamEvent, async_trait,
};
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Exact, jitter-free waits so elapsed time is predictable.
fn exact(base: Duration) -> Backoff {
    Backoff::exponential()
        .base(base)
        .max(secs(60))
        .jitter(Jitter::None)
}

fn deadline_in(d: Duration) -> std::time::Instant {
    (Instant::now() + d).into_std()
}

/// One scripted stream: `(delay before the item, item)` pairs.
type Script = Vec<(Duration, Result<StreamEvent, Error>)>;

/// A streaming test model: each call plays the next script of `(delay, event)` pairs.
struct PacedStream {
    info: ModelInfo,
    scripts: std::sync::Mutex<Vec<Script>>,
    calls: AtomicUsize,
}

impl PacedStream {
    fn new(scripts: Vec<Script>) -> Arc<Self> {
        Arc::new(PacedStream {
            info: ModelInfo::new("paced", "paced-1"),
            scripts: std::sync::Mutex::new(scripts.into_iter().rev().collect()),
            calls: AtomicUsize::new(0),
        })
    }
}

fn text(t: &str) -> Result<StreamEvent, Error> {
    Ok(StreamEvent::TextDelta { text: t.into() })
}

fn done() -> Result<StreamEvent, Error> {
    Ok(StreamEvent::Done {
        finish_reason: llmkit_core::FinishReason::Stop,
    })
}

#[async_trait]
impl ChatModel for PacedStream {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn chat(&self, _: ChatRequest) -> llmkit_core::Result<ChatResponse> {
        Err(Error::new(ErrorKind::Unsupported, "stream only"))
    }

    async fn stream(&self, _: ChatRequest) -> llmkit_core::Result<ChatStream> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let script = self.scripts.lock().unwrap().pop().unwrap_or_default();
        Ok(Box::pin(futures::stream::iter(script).then(
            |(delay, ev)| async move {
                tokio::time::sleep(delay).await;
                ev
            },
        )))
    }
}

async fn drain(mut s: ChatStream) -> (String, Option<Error>) {
    let mut out = String::new();
    while let Some(ev) = s.next().await {
        match ev {
            Ok(StreamEvent::TextDelta { text }) => out.push_str(&text),
            Ok(_) => {}
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

// ---------------------------------------------------------------- retry

#[tokio::test(start_paused = true)]
async fn backoff_schedule_is_followed_between_attempts() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::server_error(500))
            .reply(Reply::server_error(502))
            .reply(Reply::overloaded())
            .reply("finally")
            .build(),
    );
    let model = RetryLayer::new()
        .max_attempts(4)
        .backoff(exact(ms(100)))
        .layer(provider.clone());
    let start = Instant::now();
    let resp = model.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(resp.text(), "finally");
    assert_eq!(start.elapsed(), ms(100 + 200 + 400));
    assert_eq!(provider.call_count(), 4);
    assert_eq!(resp.trail.by_layer("retry").count(), 4, "{:?}", resp.trail);
    assert!(resp.trail.has("retry", "answered"));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::rate_limited(secs(5)))
            .reply("ok")
            .build(),
    );
    let model = RetryLayer::new()
        .backoff(exact(ms(100)))
        .layer(provider.clone());
    let start = Instant::now();
    model.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(start.elapsed(), secs(5));
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_capped() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::rate_limited(secs(120)))
            .reply("ok")
            .build(),
    );
    let model = RetryLayer::new()
        .backoff(exact(ms(100)))
        .max_retry_after(secs(10))
        .layer(provider.clone());
    let start = Instant::now();
    model.chat(ChatRequest::user("hi")).await.unwrap();
    assert_eq!(start.elapsed(), secs(10));
}

#[tokio::test(start_paused = true)]
async fn non_retryable_errors_are_not_retried() {
    for kind in [
        ErrorKind::InvalidRequest,
        ErrorKind::Auth,
        ErrorKind::ContextLength,
        ErrorKind::QuotaExhausted,
        ErrorKind::CircuitOpen,
    ] {
        let provider = Arc::new(
            ScriptedModel::builder()
                .fallback(Reply::fail(Error::new(kind, "nope")))
                .build(),
        );
        let model = RetryLayer::new().max_attempts(5).layer(provider.clone());
        let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(provider.call_count(), 1, "{kind} was retried");
        // Attempts are requests actually sent; an open circuit is a local refusal (issue 17).
        let sent = usize::from(kind != ErrorKind::CircuitOpen);
        assert_eq!(err.attempts().len(), sent, "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn final_error_keeps_every_attempt() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::server_error(500))
            .reply(Reply::timeout())
            .reply(Reply::overloaded())
            .build(),
    );
    let model = RetryLayer::new()
        .backoff(exact(ms(10)))
        .layer(provider.clone());
    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    let kinds: Vec<_> = err.attempts().iter().map(Error::kind).collect();
    assert_eq!(
        kinds,
        [ErrorKind::Server, ErrorKind::Timeout, ErrorKind::Overloaded]
    );
}

#[tokio::test(start_paused = true)]
async fn retry_never_sleeps_past_the_deadline() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::server_error(503).after(secs(1)))
            .build(),
    );
    let model = RetryLayer::new()
        .max_attempts(10)
        .backoff(exact(secs(2)).factor(1.0))
        .layer(provider.clone());
    let start = Instant::now();
    let req = ChatRequest::user("hi").with_deadline(deadline_in(secs(5)));
    let err = model.chat(req).await.unwrap_err();
    // attempt 1: 0–1 s, wait 2 s, attempt 2: 3–4 s; a third wait of 2 s would cross 5 s.
    assert_eq!(start.elapsed(), secs(4));
    assert_eq!(provider.call_count(), 2);
    assert_eq!(err.kind(), ErrorKind::Server);
}

#[tokio::test(start_paused = true)]
async fn deadline_bounds_all_attempts_together_with_attempt_timeouts() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::text("too late").after(secs(10)))
            .build(),
    );
    let model = target_pipeline(
        RetryLayer::new()
            .max_attempts(10)
            .backoff(exact(ms(500)).factor(1.0)),
        llmkit_core::resilience::CircuitBreakerLayer::new(),
        None,
        TimeoutLayer::new().attempt(secs(2)),
    )
    .build(provider.clone());
    let start = Instant::now();
    let err = model
        .chat(ChatRequest::user("hi").with_deadline(deadline_in(secs(6))))
        .await
        .unwrap_err();
    // 0–2 timeout, 2.5–4.5 timeout, 5–6 cut by the deadline.
    assert_eq!(start.elapsed(), secs(6));
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(provider.call_count(), 3);
    assert!(err.message().contains("deadline"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn retry_budget_stops_a_retry_storm() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .fallback(Reply::server_error(503))
            .build(),
    );
    let budget = RetryBudget::new().min_per_second(0).ratio(0.5);
    let model = RetryLayer::new()
        .max_attempts(5)
        .backoff(exact(ms(1)))
        .budget(budget.clone())
        .layer(provider.clone());
    for _ in 0..4 {
        let _ = model.chat(ChatRequest::user("hi")).await;
    }
    // Requests 1..4 earn floor(n × 0.5) retries in total: 2. Without a budget: 4 × 5 = 20 calls.
    assert_eq!(provider.call_count(), 4 + 2);
    assert_eq!(budget.available(), 0);
    // The window slides: after it passes, retries are allowed again.
    tokio::time::advance(secs(11)).await;
    for _ in 0..2 {
        budget.deposit();
    }
    assert_eq!(budget.available(), 1);
}

#[tokio::test(start_paused = true)]
async fn default_budget_minimum_allows_retries_at_low_traffic() {
    let budget = RetryBudget::new();
    assert_eq!(budget.available(), 100, "10/s over a 10 s window");
}

#[tokio::test(start_paused = true)]
async fn stream_setup_failures_are_retried() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::server_error(503))
            .reply("streamed answer")
            .build(),
    );
    let model = RetryLayer::new()
        .backoff(exact(ms(10)))
        .layer(provider.clone());
    let (out, err) = drain(model.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert!(err.is_none());
    assert_eq!(out, "streamed answer");
    assert_eq!(provider.call_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn stream_error_before_first_token_is_retried() {
    let start = Ok(StreamEvent::Start {
        model: "paced-1".into(),
        provider_request_id: None,
    });
    let provider = PacedStream::new(vec![
        vec![
            (ms(0), start.clone()),
            (ms(5), Err(Error::new(ErrorKind::Transport, "reset"))),
        ],
        vec![(ms(0), start), (ms(5), text("hello")), (ms(5), done())],
    ]);
    let model = RetryLayer::new()
        .backoff(exact(ms(10)))
        .layer(provider.clone());
    let (out, err) = drain(model.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(out, "hello");
    assert_eq!(provider.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn stream_is_never_retried_after_a_token() {
    let provider = PacedStream::new(vec![
        vec![
            (ms(0), text("partial ")),
            (ms(5), Err(Error::new(ErrorKind::Transport, "reset"))),
        ],
        vec![(ms(0), text("should not be used")), (ms(0), done())],
    ]);
    let model = RetryLayer::new()
        .backoff(exact(ms(10)))
        .layer(provider.clone());
    let (out, err) = drain(model.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert_eq!(out, "partial ");
    assert_eq!(err.unwrap().kind(), ErrorKind::Transport);
    assert_eq!(provider.calls.load(Ordering::SeqCst), 1);
}

// ---------------------------------------------------------------- timeouts

#[tokio::test(start_paused = true)]
async fn attempt_timeout_fires_at_its_limit() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::text("late").after(secs(90)))
            .build(),
    );
    let model = TimeoutLayer::new().attempt(secs(30)).layer(provider);
    let start = Instant::now();
    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
    assert_eq!(start.elapsed(), secs(30));
    assert_eq!(err.provider(), Some("scripted"));
}

#[tokio::test(start_paused = true)]
async fn overall_deadline_cuts_an_attempt_short() {
    let provider = Arc::new(
        ScriptedModel::builder()
            .reply(Reply::text("late").after(secs(90)))
            .build(),
    );
    let model = TimeoutLayer::new().attempt(secs(30)).layer(provider);
    let start = Instant::now();
    let err = model
        .chat(ChatRequest::user("hi").with_deadline(deadline_in(secs(3))))
        .await
        .unwrap_err();
    assert_eq!(start.elapsed(), secs(3));
    assert!(err.message().contains("deadline"), "{err}");
}

/// A model that flips a flag when its (slow) work completes: proves that a timed-out or dropped
/// call leaves nothing running.
struct Slow {
    info: ModelInfo,
    finished: Arc<AtomicBool>,
}

#[async_trait]
impl ChatModel for Slow {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn chat(&self, _: ChatRequest) -> llmkit_core::Result<ChatResponse> {
        tokio::time::sleep(secs(10)).await;
        self.finished.store(true, Ordering::SeqCst);
        Ok(ChatResponse::default())
    }
}

#[tokio::test(start_paused = true)]
async fn timed_out_and_dropped_calls_leave_no_work_behind() {
    let finished = Arc::new(AtomicBool::new(false));
    let slow = Arc::new(Slow {
        info: ModelInfo::new("slow", "slow-1"),
        finished: finished.clone(),
    });
    let model = target_pipeline(
        RetryLayer::new().max_attempts(1),
        llmkit_core::resilience::CircuitBreakerLayer::new(),
        None,
        TimeoutLayer::new().attempt(secs(1)),
    )
    .build(slow.clone());
    assert!(model.chat(ChatRequest::user("hi")).await.is_err());
    // Dropped by the caller mid-flight (a client disconnect):
    let dropped = tokio::time::timeout(ms(500), model.chat(ChatRequest::user("hi"))).await;
    assert!(dropped.is_err());
    tokio::time::sleep(secs(60)).await;
    assert!(
        !finished.load(Ordering::SeqCst),
        "work continued after cancel"
    );
}

#[tokio::test(start_paused = true)]
async fn stream_time_to_first_token() {
    let provider = PacedStream::new(vec![vec![
        (
            ms(0),
            Ok(StreamEvent::Start {
                model: "paced-1".into(),
                provider_request_id: None,
            }),
        ),
        (secs(10), text("late")),
        (ms(0), done()),
    ]]);
    let model = TimeoutLayer::new().first_token(secs(5)).layer(provider);
    let start = Instant::now();
    let (out, err) = drain(model.stream(ChatRequest::user("hi")).await.unwrap()).await;
    let err = err.expect("ttft timeout");
    assert_eq!(out, "");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.message().contains("first token"), "{err}");
    assert_eq!(start.elapsed(), secs(5));
}

#[tokio::test(start_paused = true)]
async fn stream_idle_timeout_between_chunks() {
    let provider = PacedStream::new(vec![vec![
        (ms(100), text("a")),
        (secs(1), text("b")),
        (secs(20), text("c")),
        (ms(0), done()),
    ]]);
    let model = TimeoutLayer::new()
        .first_token(secs(5))
        .idle(secs(5))
        .layer(provider);
    let start = Instant::now();
    let (out, err) = drain(model.stream(ChatRequest::user("hi")).await.unwrap()).await;
    let err = err.expect("idle timeout");
    assert_eq!(out, "ab");
    assert!(err.message().contains("idle"), "{err}");
    assert_eq!(start.elapsed(), ms(100) + secs(1) + secs(5));
}

#[tokio::test(start_paused = true)]
async fn healthy_slow_stream_is_not_cut() {
    let chunks: Vec<_> = (0..20)
        .map(|_| (secs(4), text("x")))
        .chain([(ms(0), done())])
        .collect();
    let provider = PacedStream::new(vec![chunks]);
    let model = TimeoutLayer::new()
        .attempt(secs(30))
        .first_token(secs(5))
        .idle(secs(5))
        .layer(provider);
    let (out, err) = drain(model.stream(ChatRequest::user("hi")).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        out.len(),
        20,
        "80 s in total is fine: each gap is under the idle limit"
    );
}

// ---------------------------------------------------------------- degradation

#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Approve,
    Escalate { confidence: f32 },
}

#[tokio::test(start_paused = true)]
async fn degraded_outcome_replaces_the_error() {
    let plan = Degrade::new(
        Verdict::Escalate { confidence: 0.0 },
        "model unavailable — routed to a human",
    )
    .pass_through(ErrorKind::Config);
    let down = ScriptedModel::builder()
        .fallback(Reply::overloaded())
        .build();
    let up = ScriptedModel::always("approve");
    let ask = |m: ScriptedModel| async move {
        let r = m.chat(ChatRequest::user("refund?")).await?;
        Ok::<_, Error>(if r.text() == "approve" {
            Verdict::Approve
        } else {
            Verdict::Escalate { confidence: 0.5 }
        })
    };
    let ok = plan.run(ask(up)).await.unwrap();
    assert!(!ok.is_degraded());
    assert_eq!(ok.value(), &Verdict::Approve);

    let degraded = plan.run(ask(down)).await.unwrap();
    assert!(degraded.is_degraded());
    assert_eq!(degraded.value(), &Verdict::Escalate { confidence: 0.0 });
    assert_eq!(degraded.error().unwrap().kind(), ErrorKind::Overloaded);

    let config = plan.apply(Err(Error::config("missing key"))).unwrap_err();
    assert_eq!(config.kind(), ErrorKind::Config, "passed through");
}

#[tokio::test(start_paused = true)]
async fn degradation_can_decide_from_the_error() {
    let plan: Degrade<String> = Degrade::with(|e| {
        (e.kind() == ErrorKind::RateLimited).then(|| {
            (
                "please retry in a minute".to_owned(),
                format!("throttled: {}", e.kind()),
            )
        })
    });
    let throttled = plan
        .apply(Err(Error::new(ErrorKind::RateLimited, "429")))
        .unwrap();
    assert_eq!(throttled.reason(), Some("throttled: rate_limited"));
    assert!(plan.apply(Err(Error::new(ErrorKind::Auth, "401"))).is_err());
}
