//! The OpenAI Chat Completions wire format seen from the server side: the request body a client
//! sends (parsed into a [`ChatRequest`]) and the response body or stream chunks it expects back
//! (built from a [`ChatResponse`] or [`StreamEvent`]s).
//!
//! This is the mirror of `llmkit-providers/src/openai/wire.rs`, which writes requests and reads
//! responses; the server reads requests and writes responses, so the two share field names, not
//! code. Unknown request fields are ignored, as OpenAI's own server does with fields it does not
//! know for a model.

use llmkit_core::{
    ChatRequest, ChatResponse, ContentPart, FinishReason, ImageSource, Message, ModelInfo,
    ResponseFormat, Role, StreamAccumulator, StreamEvent, ToolCall, ToolChoice, ToolDefinition,
    Usage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a request body cannot be served; becomes a 400 `invalid_request_error` naming `param`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// The offending field, in OpenAI's dotted notation (`messages[2].role`).
    pub param: String,
    /// What is wrong with it (one lower-case line).
    pub message: String,
}

impl BadRequest {
    fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        BadRequest {
            param: param.into(),
            message: message.into(),
        }
    }
}

/// A `POST /v1/chat/completions` body.
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// The model the client asked for (resolved by the router's model table).
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation.
    pub messages: Vec<InMessage>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    tools: Vec<InTool>,
    #[serde(default)]
    tool_choice: Option<InToolChoice>,
    #[serde(default)]
    response_format: Option<InResponseFormat>,
    /// Whether the client wants server-sent events.
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    /// The end user's id, passed on as [`RequestMeta::user`](llmkit_core::RequestMeta::user).
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    n: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// One message of `messages`.
#[derive(Debug, Clone, Deserialize)]
pub struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<InContent>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tool_calls: Vec<InToolCall>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum InContent {
    Text(String),
    Parts(Vec<InPart>),
}

#[derive(Debug, Clone, Deserialize)]
struct InPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<InImageUrl>,
}

#[derive(Debug, Clone, Deserialize)]
struct InImageUrl {
    url: String,
}

#[derive(Debug, Clone, Deserialize)]
struct InToolCall {
    id: String,
    function: InFunctionCall,
}

#[derive(Debug, Clone, Deserialize)]
struct InFunctionCall {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Debug, Clone, Deserialize)]
struct InTool {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    function: InFunction,
}

#[derive(Debug, Clone, Deserialize)]
struct InFunction {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum InToolChoice {
    Mode(String),
    Named { function: InFunctionName },
}

#[derive(Debug, Clone, Deserialize)]
struct InFunctionName {
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct InResponseFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    json_schema: Option<InJsonSchema>,
}

#[derive(Debug, Clone, Deserialize)]
struct InJsonSchema {
    name: String,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

impl CompletionRequest {
    /// Whether the client asked for a final usage chunk in a stream.
    pub fn include_usage(&self) -> bool {
        self.stream_options.is_some_and(|o| o.include_usage)
    }

    /// Converts the body into llmkit's request. `model` is left `None`: which model answers is
    /// the router's decision (see [`Serve`](crate::Serve)), not the client's.
    pub fn to_chat_request(&self) -> Result<ChatRequest, BadRequest> {
        if let Some(n) = self.n.filter(|n| *n != 1) {
            return Err(BadRequest::new("n", format!("only n=1 is served, got {n}")));
        }
        if self.messages.is_empty() {
            return Err(BadRequest::new("messages", "messages must not be empty"));
        }
        let messages = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| message(i, m))
            .collect::<Result<Vec<_>, _>>()?;
        let tools =
            self.tools
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if t.kind.as_deref().is_some_and(|k| k != "function") {
                        return Err(BadRequest::new(
                            format!("tools[{i}].type"),
                            "only function tools are served",
                        ));
                    }
                    Ok(ToolDefinition {
                        name: t.function.name.clone(),
                        description: t.function.description.clone().unwrap_or_default(),
                        parameters: t.function.parameters.clone().unwrap_or_else(
                            || serde_json::json!({"type": "object", "properties": {}}),
                        ),
                        strict: t.function.strict.unwrap_or(false),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
        let tool_choice = match &self.tool_choice {
            None => None,
            Some(InToolChoice::Mode(m)) => Some(match m.as_str() {
                "auto" => ToolChoice::Auto,
                "none" => ToolChoice::None,
                "required" => ToolChoice::Required,
                other => {
                    return Err(BadRequest::new(
                        "tool_choice",
                        format!("unknown tool_choice `{other}`"),
                    ));
                }
            }),
            Some(InToolChoice::Named { function }) => Some(ToolChoice::Tool {
                name: function.name.clone(),
            }),
        };
        let response_format = match &self.response_format {
            None => ResponseFormat::Text,
            Some(f) => match f.kind.as_str() {
                "text" => ResponseFormat::Text,
                "json_object" => ResponseFormat::Json,
                "json_schema" => {
                    let Some(js) = &f.json_schema else {
                        return Err(BadRequest::new(
                            "response_format.json_schema",
                            "json_schema response format needs a json_schema object",
                        ));
                    };
                    ResponseFormat::JsonSchema {
                        name: js.name.clone(),
                        schema: js.schema.clone().unwrap_or_else(|| serde_json::json!({})),
                        strict: js.strict.unwrap_or(false),
                    }
                }
                other => {
                    return Err(BadRequest::new(
                        "response_format.type",
                        format!("unknown response format `{other}`"),
                    ));
                }
            },
        };
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        let mut request = ChatRequest::new(messages);
        request.temperature = self.temperature;
        request.top_p = self.top_p;
        request.max_tokens = self.max_completion_tokens.or(self.max_tokens);
        request.stop = stop;
        request.seed = self.seed;
        request.tools = tools;
        request.tool_choice = tool_choice;
        request.response_format = response_format;
        request.meta.user.clone_from(&self.user);
        Ok(request)
    }
}

fn text_of(i: usize, content: Option<&InContent>) -> Result<String, BadRequest> {
    match content {
        None => Ok(String::new()),
        Some(InContent::Text(t)) => Ok(t.clone()),
        Some(InContent::Parts(parts)) => {
            let mut out = String::new();
            for (j, p) in parts.iter().enumerate() {
                match (p.kind.as_str(), &p.text) {
                    ("text", Some(t)) => out.push_str(t),
                    _ => {
                        return Err(BadRequest::new(
                            format!("messages[{i}].content[{j}]"),
                            "only text parts are allowed here",
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

fn image_source(url: &str) -> ImageSource {
    // `data:image/png;base64,AAAA` becomes inline bytes; anything else the provider fetches.
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((media_type, data)) = rest.split_once(";base64,")
    {
        return ImageSource::Base64 {
            media_type: media_type.to_owned(),
            data: data.to_owned(),
        };
    }
    ImageSource::Url {
        url: url.to_owned(),
    }
}

fn message(i: usize, m: &InMessage) -> Result<Message, BadRequest> {
    let mut out = match m.role.as_str() {
        // `developer` is OpenAI's newer name for system instructions.
        "system" | "developer" => Message::system(text_of(i, m.content.as_ref())?),
        "user" => match &m.content {
            Some(InContent::Parts(parts)) => {
                let mut msg = Message {
                    role: Role::User,
                    content: Vec::new(),
                    name: None,
                };
                for (j, p) in parts.iter().enumerate() {
                    match (p.kind.as_str(), &p.text, &p.image_url) {
                        ("text", Some(t), _) => msg.content.push(ContentPart::text(t.clone())),
                        ("image_url", _, Some(img)) => {
                            msg.content.push(ContentPart::Image {
                                source: image_source(&img.url),
                            });
                        }
                        (kind, _, _) => {
                            return Err(BadRequest::new(
                                format!("messages[{i}].content[{j}].type"),
                                format!("unsupported content part `{kind}`"),
                            ));
                        }
                    }
                }
                msg
            }
            other => Message::user(text_of(i, other.as_ref())?),
        },
        "assistant" => {
            let text = text_of(i, m.content.as_ref())?;
            if m.tool_calls.is_empty() {
                Message::assistant(text)
            } else {
                let calls = m
                    .tool_calls
                    .iter()
                    .enumerate()
                    .map(|(j, c)| {
                        let arguments = if c.function.arguments.trim().is_empty() {
                            Value::Object(serde_json::Map::new())
                        } else {
                            serde_json::from_str(&c.function.arguments).map_err(|e| {
                                BadRequest::new(
                                    format!("messages[{i}].tool_calls[{j}].function.arguments"),
                                    format!("arguments are not json: {e}"),
                                )
                            })?
                        };
                        Ok(ToolCall {
                            id: c.id.clone(),
                            name: c.function.name.clone(),
                            arguments,
                        })
                    })
                    .collect::<Result<Vec<_>, BadRequest>>()?;
                Message::assistant_tool_calls(Some(text), calls)
            }
        }
        "tool" => {
            let Some(call_id) = &m.tool_call_id else {
                return Err(BadRequest::new(
                    format!("messages[{i}].tool_call_id"),
                    "a tool message needs tool_call_id",
                ));
            };
            Message::tool_result(call_id.clone(), text_of(i, m.content.as_ref())?)
        }
        other => {
            return Err(BadRequest::new(
                format!("messages[{i}].role"),
                format!("unknown role `{other}`"),
            ));
        }
    };
    out.name.clone_from(&m.name);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Response bodies.
// ---------------------------------------------------------------------------------------------

/// A `chat.completion` body.
#[derive(Debug, Serialize)]
pub struct Completion {
    id: String,
    object: &'static str,
    created: u64,
    model: String,
    choices: Vec<Choice>,
    usage: WireUsage,
}

#[derive(Debug, Serialize)]
struct Choice {
    index: u32,
    message: OutMessage,
    finish_reason: String,
    logprobs: Option<()>,
}

#[derive(Debug, Serialize)]
struct OutMessage {
    role: &'static str,
    content: Option<String>,
    refusal: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall>,
}

#[derive(Debug, Serialize)]
struct OutToolCall {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutFunction,
}

#[derive(Debug, Serialize)]
struct OutFunction {
    name: String,
    arguments: String,
}

/// OpenAI's `usage` object.
#[derive(Debug, Clone, Copy, Serialize)]
struct WireUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

impl From<&Usage> for WireUsage {
    fn from(u: &Usage) -> Self {
        WireUsage {
            prompt_tokens: u.input_tokens,
            completion_tokens: u.output_tokens,
            total_tokens: u.total_tokens(),
            prompt_tokens_details: PromptDetails {
                cached_tokens: u.cached_input_tokens,
            },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: u.reasoning_tokens,
            },
        }
    }
}

/// Seconds since the Unix epoch, for `created`.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Completion {
    /// The body for a finished call. `id` is the completion id (`chatcmpl-…`).
    pub fn from_response(id: String, response: &ChatResponse) -> Self {
        let text = response.text();
        let tool_calls: Vec<OutToolCall> = response
            .message
            .tool_calls()
            .map(|c| OutToolCall {
                id: c.id.clone(),
                kind: "function",
                function: OutFunction {
                    name: c.name.clone(),
                    arguments: c.arguments.to_string(),
                },
            })
            .collect();
        Completion {
            id,
            object: "chat.completion",
            created: unix_now(),
            model: response.model.clone(),
            choices: vec![Choice {
                index: 0,
                message: OutMessage {
                    role: "assistant",
                    content: (!text.is_empty() || tool_calls.is_empty()).then_some(text),
                    refusal: None,
                    tool_calls,
                },
                finish_reason: response.finish_reason.as_str().to_owned(),
                logprobs: None,
            }],
            usage: WireUsage::from(&response.usage),
        }
    }
}

/// A `chat.completion.chunk` body.
#[derive(Debug, Serialize)]
pub struct Chunk {
    id: String,
    object: &'static str,
    created: u64,
    model: String,
    choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<WireUsage>,
}

#[derive(Debug, Serialize)]
struct ChunkChoice {
    index: u32,
    delta: Delta,
    finish_reason: Option<String>,
    logprobs: Option<()>,
}

#[derive(Debug, Default, Serialize)]
struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<DeltaToolCall>,
}

#[derive(Debug, Serialize)]
struct DeltaToolCall {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: DeltaFunction,
}

#[derive(Debug, Serialize)]
struct DeltaFunction {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    arguments: String,
}

/// Turns llmkit stream events into OpenAI chunks, in order: a role chunk first, content and
/// tool-call deltas, one chunk with the finish reason, and (when asked) a usage chunk with no
/// choices, as OpenAI sends with `stream_options.include_usage`.
#[derive(Debug)]
pub struct ChunkWriter {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    usage: StreamAccumulator,
    role_sent: bool,
}

impl ChunkWriter {
    /// A writer for the completion `id`; `model` is used until a `Start` event names one.
    pub fn new(id: String, model: String, include_usage: bool) -> Self {
        ChunkWriter {
            id,
            created: unix_now(),
            model,
            include_usage,
            usage: StreamAccumulator::new(),
            role_sent: false,
        }
    }

    fn chunk(&self, delta: Delta, finish_reason: Option<String>) -> Chunk {
        Chunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
                logprobs: None,
            }],
            usage: None,
        }
    }

    fn role(&mut self, out: &mut Vec<Chunk>) {
        if !self.role_sent {
            self.role_sent = true;
            out.push(self.chunk(
                Delta {
                    role: Some("assistant"),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                None,
            ));
        }
    }

    /// The chunks for one event (none for usage, which is folded into the end).
    pub fn on_event(&mut self, event: StreamEvent) -> Vec<Chunk> {
        let mut out = Vec::new();
        match event {
            StreamEvent::Start { model, .. } => {
                if !model.is_empty() {
                    self.model = model;
                }
                self.role(&mut out);
            }
            StreamEvent::TextDelta { text } => {
                self.role(&mut out);
                out.push(self.chunk(
                    Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    None,
                ));
            }
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                self.role(&mut out);
                let kind = id.as_ref().map(|_| "function");
                out.push(self.chunk(
                    Delta {
                        tool_calls: vec![DeltaToolCall {
                            index,
                            id,
                            kind,
                            function: DeltaFunction { name, arguments },
                        }],
                        ..Delta::default()
                    },
                    None,
                ));
            }
            event @ StreamEvent::Usage { .. } => {
                // llmkit's accumulator folds usage (providers send cumulative or final counts);
                // it only ever sees usage events here, so it holds no text.
                self.usage.push(&event);
            }
            StreamEvent::Done { finish_reason } => {
                self.role(&mut out);
                out.push(self.chunk(Delta::default(), Some(finish_reason_str(&finish_reason))));
                if self.include_usage {
                    let mut folded = std::mem::take(&mut self.usage);
                    folded.push(&StreamEvent::Done {
                        finish_reason: FinishReason::Stop,
                    });
                    let usage = folded
                        .finish(&ModelInfo::new("", ""))
                        .map(|r| r.usage)
                        .unwrap_or_default();
                    out.push(Chunk {
                        id: self.id.clone(),
                        object: "chat.completion.chunk",
                        created: self.created,
                        model: self.model.clone(),
                        choices: Vec::new(),
                        usage: Some(WireUsage::from(&usage)),
                    });
                }
            }
            // `StreamEvent` is non-exhaustive: an event this version does not know carries
            // nothing a client of this route can show.
            _ => {}
        }
        out
    }
}

fn finish_reason_str(reason: &FinishReason) -> String {
    reason.as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> CompletionRequest {
        serde_json::from_value(v).unwrap_or_else(|e| unreachable!("bad test body: {e}"))
    }

    #[test]
    fn request_maps_every_field() {
        let body = parse(serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":1}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"}
            ],
            "temperature": 0.5, "top_p": 0.9, "max_tokens": 10, "max_completion_tokens": 20,
            "stop": "END", "seed": 7, "user": "u-1",
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "d", "parameters": {"type": "object"}, "strict": true}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": {"type": "object"}, "strict": true}},
            "stream": true, "stream_options": {"include_usage": true}
        }));
        assert!(body.stream && body.include_usage());
        let req = body
            .to_chat_request()
            .unwrap_or_else(|e| unreachable!("{e:?}"));
        assert_eq!(req.messages.len(), 4);
        assert_eq!(req.messages[0].role, Role::System);
        assert!(matches!(
            &req.messages[1].content[1],
            ContentPart::Image { source: ImageSource::Base64 { media_type, data } }
                if media_type == "image/png" && data == "AAAA"
        ));
        assert_eq!(req.messages[2].tool_calls().count(), 1);
        assert_eq!(
            req.messages[2]
                .tool_calls()
                .next()
                .map(|c| c.arguments.clone()),
            Some(serde_json::json!({"q": 1}))
        );
        assert_eq!(req.messages[3].role, Role::Tool);
        assert_eq!(req.max_tokens, Some(20), "max_completion_tokens wins");
        assert_eq!(req.stop, vec!["END".to_owned()]);
        assert_eq!(req.seed, Some(7));
        assert_eq!(req.meta.user.as_deref(), Some("u-1"));
        assert!(req.tools[0].strict);
        assert_eq!(
            req.tool_choice,
            Some(ToolChoice::Tool {
                name: "lookup".into()
            })
        );
        assert!(matches!(
            req.response_format,
            ResponseFormat::JsonSchema { strict: true, .. }
        ));
        assert_eq!(req.model, None, "the router picks the model");
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let cases = [
            (serde_json::json!({"messages": []}), "messages"),
            (
                serde_json::json!({"messages": [{"role": "wizard", "content": "x"}]}),
                "messages[0].role",
            ),
            (
                serde_json::json!({"messages": [{"role": "tool", "content": "x"}]}),
                "messages[0].tool_call_id",
            ),
            (
                serde_json::json!({"messages": [{"role": "user", "content": "x"}], "n": 2}),
                "n",
            ),
            (
                serde_json::json!({"messages": [{"role": "user", "content": "x"}], "tool_choice": "maybe"}),
                "tool_choice",
            ),
            (
                serde_json::json!({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "xml"}}),
                "response_format.type",
            ),
            (
                serde_json::json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]}]}),
                "messages[0].tool_calls[0].function.arguments",
            ),
        ];
        for (body, param) in cases {
            let err = parse(body).to_chat_request().err();
            assert_eq!(err.map(|e| e.param), Some(param.to_owned()));
        }
    }

    #[test]
    fn completion_body_has_openai_shape() {
        let response = ChatResponse {
            message: Message::assistant_tool_calls(
                None,
                vec![ToolCall {
                    id: "call_9".into(),
                    name: "lookup".into(),
                    arguments: serde_json::json!({"q": "x"}),
                }],
            ),
            finish_reason: FinishReason::ToolCalls,
            usage: Usage {
                input_tokens: 10,
                cached_input_tokens: 4,
                output_tokens: 3,
                ..Usage::default()
            },
            model: "m-1".into(),
            ..ChatResponse::default()
        };
        let v = serde_json::to_value(Completion::from_response("chatcmpl-1".into(), &response))
            .unwrap_or_default();
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"q\":\"x\"}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(v["usage"]["total_tokens"], 13);
        assert_eq!(v["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    }

    #[test]
    fn chunks_follow_openai_order() {
        let mut w = ChunkWriter::new("c".into(), "m".into(), true);
        let mut all = Vec::new();
        for e in [
            StreamEvent::Start {
                model: "m2".into(),
                provider_request_id: None,
            },
            StreamEvent::TextDelta { text: "hi".into() },
            StreamEvent::ToolCallDelta {
                index: 0,
                id: Some("t".into()),
                name: Some("f".into()),
                arguments: "{}".into(),
            },
            StreamEvent::Usage {
                usage: Usage {
                    input_tokens: 2,
                    output_tokens: 1,
                    ..Usage::default()
                },
            },
            StreamEvent::Done {
                finish_reason: FinishReason::Stop,
            },
        ] {
            all.extend(w.on_event(e));
        }
        let v: Vec<Value> = all
            .iter()
            .map(|c| serde_json::to_value(c).unwrap_or_default())
            .collect();
        assert_eq!(v.len(), 5);
        assert_eq!(v[0]["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(v[1]["choices"][0]["delta"]["content"], "hi");
        assert_eq!(
            v[2]["choices"][0]["delta"]["tool_calls"][0]["type"],
            "function"
        );
        assert_eq!(v[3]["choices"][0]["finish_reason"], "stop");
        assert_eq!(v[4]["choices"], serde_json::json!([]));
        assert_eq!(v[4]["usage"]["total_tokens"], 3);
        assert!(v.iter().all(|c| c["model"] == "m2"));
    }
}
