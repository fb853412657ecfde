//! [`CircuitBreakerLayer`]: stops calling a provider+model that keeps failing, so callers fail
//! fast (and fall back) instead of queueing behind timeouts, and the provider gets room to recover.
//!
//! Closed → (consecutive failures, or failure rate over a window with a minimum of requests) →
//! Open → (cool-down) → HalfOpen → (a limited number of probe calls: success closes, failure
//! re-opens). Only failures that say something about the provider's health count: `Server`,
//! `Overloaded`, `Timeout`, `Transport`, `RateLimited`. A 400 means the provider is up and our
//! request is wrong, so it counts as a healthy answer.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use tokio::time::Instant;

use super::window::Window;
use super::{Registry, StreamEnd, lock, observe, target_model};
use crate::error::{Error, ErrorKind, Result};
use crate::layer::Layer;
use crate::model::{ChatModel, ChatStream, EmbeddingModel, ModelInfo};
use crate::request::ChatRequest;
use crate::response::{ChatResponse, EmbeddingRequest, EmbeddingResponse, Trail};

/// The three breaker states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CircuitState {
    /// Calls flow; failures are counted.
    Closed,
    /// Calls fail fast with [`ErrorKind::CircuitOpen`] until the cool-down ends.
    Open,
    /// A limited number of probe calls decide whether to close or re-open.
    HalfOpen,
}

impl CircuitState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A point-in-time view of one breaker, for health checks and dashboards.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// Current state (an open breaker whose cool-down has ended reports `HalfOpen`).
    pub state: CircuitState,
    /// Health failures in a row (reset by any healthy answer).
    pub consecutive_failures: u32,
    /// Calls counted in the failure-rate window.
    pub window_requests: u64,
    /// Health failures in the failure-rate window.
    pub window_failures: u64,
    /// Time left before an open breaker lets a probe through.
    pub retry_in: Option<Duration>,
    /// Probe calls in flight while half-open.
    pub probes_in_flight: u32,
    /// Why the breaker is open (or half-open): the failures that opened it. `None` while closed.
    pub opened: Option<OpenedBy>,
}

/// The failures that opened a breaker, kept until it closes again, so a health endpoint can say
/// why a target is failing fast (issue 17: an open breaker's counters read zero).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenedBy {
    /// What tripped it: `consecutive failures`, `failure rate` or `probe failed`.
    pub reason: &'static str,
    /// Health failures in a row when it opened.
    pub consecutive_failures: u32,
    /// Calls in the failure-rate window when it opened.
    pub window_requests: u64,
    /// Health failures in the window when it opened.
    pub window_failures: u64,
    /// The kind of the failure that opened it.
    pub last_error: ErrorKind,
    /// When it opened, in milliseconds since the Unix epoch.
    pub opened_at_unix_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Config {
    consecutive_failures: u32,
    failure_rate: f64,
    window: Duration,
    min_requests: u64,
    cool_down: Duration,
    probes: u32,
    close_after: u32,
}

/// Wraps models in a circuit breaker per provider+model; clones share the breakers, so keep a
/// clone to read [`snapshots`](Self::snapshots) for a health endpoint.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use llmkit_core::resilience::{CircuitBreakerLayer, CircuitState};
/// use llmkit_core::{ChatModel, ChatRequest, ErrorKind, Layer, Reply, ScriptedModel};
///
/// let provider = Arc::new(ScriptedModel::builder().fallback(Reply::server_error(500)).build());
/// let breakers = CircuitBreakerLayer::new().consecutive_failures(2);
/// let model = breakers.layer(provider.clone());
/// for _ in 0..2 { let _ = model.chat(ChatRequest::user("hi")).await; }
/// let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
/// assert_eq!(err.kind(), ErrorKind::CircuitOpen);
/// assert_eq!(provider.call_count(), 2, "the open circuit did not call the provider");
/// assert_eq!(breakers.snapshots()[0].state, CircuitState::Open);
/// # })
/// ```
#[must_use]
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    config: Config,
    registry: Arc<Registry<BreakerInner>>,
}

impl fmt::Debug for CircuitBreakerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for CircuitBreakerLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl CircuitBreakerLayer {
    /// Defaults: trip after 5 consecutive failures, or at a 50 % failure rate over 30 s once at
    /// least 20 calls were seen; cool down 30 s; 1 probe at a time while half-open; close after 1
    /// successful probe.
    pub fn new() -> Self {
        CircuitBreakerLayer {
            config: Config {
                consecutive_failures: 5,
                failure_rate: 0.5,
                window: Duration::from_secs(30),
                min_requests: 20,
                cool_down: Duration::from_secs(30),
                probes: 1,
                close_after: 1,
            },
            registry: Arc::new(Registry::new()),
        }
    }

    /// Consecutive health failures that open the circuit (default 5; 0 disables this trigger).
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.config.consecutive_failures = n;
        self
    }

    /// Failure rate (0..=1) over the window that opens the circuit (default 0.5; values above 1
    /// disable this trigger).
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.config.failure_rate = if rate.is_nan() { 0.5 } else { rate.max(0.0) };
        self
    }

    /// The failure-rate window (default 30 s; at least 1 s).
    pub fn window(mut self, window: Duration) -> Self {
        self.config.window = window.max(Duration::from_secs(1));
        self
    }

    /// Calls needed in the window before the failure rate is trusted (default 20; at least 1).
    pub fn min_requests(mut self, n: u64) -> Self {
        self.config.min_requests = n.max(1);
        self
    }

    /// How long an open circuit fails fast before letting probes through (default 30 s).
    pub fn cool_down(mut self, cool_down: Duration) -> Self {
        self.config.cool_down = cool_down;
        self
    }

    /// Probe calls allowed at once while half-open (default 1; at least 1). Others fail fast.
    pub fn half_open_probes(mut self, n: u32) -> Self {
        self.config.probes = n.max(1);
        self
    }

    /// Successful probes needed to close again (default 1; at least 1).
    pub fn close_after(mut self, n: u32) -> Self {
        self.config.close_after = n.max(1);
        self
    }

    /// The breaker for one provider+model, created on first use.
    pub fn breaker(&self, provider: &str, model: &str) -> CircuitBreaker {
        let config = self.config;
        let inner = self.registry.get_or_insert(provider, model, || {
            BreakerInner::new(provider, model, config)
        });
        CircuitBreaker { inner }
    }

    /// The breaker for one provider+model, if a call created it.
    pub fn existing(&self, provider: &str, model: &str) -> Option<CircuitBreaker> {
        self.registry
            .get(provider, model)
            .map(|inner| CircuitBreaker { inner })
    }

    /// Every breaker's snapshot, sorted by provider and model.
    pub fn snapshots(&self) -> Vec<BreakerSnapshot> {
        self.registry
            .all()
            .into_iter()
            .map(|(_, b)| b.snapshot())
            .collect()
    }
}

impl Layer for CircuitBreakerLayer {
    fn layer(&self, inner: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
        Arc::new(Breaker {
            layer: self.clone(),
            inner,
        })
    }

    /// The same breakers, keyed by the embedding model's provider and model: an embedding
    /// endpoint that keeps failing fails fast like a chat one.
    fn layer_embedding(&self, inner: Arc<dyn EmbeddingModel>) -> Option<Arc<dyn EmbeddingModel>> {
        Some(Arc::new(EmbeddingBreaker {
            layer: self.clone(),
            inner,
        }))
    }
}

/// One provider+model's breaker: a cheap handle, clones share state.
#[derive(Clone)]
pub struct CircuitBreaker {
    inner: Arc<BreakerInner>,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.snapshot().fmt(f)
    }
}

impl CircuitBreaker {
    /// The current state.
    pub fn state(&self) -> CircuitState {
        self.inner.snapshot().state
    }

    /// The current state and counters.
    pub fn snapshot(&self) -> BreakerSnapshot {
        self.inner.snapshot()
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed,
    Open { until: Instant },
    HalfOpen { in_flight: u32, successes: u32 },
}

#[derive(Debug)]
struct Counters {
    state: State,
    consecutive: u32,
    window: Window,
    opened: Option<OpenedBy>,
}

struct BreakerInner {
    provider: String,
    model: String,
    config: Config,
    counters: Mutex<Counters>,
}

/// How a call's result counts for health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Healthy,
    Unhealthy,
    Unknown,
}

fn health_of(error: &Error) -> Health {
    match error.kind() {
        ErrorKind::Server
        | ErrorKind::Overloaded
        | ErrorKind::Timeout
        | ErrorKind::Transport
        | ErrorKind::RateLimited => Health::Unhealthy,
        // Cancelled says nothing either way; the rest mean the provider answered.
        ErrorKind::Cancelled => Health::Unknown,
        _ => Health::Healthy,
    }
}

type Transition = (CircuitState, CircuitState);

impl BreakerInner {
    fn new(provider: &str, model: &str, config: Config) -> Self {
        BreakerInner {
            provider: provider.to_owned(),
            model: model.to_owned(),
            config,
            counters: Mutex::new(Counters {
                state: State::Closed,
                consecutive: 0,
                window: Window::new(config.window, 10),
                opened: None,
            }),
        }
    }

    fn snapshot(&self) -> BreakerSnapshot {
        let now = Instant::now();
        let c = lock(&self.counters);
        let (window_requests, window_failures) = c.window.sums(now);
        let (state, retry_in, probes_in_flight) = match c.state {
            State::Closed => (CircuitState::Closed, None, 0),
            State::Open { until } if until <= now => (CircuitState::HalfOpen, None, 0),
            State::Open { until } => (CircuitState::Open, Some(until - now), 0),
            State::HalfOpen { in_flight, .. } => (CircuitState::HalfOpen, None, in_flight),
        };
        BreakerSnapshot {
            provider: self.provider.clone(),
            model: self.model.clone(),
            state,
            consecutive_failures: c.consecutive,
            window_requests,
            window_failures,
            retry_in,
            probes_in_flight,
            opened: match state {
                CircuitState::Closed => None,
                _ => c.opened.clone(),
            },
        }
    }

    fn announce(&self, (from, to): Transition, why: &str) {
        tracing::warn!(
            gen_ai.provider.name = %self.provider,
            gen_ai.request.model = %self.model,
            from = from.as_str(),
            to = to.as_str(),
            reason = why,
            "llmkit circuit state changed"
        );
    }

    /// Lets a call through (with a permit) or fails fast.
    fn acquire(self: &Arc<Self>) -> Result<(Permit, Option<Transition>)> {
        let now = Instant::now();
        let mut c = lock(&self.counters);
        let permit = |probe| Permit {
            breaker: self.clone(),
            probe,
            done: false,
        };
        match c.state {
            State::Closed => Ok((permit(false), None)),
            State::Open { until } if until <= now => {
                c.state = State::HalfOpen {
                    in_flight: 1,
                    successes: 0,
                };
                drop(c);
                let t = (CircuitState::Open, CircuitState::HalfOpen);
                self.announce(t, "cool-down over");
                Ok((permit(true), Some(t)))
            }
            State::Open { until } => Err(Error::new(
                ErrorKind::CircuitOpen,
                format!(
                    "circuit open for {}/{}: failing fast",
                    self.provider, self.model
                ),
            )
            .with_retry_after(until - now)
            .or_context(&self.provider, &self.model)),
            State::HalfOpen {
                in_flight,
                successes,
            } if in_flight < self.config.probes => {
                c.state = State::HalfOpen {
                    in_flight: in_flight + 1,
                    successes,
                };
                Ok((permit(true), None))
            }
            State::HalfOpen { .. } => Err(Error::new(
                ErrorKind::CircuitOpen,
                format!(
                    "circuit half-open for {}/{}: probe limit reached",
                    self.provider, self.model
                ),
            )
            .or_context(&self.provider, &self.model)),
        }
    }

    fn record(&self, probe: bool, health: Health, error: Option<ErrorKind>) -> Option<Transition> {
        let now = Instant::now();
        let cfg = self.config;
        let mut c = lock(&self.counters);
        let (transition, why) = match (c.state, probe) {
            (
                State::HalfOpen {
                    in_flight,
                    successes,
                },
                true,
            ) => {
                let in_flight = in_flight.saturating_sub(1);
                match health {
                    Health::Unknown => {
                        c.state = State::HalfOpen {
                            in_flight,
                            successes,
                        };
                        (None, "")
                    }
                    Health::Healthy if successes + 1 >= cfg.close_after => {
                        c.state = State::Closed;
                        c.consecutive = 0;
                        c.window.clear();
                        c.opened = None;
                        (
                            Some((CircuitState::HalfOpen, CircuitState::Closed)),
                            "probe succeeded",
                        )
                    }
                    Health::Healthy => {
                        c.state = State::HalfOpen {
                            in_flight,
                            successes: successes + 1,
                        };
                        (None, "")
                    }
                    Health::Unhealthy => {
                        c.state = State::Open {
                            until: now + cfg.cool_down,
                        };
                        c.opened = Some(opened_by("probe failed", 1, (1, 1), error));
                        (
                            Some((CircuitState::HalfOpen, CircuitState::Open)),
                            "probe failed",
                        )
                    }
                }
            }
            (State::Closed, false) => match health {
                Health::Unknown => (None, ""),
                Health::Healthy => {
                    c.consecutive = 0;
                    c.window.add(now, 1, 0);
                    (None, "")
                }
                Health::Unhealthy => {
                    c.consecutive = c.consecutive.saturating_add(1);
                    c.window.add(now, 1, 1);
                    let (requests, failures) = c.window.sums(now);
                    let by_count =
                        cfg.consecutive_failures > 0 && c.consecutive >= cfg.consecutive_failures;
                    #[allow(clippy::cast_precision_loss)]
                    let by_rate = requests >= cfg.min_requests
                        && failures as f64 / requests as f64 >= cfg.failure_rate;
                    if by_count || by_rate {
                        let why = if by_count {
                            "consecutive failures"
                        } else {
                            "failure rate"
                        };
                        c.opened = Some(opened_by(why, c.consecutive, (requests, failures), error));
                        c.state = State::Open {
                            until: now + cfg.cool_down,
                        };
                        c.consecutive = 0;
                        c.window.clear();
                        (Some((CircuitState::Closed, CircuitState::Open)), why)
                    } else {
                        (None, "")
                    }
                }
            },
            // A call admitted under an earlier state finished late: it no longer decides anything.
            _ => (None, ""),
        };
        drop(c);
        if let Some(t) = transition {
            self.announce(t, why);
        }
        transition
    }
}

/// Admission to call through a breaker; reports the outcome once, or "unknown" when dropped
/// (the caller cancelled), which frees a half-open probe slot.
struct Permit {
    breaker: Arc<BreakerInner>,
    probe: bool,
    done: bool,
}

impl Permit {
    fn finish(mut self, health: Health) -> Option<Transition> {
        self.done = true;
        self.breaker.record(self.probe, health, None)
    }

    fn fail(mut self, error: &Error) -> Option<Transition> {
        self.done = true;
        self.breaker
            .record(self.probe, health_of(error), Some(error.kind()))
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.done {
            self.breaker.record(self.probe, Health::Unknown, None);
        }
    }
}

fn opened_by(
    reason: &'static str,
    consecutive_failures: u32,
    (window_requests, window_failures): (u64, u64),
    error: Option<ErrorKind>,
) -> OpenedBy {
    OpenedBy {
        reason,
        consecutive_failures,
        window_requests,
        window_failures,
        last_error: error.unwrap_or(ErrorKind::Other),
        opened_at_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    }
}

struct Breaker {
    layer: CircuitBreakerLayer,
    inner: Arc<dyn ChatModel>,
}

impl Breaker {
    fn breaker(&self, request: &ChatRequest) -> Arc<BreakerInner> {
        let info = self.inner.info();
        self.layer
            .breaker(&info.provider, target_model(info, request.model.as_deref()))
            .inner
    }
}

fn note(trail: &mut Trail, (from, to): Transition) {
    trail.push("breaker", to.as_str(), format!("{from} -> {to}"));
}

/// Runs one non-streaming call through `breaker`: fails fast while it is open, records the
/// outcome, and notes the transitions it caused in the answer's trail. `call` is not polled
/// before the breaker admits it.
async fn guarded<T>(
    breaker: &Arc<BreakerInner>,
    call: impl std::future::Future<Output = Result<T>>,
    trail: impl FnOnce(&mut T) -> &mut Trail,
) -> Result<T> {
    let (permit, opened) = breaker.acquire()?;
    match call.await {
        Ok(mut answer) => {
            let closed = permit.finish(Health::Healthy);
            let trail = trail(&mut answer);
            for t in opened.into_iter().chain(closed) {
                note(trail, t);
            }
            Ok(answer)
        }
        Err(e) => {
            permit.fail(&e);
            Err(e)
        }
    }
}

#[async_trait]
impl ChatModel for Breaker {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn candidates(&self) -> Vec<crate::model::Candidate> {
        self.inner.candidates()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let breaker = self.breaker(&request);
        guarded(&breaker, self.inner.chat(request), |r| &mut r.trail).await
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let (permit, _) = self.breaker(&request).acquire()?;
        match self.inner.stream(request).await {
            Ok(stream) => Ok(observe(stream, move |end| {
                let _ = match end {
                    StreamEnd::Completed(..) => permit.finish(Health::Healthy),
                    StreamEnd::Failed(e) => permit.fail(&e),
                    StreamEnd::Abandoned(_) => permit.finish(Health::Unknown),
                };
            })),
            Err(e) => {
                permit.fail(&e);
                Err(e)
            }
        }
    }
}

/// The breaker around an embedding model.
struct EmbeddingBreaker {
    layer: CircuitBreakerLayer,
    inner: Arc<dyn EmbeddingModel>,
}

#[async_trait]
impl EmbeddingModel for EmbeddingBreaker {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn dimensions(&self) -> Option<usize> {
        self.inner.dimensions()
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let info = self.inner.info();
        let breaker = self
            .layer
            .breaker(&info.provider, target_model(info, request.model.as_deref()))
            .inner;
        guarded(&breaker, self.inner.embed(request), |r| &mut r.trail).await
    }
}
