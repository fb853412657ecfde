//! [`LimitLayer`]: client-side concurrency, requests-per-minute and tokens-per-minute limits per
//! provider+model.
//!
//! Staying under a provider's quota on our side is cheaper than learning it from 429s: a
//! throttled request still costs a round trip, and a burst of them trips breakers. Token buckets
//! refill continuously (`limit / 60 s`) up to one minute's worth. Tokens are estimated before the
//! call ([`estimate_tokens`] of the prompt plus `max_tokens`) and settled with the real usage
//! after it, so the bucket tracks what the provider will count.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{Registry, StreamEnd, bounded, lock, observe, target_model};
use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::model::{ChatModel, ChatStream, ModelInfo};
use crate::request::ChatRequest;
use crate::response::ChatResponse;
use crate::scripted::estimate_tokens;

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
    rpm: Option<u32>,
    tpm: Option<u64>,
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
    /// `max_wait` (only the request's deadline bounds waiting).
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
        }
    }

    /// Calls in flight at once per provider+model (default: unlimited; at least 1).
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.config.concurrency = Some(n.max(1));
        self
    }

    /// Requests per minute per provider+model (default: unlimited; at least 1).
    pub fn requests_per_minute(mut self, n: u32) -> Self {
        self.config.rpm = Some(n.max(1));
        self
    }

    /// Tokens (input + output) per minute per provider+model (default: unlimited; at least 1).
    pub fn tokens_per_minute(mut self, n: u64) -> Self {
        self.config.tpm = Some(n.max(1));
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
            .get_or_insert(provider, model, || Limiter::new(config))
    }

    /// The state of one provider+model's limiter, if a call created it.
    pub fn snapshot(&self, provider: &str, model: &str) -> Option<LimitSnapshot> {
        self.registry
            .get(provider, model)
            .map(|l| l.snapshot(provider, model))
    }

    /// Every limiter's state, sorted by provider and model.
    pub fn snapshots(&self) -> Vec<LimitSnapshot> {
        self.registry
            .all()
            .into_iter()
            .map(|((p, m), l)| l.snapshot(&p, &m))
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
    fn per_minute(n: u64) -> Self {
        Bucket {
            capacity: n as f64,
            level: n as f64,
            per_sec: n as f64 / 60.0,
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

struct Limiter {
    semaphore: Option<Arc<Semaphore>>,
    concurrency: usize,
    requests: Option<Mutex<Bucket>>,
    tokens: Option<Mutex<Bucket>>,
}

impl Limiter {
    fn new(config: Config) -> Self {
        Limiter {
            semaphore: config.concurrency.map(|n| Arc::new(Semaphore::new(n))),
            concurrency: config.concurrency.unwrap_or(0),
            requests: config
                .rpm
                .map(|n| Mutex::new(Bucket::per_minute(u64::from(n)))),
            tokens: config.tpm.map(|n| Mutex::new(Bucket::per_minute(n))),
        }
    }

    fn snapshot(&self, provider: &str, model: &str) -> LimitSnapshot {
        let now = Instant::now();
        let level = |b: &Option<Mutex<Bucket>>| {
            b.as_ref().map(|b| {
                let mut b = lock(b);
                b.refill(now);
                b.level
            })
        };
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

    /// The wait needed for one request of `tokens`, and which limit imposes it.
    fn needed(&self, tokens: f64, now: Instant) -> (Duration, &'static str) {
        let mut wait = (Duration::ZERO, "");
        if let Some(b) = &self.requests {
            let mut b = lock(b);
            b.refill(now);
            wait = wait.max((b.wait_for(1.0), "requests-per-minute"));
        }
        if let Some(b) = &self.tokens {
            let mut b = lock(b);
            b.refill(now);
            let w = b.wait_for(tokens);
            if w > wait.0 {
                wait = (w, "tokens-per-minute");
            }
        }
        wait
    }

    fn reserve(&self, tokens: f64) {
        if let Some(b) = &self.requests {
            lock(b).adjust(-1.0);
        }
        if let Some(b) = &self.tokens {
            lock(b).adjust(-tokens);
        }
    }

    fn adjust_tokens(&self, delta: f64) {
        if let Some(b) = &self.tokens {
            lock(b).adjust(delta);
        }
    }
}

/// Reserved capacity for one call: refunds the reservation when dropped before `settle`.
struct Ticket {
    limiter: Arc<Limiter>,
    estimate: f64,
    _permit: Option<OwnedSemaphorePermit>,
    settled: bool,
}

impl Ticket {
    /// Replaces the estimate by the real usage; returns a trail detail.
    #[allow(clippy::cast_precision_loss)]
    fn settle(mut self, used: Option<u64>) -> String {
        self.settled = true;
        match used {
            Some(used) => {
                self.limiter.adjust_tokens(self.estimate - used as f64);
                format!("estimated {} tokens, used {used}", self.estimate)
            }
            // Failed call: the provider counted the request but (almost) no tokens.
            None => {
                self.limiter.adjust_tokens(self.estimate);
                format!("estimated {} tokens, refunded after failure", self.estimate)
            }
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.limiter.adjust_tokens(self.estimate);
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
        let estimate =
            (estimate_tokens(&request.text()) + u64::from(request.max_tokens.unwrap_or(0))) as f64;
        if let Some(tpm) = cfg.tpm {
            #[allow(clippy::cast_precision_loss)]
            if estimate > tpm as f64 {
                return Err(self.limit_error(format!(
                    "request needs about {estimate} tokens but the limit for {}/{model} is {tpm} per minute",
                    info.provider
                )));
            }
        }
        let started = Instant::now();
        let (wait, which) = limiter.needed(estimate, started);
        if !wait.is_zero() {
            let refuse = |why: &str| {
                self.limit_error(format!(
                    "{which} limit reached for {}/{model}: {why}",
                    info.provider
                ))
                .with_retry_after(wait)
            };
            if cfg.mode == LimitMode::FailFast {
                return Err(refuse("failing fast"));
            }
            if bounded(cfg.max_wait, &request.meta).is_some_and(|left| left < wait) {
                return Err(refuse("the wait would pass the deadline"));
            }
        }
        limiter.reserve(estimate);
        let mut ticket = Ticket {
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
