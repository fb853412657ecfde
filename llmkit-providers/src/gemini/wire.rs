//! Gemini `generateContent` wire types and the pure conversions between them and llmkit's
//! types. Shared by the AI Studio and Vertex AI endpoints, which accept the same body.

use llmkit_core::schema::{DroppedConstraint, TransformedSchema, to_dialect};
use llmkit_core::{
    ChatRequest, ChatResponse, ContentPart, Error, ErrorKind, FinishReason, ImageSource, Message,
    ResponseFormat, Result, Role, StreamEvent, ToolCall, ToolChoice, Usage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::ProviderKind;
use crate::http::{ErrorMapper, ErrorRule};
use crate::tool_names::tool_name_for_call;

/// Separates Gemini's call id from the `thoughtSignature` we carry inside llmkit's tool-call id.
///
/// Gemini 3 models reject a follow-up turn whose function calls lost their signature, and
/// llmkit's `ToolCall` has no provider-specific slot. Carrying the signature in the id keeps a
/// conversation self-contained (no per-process map, works across replicas): applications echo
/// ids back unchanged anyway.
pub(crate) const SIGNATURE_SEPARATOR: &str = "#sig=";

/// Prefix of call ids llmkit generated because Gemini sent none; they are not sent back.
pub(crate) const GENERATED_ID_PREFIX: &str = "llmkit_call_";

/// A request body for `:generateContent` / `:streamGenerateContent`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentRequest {
    pub(crate) contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) system_instruction: Option<Content>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    pub(crate) generation_config: GenerationConfig,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<Tool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tool_config: Option<ToolConfig>,
}

/// A turn: `role` is `user` or `model`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) role: Option<String>,
    #[serde(default)]
    pub(crate) parts: Vec<Part>,
}

/// One part; exactly one of the data fields is set. A struct of options (rather than an enum)
/// because `thoughtSignature` and `thought` sit beside the data field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Part {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) inline_data: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) file_data: Option<FileData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) function_call: Option<FunctionCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) function_response: Option<FunctionResponse>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) thought: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) thought_signature: Option<String>,
}

/// Inline bytes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Blob {
    pub(crate) mime_type: String,
    pub(crate) data: String,
}

/// A file by URI.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FileData {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) mime_type: String,
    pub(crate) file_uri: String,
}

/// A function call made by the model.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct FunctionCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) args: Value,
}

/// A function result sent back.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct FunctionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) id: Option<String>,
    pub(crate) name: String,
    pub(crate) response: Value,
}

/// `generationConfig`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) stop_sequences: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_mime_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) response_schema: Option<Value>,
}

impl GenerationConfig {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.max_output_tokens.is_none()
            && self.stop_sequences.is_empty()
            && self.seed.is_none()
            && self.response_mime_type.is_none()
            && self.response_schema.is_none()
    }
}

/// A `tools` entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tool {
    pub(crate) function_declarations: Vec<FunctionDeclaration>,
}

/// One declared function.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FunctionDeclaration {
    pub(crate) name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) parameters: Option<Value>,
}

/// `toolConfig`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolConfig {
    pub(crate) function_calling_config: FunctionCallingConfig,
}

/// `toolConfig.functionCallingConfig`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionCallingConfig {
    pub(crate) mode: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) allowed_function_names: Vec<String>,
}

/// A JSON Schema in the OpenAPI subset Gemini's `responseSchema` and function `parameters`
/// accept (the shared transform in `llmkit_core::schema`), with what it had to drop.
fn gemini_schema(schema: &Value) -> Result<TransformedSchema> {
    to_dialect(schema, ProviderKind::Gemini.schema_dialect())
}

/// A built body plus the response-schema constraints Gemini will not enforce.
#[derive(Debug, Clone)]
pub(crate) struct BuiltRequest {
    pub(crate) body: GenerateContentRequest,
    pub(crate) dropped: Vec<DroppedConstraint>,
}

/// Turns a [`ChatRequest`] into a `generateContent` body.
pub(crate) fn build_request(req: &ChatRequest) -> Result<BuiltRequest> {
    let mut system_parts = Vec::new();
    let mut contents: Vec<Content> = Vec::new();
    for (pos, m) in req.messages.iter().enumerate() {
        if m.role == Role::System {
            for part in &m.content {
                match part.as_text() {
                    Some(t) => system_parts.push(text_part(t)),
                    None => {
                        return Err(Error::new(
                            ErrorKind::InvalidRequest,
                            "system messages may only hold text for gemini",
                        ));
                    }
                }
            }
            continue;
        }
        // Function responses travel in a user turn, like Gemini's own SDKs send them.
        let role = if m.role == Role::Assistant {
            "model"
        } else {
            "user"
        };
        let mut parts = Vec::with_capacity(m.content.len());
        for part in &m.content {
            parts.push(part_for(req, pos, part)?);
        }
        match contents.last_mut() {
            // Consecutive turns of one role are merged: all responses to parallel calls must
            // arrive in one turn.
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => contents.push(Content {
                role: Some(role.to_owned()),
                parts,
            }),
        }
    }
    if contents.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidRequest,
            "gemini needs at least one user message besides the system instruction",
        ));
    }

    let mut generation_config = GenerationConfig {
        temperature: req.temperature,
        top_p: req.top_p,
        max_output_tokens: req.max_tokens,
        stop_sequences: req.stop.clone(),
        // Gemini's seed is an int32; folding keeps any u64 seed deterministic.
        seed: req
            .seed
            .map(|s| i32::try_from(s & 0x7fff_ffff).unwrap_or(0)),
        ..Default::default()
    };
    let mut dropped = Vec::new();
    match &req.response_format {
        ResponseFormat::Text => {}
        ResponseFormat::Json => generation_config.response_mime_type = Some("application/json"),
        ResponseFormat::JsonSchema { schema, .. } => {
            let transformed = gemini_schema(schema)?;
            generation_config.response_mime_type = Some("application/json");
            generation_config.response_schema = Some(transformed.schema);
            dropped = transformed.dropped;
        }
    }

    let mut declarations = Vec::with_capacity(req.tools.len());
    for t in &req.tools {
        declarations.push(FunctionDeclaration {
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: if has_parameters(&t.parameters) {
                Some(gemini_schema(&t.parameters)?.schema)
            } else {
                None
            },
        });
    }
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![Tool {
            function_declarations: declarations,
        }]
    };
    let tool_config = req.tool_choice.as_ref().map(|c| {
        let (mode, allowed) = match c {
            ToolChoice::Auto => ("AUTO", Vec::new()),
            ToolChoice::None => ("NONE", Vec::new()),
            ToolChoice::Required => ("ANY", Vec::new()),
            ToolChoice::Tool { name } => ("ANY", vec![name.clone()]),
        };
        ToolConfig {
            function_calling_config: FunctionCallingConfig {
                mode,
                allowed_function_names: allowed,
            },
        }
    });

    let body = GenerateContentRequest {
        contents,
        system_instruction: (!system_parts.is_empty()).then_some(Content {
            role: None,
            parts: system_parts,
        }),
        generation_config,
        tools,
        tool_config,
    };
    Ok(BuiltRequest { body, dropped })
}

/// A function without arguments is declared without `parameters` (an empty object schema is
/// rejected by some Gemini versions).
fn has_parameters(schema: &Value) -> bool {
    match schema {
        Value::Object(map) => match map.get("properties") {
            Some(Value::Object(props)) => !props.is_empty(),
            Some(_) => true,
            None => map
                .keys()
                .any(|k| k != "type" && k != "additionalProperties"),
        },
        _ => false,
    }
}

fn text_part(text: &str) -> Part {
    Part {
        text: Some(text.to_owned()),
        ..Default::default()
    }
}

/// One llmkit content part as a Gemini part. `pos` is the message's position, used to find the
/// name of the call a tool result answers.
fn part_for(req: &ChatRequest, pos: usize, part: &ContentPart) -> Result<Part> {
    Ok(match part {
        ContentPart::Text { text, .. } => text_part(text),
        ContentPart::Image { source } => match source {
            ImageSource::Base64 { media_type, data } => Part {
                inline_data: Some(Blob {
                    mime_type: media_type.clone(),
                    data: data.clone(),
                }),
                ..Default::default()
            },
            ImageSource::Url { url } => Part {
                file_data: Some(FileData {
                    mime_type: guess_mime(url).to_owned(),
                    file_uri: url.clone(),
                }),
                ..Default::default()
            },
        },
        ContentPart::ToolCall(call) => {
            let (base, signature) = split_call_id(&call.id);
            Part {
                function_call: Some(FunctionCall {
                    id: wire_id(base),
                    name: call.name.clone(),
                    args: call.arguments.clone(),
                }),
                thought_signature: signature.map(str::to_owned),
                ..Default::default()
            }
        }
        ContentPart::ToolResult(result) => {
            let name = tool_name_for_call(&req.messages, pos, &result.call_id).ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "tool result `{}` answers no earlier tool call: gemini needs the function name",
                        result.call_id
                    ),
                )
            })?;
            let (base, _) = split_call_id(&result.call_id);
            let value: Value = serde_json::from_str(&result.content)
                .unwrap_or_else(|_| Value::String(result.content.clone()));
            // Gemini wants an object; its docs name the keys `output` and `error`.
            let response = match (result.is_error, value) {
                (true, v) => serde_json::json!({ "error": v }),
                (false, Value::Object(map)) => Value::Object(map),
                (false, v) => serde_json::json!({ "output": v }),
            };
            Part {
                function_response: Some(FunctionResponse {
                    id: wire_id(base),
                    name: name.to_owned(),
                    response,
                }),
                ..Default::default()
            }
        }
        _ => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "gemini does not support this content part",
            ));
        }
    })
}

/// Ids llmkit generated are not Gemini's and stay local.
fn wire_id(base: &str) -> Option<String> {
    (!base.is_empty() && !base.starts_with(GENERATED_ID_PREFIX)).then(|| base.to_owned())
}

fn guess_mime(url: &str) -> &'static str {
    let lower = url.to_ascii_lowercase();
    let path = lower.split(['?', '#']).next().unwrap_or("");
    if path.ends_with(".png") {
        "image/png"
    } else if path.ends_with(".webp") {
        "image/webp"
    } else if path.ends_with(".gif") {
        "image/gif"
    } else if path.ends_with(".pdf") {
        "application/pdf"
    } else {
        "image/jpeg"
    }
}

/// Splits an llmkit tool-call id into Gemini's id and the carried `thoughtSignature`.
pub(crate) fn split_call_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((base, sig)) if !sig.is_empty() => (base, Some(sig)),
        Some((base, _)) => (base, None),
        None => (id, None),
    }
}

/// Builds the llmkit tool-call id for a Gemini call.
pub(crate) fn join_call_id(base: &str, signature: Option<&str>) -> String {
    match signature {
        Some(sig) if !sig.is_empty() => format!("{base}{SIGNATURE_SEPARATOR}{sig}"),
        _ => base.to_owned(),
    }
}

/// A `generateContent` response body (also one streamed chunk).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentResponse {
    #[serde(default)]
    pub(crate) candidates: Vec<Candidate>,
    #[serde(default)]
    pub(crate) prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    pub(crate) usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    pub(crate) model_version: Option<String>,
    #[serde(default)]
    pub(crate) response_id: Option<String>,
}

/// One candidate answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Candidate {
    #[serde(default)]
    pub(crate) content: Option<Content>,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

/// `promptFeedback`: set when the prompt itself was blocked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PromptFeedback {
    #[serde(default)]
    pub(crate) block_reason: Option<String>,
    #[serde(default)]
    pub(crate) block_reason_message: Option<String>,
}

/// `usageMetadata`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsageMetadata {
    #[serde(default)]
    pub(crate) prompt_token_count: u64,
    #[serde(default)]
    pub(crate) cached_content_token_count: u64,
    #[serde(default)]
    pub(crate) candidates_token_count: u64,
    #[serde(default)]
    pub(crate) thoughts_token_count: u64,
    #[serde(default)]
    pub(crate) tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    /// Normalizes to llmkit's convention. `promptTokenCount` already includes cached content;
    /// thinking tokens are output tokens that Gemini counts separately.
    pub(crate) fn normalize(&self) -> Usage {
        Usage {
            input_tokens: self
                .prompt_token_count
                .saturating_add(self.tool_use_prompt_token_count),
            cached_input_tokens: self.cached_content_token_count,
            cache_write_tokens: 0,
            output_tokens: self
                .candidates_token_count
                .saturating_add(self.thoughts_token_count),
            reasoning_tokens: self.thoughts_token_count,
        }
    }
}

/// Maps `finishReason` onto llmkit's finish reasons.
pub(crate) fn finish_reason(raw: Option<&str>, has_calls: bool) -> FinishReason {
    match raw {
        None | Some("STOP") | Some("FINISH_REASON_UNSPECIFIED") if has_calls => {
            FinishReason::ToolCalls
        }
        None | Some("STOP") => FinishReason::Stop,
        Some("MAX_TOKENS") => FinishReason::Length,
        Some(
            "SAFETY"
            | "RECITATION"
            | "PROHIBITED_CONTENT"
            | "BLOCKLIST"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT",
        ) => FinishReason::ContentFilter,
        Some(other) => FinishReason::Other(other.to_owned()),
    }
}

/// Fails with [`ErrorKind::ContentFiltered`] when the prompt was blocked.
pub(crate) fn check_prompt_feedback(resp: &GenerateContentResponse, provider: &str) -> Result<()> {
    let Some(feedback) = resp.prompt_feedback.as_ref() else {
        return Ok(());
    };
    if let Some(reason) = feedback.block_reason.as_deref() {
        let detail = feedback
            .block_reason_message
            .as_deref()
            .map(|m| format!(": {}", m.chars().take(200).collect::<String>()))
            .unwrap_or_default();
        return Err(Error::new(
            ErrorKind::ContentFiltered,
            format!(
                "gemini blocked the prompt: {}{detail}",
                reason.to_ascii_lowercase()
            ),
        )
        .with_provider(provider)
        .with_provider_code(reason));
    }
    Ok(())
}

/// Converts the parts of a candidate, numbering calls from `next_call`. Thought parts
/// (reasoning summaries) are not answer text and are dropped.
fn convert_parts(
    parts: Vec<Part>,
    response_id: Option<&str>,
    next_call: &mut usize,
) -> Vec<ContentPart> {
    let mut out = Vec::new();
    for part in parts {
        if let Some(call) = part.function_call {
            let base = match call.id {
                Some(id) if !id.is_empty() => id,
                _ => match response_id {
                    Some(r) => format!("{GENERATED_ID_PREFIX}{r}_{next_call}"),
                    None => format!("{GENERATED_ID_PREFIX}{next_call}"),
                },
            };
            *next_call += 1;
            out.push(ContentPart::ToolCall(ToolCall {
                id: join_call_id(&base, part.thought_signature.as_deref()),
                name: call.name,
                arguments: if call.args.is_null() {
                    Value::Object(serde_json::Map::new())
                } else {
                    call.args
                },
            }));
        } else if let Some(text) = part.text
            && part.thought != Some(true)
            && !text.is_empty()
        {
            out.push(ContentPart::text(text));
        }
    }
    out
}

/// Turns a response body into a [`ChatResponse`].
pub(crate) fn parse_response(
    resp: GenerateContentResponse,
    provider: &str,
    model: &str,
) -> Result<ChatResponse> {
    check_prompt_feedback(&resp, provider)?;
    let usage = resp.usage_metadata.unwrap_or_default().normalize();
    let Some(candidate) = resp.candidates.into_iter().next() else {
        return Err(
            Error::invalid_response("gemini returned no candidates").with_provider(provider)
        );
    };
    let mut next_call = 0;
    let content = convert_parts(
        candidate.content.map(|c| c.parts).unwrap_or_default(),
        resp.response_id.as_deref(),
        &mut next_call,
    );
    Ok(ChatResponse {
        message: Message {
            role: Role::Assistant,
            content,
            name: None,
        },
        finish_reason: finish_reason(candidate.finish_reason.as_deref(), next_call > 0),
        usage,
        model: resp.model_version.unwrap_or_else(|| model.to_owned()),
        provider: provider.to_owned(),
        provider_request_id: resp.response_id,
        ..Default::default()
    })
}

/// Folds streamed `GenerateContentResponse` chunks into llmkit [`StreamEvent`]s.
///
/// Usage is held back until the stream ends: Gemini repeats `usageMetadata` on every chunk
/// and early chunks may over-count the prompt, while llmkit's accumulator keeps the maximum.
#[derive(Debug)]
pub(crate) struct StreamState {
    provider: String,
    started: bool,
    next_call: usize,
    usage: Option<UsageMetadata>,
    finish: Option<Option<String>>,
}

impl StreamState {
    /// A state for one stream.
    pub(crate) fn new(provider: &str) -> Self {
        StreamState {
            provider: provider.to_owned(),
            started: false,
            next_call: 0,
            usage: None,
            finish: None,
        }
    }

    /// Handles one `data:` payload.
    pub(crate) fn on_data(&mut self, data: &str, model: &str) -> Result<Vec<StreamEvent>> {
        let chunk: GenerateContentResponse = serde_json::from_str(data).map_err(|e| {
            Error::invalid_response(format!("gemini stream chunk is not valid json: {e}"))
                .with_provider(&self.provider)
        })?;
        check_prompt_feedback(&chunk, &self.provider)?;
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                model: chunk
                    .model_version
                    .clone()
                    .unwrap_or_else(|| model.to_owned()),
                provider_request_id: chunk.response_id.clone(),
            });
        }
        if chunk.usage_metadata.is_some() {
            self.usage = chunk.usage_metadata;
        }
        if let Some(candidate) = chunk.candidates.into_iter().next() {
            let first_call = self.next_call;
            let parts = convert_parts(
                candidate.content.map(|c| c.parts).unwrap_or_default(),
                chunk.response_id.as_deref(),
                &mut self.next_call,
            );
            let mut call_index = first_call;
            for part in parts {
                match part {
                    ContentPart::Text { text, .. } => out.push(StreamEvent::TextDelta { text }),
                    ContentPart::ToolCall(call) => {
                        // Gemini sends each call whole, never in fragments.
                        out.push(StreamEvent::ToolCallDelta {
                            index: call_index,
                            id: Some(call.id),
                            name: Some(call.name),
                            arguments: call.arguments.to_string(),
                        });
                        call_index += 1;
                    }
                    _ => {}
                }
            }
            if candidate.finish_reason.is_some() {
                self.finish = Some(candidate.finish_reason);
            }
        }
        Ok(out)
    }

    /// Events to emit when the byte stream ends: final usage and `Done`, or nothing when no
    /// chunk carried a finish reason (the accumulator then reports a truncated stream).
    pub(crate) fn on_end(&mut self) -> Vec<StreamEvent> {
        let Some(finish) = self.finish.take() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(u) = self.usage.take() {
            out.push(StreamEvent::Usage {
                usage: u.normalize(),
            });
        }
        out.push(StreamEvent::Done {
            finish_reason: finish_reason(finish.as_deref(), self.next_call > 0),
        });
        out
    }
}

/// Google's error classification by canonical `status` (and message where Google reuses one
/// status for two meanings), checked before the shared rules. One table, tested as a table.
pub(crate) static ERROR_RULES: &[ErrorRule] = &[
    // RESOURCE_EXHAUSTED means both "slow down" and "out of quota". Google's message says
    // "check your plan and billing details" for per-minute limits too, so only an explicit
    // daily cap or a billing problem is treated as exhausted quota.
    ErrorRule::message("per day", ErrorKind::QuotaExhausted).with_status(429),
    ErrorRule::message("billing account", ErrorKind::QuotaExhausted),
    ErrorRule::code("RESOURCE_EXHAUSTED", ErrorKind::RateLimited),
    ErrorRule::message("api key not valid", ErrorKind::Auth),
    ErrorRule::message("api_key_invalid", ErrorKind::Auth),
    ErrorRule::code("UNAUTHENTICATED", ErrorKind::Auth),
    ErrorRule::code("PERMISSION_DENIED", ErrorKind::Auth),
    ErrorRule::code("NOT_FOUND", ErrorKind::NotFound),
    ErrorRule::message(
        "exceeds the maximum number of tokens",
        ErrorKind::ContextLength,
    ),
    ErrorRule::code("INVALID_ARGUMENT", ErrorKind::InvalidRequest),
    ErrorRule::code("FAILED_PRECONDITION", ErrorKind::InvalidRequest),
    ErrorRule::code("OUT_OF_RANGE", ErrorKind::InvalidRequest),
    ErrorRule::code("UNAVAILABLE", ErrorKind::Overloaded),
    ErrorRule::code("DEADLINE_EXCEEDED", ErrorKind::Timeout),
    ErrorRule::code("INTERNAL", ErrorKind::Server),
    ErrorRule::code("CANCELLED", ErrorKind::Cancelled),
];

/// The mapper for HTTP error responses of `provider` (`gcp.gemini` or `gcp.vertex_ai`).
pub(crate) fn error_mapper(provider: &str) -> ErrorMapper {
    ErrorMapper::new(provider, ERROR_RULES)
}
