//! [`RetryLayer`]: the one place llmkit retries.
//!
//! Providers never retry by themselves, so retries cannot multiply across layers (3 × 3 × 3 = 27
//! requests for one call). The files follow tower's roles: [`policy`] decides *whether*,
//! [`backoff`] *how long*, [`budget`] *how often overall*.

pub mod backoff;
pub mod budget;
pub mod policy;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::Instrument as _;

pub use backoff::{Backoff, DecorrelatedJitter, Jitter, Schedule};
pub use budget::RetryBudget;
pub use policy::RetryPolicy;

use super::{deadline_error, first_content, remaining};
use crate::error::{Error, Result};
use crate::layer::Layer;
use crate::model::{ChatModel, ChatStream, EmbeddingModel, ModelInfo};
use crate::request::{ChatRequest, RequestMeta};
use crate::response::{ChatResponse, EmbeddingRequest, EmbeddingResponse, Trail};

/// Retries failed attempts with backoff, within the deadline and a [`RetryBudget`].
///
/// - Retries only what [`RetryPolicy`] allows (default: [`Error::is_retryable`]); `CircuitOpen`,
///   `QuotaExhausted`, `InvalidRequest`, ... fail at once.
/// - Waits `max(backoff, min(retry_after, cap))`; never sleeps past
///   [`RequestMeta::deadline`](crate::RequestMeta), and starts no attempt that cannot finish:
///   when the wait would leave less than [`min_attempt_time`](RetryLayer::min_attempt_time)
///   before the deadline, it gives up (the wait counts against the deadline).
/// - Streams: retries the setup and any failure before the first content event; once a token
///   may have reached the caller it never retries.
/// - Embeddings ([`Layer::layer_embedding`]): the same policy, backoff, budget and deadline
///   around [`EmbeddingModel::embed`], with the same trail notes.
/// - The final error is the last attempt's error with [`Error::attempts`] holding the error of
///   every request actually sent, oldest first (the last one included when it was sent; an
///   attempt refused locally, such as by an open circuit, sent nothing and is not counted).
/// - Trail: `retry/attempt_failed` per failed request that was sent and `retry/answered` when a
///   retry succeeded. Tracing: a `llmkit.attempt` span per attempt (`attempt = n`) and a warn event
///   per retry.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::{sync::Arc, time::Duration};
/// use llmkit_core::resilience::{Backoff, RetryLayer};
/// use llmkit_core::{ChatModel, ChatRequest, Layer, Reply, ScriptedModel};
///
/// let provider = Arc::new(ScriptedModel::builder().reply(Reply::overloaded()).reply("ok").build());
/// let model = RetryLayer::new().backoff(Backoff::exponential().base(Duration::from_millis(100))).layer(provider.clone());
/// assert_eq!(model.chat(ChatRequest::user("hi")).await?.text(), "ok");
/// assert_eq!(provider.call_count(), 2);
/// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
/// ```
#[must_use]
#[derive(Debug, Clone)]
pub struct RetryLayer {
    policy: RetryPolicy,
    backoff: Backoff,
    budget: Option<RetryBudget>,
    min_attempt: Duration,
}

impl Default for RetryLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl RetryLayer {
    /// Defaults: [`RetryPolicy::new`] (3 attempts, Retry-After capped at 30 s),
    /// [`Backoff::exponential`] (500 ms base, 20 s max, decorrelated jitter), and a fresh
    /// [`RetryBudget::new`] (10 s window, 10/s minimum, 20 %) shared by every model this layer
    /// wraps, and a minimum attempt time of 1 s.
    pub fn new() -> Self {
        RetryLayer {
            policy: RetryPolicy::new(),
            backoff: Backoff::exponential(),
            budget: Some(RetryBudget::new()),
            min_attempt: Duration::from_secs(1),
        }
    }

    /// Least time a retry needs before the overall deadline to be worth starting (default 1 s):
    /// an attempt started with less would only be cut by the deadline, costing a request and
    /// returning nothing. The first attempt always starts while any time is left.
    pub fn min_attempt_time(mut self, min: Duration) -> Self {
        self.min_attempt = min;
        self
    }

    /// Replaces the whole policy.
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Attempts in total, the first included (default 3).
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.policy = self.policy.max_attempts(n);
        self
    }

    /// Longest Retry-After honoured (default 30 s).
    pub fn max_retry_after(mut self, cap: Duration) -> Self {
        self.policy = self.policy.max_retry_after(cap);
        self
    }

    /// The wait schedule (default [`Backoff::exponential`]).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Uses this (possibly shared) budget (default: a fresh [`RetryBudget::new`]).
    pub fn budget(mut self, budget: RetryBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// No retry budget: only `max_attempts` and the deadline limit retries. Not recommended in
    /// production.
    pub fn no_budget(mut self) -> Self {
        self.budget = None;
        self
    }
}

impl Layer for RetryLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Retry {
            config: self.clone(),
            inner,
        })
    }

    fn layer_embedding(&self, inner: Arc<dyn EmbeddingModel>) -> Option<Arc<dyn EmbeddingModel>> {
        Some(Arc::new(Retry {
            config: self.clone(),
            inner,
        }))
    }
}

/// The retry wrapper around a chat model or an embedding model.
struct Retry<M: ?Sized> {
    config: RetryLayer,
    inner: Arc<M>,
}

/// Notes each failed request that was sent and, when a retry answered, which attempt did.
fn note_attempts(trail: &mut Trail, errors: &[Error]) {
    for (i, e) in errors.iter().enumerate() {
        trail.push("retry", "attempt_failed", format!("attempt {}: {e}", i + 1));
    }
    if !errors.is_empty() {
        trail.push("retry", "answered", format!("attempt {}", errors.len() + 1));
    }
}

/// What to do after a failed attempt.
enum Next {
    Sleep(Duration),
    Stop(&'static str),
}

impl RetryLayer {
    /// Runs any fallible async operation under this layer's policy, backoff and budget, as the
    /// layer runs model calls: for work that is not a [`ChatModel`] call but must not grow a
    /// retry loop of its own (llmkit-eval's runner retries its targets with it). `info` names
    /// what is called in logs and deadline errors; `meta`'s deadline bounds the retries. The
    /// error, when every attempt failed, is the last one with [`Error::attempts`] filled in.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use llmkit_core::resilience::RetryLayer;
    /// use llmkit_core::{Error, ErrorKind, ModelInfo, RequestMeta};
    ///
    /// let calls = AtomicU32::new(0);
    /// let value = RetryLayer::new()
    ///     .call(&ModelInfo::new("job", "nightly"), &RequestMeta::default(), || async {
    ///         match calls.fetch_add(1, Ordering::SeqCst) {
    ///             0 => Err(Error::new(ErrorKind::Overloaded, "busy")),
    ///             _ => Ok(42),
    ///         }
    ///     })
    ///     .await?;
    /// assert_eq!((value, calls.load(Ordering::SeqCst)), (42, 2));
    /// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
    /// ```
    pub async fn call<T, F, Fut>(&self, info: &ModelInfo, meta: &RequestMeta, call: F) -> Result<T>
    where
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = Result<T>> + Send,
        T: Send,
    {
        self.run(info, meta, call).await.map(|(value, _)| value)
    }

    fn decide(
        &self,
        error: &Error,
        attempt: u32,
        schedule: &mut Schedule,
        meta: &RequestMeta,
    ) -> Next {
        if !self.policy.should_retry(error, attempt) {
            return Next::Stop(if error.is_retryable() {
                "attempts exhausted"
            } else {
                "not retryable"
            });
        }
        let wait = self
            .policy
            .wait(error, schedule.next().unwrap_or(self.backoff.max_delay()));
        if remaining(meta).is_some_and(|left| left <= wait || left - wait < self.min_attempt) {
            return Next::Stop("deadline would pass before the next attempt could finish");
        }
        if let Some(budget) = &self.budget
            && !budget.try_withdraw()
        {
            return Next::Stop("retry budget exhausted");
        }
        Next::Sleep(wait)
    }

    /// The final error: the last attempt's, holding the errors of every request actually sent.
    fn give_up(info: &ModelInfo, sent: Vec<Error>, last: Error, why: &str) -> Error {
        tracing::warn!(
            gen_ai.provider.name = %info.provider,
            gen_ai.request.model = %info.model,
            attempts = sent.len(),
            error.type = last.kind().as_str(),
            "llmkit retry gave up: {why}"
        );
        last.with_attempts(sent)
    }

    /// Runs attempts of `call` until one succeeds or the policy stops. Returns the value and the
    /// errors of the failed requests that were actually sent (an attempt refused locally, such
    /// as by an open circuit, sent nothing and is not counted).
    async fn run<T, F, Fut>(
        &self,
        info: &ModelInfo,
        meta: &RequestMeta,
        mut call: F,
    ) -> Result<(T, Vec<Error>)>
    where
        F: FnMut() -> Fut + Send,
        Fut: std::future::Future<Output = Result<T>> + Send,
        T: Send,
    {
        let mut schedule = self.backoff.schedule();
        let mut sent: Vec<Error> = Vec::new();
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
        for attempt in 1u32.. {
            if remaining(meta).is_some_and(|left| left.is_zero()) {
                let e = deadline_error(info, &format!("before attempt {attempt}"));
                return Err(Self::give_up(info, sent, e, "deadline"));
            }
            let span = tracing::info_span!("llmkit.attempt", attempt);
            match call().instrument(span).await {
                Ok(value) => return Ok((value, sent)),
                Err(e) => {
                    let next = self.decide(&e, attempt, &mut schedule, meta);
                    sent.extend(e.sent_errors());
                    match next {
                        Next::Stop(why) => return Err(Self::give_up(info, sent, e, why)),
                        Next::Sleep(wait) => {
                            tracing::warn!(
                                attempt,
                                gen_ai.provider.name = %info.provider,
                                gen_ai.request.model = %info.model,
                                error.type = e.kind().as_str(),
                                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                                "llmkit retrying"
                            );
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
            }
        }
        let e = deadline_error(info, "after the attempt counter overflowed");
        Err(Self::give_up(info, sent, e, "attempt counter overflow"))
    }
}

#[async_trait]
impl ChatModel for Retry<dyn ChatModel> {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let inner = &self.inner;
        let (mut resp, errors) = self
            .config
            .run(inner.info(), &request.meta, || inner.chat(request.clone()))
            .await?;
        note_attempts(&mut resp.trail, &errors);
        Ok(resp)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let inner = &self.inner;
        let (stream, _) = self
            .config
            .run(inner.info(), &request.meta, || async {
                first_content(inner.stream(request.clone()).await?).await
            })
            .await?;
        Ok(stream)
    }
}

#[async_trait]
impl EmbeddingModel for Retry<dyn EmbeddingModel> {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn dimensions(&self) -> Option<usize> {
        self.inner.dimensions()
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let inner = &self.inner;
        let (mut resp, errors) = self
            .config
            .run(inner.info(), &request.meta, || inner.embed(request.clone()))
            .await?;
        note_attempts(&mut resp.trail, &errors);
        Ok(resp)
    }
}
