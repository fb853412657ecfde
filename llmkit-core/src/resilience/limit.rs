//! [`LimitLayer`]: client-side concurrency, requests-per-minute and tokens-per-minute limits per
//! provider+model.
//!
//! Staying under a provider's quota on our side is cheaper than learning it from 429s: a
//! throttled request still costs a round trip, and a burst of them trips breakers. Token buckets
//! refill continuously (`limit / 60 s`) up to one minute's worth. Tokens are estimated before the
//! call ([`TokenCounter::count_chat`](crate::tokens::TokenCounter::count_chat) of the prompt plus `max_tokens`) and settled with the real usage
//! after it, so the bucket tracks what the provider will count.
//!
//! The buckets live in a [`RateLimitStore`]: [`MemoryRateLimitStore`] (the default) for one
//! process, or a shared one (`llmkit_redis::RedisRateLimitStore`, GCRA in a Lua script) so N
//! replicas stay under one provider quota together. Concurrency slots stay per process: a
//! semaphore permit cannot outlive its holder, and a shared one would need leases for nothing a
//! requests-per-minute limit does not already bound.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{Registry, StreamEnd, bounded, lock, observe, run_detached, target_model};
use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::model::{ChatModel, ChatStream, ModelInfo};
use crate::request::ChatRequest;
use crate::response::ChatResponse;
use crate::tokens::TokenCounter;

/// What to do when a limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LimitMode {
    /// Wait for capacity, but never past the request's deadline or `max_wait` (default).
    #[default]
    Wait,
    /// Fail at once with [`ErrorKind::LimitExceeded`] (with a retry-after hint), so a fallback
    /// can use another target.
    FailFast,
}

/// One provider+model's limiter state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitSnapshot {
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Calls holding a concurrency slot.
    pub in_flight: usize,
    /// Request tokens available now (negative: reserved by waiting callers).
    pub requests_available: Option<f64>,
    /// Model tokens available now (negative: reserved by waiting callers or over-spent).
    pub tokens_available: Option<f64>,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    concurrency: Option<usize>,
    rpm: Option<(u64, Duration)>,
    tpm: Option<(u64, Duration)>,
    mode: LimitMode,
    max_wait: Option<Duration>,
}

/// Limits calls per provider+model; clones share the limiters.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use llmkit_core::resilience::LimitLayer;
/// use llmkit_core::{ChatModel, ChatRequest, ErrorKind, Layer, ScriptedModel};
///
/// let provider = Arc::new(ScriptedModel::always("ok"));
/// let limits = LimitLayer::new().requests_per_minute(2).fail_fast();
/// let model = limits.layer(provider);
/// model.chat(ChatRequest::user("a")).await?;
/// model.chat(ChatRequest::user("b")).await?;
/// let err = model.chat(ChatRequest::user("c")).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::LimitExceeded);
/// assert!(err.retry_after().is_some());
/// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
/// ```
#[must_use]
#[derive(Clone)]
pub struct LimitLayer {
    config: Config,
    registry: Arc<Registry<Limiter>>,
    store: Arc<dyn RateLimitStore>,
}

impl fmt::Debug for LimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitLayer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for LimitLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl LimitLayer {
    /// Defaults: no limit of any kind (set the ones you need), [`LimitMode::Wait`], no
    /// `max_wait` (only the request's deadline bounds waiting), buckets in a
    /// [`MemoryRateLimitStore`] shared by this layer's clones.
    pub fn new() -> Self {
        LimitLayer {
            config: Config {
                concurrency: None,
                rpm: None,
                tpm: None,
                mode: LimitMode::Wait,
                max_wait: None,
            },
            registry: Arc::new(Registry::new()),
            store: Arc::new(MemoryRateLimitStore::default()),
        }
    }

    /// Keeps the request and token buckets in `store` (default: in process). A shared store
    /// makes replicas count against one limit; when it cannot answer, calls fail with its error
    /// (a limit that cannot be checked is not silently lifted).
    pub fn store(mut self, store: Arc<dyn RateLimitStore>) -> Self {
        self.store = store;
        self
    }

    /// Calls in flight at once per provider+model (default: unlimited; at least 1).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = Some(n.max(1));
        self
    }

    /// Requests per minute per provider+model (default: unlimited; at least 1).
    pub fn requests_per_minute(self, n: u32) -> Self {
        self.requests_per(u64::from(n), Duration::from_secs(60))
    }

    /// `n` requests per `period` per provider+model (at least 1 per at least 1 ms): the bucket
    /// holds `n` and refills continuously at `n / period`.
    pub fn requests_per(mut self, n: u64, period: Duration) -> Self {
        self.config.rpm = Some((n.max(1), period.max(Duration::from_millis(1))));
        self
    }

    /// Tokens (input + output) per minute per provider+model (default: unlimited; at least 1).
    pub fn tokens_per_minute(self, n: u64) -> Self {
        self.tokens_per(n, Duration::from_secs(60))
    }

    /// `n` tokens per `period` per provider+model, like [`requests_per`](Self::requests_per).
    pub fn tokens_per(mut self, n: u64, period: Duration) -> Self {
        self.config.tpm = Some((n.max(1), period.max(Duration::from_millis(1))));
        self
    }

    /// Wait or fail fast (default [`LimitMode::Wait`]).
    pub fn mode(mut self, mode: LimitMode) -> Self {
        self.config.mode = mode;
        self
    }

    /// Shorthand for `mode(LimitMode::FailFast)`.
    pub fn fail_fast(self) -> Self {
        self.mode(LimitMode::FailFast)
    }

    /// Longest wait for capacity in [`LimitMode::Wait`] (default: none, the deadline decides).
    pub fn max_wait(mut self, limit: Duration) -> Self {
        self.config.max_wait = Some(limit);
        self
    }

    fn limiter(&self, provider: &str, model: &str) -> Arc<Limiter> {
        let config = self.config;
        self.registry
            .get_or_insert(provider, model, || Limiter::new(config, provider, model))
    }

    /// The state of one provider+model's limiter, if a call created it. Bucket levels are
    /// `None` when the store cannot read them without a round trip (a shared store).
    pub fn snapshot(&self, provider: &str, model: &str) -> Option<LimitSnapshot> {
        self.registry
            .get(provider, model)
            .map(|l| l.snapshot(self.store.as_ref(), provider, model))
    }

    /// Every limiter's state, sorted by provider and model.
    pub fn snapshots(&self) -> Vec<LimitSnapshot> {
        self.registry
            .all()
            .into_iter()
            .map(|((p, m), l)| l.snapshot(self.store.as_ref(), &p, &m))
            .collect()
    }
}

impl Layer for LimitLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Limit {
            layer: self.clone(),
            inner,
        })
    }
}

/// One bucket a call takes from: at most `limit` units per `period`, refilled continuously.
#[derive(Debug, Clone, PartialEq)]
pub struct RateBucket {
    /// Identifies the bucket (the layer uses `<provider>/<model>/requests` and `/tokens`).
    pub key: String,
    /// Units this call takes (1 for a request, the token estimate for tokens). A negative cost
    /// gives units back.
    pub cost: f64,
    /// Bucket capacity: units per period.
    pub limit: u64,
    /// The period `limit` refills over.
    pub period: Duration,
}

/// The answer of [`RateLimitStore::acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Admission {
    /// Taken; go now.
    Now,
    /// Taken (reserved ahead, so callers are served in arrival order); go after `wait`.
    After {
        /// How long the caller waits before sending.
        wait: Duration,
        /// Index of the bucket that imposed the wait.
        bucket: usize,
    },
    /// Nothing taken: the wait would exceed `max_wait`.
    Refused {
        /// When the buckets could admit the call.
        retry_after: Duration,
        /// Index of the bucket that refused.
        bucket: usize,
    },
}

/// Where rate-limit buckets live. The default is [`MemoryRateLimitStore`] (one process); a
/// shared store makes replicas count against one limit.
///
/// Semantics every implementation keeps: `acquire` is **atomic** over all `buckets`: compute the
/// wait until each bucket holds its `cost`; if the longest wait exceeds `max_wait` (`None`:
/// unbounded) take nothing and refuse, else take every cost now (a bucket may go below zero:
/// the taker waits out the debt). `adjust` takes `cost` more (negative: gives back, never above
/// capacity). Required: `acquire` and `adjust`; `level` has a default.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Takes every bucket's cost, or refuses without taking anything.
    async fn acquire(
        &self,
        buckets: &[RateBucket],
        max_wait: Option<Duration>,
    ) -> Result<Admission>;
    /// Takes `bucket.cost` more from the bucket (negative: gives it back).
    async fn adjust(&self, bucket: &RateBucket) -> Result<()>;
    /// Units available now in `key`, when readable without a round trip (default: `None`).
    fn level(&self, key: &str) -> Option<f64> {
        let _ = key;
        None
    }
}

/// A continuously refilling token bucket. The level may go negative: a waiting caller reserves
/// its tokens up front, so callers are served in arrival order and nobody starves.
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    level: f64,
    per_sec: f64,
    last: Instant,
}

impl Bucket {
    #[allow(clippy::cast_precision_loss)]
    fn new(n: u64, period: Duration) -> Self {
        Bucket {
            capacity: n as f64,
            level: n as f64,
            per_sec: n as f64 / period.as_secs_f64(),
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + elapsed * self.per_sec).min(self.capacity);
        self.last = now;
    }

    /// How long until `n` tokens are available (zero when they are now).
    fn wait_for(&self, n: f64) -> Duration {
        let missing = n - self.level;
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(missing / self.per_sec).unwrap_or(Duration::MAX)
        }
    }

    fn adjust(&mut self, delta: f64) {
        self.level = (self.level + delta).min(self.capacity);
    }
}

/// In-process [`RateLimitStore`]: token buckets on tokio's clock (paused-clock tests work).
#[derive(Debug, Default)]
pub struct MemoryRateLimitStore {
    buckets: Mutex<std::collections::HashMap<String, Bucket>>,
}

#[async_trait]
impl RateLimitStore for MemoryRateLimitStore {
    async fn acquire(
        &self,
        buckets: &[RateBucket],
        max_wait: Option<Duration>,
    ) -> Result<Admission> {
        let now = Instant::now();
        let mut map = lock(&self.buckets);
        let mut wait = (Duration::ZERO, 0);
        for (i, b) in buckets.iter().enumerate() {
            // Look up before inserting: `entry` takes an owned key, and copying it on every
            // call only pays off on a bucket's first call (issue 23).
            if !map.contains_key(&b.key) {
                map.insert(b.key.clone(), Bucket::new(b.limit, b.period));
            }
            // Just inserted; were it missing, refuse rather than skip a limit.
            let Some(bucket) = map.get_mut(&b.key) else {
                return Ok(Admission::Refused {
                    retry_after: Duration::ZERO,
                    bucket: i,
                });
            };
            bucket.refill(now);
            let w = bucket.wait_for(b.cost);
            if w > wait.0 {
                wait = (w, i);
            }
        }
        if max_wait.is_some_and(|max| wait.0 > max) {
            return Ok(Admission::Refused {
                retry_after: wait.0,
                bucket: wait.1,
            });
        }
        for b in buckets {
            if let Some(bucket) = map.get_mut(&b.key) {
                bucket.adjust(-b.cost);
            }
        }
        Ok(if wait.0.is_zero() {
            Admission::Now
        } else {
            Admission::After {
                wait: wait.0,
                bucket: wait.1,
            }
        })
    }

    async fn adjust(&self, bucket: &RateBucket) -> Result<()> {
        if let Some(b) = lock(&self.buckets).get_mut(&bucket.key) {
            b.adjust(-bucket.cost);
        }
        Ok(())
    }

    fn level(&self, key: &str) -> Option<f64> {
        lock(&self.buckets).get_mut(key).map(|b| {
            b.refill(Instant::now());
            b.level
        })
    }
}

/// Adjusts a bucket from synchronous code. A failure is logged: the bucket then stays as
/// reserved, the conservative side.
fn adjust_detached(store: Arc<dyn RateLimitStore>, bucket: RateBucket) {
    run_detached(async move {
        if let Err(e) = store.adjust(&bucket).await {
            tracing::warn!(error.type = e.kind().as_str(), "llmkit limit: could not settle tokens: {e}");
        }
    });
}

/// One provider+model's concurrency slots and bucket names.
struct Limiter {
    semaphore: Option<Arc<Semaphore>>,
    concurrency: usize,
    requests: Option<RateBucket>,
    tokens: Option<RateBucket>,
}

impl Limiter {
    fn new(config: Config, provider: &str, model: &str) -> Self {
        let bucket = |kind: &str, (limit, period): (u64, Duration)| RateBucket {
            key: format!("{provider}/{model}/{kind}"),
            cost: 0.0,
            limit,
            period,
        };
        Limiter {
            semaphore: config.concurrency.map(|n| Arc::new(Semaphore::new(n))),
            concurrency: config.concurrency.unwrap_or(0),
            requests: config.rpm.map(|r| bucket("requests", r)),
            tokens: config.tpm.map(|t| bucket("tokens", t)),
        }
    }

    fn snapshot(&self, store: &dyn RateLimitStore, provider: &str, model: &str) -> LimitSnapshot {
        let level = |b: &Option<RateBucket>| b.as_ref().and_then(|b| store.level(&b.key));
        LimitSnapshot {
            provider: provider.to_owned(),
            model: model.to_owned(),
            in_flight: self.semaphore.as_ref().map_or(0, |s| {
                self.concurrency.saturating_sub(s.available_permits())
            }),
            requests_available: level(&self.requests),
            tokens_available: level(&self.tokens),
        }
    }
}

/// Reserved capacity for one call: refunds the token reservation when dropped before `settle`.
struct Ticket {
    store: Arc<dyn RateLimitStore>,
    /// Its token bucket is the one to settle (shared, not copied per call).
    limiter: Arc<Limiter>,
    estimate: f64,
    _permit: Option<OwnedSemaphorePermit>,
    settled: bool,
}

impl Ticket {
    /// Gives back `delta` tokens (negative: takes more).
    fn give_back(&self, delta: f64) {
        if let Some(b) = &self.limiter.tokens {
            let bucket = RateBucket {
                cost: -delta,
                ..b.clone()
            };
            adjust_detached(self.store.clone(), bucket);
        }
    }

    /// Replaces the estimate by the real usage; returns a trail detail.
    #[allow(clippy::cast_precision_loss)]
    fn settle(mut self, used: Option<u64>) -> String {
        self.settled = true;
        match used {
            Some(used) => {
                self.give_back(self.estimate - used as f64);
                format!("estimated {} tokens, used {used}", self.estimate)
            }
            // Failed call: the provider counted the request but (almost) no tokens.
            None => {
                self.give_back(self.estimate);
                format!("estimated {} tokens, refunded after failure", self.estimate)
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.give_back(self.estimate);
        }
    }
}

struct Limit {
    layer: LimitLayer,
    inner: Arc<dyn ChatModel>,
}

impl Limit {
    fn limit_error(&self, message: String) -> Error {
        let info = self.inner.info();
        Error::new(ErrorKind::LimitExceeded, message).or_context(&info.provider, &info.model)
    }

    /// Waits for (or refuses) capacity; returns the ticket and how long it waited (zero when
    /// capacity was there at once).
    async fn admit(&self, request: &ChatRequest) -> Result<(Ticket, Duration)> {
        let info = self.inner.info();
        let model = target_model(info, request.model.as_deref());
        let cfg = self.layer.config;
        let limiter = self.layer.limiter(&info.provider, model);
        #[allow(clippy::cast_precision_loss)]
        let estimate = (TokenCounter::for_model(model).count_chat(request)
            + u64::from(request.max_tokens.unwrap_or(0))) as f64;
        if let Some((tpm, period)) = cfg.tpm {
            #[allow(clippy::cast_precision_loss)]
            if estimate > tpm as f64 {
                return Err(self.limit_error(format!(
                    "request needs about {estimate} tokens but the limit for {}/{model} is {tpm} per {}",
                    info.provider,
                    if period == Duration::from_secs(60) { "minute".to_owned() } else { format!("{period:?}") }
                )));
            }
        }
        let started = Instant::now();
        let mut buckets = Vec::with_capacity(2);
        if let Some(b) = &limiter.requests {
            buckets.push(RateBucket {
                cost: 1.0,
                ..b.clone()
            });
        }
        if let Some(b) = &limiter.tokens {
            buckets.push(RateBucket {
                cost: estimate,
                ..b.clone()
            });
        }
        let mut wait = Duration::ZERO;
        if !buckets.is_empty() {
            let max_wait = match cfg.mode {
                LimitMode::FailFast => Some(Duration::ZERO),
                LimitMode::Wait => bounded(cfg.max_wait, &request.meta),
            };
            match self.layer.store.acquire(&buckets, max_wait).await? {
                Admission::Now => {}
                Admission::After { wait: w, .. } => wait = w,
                Admission::Refused {
                    retry_after,
                    bucket,
                } => {
                    // The buckets in the order they were pushed above.
                    let which = [
                        limiter.requests.as_ref().map(|_| "requests-per-minute"),
                        limiter.tokens.as_ref().map(|_| "tokens-per-minute"),
                    ]
                    .into_iter()
                    .flatten()
                    .nth(bucket)
                    .unwrap_or("rate");
                    let why = match cfg.mode {
                        LimitMode::FailFast => "failing fast",
                        LimitMode::Wait => "the wait would pass the deadline",
                    };
                    return Err(self
                        .limit_error(format!(
                            "{which} limit reached for {}/{model}: {why}",
                            info.provider
                        ))
                        .with_retry_after(retry_after));
                }
            }
        }
        let mut ticket = Ticket {
            store: self.layer.store.clone(),
            limiter: limiter.clone(),
            estimate,
            _permit: None,
            settled: false,
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let Some(sem) = &limiter.semaphore else {
            return Ok((ticket, wait));
        };
        {
            let permit = match cfg.mode {
                LimitMode::FailFast => sem.clone().try_acquire_owned().map_err(|_| {
                    self.limit_error(format!(
                        "concurrency limit reached for {}/{model}: failing fast",
                        info.provider
                    ))
                })?,
                LimitMode::Wait => {
                    if let Ok(permit) = sem.clone().try_acquire_owned() {
                        ticket._permit = Some(permit);
                        return Ok((ticket, wait));
                    }
                    let left = bounded(cfg.max_wait, &request.meta)
                        .map(|d| d.saturating_sub(started.elapsed()));
                    let acquire = sem.clone().acquire_owned();
                    let acquired = match left {
                        Some(left) => tokio::time::timeout(left, acquire).await.map_err(|_| {
                            self.limit_error(format!(
                                "concurrency limit reached for {}/{model}: no slot before the deadline",
                                info.provider
                            ))
                        })?,
                        None => acquire.await,
                    };
                    acquired.map_err(|_| self.limit_error("concurrency limiter closed".into()))?
                }
            };
            ticket._permit = Some(permit);
        }
        // Waited for a slot: report the whole admission time.
        Ok((ticket, started.elapsed().max(wait)))
    }
}

#[async_trait]
impl ChatModel for Limit {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let (ticket, waited) = self.admit(&request).await?;
        match self.inner.chat(request).await {
            Ok(mut resp) => {
                let detail = ticket.settle(Some(resp.usage.total_tokens()));
                if !waited.is_zero() {
                    resp.trail.push("limit", "waited", format!("{waited:?}"));
                }
                resp.trail.push("limit", "settled", detail);
                Ok(resp)
            }
            Err(e) => {
                ticket.settle(None);
                Err(e)
            }
        }
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let (ticket, _) = self.admit(&request).await?;
        let stream = match self.inner.stream(request).await {
            Ok(s) => s,
            Err(e) => {
                ticket.settle(None);
                return Err(e);
            }
        };
        Ok(observe(stream, move |end| {
            let used = match end {
                StreamEnd::Completed(u, _) | StreamEnd::Abandoned(u) if u.total_tokens() > 0 => {
                    Some(u.total_tokens())
                }
                StreamEnd::Failed(_) => None,
                // No usage reported: keep the estimate as the best guess.
                _ => {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let estimate = ticket.estimate as u64;
                    Some(estimate)
                }
            };
            ticket.settle(used);
        }))
    }
}
