//! Anthropic Messages API wire types and the pure conversions between them and llmkit's types.
//!
//! Nothing here does I/O: [`build_request`] turns a [`ChatRequest`] into the JSON body,
//! [`parse_response`] turns a response body into a [`ChatResponse`], and [`StreamState`] turns
//! streamed event payloads into [`StreamEvent`]s. The HTTP side lives in `client.rs`.

use std::collections::BTreeMap;

use llmkit_core::schema::to_dialect;
use llmkit_core::{
    ChatRequest, ChatResponse, ContentPart, Error, ErrorKind, FinishReason, ImageSource, Message,
    ResponseFormat, Result, Role, StreamEvent, ToolCall, ToolChoice, Usage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cache::{self, BreakpointSite, CachePlan, CacheTtl};
use crate::config::ProviderKind;
use crate::http::{ErrorMapper, ErrorRule};

/// Provider name as in the OpenTelemetry `gen_ai.provider.name` attribute.
pub(crate) const PROVIDER: &str = "anthropic";

/// Most breakpoints the Messages API accepts in one request.
pub(crate) const MAX_BREAKPOINTS: usize = 4;

/// `cache_control` on a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<&'static str>,
}

impl CacheControl {
    fn ephemeral(ttl: CacheTtl) -> Self {
        CacheControl {
            kind: "ephemeral",
            ttl: match ttl {
                // The 5-minute lifetime is the default; leaving `ttl` out keeps requests
                // valid on API versions that predate the field.
                CacheTtl::FiveMinutes => None,
                CacheTtl::OneHour => Some("1h"),
            },
        }
    }
}

/// A request body for `POST /v1/messages`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MessagesRequest {
    pub(crate) model: String,
    pub(crate) max_tokens: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) system: Vec<RequestBlock>,
    pub(crate) messages: Vec<RequestMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_p: Option<f32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<RequestTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_choice: Option<WireToolChoice>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) stream: bool,
}

/// One turn of the conversation.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestMessage {
    pub(crate) role: &'static str,
    pub(crate) content: Vec<RequestBlock>,
}

/// A content block we send.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum RequestBlock {
    Text {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    Image {
        source: WireImageSource,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
}

impl RequestBlock {
    /// Characters this block adds to the prompt prefix, for the cacheable-length estimate.
    fn prefix_chars(&self) -> usize {
        match self {
            RequestBlock::Text { text, .. } => text.len(),
            // An image is at least a few hundred tokens; counting none keeps the estimate
            // conservative (a breakpoint is only ever skipped, never wrongly kept).
            RequestBlock::Image { .. } => 0,
            RequestBlock::ToolUse { name, input, .. } => name.len() + input.to_string().len(),
            RequestBlock::ToolResult { content, .. } => content.len(),
        }
    }

    fn set_cache_control(&mut self, cc: CacheControl) {
        match self {
            RequestBlock::Text { cache_control, .. }
            | RequestBlock::Image { cache_control, .. }
            | RequestBlock::ToolResult { cache_control, .. } => *cache_control = Some(cc),
            // Never produced as a breakpoint site: llmkit marks text parts only.
            RequestBlock::ToolUse { .. } => {}
        }
    }
}

/// Image source in Anthropic's shape.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

/// A tool definition.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RequestTool {
    pub(crate) name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) description: String,
    pub(crate) input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cache_control: Option<CacheControl>,
}

/// `tool_choice` values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireToolChoice {
    Auto,
    Any,
    None,
    Tool { name: String },
}

/// How structured output was requested, so the reply can be turned back into JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StructuredPlan {
    /// The forced tool's name.
    pub(crate) tool: String,
    /// The schema root was not an object and was wrapped as `{"value": ...}`.
    pub(crate) wrapped: bool,
}

/// Settings that shape the body beyond the request itself.
#[derive(Debug, Clone)]
pub(crate) struct BuildOptions {
    pub(crate) model: String,
    pub(crate) default_max_tokens: u32,
    pub(crate) cache_tools: bool,
    pub(crate) cache_ttl: CacheTtl,
    pub(crate) min_cache_tokens: Option<u32>,
    pub(crate) stream: bool,
}

/// A built body plus what the response parser needs to know about it.
#[derive(Debug, Clone)]
pub(crate) struct BuiltRequest {
    pub(crate) body: MessagesRequest,
    pub(crate) structured: Option<StructuredPlan>,
    pub(crate) cache: CachePlan,
}

/// Turns a [`ChatRequest`] into a Messages API body.
///
/// System messages (wherever they appear) become the top-level `system` field, tool results
/// become `tool_result` blocks in a user turn, consecutive turns of one role are merged (the
/// API wants all results of parallel calls in one turn), and `cache_breakpoint` markers become
/// `cache_control` within the API's limits (see [`super::cache`]).
pub(crate) fn build_request(req: &ChatRequest, opts: &BuildOptions) -> Result<BuiltRequest> {
    let model = req.model.clone().unwrap_or_else(|| opts.model.clone());
    let mut sites: Vec<(BreakpointSite, usize)> = Vec::new();
    let mut prefix = 0usize;

    // Cache prefix order on the API side is tools, then system, then messages.
    let mut tools = Vec::with_capacity(req.tools.len() + 1);
    for t in &req.tools {
        tools.push(RequestTool {
            name: t.name.clone(),
            description: t.description.clone(),
            input_schema: input_schema(&t.parameters)?,
            cache_control: None,
        });
    }
    let mut tool_choice = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => WireToolChoice::Auto,
        ToolChoice::None => WireToolChoice::None,
        ToolChoice::Required => WireToolChoice::Any,
        ToolChoice::Tool { name } => WireToolChoice::Tool { name: name.clone() },
    });
    let structured = match &req.response_format {
        ResponseFormat::Text => None,
        ResponseFormat::Json => Some((
            "json_output".to_owned(),
            serde_json::json!({"type": "object"}),
        )),
        ResponseFormat::JsonSchema { name, schema, .. } => Some((tool_name(name), schema.clone())),
    };
    let structured = match structured {
        None => None,
        Some((name, schema)) => {
            let wrapped = schema.get("type").and_then(Value::as_str) != Some("object");
            let schema = if wrapped {
                serde_json::json!({
                    "type": "object",
                    "properties": {"value": schema},
                    "required": ["value"],
                })
            } else {
                input_schema(&schema)?
            };
            tools.push(RequestTool {
                name: name.clone(),
                description: "Reply by calling this tool with the answer as its input.".to_owned(),
                input_schema: schema,
                cache_control: None,
            });
            tool_choice = Some(WireToolChoice::Tool { name: name.clone() });
            Some(StructuredPlan {
                tool: name,
                wrapped,
            })
        }
    };
    for t in &tools {
        prefix += t.name.len() + t.description.len() + t.input_schema.to_string().len();
    }
    if opts.cache_tools && !req.tools.is_empty() {
        // The structured-output tool (if any) comes last and changes per schema, so the
        // breakpoint goes on the last *caller* tool.
        let last = req.tools.len() - 1;
        let chars: usize = tools
            .iter()
            .take(req.tools.len())
            .map(|t| t.name.len() + t.description.len() + t.input_schema.to_string().len())
            .sum();
        sites.push((BreakpointSite::Tool(last), chars));
    }

    let mut system = Vec::new();
    for m in req.messages.iter().filter(|m| m.role == Role::System) {
        for part in &m.content {
            if let ContentPart::Text {
                text,
                cache_breakpoint,
            } = part
            {
                prefix += text.len();
                if *cache_breakpoint {
                    sites.push((BreakpointSite::System(system.len()), prefix));
                }
                system.push(RequestBlock::Text {
                    text: text.clone(),
                    cache_control: None,
                });
            } else {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    "system messages may only hold text for anthropic",
                ));
            }
        }
    }

    let mut messages: Vec<RequestMessage> = Vec::new();
    for m in req.messages.iter().filter(|m| m.role != Role::System) {
        let role = match m.role {
            Role::Assistant => "assistant",
            _ => "user",
        };
        let merge = messages.last().is_some_and(|last| last.role == role);
        if !merge {
            messages.push(RequestMessage {
                role,
                content: Vec::new(),
            });
        }
        let msg_index = messages.len() - 1;
        let Some(turn) = messages.last_mut() else {
            continue;
        };
        for part in &m.content {
            let (block, marked) = block_for(m, part)?;
            prefix += block.prefix_chars();
            if marked {
                sites.push((
                    BreakpointSite::Message(msg_index, turn.content.len()),
                    prefix,
                ));
            }
            turn.content.push(block);
        }
    }
    if messages.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "anthropic needs at least one user message besides the system prompt",
        ));
    }

    let min_tokens = opts
        .min_cache_tokens
        .unwrap_or_else(|| cache::min_cacheable_tokens(&model));
    let plan = cache::plan(&sites, min_tokens, MAX_BREAKPOINTS);
    let cc = CacheControl::ephemeral(opts.cache_ttl);
    for site in &plan.kept {
        match *site {
            BreakpointSite::Tool(i) => {
                if let Some(t) = tools.get_mut(i) {
                    t.cache_control = Some(cc.clone());
                }
            }
            BreakpointSite::System(i) => {
                if let Some(b) = system.get_mut(i) {
                    b.set_cache_control(cc.clone());
                }
            }
            BreakpointSite::Message(mi, bi) => {
                if let Some(b) = messages.get_mut(mi).and_then(|m| m.content.get_mut(bi)) {
                    b.set_cache_control(cc.clone());
                }
            }
        }
    }

    Ok(BuiltRequest {
        body: MessagesRequest {
            model,
            max_tokens: req.max_tokens.unwrap_or(opts.default_max_tokens),
            system,
            messages,
            temperature: req.temperature,
            top_p: req.top_p,
            stop_sequences: req.stop.clone(),
            tools,
            tool_choice,
            stream: opts.stream,
        },
        structured,
        cache: plan,
    })
}

/// One llmkit content part as an Anthropic block, plus whether it carries a breakpoint marker.
fn block_for(m: &Message, part: &ContentPart) -> Result<(RequestBlock, bool)> {
    Ok(match part {
        ContentPart::Text {
            text,
            cache_breakpoint,
        } => (
            RequestBlock::Text {
                text: text.clone(),
                cache_control: None,
            },
            *cache_breakpoint,
        ),
        ContentPart::Image { source } => (
            RequestBlock::Image {
                source: match source {
                    ImageSource::Url { url } => WireImageSource::Url { url: url.clone() },
                    ImageSource::Base64 { media_type, data } => WireImageSource::Base64 {
                        media_type: media_type.clone(),
                        data: data.clone(),
                    },
                },
                cache_control: None,
            },
            false,
        ),
        ContentPart::ToolCall(call) => {
            if m.role != Role::Assistant {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    "tool calls may only appear in assistant messages",
                ));
            }
            (
                RequestBlock::ToolUse {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    input: if call.arguments.is_object() {
                        call.arguments.clone()
                    } else {
                        Value::Object(serde_json::Map::new())
                    },
                },
                false,
            )
        }
        ContentPart::ToolResult(result) => (
            RequestBlock::ToolResult {
                tool_use_id: result.call_id.clone(),
                content: result.content.clone(),
                is_error: result.is_error,
                cache_control: None,
            },
            false,
        ),
        _ => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "anthropic does not support this content part",
            ));
        }
    })
}

/// Anthropic requires an object schema with a `type`; an empty schema means "no arguments".
/// The result goes through the shared Anthropic dialect (`llmkit_core::schema`).
fn input_schema(schema: &Value) -> Result<Value> {
    let object = match schema {
        Value::Object(map) if map.is_empty() => {
            serde_json::json!({"type": "object", "properties": {}})
        }
        Value::Object(map) if !map.contains_key("type") => {
            let mut map = map.clone();
            map.insert("type".to_owned(), Value::String("object".to_owned()));
            Value::Object(map)
        }
        Value::Object(_) => schema.clone(),
        _ => serde_json::json!({"type": "object", "properties": {}}),
    };
    Ok(to_dialect(&object, ProviderKind::Anthropic.schema_dialect())?.schema)
}

/// Tool names must match `^[a-zA-Z0-9_-]{1,64}$`.
pub(crate) fn tool_name(name: &str) -> String {
    llmkit_core::schema::wire_name(name, "json_output")
}

/// A response body from `POST /v1/messages`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MessagesResponse {
    #[serde(default)]
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) model: String,
    #[serde(default)]
    pub(crate) content: Vec<ResponseBlock>,
    #[serde(default)]
    pub(crate) stop_reason: Option<String>,
    #[serde(default)]
    pub(crate) usage: WireUsage,
}

/// A content block we receive. Blocks llmkit has no use for (thinking, server tools) are kept
/// as `Other` and dropped, so new block types never break parsing.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ResponseBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

/// Usage as Anthropic reports it; every field optional because stream deltas carry a subset.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct WireUsage {
    #[serde(default)]
    pub(crate) input_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) output_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) output_tokens_details: Option<OutputDetails>,
}

/// `usage.output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub(crate) struct OutputDetails {
    #[serde(default)]
    pub(crate) thinking_tokens: Option<u64>,
}

impl WireUsage {
    /// Overwrites the fields `other` carries (stream deltas repeat only some).
    fn merge(&mut self, other: &WireUsage) {
        let pairs = [
            (&mut self.input_tokens, other.input_tokens),
            (&mut self.output_tokens, other.output_tokens),
            (
                &mut self.cache_creation_input_tokens,
                other.cache_creation_input_tokens,
            ),
            (
                &mut self.cache_read_input_tokens,
                other.cache_read_input_tokens,
            ),
        ];
        for (mine, theirs) in pairs {
            if theirs.is_some() {
                *mine = theirs;
            }
        }
        if other.output_tokens_details.is_some() {
            self.output_tokens_details = other.output_tokens_details;
        }
    }

    /// Normalizes to llmkit's convention: `input_tokens` includes cache reads and writes.
    pub(crate) fn normalize(&self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self
                .input_tokens
                .unwrap_or(0)
                .saturating_add(read)
                .saturating_add(write),
            cached_input_tokens: read,
            cache_write_tokens: write,
            output_tokens: self.output_tokens.unwrap_or(0),
            reasoning_tokens: self
                .output_tokens_details
                .and_then(|d| d.thinking_tokens)
                .unwrap_or(0),
        }
    }
}

/// Maps `stop_reason` onto llmkit's finish reasons.
pub(crate) fn finish_reason(stop_reason: Option<&str>, structured: bool) -> FinishReason {
    match stop_reason {
        None | Some("end_turn") | Some("stop_sequence") => FinishReason::Stop,
        Some("max_tokens") | Some("model_context_window_exceeded") => FinishReason::Length,
        // A forced structured-output tool call is the answer, not a request for a tool.
        Some("tool_use") if structured => FinishReason::Stop,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

/// Turns a response body into a [`ChatResponse`].
pub(crate) fn parse_response(
    resp: MessagesResponse,
    structured: Option<&StructuredPlan>,
) -> Result<ChatResponse> {
    let mut content = Vec::new();
    for block in resp.content {
        match block {
            ResponseBlock::Text { text } => {
                if !text.is_empty() {
                    content.push(ContentPart::text(text));
                }
            }
            ResponseBlock::ToolUse { id, name, input } => match structured {
                Some(plan) if plan.tool == name => {
                    content.push(ContentPart::text(structured_text(plan, input)?));
                }
                _ => content.push(ContentPart::ToolCall(ToolCall {
                    id,
                    name,
                    arguments: input,
                })),
            },
            ResponseBlock::Other => {}
        }
    }
    Ok(ChatResponse {
        message: Message {
            role: Role::Assistant,
            content,
            name: None,
        },
        finish_reason: finish_reason(resp.stop_reason.as_deref(), structured.is_some()),
        usage: resp.usage.normalize(),
        model: resp.model,
        provider: PROVIDER.to_owned(),
        provider_request_id: (!resp.id.is_empty()).then_some(resp.id),
        ..Default::default()
    })
}

/// The structured-output tool input as the JSON text callers expect.
fn structured_text(plan: &StructuredPlan, input: Value) -> Result<String> {
    let value = if plan.wrapped {
        match input {
            Value::Object(mut map) => map.remove("value").unwrap_or(Value::Null),
            other => other,
        }
    } else {
        input
    };
    Ok(serde_json::to_string(&value)?)
}

/// What a streamed content block is for.
#[derive(Debug, Clone)]
enum BlockKind {
    Text,
    ToolCall(usize),
    /// The structured-output tool: its JSON input streams out as text.
    Structured,
    /// The structured-output tool with a wrapped schema: buffered and unwrapped at block end.
    StructuredWrapped(String),
    Ignored,
}

/// Folds Anthropic stream events into llmkit [`StreamEvent`]s.
#[derive(Debug)]
pub(crate) struct StreamState {
    structured: Option<StructuredPlan>,
    request_id: Option<String>,
    blocks: BTreeMap<u64, BlockKind>,
    next_call: usize,
    usage: WireUsage,
    stop_reason: Option<String>,
    done: bool,
}

impl StreamState {
    /// A state for one stream; `request_id` (the `request-id` header) wins over the message id.
    pub(crate) fn new(structured: Option<StructuredPlan>, request_id: Option<String>) -> Self {
        StreamState {
            structured,
            request_id,
            blocks: BTreeMap::new(),
            next_call: 0,
            usage: WireUsage::default(),
            stop_reason: None,
            done: false,
        }
    }

    /// Whether `message_stop` arrived.
    #[cfg(test)]
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Handles one SSE `data:` payload. The event name is not needed: every payload repeats
    /// its type, and unknown types are ignored so new event kinds never break a stream.
    pub(crate) fn on_data(&mut self, data: &str) -> Result<Vec<StreamEvent>> {
        let event: StreamPayload = serde_json::from_str(data).map_err(|e| {
            Error::invalid_response(format!("anthropic stream event is not valid json: {e}"))
        })?;
        let mut out = Vec::new();
        match event {
            StreamPayload::MessageStart { message } => {
                self.usage.merge(&message.usage);
                out.push(StreamEvent::Start {
                    model: message.model,
                    provider_request_id: self
                        .request_id
                        .clone()
                        .or((!message.id.is_empty()).then_some(message.id)),
                });
                out.push(StreamEvent::Usage {
                    usage: self.usage.normalize(),
                });
            }
            StreamPayload::ContentBlockStart {
                index,
                content_block,
            } => {
                let kind = match content_block {
                    ResponseBlock::Text { text } => {
                        if !text.is_empty() {
                            out.push(StreamEvent::TextDelta { text });
                        }
                        BlockKind::Text
                    }
                    ResponseBlock::ToolUse { id, name, .. } => match &self.structured {
                        Some(plan) if plan.tool == name && plan.wrapped => {
                            BlockKind::StructuredWrapped(String::new())
                        }
                        Some(plan) if plan.tool == name => BlockKind::Structured,
                        _ => {
                            let call = self.next_call;
                            self.next_call += 1;
                            out.push(StreamEvent::ToolCallDelta {
                                index: call,
                                id: Some(id),
                                name: Some(name),
                                arguments: String::new(),
                            });
                            BlockKind::ToolCall(call)
                        }
                    },
                    ResponseBlock::Other => BlockKind::Ignored,
                };
                self.blocks.insert(index, kind);
            }
            StreamPayload::ContentBlockDelta { index, delta } => {
                let kind = self.blocks.get_mut(&index);
                match (kind, delta) {
                    (Some(BlockKind::Text), Delta::Text { text }) => {
                        out.push(StreamEvent::TextDelta { text });
                    }
                    (Some(BlockKind::ToolCall(call)), Delta::InputJson { partial_json })
                        if !partial_json.is_empty() =>
                    {
                        out.push(StreamEvent::ToolCallDelta {
                            index: *call,
                            id: None,
                            name: None,
                            arguments: partial_json,
                        });
                    }
                    (Some(BlockKind::Structured), Delta::InputJson { partial_json })
                        if !partial_json.is_empty() =>
                    {
                        out.push(StreamEvent::TextDelta { text: partial_json });
                    }
                    (
                        Some(BlockKind::StructuredWrapped(buf)),
                        Delta::InputJson { partial_json },
                    ) => buf.push_str(&partial_json),
                    _ => {}
                }
            }
            StreamPayload::ContentBlockStop { index } => {
                if let Some(BlockKind::StructuredWrapped(buf)) = self.blocks.get(&index)
                    && let Some(plan) = &self.structured
                {
                    let input: Value = if buf.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(buf).map_err(|e| {
                            Error::invalid_response(format!(
                                "structured output tool input is not json: {e}"
                            ))
                        })?
                    };
                    out.push(StreamEvent::TextDelta {
                        text: structured_text(plan, input)?,
                    });
                }
            }
            StreamPayload::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop_reason = Some(reason);
                }
                if let Some(usage) = usage {
                    self.usage.merge(&usage);
                    out.push(StreamEvent::Usage {
                        usage: self.usage.normalize(),
                    });
                }
            }
            StreamPayload::MessageStop => {
                self.done = true;
                out.push(StreamEvent::Done {
                    finish_reason: finish_reason(
                        self.stop_reason.as_deref(),
                        self.structured.is_some(),
                    ),
                });
            }
            StreamPayload::Error { .. } => {
                return Err(error_mapper().error_from_stream_event(data));
            }
            StreamPayload::Ping | StreamPayload::Unknown => {}
        }
        Ok(out)
    }
}

/// A streamed event payload.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamPayload {
    MessageStart {
        message: MessagesResponse,
    },
    ContentBlockStart {
        index: u64,
        content_block: ResponseBlock,
    },
    ContentBlockDelta {
        index: u64,
        delta: Delta,
    },
    ContentBlockStop {
        index: u64,
    },
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        #[serde(default)]
        #[allow(dead_code)] // classified from the raw payload by the shared mapper
        error: serde::de::IgnoredAny,
    },
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson {
        #[serde(default)]
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// Anthropic's error classification, checked before the shared rules: by `error.type` first
/// (stable across statuses), the message second. One table, tested as a table.
pub(crate) static ERROR_RULES: &[ErrorRule] = &[
    ErrorRule::code("overloaded_error", ErrorKind::Overloaded),
    ErrorRule::code("rate_limit_error", ErrorKind::RateLimited),
    ErrorRule::code("authentication_error", ErrorKind::Auth),
    ErrorRule::code("permission_error", ErrorKind::Auth),
    ErrorRule::code("not_found_error", ErrorKind::NotFound),
    ErrorRule::code("billing_error", ErrorKind::QuotaExhausted),
    ErrorRule::code("request_too_large", ErrorKind::ContextLength),
    ErrorRule::message("prompt is too long", ErrorKind::ContextLength),
    // Out of prepaid credit is a 400 `invalid_request_error`: match it before that code, or
    // the money being gone reads as a malformed request (tests/fault_matrix.rs).
    ErrorRule::message("credit balance is too low", ErrorKind::QuotaExhausted),
    ErrorRule::code("invalid_request_error", ErrorKind::InvalidRequest),
    ErrorRule::code("api_error", ErrorKind::Server),
    ErrorRule::code("timeout_error", ErrorKind::Timeout),
];

/// The mapper for HTTP error responses.
pub(crate) fn error_mapper() -> ErrorMapper {
    ErrorMapper::new(PROVIDER, ERROR_RULES)
}
