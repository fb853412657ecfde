//! The service: the recommended stack per model version, the typed support API, the review
//! endpoints, `/config`, and the OpenAI-compatible route with health, readiness and metrics from
//! `llmkit::serve`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use llmkit::core::budget::BudgetLayer;
use llmkit::core::cost::PriceTable;
use llmkit::core::resilience::{CircuitBreakerLayer, RetryLayer, TimeoutLayer};
use llmkit::core::telemetry::{ExportQueue, JsonLinesSink, TraceLayer};
use llmkit::core::{ChatModel, ChatRequest, Decimal, Error, ErrorKind, Pipeline, layer_fn};
use llmkit::guard::input::secrets::SecretGuard;
use llmkit::guard::input::size::SizeLimit;
use llmkit::guard::{GuardPipeline, InjectionGuard};
use llmkit::serve::{ApiError, Readiness, Serve};
use sha2::{Digest, Sha256};

use crate::agent::{Agent, AskRequest};
use crate::config::{Config, ModelVersion, Secrets};

tokio::task_local! {
    /// Who the current typed-API request is for: stamped on every model call it makes.
    static CONTEXT: CallContext;
}

#[derive(Debug, Clone)]
struct CallContext {
    request_id: String,
    tenant: String,
    label: String,
}

/// Stamps the current request's id, tenant and prompt label on a model call (the agent's code
/// does not carry request metadata; the stack reads it from here).
fn stamp(mut req: ChatRequest) -> ChatRequest {
    let _ = CONTEXT.try_with(|c| {
        req.meta.request_id = Some(c.request_id.clone());
        req.meta.tenant = Some(c.tenant.clone());
        req.meta
            .tags
            .insert("prompt_label".to_owned(), c.label.clone());
    });
    req
}

/// The canary bucket of a user: the first 8 bytes of SHA-256(user id) as a fraction of 2^64.
/// Sticky (same id, same bucket) and uniform, so a share `s` of users land below `s`.
pub fn canary_bucket(user_id: &str) -> f64 {
    let digest = Sha256::digest(user_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(first) as f64 / 18_446_744_073_709_551_616.0
}

/// `canary` for the configured share of users, `production` for the rest.
pub fn prompt_label(user_id: &str, canary_share: f64) -> &'static str {
    if canary_bucket(user_id) < canary_share {
        "canary"
    } else {
        "production"
    }
}

/// Per-tenant request limit: a fixed one-minute window per tenant, in memory.
#[derive(Debug, Default)]
struct TenantLimiter {
    per_minute: u32,
    windows: Mutex<BTreeMap<String, (Instant, u32)>>,
}

impl TenantLimiter {
    /// `Err(wait)` when the tenant's window is full.
    fn admit(&self, tenant: &str) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = llmkit::core::sync::lock(&self.windows);
        let slot = map.entry(tenant.to_owned()).or_insert((now, 0));
        let elapsed = now.duration_since(slot.0);
        if elapsed >= Duration::from_secs(60) {
            *slot = (now, 0);
        }
        if slot.1 >= self.per_minute {
            return Err(Duration::from_secs(60).saturating_sub(now.duration_since(slot.0)));
        }
        slot.1 += 1;
        Ok(())
    }
}

/// Counts of typed-API answers by prompt label, version and outcome.
#[derive(Debug, Default)]
struct AnswerCounts(Mutex<BTreeMap<(String, String, String), u64>>);

impl AnswerCounts {
    fn add(&self, label: &str, version: &str, outcome: &str) {
        let mut map = llmkit::core::sync::lock(&self.0);
        *map.entry((label.to_owned(), version.to_owned(), outcome.to_owned()))
            .or_insert(0) += 1;
    }

    fn render(&self) -> String {
        let mut out = String::from(
            "# HELP support_answers_total Typed-API answers by prompt label, prompt version and outcome.\n# TYPE support_answers_total counter\n",
        );
        let map = llmkit::core::sync::lock(&self.0);
        for ((label, version, outcome), n) in map.iter() {
            out.push_str(&format!(
                "support_answers_total{{prompt_label=\"{label}\",prompt_version=\"{version}\",outcome=\"{outcome}\"}} {n}\n"
            ));
        }
        out
    }
}

struct Shared {
    config: Config,
    secrets: Secrets,
    agent: Agent,
    models: BTreeMap<String, Arc<dyn ChatModel>>,
    default_model: Arc<dyn ChatModel>,
    serve: Serve,
    limiter: TenantLimiter,
    answers: Arc<AnswerCounts>,
    export: Option<ExportQueue>,
}

/// The running service's state. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("versions", &self.inner.models.keys().collect::<Vec<_>>())
            .field("secrets", &self.inner.secrets)
            .finish_non_exhaustive()
    }
}

fn provider_for(v: &ModelVersion, secrets: &Secrets) -> llmkit::core::Result<Arc<dyn ChatModel>> {
    match v.provider.as_str() {
        "scripted" => Ok(Arc::new(crate::scripted::support_model(
            &v.model,
            Duration::from_millis(v.delay_ms),
        ))),
        "env" => llmkit::providers::from_env(),
        kind => {
            let kind: llmkit::providers::ProviderKind = kind.parse()?;
            let mut config = llmkit::providers::ProviderConfig::new(kind, v.model.clone());
            if let Some(url) = &v.base_url {
                config = config.with_base_url(url.clone());
            }
            if let Some(key) = &secrets.upstream_key {
                config.api_key = Some(llmkit::providers::secret::SecretString::new(key.clone()));
            }
            llmkit::providers::from_config(&config)
        }
    }
}

fn decimal(field: &str, v: &str) -> llmkit::core::Result<Decimal> {
    v.parse()
        .map_err(|_| Error::config(format!("{field}: `{v}` is not a decimal number")))
}

impl App {
    /// Builds the service from its configuration and secrets.
    pub async fn build(config: Config, secrets: Secrets) -> llmkit::core::Result<App> {
        let agent = Agent::load(
            &config.prompts.dir,
            &config.data.policies_dir,
            &config.review,
        )
        .await?;
        let export = match &config.telemetry.trace_file {
            Some(path) => {
                let sink = JsonLinesSink::append(path)
                    .map_err(|e| Error::config(format!("trace file {}: {e}", path.display())))?;
                Some(ExportQueue::spawn(Arc::new(sink), 10_000))
            }
            None => None,
        };
        let mut trace = TraceLayer::builder();
        if let Some(q) = &export {
            trace = trace.export(q.clone());
        }
        let trace = trace.build();
        let breakers = CircuitBreakerLayer::new()
            .consecutive_failures(config.resilience.breaker_failures)
            .cool_down(Duration::from_millis(
                config.resilience.breaker_cool_down_ms,
            ));
        let table = PriceTable::bundled();
        let flat = llmkit::core::budget::FlatPricer::per_million(
            decimal(
                "tenants.fallback_price_input_per_million",
                &config.tenants.fallback_price_input_per_million,
            )?,
            decimal(
                "tenants.fallback_price_output_per_million",
                &config.tenants.fallback_price_output_per_million,
            )?,
        );
        let pricer = move |provider: &str, model: &str, usage: &llmkit::core::Usage| {
            use llmkit::core::budget::Pricer as _;
            table
                .cost(provider, model, usage)
                .or_else(|| flat.price(provider, model, usage))
        };
        let mut budget = BudgetLayer::new(Arc::new(pricer)).per_tenant_usd(
            decimal("tenants.budget_usd", &config.tenants.budget_usd)?,
            Duration::from_secs(config.tenants.budget_window_seconds),
        );
        let mut readiness = Readiness::new().breakers(breakers.clone());
        if let Some(url) = &secrets.redis_url {
            // Shared budgets across replicas (docs/scale-out.md); the ledger fails closed when
            // Redis is down, and readiness says so.
            let redis = llmkit::redis::RedisConnection::open(url)
                .map_err(|e| Error::config(format!("redis: {e}")))?
                .with_prefix("support-service");
            budget = budget.ledger(Arc::new(llmkit::redis::RedisBudgetLedger::new(
                redis.clone(),
            )));
            readiness = readiness.check(llmkit::serve::check_fn("redis", move || {
                let redis = redis.clone();
                async move { redis.ping().await.map_err(|e| e.kind().as_str().to_owned()) }
            }));
            tracing::info!("tenant budgets in Redis");
        }
        let guards = GuardPipeline::builder()
            .input(SizeLimit::new().max_chars(8_000))
            .input(InjectionGuard::new())
            .input(SecretGuard::new())
            .build();
        // The recommended order (docs/architecture.md): trace outermost, guards before spend,
        // budget before the attempts, retry outside the breaker, timeout innermost.
        let pipeline = Pipeline::builder()
            .layer(layer_fn("request_context", stamp))
            .layer(trace.clone())
            .layer(guards)
            .layer(budget)
            .layer(RetryLayer::new().max_attempts(config.resilience.max_attempts))
            .layer(breakers.clone())
            .layer(
                TimeoutLayer::new()
                    .attempt(Duration::from_millis(config.resilience.attempt_timeout_ms)),
            );
        let mut models = BTreeMap::new();
        for (name, v) in &config.model.versions {
            models.insert(name.clone(), pipeline.build(provider_for(v, &secrets)?));
        }
        let default = models
            .get(&config.model.version)
            .cloned()
            .ok_or_else(|| Error::config("model.version names no configured version"))?;
        let default_for_app = default.clone();
        let answers = Arc::new(AnswerCounts::default());
        let mut serve = Serve::builder(default.clone())
            .metrics(trace.metrics().clone())
            .readiness(readiness.probe(default, Duration::from_secs(config.server.probe_seconds)))
            .max_deadline(Duration::from_millis(config.server.max_deadline_ms))
            .default_deadline(Duration::from_millis(config.server.default_deadline_ms))
            .extra_metrics({
                let answers = answers.clone();
                move || answers.render()
            });
        for (name, m) in &models {
            serve = serve.model(format!("support-{name}"), m.clone());
        }
        let keys = secrets.api_keys.clone();
        let share = config.prompts.canary_share;
        serve = serve.on_request(move |headers, req| {
            let tenant = authenticate(&keys, headers)?;
            let label = prompt_label(req.meta.user.as_deref().unwrap_or(""), share);
            req.meta.tenant = Some(tenant);
            req.meta
                .tags
                .insert("prompt_label".to_owned(), label.to_owned());
            Ok(())
        });
        let limiter = TenantLimiter {
            per_minute: config.tenants.requests_per_minute,
            windows: Mutex::default(),
        };
        Ok(App {
            inner: Arc::new(Shared {
                config,
                secrets,
                agent,
                models,
                default_model: default_for_app,
                serve: serve.build(),
                limiter,
                answers,
                export,
            }),
        })
    }

    /// Every route, with the access log.
    pub fn router(&self) -> Router {
        let api = Router::new()
            .route("/v1/support/answer", post(answer))
            .route("/v1/reviews", get(reviews))
            .route("/v1/reviews/{id}", post(label_review))
            .route("/config", get(config_view))
            .with_state(self.clone());
        api.merge(self.inner.serve.router())
            .layer(axum::middleware::from_fn(access_log))
    }

    /// The llmkit serving state (readiness, metrics).
    pub fn serve(&self) -> &Serve {
        &self.inner.serve
    }

    /// Flushes the trace export queue (at shutdown).
    pub async fn flush(&self) {
        if let Some(q) = &self.inner.export {
            q.flush().await;
        }
    }

    /// The default model version's stack (the `model.version` flag).
    fn model(&self) -> Arc<dyn ChatModel> {
        self.inner.default_model.clone()
    }
}

fn authenticate(keys: &BTreeMap<String, String>, headers: &HeaderMap) -> Result<String, ApiError> {
    if keys.is_empty() {
        return Ok("public".to_owned());
    }
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    presented
        .and_then(|k| keys.get(k))
        .cloned()
        .ok_or_else(ApiError::unauthorized)
}

/// Fields the handlers hand to the access log (as a response extension).
#[derive(Debug, Clone, Default)]
struct LogFields {
    tenant: String,
    prompt_label: String,
    prompt_version: String,
}

async fn access_log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let fields = response
        .extensions()
        .get::<LogFields>()
        .cloned()
        .unwrap_or_default();
    let request_id = response
        .headers()
        .get(llmkit::serve::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    tracing::info!(
        target: "support_service::access",
        request_id = %request_id,
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1000.0,
        tenant = %fields.tenant,
        prompt_label = %fields.prompt_label,
        prompt_version = %fields.prompt_version,
        "request"
    );
    response
}

fn with_id(mut response: Response, request_id: &str, fields: LogFields) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response
            .headers_mut()
            .insert(llmkit::serve::REQUEST_ID_HEADER, v);
    }
    response.extensions_mut().insert(fields);
    response
}

impl App {
    /// Handles one typed-API request (the route handler, also called by the eval runner).
    pub async fn handle_answer(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let request_id = llmkit::serve::request_id(headers);
        let mut fields = LogFields::default();
        let result = self
            .answer_inner(headers, body, &request_id, &mut fields)
            .await;
        let response = match result {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        with_id(response, &request_id, fields)
    }

    async fn answer_inner(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        request_id: &str,
        fields: &mut LogFields,
    ) -> Result<Response, ApiError> {
        let tenant = authenticate(&self.inner.secrets.api_keys, headers)?;
        fields.tenant.clone_from(&tenant);
        if let Err(wait) = self.inner.limiter.admit(&tenant) {
            return Err(ApiError::from_error(
                &Error::new(ErrorKind::LimitExceeded, "tenant request limit reached")
                    .with_retry_after(wait),
            ));
        }
        let request: AskRequest = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request("body", format!("body is not a valid request: {e}"))
        })?;
        if request.question.trim().is_empty() {
            return Err(ApiError::bad_request(
                "question",
                "question must not be empty",
            ));
        }
        let label = prompt_label(&request.user_id, self.inner.config.prompts.canary_share);
        let version = self
            .inner
            .agent
            .prompt_ref(label)
            .map(|p| p.version)
            .unwrap_or_default();
        fields.prompt_label = label.to_owned();
        fields.prompt_version.clone_from(&version);
        let context = CallContext {
            request_id: request_id.to_owned(),
            tenant,
            label: label.to_owned(),
        };
        let model = self.model();
        let deadline = llmkit::serve::deadline(
            headers,
            Some(Duration::from_millis(
                self.inner.config.server.max_deadline_ms,
            )),
            Some(Duration::from_millis(
                self.inner.config.server.default_deadline_ms,
            )),
        )?;
        let work = CONTEXT.scope(
            context,
            self.inner.agent.ask(model, &request, label, request_id),
        );
        let result = match deadline {
            Some(d) => match tokio::time::timeout(d, work).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("request deadline of {} ms passed", d.as_millis()),
                )),
            },
            None => work.await,
        };
        match result {
            Ok(answer) => {
                let outcome = match &answer.verdict {
                    Some(v) => v.outcome.clone(),
                    None if answer.refused => "refused".to_owned(),
                    None => "answered".to_owned(),
                };
                self.inner.answers.add(label, &version, &outcome);
                Ok(axum::Json(answer).into_response())
            }
            Err(e) => {
                self.inner.answers.add(label, &version, e.kind().as_str());
                Err(ApiError::from_error(&e))
            }
        }
    }
}

async fn answer(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    app.handle_answer(&headers, &body).await
}

async fn reviews(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(e) = authenticate(&app.inner.secrets.api_keys, &headers) {
        return e.into_response();
    }
    match app.inner.agent.pending_reviews().await {
        Ok(items) => axum::Json(serde_json::json!({"pending": items})).into_response(),
        Err(e) => ApiError::from_error(&e).into_response(),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelBody {
    decision: String,
}

async fn label_review(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = authenticate(&app.inner.secrets.api_keys, &headers) {
        return e.into_response();
    }
    let body: LabelBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return ApiError::bad_request("body", format!("{e}")).into_response(),
    };
    if !matches!(body.decision.as_str(), "approve" | "reject") {
        return ApiError::bad_request("decision", "decision must be approve or reject")
            .into_response();
    }
    match app.inner.agent.label_review(&id, &body.decision).await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"id": id, "decision": body.decision})),
        )
            .into_response(),
        Err(e) if e.kind() == ErrorKind::NotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "not_found",
            e.message().to_owned(),
        )
        .into_response(),
        Err(e) => ApiError::from_error(&e).into_response(),
    }
}

async fn config_view(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(e) = authenticate(&app.inner.secrets.api_keys, &headers) {
        return e.into_response();
    }
    let mut view = serde_json::to_value(&app.inner.config).unwrap_or_default();
    if let Some(obj) = view.as_object_mut() {
        obj.insert(
            "secret_values".to_owned(),
            app.inner.secrets.redacted(&app.inner.config.secrets),
        );
    }
    axum::Json(view).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canary_share_is_close_and_sticky() {
        let share = 0.2;
        let n = 10_000;
        let canary = (0..n)
            .filter(|i| prompt_label(&format!("user-{i}"), share) == "canary")
            .count();
        let got = canary as f64 / n as f64;
        assert!((got - share).abs() < 0.02, "{got}");
        assert_eq!(prompt_label("user-7", share), prompt_label("user-7", share));
        assert_eq!(prompt_label("anyone", 0.0), "production");
        assert_eq!(prompt_label("anyone", 1.0), "canary");
    }

    #[test]
    fn tenant_limit_refuses_with_the_wait() {
        let l = TenantLimiter {
            per_minute: 2,
            windows: Mutex::default(),
        };
        assert!(l.admit("a").is_ok() && l.admit("a").is_ok());
        let wait = l.admit("a").unwrap_err();
        assert!(wait <= Duration::from_secs(60) && wait > Duration::from_secs(50));
        assert!(l.admit("b").is_ok(), "tenants are separate");
    }
}
