//! One error type for every model call in the workspace.
//!
//! [`Error`] is opaque (a boxed inner struct, like `reqwest::Error`): callers ask it questions
//! ([`Error::kind`], [`Error::is_retryable`], [`Error::retry_after`], ...) instead of matching on
//! fields, so new context can be added without breaking anyone. Resilience code decides
//! everything from [`ErrorKind`], in one `match` ([`ErrorKind::is_retryable`]).
//!
//! No secret ever enters an error: body excerpts are bounded and scrubbed of anything that looks
//! like a credential before they are stored.

use std::fmt;
use std::time::Duration;

use crate::request::PromptRef;

/// Convenience alias used throughout llmkit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarse enough for a retry or fallback policy to act on.
///
/// The classification, not the message, drives behaviour: see [`ErrorKind::is_retryable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The provider throttled us (HTTP 429 with a rate-limit meaning); usually carries a retry-after.
    RateLimited,
    /// A 429 or 402 that means the account is out of credit or quota: retrying will not help.
    QuotaExhausted,
    /// An attempt or the overall deadline ran out.
    Timeout,
    /// Connection refused, reset, DNS or TLS failure: nothing useful came back.
    Transport,
    /// The provider answered 5xx.
    Server,
    /// The provider said it is overloaded (Anthropic 529 `overloaded_error`, 503 with that meaning).
    Overloaded,
    /// The prompt plus requested output does not fit the model's context window.
    ContextLength,
    /// The request was rejected as malformed (HTTP 400/422): fix the request, do not retry.
    InvalidRequest,
    /// The model, deployment or endpoint does not exist (HTTP 404).
    NotFound,
    /// Missing, wrong or insufficiently privileged credentials (HTTP 401/403).
    Auth,
    /// The provider refused or filtered the content (safety block, refusal).
    ContentFiltered,
    /// The reply could not be validated or parsed into what was asked for.
    OutputInvalid,
    /// The reply was cut off (token limit reached or stream ended early).
    Truncated,
    /// The provider's response could not be decoded (malformed JSON, unexpected shape).
    InvalidResponse,
    /// A circuit breaker is open for this target; a fallback should take over.
    CircuitOpen,
    /// A spend or token budget would be exceeded.
    BudgetExceeded,
    /// A client-side rate or concurrency limit refused the call without waiting.
    LimitExceeded,
    /// A guardrail blocked the input or output.
    GuardBlocked,
    /// The caller cancelled the call.
    Cancelled,
    /// Configuration is missing or wrong (unknown provider, missing API key, bad URL).
    Config,
    /// The model or provider does not support what was asked (for example embeddings).
    Unsupported,
    /// Anything that fits nowhere else; never retried.
    Other,
}

impl ErrorKind {
    /// Whether a failure of this kind may succeed when tried again unchanged.
    ///
    /// Decided here and only here. `QuotaExhausted` is a 429 that means the money is gone;
    /// `CircuitOpen` is deliberately not retryable so a fallback moves on at once.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Timeout
                | ErrorKind::Transport
                | ErrorKind::Server
        )
    }

    /// A stable lower-case name, used as the `error.type` span attribute and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Transport => "transport",
            ErrorKind::Server => "server",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ContextLength => "context_length",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Auth => "auth",
            ErrorKind::ContentFiltered => "content_filtered",
            ErrorKind::OutputInvalid => "output_invalid",
            ErrorKind::Truncated => "truncated",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::CircuitOpen => "circuit_open",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::GuardBlocked => "guard_blocked",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Config => "config",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest body excerpt kept on an error, in characters. Enough to read a provider's message,
/// small enough that an error never carries a whole prompt echoed back.
pub const BODY_EXCERPT_LIMIT: usize = 512;

/// The error returned by every llmkit model call.
///
/// Build one with [`Error::new`] and the `with_*` methods; read it with the question methods.
/// Constructing an error logs nothing: the tracing layer records it once.
///
/// ```
/// use llmkit_core::{Error, ErrorKind};
/// use std::time::Duration;
///
/// let err = Error::new(ErrorKind::RateLimited, "too many requests")
///     .with_provider("openai")
///     .with_status(429)
///     .with_retry_after(Duration::from_secs(2));
/// assert!(err.is_retryable());
/// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
/// assert_eq!(err.to_string(), "rate_limited: too many requests (provider=openai status=429 retry_after=2s)");
/// ```
pub struct Error(Box<Inner>);

struct Inner {
    kind: ErrorKind,
    message: String,
    provider: Option<String>,
    model: Option<String>,
    request_id: Option<String>,
    provider_request_id: Option<String>,
    provider_code: Option<String>,
    status: Option<u16>,
    retry_after: Option<Duration>,
    body_excerpt: Option<String>,
    prompt: Option<PromptRef>,
    attempts: Vec<Error>,
    unsent: bool,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a one-line, lower-case message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            provider: None,
            model: None,
            request_id: None,
            provider_request_id: None,
            provider_code: None,
            status: None,
            retry_after: None,
            body_excerpt: None,
            prompt: None,
            attempts: Vec::new(),
            unsent: false,
            source: None,
        }))
    }

    /// Shorthand for a [`ErrorKind::Config`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// Shorthand for an [`ErrorKind::InvalidResponse`] error.
    pub fn invalid_response(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidResponse, message)
    }

    /// Names the provider (`openai`, `anthropic`, ...).
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.0.provider = Some(provider.into());
        self
    }

    /// Names the model that was asked.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.0.model = Some(model.into());
        self
    }

    /// Records llmkit's request id for the call.
    #[must_use]
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.0.request_id = Some(id.into());
        self
    }

    /// Records the provider's own request id (for a support ticket).
    #[must_use]
    pub fn with_provider_request_id(mut self, id: impl Into<String>) -> Self {
        self.0.provider_request_id = Some(id.into());
        self
    }

    /// Records the provider's machine-readable error code or type (`overloaded_error`, ...).
    #[must_use]
    pub fn with_provider_code(mut self, code: impl Into<String>) -> Self {
        self.0.provider_code = Some(code.into());
        self
    }

    /// Records the HTTP status.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.0.status = Some(status);
        self
    }

    /// Records how long the provider asked us to wait before trying again.
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.retry_after = Some(after);
        self
    }

    /// Keeps a bounded, scrubbed excerpt of the response body (see [`BODY_EXCERPT_LIMIT`]).
    #[must_use]
    pub fn with_body_excerpt(mut self, body: &str) -> Self {
        self.0.body_excerpt = Some(scrub_excerpt(body));
        self
    }

    /// Records the prompt that produced the failing request.
    #[must_use]
    pub fn with_prompt(mut self, prompt: PromptRef) -> Self {
        self.0.prompt = Some(prompt);
        self
    }

    /// Keeps the errors of the requests actually sent for this logical call (retries, fallback
    /// links), oldest first, this error's own request included when it was sent.
    #[must_use]
    pub fn with_attempts(mut self, attempts: Vec<Error>) -> Self {
        self.0.attempts = attempts;
        self
    }

    /// Marks an error raised before any request was sent (a deadline that passed before the
    /// attempt, a local refusal), so it is not counted as an attempt.
    #[must_use]
    pub fn unsent(mut self) -> Self {
        self.0.unsent = true;
        self
    }

    /// Attaches the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// Replaces the kind, keeping all context (a layer reclassifying an error).
    #[must_use]
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.0.kind = kind;
        self
    }

    /// Fills provider and model when they are not set yet; layers call this on the way out.
    #[must_use]
    pub fn or_context(mut self, provider: &str, model: &str) -> Self {
        if self.0.provider.is_none() {
            self.0.provider = Some(provider.to_owned());
        }
        if self.0.model.is_none() {
            self.0.model = Some(model.to_owned());
        }
        self
    }

    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Whether trying again unchanged may succeed; decided by [`ErrorKind::is_retryable`].
    pub fn is_retryable(&self) -> bool {
        self.0.kind.is_retryable()
    }

    /// The one-line message, without the context suffix that `Display` adds.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The provider that failed, when known.
    pub fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    /// The model that was asked, when known.
    pub fn model(&self) -> Option<&str> {
        self.0.model.as_deref()
    }

    /// llmkit's request id for the call, when known.
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// The provider's request id, when it sent one.
    pub fn provider_request_id(&self) -> Option<&str> {
        self.0.provider_request_id.as_deref()
    }

    /// The provider's error code or type, when it sent one.
    pub fn provider_code(&self) -> Option<&str> {
        self.0.provider_code.as_deref()
    }

    /// The HTTP status, when the failure came from an HTTP response.
    pub fn status(&self) -> Option<u16> {
        self.0.status
    }

    /// How long the provider asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// A bounded, scrubbed excerpt of the response body.
    pub fn body_excerpt(&self) -> Option<&str> {
        self.0.body_excerpt.as_deref()
    }

    /// The prompt behind the failing request.
    pub fn prompt(&self) -> Option<&PromptRef> {
        self.0.prompt.as_ref()
    }

    /// Errors of the requests actually sent for this logical call, oldest first, this error's
    /// own request included when it was sent; empty when no retry or fallback layer collected
    /// them. `attempts().len()` is the number of failed requests (issue 17: it used to count one
    /// more than was sent).
    pub fn attempts(&self) -> &[Error] {
        &self.0.attempts
    }

    /// Whether this error came back from a request that was sent. `false` for errors marked
    /// [`unsent`](Self::unsent) and for local refusals, which never send anything: an open
    /// circuit, a budget or client-side limit, a guard, a configuration problem, an unsupported
    /// operation.
    pub fn request_sent(&self) -> bool {
        !self.0.unsent
            && !matches!(
                self.0.kind,
                ErrorKind::CircuitOpen
                    | ErrorKind::BudgetExceeded
                    | ErrorKind::LimitExceeded
                    | ErrorKind::GuardBlocked
                    | ErrorKind::Config
                    | ErrorKind::Unsupported
            )
    }

    /// How many requests this logical call sent before failing: the collected
    /// [`attempts`](Self::attempts), or 1 or 0 for an error no layer collected attempts for.
    pub fn requests_sent(&self) -> usize {
        if self.0.attempts.is_empty() {
            usize::from(self.request_sent())
        } else {
            self.0.attempts.len()
        }
    }

    /// The errors of the requests this error stands for (see [`requests_sent`](Self::requests_sent)):
    /// what a layer that swallows or wraps it adds to its own attempts.
    pub fn sent_errors(&self) -> Vec<Error> {
        if !self.0.attempts.is_empty() {
            self.0.attempts.clone()
        } else if self.request_sent() {
            vec![self.clone()]
        } else {
            Vec::new()
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.kind, self.0.message)?;
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = &self.0.provider {
            parts.push(format!("provider={p}"));
        }
        if let Some(m) = &self.0.model {
            parts.push(format!("model={m}"));
        }
        if let Some(s) = self.0.status {
            parts.push(format!("status={s}"));
        }
        if let Some(c) = &self.0.provider_code {
            parts.push(format!("code={c}"));
        }
        if let Some(r) = self.0.retry_after {
            parts.push(format!("retry_after={}s", r.as_secs_f64()));
        }
        if let Some(id) = &self.0.request_id {
            parts.push(format!("request_id={id}"));
        }
        if let Some(id) = &self.0.provider_request_id {
            parts.push(format!("provider_request_id={id}"));
        }
        if let Some(p) = &self.0.prompt {
            parts.push(format!("prompt={p}"));
        }
        if !self.0.attempts.is_empty() {
            parts.push(format!("attempts={}", self.0.attempts.len()));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(" "))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.0.kind)
            .field("message", &self.0.message);
        if let Some(v) = &self.0.provider {
            d.field("provider", v);
        }
        if let Some(v) = &self.0.model {
            d.field("model", v);
        }
        if let Some(v) = &self.0.status {
            d.field("status", v);
        }
        if let Some(v) = &self.0.provider_code {
            d.field("provider_code", v);
        }
        if let Some(v) = &self.0.retry_after {
            d.field("retry_after", v);
        }
        if let Some(v) = &self.0.request_id {
            d.field("request_id", v);
        }
        if let Some(v) = &self.0.provider_request_id {
            d.field("provider_request_id", v);
        }
        if let Some(v) = &self.0.body_excerpt {
            d.field("body_excerpt", v);
        }
        if let Some(v) = &self.0.prompt {
            d.field("prompt", v);
        }
        if !self.0.attempts.is_empty() {
            d.field("attempts", &self.0.attempts);
        }
        if let Some(v) = &self.0.source {
            d.field("source", v);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl Clone for Error {
    /// Clones everything but the `source` chain, which is not `Clone`; its text survives in the
    /// message of the clone's context. Needed so single-flight and idempotency layers can hand
    /// one failure to many waiters.
    fn clone(&self) -> Self {
        let mut e = Error::new(self.0.kind, self.0.message.clone());
        e.0.provider.clone_from(&self.0.provider);
        e.0.model.clone_from(&self.0.model);
        e.0.request_id.clone_from(&self.0.request_id);
        e.0.provider_request_id
            .clone_from(&self.0.provider_request_id);
        e.0.provider_code.clone_from(&self.0.provider_code);
        e.0.status = self.0.status;
        e.0.retry_after = self.0.retry_after;
        e.0.body_excerpt.clone_from(&self.0.body_excerpt);
        e.0.prompt.clone_from(&self.0.prompt);
        e.0.attempts.clone_from(&self.0.attempts);
        e.0.unsent = self.0.unsent;
        if let Some(src) = &self.0.source {
            e.0.source = Some(Box::new(SourceText(src.to_string())));
        }
        e
    }
}

#[derive(Debug)]
struct SourceText(String);

impl fmt::Display for SourceText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SourceText {}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(ErrorKind::InvalidResponse, format!("json: {e}")).with_source(e)
    }
}

/// Bounds a body to [`BODY_EXCERPT_LIMIT`] characters and masks anything that looks like a
/// credential. Providers sometimes echo part of a key back ("Incorrect API key provided:
/// sk-abc...xyz"); a masked excerpt is still enough to read the error.
pub fn scrub_excerpt(body: &str) -> String {
    let mut out = String::with_capacity(body.len().min(BODY_EXCERPT_LIMIT + 16));
    for (i, word) in body.split_inclusive(char::is_whitespace).enumerate() {
        if i > 0 && out.chars().count() >= BODY_EXCERPT_LIMIT {
            break;
        }
        let trimmed = word.trim_end();
        if looks_like_secret(trimmed) {
            out.push_str("[redacted]");
            out.push_str(&word[trimmed.len()..]);
        } else {
            out.push_str(word);
        }
    }
    if out.chars().count() > BODY_EXCERPT_LIMIT {
        out = out.chars().take(BODY_EXCERPT_LIMIT).collect();
        out.push('…');
    }
    out
}

/// A token is treated as a secret when it carries a well-known key prefix, or is long, mixes
/// letters and digits and has no spaces: the shape of API keys and bearer tokens.
fn looks_like_secret(token: &str) -> bool {
    let core = token.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    // Key prefixes come from the one table of credential shapes (`crate::secrets`).
    if core.len() >= 12 && (crate::secrets::has_key_prefix(core) || core.starts_with("Bearer")) {
        return true;
    }
    if core.len() < 24 {
        return false;
    }
    let key_chars = core
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*'));
    let digits = core.chars().filter(char::is_ascii_digit).count();
    let letters = core.chars().filter(char::is_ascii_alphabetic).count();
    key_chars && digits >= 3 && letters >= 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_table() {
        use ErrorKind::*;
        let table = [
            (RateLimited, true),
            (QuotaExhausted, false),
            (Timeout, true),
            (Transport, true),
            (Server, true),
            (Overloaded, true),
            (ContextLength, false),
            (InvalidRequest, false),
            (NotFound, false),
            (Auth, false),
            (ContentFiltered, false),
            (OutputInvalid, false),
            (Truncated, false),
            (InvalidResponse, false),
            (CircuitOpen, false),
            (BudgetExceeded, false),
            (LimitExceeded, false),
            (GuardBlocked, false),
            (Cancelled, false),
            (Config, false),
            (Unsupported, false),
            (Other, false),
        ];
        for (kind, retryable) in table {
            assert_eq!(kind.is_retryable(), retryable, "{kind}");
            assert_eq!(Error::new(kind, "x").is_retryable(), retryable, "{kind}");
        }
    }

    #[test]
    fn excerpt_masks_keys_and_is_bounded() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-proj-abc123DEF456ghi789. You can find your key"}}"#;
        let e = Error::new(ErrorKind::Auth, "bad key").with_body_excerpt(body);
        let excerpt = e.body_excerpt().unwrap();
        assert!(!excerpt.contains("abc123DEF456ghi789"), "{excerpt}");
        assert!(excerpt.contains("Incorrect API key provided"));
        assert!(!format!("{e:?}").contains("abc123DEF456"));

        let long = "word ".repeat(1000);
        let e = Error::new(ErrorKind::Server, "boom").with_body_excerpt(&long);
        assert!(e.body_excerpt().unwrap().chars().count() <= BODY_EXCERPT_LIMIT + 1);
    }

    #[test]
    fn clone_keeps_context_and_attempts() {
        let first = Error::new(ErrorKind::Server, "500");
        let e = Error::new(ErrorKind::Timeout, "slow")
            .with_provider("p")
            .with_model("m")
            .with_status(504)
            .with_attempts(vec![first])
            .with_source(std::io::Error::other("io"));
        let c = e.clone();
        assert_eq!(c.kind(), ErrorKind::Timeout);
        assert_eq!(c.provider(), Some("p"));
        assert_eq!(c.attempts().len(), 1);
        assert_eq!(
            std::error::Error::source(&c).map(|s| s.to_string()),
            Some("io".into())
        );
    }

    #[test]
    fn attempts_count_requests_actually_sent() {
        // One attempt, kept by a retry layer: "attempts=1", never "after 1 earlier attempts".
        let sent = Error::new(ErrorKind::Server, "500");
        let e = sent.clone().with_attempts(sent.sent_errors());
        assert_eq!(e.requests_sent(), 1);
        assert!(e.to_string().ends_with("(attempts=1)"), "{e}");
        // Nothing sent: an open circuit, a deadline that passed before the attempt.
        let open = Error::new(ErrorKind::CircuitOpen, "open");
        assert_eq!((open.requests_sent(), open.sent_errors().len()), (0, 0));
        let late = Error::new(ErrorKind::Timeout, "deadline passed before the attempt").unsent();
        assert!(!late.clone().request_sent());
        assert_eq!(
            Error::new(ErrorKind::Timeout, "attempt timed out").requests_sent(),
            1
        );
    }

    #[test]
    fn display_is_one_line() {
        let e = Error::new(ErrorKind::Auth, "missing api key: set OPENAI_API_KEY")
            .with_provider("openai");
        let s = e.to_string();
        assert!(!s.contains('\n'));
        assert_eq!(
            s,
            "auth: missing api key: set OPENAI_API_KEY (provider=openai)"
        );
    }
}
