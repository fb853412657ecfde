//! Ollama native API (`/api/chat`, `/api/embed`) wire types and the pure conversions between
//! them and llmkit's types.

use llmkit_core::schema::to_dialect;
use llmkit_core::{
    ChatRequest, ChatResponse, ContentPart, Error, ErrorKind, FinishReason, ImageSource, Message,
    ResponseFormat, Result, Role, StreamEvent, ToolCall, Usage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ProviderKind;
use crate::http::{ErrorMapper, ErrorRule};
use crate::tool_names::tool_name_for_call;

/// Provider name as in the OpenTelemetry `gen_ai.provider.name` attribute.
pub(crate) const PROVIDER: &str = "ollama";

/// A request body for `POST /api/chat`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChatBody {
    pub(crate) model: String,
    pub(crate) messages: Vec<WireMessage>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<WireTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) format: Option<Value>,
    #[serde(skip_serializing_if = "Options::is_empty")]
    pub(crate) options: Options,
    pub(crate) stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) keep_alive: Option<String>,
}

/// A message, sent and received.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct WireMessage {
    #[serde(default)]
    pub(crate) role: String,
    #[serde(default)]
    pub(crate) content: String,
    // `null` appears in real responses, hence `Option` rather than a defaulted `Vec`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) images: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tool_calls: Option<Vec<WireToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tool_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) thinking: Option<String>,
}

/// A tool call: Ollama sends arguments as a JSON object and (usually) no id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct WireToolCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    pub(crate) function: WireFunction,
}

/// The called function.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct WireFunction {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) arguments: Value,
}

/// A tool definition.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireTool {
    #[serde(rename = "type")]
    pub(crate) kind: &'static str,
    pub(crate) function: WireToolFunction,
}

/// A tool definition's function.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireToolFunction {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) parameters: Value,
}

/// Sampling `options`.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) num_predict: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) stop: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) num_ctx: Option<u32>,
}

impl Options {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.seed.is_none()
            && self.num_predict.is_none()
            && self.stop.is_empty()
            && self.num_ctx.is_none()
    }
}

/// Settings beyond the request itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct BuildOptions {
    pub(crate) model: String,
    pub(crate) keep_alive: Option<String>,
    pub(crate) num_ctx: Option<u32>,
    pub(crate) stream: bool,
}

/// Turns a [`ChatRequest`] into an `/api/chat` body.
pub(crate) fn build_request(req: &ChatRequest, opts: &BuildOptions) -> Result<ChatBody> {
    let mut messages = Vec::with_capacity(req.messages.len());
    for (pos, m) in req.messages.iter().enumerate() {
        let mut texts = Vec::new();
        let mut images = Vec::new();
        let mut calls = Vec::new();
        let mut results = Vec::new();
        for part in &m.content {
            match part {
                ContentPart::Text { text, .. } => texts.push(text.as_str()),
                ContentPart::Image { source } => match source {
                    ImageSource::Base64 { data, .. } => images.push(data.clone()),
                    ImageSource::Url { .. } => {
                        return Err(Error::new(
                            ErrorKind::Unsupported,
                            "ollama accepts inline base64 images only, not image urls",
                        ));
                    }
                },
                ContentPart::ToolCall(call) => calls.push(WireToolCall {
                    id: None,
                    function: WireFunction {
                        name: call.name.clone(),
                        arguments: call.arguments.clone(),
                    },
                }),
                ContentPart::ToolResult(result) => {
                    let name =
                        tool_name_for_call(&req.messages, pos, &result.call_id).map(str::to_owned);
                    results.push((name, result.content.clone()));
                }
                _ => {
                    return Err(Error::new(
                        ErrorKind::Unsupported,
                        "ollama does not support this content part",
                    ));
                }
            }
        }
        if !results.is_empty() {
            // Ollama has one result per `tool` message.
            for (name, content) in results {
                messages.push(WireMessage {
                    role: "tool".to_owned(),
                    content,
                    tool_name: name,
                    ..Default::default()
                });
            }
            continue;
        }
        messages.push(WireMessage {
            role: m.role.as_str().to_owned(),
            content: texts.concat(),
            images: (!images.is_empty()).then_some(images),
            tool_calls: (!calls.is_empty()).then_some(calls),
            ..Default::default()
        });
    }
    let format = match &req.response_format {
        ResponseFormat::Text => None,
        ResponseFormat::Json => Some(Value::String("json".to_owned())),
        ResponseFormat::JsonSchema { schema, .. } => {
            Some(to_dialect(schema, ProviderKind::Ollama.schema_dialect())?.schema)
        }
    };
    Ok(ChatBody {
        model: req.model.clone().unwrap_or_else(|| opts.model.clone()),
        messages,
        tools: req
            .tools
            .iter()
            .map(|t| WireTool {
                kind: "function",
                function: WireToolFunction {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: t.parameters.clone(),
                },
            })
            .collect(),
        format,
        options: Options {
            temperature: req.temperature,
            top_p: req.top_p,
            seed: req.seed,
            num_predict: req.max_tokens,
            stop: req.stop.clone(),
            num_ctx: opts.num_ctx,
        },
        stream: opts.stream,
        keep_alive: opts.keep_alive.clone(),
    })
}

/// A response body, or one line of a streamed reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ChatChunk {
    #[serde(default)]
    pub(crate) model: String,
    #[serde(default)]
    pub(crate) message: Option<WireMessage>,
    #[serde(default)]
    pub(crate) done: bool,
    #[serde(default)]
    pub(crate) done_reason: Option<String>,
    #[serde(default)]
    pub(crate) prompt_eval_count: Option<u64>,
    #[serde(default)]
    pub(crate) eval_count: Option<u64>,
    #[serde(default)]
    pub(crate) error: Option<String>,
}

impl ChatChunk {
    fn usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_eval_count.unwrap_or(0),
            output_tokens: self.eval_count.unwrap_or(0),
            ..Default::default()
        }
    }
}

/// Maps `done_reason` onto llmkit's finish reasons.
pub(crate) fn finish_reason(raw: Option<&str>, has_calls: bool) -> FinishReason {
    match raw {
        _ if has_calls => FinishReason::ToolCalls,
        None | Some("stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

/// Tool calls of one message, with ids (Ollama sends none, llmkit needs one per call).
fn convert_calls(calls: Vec<WireToolCall>, next_call: &mut usize) -> Vec<ToolCall> {
    calls
        .into_iter()
        .map(|c| {
            let id =
                c.id.filter(|i| !i.is_empty())
                    .unwrap_or_else(|| format!("call_{next_call}"));
            *next_call += 1;
            ToolCall {
                id,
                name: c.function.name,
                arguments: match c.function.arguments {
                    // Some models return arguments as a JSON string; normalize to an object.
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::String(s)),
                    Value::Null => Value::Object(serde_json::Map::new()),
                    v => v,
                },
            }
        })
        .collect()
}

/// Turns a non-streamed response body into a [`ChatResponse`].
pub(crate) fn parse_response(chunk: ChatChunk) -> Result<ChatResponse> {
    if let Some(e) = chunk.error {
        return Err(error_from_message(&e));
    }
    let usage = chunk.usage();
    let mut next_call = 0;
    let mut content = Vec::new();
    if let Some(m) = chunk.message {
        if !m.content.is_empty() {
            content.push(ContentPart::text(m.content));
        }
        content.extend(
            convert_calls(m.tool_calls.unwrap_or_default(), &mut next_call)
                .into_iter()
                .map(ContentPart::ToolCall),
        );
    }
    Ok(ChatResponse {
        message: Message {
            role: Role::Assistant,
            content,
            name: None,
        },
        finish_reason: finish_reason(chunk.done_reason.as_deref(), next_call > 0),
        usage,
        model: chunk.model,
        provider: PROVIDER.to_owned(),
        ..Default::default()
    })
}

/// Folds NDJSON lines of `/api/chat` into llmkit [`StreamEvent`]s.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    started: bool,
    next_call: usize,
}

impl StreamState {
    /// A state for one stream.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Handles one parsed line. An `{"error": ...}` line (Ollama reports failures mid-stream
    /// this way, with HTTP 200) becomes an error.
    pub(crate) fn on_chunk(&mut self, chunk: ChatChunk) -> Result<Vec<StreamEvent>> {
        if let Some(e) = &chunk.error {
            return Err(error_from_message(e));
        }
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                model: chunk.model.clone(),
                provider_request_id: None,
            });
        }
        let usage = chunk.usage();
        if let Some(m) = chunk.message {
            if !m.content.is_empty() {
                out.push(StreamEvent::TextDelta { text: m.content });
            }
            let first = self.next_call;
            for (i, call) in convert_calls(m.tool_calls.unwrap_or_default(), &mut self.next_call)
                .into_iter()
                .enumerate()
            {
                out.push(StreamEvent::ToolCallDelta {
                    index: first + i,
                    id: Some(call.id),
                    name: Some(call.name),
                    arguments: call.arguments.to_string(),
                });
            }
        }
        if chunk.done {
            out.push(StreamEvent::Usage { usage });
            out.push(StreamEvent::Done {
                finish_reason: finish_reason(chunk.done_reason.as_deref(), self.next_call > 0),
            });
        }
        Ok(out)
    }
}

/// A request body for `POST /api/embed`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmbedBody {
    pub(crate) model: String,
    pub(crate) input: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dimensions: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) keep_alive: Option<String>,
}

/// An `/api/embed` response body.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EmbedResponse {
    #[serde(default)]
    pub(crate) model: String,
    #[serde(default)]
    pub(crate) embeddings: Vec<Vec<f32>>,
    #[serde(default)]
    pub(crate) prompt_eval_count: Option<u64>,
}

/// Ollama's error classification. Ollama has no error codes, only a status and a message;
/// checked before the shared rules.
pub(crate) static ERROR_RULES: &[ErrorRule] = &[
    // "server busy, please try again. maximum pending requests exceeded"
    ErrorRule::status(503, ErrorKind::Overloaded),
    ErrorRule::message("not found", ErrorKind::NotFound),
    ErrorRule::message("context length", ErrorKind::ContextLength),
];

/// The mapper for HTTP error responses.
pub(crate) fn error_mapper() -> ErrorMapper {
    ErrorMapper::new(PROVIDER, ERROR_RULES)
}

/// An `{"error": ...}` payload with no HTTP status to go by: a line in the middle of a stream
/// (sent after a 200) or an error inside a 200 body.
fn error_from_message(message: &str) -> Error {
    error_mapper().error_from_stream_event(&serde_json::json!({ "error": message }).to_string())
}
