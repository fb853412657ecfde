//! Custom provider: a downstream crate implements its own provider and passes llmkit's public conformance suite.
//!
//! "Acme" is a made-up HTTP API. The provider below is what a third party writes: a type that
//! implements `ChatModel` using llmkit-providers' shared HTTP helpers (client, error table,
//! SSE parser), plus a `ConformanceAdapter` giving Acme's canned wire responses. The suite runs
//! every case against an in-process fake server, offline.
//!
//! Run with `cargo run --example custom_provider` (exits non-zero if a case fails).

use std::sync::Arc;

use llmkit::core::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, ContentPart, Error, ErrorKind, FinishReason,
    Message, ModelInfo, Result, Role, StreamEvent, ToolCall, Usage, async_trait,
};
use llmkit::providers::SecretString;
use llmkit::providers::frames::chat_stream;
use llmkit::providers::http::{self, ErrorMapper, ErrorRule};
use llmkit::providers::sse::{SseEvent, sse_stream};
use llmkit_testkit::{
    CannedResponse, Case, ConformanceAdapter, RecordedRequest, expected, run_suite,
};
use serde::Deserialize;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// The provider.
// ---------------------------------------------------------------------------------------------

/// Acme's error vocabulary on top of llmkit's common table.
static ACME_RULES: &[ErrorRule] = &[
    ErrorRule::code("acme_busy", ErrorKind::Overloaded),
    ErrorRule::code("acme_throttled", ErrorKind::RateLimited),
];

struct AcmeModel {
    /// Client, URL, auth header, error table and idempotency header: one value.
    endpoint: http::Endpoint,
    info: ModelInfo,
}

impl AcmeModel {
    fn new(base_url: &str, model: &str, key: SecretString) -> Result<Self> {
        let endpoint = http::Endpoint::new(
            http::default_client()?,
            format!("{base_url}/v1/generate"),
            ErrorMapper::new("acme", ACME_RULES),
        )
        // Marked sensitive, and redacted from every error the endpoint builds.
        .auth("x-acme-key", "", &key)?
        // Acme documents an idempotency header: the request's key goes out in it.
        .idempotency_header("idempotency-key")?;
        Ok(AcmeModel {
            endpoint,
            info: ModelInfo::new("acme", model),
        })
    }

    /// Acme takes llmkit's request almost verbatim: the conversation, tools and format.
    fn body(&self, request: &ChatRequest, stream: bool) -> Value {
        json!({
            "model": request.model.as_deref().unwrap_or(&self.info.model),
            "conversation": request.messages,
            "tools": request.tools,
            "format": request.response_format,
            "max_tokens": request.max_tokens,
            "stream": stream,
        })
    }
}

#[derive(Deserialize)]
struct AcmeUsage {
    prompt: u64,
    cached: u64,
    completion: u64,
}

impl AcmeUsage {
    fn to_usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt,
            cached_input_tokens: self.cached,
            output_tokens: self.completion,
            ..Usage::default()
        }
    }
}

#[derive(Deserialize)]
struct AcmeReply {
    text: String,
    #[serde(default)]
    calls: Vec<ToolCall>,
    finish: String,
    usage: AcmeUsage,
}

fn finish(raw: &str) -> FinishReason {
    match raw {
        "done" => FinishReason::Stop,
        "call" => FinishReason::ToolCalls,
        "limit" => FinishReason::Length,
        other => FinishReason::Other(other.to_owned()),
    }
}

#[derive(Deserialize)]
struct TextEvent {
    delta: String,
}

#[derive(Deserialize)]
struct CallEvent {
    #[serde(default)]
    index: usize,
    id: Option<String>,
    name: Option<String>,
    #[serde(default)]
    args: String,
}

#[derive(Deserialize)]
struct EndEvent {
    finish: String,
    usage: AcmeUsage,
}

/// One Acme SSE event as llmkit stream events (an `end` event ends the reply with `Done`).
fn acme_event(name: Option<&str>, data: &str) -> Result<Vec<StreamEvent>> {
    let bad = |e: serde_json::Error| Error::invalid_response(format!("acme event: {e}"));
    Ok(match name {
        Some("text") => {
            let ev: TextEvent = serde_json::from_str(data).map_err(bad)?;
            vec![StreamEvent::TextDelta { text: ev.delta }]
        }
        Some("call") => {
            let ev: CallEvent = serde_json::from_str(data).map_err(bad)?;
            vec![StreamEvent::ToolCallDelta {
                index: ev.index,
                id: ev.id,
                name: ev.name,
                arguments: ev.args,
            }]
        }
        Some("end") => {
            let ev: EndEvent = serde_json::from_str(data).map_err(bad)?;
            let usage = StreamEvent::Usage {
                usage: ev.usage.to_usage(),
            };
            vec![
                usage,
                StreamEvent::Done {
                    finish_reason: finish(&ev.finish),
                },
            ]
        }
        _ => Vec::new(),
    })
}

#[async_trait]
impl ChatModel for AcmeModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let body = self.body(&request, false);
        let response = self.endpoint.post_json(&body, &request.meta).await?;
        let reply: AcmeReply = http::read_json(response, self.endpoint.mapper()).await?;
        let mut content = Vec::new();
        if !reply.text.is_empty() {
            content.push(ContentPart::text(reply.text));
        }
        content.extend(reply.calls.into_iter().map(ContentPart::ToolCall));
        Ok(ChatResponse {
            message: Message {
                role: Role::Assistant,
                content,
                name: None,
            },
            finish_reason: finish(&reply.finish),
            usage: reply.usage.to_usage(),
            model: self.info.model.clone(),
            provider: self.info.provider.clone(),
            ..Default::default()
        })
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let body = self.body(&request, true);
        let response = self.endpoint.post_json_stream(&body, &request.meta).await?;
        let mapper = self.endpoint.mapper().clone();
        let events = sse_stream(response.bytes_stream(), move |e| mapper.transport_error(e));
        let model = self.info.model.clone();
        // Acme events: `text` {"delta"}, `call` {"index","id","name","args"}, `end` {"finish","usage"}.
        // The shared stream contract does the rest: no `end` before the bytes stop is
        // `Truncated`, tool arguments cut off mid-JSON are an error, nothing follows `Done`.
        Ok(chat_stream(
            events,
            "an end event",
            |event: Option<SseEvent>| match event {
                Some(ev) => acme_event(ev.event.as_deref(), &ev.data),
                None => Ok(Vec::new()),
            },
            move |e| e.or_context("acme", &model),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The conformance adapter: Acme's canned wire responses and request checks.
// ---------------------------------------------------------------------------------------------

struct AcmeAdapter;

fn acme_error(status: u16, code: &str, message: &str) -> CannedResponse {
    CannedResponse::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn acme_sse(events: &[(&str, Value)]) -> String {
    events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect()
}

impl ConformanceAdapter for AcmeAdapter {
    fn name(&self) -> &str {
        "acme (example)"
    }

    fn chat_model(&self, base_url: &str) -> Result<Arc<dyn ChatModel>> {
        Ok(Arc::new(AcmeModel::new(
            base_url,
            "acme-1",
            SecretString::new(expected::API_KEY),
        )?))
    }

    fn canned(&self, case: Case) -> Option<CannedResponse> {
        let usage = json!({"prompt": 42, "cached": 10, "completion": 12});
        let reply = |text: &str, calls: Value, finish: &str| {
            CannedResponse::json(
                200,
                &json!({"text": text, "calls": calls, "finish": finish, "usage": usage}),
            )
        };
        let call = json!([{"id": "c1", "name": expected::TOOL_NAME, "arguments": expected::tool_arguments()}]);
        let end = json!({"finish": "done", "usage": usage});
        Some(match case {
            Case::ToolCall => reply("", call, "call"),
            Case::StructuredOutput => {
                reply(&expected::structured_reply().to_string(), json!([]), "done")
            }
            Case::Streaming => CannedResponse::sse(&acme_sse(&[
                ("text", json!({"delta": "It is 18°C "})),
                ("text", json!({"delta": "and sunny in Paris."})),
                ("end", end),
            ])),
            Case::StreamingToolCall => CannedResponse::sse(&acme_sse(&[
                (
                    "call",
                    json!({"index": 0, "id": "c1", "name": expected::TOOL_NAME, "args": "{\"city\":"}),
                ),
                ("call", json!({"index": 0, "args": "\"Paris\"}"})),
                ("end", json!({"finish": "call", "usage": usage})),
            ])),
            Case::TruncatedStream => {
                CannedResponse::sse(&acme_sse(&[("text", json!({"delta": "It is"}))]))
            }
            Case::TruncatedStreamToolCall => CannedResponse::sse(&acme_sse(&[(
                "call",
                json!({"index": 0, "id": "c1", "name": expected::TOOL_NAME, "args": "{\"city\":"}),
            )])),
            // A token limit hit mid-call: the `end` event comes, the arguments stop mid-JSON.
            Case::TruncatedToolArguments => CannedResponse::sse(&acme_sse(&[
                (
                    "call",
                    json!({"index": 0, "id": "c1", "name": expected::TOOL_NAME, "args": "{\"city\":"}),
                ),
                ("end", json!({"finish": "limit", "usage": usage})),
            ])),
            Case::BadRequest400 => acme_error(400, "bad_input", "conversation is empty"),
            Case::Unauthorized401 => acme_error(
                401,
                "bad_key",
                &format!("key {} is not valid", expected::API_KEY),
            ),
            Case::NotFound404 => acme_error(404, "no_model", "model acme-1 does not exist"),
            Case::RateLimited429 => acme_error(429, "acme_throttled", "slow down")
                .with_header("retry-after", expected::RETRY_AFTER_SECS.to_string()),
            Case::Server500 => acme_error(500, "internal", "oops"),
            Case::Unavailable503 => acme_error(503, "maintenance", "back soon"),
            Case::Overloaded529 => acme_error(529, "acme_busy", "too busy"),
            Case::MalformedJson => {
                CannedResponse::raw(200, "application/json", "{\"text\": \"It is")
            }
            _ => reply(expected::REPLY_TEXT, json!([]), "done"),
        })
    }

    fn check_request(
        &self,
        case: Case,
        request: &RecordedRequest,
    ) -> std::result::Result<(), String> {
        if request.path != "/v1/generate" {
            return Err(format!("path {}", request.path));
        }
        if request.header("x-acme-key") != Some(expected::API_KEY) {
            return Err("missing x-acme-key".into());
        }
        let body = request.json().ok_or("body is not json")?;
        if body.get("stream") != Some(&Value::Bool(case.is_stream())) {
            return Err("stream flag".into());
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let report = run_suite(&AcmeAdapter).await;
    print!("{report}");
    if report.is_success() {
        println!(
            "the example provider passes all {} conformance cases it supports",
            report.passed()
        );
    } else {
        eprintln!("conformance failures: {}", report.failures().len());
        std::process::exit(1);
    }
}
