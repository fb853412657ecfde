//! Readiness: may this replica take traffic now?
//!
//! Three signals, all optional, combined with AND:
//! - **breakers**: not ready when every known circuit of the configured
//!   [`CircuitBreakerLayer`]s is open (one healthy provider behind a fallback is enough to
//!   serve). An open breaker whose cool-down has ended reports half-open, which counts as
//!   ready: the next call is the probe that closes or re-opens it.
//! - **checks**: backends the service needs (a shared cache, a ledger, a database) each answer
//!   a [`ReadinessCheck`] within its timeout.
//! - **probe**: a cheap request sent through the whole stack, at most once per interval; the
//!   result is cached in between, so a load balancer polling every second does not spend a
//!   model call per poll. The probe is skipped (and reported not ready) while every breaker is
//!   open: it would fail fast anyway.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use llmkit_core::resilience::{BreakerSnapshot, CircuitBreakerLayer, CircuitState};
use llmkit_core::{ChatModel, ChatRequest};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A backend the service needs before it can serve (Redis, PostgreSQL, a vector store).
///
/// Implementors provide [`name`](ReadinessCheck::name) and [`check`](ReadinessCheck::check).
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// A short name for the report (`redis`, `postgres`).
    fn name(&self) -> &str;

    /// `Ok` when the backend answers; `Err` with a one-line reason otherwise. The reason is
    /// shown on `/readyz`, so it must not carry a secret (a connection string with a password).
    async fn check(&self) -> Result<(), String>;
}

/// Builds a [`ReadinessCheck`] from a name and an async closure.
///
/// ```
/// use llmkit_serve::ready::check_fn;
/// let check = check_fn("always", || async { Ok(()) });
/// # let _ = check;
/// ```
pub fn check_fn<F, Fut>(name: impl Into<String>, f: F) -> Arc<dyn ReadinessCheck>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(FnCheck {
        name: name.into(),
        f,
    })
}

struct FnCheck<F> {
    name: String,
    f: F,
}

#[async_trait]
impl<F, Fut> ReadinessCheck for FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }
    async fn check(&self) -> Result<(), String> {
        (self.f)().await
    }
}

struct Probe {
    model: Arc<dyn ChatModel>,
    request: ChatRequest,
    every: Duration,
    last: Mutex<Option<(Instant, Result<(), String>)>>,
}

/// The readiness state of a service; cheap to clone (shared inside).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use llmkit_core::resilience::CircuitBreakerLayer;
/// use llmkit_core::{ChatModel, Layer, ScriptedModel};
/// use llmkit_serve::Readiness;
///
/// let breakers = CircuitBreakerLayer::new();
/// let model: Arc<dyn ChatModel> = breakers.layer(Arc::new(ScriptedModel::builder().reply("pong").build()));
/// let readiness = Readiness::new()
///     .breakers(breakers)
///     .probe(model, Duration::from_secs(30));
/// assert!(readiness.report().await.ready);
/// # })
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct Readiness {
    breakers: Vec<CircuitBreakerLayer>,
    checks: Vec<Arc<dyn ReadinessCheck>>,
    check_timeout: Option<Duration>,
    probe: Option<Arc<Probe>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("breakers", &self.breakers.len())
            .field("checks", &self.checks.len())
            .field("probe", &self.probe.as_ref().map(|p| p.every))
            .finish()
    }
}

/// Default time a [`ReadinessCheck`] may take before it counts as failed.
pub const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The request a probe sends when none is given: one short user turn, at most one output token.
pub fn default_probe_request() -> ChatRequest {
    ChatRequest::user("ping")
        .with_max_tokens(1)
        .with_request_id("readyz-probe")
        .with_tag("probe", "readyz")
}

impl Readiness {
    /// Always ready until signals are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the breakers of a stack (a clone of the layer used to build it; clones share state).
    pub fn breakers(mut self, layer: CircuitBreakerLayer) -> Self {
        self.breakers.push(layer);
        self
    }

    /// Adds a backend check.
    pub fn check(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// How long each check may take (default [`DEFAULT_CHECK_TIMEOUT`]).
    pub fn check_timeout(mut self, limit: Duration) -> Self {
        self.check_timeout = Some(limit);
        self
    }

    /// Sends [`default_probe_request`] through `model` (the full stack) at most once per
    /// `every`; readiness reuses the last result in between.
    pub fn probe(self, model: Arc<dyn ChatModel>, every: Duration) -> Self {
        self.probe_with(model, default_probe_request(), every)
    }

    /// Like [`probe`](Self::probe) with your own request (say, a fixed prompt your cache
    /// layer should not answer: set `meta.no_cache`).
    pub fn probe_with(
        mut self,
        model: Arc<dyn ChatModel>,
        request: ChatRequest,
        every: Duration,
    ) -> Self {
        self.probe = Some(Arc::new(Probe {
            model,
            request,
            every,
            last: Mutex::new(None),
        }));
        self
    }

    /// Every breaker snapshot of the configured layers.
    pub fn breaker_snapshots(&self) -> Vec<BreakerSnapshot> {
        self.breakers.iter().flat_map(|b| b.snapshots()).collect()
    }

    /// Whether every known circuit is open (false when none has been used yet).
    pub fn all_breakers_open(&self) -> bool {
        let snaps = self.breaker_snapshots();
        !snaps.is_empty() && snaps.iter().all(|s| s.state == CircuitState::Open)
    }

    /// Evaluates every signal (running checks, and the probe when its result is stale).
    pub async fn report(&self) -> ReadinessReport {
        let breakers: Vec<BreakerStatus> = self
            .breaker_snapshots()
            .into_iter()
            .map(|s| BreakerStatus {
                provider: s.provider,
                model: s.model,
                state: s.state.as_str(),
                retry_in_ms: s.retry_in.map(|d| d.as_millis() as u64),
                opened_by: s.opened.map(|o| o.last_error.as_str()),
            })
            .collect();
        let all_open = !breakers.is_empty() && breakers.iter().all(|b| b.state == "open");
        let limit = self.check_timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT);
        let checks = futures::future::join_all(self.checks.iter().map(|c| async move {
            let result = match tokio::time::timeout(limit, c.check()).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
            };
            CheckStatus {
                name: c.name().to_owned(),
                ok: result.is_ok(),
                error: result.err(),
            }
        }))
        .await;
        let probe = match &self.probe {
            None => None,
            Some(_) if all_open => Some(ProbeStatus {
                ok: false,
                age_ms: 0,
                error: Some("skipped: every circuit is open".to_owned()),
            }),
            Some(p) => Some(run_probe(p).await),
        };
        let ready = !all_open && checks.iter().all(|c| c.ok) && probe.as_ref().is_none_or(|p| p.ok);
        ReadinessReport {
            ready,
            breakers,
            checks,
            probe,
        }
    }
}

async fn run_probe(p: &Probe) -> ProbeStatus {
    // Held across the call on purpose (a tokio mutex): concurrent polls wait for one probe
    // instead of each sending their own.
    let mut last = p.last.lock().await;
    let now = Instant::now();
    if let Some((at, result)) = last.as_ref()
        && now.duration_since(*at) < p.every
    {
        return ProbeStatus {
            ok: result.is_ok(),
            age_ms: now.duration_since(*at).as_millis() as u64,
            error: result.clone().err(),
        };
    }
    let result = p
        .model
        .chat(p.request.clone())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let status = ProbeStatus {
        ok: result.is_ok(),
        age_ms: 0,
        error: result.clone().err(),
    };
    *last = Some((Instant::now(), result));
    status
}

/// What `/readyz` answers (200 when `ready`, 503 otherwise).
#[derive(Debug, Clone, Serialize)]
pub struct ReadinessReport {
    /// Whether the service should take traffic.
    pub ready: bool,
    /// Each known circuit.
    pub breakers: Vec<BreakerStatus>,
    /// Each backend check.
    pub checks: Vec<CheckStatus>,
    /// The provider probe, when configured.
    pub probe: Option<ProbeStatus>,
}

/// One circuit in a [`ReadinessReport`].
#[derive(Debug, Clone, Serialize)]
pub struct BreakerStatus {
    /// Provider name.
    pub provider: String,
    /// Model name.
    pub model: String,
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    /// Time before an open circuit lets a probe through.
    pub retry_in_ms: Option<u64>,
    /// The error kind that opened it.
    pub opened_by: Option<&'static str>,
}

/// One backend check in a [`ReadinessReport`].
#[derive(Debug, Clone, Serialize)]
pub struct CheckStatus {
    /// The check's name.
    pub name: String,
    /// Whether it answered.
    pub ok: bool,
    /// Why not.
    pub error: Option<String>,
}

/// The provider probe in a [`ReadinessReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ProbeStatus {
    /// Whether the last probe succeeded.
    pub ok: bool,
    /// Age of the result in milliseconds (0 when just sent).
    pub age_ms: u64,
    /// The probe's error.
    pub error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmkit_core::{Layer, Reply, ScriptedModel};

    #[tokio::test(start_paused = true)]
    async fn probe_is_cached_between_intervals() {
        let provider = Arc::new(
            ScriptedModel::builder()
                .fallback(Reply::text("pong"))
                .build(),
        );
        let r = Readiness::new().probe(provider.clone(), Duration::from_secs(10));
        for _ in 0..5 {
            assert!(r.report().await.ready);
        }
        assert_eq!(provider.call_count(), 1, "one probe per interval");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(r.report().await.ready);
        assert_eq!(provider.call_count(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn all_open_breakers_make_it_unready_and_cool_down_recovers() {
        let provider = Arc::new(
            ScriptedModel::builder()
                .reply(Reply::server_error(500))
                .reply(Reply::server_error(500))
                .fallback(Reply::text("ok"))
                .build(),
        );
        let breakers = CircuitBreakerLayer::new()
            .consecutive_failures(2)
            .cool_down(Duration::from_secs(5));
        let model = breakers.layer(provider);
        let r = Readiness::new()
            .breakers(breakers)
            .probe(model.clone(), Duration::from_secs(1));
        for _ in 0..2 {
            let _ = model.chat(ChatRequest::user("x")).await;
        }
        let report = r.report().await;
        assert!(!report.ready);
        assert_eq!(report.breakers[0].state, "open");
        assert_eq!(report.breakers[0].opened_by, Some("server"));
        tokio::time::advance(Duration::from_secs(6)).await;
        let report = r.report().await;
        assert!(report.ready, "{report:?}");
        assert_eq!(
            r.breaker_snapshots()[0].state,
            CircuitState::Closed,
            "the probe closed it"
        );
    }

    #[tokio::test]
    async fn failing_or_slow_check_is_unready() {
        let r = Readiness::new()
            .check(check_fn("ok", || async { Ok(()) }))
            .check(check_fn("down", || async {
                Err("connection refused".to_owned())
            }));
        let report = r.report().await;
        assert!(!report.ready);
        assert_eq!(
            report.checks[1].error.as_deref(),
            Some("connection refused")
        );
        let slow = Readiness::new()
            .check_timeout(Duration::from_millis(20))
            .check(check_fn("slow", || async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            }));
        assert!(!slow.report().await.ready);
    }
}
