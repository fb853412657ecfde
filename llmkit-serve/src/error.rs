//! llmkit errors as OpenAI error responses: `{"error": {"message", "type", "param", "code"}}`
//! with the HTTP status a client's retry logic expects.
//!
//! The status decides what an OpenAI SDK does next (its retry loop retries 408, 409, 429 and
//! 5xx, honouring `Retry-After`), so the mapping follows meaning, not the upstream status:
//! a refusal by a local limit or budget is a 429 with `Retry-After`, an open circuit a 503,
//! a spent deadline a 504, a malformed request a 400, and an upstream failure a 502.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use llmkit_core::{Error, ErrorKind};
use serde::Serialize;

use crate::wire::BadRequest;

/// Wait a client is told when a budget refuses and the error carries no hint of its own: budget
/// windows are long, so an immediate retry would only be refused again.
pub const DEFAULT_BUDGET_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Wait a client is told when a limit refuses without saying how long to wait.
pub const DEFAULT_LIMIT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// An error response in OpenAI's shape. Build one from an llmkit [`Error`] with
/// [`ApiError::from_error`] or directly with [`ApiError::new`]; it is an axum
/// [`IntoResponse`].
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    code: String,
    message: String,
    param: Option<String>,
    retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

impl ApiError {
    /// An error with this status, OpenAI `type` (`invalid_request_error`, `rate_limit_error`,
    /// `server_error`, ...), `code` and message.
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code: code.into(),
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    /// A 400 `invalid_request_error` about one request field.
    pub fn bad_request(param: impl Into<String>, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            message,
        );
        e.param = Some(param.into());
        e
    }

    /// A 401 for a missing or wrong API key (the message never repeats the key).
    pub fn unauthorized() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request_error",
            "invalid_api_key",
            "missing or invalid api key",
        )
    }

    /// Maps an llmkit error. The message is the error's own `Display`, which llmkit keeps free of
    /// secrets (bounded, scrubbed body excerpts; no headers).
    pub fn from_error(err: &Error) -> Self {
        let (status, kind) = status_of(err.kind());
        let retry_after = match err.kind() {
            ErrorKind::BudgetExceeded => {
                Some(err.retry_after().unwrap_or(DEFAULT_BUDGET_RETRY_AFTER))
            }
            ErrorKind::LimitExceeded | ErrorKind::RateLimited => {
                Some(err.retry_after().unwrap_or(DEFAULT_LIMIT_RETRY_AFTER))
            }
            ErrorKind::CircuitOpen | ErrorKind::Overloaded => err.retry_after(),
            _ => None,
        };
        ApiError {
            status,
            kind,
            code: err.kind().as_str().to_owned(),
            message: err.to_string(),
            param: None,
            retry_after,
        }
    }

    /// Sets the `Retry-After` the response carries (whole seconds, rounded up).
    #[must_use]
    pub fn with_retry_after(mut self, wait: Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The `code` field (llmkit's [`ErrorKind::as_str`] for mapped errors).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The `Retry-After` wait, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The JSON body (`{"error": {...}}`), also used for errors sent inside an SSE stream.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: &self.code,
            },
        })
        .unwrap_or(serde_json::Value::Null)
    }
}

impl From<BadRequest> for ApiError {
    fn from(b: BadRequest) -> Self {
        ApiError::bad_request(b.param, b.message)
    }
}

impl From<&Error> for ApiError {
    fn from(err: &Error) -> Self {
        ApiError::from_error(err)
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        ApiError::from_error(&err)
    }
}

/// Status and OpenAI error `type` for each kind; one table, tested as a table.
pub fn status_of(kind: ErrorKind) -> (StatusCode, &'static str) {
    use ErrorKind as K;
    match kind {
        K::InvalidRequest | K::ContextLength | K::Unsupported => {
            (StatusCode::BAD_REQUEST, "invalid_request_error")
        }
        // A guard or the provider's filter refused the content: the request must change.
        K::GuardBlocked | K::ContentFiltered => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        K::RateLimited | K::LimitExceeded => (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error"),
        K::BudgetExceeded | K::QuotaExhausted => {
            (StatusCode::TOO_MANY_REQUESTS, "insufficient_quota")
        }
        K::CircuitOpen | K::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "server_error"),
        K::Timeout => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
        // The upstream failed or answered something unusable: a gateway error, not the client's.
        K::Transport
        | K::Server
        | K::InvalidResponse
        | K::Truncated
        | K::OutputInvalid
        | K::Auth
        | K::NotFound => (StatusCode::BAD_GATEWAY, "server_error"),
        // nginx's "client closed request": nobody is left to read it, but logs stay honest.
        K::Cancelled => (
            StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
            "cancelled",
        ),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up, never 0: a client told "0" would retry at once.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table() {
        use ErrorKind as K;
        for (kind, status) in [
            (K::InvalidRequest, 400),
            (K::GuardBlocked, 400),
            (K::RateLimited, 429),
            (K::LimitExceeded, 429),
            (K::BudgetExceeded, 429),
            (K::QuotaExhausted, 429),
            (K::CircuitOpen, 503),
            (K::Overloaded, 503),
            (K::Timeout, 504),
            (K::Server, 502),
            (K::Transport, 502),
            (K::Auth, 502),
            (K::Config, 500),
        ] {
            assert_eq!(status_of(kind).0.as_u16(), status, "{kind}");
        }
    }

    #[test]
    fn refusals_carry_retry_after() {
        let budget = ApiError::from_error(&Error::new(ErrorKind::BudgetExceeded, "over"));
        assert_eq!(budget.retry_after(), Some(DEFAULT_BUDGET_RETRY_AFTER));
        let limit = ApiError::from_error(
            &Error::new(ErrorKind::LimitExceeded, "busy")
                .with_retry_after(Duration::from_millis(1500)),
        );
        let response = limit.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2", "rounded up");
        let open = ApiError::from_error(&Error::new(ErrorKind::Server, "boom"));
        assert_eq!(open.retry_after(), None);
    }

    #[test]
    fn body_has_openai_shape() {
        let e = ApiError::bad_request("messages", "messages must not be empty");
        assert_eq!(
            e.body(),
            serde_json::json!({"error": {"message": "messages must not be empty",
                "type": "invalid_request_error", "param": "messages", "code": "invalid_request"}})
        );
    }
}
