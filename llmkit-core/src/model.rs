//! The two traits everything else is built on: [`ChatModel`] and [`EmbeddingModel`].

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::message::{ContentPart, Message, Role, ToolCall};
use crate::request::ChatRequest;
use crate::response::{
    ChatResponse, EmbeddingRequest, EmbeddingResponse, FinishReason, StreamEvent, Usage,
};

/// What a model can do; layers and the structured-output machinery read it to pick a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Capabilities {
    /// Accepts a JSON Schema natively (response_format, responseSchema, format).
    pub json_schema: bool,
    /// Supports tool calls.
    pub tools: bool,
    /// Streams natively (otherwise the default [`ChatModel::stream`] replays the full reply).
    pub streaming: bool,
    /// Supports explicit prompt-cache breakpoints.
    pub prompt_caching: bool,
    /// Has a batch API.
    pub batch: bool,
    /// Has an embeddings endpoint.
    pub embeddings: bool,
    /// Accepts images.
    pub vision: bool,
}

impl Capabilities {
    /// Everything on: handy for test doubles.
    pub fn all() -> Self {
        Capabilities {
            json_schema: true,
            tools: true,
            streaming: true,
            prompt_caching: true,
            batch: true,
            embeddings: true,
            vision: true,
        }
    }
}

/// Which provider and model a [`ChatModel`] talks to, and what it can do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Provider name as in the OpenTelemetry `gen_ai.provider.name` attribute (`openai`,
    /// `anthropic`, `azure.ai.openai`, `gcp.gemini`, `ollama`, ...).
    pub provider: String,
    /// The configured model (or deployment) name.
    pub model: String,
    /// What it can do.
    pub capabilities: Capabilities,
    /// The endpoint's host and port, traced as `server.address` / `server.port`; `None` for
    /// in-process models and test doubles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerAddress>,
    /// Where the provider's API takes system messages; traces follow it (see
    /// [`SystemInstructions`]).
    #[serde(default)]
    pub system_instructions: SystemInstructions,
}

/// Where a provider's API takes the system messages of a [`ChatRequest`].
///
/// llmkit keeps system messages in the message list for every provider; the provider moves
/// them where its API wants them. Traces follow the wire: the OpenTelemetry GenAI conventions
/// record instructions sent apart from the chat history as `gen_ai.system_instructions` and
/// instructions that are part of the history inside `gen_ai.input.messages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemInstructions {
    /// System messages travel inside the message list (OpenAI chat completions, Ollama, and
    /// any model that does not say otherwise).
    #[default]
    InHistory,
    /// System messages travel in a field of their own (Anthropic `system`, Gemini
    /// `systemInstruction`).
    Separate,
}

/// Host and port of the endpoint a model is called at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerAddress {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port; the scheme's default when the URL names none.
    pub port: u16,
}

impl ServerAddress {
    /// Host and port of an `http://` or `https://` URL (default ports 80 and 443); `None` for
    /// anything else, so a malformed base URL only loses the trace attribute.
    ///
    /// ```
    /// use llmkit_core::ServerAddress;
    /// let s = ServerAddress::from_url("https://api.openai.com/v1").unwrap();
    /// assert_eq!((s.host.as_str(), s.port), ("api.openai.com", 443));
    /// let s = ServerAddress::from_url("http://[::1]:11434/api").unwrap();
    /// assert_eq!((s.host.as_str(), s.port), ("::1", 11434));
    /// assert!(ServerAddress::from_url("localhost:80").is_none());
    /// ```
    pub fn from_url(url: &str) -> Option<Self> {
        let (rest, default_port) = if let Some(r) = url.strip_prefix("https://") {
            (r, 443)
        } else if let Some(r) = url.strip_prefix("http://") {
            (r, 80)
        } else {
            return None;
        };
        let authority = rest.split(['/', '?', '#']).next()?;
        // Drop any `user:password@` so credentials never reach a trace.
        let hostport = authority.rsplit('@').next()?;
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        Some(ServerAddress {
            host: host.to_owned(),
            port,
        })
    }
}

impl ModelInfo {
    /// Info with no capabilities set.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        ModelInfo {
            provider: provider.into(),
            model: model.into(),
            capabilities: Capabilities::default(),
            server: None,
            system_instructions: SystemInstructions::InHistory,
        }
    }

    /// Sets where the provider's API takes system messages.
    #[must_use]
    pub fn with_system_instructions(mut self, placement: SystemInstructions) -> Self {
        self.system_instructions = placement;
        self
    }

    /// Sets the endpoint from its URL (see [`ServerAddress::from_url`]).
    #[must_use]
    pub fn with_server_url(mut self, url: &str) -> Self {
        self.server = ServerAddress::from_url(url);
        self
    }

    /// Sets the capabilities.
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }
}

/// One way a call may be answered and billed: the models it may reach, in call order.
///
/// A provider is one candidate of one model. A router lists one candidate per route, and an
/// escalating router adds the path "cheap, then strong" as one candidate of two models, because
/// that call pays for both. Budgets reserve for the most expensive candidate (issue 17: a budget
/// that priced a router's own name reserved $0 and let 100 calls spend 44× the limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The models billed on this path, in call order (never empty when built by llmkit).
    pub models: Vec<ModelInfo>,
}

impl Candidate {
    /// A path through one model.
    pub fn single(info: ModelInfo) -> Self {
        Candidate { models: vec![info] }
    }

    /// This path followed by `next` (both are billed).
    #[must_use]
    pub fn then(mut self, next: &Candidate) -> Self {
        self.models.extend(next.models.iter().cloned());
        self
    }
}

/// A streamed reply: a boxed stream of events that ends after [`StreamEvent::Done`] or with an
/// error. A stream that ends without `Done` was cut off; [`collect_stream`] reports it as
/// [`ErrorKind::Truncated`].
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent>> + Send>>;

/// A chat model: a provider, a test double, or a stack of layers around one.
///
/// Implementors must provide [`info`](ChatModel::info) and [`chat`](ChatModel::chat);
/// [`stream`](ChatModel::stream) defaults to replaying the full reply as events, so a provider
/// without native streaming still works with streaming callers, and
/// [`candidates`](ChatModel::candidates) defaults to `info()` alone, which is right for a
/// provider. A layer that wraps one model forwards `candidates` to it; a layer that chooses among
/// models lists every choice.
///
/// The trait is object-safe: application code holds `Arc<dyn ChatModel>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a llmkit `ChatModel`",
    note = "implement `info` and `chat` with `#[async_trait::async_trait]`; `stream` has a default"
)]
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Provider, model and capabilities.
    fn info(&self) -> &ModelInfo;

    /// Sends one request and waits for the whole reply.
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse>;

    /// Sends one request and returns its reply as a stream of events.
    ///
    /// The default calls [`chat`](ChatModel::chat) and replays the reply with
    /// [`response_to_events`].
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let response = self.chat(request).await?;
        let events = response_to_events(&response);
        Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))))
    }

    /// Every way a call to this model may be answered (see [`Candidate`]): what a budget must
    /// price before the call. The default is [`info`](ChatModel::info) alone, right for a
    /// provider; a wrapping layer that does not forward it reports its own `info`, which a budget
    /// cannot price and therefore refuses (fail closed, never $0).
    fn candidates(&self) -> Vec<Candidate> {
        vec![Candidate::single(self.info().clone())]
    }
}

#[async_trait]
impl<M: ChatModel + ?Sized> ChatModel for Arc<M> {
    fn info(&self) -> &ModelInfo {
        (**self).info()
    }
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        (**self).chat(request).await
    }
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        (**self).stream(request).await
    }
    fn candidates(&self) -> Vec<Candidate> {
        (**self).candidates()
    }
}

#[async_trait]
impl<M: ChatModel + ?Sized> ChatModel for Box<M> {
    fn info(&self) -> &ModelInfo {
        (**self).info()
    }
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        (**self).chat(request).await
    }
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        (**self).stream(request).await
    }
    fn candidates(&self) -> Vec<Candidate> {
        (**self).candidates()
    }
}

/// A model that turns texts into vectors.
///
/// Implementors provide [`info`](EmbeddingModel::info) and [`embed`](EmbeddingModel::embed).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a llmkit `EmbeddingModel`",
    note = "implement `info` and `embed` with `#[async_trait::async_trait]`"
)]
#[async_trait]
pub trait EmbeddingModel: Send + Sync {
    /// Provider, model and capabilities.
    fn info(&self) -> &ModelInfo;

    /// Embeds every input, returning vectors in input order.
    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse>;

    /// Vector length, when known without a call.
    fn dimensions(&self) -> Option<usize> {
        None
    }
}

#[async_trait]
impl<M: EmbeddingModel + ?Sized> EmbeddingModel for Arc<M> {
    fn info(&self) -> &ModelInfo {
        (**self).info()
    }
    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        (**self).embed(request).await
    }
    fn dimensions(&self) -> Option<usize> {
        (**self).dimensions()
    }
}

/// Turns a full response into the events a stream of it would have produced.
pub fn response_to_events(response: &ChatResponse) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Start {
        model: response.model.clone(),
        provider_request_id: response.provider_request_id.clone(),
    }];
    let text = response.text();
    if !text.is_empty() {
        events.push(StreamEvent::TextDelta { text });
    }
    for (index, call) in response.message.tool_calls().enumerate() {
        events.push(StreamEvent::ToolCallDelta {
            index,
            id: Some(call.id.clone()),
            name: Some(call.name.clone()),
            arguments: call.arguments.to_string(),
        });
    }
    events.push(StreamEvent::Usage {
        usage: response.usage,
    });
    events.push(StreamEvent::Done {
        finish_reason: response.finish_reason.clone(),
    });
    events
}

/// Folds stream events into a [`ChatResponse`], one event at a time.
///
/// Use it when you forward a stream to a user and also want the full response at the end;
/// [`collect_stream`] does both steps for you.
#[derive(Debug, Default)]
pub struct StreamAccumulator {
    text: String,
    calls: BTreeMap<usize, PendingCall>,
    usage: Usage,
    model: Option<String>,
    provider_request_id: Option<String>,
    finish: Option<FinishReason>,
}

#[derive(Debug, Default)]
struct PendingCall {
    id: String,
    name: String,
    arguments: String,
}

impl StreamAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event.
    pub fn push(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Start {
                model,
                provider_request_id,
            } => {
                self.model = Some(model.clone());
                if provider_request_id.is_some() {
                    self.provider_request_id.clone_from(provider_request_id);
                }
            }
            StreamEvent::TextDelta { text } => self.text.push_str(text),
            StreamEvent::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => {
                let call = self.calls.entry(*index).or_default();
                if let Some(id) = id {
                    call.id.clone_from(id);
                }
                if let Some(name) = name {
                    call.name.push_str(name);
                }
                call.arguments.push_str(arguments);
            }
            StreamEvent::Usage { usage } => {
                // Providers send either cumulative or final counts; max keeps both correct.
                self.usage.input_tokens = self.usage.input_tokens.max(usage.input_tokens);
                self.usage.cached_input_tokens = self
                    .usage
                    .cached_input_tokens
                    .max(usage.cached_input_tokens);
                self.usage.cache_write_tokens =
                    self.usage.cache_write_tokens.max(usage.cache_write_tokens);
                self.usage.output_tokens = self.usage.output_tokens.max(usage.output_tokens);
                self.usage.reasoning_tokens =
                    self.usage.reasoning_tokens.max(usage.reasoning_tokens);
            }
            StreamEvent::Done { finish_reason } => self.finish = Some(finish_reason.clone()),
        }
    }

    /// Whether a [`StreamEvent::Done`] arrived.
    pub fn is_done(&self) -> bool {
        self.finish.is_some()
    }

    /// Text received so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Builds the response. Fails with [`ErrorKind::Truncated`] when no `Done` arrived and with
    /// [`ErrorKind::InvalidResponse`] when a tool call's arguments are not JSON.
    pub fn finish(self, info: &ModelInfo) -> Result<ChatResponse> {
        let Some(finish_reason) = self.finish else {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "stream ended before completion after {} characters",
                    self.text.len()
                ),
            )
            .or_context(&info.provider, &info.model));
        };
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(ContentPart::text(self.text));
        }
        for (_, call) in self.calls {
            let arguments = if call.arguments.trim().is_empty() {
                serde_json::Value::Object(serde_json::Map::new())
            } else {
                serde_json::from_str(&call.arguments).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidResponse,
                        format!("tool call `{}` arguments are not json: {e}", call.name),
                    )
                    .or_context(&info.provider, &info.model)
                })?
            };
            content.push(ContentPart::ToolCall(ToolCall {
                id: call.id,
                name: call.name,
                arguments,
            }));
        }
        Ok(ChatResponse {
            message: Message {
                role: Role::Assistant,
                content,
                name: None,
            },
            finish_reason,
            usage: self.usage,
            model: self.model.unwrap_or_else(|| info.model.clone()),
            provider: info.provider.clone(),
            provider_request_id: self.provider_request_id,
            ..Default::default()
        })
    }
}

/// Drains a stream into a full [`ChatResponse`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use llmkit_core::{collect_stream, ChatModel, ChatRequest, ScriptedModel};
/// let model = ScriptedModel::builder().reply("hello there").build();
/// let stream = model.stream(ChatRequest::user("hi")).await?;
/// let response = collect_stream(stream, model.info()).await?;
/// assert_eq!(response.text(), "hello there");
/// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
/// ```
pub async fn collect_stream(mut stream: ChatStream, info: &ModelInfo) -> Result<ChatResponse> {
    let mut acc = StreamAccumulator::new();
    while let Some(event) = stream.next().await {
        acc.push(&event?);
    }
    acc.finish(info)
}
