//! [`TimeoutLayer`]: bounds one attempt, and a stream's wait for its first token and between
//! chunks, always within the request's overall deadline. [`DeadlineLayer`]: sets that overall
//! deadline for a whole logical call, near the top of the stack.
//!
//! Nothing is spawned: the timers live inside the returned future or stream, so dropping either
//! cancels the call and its timers together.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use tokio::time::{Instant, Sleep};

use super::deadline_error;
use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::model::{ChatModel, ChatStream, EmbeddingModel, ModelInfo};
use crate::request::{ChatRequest, RequestMeta};
use crate::response::{ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamEvent};

/// Per-attempt, time-to-first-token and idle timeouts; put it innermost, next to the provider.
///
/// Every bound is also cut short by [`RequestMeta::deadline`](crate::RequestMeta) when that is
/// sooner. An embedding call ([`Layer::layer_embedding`]) is bounded like one non-streaming
/// attempt. A timeout fails with [`ErrorKind::Timeout`] (retryable), so the retry layer above can
/// try again while the overall deadline allows.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use llmkit_core::resilience::TimeoutLayer;
/// use llmkit_core::{ChatModel, ChatRequest, ErrorKind, Layer, Reply, ScriptedModel};
///
/// let slow = Arc::new(ScriptedModel::builder().reply(Reply::text("late").after(Duration::from_secs(90))).build());
/// let model = TimeoutLayer::new().attempt(Duration::from_secs(30)).layer(slow);
/// let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Timeout);
/// # })
/// ```
#[must_use]
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    attempt: Option<Duration>,
    first_token: Option<Duration>,
    idle: Option<Duration>,
}

impl Default for TimeoutLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl TimeoutLayer {
    /// Defaults: attempt 60 s, first token 30 s, idle between chunks 30 s.
    pub fn new() -> Self {
        TimeoutLayer {
            attempt: Some(Duration::from_secs(60)),
            first_token: Some(Duration::from_secs(30)),
            idle: Some(Duration::from_secs(30)),
        }
    }

    /// Bound on one non-streaming call (default 60 s). Streams use
    /// [`first_token`](Self::first_token) and [`idle`](Self::idle) instead, since a long
    /// generation that keeps producing tokens is healthy.
    pub fn attempt(mut self, limit: Duration) -> Self {
        self.attempt = Some(limit);
        self
    }

    /// No per-attempt bound (only the overall deadline applies).
    pub fn no_attempt_limit(mut self) -> Self {
        self.attempt = None;
        self
    }

    /// Bound from calling `stream()` to the first content event (text or tool-call delta, or
    /// `Done`); default 30 s. `Start` events do not count: providers send them before the model
    /// has produced anything.
    pub fn first_token(mut self, limit: Duration) -> Self {
        self.first_token = Some(limit);
        self
    }

    /// Longest silence allowed between two stream events after the first token; default 30 s.
    pub fn idle(mut self, limit: Duration) -> Self {
        self.idle = Some(limit);
        self
    }

    /// No stream bounds (only the overall deadline applies).
    pub fn no_stream_limits(mut self) -> Self {
        self.first_token = None;
        self.idle = None;
        self
    }
}

impl Layer for TimeoutLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Timeout {
            config: *self,
            inner,
        })
    }

    fn layer_embedding(&self, inner: Arc<dyn EmbeddingModel>) -> Option<Arc<dyn EmbeddingModel>> {
        Some(Arc::new(Timeout {
            config: *self,
            inner,
        }))
    }
}

/// The timeout wrapper around a chat model or an embedding model.
struct Timeout<M: ?Sized> {
    config: TimeoutLayer,
    inner: Arc<M>,
}

impl<M: ?Sized> Timeout<M> {
    /// Runs one non-streaming call within the attempt bound and the overall deadline.
    async fn bounded<T>(
        &self,
        info: &ModelInfo,
        deadline: Option<std::time::Instant>,
        call: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let deadline = deadline.map(Instant::from_std);
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(deadline_error(info, "before the attempt started"));
        }
        let attempt_end = self.config.attempt.map(|d| Instant::now() + d);
        let Some(end) = earliest(attempt_end, deadline) else {
            return call.await;
        };
        match tokio::time::timeout_at(end, call).await {
            Ok(result) => result,
            Err(_) if Some(end) == attempt_end => Err(timeout_error(
                info,
                format!(
                    "attempt timed out after {:?}",
                    self.config.attempt.unwrap_or_default()
                ),
            )),
            Err(_) => Err(timeout_error(
                info,
                "overall deadline exceeded during the attempt".into(),
            )),
        }
    }
}

/// One deadline per logical call: sets [`RequestMeta::deadline`](crate::RequestMeta) to `now +
/// total` (or keeps the caller's, when sooner) and fails the call with [`ErrorKind::Timeout`]
/// when it passes, streams included.
///
/// Put it near the top of the stack (after the trace layer, before guards, cache, budget and
/// routing), so everything below shares one clock: retries never sleep past it and start no
/// attempt that cannot finish, each attempt's [`TimeoutLayer`] is cut short by it, fallback
/// stops walking links, limiters and idempotency stop waiting. Without it, a 5 s attempt timeout
/// with three attempts lets a caller wait 17 s (issue 17 item 3).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use llmkit_core::resilience::{DeadlineLayer, RetryLayer, TimeoutLayer};
/// use llmkit_core::{ChatModel, ChatRequest, ErrorKind, Pipeline, Reply, ScriptedModel};
///
/// let stalls = Arc::new(ScriptedModel::builder().fallback(Reply::text("late").after(Duration::from_secs(600))).build());
/// let model = Pipeline::builder()
///     .layer(DeadlineLayer::new(Duration::from_secs(6)))
///     .layer(RetryLayer::new())
///     .layer(TimeoutLayer::new().attempt(Duration::from_secs(5)))
///     .build(stalls);
/// let start = tokio::time::Instant::now();
/// let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::Timeout);
/// assert!(start.elapsed() <= Duration::from_secs(6));
/// # })
/// ```
#[must_use]
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    total: Duration,
}

impl DeadlineLayer {
    /// Every call must finish within `total` of entering this layer (no default: choose it from
    /// what the caller can wait, e.g. an HTTP handler's own timeout minus a margin).
    pub fn new(total: Duration) -> Self {
        DeadlineLayer { total }
    }
}

impl Layer for DeadlineLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Deadline {
            total: self.total,
            // The deadline alone, enforced by the same code that cuts attempts and streams.
            bound: Timeout {
                config: TimeoutLayer::new().no_attempt_limit().no_stream_limits(),
                inner,
            },
        })
    }

    fn layer_embedding(&self, inner: Arc<dyn EmbeddingModel>) -> Option<Arc<dyn EmbeddingModel>> {
        Some(Arc::new(Deadline {
            total: self.total,
            bound: Timeout {
                config: TimeoutLayer::new().no_attempt_limit().no_stream_limits(),
                inner,
            },
        }))
    }
}

/// The deadline wrapper around a chat model or an embedding model.
struct Deadline<M: ?Sized> {
    total: Duration,
    bound: Timeout<M>,
}

impl<M: ?Sized> Deadline<M> {
    fn stamp(&self, meta: &mut RequestMeta) {
        let ours = super::now() + self.total;
        meta.deadline = Some(meta.deadline.map_or(ours, |d| d.min(ours)));
    }
}

#[async_trait]
impl EmbeddingModel for Deadline<dyn EmbeddingModel> {
    fn info(&self) -> &ModelInfo {
        self.bound.inner.info()
    }

    fn dimensions(&self) -> Option<usize> {
        self.bound.inner.dimensions()
    }

    async fn embed(&self, mut request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        self.stamp(&mut request.meta);
        self.bound.embed(request).await
    }
}

#[async_trait]
impl EmbeddingModel for Timeout<dyn EmbeddingModel> {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn dimensions(&self) -> Option<usize> {
        self.inner.dimensions()
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let deadline = request.meta.deadline;
        self.bounded(self.inner.info(), deadline, self.inner.embed(request))
            .await
    }
}

#[async_trait]
impl ChatModel for Deadline<dyn ChatModel> {
    fn info(&self) -> &ModelInfo {
        self.bound.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.bound.inner.candidates()
    }

    async fn chat(&self, mut request: ChatRequest) -> Result<ChatResponse> {
        self.stamp(&mut request.meta);
        self.bound.chat(request).await
    }

    async fn stream(&self, mut request: ChatRequest) -> Result<ChatStream> {
        self.stamp(&mut request.meta);
        self.bound.stream(request).await
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn timeout_error(info: &ModelInfo, what: String) -> Error {
    tracing::warn!(
        gen_ai.provider.name = %info.provider,
        gen_ai.request.model = %info.model,
        "llmkit timeout: {what}"
    );
    Error::new(ErrorKind::Timeout, what).or_context(&info.provider, &info.model)
}

#[async_trait]
impl ChatModel for Timeout<dyn ChatModel> {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let deadline = request.meta.deadline;
        self.bounded(self.inner.info(), deadline, self.inner.chat(request))
            .await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let info = self.inner.info().clone();
        let deadline = request.meta.deadline.map(Instant::from_std);
        if deadline.is_some_and(|d| d <= Instant::now()) {
            return Err(deadline_error(&info, "before the stream started"));
        }
        let first_at = self.config.first_token.map(|d| Instant::now() + d);
        let setup_end = earliest(first_at, deadline);
        let inner = match setup_end {
            None => self.inner.stream(request).await?,
            Some(end) => match tokio::time::timeout_at(end, self.inner.stream(request)).await {
                Ok(stream) => stream?,
                Err(_) => {
                    return Err(timeout_error(
                        &info,
                        bound_message(Bound::of(end, first_at), &self.config),
                    ));
                }
            },
        };
        Ok(Box::pin(TimedStream {
            inner,
            sleep: setup_end.map(|end| Box::pin(tokio::time::sleep_until(end))),
            bound: setup_end.map_or(Bound::Deadline, |end| Bound::of(end, first_at)),
            deadline,
            config: self.config,
            got_token: false,
            finished: false,
            info,
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    FirstToken,
    Idle,
    Deadline,
}

impl Bound {
    fn of(end: Instant, stage_end: Option<Instant>) -> Bound {
        if Some(end) == stage_end {
            Bound::FirstToken
        } else {
            Bound::Deadline
        }
    }
}

fn bound_message(bound: Bound, config: &TimeoutLayer) -> String {
    match bound {
        Bound::FirstToken => format!(
            "no first token within {:?}",
            config.first_token.unwrap_or_default()
        ),
        Bound::Idle => format!(
            "stream idle for more than {:?}",
            config.idle.unwrap_or_default()
        ),
        Bound::Deadline => "overall deadline exceeded during the stream".into(),
    }
}

/// A stream that yields a [`ErrorKind::Timeout`] error and ends when its current bound passes.
struct TimedStream {
    inner: ChatStream,
    sleep: Option<Pin<Box<Sleep>>>,
    bound: Bound,
    deadline: Option<Instant>,
    config: TimeoutLayer,
    got_token: bool,
    finished: bool,
    info: ModelInfo,
}

impl TimedStream {
    /// After each content event the bound becomes "idle" (or the deadline when sooner).
    fn rearm(&mut self) {
        let idle_end = self.config.idle.map(|d| Instant::now() + d);
        let end = earliest(idle_end, self.deadline);
        self.bound = if end == idle_end && end.is_some() {
            Bound::Idle
        } else {
            Bound::Deadline
        };
        match (end, self.sleep.as_mut()) {
            (Some(end), Some(sleep)) => sleep.as_mut().reset(end),
            (Some(end), None) => self.sleep = Some(Box::pin(tokio::time::sleep_until(end))),
            (None, _) => self.sleep = None,
        }
    }
}

impl Stream for TimedStream {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(event))) => {
                match &event {
                    StreamEvent::Start { .. } if !this.got_token => {}
                    StreamEvent::Done { .. } => this.sleep = None,
                    _ => {
                        this.got_token = true;
                        this.rearm();
                    }
                }
                return Poll::Ready(Some(Ok(event)));
            }
            Poll::Ready(other) => {
                if other.is_none() {
                    this.finished = true;
                }
                return Poll::Ready(other);
            }
            Poll::Pending => {}
        }
        if let Some(sleep) = this.sleep.as_mut()
            && sleep.as_mut().poll(cx).is_ready()
        {
            this.finished = true;
            let msg = bound_message(this.bound, &this.config);
            return Poll::Ready(Some(Err(timeout_error(&this.info, msg))));
        }
        Poll::Pending
    }
}
