//! The OpenAI wire format: typed serde structs for the Chat Completions / Embeddings request
//! and response bodies, and pure conversions to and from llmkit's types. No I/O here, so every
//! mapping is unit-tested against the shared real payloads.

use llmkit_core::schema::to_dialect;
use llmkit_core::{
    ChatRequest, ChatResponse, ContentPart, Error, ErrorKind, FinishReason, ImageSource, Message,
    Result, Role, StreamEvent, ToolCall, ToolChoice, Usage,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::ProviderKind;

/// Which field carries the output-token limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaxTokensField {
    /// `max_completion_tokens` (OpenAI, Azure).
    MaxCompletionTokens,
    /// `max_tokens` (most compatible servers only know the older name).
    MaxTokens,
}

/// What differs between OpenAI, Azure and OpenAI-compatible servers in the request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyOptions {
    /// The output-token limit's field.
    pub max_tokens_field: MaxTokensField,
    /// Transform `json_schema` response formats for OpenAI strict mode.
    pub strict_schemas: bool,
}

// ---------------------------------------------------------------------------------------------
// Request bodies. Every struct declares its fields in sorted order: serde writes fields in
// declaration order, and the `json!` bodies these replace were `serde_json::Map`s, which write
// sorted keys, so requests stay byte-identical (pinned by `request_bytes_are_pinned`).
// ---------------------------------------------------------------------------------------------

/// A `POST /chat/completions` body.
#[derive(Debug, Serialize)]
pub(crate) struct ChatCompletionRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    messages: Vec<RequestMessage<'a>>,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<WireResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    /// Widened from llmkit's `f32` exactly as the former `json!` bodies did (`0.7` goes out
    /// as `0.699999988079071`), so request bytes did not change with the typed structs.
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<WireToolChoice<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<RequestTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
}

/// `stream_options`: llmkit always asks for the usage chunk.
#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// One message of `messages`, whatever its role.
#[derive(Debug, Serialize)]
struct RequestMessage<'a> {
    /// `null` for an assistant turn that only calls tools.
    content: Option<MessageContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    role: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<RequestToolCall<'a>>,
}

/// Message content: plain text, or parts when a user turn carries images.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum MessageContent<'a> {
    Text(std::borrow::Cow<'a, str>),
    Parts(Vec<ContentPartOut<'a>>),
}

/// A content part (`text` or `image_url`); a struct rather than a tagged enum so the keys stay
/// in sorted order.
#[derive(Debug, Serialize)]
struct ContentPartOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    image_url: Option<ImageUrl>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct ImageUrl {
    url: String,
}

/// A tool call in an assistant turn of the history.
#[derive(Debug, Serialize)]
struct RequestToolCall<'a> {
    function: RequestFunctionCall<'a>,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct RequestFunctionCall<'a> {
    /// JSON text, as the API wants it.
    arguments: String,
    name: &'a str,
}

/// A tool definition.
#[derive(Debug, Serialize)]
struct RequestTool<'a> {
    function: RequestFunction<'a>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct RequestFunction<'a> {
    description: &'a str,
    name: &'a str,
    parameters: &'a Value,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    strict: bool,
}

/// `tool_choice`: a mode string or one named function.
#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WireToolChoice<'a> {
    Mode(&'static str),
    Function {
        function: FunctionName<'a>,
        #[serde(rename = "type")]
        kind: &'static str,
    },
}

#[derive(Debug, Serialize)]
struct FunctionName<'a> {
    name: &'a str,
}

/// `response_format`.
#[derive(Debug, Serialize)]
struct WireResponseFormat<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    json_schema: Option<JsonSchemaFormat<'a>>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Debug, Serialize)]
struct JsonSchemaFormat<'a> {
    name: std::borrow::Cow<'a, str>,
    schema: Value,
    strict: bool,
}

/// A `POST /embeddings` body.
#[derive(Debug, Serialize)]
pub(crate) struct EmbeddingsRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dimensions: Option<usize>,
    pub(crate) encoding_format: &'static str,
    pub(crate) input: &'a [String],
    pub(crate) model: &'a str,
}

/// Builds the Chat Completions request body.
pub(crate) fn chat_body<'a>(
    request: &'a ChatRequest,
    model: &'a str,
    stream: bool,
    opts: BodyOptions,
) -> Result<ChatCompletionRequest<'a>> {
    let (max_completion_tokens, max_tokens) = match opts.max_tokens_field {
        MaxTokensField::MaxCompletionTokens => (request.max_tokens, None),
        MaxTokensField::MaxTokens => (None, request.max_tokens),
    };
    let tools = request
        .tools
        .iter()
        .map(|t| RequestTool {
            function: RequestFunction {
                description: &t.description,
                name: &t.name,
                parameters: &t.parameters,
                strict: t.strict,
            },
            kind: "function",
        })
        .collect();
    let tool_choice = request.tool_choice.as_ref().map(|choice| match choice {
        ToolChoice::Auto => WireToolChoice::Mode("auto"),
        ToolChoice::None => WireToolChoice::Mode("none"),
        ToolChoice::Required => WireToolChoice::Mode("required"),
        ToolChoice::Tool { name } => WireToolChoice::Function {
            function: FunctionName { name },
            kind: "function",
        },
    });
    let response_format = match &request.response_format {
        llmkit_core::ResponseFormat::Text => None,
        llmkit_core::ResponseFormat::Json => Some(WireResponseFormat {
            json_schema: None,
            kind: "json_object",
        }),
        llmkit_core::ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => {
            let (schema, strict) = wire_schema(schema, *strict && opts.strict_schemas);
            Some(WireResponseFormat {
                json_schema: Some(JsonSchemaFormat {
                    name: llmkit_core::schema::wire_name(name, "response").into(),
                    schema,
                    strict,
                }),
                kind: "json_schema",
            })
        }
    };
    Ok(ChatCompletionRequest {
        max_completion_tokens,
        max_tokens,
        messages: messages(&request.messages)?,
        model: request.model.as_deref().unwrap_or(model),
        response_format,
        seed: request.seed,
        stop: &request.stop,
        stream,
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
        temperature: request.temperature.map(f64::from),
        tool_choice,
        tools,
        top_p: request.top_p.map(f64::from),
    })
}

/// The schema to send and whether strict mode stays on. A schema strict mode cannot express
/// (a free-form map, for example) is sent as given with `strict: false`: the server then
/// guides rather than guarantees, and llmkit's structured-output layer re-checks the reply
/// against the original schema either way.
fn wire_schema(schema: &Value, strict: bool) -> (Value, bool) {
    if !strict {
        return (schema.clone(), false);
    }
    match to_dialect(schema, ProviderKind::OpenAi.schema_dialect()) {
        Ok(t) => (t.schema, true),
        Err(_) => (schema.clone(), false),
    }
}

fn image_url(source: &ImageSource) -> String {
    match source {
        ImageSource::Url { url } => url.clone(),
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
    }
}

fn messages(messages: &[Message]) -> Result<Vec<RequestMessage<'_>>> {
    let mut out = Vec::with_capacity(messages.len());
    for m in messages {
        match m.role {
            Role::Tool => {
                for part in &m.content {
                    match part {
                        ContentPart::ToolResult(r) => out.push(RequestMessage {
                            content: Some(MessageContent::Text(r.content.as_str().into())),
                            name: None,
                            role: "tool",
                            tool_call_id: Some(&r.call_id),
                            tool_calls: Vec::new(),
                        }),
                        ContentPart::Text { text, .. } => {
                            return Err(Error::new(
                                ErrorKind::InvalidRequest,
                                format!(
                                    "tool message has text `{}` outside a tool result",
                                    text.chars().take(40).collect::<String>()
                                ),
                            ));
                        }
                        _ => {}
                    }
                }
            }
            Role::Assistant => {
                let text = m.text();
                let tool_calls: Vec<RequestToolCall<'_>> = m
                    .tool_calls()
                    .map(|c| RequestToolCall {
                        function: RequestFunctionCall {
                            arguments: c.arguments.to_string(),
                            name: &c.name,
                        },
                        id: &c.id,
                        kind: "function",
                    })
                    .collect();
                out.push(RequestMessage {
                    content: (!text.is_empty() || tool_calls.is_empty())
                        .then(|| MessageContent::Text(text.into())),
                    name: m.name.as_deref(),
                    role: "assistant",
                    tool_call_id: None,
                    tool_calls,
                });
            }
            Role::System | Role::User => {
                let only_text = m
                    .content
                    .iter()
                    .all(|p| matches!(p, ContentPart::Text { .. }));
                let content = if only_text || m.role == Role::System {
                    MessageContent::Text(m.text().into())
                } else {
                    MessageContent::Parts(
                        m.content
                            .iter()
                            .filter_map(|p| match p {
                                ContentPart::Text { text, .. } => Some(ContentPartOut {
                                    image_url: None,
                                    text: Some(text),
                                    kind: "text",
                                }),
                                ContentPart::Image { source } => Some(ContentPartOut {
                                    image_url: Some(ImageUrl {
                                        url: image_url(source),
                                    }),
                                    text: None,
                                    kind: "image_url",
                                }),
                                _ => None,
                            })
                            .collect(),
                    )
                };
                out.push(RequestMessage {
                    content: Some(content),
                    name: m.name.as_deref(),
                    role: m.role.as_str(),
                    tool_call_id: None,
                    tool_calls: Vec::new(),
                });
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Debug, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// OpenAI's `prompt_tokens` already include cached tokens, as llmkit's `input_tokens` do.
    pub(crate) fn to_usage(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            cached_input_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0),
            cache_write_tokens: 0,
            output_tokens: self.completion_tokens,
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Debug, Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    delta: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

pub(crate) fn finish_reason(raw: &str) -> FinishReason {
    match raw {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}

/// Parses a non-streamed response. A refusal becomes the reply text with
/// [`FinishReason::ContentFilter`], so callers see why there is no answer.
pub(crate) fn parse_response(
    wire: WireResponse,
    provider: &str,
    configured_model: &str,
) -> Result<ChatResponse> {
    let choice = wire
        .choices
        .into_iter()
        .min_by_key(|c| c.index.unwrap_or(0))
        .ok_or_else(|| {
            Error::invalid_response("response has no choices").with_provider(provider)
        })?;
    let message = choice
        .message
        .ok_or_else(|| Error::invalid_response("choice has no message").with_provider(provider))?;
    let mut content = Vec::new();
    let mut finish = choice
        .finish_reason
        .as_deref()
        .map_or(FinishReason::Stop, finish_reason);
    match (message.content, message.refusal) {
        (_, Some(refusal)) if !refusal.is_empty() => {
            content.push(ContentPart::text(refusal));
            finish = FinishReason::ContentFilter;
        }
        (Some(text), _) if !text.is_empty() => content.push(ContentPart::text(text)),
        _ => {}
    }
    for call in message.tool_calls {
        let function = call.function.unwrap_or(WireFunction {
            name: None,
            arguments: None,
        });
        let name = function.name.unwrap_or_default();
        let raw = function.arguments.unwrap_or_default();
        let arguments = if raw.trim().is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_str(&raw).map_err(|e| {
                Error::invalid_response(format!("tool call `{name}` arguments are not json: {e}"))
                    .with_provider(provider)
            })?
        };
        content.push(ContentPart::ToolCall(ToolCall {
            id: call.id.unwrap_or_default(),
            name,
            arguments,
        }));
    }
    Ok(ChatResponse {
        message: Message {
            role: Role::Assistant,
            content,
            name: None,
        },
        finish_reason: finish,
        usage: wire.usage.map(|u| u.to_usage()).unwrap_or_default(),
        model: wire.model.unwrap_or_else(|| configured_model.to_owned()),
        provider: provider.to_owned(),
        provider_request_id: wire.id,
        ..Default::default()
    })
}

/// Turns SSE `data:` payloads into [`StreamEvent`]s. `[DONE]` or a finish reason is the end
/// marker; how a stream without one ends is decided by the shared contract in `frames.rs`.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    started: bool,
    finish: Option<FinishReason>,
    refused: bool,
    /// Provider request id from the response headers, preferred over the chunk id.
    header_request_id: Option<String>,
    /// Reported as the answering model when chunks do not name one (some compatible servers).
    requested_model: String,
}

impl StreamState {
    pub(crate) fn new(header_request_id: Option<String>, requested_model: String) -> Self {
        StreamState {
            header_request_id,
            requested_model,
            ..Default::default()
        }
    }

    /// One `data:` payload. `on_error` classifies an `{"error": ...}` payload sent mid-stream.
    pub(crate) fn on_data(
        &mut self,
        data: &str,
        on_error: &dyn Fn(&str) -> Error,
    ) -> Result<Vec<StreamEvent>> {
        if data.trim() == "[DONE]" {
            return Ok(vec![StreamEvent::Done {
                finish_reason: self.final_reason(),
            }]);
        }
        let value: Value = serde_json::from_str(data).map_err(|e| {
            Error::invalid_response(format!("stream chunk is not json: {e}"))
                .with_body_excerpt(data)
        })?;
        if value.get("error").is_some() {
            return Err(on_error(data));
        }
        let chunk: WireResponse = serde_json::from_value(value).map_err(|e| {
            Error::invalid_response(format!("stream chunk has an unexpected shape: {e}"))
                .with_body_excerpt(data)
        })?;
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                model: chunk
                    .model
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| self.requested_model.clone()),
                provider_request_id: self.header_request_id.clone().or(chunk.id.clone()),
            });
        }
        // llmkit asks for one choice (`n` is never sent); should a server send several anyway,
        // only choice 0 is followed so their deltas never interleave.
        if let Some(choice) = chunk
            .choices
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0)
        {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta { text });
                }
                if let Some(refusal) = delta.refusal.filter(|t| !t.is_empty()) {
                    self.refused = true;
                    out.push(StreamEvent::TextDelta { text: refusal });
                }
                for (pos, call) in delta.tool_calls.into_iter().enumerate() {
                    let (name, arguments) = call
                        .function
                        .map(|f| (f.name, f.arguments.unwrap_or_default()))
                        .unwrap_or_default();
                    out.push(StreamEvent::ToolCallDelta {
                        index: call.index.unwrap_or(pos),
                        id: call.id,
                        name,
                        arguments,
                    });
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish = Some(finish_reason(&reason));
            }
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage {
                usage: usage.to_usage(),
            });
        }
        Ok(out)
    }

    fn final_reason(&self) -> FinishReason {
        if self.refused {
            return FinishReason::ContentFilter;
        }
        self.finish.clone().unwrap_or(FinishReason::Stop)
    }

    /// The byte stream ended without `[DONE]`. Some compatible servers omit it after a finish
    /// reason; that still counts as finished. Without either, no `Done`: the shared contract
    /// reports the truncation.
    pub(crate) fn on_end(&mut self) -> Vec<StreamEvent> {
        match self.finish {
            Some(_) => vec![StreamEvent::Done {
                finish_reason: self.final_reason(),
            }],
            None => Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum WireVector {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Deserialize)]
struct WireEmbedding {
    #[serde(default)]
    index: usize,
    embedding: WireVector,
}

#[derive(Debug, Deserialize)]
pub(crate) struct WireEmbeddings {
    data: Vec<WireEmbedding>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// Parses an embeddings response in either encoding (`float` arrays or `base64` little-endian
/// f32), ordered by `index`.
pub(crate) fn parse_embeddings(
    wire: WireEmbeddings,
    expected: usize,
) -> Result<(Vec<Vec<f32>>, Option<String>, Usage)> {
    use base64::Engine as _;
    let mut data = wire.data;
    data.sort_by_key(|d| d.index);
    let mut vectors = Vec::with_capacity(data.len());
    for d in data {
        let v = match d.embedding {
            WireVector::Floats(v) => v,
            WireVector::Base64(s) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(s.as_bytes())
                    .map_err(|e| {
                        Error::invalid_response(format!("embedding is not base64: {e}"))
                    })?;
                if bytes.len() % 4 != 0 {
                    return Err(Error::invalid_response(
                        "base64 embedding length is not a multiple of 4 bytes",
                    ));
                }
                bytes
                    .chunks_exact(4)
                    .filter_map(|c| <[u8; 4]>::try_from(c).ok().map(f32::from_le_bytes))
                    .collect()
            }
        };
        vectors.push(v);
    }
    if vectors.len() != expected {
        return Err(Error::invalid_response(format!(
            "asked for {expected} embeddings, got {}",
            vectors.len()
        )));
    }
    let usage = wire.usage.map(|u| u.to_usage()).unwrap_or_default();
    Ok((vectors, wire.model, usage))
}
