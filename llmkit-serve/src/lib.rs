//! Serving helpers for axum: mount an llmkit stack in your own HTTP service.
//!
//! [`Serve`] holds an `Arc<dyn ChatModel>` (a provider, or better a whole resilient stack) and
//! gives an axum [`Router`] with:
//! - `GET /healthz`: liveness, 200 while the process can answer HTTP;
//! - `GET /readyz`: readiness from [`Readiness`] (breakers, backend checks, a cached provider
//!   probe), 200 or 503 with a JSON report;
//! - `GET /metrics`: Prometheus text ([`metrics`]): llmkit's call metrics, the OpenTelemetry
//!   GenAI client metrics, HTTP counters and circuit states;
//! - `POST /v1/chat/completions`: the OpenAI Chat Completions API ([`wire`]), non-streaming and
//!   server-sent events, tools and `response_format` passed through, so any OpenAI client can
//!   talk to the stack; errors come back in OpenAI's error shape ([`ApiError`]) with the status a
//!   client's retry logic expects (429 + `Retry-After` for a limit or budget refusal, 503 for an
//!   open circuit, 504 for a spent deadline);
//! - `GET /v1/models`: the model names the route accepts.
//!
//! Every response carries `x-request-id` (the caller's, or a new one); the id becomes the call's
//! [`RequestMeta::request_id`](llmkit_core::RequestMeta::request_id), so logs, traces and the
//! response line up. A deadline comes from `x-llmkit-timeout-ms` (milliseconds from arrival) or
//! the `x-stainless-timeout` seconds OpenAI's SDKs send with every request, capped by
//! [`ServeBuilder::max_deadline`], and is set as the call's
//! [`RequestMeta::deadline`](llmkit_core::RequestMeta::deadline), which every llmkit layer
//! honours; the server also enforces it itself.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use llmkit_core::resilience::CircuitBreakerLayer;
//! use llmkit_core::telemetry::TraceLayer;
//! use llmkit_core::{ChatModel, Pipeline, ScriptedModel};
//! use llmkit_serve::{Readiness, Serve};
//!
//! let trace = TraceLayer::new();
//! let breakers = CircuitBreakerLayer::new();
//! let model: Arc<dyn ChatModel> = Pipeline::builder()
//!     .layer(trace.clone())
//!     .layer(breakers.clone())
//!     .build(Arc::new(ScriptedModel::always("hello")));
//! let serve = Serve::builder(model.clone())
//!     .metrics(trace.metrics().clone())
//!     .readiness(Readiness::new().breakers(breakers).probe(model, Duration::from_secs(30)))
//!     .max_deadline(Duration::from_secs(60))
//!     .build();
//! // Mount it beside your own routes.
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "my service" }))
//!     .merge(serve.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # drop((app, listener));
//! # Ok::<(), std::io::Error>(()) }).unwrap();
//! ```

pub mod error;
pub mod metrics;
pub mod ready;
pub mod wire;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use llmkit_core::telemetry::MetricsRegistry;
use llmkit_core::{ChatModel, ChatRequest, Error, ErrorKind};
use tokio::time::Instant;

pub use error::ApiError;
pub use metrics::HttpMetrics;
pub use ready::{ReadinessCheck, ReadinessReport, check_fn};
pub use wire::CompletionRequest;

pub use ready::Readiness;

/// Request header carrying the caller's request id; echoed on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Request header with the caller's deadline in milliseconds from arrival.
pub const TIMEOUT_MS_HEADER: &str = "x-llmkit-timeout-ms";
/// The timeout in seconds OpenAI's SDKs send with every request.
pub const STAINLESS_TIMEOUT_HEADER: &str = "x-stainless-timeout";
/// Longest request id accepted from a caller; a longer one is replaced by a fresh id.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// Route paths, also the `route` label of [`metrics::HTTP_REQUESTS`].
pub mod routes {
    /// Liveness.
    pub const HEALTHZ: &str = "/healthz";
    /// Readiness.
    pub const READYZ: &str = "/readyz";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// OpenAI-compatible chat completions.
    pub const CHAT_COMPLETIONS: &str = "/v1/chat/completions";
    /// OpenAI-compatible model list.
    pub const MODELS: &str = "/v1/models";
}

/// Runs before every chat call: authenticate the caller, set the tenant, choose a prompt
/// version, add tags. Returning an error answers the request with it.
pub type RequestHook =
    Arc<dyn Fn(&HeaderMap, &mut ChatRequest) -> Result<(), ApiError> + Send + Sync>;

struct Shared {
    default_model: Arc<dyn ChatModel>,
    default_name: String,
    models: BTreeMap<String, Arc<dyn ChatModel>>,
    strict_models: bool,
    readiness: Readiness,
    metrics: Option<MetricsRegistry>,
    http: HttpMetrics,
    max_deadline: Option<Duration>,
    default_deadline: Option<Duration>,
    hook: Option<RequestHook>,
    extra_metrics: Option<ExtraMetrics>,
}

/// Renders more Prometheus families for `/metrics` (a service's own counters).
pub type ExtraMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// The serving state: models, readiness, metrics. Cheap to clone (an `Arc`).
#[derive(Clone)]
pub struct Serve {
    inner: Arc<Shared>,
}

impl std::fmt::Debug for Serve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serve")
            .field("default_model", &self.inner.default_name)
            .field("models", &self.inner.models.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Serve`]. Defaults: one model answering every `model` name, always ready, no
/// call metrics (only HTTP counters), no deadline unless the caller sends one, no hook.
#[must_use]
pub struct ServeBuilder {
    shared: Shared,
}

impl Serve {
    /// Starts a builder around the model that answers requests.
    pub fn builder(model: Arc<dyn ChatModel>) -> ServeBuilder {
        let default_name = model.info().model.clone();
        ServeBuilder {
            shared: Shared {
                default_model: model,
                default_name,
                models: BTreeMap::new(),
                strict_models: false,
                readiness: Readiness::new(),
                metrics: None,
                http: HttpMetrics::default(),
                max_deadline: None,
                default_deadline: None,
                hook: None,
                extra_metrics: None,
            },
        }
    }

    /// The routes listed in the [crate docs](crate), ready to merge into an app.
    pub fn router(&self) -> Router {
        Router::new()
            .route(routes::HEALTHZ, get(healthz))
            .route(routes::READYZ, get(readyz))
            .route(routes::METRICS, get(metrics_page))
            .route(routes::CHAT_COMPLETIONS, post(chat_completions))
            .route(routes::MODELS, get(models))
            .with_state(self.clone())
    }

    /// The readiness signals.
    pub fn readiness(&self) -> &Readiness {
        &self.inner.readiness
    }

    /// The server's HTTP counters.
    pub fn http_metrics(&self) -> &HttpMetrics {
        &self.inner.http
    }

    /// The `/metrics` page as text.
    pub fn render_metrics(&self) -> String {
        let mut page = metrics::render(
            self.inner.metrics.as_ref(),
            &self.inner.http,
            &self.inner.readiness.breaker_snapshots(),
        );
        if let Some(extra) = &self.inner.extra_metrics {
            page.push_str(&extra());
        }
        page
    }

    /// Handles one OpenAI chat completion body as `POST /v1/chat/completions` does, for a
    /// service that mounts the route under its own path or middleware.
    pub async fn chat_completion(&self, headers: &HeaderMap, body: &[u8]) -> Response {
        let guard = self.inner.http.start();
        let request_id = request_id(headers);
        let mut response = self.chat_inner(headers, body, &request_id, guard).await;
        self.inner
            .http
            .record(routes::CHAT_COMPLETIONS, response.status().as_u16());
        set_request_id(&mut response, &request_id);
        response
    }

    fn pick_model(&self, name: Option<&str>) -> Result<Arc<dyn ChatModel>, ApiError> {
        match name.and_then(|n| self.inner.models.get(n)) {
            Some(m) => Ok(m.clone()),
            None => match name {
                Some(n) if self.inner.strict_models && n != self.inner.default_name => {
                    Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "invalid_request_error",
                        "model_not_found",
                        format!("the model `{n}` does not exist"),
                    ))
                }
                _ => Ok(self.inner.default_model.clone()),
            },
        }
    }

    async fn chat_inner(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        request_id: &str,
        guard: metrics::InFlight,
    ) -> Response {
        let arrived = Instant::now();
        let wire: CompletionRequest = match serde_json::from_slice(body) {
            Ok(w) => w,
            Err(e) => {
                return ApiError::bad_request("body", format!("body is not a valid request: {e}"))
                    .into_response();
            }
        };
        let mut request = match wire.to_chat_request() {
            Ok(r) => r,
            Err(e) => return ApiError::from(e).into_response(),
        };
        let model = match self.pick_model(wire.model.as_deref()) {
            Ok(m) => m,
            Err(e) => return e.into_response(),
        };
        request.meta.request_id = Some(request_id.to_owned());
        let timeout = match deadline(
            headers,
            self.inner.max_deadline,
            self.inner.default_deadline,
        ) {
            Ok(t) => t,
            Err(e) => return e.into_response(),
        };
        let deadline = timeout.map(|t| arrived + t);
        request.meta.deadline = deadline.map(Instant::into_std);
        if let Some(hook) = &self.inner.hook
            && let Err(e) = hook(headers, &mut request)
        {
            return e.into_response();
        }
        let completion_id = format!("chatcmpl-{request_id}");
        if wire.stream {
            let opened = match deadline {
                Some(d) => match tokio::time::timeout_at(d, model.stream(request)).await {
                    Ok(r) => r,
                    Err(_) => Err(deadline_error(timeout)),
                },
                None => model.stream(request).await,
            };
            let stream = match opened {
                Ok(s) => s,
                Err(e) => return ApiError::from_error(&e).into_response(),
            };
            let writer = wire::ChunkWriter::new(
                completion_id,
                model.info().model.clone(),
                wire.include_usage(),
            );
            sse(stream, writer, deadline, timeout, guard).into_response()
        } else {
            let result = match deadline {
                Some(d) => match tokio::time::timeout_at(d, model.chat(request)).await {
                    Ok(r) => r,
                    Err(_) => Err(deadline_error(timeout)),
                },
                None => model.chat(request).await,
            };
            drop(guard);
            match result {
                Ok(response) => {
                    axum::Json(wire::Completion::from_response(completion_id, &response))
                        .into_response()
                }
                Err(e) => ApiError::from_error(&e).into_response(),
            }
        }
    }
}

fn deadline_error(timeout: Option<Duration>) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!(
            "request deadline of {} ms passed",
            timeout.map_or(0, |t| t.as_millis())
        ),
    )
}

struct SseState {
    stream: llmkit_core::ChatStream,
    writer: wire::ChunkWriter,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    pending: std::collections::VecDeque<Event>,
    finished: bool,
    _guard: metrics::InFlight,
}

fn data_event<T: serde::Serialize>(value: &T) -> Event {
    Event::default().data(serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned()))
}

/// The SSE body: chunks as they come, `[DONE]` after a finished stream, and an `{"error": …}`
/// event (no `[DONE]`) when the stream fails, which OpenAI clients raise as an error.
fn sse(
    stream: llmkit_core::ChatStream,
    writer: wire::ChunkWriter,
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    guard: metrics::InFlight,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let state = SseState {
        stream,
        writer,
        deadline,
        timeout,
        pending: std::collections::VecDeque::new(),
        finished: false,
        _guard: guard,
    };
    let events = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(e) = st.pending.pop_front() {
                return Some((Ok(e), st));
            }
            if st.finished {
                return None;
            }
            let next = match st.deadline {
                Some(d) => match tokio::time::timeout_at(d, st.stream.next()).await {
                    Ok(n) => n,
                    Err(_) => Some(Err(deadline_error(st.timeout))),
                },
                None => st.stream.next().await,
            };
            match next {
                Some(Ok(event)) => {
                    let done = matches!(event, llmkit_core::StreamEvent::Done { .. });
                    for chunk in st.writer.on_event(event) {
                        st.pending.push_back(data_event(&chunk));
                    }
                    if done {
                        st.pending.push_back(Event::default().data("[DONE]"));
                        st.finished = true;
                    }
                }
                Some(Err(e)) => {
                    st.pending
                        .push_back(data_event(&ApiError::from_error(&e).body()));
                    st.finished = true;
                }
                None => {
                    // Ended without `Done`: cut off. Say so rather than end silently.
                    let e = Error::new(ErrorKind::Truncated, "stream ended before completion");
                    st.pending
                        .push_back(data_event(&ApiError::from_error(&e).body()));
                    st.finished = true;
                }
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

impl ServeBuilder {
    /// Also accept `name` in the request's `model` field and answer it with `model` (model
    /// versions behind names: `support-v1`, `support-v2`). Unlisted names go to the default
    /// model unless [`strict_models`](Self::strict_models) is set.
    pub fn model(mut self, name: impl Into<String>, model: Arc<dyn ChatModel>) -> Self {
        self.shared.models.insert(name.into(), model);
        self
    }

    /// Answer an unknown `model` with 404 `model_not_found` instead of the default model
    /// (default: off, so clients that hard-code `gpt-4o` still work).
    pub fn strict_models(mut self, strict: bool) -> Self {
        self.shared.strict_models = strict;
        self
    }

    /// Readiness signals for `/readyz` (default: always ready).
    pub fn readiness(mut self, readiness: Readiness) -> Self {
        self.shared.readiness = readiness;
        self
    }

    /// The registry whose series `/metrics` renders (the trace layer's:
    /// `TraceLayer::metrics()`). Default: none, only HTTP counters and circuit states.
    pub fn metrics(mut self, registry: MetricsRegistry) -> Self {
        self.shared.metrics = Some(registry);
        self
    }

    /// Caps any deadline a caller asks for (default: no cap).
    pub fn max_deadline(mut self, limit: Duration) -> Self {
        self.shared.max_deadline = Some(limit);
        self
    }

    /// Deadline for callers that send none (default: none; the stack's own timeouts apply).
    pub fn default_deadline(mut self, limit: Duration) -> Self {
        self.shared.default_deadline = Some(limit);
        self
    }

    /// Runs `hook` on every chat request after parsing, before the model is called.
    pub fn on_request(
        mut self,
        hook: impl Fn(&HeaderMap, &mut ChatRequest) -> Result<(), ApiError> + Send + Sync + 'static,
    ) -> Self {
        self.shared.hook = Some(Arc::new(hook));
        self
    }

    /// Appends the text `render` returns to every `/metrics` page (your own families, in
    /// Prometheus text format; names must not repeat the built-in ones).
    pub fn extra_metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.shared.extra_metrics = Some(Arc::new(render));
        self
    }

    /// Finishes the builder.
    pub fn build(self) -> Serve {
        Serve {
            inner: Arc::new(self.shared),
        }
    }
}

/// A listener whose accepted sockets have `TCP_NODELAY` set.
pub type NoDelayListener =
    axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)>;

fn set_nodelay(stream: &mut tokio::net::TcpStream) {
    // Without it, Nagle's algorithm meets delayed ACKs and every response on a reused
    // keep-alive connection waits ~40 ms; axum 0.8 does not set it. A failure only costs
    // latency, so it is logged, not fatal.
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("could not set TCP_NODELAY: {e}");
    }
}

/// Binds a TCP listener for [`axum::serve()`] with `TCP_NODELAY` on every accepted socket.
pub async fn bind(addr: impl tokio::net::ToSocketAddrs) -> std::io::Result<NoDelayListener> {
    use axum::serve::ListenerExt as _;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(listener.tap_io(set_nodelay as fn(&mut tokio::net::TcpStream)))
}

/// The caller's request id when it is usable (visible ASCII, at most
/// [`MAX_REQUEST_ID_LEN`]), otherwise a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_REQUEST_ID_LEN
                && v.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(llmkit_core::new_request_id, str::to_owned)
}

fn set_request_id(response: &mut Response, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID_HEADER), v);
    }
}

/// The time a caller allows, from [`TIMEOUT_MS_HEADER`] or [`STAINLESS_TIMEOUT_HEADER`] (the
/// shorter when both are sent), capped by `max`; `default` when neither is sent. A header that
/// is not a non-negative number is a 400.
pub fn deadline(
    headers: &HeaderMap,
    max: Option<Duration>,
    default: Option<Duration>,
) -> Result<Option<Duration>, ApiError> {
    let read = |name: &str, scale_ms: f64| -> Result<Option<Duration>, ApiError> {
        let Some(v) = headers.get(name) else {
            return Ok(None);
        };
        let n: f64 = v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|n: &f64| n.is_finite() && *n >= 0.0)
            .ok_or_else(|| {
                ApiError::bad_request(name, format!("header {name} must be a non-negative number"))
            })?;
        Ok(Some(Duration::from_secs_f64(
            (n * scale_ms / 1000.0).min(1e9),
        )))
    };
    let asked = match (
        read(TIMEOUT_MS_HEADER, 1.0)?,
        read(STAINLESS_TIMEOUT_HEADER, 1000.0)?,
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let chosen = asked.or(default);
    Ok(match (chosen, max) {
        (Some(t), Some(m)) => Some(t.min(m)),
        (t, _) => t,
    })
}

async fn healthz(State(s): State<Serve>) -> Response {
    s.inner.http.record(routes::HEALTHZ, 200);
    axum::Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(s): State<Serve>) -> Response {
    let report = s.inner.readiness.report().await;
    let status = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    s.inner.http.record(routes::READYZ, status.as_u16());
    (status, axum::Json(report)).into_response()
}

async fn metrics_page(State(s): State<Serve>) -> Response {
    s.inner.http.record(routes::METRICS, 200);
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        s.render_metrics(),
    )
        .into_response()
}

async fn models(State(s): State<Serve>) -> Response {
    s.inner.http.record(routes::MODELS, 200);
    let created = wire::unix_now();
    let mut names: Vec<&str> = vec![s.inner.default_name.as_str()];
    names.extend(s.inner.models.keys().map(String::as_str));
    let data: Vec<_> = names
        .into_iter()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": created, "owned_by": "llmkit"}))
        .collect();
    axum::Json(serde_json::json!({"object": "list", "data": data})).into_response()
}

async fn chat_completions(State(s): State<Serve>, headers: HeaderMap, body: Bytes) -> Response {
    s.chat_completion(&headers, &body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_headers() {
        let mut h = HeaderMap::new();
        assert_eq!(deadline(&h, None, None).ok().flatten(), None);
        assert_eq!(
            deadline(&h, None, Some(Duration::from_secs(9)))
                .ok()
                .flatten(),
            Some(Duration::from_secs(9))
        );
        h.insert(TIMEOUT_MS_HEADER, HeaderValue::from_static("1500"));
        h.insert(STAINLESS_TIMEOUT_HEADER, HeaderValue::from_static("600"));
        assert_eq!(
            deadline(&h, None, None).ok().flatten(),
            Some(Duration::from_millis(1500)),
            "the shorter wins"
        );
        assert_eq!(
            deadline(&h, Some(Duration::from_secs(1)), None)
                .ok()
                .flatten(),
            Some(Duration::from_secs(1)),
            "capped"
        );
        h.insert(TIMEOUT_MS_HEADER, HeaderValue::from_static("soon"));
        assert_eq!(
            deadline(&h, None, None).err().map(|e| e.status()),
            Some(StatusCode::BAD_REQUEST)
        );
    }

    #[test]
    fn request_ids_are_kept_or_replaced() {
        let mut h = HeaderMap::new();
        h.insert(REQUEST_ID_HEADER, HeaderValue::from_static("req-abc"));
        assert_eq!(request_id(&h), "req-abc");
        h.insert(
            REQUEST_ID_HEADER,
            HeaderValue::from_str(&"x".repeat(MAX_REQUEST_ID_LEN + 1)).unwrap(),
        );
        let fresh = request_id(&h);
        assert!(!fresh.is_empty() && fresh.len() <= MAX_REQUEST_ID_LEN);
    }
}
