//! tower's own middleware (concurrency limit, rate limit, load shedding, buffer, timeout) around a
//! model and around a resilient llmkit stack, through both adapters.
#![allow(clippy::panic)] // panics are how a test fails

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use llmkit_core::resilience::{Backoff, Jitter, RetryLayer, TimeoutLayer};
use llmkit_core::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, ErrorKind, ModelInfo, Pipeline, Result,
    ScriptedModel, StreamEvent, response_to_events,
};
use llmkit_tower::{ModelService, TowerLayer};
use tower::buffer::BufferLayer;
use tower::limit::{ConcurrencyLimitLayer, RateLimitLayer};
use tower::load_shed::LoadShedLayer;
use tower::timeout::TimeoutLayer as TowerTimeoutLayer;
use tower::{Service, ServiceBuilder, ServiceExt};

/// A model that takes `delay` per call and records how many calls overlap.
struct SlowModel {
    info: ModelInfo,
    delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    calls: AtomicUsize,
    replies: ScriptedModel,
}

impl SlowModel {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(SlowModel {
            info: ModelInfo::new("test", "slow"),
            delay,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            calls: AtomicUsize::new(0),
            replies: ScriptedModel::always("done"),
        })
    }
}

#[async_trait]
impl ChatModel for SlowModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.replies.chat(request).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let response = self.chat(request).await?;
        let events: Vec<Result<StreamEvent>> =
            response_to_events(&response).into_iter().map(Ok).collect();
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

fn quick_backoff() -> Backoff {
    Backoff::exponential()
        .base(Duration::from_millis(1))
        .jitter(Jitter::None)
}

async fn run_concurrently(model: Arc<dyn ChatModel>, n: usize) -> Vec<Result<ChatResponse>> {
    let calls = (0..n).map(|i| {
        let model = model.clone();
        tokio::spawn(async move { model.chat(ChatRequest::user(format!("q{i}"))).await })
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|joined| joined.unwrap_or_else(|e| panic!("task panicked: {e}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tower_concurrency_limit_inside_a_pipeline_bounds_calls_in_flight() {
    let slow = SlowModel::new(Duration::from_millis(20));
    let model = Pipeline::builder()
        .layer(TowerLayer::new(ConcurrencyLimitLayer::new(2)))
        .build(slow.clone());
    let results = run_concurrently(model, 10).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(slow.calls.load(Ordering::SeqCst), 10);
    let max = slow.max_in_flight.load(Ordering::SeqCst);
    assert!(max <= 2, "at most 2 calls in flight, saw {max}");
    assert_eq!(max, 2, "the limit is used, not serialised to 1");
}

#[tokio::test(start_paused = true)]
async fn tower_rate_limit_spaces_calls_by_its_window() {
    let slow = SlowModel::new(Duration::ZERO);
    // RateLimit is not Clone: the adapter drives it through its mutex.
    let model = Pipeline::builder()
        .layer(TowerLayer::new(RateLimitLayer::new(
            3,
            Duration::from_secs(1),
        )))
        .build(slow.clone());
    let start = tokio::time::Instant::now();
    for i in 0..7 {
        model
            .chat(ChatRequest::user(format!("q{i}")))
            .await
            .unwrap_or_else(|e| panic!("call {i}: {e}"));
    }
    // 3 in the first window, 3 in the second, the 7th opens the third.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(slow.calls.load(Ordering::SeqCst), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_shed_refuses_with_limit_exceeded_instead_of_waiting() {
    let slow = SlowModel::new(Duration::from_millis(200));
    let model = Pipeline::builder()
        .layer(TowerLayer::new(
            ServiceBuilder::new()
                .layer(LoadShedLayer::new())
                .layer(ConcurrencyLimitLayer::new(1))
                .into_inner(),
        ))
        .build(slow.clone());
    let first = {
        let model = model.clone();
        tokio::spawn(async move { model.chat(ChatRequest::user("first")).await })
    };
    // Let the first call take the only permit.
    while slow.in_flight.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let shed = model.chat(ChatRequest::user("second")).await;
    let err = shed.expect_err("the second call is shed while the first holds the permit");
    assert_eq!(err.kind(), ErrorKind::LimitExceeded, "{err}");
    assert!(!err.is_retryable());
    let first = first.await.unwrap_or_else(|e| panic!("join: {e}"));
    assert_eq!(
        first.map(|r| r.text().to_string()).ok().as_deref(),
        Some("done")
    );
    assert_eq!(
        slow.calls.load(Ordering::SeqCst),
        1,
        "the shed call never reached the model"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_keeps_llmkit_errors_intact() {
    // The inner model throttles with a retry-after; Buffer boxes errors, the adapter unboxes.
    let throttled = Arc::new(
        ScriptedModel::builder()
            .reply(llmkit_core::Reply::rate_limited(Duration::from_secs(7)))
            .build(),
    );
    let model = Pipeline::builder()
        .layer(TowerLayer::new(BufferLayer::new(8)))
        .build(throttled);
    let err = model
        .chat(ChatRequest::user("hi"))
        .await
        .expect_err("scripted 429");
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test(start_paused = true)]
async fn tower_timeout_is_classified_as_timeout_and_retried_by_llmkit() {
    // tower's timeout inside llmkit's retry: the retry owner sees a retryable Timeout.
    let slow = SlowModel::new(Duration::from_secs(10));
    let model = Pipeline::builder()
        .layer(RetryLayer::new().max_attempts(2).backoff(quick_backoff()))
        .layer(TowerLayer::new(TowerTimeoutLayer::new(
            Duration::from_secs(1),
        )))
        .build(slow.clone());
    let err = model
        .chat(ChatRequest::user("hi"))
        .await
        .expect_err("both attempts time out");
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(slow.calls.load(Ordering::SeqCst), 2, "retried once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_calls_go_through_the_same_tower_service() {
    let slow = SlowModel::new(Duration::from_millis(5));
    let model = Pipeline::builder()
        .layer(TowerLayer::new(ConcurrencyLimitLayer::new(1)))
        .build(slow.clone());
    let mut stream = model
        .stream(ChatRequest::user("hi"))
        .await
        .unwrap_or_else(|e| panic!("stream: {e}"));
    let mut done = 0;
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event.unwrap_or_else(|e| panic!("event: {e}")) {
            StreamEvent::TextDelta { text: delta } => text.push_str(&delta),
            StreamEvent::Done { .. } => done += 1,
            _ => {}
        }
    }
    assert_eq!((text.as_str(), done), ("done", 1));
    assert_eq!(slow.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resilient_llmkit_stack_served_through_tower_service_builder() {
    // The llmkit stack (retry + per-attempt timeout over a provider that fails once) becomes a
    // tower Service, wrapped in tower's buffer + load-shed + concurrency limit.
    let provider = Arc::new(
        ScriptedModel::builder()
            .on_call(1, llmkit_core::Reply::server_error(503))
            .fallback("answer")
            .build(),
    );
    let stack: Arc<dyn ChatModel> = Pipeline::builder()
        .layer(RetryLayer::new().max_attempts(3).backoff(quick_backoff()))
        .layer(TimeoutLayer::new().attempt(Duration::from_secs(5)))
        .build(provider.clone());
    let service = ServiceBuilder::new()
        .buffer(32)
        .concurrency_limit(4)
        .service(ModelService::new(stack));
    let calls = (0..16).map(|i| {
        let service = service.clone();
        tokio::spawn(async move {
            service
                .oneshot(ChatRequest::user(format!("q{i}")))
                .await
                .map_err(llmkit_tower::error_from_tower)
        })
    });
    let results = futures::future::join_all(calls).await;
    for joined in results {
        let response = joined
            .unwrap_or_else(|e| panic!("join: {e}"))
            .unwrap_or_else(|e| panic!("call: {e}"));
        assert_eq!(response.text(), "answer");
    }
    // 16 logical calls, one of which was retried after the scripted 503.
    assert_eq!(provider.call_count(), 17);
}

#[tokio::test]
async fn model_service_answers_a_single_call() {
    let mut service = ModelService::new(Arc::new(ScriptedModel::always("pong")));
    let response = service
        .ready()
        .await
        .unwrap_or_else(|e| panic!("ready: {e}"))
        .call(ChatRequest::user("ping"))
        .await
        .unwrap_or_else(|e| panic!("call: {e}"));
    assert_eq!(response.text(), "pong");
}
