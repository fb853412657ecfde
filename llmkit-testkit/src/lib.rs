//! # llmkit-testkit
//!
//! The public provider conformance suite and its fake server, in a crate of their own so a
//! downstream provider depends on the contract (`llmkit-core`) and this kit only — never on the
//! built-in providers. (Until 0.1 it was `llmkit_providers::conformance`, feature
//! `conformance`.)
//!
//! One table of [`Case`]s — plain chat, system prompt, multi-turn, tool call and tool result,
//! structured output, streaming assembly (text and tool calls), usage, and every error class
//! (400, 401, 404, 429 with `Retry-After`, 500, 503, 529, a malformed body, streams cut off
//! before the end marker, tool arguments cut off) — runs against a local [`FakeServer`]. A provider plugs in through a
//! [`ConformanceAdapter`]: how to build its model from a base URL, its canned wire response for
//! each case (written so the reply carries the values in [`expected`]), and extra assertions on
//! the request it sent. The suite itself checks the parsed response, the error
//! classification, that exactly one request was sent (providers never retry), and that the
//! API key never shows up in a body or an error.
//!
//! Every streaming case also holds the provider to the one stream contract (see
//! `docs/providers.md`): a successful stream ends with exactly one [`StreamEvent::Done`] and
//! nothing after it; a stream cut off before the provider's end marker ends with an `Err` of
//! kind [`ErrorKind::Truncated`] yielded by the stream itself (not merely a missing `Done`);
//! a tool call whose arguments were cut off is an error, never a partial call; and nothing
//! follows an error.
//!
//! Third parties run it for their own provider:
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::ChatModel;
//! use llmkit_testkit::{run_suite, Case, CannedResponse, ConformanceAdapter};
//!
//! struct Skipper;
//! impl ConformanceAdapter for Skipper {
//!     fn name(&self) -> &str { "nothing" }
//!     fn chat_model(&self, _base_url: &str) -> llmkit_core::Result<Arc<dyn ChatModel>> {
//!         Ok(Arc::new(llmkit_core::ScriptedModel::always("x")))
//!     }
//!     fn canned(&self, _case: Case) -> Option<CannedResponse> { None } // every case skipped
//! }
//! let report = run_suite(&Skipper).await;
//! assert_eq!(report.skipped(), Case::ALL.len());
//! println!("{report}");
//! # });
//! ```

mod server;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use llmkit_core::{
    ChatModel, ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, Message, ResponseFormat,
    StreamAccumulator, StreamEvent, ToolCall, ToolDefinition,
};

pub use server::{CannedBody, CannedResponse, FakeServer, RecordedRequest, STREAM_CHUNK_BYTES};

/// The values every case's request carries and every canned reply must encode.
pub mod expected {
    use llmkit_core::Usage;
    use serde_json::{Value, json};

    /// The last user message of every request.
    pub const USER_TEXT: &str = "What is the weather in Paris?";
    /// The system prompt of the system-prompt and multi-turn cases.
    pub const SYSTEM_TEXT: &str = "You are a terse weather assistant.";
    /// First user turn of the multi-turn case.
    pub const FIRST_USER_TEXT: &str = "My name is Ada.";
    /// First assistant turn of the multi-turn case.
    pub const FIRST_ASSISTANT_TEXT: &str = "Nice to meet you, Ada.";
    /// The text reply of chat, streaming and tool-result cases.
    pub const REPLY_TEXT: &str = "It is 18°C and sunny in Paris.";
    /// The tool the model calls.
    pub const TOOL_NAME: &str = "get_weather";
    /// The call id used in the tool-result case's history.
    pub const TOOL_CALL_ID: &str = "call_conformance_1";
    /// The tool result sent back in the tool-result case.
    pub const TOOL_RESULT: &str = r#"{"temperature_c":18,"sky":"sunny"}"#;
    /// The structured-output schema's name.
    pub const SCHEMA_NAME: &str = "weather";
    /// `Retry-After` seconds of the 429 case.
    pub const RETRY_AFTER_SECS: u64 = 7;
    /// The idempotency key every request carries.
    pub const IDEMPOTENCY_KEY: &str = "conformance-idempotency-1";
    /// llmkit request id every request carries.
    pub const REQUEST_ID: &str = "conformance-request-1";
    /// The key adapters should configure: it must never appear in a body or an error.
    pub const API_KEY: &str = "sk-conformance-0123456789abcdefSECRET";
    /// Usage of the usage case: 42 input tokens of which 10 cached, 12 output tokens.
    pub const USAGE: Usage = Usage {
        input_tokens: 42,
        cached_input_tokens: 10,
        cache_write_tokens: 0,
        output_tokens: 12,
        reasoning_tokens: 0,
    };

    /// The arguments of the tool call: `{"city": "Paris"}`.
    pub fn tool_arguments() -> Value {
        json!({"city": "Paris"})
    }

    /// The tool's argument schema.
    pub fn tool_parameters() -> Value {
        json!({
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
            "additionalProperties": false
        })
    }

    /// The structured-output schema.
    pub fn structured_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "temperature_c": {"type": "integer"}
            },
            "required": ["city", "temperature_c"],
            "additionalProperties": false
        })
    }

    /// The structured reply: `{"city": "Paris", "temperature_c": 18}`.
    pub fn structured_reply() -> Value {
        json!({"city": "Paris", "temperature_c": 18})
    }
}

/// One conformance case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Case {
    /// One user message → [`expected::REPLY_TEXT`].
    PlainChat,
    /// System + user → the reply; the system prompt must be sent.
    SystemPrompt,
    /// System, user, assistant, user → the reply; every turn must be sent.
    MultiTurn,
    /// A request with a tool → a call of [`expected::TOOL_NAME`] with
    /// [`expected::tool_arguments`], finish reason `tool_calls`.
    ToolCall,
    /// History with the call and its [`expected::TOOL_RESULT`] → the reply.
    ToolResult,
    /// A JSON-schema response format → [`expected::structured_reply`] as text.
    StructuredOutput,
    /// Streamed text in at least two deltas → the reply.
    Streaming,
    /// A streamed tool call assembled from deltas.
    StreamingToolCall,
    /// A reply whose usage is [`expected::USAGE`].
    Usage,
    /// HTTP 400 → [`ErrorKind::InvalidRequest`].
    BadRequest400,
    /// HTTP 401 → [`ErrorKind::Auth`].
    Unauthorized401,
    /// HTTP 404 → [`ErrorKind::NotFound`].
    NotFound404,
    /// HTTP 429 with `Retry-After: 7` → [`ErrorKind::RateLimited`] with that wait.
    RateLimited429,
    /// HTTP 500 → [`ErrorKind::Server`].
    Server500,
    /// HTTP 503 → [`ErrorKind::Server`] or [`ErrorKind::Overloaded`].
    Unavailable503,
    /// HTTP 529 / overloaded → [`ErrorKind::Overloaded`] (skip where the provider has none).
    Overloaded529,
    /// A 200 whose body is not JSON → [`ErrorKind::InvalidResponse`].
    MalformedJson,
    /// A stream that stops before its end marker → the stream itself ends with an
    /// [`ErrorKind::Truncated`] error.
    TruncatedStream,
    /// A stream that stops in the middle of a tool call, before its end marker →
    /// [`ErrorKind::Truncated`] from the stream, never a partial call.
    TruncatedStreamToolCall,
    /// A streamed tool call whose arguments stop mid-JSON, followed by the provider's end
    /// marker (a token limit hit mid-call) → [`ErrorKind::Truncated`], never a partial call.
    /// Skip it for a provider that only sends whole calls (Gemini, Ollama).
    TruncatedToolArguments,
}

impl Case {
    /// Every case, in table order.
    pub const ALL: [Case; 20] = [
        Case::PlainChat,
        Case::SystemPrompt,
        Case::MultiTurn,
        Case::ToolCall,
        Case::ToolResult,
        Case::StructuredOutput,
        Case::Streaming,
        Case::StreamingToolCall,
        Case::Usage,
        Case::BadRequest400,
        Case::Unauthorized401,
        Case::NotFound404,
        Case::RateLimited429,
        Case::Server500,
        Case::Unavailable503,
        Case::Overloaded529,
        Case::MalformedJson,
        Case::TruncatedStream,
        Case::TruncatedStreamToolCall,
        Case::TruncatedToolArguments,
    ];

    /// A stable snake_case name (used in reports and fixture file names).
    pub fn name(self) -> &'static str {
        match self {
            Case::PlainChat => "plain_chat",
            Case::SystemPrompt => "system_prompt",
            Case::MultiTurn => "multi_turn",
            Case::ToolCall => "tool_call",
            Case::ToolResult => "tool_result",
            Case::StructuredOutput => "structured_output",
            Case::Streaming => "streaming",
            Case::StreamingToolCall => "streaming_tool_call",
            Case::Usage => "usage",
            Case::BadRequest400 => "error_400",
            Case::Unauthorized401 => "error_401",
            Case::NotFound404 => "error_404",
            Case::RateLimited429 => "error_429",
            Case::Server500 => "error_500",
            Case::Unavailable503 => "error_503",
            Case::Overloaded529 => "error_529",
            Case::MalformedJson => "malformed_json",
            Case::TruncatedStream => "truncated_stream",
            Case::TruncatedStreamToolCall => "truncated_stream_tool_call",
            Case::TruncatedToolArguments => "truncated_tool_arguments",
        }
    }

    /// Whether the case calls [`ChatModel::stream`] (otherwise [`ChatModel::chat`]).
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Case::Streaming
                | Case::StreamingToolCall
                | Case::TruncatedStream
                | Case::TruncatedStreamToolCall
                | Case::TruncatedToolArguments
        )
    }

    /// The error kinds the case accepts; empty for success cases.
    pub fn expected_errors(self) -> &'static [ErrorKind] {
        match self {
            Case::BadRequest400 => &[ErrorKind::InvalidRequest],
            Case::Unauthorized401 => &[ErrorKind::Auth],
            Case::NotFound404 => &[ErrorKind::NotFound],
            Case::RateLimited429 => &[ErrorKind::RateLimited],
            Case::Server500 => &[ErrorKind::Server],
            Case::Unavailable503 => &[ErrorKind::Server, ErrorKind::Overloaded],
            Case::Overloaded529 => &[ErrorKind::Overloaded],
            Case::MalformedJson => &[ErrorKind::InvalidResponse],
            Case::TruncatedStream
            | Case::TruncatedStreamToolCall
            | Case::TruncatedToolArguments => &[ErrorKind::Truncated],
            _ => &[],
        }
    }

    /// The HTTP status the error cases answer with.
    pub fn status(self) -> Option<u16> {
        match self {
            Case::BadRequest400 => Some(400),
            Case::Unauthorized401 => Some(401),
            Case::NotFound404 => Some(404),
            Case::RateLimited429 => Some(429),
            Case::Server500 => Some(500),
            Case::Unavailable503 => Some(503),
            Case::Overloaded529 => Some(529),
            _ => None,
        }
    }

    /// The request the suite sends for this case.
    pub fn request(self) -> ChatRequest {
        use expected::*;
        let tool = ToolDefinition::new(TOOL_NAME, "Current weather for a city", tool_parameters());
        let messages = match self {
            Case::SystemPrompt => vec![Message::system(SYSTEM_TEXT), Message::user(USER_TEXT)],
            Case::MultiTurn => vec![
                Message::system(SYSTEM_TEXT),
                Message::user(FIRST_USER_TEXT),
                Message::assistant(FIRST_ASSISTANT_TEXT),
                Message::user(USER_TEXT),
            ],
            Case::ToolResult => vec![
                Message::user(USER_TEXT),
                Message::assistant_tool_calls(
                    None,
                    vec![ToolCall {
                        id: TOOL_CALL_ID.into(),
                        name: TOOL_NAME.into(),
                        arguments: tool_arguments(),
                    }],
                ),
                Message::tool_result(TOOL_CALL_ID, TOOL_RESULT),
            ],
            _ => vec![Message::user(USER_TEXT)],
        };
        let mut request = ChatRequest::new(messages)
            .with_request_id(REQUEST_ID)
            .with_idempotency_key(IDEMPOTENCY_KEY)
            .with_max_tokens(256);
        if matches!(
            self,
            Case::ToolCall
                | Case::StreamingToolCall
                | Case::ToolResult
                | Case::TruncatedStreamToolCall
                | Case::TruncatedToolArguments
        ) {
            request = request.with_tool(tool);
        }
        if self == Case::StructuredOutput {
            request = request.with_response_format(ResponseFormat::JsonSchema {
                name: SCHEMA_NAME.into(),
                schema: structured_schema(),
                strict: true,
            });
        }
        request
    }

    /// Strings the request body must contain (provider-neutral evidence that the case's
    /// content was sent).
    pub fn body_must_contain(self) -> Vec<&'static str> {
        use expected::*;
        let mut needles = vec![USER_TEXT];
        match self {
            Case::SystemPrompt => needles.push(SYSTEM_TEXT),
            Case::MultiTurn => needles.extend([SYSTEM_TEXT, FIRST_USER_TEXT, FIRST_ASSISTANT_TEXT]),
            Case::ToolCall
            | Case::StreamingToolCall
            | Case::TruncatedStreamToolCall
            | Case::TruncatedToolArguments => needles.extend([TOOL_NAME, "City name"]),
            Case::ToolResult => needles.extend([TOOL_NAME, "sunny"]),
            Case::StructuredOutput => needles.push("temperature_c"),
            _ => {}
        }
        needles
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a provider plugs into the suite. Implement [`name`](Self::name),
/// [`chat_model`](Self::chat_model) and [`canned`](Self::canned); the rest has defaults.
pub trait ConformanceAdapter: Send + Sync {
    /// A label for reports.
    fn name(&self) -> &str;

    /// Builds the model under test pointed at the fake server's base URL
    /// (`http://127.0.0.1:PORT`), configured with [`expected::API_KEY`] where it takes a key.
    fn chat_model(&self, base_url: &str) -> llmkit_core::Result<Arc<dyn ChatModel>>;

    /// The provider's wire response for `case`, encoding the values in [`expected`]; `None`
    /// skips the case (for example [`Case::Overloaded529`] for a provider without one).
    fn canned(&self, case: Case) -> Option<CannedResponse>;

    /// Provider-specific assertions on the request sent (method, path, headers, body shape,
    /// schema validation). The default accepts everything.
    fn check_request(&self, case: Case, request: &RecordedRequest) -> Result<(), String> {
        let _ = (case, request);
        Ok(())
    }

    /// Whether the provider reports cached input tokens (checked in [`Case::Usage`]).
    fn reports_cached_tokens(&self) -> bool {
        true
    }
}

/// What happened to one case.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Every check passed.
    Passed,
    /// The adapter had no canned response.
    Skipped,
    /// A check failed; the text says which.
    Failed(String),
}

/// The result of [`run_suite`].
#[derive(Debug, Clone)]
pub struct SuiteReport {
    /// The adapter's name.
    pub adapter: String,
    /// Every case with its outcome, in table order.
    pub results: Vec<(Case, Outcome)>,
}

impl SuiteReport {
    /// Whether no case failed.
    pub fn is_success(&self) -> bool {
        self.failures().is_empty()
    }

    /// The failed cases with their reasons.
    pub fn failures(&self) -> Vec<(Case, &str)> {
        self.results
            .iter()
            .filter_map(|(c, o)| match o {
                Outcome::Failed(why) => Some((*c, why.as_str())),
                _ => None,
            })
            .collect()
    }

    /// How many cases passed.
    pub fn passed(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, o)| *o == Outcome::Passed)
            .count()
    }

    /// How many cases were skipped.
    pub fn skipped(&self) -> usize {
        self.results
            .iter()
            .filter(|(_, o)| *o == Outcome::Skipped)
            .count()
    }

    /// `Ok` when nothing failed, else the report text (for `.unwrap()` in a test).
    pub fn into_result(self) -> Result<Self, String> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(self.to_string())
        }
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "conformance `{}`: {} passed, {} skipped, {} failed",
            self.adapter,
            self.passed(),
            self.skipped(),
            self.failures().len()
        )?;
        for (case, outcome) in &self.results {
            match outcome {
                Outcome::Passed => writeln!(f, "  ok      {case}")?,
                Outcome::Skipped => writeln!(f, "  skipped {case}")?,
                Outcome::Failed(why) => writeln!(f, "  FAILED  {case}: {why}")?,
            }
        }
        Ok(())
    }
}

/// Runs every case against a fresh [`FakeServer`] and reports each outcome. Needs a Tokio
/// runtime with I/O and time enabled.
pub async fn run_suite(adapter: &dyn ConformanceAdapter) -> SuiteReport {
    let mut results = Vec::with_capacity(Case::ALL.len());
    for case in Case::ALL {
        let outcome = match adapter.canned(case) {
            None => Outcome::Skipped,
            Some(canned) => match run_case(adapter, case, canned).await {
                Ok(()) => Outcome::Passed,
                Err(why) => Outcome::Failed(why),
            },
        };
        results.push((case, outcome));
    }
    SuiteReport {
        adapter: adapter.name().to_owned(),
        results,
    }
}

/// Runs one case (useful to debug a single failure).
pub async fn run_case(
    adapter: &dyn ConformanceAdapter,
    case: Case,
    canned: CannedResponse,
) -> Result<(), String> {
    let server = FakeServer::start().await.map_err(|e| e.to_string())?;
    server.push(canned);
    let model = adapter
        .chat_model(&server.base_url())
        .map_err(|e| format!("building the model failed: {e}"))?;
    let request = case.request();
    let outcome = tokio::time::timeout(Duration::from_secs(10), call(&*model, case, request))
        .await
        .map_err(|_| "no answer within 10s".to_owned())?
        .map_err(|why| format!("stream contract: {why}"))?;

    let requests = server.requests();
    if requests.len() != 1 {
        return Err(format!(
            "expected exactly 1 request (providers never retry), got {}",
            requests.len()
        ));
    }
    let sent = requests
        .first()
        .ok_or_else(|| "no request recorded".to_owned())?;
    check_common_request(case, sent)?;
    adapter
        .check_request(case, sent)
        .map_err(|why| format!("request check: {why}"))?;
    check_outcome(adapter, &*model, case, outcome)
}

async fn call(
    model: &dyn ChatModel,
    case: Case,
    request: ChatRequest,
) -> Result<Result<(ChatResponse, Option<usize>), Error>, String> {
    if !case.is_stream() {
        return Ok(model.chat(request).await.map(|r| (r, None)));
    }
    let stream = match model.stream(request).await {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let items: Vec<llmkit_core::Result<StreamEvent>> = stream.collect().await;
    check_stream_contract(&items)?;
    let mut acc = StreamAccumulator::new();
    let mut text_deltas = 0;
    for item in items {
        let event = match item {
            Ok(event) => event,
            // The stream's own error, not one the accumulator infers.
            Err(e) => return Ok(Err(e)),
        };
        if matches!(event, StreamEvent::TextDelta { .. }) {
            text_deltas += 1;
        }
        acc.push(&event);
    }
    // The folded response plus how many text deltas arrived.
    Ok(acc
        .finish(model.info())
        .map(|response| (response, Some(text_deltas))))
}

/// The stream contract every provider keeps, whatever the case: it ends with exactly one
/// terminal item, a [`StreamEvent::Done`] or an error, and nothing follows it.
fn check_stream_contract(items: &[llmkit_core::Result<StreamEvent>]) -> Result<(), String> {
    let terminal = |item: &llmkit_core::Result<StreamEvent>| {
        matches!(item, Err(_) | Ok(StreamEvent::Done { .. }))
    };
    let terminals = items.iter().filter(|i| terminal(i)).count();
    match items.last() {
        None => Err("the stream ended without any item (no Done, no error)".into()),
        Some(last) if !terminal(last) => Err(
            "the stream ended without a Done or an error: a cut-off stream must yield \
             Err(Truncated) itself"
                .into(),
        ),
        Some(_) if terminals > 1 => Err(format!(
            "{terminals} terminal items (Done or error); a stream ends with exactly one"
        )),
        Some(_) => Ok(()),
    }
}

fn check_common_request(case: Case, sent: &RecordedRequest) -> Result<(), String> {
    if sent.method != "POST" {
        return Err(format!("expected POST, got {}", sent.method));
    }
    let body = sent
        .json()
        .ok_or_else(|| "request body is not JSON".to_owned())?;
    let text = body.to_string();
    for needle in case.body_must_contain() {
        let escaped = serde_json::to_string(needle).unwrap_or_default();
        let inner = escaped.trim_matches('"');
        if !text.contains(inner) {
            return Err(format!("request body does not contain `{needle}`"));
        }
    }
    if sent.body_text().contains(expected::API_KEY) {
        return Err("the api key appears in the request body".into());
    }
    Ok(())
}

fn check_outcome(
    adapter: &dyn ConformanceAdapter,
    model: &dyn ChatModel,
    case: Case,
    outcome: Result<(ChatResponse, Option<usize>), Error>,
) -> Result<(), String> {
    let wanted = case.expected_errors();
    if !wanted.is_empty() {
        let err = match outcome {
            Ok((r, _)) => {
                return Err(format!(
                    "expected an error {wanted:?}, got a reply `{}`",
                    r.text()
                ));
            }
            Err(e) => e,
        };
        return check_error(model, case, wanted, &err);
    }
    let (response, deltas) = outcome.map_err(|e| format!("unexpected error: {e}"))?;
    match case {
        Case::ToolCall | Case::StreamingToolCall => {
            let calls = response.tool_calls();
            let [call] = calls.as_slice() else {
                return Err(format!("expected 1 tool call, got {}", calls.len()));
            };
            if call.name != expected::TOOL_NAME || call.arguments != expected::tool_arguments() {
                return Err(format!("wrong tool call {} {}", call.name, call.arguments));
            }
            if response.finish_reason != FinishReason::ToolCalls {
                return Err(format!(
                    "finish reason {:?}, expected tool_calls",
                    response.finish_reason
                ));
            }
        }
        Case::StructuredOutput => {
            let value: serde_json::Value = serde_json::from_str(&response.text())
                .map_err(|e| format!("structured reply is not json: {e}"))?;
            if value != expected::structured_reply() {
                return Err(format!("structured reply {value}"));
            }
        }
        Case::Usage => {
            let got = response.usage;
            let want = expected::USAGE;
            let cached_ok = !adapter.reports_cached_tokens()
                || got.cached_input_tokens == want.cached_input_tokens;
            if got.input_tokens != want.input_tokens
                || got.output_tokens != want.output_tokens
                || !cached_ok
            {
                return Err(format!("usage {got:?}, expected {want:?}"));
            }
        }
        _ => {
            if response.text() != expected::REPLY_TEXT {
                return Err(format!("reply text `{}`", response.text()));
            }
            if response.finish_reason != FinishReason::Stop {
                return Err(format!("finish reason {:?}", response.finish_reason));
            }
        }
    }
    if case == Case::Streaming && deltas.unwrap_or(0) < 2 {
        return Err("streamed text arrived in fewer than 2 deltas".into());
    }
    if response.provider != model.info().provider {
        return Err(format!(
            "response provider `{}` differs from info `{}`",
            response.provider,
            model.info().provider
        ));
    }
    Ok(())
}

fn check_error(
    model: &dyn ChatModel,
    case: Case,
    wanted: &[ErrorKind],
    err: &Error,
) -> Result<(), String> {
    if !wanted.contains(&err.kind()) {
        return Err(format!("expected {wanted:?}, got {:?}: {err}", err.kind()));
    }
    if let Some(status) = case.status()
        && err.status() != Some(status)
    {
        return Err(format!(
            "error status {:?}, expected {status}",
            err.status()
        ));
    }
    if err.provider() != Some(model.info().provider.as_str()) {
        return Err(format!("error provider {:?}", err.provider()));
    }
    if case == Case::RateLimited429
        && err.retry_after() != Some(Duration::from_secs(expected::RETRY_AFTER_SECS))
    {
        return Err(format!("retry_after {:?}", err.retry_after()));
    }
    for shown in [err.to_string(), format!("{err:?}")] {
        if shown.contains(expected::API_KEY) {
            return Err("the api key appears in the error".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_contract_table() {
        let text = || Ok(StreamEvent::TextDelta { text: "a".into() });
        let done = || {
            Ok(StreamEvent::Done {
                finish_reason: FinishReason::Stop,
            })
        };
        let cut = || Err(Error::new(ErrorKind::Truncated, "cut"));
        let cases: Vec<(Vec<llmkit_core::Result<StreamEvent>>, bool)> = vec![
            (vec![text(), done()], true),
            (vec![text(), cut()], true),
            (vec![cut()], true),
            // The Anthropic bug of issue 17: cut off, yet neither Done nor an error.
            (vec![text()], false),
            (vec![], false),
            (vec![text(), done(), done()], false),
            (vec![done(), text()], false),
            (vec![cut(), done()], false),
        ];
        for (items, ok) in cases {
            assert_eq!(check_stream_contract(&items).is_ok(), ok, "{items:?}");
        }
    }

    #[test]
    fn names_are_unique_and_requests_carry_the_user_text() {
        let mut names: Vec<_> = Case::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Case::ALL.len());
        for case in Case::ALL {
            let r = case.request();
            assert!(r.text().contains(expected::USER_TEXT), "{case}");
            assert_eq!(
                r.meta.idempotency_key.as_deref(),
                Some(expected::IDEMPOTENCY_KEY)
            );
        }
    }

    #[tokio::test]
    async fn fake_server_replays_and_records() {
        let server = FakeServer::start().await.unwrap();
        server.push(
            CannedResponse::json(201, &serde_json::json!({"ok": true})).with_header("x-a", "b"),
        );
        let client = reqwest::Client::new();
        let resp = client
            .post(format!("{}/p?q=1", server.base_url()))
            .header("authorization", "Bearer hidden-value")
            .body("{\"x\":1}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        assert_eq!(resp.headers()["x-a"], "b");
        let resp = client.get(server.base_url()).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 599);
        let reqs = server.requests();
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].path, "/p");
        assert_eq!(reqs[0].query.as_deref(), Some("q=1"));
        assert_eq!(reqs[0].json().unwrap()["x"], 1);
        assert!(!format!("{:?}", reqs[0]).contains("hidden-value"));
    }

    #[tokio::test]
    async fn a_wrong_model_fails_the_suite() {
        struct Wrong;
        impl ConformanceAdapter for Wrong {
            fn name(&self) -> &str {
                "scripted"
            }
            fn chat_model(&self, _: &str) -> llmkit_core::Result<Arc<dyn ChatModel>> {
                Ok(Arc::new(llmkit_core::ScriptedModel::always("wrong")))
            }
            fn canned(&self, case: Case) -> Option<CannedResponse> {
                (case == Case::PlainChat).then(|| CannedResponse::json(200, &serde_json::json!({})))
            }
        }
        let report = run_suite(&Wrong).await;
        assert!(!report.is_success());
        // The scripted model never calls the server: that is the first failure reported.
        assert!(
            report.failures()[0].1.contains("exactly 1 request"),
            "{report}"
        );
        assert!(report.into_result().is_err());
    }
}
