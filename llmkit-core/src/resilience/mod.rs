//! Failure handling: treat the model like any unreliable network dependency.
//!
//! Every mechanism is a [`Layer`](crate::Layer) with a `#[must_use]` builder whose method docs
//! state the defaults:
//!
//! - [`DeadlineLayer`]: one overall deadline per logical call ([`RequestMeta::deadline`](crate::RequestMeta)),
//!   set near the top of the stack.
//! - [`TimeoutLayer`]: per-attempt timeout (innermost), time-to-first-token and idle timeouts for
//!   streams, each cut short by the overall deadline.
//! - [`RetryLayer`]: the **only** retry owner: exponential [`Backoff`] with decorrelated jitter,
//!   Retry-After honoured (capped), a [`RetryBudget`] against retry storms, streams retried only
//!   before their first token.
//! - [`CircuitBreakerLayer`]: one [`CircuitBreaker`] per provider+model, readable for health checks
//!   ([`BreakerSnapshot`]); an open circuit fails fast with [`ErrorKind::CircuitOpen`](crate::ErrorKind).
//! - [`FallbackLayer`] / [`Fallback`]: an ordered chain of complete per-target stacks plus a cached
//!   answer and a static safe default; [`FallThrough`] decides which errors move on.
//! - [`LimitLayer`]: max concurrency and requests/tokens-per-minute token buckets per
//!   provider+model, waiting or failing fast.
//! - [`IdempotencyLayer`]: single-flight for concurrent duplicates and a TTL'd memory of completed
//!   results behind the [`IdempotencyStore`] trait.
//! - [`Degrade`] and [`Outcome`]: a typed degraded answer the application decided in advance,
//!   returned instead of an error.
//!
//! Recommended order, outermost first (see `docs/resilience.md` for the reasoning):
//! `Deadline → Idempotency → Fallback → [per target: Retry → Breaker → Limit → Timeout →
//! provider]`. [`DeadlineLayer`] sets one deadline per logical call that every layer below
//! respects.
//! [`target_pipeline`] builds the per-target part in that order.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
//! use std::{sync::Arc, time::Duration};
//! use llmkit_core::resilience::{CircuitBreakerLayer, RetryLayer, TimeoutLayer, target_pipeline};
//! use llmkit_core::{ChatModel, ChatRequest, Reply, ScriptedModel};
//!
//! let provider = Arc::new(
//!     ScriptedModel::builder()
//!         .reply(Reply::rate_limited(Duration::from_secs(2)))
//!         .reply(Reply::server_error(503))
//!         .reply("refunds take 5 days")
//!         .build(),
//! );
//! let breaker = CircuitBreakerLayer::new();
//! let model = target_pipeline(RetryLayer::new().max_attempts(4), breaker.clone(), None, TimeoutLayer::new())
//!     .build(provider.clone());
//! let resp = model.chat(ChatRequest::user("how long do refunds take?")).await?;
//! assert_eq!(resp.text(), "refunds take 5 days");
//! assert_eq!(provider.call_count(), 3);
//! assert!(resp.trail.has("retry", "attempt_failed"));
//! assert_eq!(breaker.snapshots()[0].state.as_str(), "closed");
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

mod breaker;
// Rendered here; its snippets use facade paths and are compiled as doctests by the facade crate.
#[cfg_attr(not(doctest), doc = include_str!("../../../docs/resilience.md"))]
pub mod guide {}
mod degrade;
mod fallback;
mod idempotency;
mod limit;
pub mod retry;
mod timeout;
mod window;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};

pub use breaker::{BreakerSnapshot, CircuitBreaker, CircuitBreakerLayer, CircuitState, OpenedBy};
pub use degrade::{Degrade, Degraded, Outcome};
pub use fallback::{CachedAnswer, FallThrough, Fallback, FallbackLayer};
pub use idempotency::{Claim, IdempotencyLayer, IdempotencyStore, MemoryIdempotencyStore};
pub use limit::{
    Admission, LimitLayer, LimitMode, LimitSnapshot, MemoryRateLimitStore, RateBucket,
    RateLimitStore,
};
pub use retry::{Backoff, Jitter, RetryBudget, RetryLayer, RetryPolicy};
pub use timeout::{DeadlineLayer, TimeoutLayer};

use crate::error::{Error, ErrorKind, Result};
use crate::layer::Pipeline;
use crate::model::{ChatStream, ModelInfo};
use crate::request::RequestMeta;
use crate::response::StreamEvent;

/// The per-target part of the recommended order: `Retry → Breaker → Limit → Timeout → provider`.
///
/// Retry sits outside the breaker so an open circuit fails an attempt fast and (being
/// non-retryable) hands over to the fallback; the limit sits inside the breaker so waiting for a
/// slot is not mistaken for provider slowness by anything but the deadline; the timeout is
/// innermost so it bounds exactly one attempt. Request ids are left to the outer pipeline.
pub fn target_pipeline(
    retry: RetryLayer,
    breaker: CircuitBreakerLayer,
    limit: Option<LimitLayer>,
    timeout: TimeoutLayer,
) -> Pipeline {
    Pipeline::builder()
        .assign_request_ids(false)
        .layer(retry)
        .layer(breaker)
        .option_layer(limit)
        .layer(timeout)
}

/// "Now" on tokio's clock, as a std instant so it compares with [`RequestMeta::deadline`]. Using
/// tokio's clock keeps every timing decision consistent with `tokio::time::pause` in tests.
pub(crate) fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

/// Time left before the request's overall deadline; `None` when it has none.
pub(crate) fn remaining(meta: &RequestMeta) -> Option<Duration> {
    meta.deadline.map(|d| d.saturating_duration_since(now()))
}

/// The error every layer returns when the overall deadline ran out before it sent anything
/// (so it is not counted as an attempt).
pub(crate) fn deadline_error(info: &ModelInfo, what: &str) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("overall deadline exceeded {what}"),
    )
    .unsent()
    .or_context(&info.provider, &info.model)
}

/// The smaller of an optional limit and the time left before the deadline.
pub(crate) fn bounded(limit: Option<Duration>, meta: &RequestMeta) -> Option<Duration> {
    match (limit, remaining(meta)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Runs `work` from synchronous code (a drop, a stream's end): to completion at once when it
/// does not wait (in-memory stores), else on a spawned task (shared stores); dropped when there
/// is no runtime to spawn on.
pub(crate) fn run_detached(work: impl std::future::Future<Output = ()> + Send + 'static) {
    use futures::FutureExt;
    let mut work = Box::pin(work);
    if work.as_mut().now_or_never().is_none()
        && let Ok(rt) = tokio::runtime::Handle::try_current()
    {
        rt.spawn(work);
    }
}

// Every critical section in this module leaves the state consistent at each step, so a panic
// elsewhere does not make a lock unusable: the crate's one poison policy applies.
pub(crate) use crate::sync::lock;

/// Per provider+model state (breakers, limiters), created on first use.
///
/// Keyed provider → model so a lookup borrows the two names: a `(String, String)` key cost
/// two allocations and two frees per lookup, on every call through a breaker or a limiter
/// (issue 23).
pub(crate) struct Registry<T> {
    map: Mutex<HashMap<String, HashMap<String, Arc<T>>>>,
}

impl<T> Registry<T> {
    pub(crate) fn new() -> Self {
        Registry {
            map: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn get_or_insert(
        &self,
        provider: &str,
        model: &str,
        make: impl FnOnce() -> T,
    ) -> Arc<T> {
        let mut map = lock(&self.map);
        if let Some(v) = map.get(provider).and_then(|models| models.get(model)) {
            return v.clone();
        }
        let v = Arc::new(make());
        map.entry(provider.to_owned())
            .or_default()
            .insert(model.to_owned(), v.clone());
        v
    }

    pub(crate) fn get(&self, provider: &str, model: &str) -> Option<Arc<T>> {
        lock(&self.map)
            .get(provider)
            .and_then(|models| models.get(model))
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<((String, String), Arc<T>)> {
        let mut v: Vec<_> = lock(&self.map)
            .iter()
            .flat_map(|(provider, models)| {
                models
                    .iter()
                    .map(|(model, v)| ((provider.clone(), model.clone()), v.clone()))
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}

/// The model a request will reach: its explicit `model` or the one the target was built with.
pub(crate) fn target_model<'a>(info: &'a ModelInfo, request_model: Option<&'a str>) -> &'a str {
    request_model.unwrap_or(&info.model)
}

/// Waits for a stream's first content event, buffering `Start` events, so a failure before any
/// token reached the caller can still be retried or fall through. Returns the stream with the
/// buffered events put back in front, or the error that came first.
pub(crate) async fn first_content(mut stream: ChatStream) -> Result<ChatStream> {
    let mut head = Vec::new();
    loop {
        match stream.next().await {
            Some(Ok(ev @ StreamEvent::Start { .. })) => head.push(Ok(ev)),
            Some(Ok(ev)) => {
                head.push(Ok(ev));
                break;
            }
            Some(Err(e)) => return Err(e),
            None => break,
        }
    }
    Ok(Box::pin(futures::stream::iter(head).chain(stream)))
}

/// How a stream ended, reported once to an [`observe`] callback.
// Only the budget reads the answering model; without it that field is never read.
#[cfg_attr(not(feature = "budget"), allow(dead_code))]
pub(crate) enum StreamEnd {
    /// `Done` arrived; the last usage event seen and the model its `Start` event named.
    Completed(crate::response::Usage, Option<String>),
    /// The stream yielded an error.
    Failed(Error),
    /// It ended without `Done` or was dropped by the caller before the end.
    Abandoned(crate::response::Usage),
}

type OnEnd = Box<dyn FnOnce(StreamEnd) + Send>;

/// Wraps a stream so `on_end` runs exactly once: on `Done`, on the first error, at the end of the
/// stream, or when the caller drops it. Breakers and limiters settle through it.
pub(crate) fn observe(
    stream: ChatStream,
    on_end: impl FnOnce(StreamEnd) + Send + 'static,
) -> ChatStream {
    Box::pin(Observed {
        inner: stream,
        usage: crate::response::Usage::default(),
        model: None,
        on_end: Some(Box::new(on_end)),
    })
}

struct Observed {
    inner: ChatStream,
    usage: crate::response::Usage,
    model: Option<String>,
    on_end: Option<OnEnd>,
}

impl Observed {
    fn finish(&mut self, end: StreamEnd) {
        if let Some(f) = self.on_end.take() {
            f(end);
        }
    }
}

impl Stream for Observed {
    type Item = Result<StreamEvent>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let item = match this.inner.as_mut().poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        match &item {
            Some(Ok(StreamEvent::Start { model, .. })) => this.model = Some(model.clone()),
            Some(Ok(StreamEvent::Usage { usage })) => this.usage = *usage,
            Some(Ok(StreamEvent::Done { .. })) => {
                let (usage, model) = (this.usage, this.model.take());
                this.finish(StreamEnd::Completed(usage, model));
            }
            Some(Err(e)) => this.finish(StreamEnd::Failed(e.clone())),
            None => {
                let usage = this.usage;
                this.finish(StreamEnd::Abandoned(usage));
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(item)
    }
}

impl Drop for Observed {
    fn drop(&mut self) {
        let usage = self.usage;
        self.finish(StreamEnd::Abandoned(usage));
    }
}
