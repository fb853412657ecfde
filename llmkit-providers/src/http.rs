//! The shared HTTP side every provider sends through, and what a downstream provider author
//! needs to write one — nothing more:
//!
//! - [`default_client`] / [`build_client`] build a tuned `reqwest::Client` (rustls, pooled
//!   keep-alive connections, `TCP_NODELAY`, a connect timeout, **no automatic retries**:
//!   llmkit's retry layer is the only retry owner). Each model gets its own unless you hand one
//!   in, because a pooled connection belongs to the tokio runtime that opened it (see
//!   [`default_client`]). A client you pass in ties you to reqwest's major version: it is part
//!   of those signatures, and llmkit re-exports nothing of reqwest.
//! - [`Transport`]: the timeout, extra headers and client every provider builder shares.
//! - [`Endpoint`]: one value per operation (client, URL, headers with auth, timeout, error
//!   mapper, idempotency header) with [`Endpoint::post_json`] / [`Endpoint::post_json_stream`]:
//!   the deadline, the idempotency key, transport failures and non-2xx answers handled once.
//! - [`read_json`] reads a 2xx body; [`provider_request_id`] finds the provider's request id.
//! - [`ErrorMapper`] classifies a failed response with a per-provider table of [`ErrorRule`]s
//!   (status + provider error type/code + message fragment → [`ErrorKind`]), then the rules
//!   every provider shares, then the status. It keeps the provider's request id, the provider
//!   code, a scrubbed body excerpt and the wait the provider asked for (`Retry-After` seconds or
//!   HTTP-date, `retry-after-ms`, Google's `RetryInfo.retryDelay` in the body,
//!   `x-ratelimit-reset-*` durations such as `6m0s`). Transport failures are classified by the
//!   error's type and source chain ([`ErrorMapper::transport_error`]), never by message text.
//!
//! ```
//! use llmkit_core::ErrorKind;
//! use llmkit_providers::http::{ErrorMapper, ErrorRule};
//!
//! static RULES: &[ErrorRule] = &[ErrorRule::code("insufficient_quota", ErrorKind::QuotaExhausted)];
//! let mapper = ErrorMapper::new("example", RULES);
//! let body = r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#;
//! let err = mapper.error_from_parts(429, &Default::default(), body);
//! assert_eq!(err.kind(), ErrorKind::QuotaExhausted);
//! assert!(!err.is_retryable());
//! ```

use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;
use llmkit_core::{Error, ErrorKind, RequestMeta, Result};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::secret::{SecretString, redact_secrets};

/// Default time allowed to establish a TCP + TLS connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest wait llmkit will report from a provider's `Retry-After` or rate-limit headers. A
/// misbehaving proxy can send "retry in a week"; the retry layer should see a bounded value.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// Most bytes of an error body read into memory.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Response headers that carry a provider's request id, in the order they are tried: the one
/// list (OpenAI, Anthropic, Azure APIM, Azure, Google, AWS gateways). Pre-parsed: looking up by
/// `&str` validates and lower-cases the name on every call.
static REQUEST_ID_HEADERS: [HeaderName; 6] = [
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("request-id"),
    HeaderName::from_static("apim-request-id"),
    HeaderName::from_static("x-ms-request-id"),
    HeaderName::from_static("x-goog-request-id"),
    HeaderName::from_static("x-amzn-requestid"),
];

/// Tuning of the HTTP client. The defaults are what [`default_client`] uses.
#[derive(Debug, Clone)]
pub struct HttpClientOptions {
    /// Time allowed to connect (TCP + TLS). Default [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept. Default 90 s.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host. Default 32.
    pub pool_max_idle_per_host: usize,
    /// TCP keep-alive probe interval. Default 30 s.
    pub tcp_keepalive: Duration,
    /// `User-Agent` header. Default `llmkit/<version>`.
    pub user_agent: String,
}

impl Default for HttpClientOptions {
    fn default() -> Self {
        HttpClientOptions {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
            tcp_keepalive: Duration::from_secs(30),
            user_agent: concat!("llmkit/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Builds a client with these options: rustls, pooling, `TCP_NODELAY` (without it a reused
/// keep-alive connection shows a flat ~40 ms per request: Nagle meets delayed ACK), and
/// `retry::never()` because reqwest 0.13 otherwise retries protocol NACKs on its own, which
/// would hide attempts from llmkit's retry layer and its budgets.
pub fn build_client(options: &HttpClientOptions) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .pool_idle_timeout(options.pool_idle_timeout)
        .pool_max_idle_per_host(options.pool_max_idle_per_host)
        .tcp_nodelay(true)
        .tcp_keepalive(options.tcp_keepalive)
        .user_agent(options.user_agent.clone())
        .retry(reqwest::retry::never())
        .build()
        .map_err(|e| {
            let e = e.without_url();
            Error::config(format!("cannot build the http client: {e}")).with_source(e)
        })
}

/// A new client with the default [`HttpClientOptions`]; providers call it once per model.
///
/// Deliberately not a process-wide static: hyper drives each pooled connection from a task on
/// the runtime that opened it, so when that runtime shuts down (one `#[tokio::test]` ends, a
/// CLI's short-lived runtime is dropped) the connection stays in a shared pool but its driver
/// is gone, and the next request on another runtime fails with "dispatch task is gone". To
/// share one pool between models on the same runtime, build a client once with
/// [`build_client`] and pass it to each model's builder.
pub fn default_client() -> Result<reqwest::Client> {
    build_client(&HttpClientOptions::default())
}

/// The transport settings every provider builder shares: a per-request timeout, extra
/// headers sent with every request (values never print), and optionally a client to share a
/// connection pool. Builders expose them as `timeout`, `header` and `http_client`.
#[derive(Clone, Default)]
pub struct Transport {
    /// Per-request timeout; `None` leaves it to the HTTP client and the pipeline's layers.
    pub timeout: Option<Duration>,
    /// Extra `(name, value)` headers.
    pub headers: Vec<(String, String)>,
    /// The client to send through; `None` builds one with [`default_client`].
    pub client: Option<reqwest::Client>,
}

impl std::fmt::Debug for Transport {
    /// Header names only: values may be gateway tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("timeout", &self.timeout)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("shared_client", &self.client.is_some())
            .finish()
    }
}

/// [`Transport`] checked and ready to send with.
#[derive(Debug, Clone)]
pub struct ResolvedTransport {
    /// Per-request timeout.
    pub timeout: Option<Duration>,
    /// Extra headers, validated.
    pub headers: HeaderMap,
    /// The client.
    pub client: reqwest::Client,
}

impl Transport {
    /// Validates the headers and picks or builds the client.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a header name or value that is not valid HTTP (the value is
    /// never shown), or a client that cannot be built.
    pub fn resolve(self) -> Result<ResolvedTransport> {
        Ok(ResolvedTransport {
            timeout: self.timeout,
            headers: headers_from(self.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?,
            client: match self.client {
                Some(c) => c,
                None => default_client()?,
            },
        })
    }
}

/// The `timeout`, `header` and `http_client` setters of a builder with a `transport: Transport`
/// field, written once for every provider.
#[cfg(any(
    feature = "openai",
    feature = "anthropic",
    feature = "gemini",
    feature = "ollama"
))]
macro_rules! transport_setters {
    () => {
        /// Per-request timeout. Default: none here (the HTTP client's and the pipeline's
        /// timeout layer apply).
        pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
            self.transport.timeout = Some(timeout);
            self
        }

        /// Sends an extra header with every request (a gateway, proxy or auth header).
        /// Default: none. Values never print.
        pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
            self.transport.headers.push((name.into(), value.into()));
            self
        }

        /// Uses this HTTP client instead of building one (to share a pool between models on
        /// one runtime; see [`http::default_client`](crate::http::default_client)).
        pub fn http_client(mut self, client: reqwest::Client) -> Self {
            self.transport.client = Some(client);
            self
        }
    };
}
#[cfg(any(
    feature = "openai",
    feature = "anthropic",
    feature = "gemini",
    feature = "ollama"
))]
pub(crate) use transport_setters;

/// The time one attempt may take: the configured per-request timeout, shortened to what is
/// left of the request's overall deadline. Fails with [`ErrorKind::Timeout`] when the deadline
/// has already passed, so no request is sent that cannot finish in time.
pub(crate) fn effective_timeout(
    configured: Option<Duration>,
    deadline: Option<Instant>,
) -> Result<Option<Duration>> {
    let Some(deadline) = deadline else {
        return Ok(configured);
    };
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::new(
            ErrorKind::Timeout,
            "deadline passed before the request was sent",
        ));
    }
    Ok(Some(configured.map_or(left, |c| c.min(left))))
}

/// Builds a header map from name/value pairs; a bad name or value is a [`ErrorKind::Config`]
/// error naming the header (never its value, which may be a secret).
pub(crate) fn headers_from<'a, I>(pairs: I) -> Result<HeaderMap>
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        insert_header(&mut map, name, value)?;
    }
    Ok(map)
}

/// Inserts one header (replacing an existing one of that name).
pub(crate) fn insert_header(map: &mut HeaderMap, name: &str, value: &str) -> Result<()> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::config(format!("invalid http header name `{name}`")))?;
    let value = HeaderValue::from_str(value)
        .map_err(|_| Error::config(format!("invalid value for http header `{name}`")))?;
    map.insert(name, value);
    Ok(())
}

/// Inserts a secret header (`Authorization: Bearer ...`, `api-key`, `x-api-key`), marked
/// sensitive so hyper's and reqwest's own debug output hide it too.
pub(crate) fn insert_secret_header(
    map: &mut HeaderMap,
    name: &str,
    prefix: &str,
    secret: &SecretString,
) -> Result<()> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| Error::config(format!("invalid http header name `{name}`")))?;
    let mut value =
        HeaderValue::from_str(&format!("{prefix}{}", secret.expose())).map_err(|_| {
            Error::config(format!(
                "the secret for header `{name}` is not a valid header value"
            ))
        })?;
    value.set_sensitive(true);
    map.insert(name, value);
    Ok(())
}

/// One provider operation a request is sent to: the client, the URL, the headers every request
/// carries (auth included, marked sensitive), the per-request timeout, the error mapper, and
/// the header — if the provider documents one — that carries the request's idempotency key.
///
/// This is the one value a provider (built-in or downstream) sends through: per request it
/// shortens the timeout to what is left of [`RequestMeta::deadline`] (no request starts that
/// cannot finish), adds the idempotency key, maps transport failures and non-2xx answers to
/// classified errors, and returns only 2xx responses. Cheap to clone.
///
/// ```
/// use llmkit_providers::http::{Endpoint, ErrorMapper, default_client};
/// use llmkit_providers::SecretString;
///
/// let key = SecretString::new("sk-example");
/// let endpoint = Endpoint::new(default_client()?, "https://api.example.com/v1/generate", ErrorMapper::new("acme", &[]))
///     .auth("x-acme-key", "", &key)?
///     .header("x-acme-version", "2026-01-01")?
///     .idempotency_header("Idempotency-Key")?;
/// assert_eq!(endpoint.url(), "https://api.example.com/v1/generate");
/// assert!(!format!("{endpoint:?}").contains("sk-example"));
/// # Ok::<(), llmkit_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Endpoint {
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    timeout: Option<Duration>,
    mapper: ErrorMapper,
    idempotency_header: Option<HeaderName>,
}

impl std::fmt::Debug for Endpoint {
    /// Header names only: values may be keys or gateway tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .field("provider", &self.mapper.provider())
            .field("idempotency_header", &self.idempotency_header)
            .finish()
    }
}

impl Endpoint {
    /// An endpoint at `url`, sending through `client`, classifying errors with `mapper`. No
    /// headers, no timeout (the client's and the pipeline's apply), no idempotency header.
    pub fn new(client: reqwest::Client, url: impl Into<String>, mapper: ErrorMapper) -> Self {
        Endpoint {
            client,
            url: url.into(),
            headers: HeaderMap::new(),
            timeout: None,
            mapper,
            idempotency_header: None,
        }
    }

    /// The same endpoint at another URL (Gemini's URL names the model of each request).
    #[must_use]
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }

    /// Adds a header sent with every request (replacing one of the same name).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a name or value that is not valid HTTP (never showing the
    /// value).
    pub fn header(mut self, name: &str, value: &str) -> Result<Self> {
        insert_header(&mut self.headers, name, value)?;
        Ok(self)
    }

    /// Adds every header of `headers` (replacing those of the same name).
    #[must_use]
    pub fn headers(mut self, headers: &HeaderMap) -> Self {
        for (name, value) in headers {
            self.headers.insert(name.clone(), value.clone());
        }
        self
    }

    /// Adds the auth header `name: {prefix}{secret}`, marked sensitive, and redacts the secret
    /// from every error this endpoint builds.
    ///
    /// # Errors
    /// [`ErrorKind::Config`] when the secret is not a valid header value.
    pub fn auth(mut self, name: &str, prefix: &str, secret: &SecretString) -> Result<Self> {
        insert_secret_header(&mut self.headers, name, prefix, secret)?;
        self.mapper = self.mapper.with_secret(secret);
        Ok(self)
    }

    /// Per-request timeout. Default: none.
    #[must_use]
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request's [`RequestMeta::idempotency_key`] in this header. Default: not sent
    /// (set it only for a provider that documents such a header).
    ///
    /// # Errors
    /// [`ErrorKind::Config`] for a name that is not a valid HTTP header name.
    pub fn idempotency_header(mut self, name: &str) -> Result<Self> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| Error::config(format!("invalid http header name `{name}`")))?;
        self.idempotency_header = Some(name);
        Ok(self)
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The mapper this endpoint classifies errors with.
    pub fn mapper(&self) -> &ErrorMapper {
        &self.mapper
    }

    /// Sends `body` as JSON with `POST` and returns the response when its status is 2xx. The
    /// timeout bounds the whole exchange including the body.
    ///
    /// # Errors
    /// [`ErrorKind::Timeout`] when `meta`'s deadline has passed (nothing is sent); transport
    /// failures through [`ErrorMapper::transport_error`]; non-2xx responses through
    /// [`ErrorMapper::error_from_response`].
    pub async fn post_json<B: Serialize + ?Sized>(
        &self,
        body: &B,
        meta: &RequestMeta,
    ) -> Result<reqwest::Response> {
        let timeout = effective_timeout(self.timeout, meta.deadline)?;
        let mut builder = self.request(body, meta)?;
        if let Some(t) = timeout {
            builder = builder.timeout(t);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| self.mapper.transport_error(e))?;
        check_status(response, &self.mapper).await
    }

    /// Like [`post_json`](Self::post_json) for streamed replies: the timeout bounds only the
    /// wait for the response headers, because a whole-request timeout would cut a long,
    /// healthy stream.
    ///
    /// # Errors
    /// As [`post_json`](Self::post_json).
    pub async fn post_json_stream<B: Serialize + ?Sized>(
        &self,
        body: &B,
        meta: &RequestMeta,
    ) -> Result<reqwest::Response> {
        let timeout = effective_timeout(self.timeout, meta.deadline)?;
        let send = self.request(body, meta)?.send();
        let response = match timeout {
            Some(t) => tokio::time::timeout(t, send).await.map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("no response headers within {:.1}s", t.as_secs_f64()),
                )
                .with_provider(self.mapper.provider())
            })?,
            None => send.await,
        }
        .map_err(|e| self.mapper.transport_error(e))?;
        check_status(response, &self.mapper).await
    }

    fn request<B: Serialize + ?Sized>(
        &self,
        body: &B,
        meta: &RequestMeta,
    ) -> Result<reqwest::RequestBuilder> {
        let mut headers = self.headers.clone();
        if let (Some(name), Some(key)) = (&self.idempotency_header, &meta.idempotency_key) {
            let value = HeaderValue::from_str(key).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    "the idempotency key is not a valid http header value",
                )
            })?;
            headers.insert(name.clone(), value);
        }
        // W3C trace context of the current span (`traceparent`), when the application traces
        // with OpenTelemetry; a header the propagator writes that is not valid is left out.
        llmkit_core::telemetry::propagation::inject_current(|name, value| {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(n, v);
            }
        });
        Ok(self.client.post(&self.url).headers(headers).json(body))
    }
}

/// Returns the response when its status is 2xx, otherwise the classified error.
pub(crate) async fn check_status(
    response: reqwest::Response,
    mapper: &ErrorMapper,
) -> Result<reqwest::Response> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(mapper.error_from_response(response).await)
    }
}

/// Reads a whole 2xx body as JSON. A body that is not the expected JSON is
/// [`ErrorKind::InvalidResponse`] carrying the provider's request id and a scrubbed excerpt.
pub async fn read_json<T: DeserializeOwned>(
    response: reqwest::Response,
    mapper: &ErrorMapper,
) -> Result<T> {
    let status = response.status().as_u16();
    let request_id = provider_request_id(response.headers());
    let bytes = response
        .bytes()
        .await
        .map_err(|e| mapper.transport_error(e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let body = String::from_utf8_lossy(&bytes);
        let mut err =
            Error::invalid_response(format!("response body is not the expected json: {e}"))
                .with_provider(mapper.provider())
                .with_status(status)
                .with_body_excerpt(&mapper.redact(&body));
        if let Some(id) = request_id {
            err = err.with_provider_request_id(id);
        }
        err
    })
}

/// The provider's request id from the response headers (the first present of the request-id
/// headers the big APIs and gateways use).
pub fn provider_request_id(headers: &HeaderMap) -> Option<String> {
    REQUEST_ID_HEADERS.iter().find_map(|name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    })
}

/// One line of a provider's error classification table.
///
/// A rule matches when every condition it has holds: the HTTP status (when set), the
/// provider's error type or code (when set, compared case-insensitively against both), and a
/// fragment of the provider's message (when set, lower-case). Build with the `const`
/// constructors so tables can be `static`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorRule {
    /// HTTP status this rule applies to; `None` means any.
    pub status: Option<u16>,
    /// Provider error type or code (`insufficient_quota`, `overloaded_error`, `NOT_FOUND`).
    pub code: Option<&'static str>,
    /// A lower-case fragment of the provider's message (`maximum context length`).
    pub message_contains: Option<&'static str>,
    /// The resulting classification.
    pub kind: ErrorKind,
}

impl ErrorRule {
    /// Any response with this status.
    pub const fn status(status: u16, kind: ErrorKind) -> Self {
        ErrorRule {
            status: Some(status),
            code: None,
            message_contains: None,
            kind,
        }
    }

    /// Any response whose error type or code is `code`.
    pub const fn code(code: &'static str, kind: ErrorKind) -> Self {
        ErrorRule {
            status: None,
            code: Some(code),
            message_contains: None,
            kind,
        }
    }

    /// Any response whose message contains `fragment` (give it lower-case).
    pub const fn message(fragment: &'static str, kind: ErrorKind) -> Self {
        ErrorRule {
            status: None,
            code: None,
            message_contains: Some(fragment),
            kind,
        }
    }

    /// Restricts the rule to one status.
    #[must_use]
    pub const fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    fn matches(&self, status: u16, parsed: &ProviderErrorBody, lower_message: &str) -> bool {
        if self.status.is_some_and(|s| s != status) {
            return false;
        }
        if let Some(code) = self.code {
            let hit = [parsed.error_type.as_deref(), parsed.code.as_deref()]
                .into_iter()
                .flatten()
                .any(|c| c.eq_ignore_ascii_case(code));
            if !hit {
                return false;
            }
        }
        if let Some(fragment) = self.message_contains
            && !lower_message.contains(fragment)
        {
            return false;
        }
        self.status.is_some() || self.code.is_some() || self.message_contains.is_some()
    }
}

/// Rules every provider shares, checked after the provider's own table. They cover the
/// vocabulary the big APIs agree on (OpenAI, Azure, Anthropic, Gemini and compatible servers).
pub(crate) static COMMON_RULES: &[ErrorRule] = &[
    // A 429 that means the money is gone, not "slow down".
    ErrorRule::code("insufficient_quota", ErrorKind::QuotaExhausted),
    ErrorRule::code("billing_hard_limit_reached", ErrorKind::QuotaExhausted),
    ErrorRule::message("credit balance is too low", ErrorKind::QuotaExhausted),
    ErrorRule::code("context_length_exceeded", ErrorKind::ContextLength),
    ErrorRule::message("maximum context length", ErrorKind::ContextLength),
    ErrorRule::message("prompt is too long", ErrorKind::ContextLength),
    ErrorRule::message("context window", ErrorKind::ContextLength),
    ErrorRule::code("overloaded_error", ErrorKind::Overloaded),
    ErrorRule::status(529, ErrorKind::Overloaded),
    ErrorRule::message("overloaded", ErrorKind::Overloaded).with_status(503),
    ErrorRule::code("rate_limit_error", ErrorKind::RateLimited),
    ErrorRule::code("rate_limit_exceeded", ErrorKind::RateLimited),
    ErrorRule::code("RESOURCE_EXHAUSTED", ErrorKind::RateLimited),
    ErrorRule::code("content_filter", ErrorKind::ContentFiltered),
    ErrorRule::code("content_policy_violation", ErrorKind::ContentFiltered),
    ErrorRule::code("model_not_found", ErrorKind::NotFound),
    ErrorRule::code("not_found_error", ErrorKind::NotFound),
    ErrorRule::code("DeploymentNotFound", ErrorKind::NotFound),
    ErrorRule::code("invalid_api_key", ErrorKind::Auth),
    ErrorRule::code("authentication_error", ErrorKind::Auth),
    ErrorRule::code("permission_error", ErrorKind::Auth),
    ErrorRule::code("UNAUTHENTICATED", ErrorKind::Auth),
    ErrorRule::code("PERMISSION_DENIED", ErrorKind::Auth),
];

/// The classification of a status when no rule matched.
///
/// 400/409/413/422 and other 4xx → `InvalidRequest`; 401/403 → `Auth`; 402 → `QuotaExhausted`;
/// 404 → `NotFound`; 408/504 → `Timeout`; 429 → `RateLimited`; 529 → `Overloaded`; other 5xx →
/// `Server`; anything else → `Other`.
pub(crate) fn default_kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Auth,
        402 => ErrorKind::QuotaExhausted,
        404 => ErrorKind::NotFound,
        408 | 504 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimited,
        529 => ErrorKind::Overloaded,
        400..=499 => ErrorKind::InvalidRequest,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::Other,
    }
}

/// What a provider's error body said, whatever its dialect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProviderErrorBody {
    /// Human-readable message.
    pub(crate) message: Option<String>,
    /// Error type (`invalid_request_error`, `overloaded_error`, Gemini's `status`).
    pub(crate) error_type: Option<String>,
    /// Error code (`insufficient_quota`, `context_length_exceeded`, a number as text).
    pub(crate) code: Option<String>,
    /// A request id carried in the body (Anthropic's `request_id`).
    pub(crate) request_id: Option<String>,
}

impl ProviderErrorBody {
    /// Parses the error dialects llmkit knows: OpenAI/Azure `{"error":{"message","type","code"}}`,
    /// Anthropic `{"type":"error","error":{"type","message"},"request_id"}`, Gemini
    /// `{"error":{"code":404,"status":"NOT_FOUND","message"}}` (also inside a one-element
    /// array), Ollama `{"error":"text"}` and a bare `{"message"}`. Anything else yields an
    /// empty value; the caller still has the status.
    pub(crate) fn parse(body: &str) -> Self {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
            return ProviderErrorBody::default();
        };
        let value = match value {
            serde_json::Value::Array(items) => items.into_iter().next().unwrap_or_default(),
            v => v,
        };
        let text = |v: Option<&serde_json::Value>| -> Option<String> {
            match v? {
                serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        let mut out = ProviderErrorBody {
            request_id: text(value.get("request_id")),
            ..Default::default()
        };
        match value.get("error") {
            Some(serde_json::Value::String(s)) => out.message = Some(s.clone()),
            Some(err @ serde_json::Value::Object(_)) => {
                out.message = text(err.get("message"));
                out.error_type = text(err.get("type")).or_else(|| text(err.get("status")));
                out.code = text(err.get("code"));
            }
            _ => {
                out.message = text(value.get("message"));
                out.error_type = text(value.get("type")).filter(|t| t != "error");
                out.code = text(value.get("code"));
            }
        }
        out
    }
}

/// Turns failed responses and transport failures into classified [`Error`]s for one provider.
///
/// Holds the provider name, its rule table and the secrets to redact from anything a provider
/// echoes back. Cheap to clone.
#[derive(Clone)]
pub struct ErrorMapper {
    provider: String,
    rules: &'static [ErrorRule],
    secrets: Vec<SecretString>,
}

impl std::fmt::Debug for ErrorMapper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ErrorMapper")
            .field("provider", &self.provider)
            .field("rules", &self.rules.len())
            .finish_non_exhaustive()
    }
}

impl ErrorMapper {
    /// A mapper for `provider` checking `rules` first, then the rules every provider shares,
    /// then the status.
    pub fn new(provider: impl Into<String>, rules: &'static [ErrorRule]) -> Self {
        ErrorMapper {
            provider: provider.into(),
            rules,
            secrets: Vec::new(),
        }
    }

    /// Also redacts this secret (the key the request was sent with) from error text.
    #[must_use]
    pub fn with_secret(mut self, secret: &SecretString) -> Self {
        self.secrets.push(secret.clone());
        self
    }

    /// The provider name errors are stamped with.
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Redacts the known secrets from `text`.
    pub fn redact(&self, text: &str) -> String {
        let refs: Vec<&SecretString> = self.secrets.iter().collect();
        redact_secrets(text, &refs)
    }

    /// The kind for a status and parsed body: first matching rule of the provider table, then
    /// of [`COMMON_RULES`], else [`default_kind_for_status`].
    pub(crate) fn classify(&self, status: u16, body: &ProviderErrorBody) -> ErrorKind {
        let lower = body.message.as_deref().unwrap_or("").to_lowercase();
        self.rules
            .iter()
            .chain(COMMON_RULES.iter())
            .find(|r| r.matches(status, body, &lower))
            .map_or_else(|| default_kind_for_status(status), |r| r.kind)
    }

    /// Builds the error for a non-2xx response from its parts.
    pub fn error_from_parts(&self, status: u16, headers: &HeaderMap, body: &str) -> Error {
        self.error_from_parts_at(status, headers, body, SystemTime::now())
    }

    /// [`error_from_parts`](Self::error_from_parts) with an explicit clock for HTTP-date
    /// `Retry-After` values.
    pub(crate) fn error_from_parts_at(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &str,
        now: SystemTime,
    ) -> Error {
        let parsed = ProviderErrorBody::parse(body);
        let kind = self.classify(status, &parsed);
        let mut err = self
            .base_error(kind, &format!("http {status}"), &parsed, body)
            .with_status(status);
        if let Some(id) = provider_request_id(headers) {
            err = err.with_provider_request_id(id);
        }
        if let Some(wait) = retry_after_at(headers, now).or_else(|| body_retry_delay(body)) {
            err = err.with_retry_after(wait);
        }
        err
    }

    /// Builds the error for an error payload that arrived inside a 200 stream (an SSE
    /// `error` event, an NDJSON `{"error": ...}` line). There is no status to go by: the
    /// provider's code and message decide, and an unrecognized failure counts as
    /// [`ErrorKind::Server`] because the stream broke on the provider's side.
    pub fn error_from_stream_event(&self, body: &str) -> Error {
        let parsed = ProviderErrorBody::parse(body);
        let kind = match self.classify(0, &parsed) {
            ErrorKind::Other => ErrorKind::Server,
            k => k,
        };
        self.base_error(kind, "error event in stream", &parsed, body)
    }

    fn base_error(
        &self,
        kind: ErrorKind,
        prefix: &str,
        parsed: &ProviderErrorBody,
        body: &str,
    ) -> Error {
        let detail = parsed
            .message
            .as_deref()
            .map(|m| {
                let one_line: String = m.split_whitespace().collect::<Vec<_>>().join(" ");
                let short: String = one_line.chars().take(200).collect();
                llmkit_core::error::scrub_excerpt(&self.redact(&short))
            })
            .filter(|m| !m.is_empty());
        let message = match detail {
            Some(d) => format!("{prefix}: {d}"),
            None => prefix.to_owned(),
        };
        let mut err = Error::new(kind, message).with_provider(self.provider.clone());
        if let Some(code) = parsed.code.as_ref().or(parsed.error_type.as_ref()) {
            err = err.with_provider_code(code.clone());
        }
        if let Some(id) = &parsed.request_id {
            err = err.with_provider_request_id(id.clone());
        }
        if !body.trim().is_empty() {
            err = err.with_body_excerpt(&self.redact(body));
        }
        err
    }

    /// Reads a failed response (bounded) and builds its error.
    pub async fn error_from_response(&self, response: reqwest::Response) -> Error {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_body_limited(response, ERROR_BODY_LIMIT).await;
        self.error_from_parts(status, &headers, &body)
    }

    /// Classifies a reqwest failure by its type and source chain, never by message text:
    /// timeouts → [`ErrorKind::Timeout`]; a request that could not be built →
    /// [`ErrorKind::Config`]; connect, send and body failures, and a decode failure caused by
    /// the connection (an I/O or hyper error in its source chain: reset, closed, cut off
    /// mid-body) → [`ErrorKind::Transport`] (retryable); other decode failures →
    /// [`ErrorKind::InvalidResponse`]. The URL is stripped first: it may carry a key (Gemini's
    /// `?key=`).
    pub fn transport_error(&self, e: reqwest::Error) -> Error {
        let e = e.without_url();
        let kind = transport_kind(&e);
        let mut chain = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        let message = llmkit_core::error::scrub_excerpt(&self.redact(&chain));
        Error::new(kind, message.to_lowercase())
            .with_provider(self.provider.clone())
            .with_source(e)
    }
}

/// The kind of a reqwest failure, from its type and its source chain.
fn transport_kind(e: &reqwest::Error) -> ErrorKind {
    if e.is_timeout() || source_chain(e).any(is_timeout_io) {
        ErrorKind::Timeout
    } else if e.is_builder() {
        ErrorKind::Config
    } else if e.is_decode() && !source_chain(e).any(is_connection_failure) {
        // Bytes arrived but are not what was expected (e.g. a broken compressed body).
        ErrorKind::InvalidResponse
    } else {
        // Connect, request, body, redirect and upgrade failures, and decode failures the
        // connection caused: reqwest reports a body cut off mid-way as a decode error, but
        // only the connection is to blame, and a retry may well succeed.
        ErrorKind::Transport
    }
}

/// `e`'s sources, nearest first.
fn source_chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(e.source(), |s| s.source())
}

/// An I/O or hyper error: the connection failed (reset, closed early, incomplete message).
fn is_connection_failure(e: &(dyn std::error::Error + 'static)) -> bool {
    e.is::<std::io::Error>() || e.is::<hyper::Error>()
}

/// An I/O timeout somewhere below reqwest (its own timeouts are `is_timeout`).
fn is_timeout_io(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
}

async fn read_body_limited(response: reqwest::Response, limit: usize) -> String {
    let mut out = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else { break };
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or_default());
        if out.len() >= limit {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The wait a Google API (Gemini, Vertex AI) asks for in the error body rather than in a
/// header: the `retryDelay` of a `google.rpc.RetryInfo` entry in `error.details`, a protobuf
/// JSON duration such as `"13s"` or `"0.500s"`. `None` when absent or malformed.
pub(crate) fn body_retry_delay(body: &str) -> Option<Duration> {
    // Cheap test first: nearly every error body has no such entry.
    if !body.contains("RetryInfo") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let details = value.get("error")?.get("details")?.as_array()?;
    details
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| parse_proto_duration(d.get("retryDelay")?.as_str()?))
}

/// Parses a protobuf JSON duration (`"13s"`, `"1.5s"`, `"0.000001s"`); negative, non-finite
/// or absurd (over a day) values are rejected rather than waited for.
fn parse_proto_duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (seconds.is_finite() && (0.0..=86_400.0).contains(&seconds))
        .then(|| Duration::from_secs_f64(seconds))
}

/// How long the provider asked us to wait, from the headers of a failed response, with an
/// explicit clock for HTTP-date values.
///
/// Tried in order: `retry-after-ms` (milliseconds), `Retry-After` (delta-seconds or an
/// HTTP-date), then OpenAI's `x-ratelimit-reset-requests` / `-tokens` durations (preferring the
/// limit whose `x-ratelimit-remaining-*` is 0). Capped at [`MAX_RETRY_AFTER`].
pub(crate) fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let found = get("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| secs_f64(ms / 1000.0))
        .or_else(|| get("retry-after").and_then(|v| parse_retry_after_value(v, now)))
        .or_else(|| {
            let reset = |limit: &str| {
                get(&format!("x-ratelimit-reset-{limit}")).and_then(parse_go_duration)
            };
            let exhausted =
                |limit: &str| get(&format!("x-ratelimit-remaining-{limit}")) == Some("0");
            let requests = reset("requests");
            let tokens = reset("tokens");
            match (exhausted("requests"), exhausted("tokens")) {
                (true, false) => requests.or(tokens),
                (false, true) => tokens.or(requests),
                _ => requests.max(tokens),
            }
        })?;
    Some(found.min(MAX_RETRY_AFTER))
}

/// Parses a `Retry-After` value: delta-seconds (integer or decimal) or an HTTP-date. A date in
/// the past means "now" (zero).
pub(crate) fn parse_retry_after_value(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return secs_f64(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses a Go-style duration as sent in `x-ratelimit-reset-*` headers: `1s`, `6m0s`, `20ms`,
/// `1h2m3.5s`, `150us`; a bare number is seconds. `None` for anything else.
pub(crate) fn parse_go_duration(value: &str) -> Option<Duration> {
    crate::config::parse_duration(value).map(|d| d.min(MAX_RETRY_AFTER))
}

fn secs_f64(secs: f64) -> Option<Duration> {
    if !secs.is_finite() || secs < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(
        secs.min(MAX_RETRY_AFTER.as_secs_f64()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        headers_from(pairs.iter().copied()).unwrap()
    }

    static OPENAI_LIKE: &[ErrorRule] = &[];

    #[test]
    fn classification_table() {
        let m = ErrorMapper::new("p", OPENAI_LIKE);
        // (status, body, expected kind)
        let cases: &[(u16, &str, ErrorKind)] = &[
            (
                429,
                r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#,
                ErrorKind::RateLimited,
            ),
            (
                429,
                r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
                ErrorKind::QuotaExhausted,
            ),
            (
                429,
                r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
                ErrorKind::RateLimited,
            ),
            (
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                ErrorKind::Overloaded,
            ),
            (529, "", ErrorKind::Overloaded),
            (
                503,
                r#"{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}"#,
                ErrorKind::Overloaded,
            ),
            (503, "upstream down", ErrorKind::Server),
            (
                500,
                r#"{"error":{"message":"internal","type":"server_error"}}"#,
                ErrorKind::Server,
            ),
            (502, "<html>bad gateway</html>", ErrorKind::Server),
            (504, "", ErrorKind::Timeout),
            (
                400,
                r#"{"error":{"message":"This model's maximum context length is 128000 tokens.","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
                ErrorKind::ContextLength,
            ),
            (
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}"#,
                ErrorKind::ContextLength,
            ),
            (
                400,
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#,
                ErrorKind::QuotaExhausted,
            ),
            (
                400,
                r#"{"error":{"code":"unsupported_value","message":"Unsupported value","type":"invalid_request_error"}}"#,
                ErrorKind::InvalidRequest,
            ),
            (
                400,
                r#"{"error":{"code":"content_filter","message":"The response was filtered"}}"#,
                ErrorKind::ContentFiltered,
            ),
            (422, "{}", ErrorKind::InvalidRequest),
            (
                401,
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
                ErrorKind::Auth,
            ),
            (
                403,
                r#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#,
                ErrorKind::Auth,
            ),
            (
                404,
                r#"{"error":{"code":"model_not_found","message":"The model `x` does not exist"}}"#,
                ErrorKind::NotFound,
            ),
            (
                404,
                r#"{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}"#,
                ErrorKind::NotFound,
            ),
            (
                404,
                r#"{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist."}}"#,
                ErrorKind::NotFound,
            ),
            (402, "", ErrorKind::QuotaExhausted),
            (
                429,
                r#"[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]"#,
                ErrorKind::RateLimited,
            ),
            (
                500,
                r#"{"error":"the model failed to generate a response"}"#,
                ErrorKind::Server,
            ),
        ];
        for (status, body, kind) in cases {
            let e = m.error_from_parts(*status, &HeaderMap::new(), body);
            assert_eq!(e.kind(), *kind, "status {status} body {body}");
            assert_eq!(e.status(), Some(*status));
            assert_eq!(e.provider(), Some("p"));
            assert!(!e.message().contains('\n'));
        }
    }

    #[test]
    fn provider_rules_win_over_common() {
        static RULES: &[ErrorRule] =
            &[ErrorRule::code("rate_limit_error", ErrorKind::Overloaded).with_status(429)];
        let m = ErrorMapper::new("p", RULES);
        let body = r#"{"type":"error","error":{"type":"rate_limit_error","message":"x"}}"#;
        assert_eq!(
            m.error_from_parts(429, &HeaderMap::new(), body).kind(),
            ErrorKind::Overloaded
        );
        // Status restriction: the rule does not apply to a 400.
        assert_eq!(
            m.error_from_parts(400, &HeaderMap::new(), body).kind(),
            ErrorKind::RateLimited
        );
    }

    #[test]
    fn keeps_request_id_code_and_excerpt() {
        let m = ErrorMapper::new("openai", OPENAI_LIKE);
        let h = headers(&[("x-request-id", "req_123"), ("retry-after", "7")]);
        let body = r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        let e = m.error_from_parts(429, &h, body);
        assert_eq!(e.provider_request_id(), Some("req_123"));
        assert_eq!(e.provider_code(), Some("rate_limit_exceeded"));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.body_excerpt().unwrap().contains("Rate limit reached"));
        assert_eq!(e.message(), "http 429: Rate limit reached");

        let anthropic = r#"{"type":"error","error":{"type":"not_found_error","message":"model: x"},"request_id":"req_011"}"#;
        let e = m.error_from_parts(404, &HeaderMap::new(), anthropic);
        assert_eq!(e.provider_request_id(), Some("req_011"));
        let h = headers(&[("apim-request-id", "azure-1")]);
        assert_eq!(
            m.error_from_parts(500, &h, "").provider_request_id(),
            Some("azure-1")
        );
    }

    #[test]
    fn echoed_key_is_redacted_everywhere() {
        let key = SecretString::new("plain-but-secret-value");
        let m = ErrorMapper::new("openai", OPENAI_LIKE).with_secret(&key);
        let body = r#"{"error":{"message":"Incorrect API key provided: plain-but-secret-value. Also sk-proj-abcdefghijklmnop123","code":"invalid_api_key"}}"#;
        let e = m.error_from_parts(401, &HeaderMap::new(), body);
        for text in [
            format!("{e}"),
            format!("{e:?}"),
            e.body_excerpt().unwrap().to_owned(),
        ] {
            assert!(!text.contains("plain-but-secret-value"), "{text}");
            assert!(!text.contains("abcdefghijklmnop123"), "{text}");
        }
        assert_eq!(e.kind(), ErrorKind::Auth);
    }

    #[test]
    fn stream_error_events() {
        let m = ErrorMapper::new("p", OPENAI_LIKE);
        let e = m.error_from_stream_event(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Overloaded);
        assert_eq!(e.status(), None);
        assert_eq!(e.message(), "error event in stream: Overloaded");
        let e = m.error_from_stream_event(r#"{"error":"the model failed to generate a response"}"#);
        assert_eq!(e.kind(), ErrorKind::Server);
    }

    #[test]
    fn google_retry_info_in_the_body() {
        let body = r#"{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"13s"}]}}"#;
        assert_eq!(body_retry_delay(body), Some(Duration::from_secs(13)));
        let frac = body.replace("13s", "0.500s");
        assert_eq!(body_retry_delay(&frac), Some(Duration::from_millis(500)));
        for bad in ["-1s", "13", "NaNs", "1e9s", "soon"] {
            assert_eq!(body_retry_delay(&body.replace("13s", bad)), None, "{bad}");
        }
        assert_eq!(
            body_retry_delay(r#"{"error":{"message":"RetryInfo"}}"#),
            None
        );
        assert_eq!(body_retry_delay("not json RetryInfo"), None);
        // A header wins over the body; without one, the body's delay is used.
        let mapper = ErrorMapper::new("gemini", &[]);
        let err = mapper.error_from_parts(429, &HeaderMap::new(), body);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(13)));
        let mut headers = HeaderMap::new();
        headers.insert(
            "retry-after",
            reqwest::header::HeaderValue::from_static("2"),
        );
        let err = mapper.error_from_parts(429, &headers, body);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    }

    #[test]
    fn retry_after_formats() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        type Case<'a> = (Vec<(&'a str, &'a str)>, Option<Duration>);
        let cases: Vec<Case> = vec![
            (vec![("retry-after", "5")], Some(Duration::from_secs(5))),
            (
                vec![("retry-after", "1.5")],
                Some(Duration::from_millis(1500)),
            ),
            (
                vec![("retry-after", date.as_str())],
                Some(Duration::from_secs(30)),
            ),
            (vec![("retry-after", past.as_str())], Some(Duration::ZERO)),
            (
                vec![("retry-after-ms", "250"), ("retry-after", "5")],
                Some(Duration::from_millis(250)),
            ),
            (vec![("retry-after", "999999")], Some(MAX_RETRY_AFTER)),
            (vec![("retry-after", "soon")], None),
            (
                vec![
                    ("x-ratelimit-reset-requests", "1s"),
                    ("x-ratelimit-reset-tokens", "6m0s"),
                ],
                Some(Duration::from_secs(360)),
            ),
            (
                vec![
                    ("x-ratelimit-reset-requests", "1s"),
                    ("x-ratelimit-remaining-requests", "0"),
                    ("x-ratelimit-reset-tokens", "6m0s"),
                    ("x-ratelimit-remaining-tokens", "1000"),
                ],
                Some(Duration::from_secs(1)),
            ),
            (
                vec![("x-ratelimit-reset-tokens", "20ms")],
                Some(Duration::from_millis(20)),
            ),
            (vec![], None),
        ];
        for (pairs, want) in cases {
            assert_eq!(retry_after_at(&headers(&pairs), now), want, "{pairs:?}");
        }
    }

    #[test]
    fn go_durations() {
        let cases: &[(&str, Option<f64>)] = &[
            ("1s", Some(1.0)),
            ("6m0s", Some(360.0)),
            ("20ms", Some(0.02)),
            ("1h2m3.5s", Some(600.0)), // capped at MAX_RETRY_AFTER
            ("2m3.5s", Some(123.5)),
            ("150us", Some(0.00015)),
            ("2", Some(2.0)),
            ("0.5", Some(0.5)),
            ("", None),
            ("1x", None),
            ("s", None),
            ("-1s", None),
            ("1h1h1h", Some(600.0)),
        ];
        for (input, want) in cases {
            let got = parse_go_duration(input).map(|d| d.as_secs_f64());
            match (got, want) {
                (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{input}: {g} vs {w}"),
                (g, w) => assert_eq!(g, *w, "{input}"),
            }
        }
    }

    #[test]
    fn effective_timeout_respects_deadline() {
        assert_eq!(
            effective_timeout(Some(Duration::from_secs(5)), None).unwrap(),
            Some(Duration::from_secs(5))
        );
        let soon = Instant::now() + Duration::from_millis(100);
        let t = effective_timeout(Some(Duration::from_secs(5)), Some(soon))
            .unwrap()
            .unwrap();
        assert!(t <= Duration::from_millis(100));
        let past = Instant::now()
            .checked_sub(Duration::from_millis(1))
            .unwrap();
        assert_eq!(
            effective_timeout(None, Some(past)).unwrap_err().kind(),
            ErrorKind::Timeout
        );
    }

    #[test]
    fn header_errors_never_show_values() {
        let e = headers_from([("x-ok", "bad\nvalue-secret")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("secret"));
        let mut map = HeaderMap::new();
        insert_secret_header(
            &mut map,
            "authorization",
            "Bearer ",
            &SecretString::new("k1"),
        )
        .unwrap();
        assert!(map["authorization"].is_sensitive());
        assert!(!format!("{map:?}").contains("k1"));
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic(s in ".{0,40}") {
            let _ = parse_go_duration(&s);
            let _ = parse_retry_after_value(&s, SystemTime::now());
            let _ = ProviderErrorBody::parse(&s);
            let _ = parse_proto_duration(&s);
            let _ = body_retry_delay(&format!(
                r#"{{"error":{{"details":[{{"@type":"google.rpc.RetryInfo","retryDelay":{}}}]}}}}"#,
                serde_json::Value::String(s.clone())
            ));
        }
    }
}
