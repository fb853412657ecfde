//! The fault matrix: every provider × every fault → one classified outcome and one upstream
//! request count, asserted row by row (issue 17).
//!
//! Each row points a real provider (built by `llmkit::providers::factory::from_config`, as an
//! application would) at a local fault-injecting server (`tests/support/fault_server.rs`) and
//! drives it through the same small stack, so request counts are comparable across providers:
//!
//! `RetryLayer` (3 attempts, fixed 10 ms backoff, Retry-After honoured up to 3 s, no budget)
//! → `TimeoutLayer` (1 s per attempt, first token and idle) → provider.
//!
//! The expectations are the contract in DESIGN.md (Errors) and the issue: retryable kinds
//! (RateLimited, Overloaded, Timeout, Transport, Server) are retried up to the attempt limit,
//! Retry-After (seconds or HTTP-date) is waited out, QuotaExhausted / InvalidRequest /
//! InvalidResponse are not retried, a stream cut before the provider's end marker ends with
//! `Err(Truncated)` (never silently, never with `Done`), a failure after tokens reached the
//! caller is never retried, and a schema-violating structured reply is re-asked by
//! `Structured` (never by the retry layer).
//!
//! Payloads are real provider recordings (`tests/fixtures/fault_matrix/`, provenance in its
//! README) where one exists; the error bodies no redistributable source records are written
//! below in each provider's documented error shape.
//!
//! Real sockets need the real clock (a paused tokio clock would jump ahead while the runtime
//! waits on I/O), so rows run concurrently with short timings (the slowest rows: a stall, 3 × 1 s;
//! the HTTP-date Retry-After, 2–3 s). The whole matrix took 21–28 s in a debug build on a
//! shared, loaded 2-core machine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "support/fault_server.rs"]
mod fault_server;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fault_server::{Fault, FaultServer};
use futures::StreamExt;
use llmkit::core::resilience::{Backoff, Jitter, RetryLayer, TimeoutLayer};
use llmkit::core::structured::Structured;
use llmkit::core::{ChatModel, ChatRequest, ErrorKind, Layer, StreamEvent};
use llmkit::providers::factory::from_config;
use llmkit::providers::{ProviderConfig, ProviderKind};
use serde_json::{Value, json};

/// Attempts the retry layer makes, the first included.
const ATTEMPTS: usize = 3;
/// Per-attempt bound of the timeout layer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a stalled server waits before answering: far past [`ATTEMPT_TIMEOUT`].
const STALL: Duration = Duration::from_secs(10);
/// No row may take this long: a stall or a Retry-After that is not bounded shows up here.
const ROW_LIMIT: Duration = Duration::from_secs(8);
/// Rows run at once. The machine this runs on is shared; more rows at once only make the
/// 1 s attempt timeout fire on a starved runtime instead of on the fault.
const CONCURRENCY: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    OpenAi,
    Azure,
    Anthropic,
    Gemini,
    Vertex,
    Ollama,
    /// A generic OpenAI-compatible server (vLLM, llama.cpp, Ollama's `/v1`).
    Compatible,
}

const PROVIDERS: [Provider; 7] = [
    Provider::OpenAi,
    Provider::Azure,
    Provider::Anthropic,
    Provider::Gemini,
    Provider::Vertex,
    Provider::Ollama,
    Provider::Compatible,
];

impl Provider {
    fn name(self) -> &'static str {
        match self {
            Provider::OpenAi => "openai",
            Provider::Azure => "azure",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Vertex => "vertex",
            Provider::Ollama => "ollama",
            Provider::Compatible => "compatible",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultCase {
    /// Control: a healthy answer.
    Healthy,
    /// Control: a complete stream.
    StreamHealthy,
    /// 429 with `Retry-After: 1`, then an answer.
    RetryAfterSeconds,
    /// 429 with `Retry-After: <HTTP-date 3 s ahead>`, then an answer.
    RetryAfterDate,
    /// The provider's "out of quota / credit" answer.
    QuotaExhausted,
    /// The provider's 400 for a malformed request.
    InvalidRequest,
    Status500,
    Status503,
    /// The provider's own overloaded signal (Anthropic 529, Google UNAVAILABLE, ...).
    Overloaded,
    /// No response headers until long past the attempt timeout.
    Stall,
    /// The connection is reset after the request, before any response byte.
    ResetBeforeBody,
    /// Headers and half the body, then a reset.
    ResetMidBody,
    /// A 200 whose body is an HTML page.
    NotJson,
    /// A stream that ends cleanly at the HTTP level before the provider's end marker.
    TruncatedStream,
    /// A stream whose connection is reset after tokens reached the caller.
    StreamResetAfterTokens,
    /// A stream request answered 429 with `Retry-After: 1`, then a complete stream.
    StreamRetryAfter,
    /// A stream request whose response headers never come.
    StreamStallBeforeFirstToken,
    /// A stream that goes silent after tokens reached the caller.
    StreamStallAfterTokens,
    /// A stream whose first event is the provider's in-stream error.
    StreamErrorBeforeTokens,
    /// A stream that carries the provider's in-stream error after tokens.
    StreamErrorAfterTokens,
    /// A structured reply that violates the schema, then a valid one.
    SchemaViolationThenValid,
    /// Structured replies that keep violating the schema.
    SchemaViolationPersists,
}

/// How a row's call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// An answer (chat/structured), or a stream that ended with exactly one `Done`.
    Answered,
    /// The call, or the stream, ended with an error of this kind.
    Failed(ErrorKind),
    /// A stream that ended with neither `Done` nor an error: a cut reply passed off as whole.
    EndedSilently,
    /// A stream with more than one `Done`, or events after it.
    EventsAfterDone,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Answered => f.write_str("ok"),
            Outcome::Failed(kind) => f.write_str(kind.as_str()),
            Outcome::EndedSilently => f.write_str("SILENT-END"),
            Outcome::EventsAfterDone => f.write_str("AFTER-DONE"),
        }
    }
}

/// One line of the matrix: a fault, the outcome every provider must show (with the
/// classification differences each provider's error table documents), and the upstream
/// request count, the same for every provider.
struct Row {
    fault: FaultCase,
    outcome: Outcome,
    /// Providers whose own error vocabulary classifies this fault differently.
    except: &'static [(Provider, ErrorKind)],
    /// Providers for which the fault has no equivalent, with the reason.
    not_applicable: &'static [(Provider, &'static str)],
    requests: usize,
    /// The row must take at least this long (a Retry-After that must be waited out).
    min_elapsed: Duration,
}

const fn row(fault: FaultCase, outcome: Outcome, requests: usize) -> Row {
    Row {
        fault,
        outcome,
        except: &[],
        not_applicable: &[],
        requests,
        min_elapsed: Duration::ZERO,
    }
}

const fn failed(kind: ErrorKind) -> Outcome {
    Outcome::Failed(kind)
}

/// The matrix. `ATTEMPTS` requests = retried to the limit; 1 = not retried; 2 = one retry or
/// one re-ask, then success.
const MATRIX: &[Row] = &[
    row(FaultCase::Healthy, Outcome::Answered, 1),
    row(FaultCase::StreamHealthy, Outcome::Answered, 1),
    Row {
        min_elapsed: Duration::from_secs(1),
        ..row(FaultCase::RetryAfterSeconds, Outcome::Answered, 2)
    },
    Row {
        // The server writes the date 2 s ahead of the moment it answers the 429; the date
        // has one-second resolution, so more than 1 s remains when the client reads it.
        min_elapsed: Duration::from_secs(1),
        ..row(FaultCase::RetryAfterDate, Outcome::Answered, 2)
    },
    Row {
        not_applicable: &[(Provider::Ollama, "a local server has no quota or billing")],
        ..row(
            FaultCase::QuotaExhausted,
            failed(ErrorKind::QuotaExhausted),
            1,
        )
    },
    row(
        FaultCase::InvalidRequest,
        failed(ErrorKind::InvalidRequest),
        1,
    ),
    row(FaultCase::Status500, failed(ErrorKind::Server), ATTEMPTS),
    Row {
        // Google's 503 is always `UNAVAILABLE` and Ollama's only 503 is "server busy": both
        // tables map them to Overloaded (retryable either way).
        except: &[
            (Provider::Gemini, ErrorKind::Overloaded),
            (Provider::Vertex, ErrorKind::Overloaded),
            (Provider::Ollama, ErrorKind::Overloaded),
        ],
        ..row(FaultCase::Status503, failed(ErrorKind::Server), ATTEMPTS)
    },
    row(
        FaultCase::Overloaded,
        failed(ErrorKind::Overloaded),
        ATTEMPTS,
    ),
    row(FaultCase::Stall, failed(ErrorKind::Timeout), ATTEMPTS),
    row(
        FaultCase::ResetBeforeBody,
        failed(ErrorKind::Transport),
        ATTEMPTS,
    ),
    row(
        FaultCase::ResetMidBody,
        failed(ErrorKind::Transport),
        ATTEMPTS,
    ),
    row(FaultCase::NotJson, failed(ErrorKind::InvalidResponse), 1),
    row(FaultCase::TruncatedStream, failed(ErrorKind::Truncated), 1),
    row(
        FaultCase::StreamResetAfterTokens,
        failed(ErrorKind::Transport),
        1,
    ),
    Row {
        min_elapsed: Duration::from_secs(1),
        ..row(FaultCase::StreamRetryAfter, Outcome::Answered, 2)
    },
    row(
        FaultCase::StreamStallBeforeFirstToken,
        failed(ErrorKind::Timeout),
        ATTEMPTS,
    ),
    // After tokens reached the caller nothing is retried: the caller holds a partial answer.
    row(
        FaultCase::StreamStallAfterTokens,
        failed(ErrorKind::Timeout),
        1,
    ),
    Row {
        except: STREAM_ERROR_KINDS,
        not_applicable: NO_STREAM_ERROR_RECORDING,
        ..row(
            FaultCase::StreamErrorBeforeTokens,
            failed(ErrorKind::Server),
            ATTEMPTS,
        )
    },
    Row {
        except: STREAM_ERROR_KINDS,
        not_applicable: NO_STREAM_ERROR_RECORDING,
        ..row(
            FaultCase::StreamErrorAfterTokens,
            failed(ErrorKind::Server),
            1,
        )
    },
    row(FaultCase::SchemaViolationThenValid, Outcome::Answered, 2),
    row(
        FaultCase::SchemaViolationPersists,
        failed(ErrorKind::OutputInvalid),
        STRUCTURED_ATTEMPTS,
    ),
];

/// In-stream errors: OpenAI-shaped `server_error` and Ollama's untyped error are Server;
/// Anthropic's `overloaded_error` event is Overloaded.
const STREAM_ERROR_KINDS: &[(Provider, ErrorKind)] =
    &[(Provider::Anthropic, ErrorKind::Overloaded)];

/// Google documents no in-stream error event for `streamGenerateContent?alt=sse`, and no
/// redistributable recording shows one.
const NO_STREAM_ERROR_RECORDING: &[(Provider, &str)] = &[
    (
        Provider::Gemini,
        "no documented or recorded in-stream error event",
    ),
    (
        Provider::Vertex,
        "no documented or recorded in-stream error event",
    ),
];

/// Attempts `Structured` makes in the schema rows.
const STRUCTURED_ATTEMPTS: usize = 2;

/// The value the structured rows ask for.
#[derive(Debug, PartialEq, serde::Deserialize, schemars::JsonSchema)]
struct City {
    name: String,
    population: u64,
}

fn valid_city() -> Value {
    json!({"name": "Lyon", "population": 522_000})
}

fn invalid_city() -> Value {
    json!({"name": "Lyon", "population": "about half a million"})
}

// ---------------------------------------------------------------------------------------------
// Each provider's wire: configuration, fixtures, error bodies.

macro_rules! fixture {
    ($path:literal) => {
        include_str!(concat!("fixtures/fault_matrix/", $path))
    };
}

/// How a provider streams.
struct StreamWire {
    content_type: &'static str,
    /// A complete recorded stream.
    recording: &'static str,
    /// Frame separator of the recording.
    separator: &'static str,
    /// A fragment of the first frame that marks the end of the reply; the truncated stream is
    /// every frame before it.
    end_marker: &'static str,
}

impl StreamWire {
    fn frames(&self) -> Vec<String> {
        self.recording
            .split(self.separator)
            .filter(|f| !f.trim().is_empty())
            .map(|f| format!("{}{}", f.trim_matches(['\r', '\n']), self.separator))
            .collect()
    }

    fn cut(&self) -> Vec<String> {
        let frames = self.frames();
        let end = frames
            .iter()
            .position(|f| f.contains(self.end_marker))
            .expect("the recording has its end marker");
        assert!(end > 0, "tokens come before the end marker");
        frames[..end].to_vec()
    }
}

const OPENAI_STREAM: StreamWire = StreamWire {
    content_type: "text/event-stream",
    recording: fixture!("openai/chat-stream-text.sse"),
    separator: "\n\n",
    end_marker: r#""finish_reason":""#,
};

/// Anthropic's documented error envelope.
fn anthropic_error(kind: &str, message: &str) -> String {
    json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
}

/// OpenAI's (and Azure's, and compatible servers') error envelope.
fn openai_error(message: &str, kind: &str, code: Value) -> String {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}}).to_string()
}

/// Google's `google.rpc.Status` error envelope.
fn google_error(code: u16, status: &str, message: &str) -> String {
    json!({"error": {"code": code, "message": message, "status": status}}).to_string()
}

/// Ollama's error envelope (`{"error": "..."}`, docs/api/errors.mdx).
fn ollama_error(message: &str) -> String {
    json!({ "error": message }).to_string()
}

/// What the matrix needs from one provider.
struct Wire {
    config: ProviderConfig,
    /// Path prefix every request must go to.
    path: String,
    /// A recorded successful reply and its text.
    ok_body: &'static str,
    ok_text: String,
    stream: StreamWire,
    rate_limited: String,
    quota: (u16, String),
    invalid_request: (u16, String),
    status_500: String,
    status_503: String,
    overloaded: (u16, String),
    /// The provider's in-stream error event, as one frame.
    stream_error: String,
}

const SECRET: &str = "sk-fault-matrix-0000000000000000";

/// OpenAI, Azure and compatible servers share the wire and the error vocabulary.
fn openai_like(path: &str, ok_body: &'static str, config: ProviderConfig) -> Wire {
    Wire {
        path: path.to_owned(),
        config,
        ok_body,
        ok_text: text_at(ok_body, "/choices/0/message/content"),
        stream: OPENAI_STREAM,
        rate_limited: openai_error(
            "Rate limit reached for gpt-4o-mini in organization org-fault on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
            "requests",
            json!("rate_limit_exceeded"),
        ),
        quota: (
            429,
            openai_error(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                json!("insufficient_quota"),
            ),
        ),
        invalid_request: (
            400,
            fixture!("openai/error-400-unsupported-value.response.json").to_owned(),
        ),
        status_500: openai_error(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            Value::Null,
        ),
        // Cloudflare's answer in front of the API.
        status_503: openai_error("Service Unavailable.", "cf_service_unavailable", json!(503)),
        // OpenAI's documented 503 "The engine is currently overloaded, please try again later".
        overloaded: (
            503,
            openai_error(
                "The engine is currently overloaded, please try again later.",
                "server_error",
                Value::Null,
            ),
        ),
        // What the official SDKs check every `data:` payload for.
        stream_error: format!(
            "data: {}\n\n",
            openai_error(
                "The server had an error while processing your request. Sorry about that!",
                "server_error",
                Value::Null,
            )
        ),
    }
}

fn text_at(body: &str, pointer: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap()
        .to_owned()
}

fn wire(p: Provider, server: &FaultServer) -> Wire {
    let timeout = Duration::from_secs(30);
    let google = |config: ProviderConfig, ok_body: &'static str, path: String| Wire {
        path,
        config,
        ok_body,
        ok_text: text_at(ok_body, "/candidates/0/content/parts/0/text"),
        stream: StreamWire {
            content_type: "text/event-stream",
            recording: fixture!("gemini/stream-generate-content.sse"),
            // Google ends SSE lines with CRLF.
            separator: "\r\n\r\n",
            end_marker: "finishReason",
        },
        rate_limited: google_error(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        quota: (
            429,
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Generate Content API requests per day' and limit 'GenerateContent request limit per day' of service 'generativelanguage.googleapis.com'.",
            ),
        ),
        invalid_request: (
            400,
            fixture!("gemini/vertex-error-400-invalid-argument.response.json").to_owned(),
        ),
        status_500: google_error(
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
        ),
        status_503: google_error(503, "UNAVAILABLE", "The service is currently unavailable."),
        overloaded: (
            503,
            google_error(
                503,
                "UNAVAILABLE",
                "The model is overloaded. Please try again later.",
            ),
        ),
        stream_error: String::new(),
    };
    match p {
        Provider::OpenAi => openai_like(
            "/v1/chat/completions",
            fixture!("openai/chat-basic.response.json"),
            ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o-mini")
                .with_api_key(SECRET)
                .with_base_url(server.base_url())
                .with_timeout(timeout),
        ),
        Provider::Azure => openai_like(
            "/openai/deployments/gpt-4o/chat/completions?api-version=",
            fixture!("azure/chat-completion.response.json"),
            ProviderConfig::new(ProviderKind::Azure, "gpt-4o")
                .with_api_key(SECRET)
                .with_base_url(server.origin())
                .with_timeout(timeout),
        ),
        Provider::Compatible => openai_like(
            "/v1/chat/completions",
            fixture!("ollama/v1-chat-structured-output.response.json"),
            ProviderConfig::new(ProviderKind::OpenAiCompatible, "qwen3:0.6b")
                .with_base_url(server.base_url())
                .with_timeout(timeout),
        ),
        Provider::Anthropic => {
            let ok = fixture!("anthropic/messages-tool-result.response.json");
            Wire {
                path: "/v1/messages".into(),
                config: ProviderConfig::new(ProviderKind::Anthropic, "claude-haiku-4-5")
                    .with_api_key(SECRET)
                    .with_base_url(server.origin())
                    .with_timeout(timeout),
                ok_body: ok,
                ok_text: text_at(ok, "/content/0/text"),
                stream: StreamWire {
                    content_type: "text/event-stream",
                    recording: fixture!("anthropic/messages-stream-text.sse"),
                    separator: "\n\n",
                    end_marker: "event: message_delta",
                },
                rate_limited: fixture!("anthropic/error-429-rate-limit.response.json").into(),
                // Anthropic's documented answer when the prepaid credit is gone.
                quota: (
                    400,
                    anthropic_error(
                        "invalid_request_error",
                        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
                    ),
                ),
                invalid_request: (
                    400,
                    fixture!("anthropic/error-400-invalid-request.response.json").into(),
                ),
                status_500: anthropic_error("api_error", "Internal server error"),
                // Anthropic documents no 503 of its own; this is its edge proxy's.
                status_503: "upstream connect error or disconnect/reset before headers. reset reason: overflow".into(),
                overloaded: (
                    529,
                    fixture!("anthropic/error-529-overloaded.response.json").into(),
                ),
                // The `error` event of Anthropic's streaming docs (no recording exists).
                stream_error: format!(
                    "event: error\ndata: {}\n\n",
                    anthropic_error("overloaded_error", "Overloaded")
                ),
            }
        }
        Provider::Gemini => google(
            ProviderConfig::new(ProviderKind::Gemini, "gemini-2.5-flash")
                .with_api_key(SECRET)
                .with_base_url(server.origin())
                .with_timeout(timeout),
            fixture!("gemini/generate-content-basic.response.json"),
            "/v1beta/models/gemini-2.5-flash:".into(),
        ),
        Provider::Vertex => google(
            ProviderConfig::new(ProviderKind::Vertex, "gemini-2.0-flash")
                .with_gcp("fault-project", "europe-west4")
                .with_access_token("ya29.fault-matrix-token")
                .with_base_url(server.origin())
                .with_timeout(timeout),
            fixture!("gemini/vertex-generate-content.response.json"),
            "/v1/projects/fault-project/locations/europe-west4/publishers/google/models/gemini-2.0-flash:"
                .into(),
        ),
        Provider::Ollama => {
            let ok = fixture!("ollama/api-chat.response.json");
            Wire {
                path: "/api/chat".into(),
                config: ProviderConfig::new(ProviderKind::Ollama, "llama3.2")
                    .with_base_url(server.origin())
                    .with_timeout(timeout),
                ok_body: ok,
                ok_text: text_at(ok, "/message/content"),
                stream: StreamWire {
                    content_type: "application/x-ndjson",
                    recording: fixture!("ollama/api-chat-stream.ndjson"),
                    separator: "\n",
                    end_marker: r#""done":true"#,
                },
                // Ollama has no rate limiter of its own; a gateway in front of it answers in
                // its envelope.
                rate_limited: ollama_error("too many requests"),
                quota: (0, String::new()),
                invalid_request: (400, ollama_error("invalid format: expected \"json\" or a JSON schema")),
                status_500: fixture!("ollama/error.response.json").into(),
                // The only 503 Ollama sends (OLLAMA_MAX_QUEUE reached).
                status_503: ollama_error(
                    "server busy, please try again.  maximum pending requests exceeded",
                ),
                overloaded: (
                    503,
                    ollama_error("server busy, please try again.  maximum pending requests exceeded"),
                ),
                // The last line of Ollama's documented mid-stream error example.
                stream_error: format!(
                    "{}\n",
                    fixture!("ollama/error-mid-stream.ndjson")
                        .lines()
                        .last()
                        .expect("the example ends with its error line")
                ),
            }
        }
    }
}

/// The recorded successful reply of `p` with its answer replaced by `value`, in the shape the
/// provider uses for structured output (Anthropic: a forced tool call named after the schema).
fn structured_reply(p: Provider, ok_body: &str, value: &Value) -> String {
    let text = value.to_string();
    let mut v: Value = serde_json::from_str(ok_body).unwrap();
    match p {
        Provider::OpenAi | Provider::Azure | Provider::Compatible => {
            v["choices"][0]["message"]["content"] = json!(text);
        }
        Provider::Gemini | Provider::Vertex => {
            v["candidates"][0]["content"]["parts"][0]["text"] = json!(text);
        }
        Provider::Ollama => v["message"]["content"] = json!(text),
        Provider::Anthropic => {
            v = serde_json::from_str(fixture!("anthropic/messages-tool-use.response.json"))
                .unwrap();
            v["content"][0]["name"] = json!("City");
            v["content"][0]["input"] = value.clone();
        }
    }
    v.to_string()
}

// ---------------------------------------------------------------------------------------------
// Running a row.

#[derive(Debug, Clone, Copy)]
enum Call {
    Chat,
    Stream,
    Structured,
}

fn script(p: Provider, fault: FaultCase, w: &Wire, server: &FaultServer) -> Option<Call> {
    let ok = || Fault::json(200, w.ok_body);
    let stream = |frames: Vec<String>, truncate: bool| Fault::Chunked {
        content_type: w.stream.content_type.to_owned(),
        frames,
        gap: Duration::from_millis(5),
        truncate,
        stall: None,
    };
    let call = match fault {
        FaultCase::Healthy => {
            server.push([ok()]);
            Call::Chat
        }
        FaultCase::StreamHealthy => {
            server.push([stream(w.stream.frames(), false)]);
            Call::Stream
        }
        FaultCase::RetryAfterSeconds => {
            server.push([
                Fault::json(429, w.rate_limited.clone()).header("retry-after", "1"),
                ok(),
            ]);
            Call::Chat
        }
        FaultCase::RetryAfterDate => {
            server.push([
                Fault::json(429, w.rate_limited.clone()).retry_after_date(Duration::from_secs(2)),
                ok(),
            ]);
            Call::Chat
        }
        FaultCase::QuotaExhausted => {
            if p == Provider::Ollama {
                return None;
            }
            server.fallback(Fault::json(w.quota.0, w.quota.1.clone()));
            Call::Chat
        }
        FaultCase::InvalidRequest => {
            server.fallback(Fault::json(
                w.invalid_request.0,
                w.invalid_request.1.clone(),
            ));
            Call::Chat
        }
        FaultCase::Status500 => {
            server.fallback(Fault::json(500, w.status_500.clone()));
            Call::Chat
        }
        FaultCase::Status503 => {
            let content_type = if w.status_503.starts_with('{') {
                "application/json"
            } else {
                "text/plain"
            };
            server.fallback(Fault::respond(503, content_type, w.status_503.clone()));
            Call::Chat
        }
        FaultCase::Overloaded => {
            server.fallback(Fault::json(w.overloaded.0, w.overloaded.1.clone()));
            Call::Chat
        }
        FaultCase::Stall => {
            server.fallback(ok().after(STALL));
            Call::Chat
        }
        FaultCase::ResetBeforeBody => {
            server.fallback(Fault::Reset);
            Call::Chat
        }
        FaultCase::ResetMidBody => {
            server.fallback(Fault::CutBody {
                status: 200,
                content_type: "application/json".into(),
                body: w.ok_body.into(),
                keep: w.ok_body.len() / 2,
            });
            Call::Chat
        }
        FaultCase::NotJson => {
            server.fallback(Fault::respond(
                200,
                "text/html; charset=utf-8",
                "<!DOCTYPE html><html><head><title>Sign in to continue</title></head><body><form action=\"/login\"></form></body></html>",
            ));
            Call::Chat
        }
        FaultCase::TruncatedStream => {
            server.fallback(stream(w.stream.cut(), false));
            Call::Stream
        }
        FaultCase::StreamResetAfterTokens => {
            server.fallback(stream(w.stream.cut(), true));
            Call::Stream
        }
        FaultCase::StreamRetryAfter => {
            server.push([
                Fault::json(429, w.rate_limited.clone()).header("retry-after", "1"),
                stream(w.stream.frames(), false),
            ]);
            Call::Stream
        }
        FaultCase::StreamStallBeforeFirstToken => {
            server.fallback(stream(w.stream.frames(), false).after(STALL));
            Call::Stream
        }
        FaultCase::StreamStallAfterTokens => {
            let frames = w.stream.frames();
            let stall = Some((w.stream.cut().len(), STALL));
            server.fallback(Fault::Chunked {
                content_type: w.stream.content_type.to_owned(),
                frames,
                gap: Duration::from_millis(5),
                truncate: false,
                stall,
            });
            Call::Stream
        }
        FaultCase::StreamErrorBeforeTokens => {
            if w.stream_error.is_empty() {
                return None;
            }
            server.fallback(stream(vec![w.stream_error.clone()], false));
            Call::Stream
        }
        FaultCase::StreamErrorAfterTokens => {
            if w.stream_error.is_empty() {
                return None;
            }
            let mut frames = w.stream.cut();
            frames.push(w.stream_error.clone());
            server.fallback(stream(frames, false));
            Call::Stream
        }
        FaultCase::SchemaViolationThenValid => {
            server.push([
                Fault::json(200, structured_reply(p, w.ok_body, &invalid_city())),
                Fault::json(200, structured_reply(p, w.ok_body, &valid_city())),
            ]);
            Call::Structured
        }
        FaultCase::SchemaViolationPersists => {
            server.fallback(Fault::json(
                200,
                structured_reply(p, w.ok_body, &invalid_city()),
            ));
            Call::Structured
        }
    };
    Some(call)
}

/// The stack every row goes through.
fn stack(provider: Arc<dyn ChatModel>) -> Arc<dyn ChatModel> {
    let retry = RetryLayer::new()
        .max_attempts(ATTEMPTS as u32)
        .max_retry_after(Duration::from_secs(3))
        .backoff(
            Backoff::exponential()
                .base(Duration::from_millis(10))
                .max(Duration::from_millis(10))
                .jitter(Jitter::None),
        )
        .no_budget();
    let timeout = TimeoutLayer::new()
        .attempt(ATTEMPT_TIMEOUT)
        .first_token(ATTEMPT_TIMEOUT)
        .idle(ATTEMPT_TIMEOUT);
    retry.layer(timeout.layer(provider))
}

/// What one row did.
struct Observed {
    provider: Provider,
    outcome: Outcome,
    requests: usize,
    elapsed: Duration,
    /// The answer's text (chat), the streamed text, or the structured JSON.
    text: String,
    /// Paths of the requests the server received.
    paths: Vec<String>,
    /// The path prefix the provider must call.
    want_path: String,
    /// The text of the recorded successful reply.
    ok_text: String,
}

/// A cell ready to run: its own server, the provider's wire and the stack under test.
struct Prepared {
    provider: Provider,
    fault: FaultCase,
    server: FaultServer,
    wire: Wire,
    model: Arc<dyn ChatModel>,
}

/// Starts the cell's server and builds its model. Building an HTTP client costs tens of
/// milliseconds of CPU in a debug build (TLS roots), so every cell is prepared before any runs
/// and on the blocking pool: done inside a running row, it would stall the async workers and
/// fire other rows' 1 s timeouts on a fault that is not there.
async fn prepare(provider: Provider, fault: FaultCase) -> Prepared {
    let server = FaultServer::start().await.unwrap();
    let wire = wire(provider, &server);
    let config = wire.config.clone();
    let model = tokio::task::spawn_blocking(move || from_config(&config))
        .await
        .unwrap()
        .unwrap();
    Prepared {
        provider,
        fault,
        server,
        wire,
        model: stack(model),
    }
}

async fn run(cell: Prepared) -> Option<Observed> {
    let Prepared {
        provider: p,
        fault,
        server,
        wire: w,
        model,
    } = cell;
    let call = script(p, fault, &w, &server)?;
    let request = ChatRequest::user("What is the largest city of the Rhône?");
    let started = Instant::now();
    let (outcome, text) = match call {
        Call::Chat => match model.chat(request).await {
            Ok(r) => (Outcome::Answered, r.text()),
            Err(e) => (Outcome::Failed(e.kind()), String::new()),
        },
        Call::Structured => {
            match Structured::<City>::new()
                .max_attempts(STRUCTURED_ATTEMPTS as u32)
                .generate(model.as_ref(), request)
                .await
            {
                Ok(g) => {
                    assert_eq!(g.value.name, "Lyon");
                    (Outcome::Answered, g.json.to_string())
                }
                Err(e) => (Outcome::Failed(e.kind()), String::new()),
            }
        }
        Call::Stream => consume(model.stream(request).await).await,
    };
    let elapsed = started.elapsed();
    // A request sent just before an attempt timed out may still be on its way to the server's
    // log: wait until the count is stable.
    let mut requests = server.request_count();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = server.request_count();
        if now == requests {
            break;
        }
        requests = now;
    }
    Some(Observed {
        provider: p,
        outcome,
        requests,
        elapsed,
        text,
        paths: server.requests().into_iter().map(|r| r.path).collect(),
        want_path: w.path,
        ok_text: w.ok_text,
    })
}

/// Reads a stream to its end and says how it ended: `Answered` only for exactly one `Done`
/// as the last event.
async fn consume(stream: llmkit::core::Result<llmkit::core::ChatStream>) -> (Outcome, String) {
    let mut stream = match stream {
        Ok(s) => s,
        Err(e) => return (Outcome::Failed(e.kind()), String::new()),
    };
    let mut text = String::new();
    let mut dones = 0;
    let mut after_done = false;
    while let Some(event) = stream.next().await {
        if dones > 0 {
            after_done = true;
        }
        match event {
            Ok(StreamEvent::TextDelta { text: t }) => text.push_str(&t),
            Ok(StreamEvent::Done { .. }) => dones += 1,
            Ok(_) => {}
            Err(e) => {
                // A Done followed by an error is not a success either.
                return (Outcome::Failed(e.kind()), text);
            }
        }
    }
    match (dones, after_done) {
        (1, false) => (Outcome::Answered, text),
        (0, _) => (Outcome::EndedSilently, text),
        _ => (Outcome::EventsAfterDone, text),
    }
}

/// The mismatches between what a row should do and what it did.
fn check(row: &Row, o: &Observed) -> Vec<String> {
    let (w_path, ok_text) = (o.want_path.as_str(), o.ok_text.as_str());
    let mut problems = Vec::new();
    let want = row
        .except
        .iter()
        .find(|(p, _)| *p == o.provider)
        .map_or(row.outcome.clone(), |(_, k)| Outcome::Failed(*k));
    if o.outcome != want {
        problems.push(format!("outcome {} (want {want})", o.outcome));
    }
    if o.requests != row.requests {
        problems.push(format!("{} requests (want {})", o.requests, row.requests));
    }
    if o.elapsed < row.min_elapsed {
        problems.push(format!(
            "took {:?}: the Retry-After ({:?}) was not waited out",
            o.elapsed, row.min_elapsed
        ));
    }
    if o.elapsed > ROW_LIMIT {
        problems.push(format!("took {:?} (limit {ROW_LIMIT:?})", o.elapsed));
    }
    if let Some(bad) = o.paths.iter().find(|p| !p.starts_with(w_path)) {
        problems.push(format!("request went to {bad} (want {w_path}...)"));
    }
    match (row.fault, &o.outcome) {
        (
            FaultCase::Healthy | FaultCase::RetryAfterSeconds | FaultCase::RetryAfterDate,
            Outcome::Answered,
        ) if o.text != ok_text => {
            problems.push(format!("answered {:?} (want {ok_text:?})", o.text));
        }
        (FaultCase::SchemaViolationThenValid, Outcome::Answered) => {
            let got: Value = serde_json::from_str(&o.text).unwrap_or_default();
            if got != valid_city() {
                problems.push(format!("structured value {got} (want {})", valid_city()));
            }
        }
        (
            FaultCase::TruncatedStream
            | FaultCase::StreamResetAfterTokens
            | FaultCase::StreamStallAfterTokens
            | FaultCase::StreamErrorAfterTokens
            | FaultCase::StreamHealthy
            | FaultCase::StreamRetryAfter,
            _,
        ) if o.text.is_empty() => {
            problems.push("no token reached the caller".into());
        }
        _ => {}
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provider_under_every_fault() {
    let cells: Vec<(Provider, &Row)> = MATRIX
        .iter()
        .flat_map(|row| PROVIDERS.iter().map(move |p| (*p, row)))
        .filter(|(p, row)| !row.not_applicable.iter().any(|(q, _)| q == p))
        .collect();
    let prepared: Vec<(Prepared, &Row)> = futures::stream::iter(
        cells
            .into_iter()
            .map(|(p, row)| async move { (prepare(p, row.fault).await, row) }),
    )
    .buffered(4)
    .collect()
    .await;
    let observed: Vec<(Option<Observed>, &Row, Provider)> =
        futures::stream::iter(prepared.into_iter().map(|(cell, row)| async move {
            let p = cell.provider;
            (run(cell).await, row, p)
        }))
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let mut problems = Vec::new();
    let mut table = String::new();
    let _ = write!(table, "{:<30}", "fault");
    for p in PROVIDERS {
        let _ = write!(table, "{:<22}", p.name());
    }
    for row in MATRIX {
        let _ = write!(table, "\n{:<30}", format!("{:?}", row.fault));
        for p in PROVIDERS {
            let cell = observed
                .iter()
                .find(|(_, r, q)| std::ptr::eq(*r, row) && *q == p)
                .and_then(|(o, _, _)| o.as_ref());
            let text = cell.map_or("n/a".to_owned(), |o| {
                format!("{} ×{}", o.outcome, o.requests)
            });
            let _ = write!(table, "{text:<22}");
        }
    }
    for (o, row, p) in &observed {
        let Some(o) = o else {
            problems.push(format!(
                "{} × {:?}: the script has no such fault",
                p.name(),
                row.fault
            ));
            continue;
        };
        for problem in check(row, o) {
            problems.push(format!(
                "{} × {:?}: {problem} [{} ×{} in {:?}]",
                p.name(),
                row.fault,
                o.outcome,
                o.requests,
                o.elapsed
            ));
        }
    }
    eprintln!("{table}");
    assert!(
        problems.is_empty(),
        "{} of {} cells differ from the contract:\n{}\n\n{table}",
        problems.len(),
        observed.len(),
        problems.join("\n")
    );
}
