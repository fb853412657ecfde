//! [`ScriptedModel`]: a deterministic, in-process **test double** for [`ChatModel`] and
//! [`EmbeddingModel`].
//!
//! It never talks to a network. Every test and every offline example in llmkit uses it. It is
//! not a model: it replies what you scripted, in the order you scripted it.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind, Result};
use crate::message::{Message, ToolCall};
use crate::model::{Capabilities, ChatModel, ChatStream, EmbeddingModel, ModelInfo};
use crate::request::ChatRequest;
use crate::response::{
    ChatResponse, EmbeddingRequest, EmbeddingResponse, FinishReason, StreamEvent, Usage,
};
use crate::tokens::TokenCounter;

/// One scripted reply.
#[derive(Clone)]
#[non_exhaustive]
pub enum Reply {
    /// Answer with this text.
    Text(String),
    /// Answer with tool calls (and optional text).
    ToolCalls {
        /// Text before the calls.
        text: Option<String>,
        /// The calls.
        calls: Vec<ToolCall>,
    },
    /// Answer with this text and `finish_reason: length`, as a model that hit `max_tokens`.
    Truncated(String),
    /// Fail with this error.
    Fail(Error),
    /// `stream()` yields this text in chunks and then ends without `Done`, as a dropped
    /// connection does; `chat()` fails with [`ErrorKind::Truncated`].
    CutStream(String),
    /// Wait, then give the inner reply (use tokio's paused clock in tests).
    Delayed(Duration, Box<Reply>),
    /// Compute the reply from the request.
    Dynamic(Arc<dyn Fn(&ChatRequest) -> Reply + Send + Sync>),
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Text(t) => f.debug_tuple("Text").field(t).finish(),
            Reply::ToolCalls { text, calls } => f
                .debug_struct("ToolCalls")
                .field("text", text)
                .field("calls", calls)
                .finish(),
            Reply::Truncated(t) => f.debug_tuple("Truncated").field(t).finish(),
            Reply::Fail(e) => f.debug_tuple("Fail").field(e).finish(),
            Reply::CutStream(t) => f.debug_tuple("CutStream").field(t).finish(),
            Reply::Delayed(d, r) => f.debug_tuple("Delayed").field(d).field(r).finish(),
            Reply::Dynamic(_) => f.write_str("Dynamic(..)"),
        }
    }
}

impl Reply {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Reply::Text(text.into())
    }

    /// A text reply holding `value` serialized as JSON.
    pub fn json(value: &serde_json::Value) -> Self {
        Reply::Text(value.to_string())
    }

    /// A single tool call.
    pub fn tool_call(name: impl Into<String>, arguments: serde_json::Value) -> Self {
        let name = name.into();
        Reply::ToolCalls {
            text: None,
            calls: vec![ToolCall {
                id: format!("call_{name}"),
                name,
                arguments,
            }],
        }
    }

    /// A 429 rate-limit error with a retry-after.
    pub fn rate_limited(retry_after: Duration) -> Self {
        Reply::Fail(
            Error::new(ErrorKind::RateLimited, "rate limited by scripted model")
                .with_status(429)
                .with_retry_after(retry_after),
        )
    }

    /// A timeout error.
    pub fn timeout() -> Self {
        Reply::Fail(Error::new(ErrorKind::Timeout, "scripted model timed out"))
    }

    /// A 5xx server error with this status.
    pub fn server_error(status: u16) -> Self {
        Reply::Fail(
            Error::new(ErrorKind::Server, format!("scripted server error {status}"))
                .with_status(status),
        )
    }

    /// A 529-style overloaded error.
    pub fn overloaded() -> Self {
        Reply::Fail(
            Error::new(ErrorKind::Overloaded, "scripted model overloaded")
                .with_status(529)
                .with_provider_code("overloaded_error"),
        )
    }

    /// A reply that is not valid JSON (an object cut in half), for structured-output tests.
    pub fn malformed_json() -> Self {
        Reply::Text(r#"{"decision": "approve", "confid"#.to_owned())
    }

    /// Any error.
    pub fn fail(error: Error) -> Self {
        Reply::Fail(error)
    }

    /// This reply after a delay.
    #[must_use]
    pub fn after(self, delay: Duration) -> Self {
        Reply::Delayed(delay, Box::new(self))
    }

    /// A reply computed from the request.
    pub fn dynamic(f: impl Fn(&ChatRequest) -> Reply + Send + Sync + 'static) -> Self {
        Reply::Dynamic(Arc::new(f))
    }
}

impl From<&str> for Reply {
    fn from(s: &str) -> Self {
        Reply::text(s)
    }
}

impl From<String> for Reply {
    fn from(s: String) -> Self {
        Reply::Text(s)
    }
}

type Predicate = Arc<dyn Fn(&ChatRequest) -> bool + Send + Sync>;

#[derive(Clone)]
struct Rule {
    matches: Predicate,
    reply: Reply,
}

/// Builds a [`ScriptedModel`]. Defaults: provider `scripted`, model `scripted-model`, every
/// capability on, stream chunks of 8 characters, embeddings of 64 dimensions, no replies (a
/// call with nothing scripted fails with a clear error).
#[must_use]
pub struct ScriptedModelBuilder {
    info: ModelInfo,
    sequence: Vec<Reply>,
    on_call: HashMap<usize, Reply>,
    rules: Vec<Rule>,
    fallback: Option<Reply>,
    chunk_chars: usize,
    dimensions: usize,
    embed_sequence: Vec<Reply>,
}

impl fmt::Debug for ScriptedModelBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedModelBuilder")
            .field("info", &self.info)
            .field("sequence", &self.sequence)
            .field("rules", &self.rules.len())
            .finish()
    }
}

impl ScriptedModelBuilder {
    /// Sets the model name reported in [`ModelInfo`] and responses.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.info.model = model.into();
        self
    }

    /// Sets the provider name reported in [`ModelInfo`] and responses.
    pub fn provider(mut self, provider: impl Into<String>) -> Self {
        self.info.provider = provider.into();
        self
    }

    /// Sets the advertised capabilities (default: all).
    pub fn capabilities(mut self, capabilities: Capabilities) -> Self {
        self.info.capabilities = capabilities;
        self
    }

    /// Sets where the model says it takes system messages (default: in the history), to test
    /// what a trace records for an Anthropic- or Gemini-shaped provider.
    pub fn system_instructions(mut self, placement: crate::model::SystemInstructions) -> Self {
        self.info.system_instructions = placement;
        self
    }

    /// Appends a reply to the sequence; calls consume the sequence in order.
    pub fn reply(mut self, reply: impl Into<Reply>) -> Self {
        self.sequence.push(reply.into());
        self
    }

    /// Appends several replies.
    pub fn replies<I, R>(mut self, replies: I) -> Self
    where
        I: IntoIterator<Item = R>,
        R: Into<Reply>,
    {
        self.sequence.extend(replies.into_iter().map(Into::into));
        self
    }

    /// Gives call number `n` (1-based) this reply, whatever else is scripted. Use it to fail a
    /// chosen call.
    pub fn on_call(mut self, n: usize, reply: impl Into<Reply>) -> Self {
        self.on_call.insert(n, reply.into());
        self
    }

    /// Answers every request that matches `predicate` with `reply` (rules are checked in the
    /// order added, before the sequence, and never run out).
    pub fn when(
        mut self,
        predicate: impl Fn(&ChatRequest) -> bool + Send + Sync + 'static,
        reply: impl Into<Reply>,
    ) -> Self {
        self.rules.push(Rule {
            matches: Arc::new(predicate),
            reply: reply.into(),
        });
        self
    }

    /// Answers requests whose last user message contains `needle` (case-insensitive).
    pub fn when_contains(self, needle: impl Into<String>, reply: impl Into<Reply>) -> Self {
        let needle = needle.into().to_lowercase();
        self.when(
            move |req| {
                req.messages
                    .iter()
                    .rev()
                    .find(|m| m.role == crate::message::Role::User)
                    .is_some_and(|m| m.text().to_lowercase().contains(&needle))
            },
            reply,
        )
    }

    /// The reply when no rule matches and the sequence is used up.
    pub fn fallback(mut self, reply: impl Into<Reply>) -> Self {
        self.fallback = Some(reply.into());
        self
    }

    /// Characters per streamed text chunk (minimum 1).
    pub fn chunk_chars(mut self, n: usize) -> Self {
        self.chunk_chars = n.max(1);
        self
    }

    /// Embedding vector length (minimum 1).
    pub fn embedding_dimensions(mut self, n: usize) -> Self {
        self.dimensions = n.max(1);
        self
    }

    /// Appends a reply for the next [`embed`](EmbeddingModel::embed) call: [`Reply::Fail`] fails
    /// it (a 429 from an embedding provider is [`Reply::rate_limited`]), [`Reply::Delayed`] waits
    /// first, any other reply answers with the usual vectors. Embedding calls consume these in
    /// order and answer normally once they run out (default: none, every call answers).
    pub fn embed_reply(mut self, reply: impl Into<Reply>) -> Self {
        self.embed_sequence.push(reply.into());
        self
    }

    /// Builds the model.
    pub fn build(self) -> ScriptedModel {
        ScriptedModel {
            inner: Arc::new(Inner {
                info: self.info,
                chunk_chars: self.chunk_chars,
                dimensions: self.dimensions,
                state: Mutex::new(State {
                    sequence: self.sequence.into(),
                    on_call: self.on_call,
                    rules: self.rules,
                    fallback: self.fallback,
                    requests: Vec::new(),
                    embed_requests: Vec::new(),
                    embed_sequence: self.embed_sequence.into(),
                }),
            }),
        }
    }
}

struct State {
    sequence: std::collections::VecDeque<Reply>,
    on_call: HashMap<usize, Reply>,
    rules: Vec<Rule>,
    fallback: Option<Reply>,
    requests: Vec<ChatRequest>,
    embed_requests: Vec<EmbeddingRequest>,
    embed_sequence: std::collections::VecDeque<Reply>,
}

struct Inner {
    info: ModelInfo,
    chunk_chars: usize,
    dimensions: usize,
    state: Mutex<State>,
}

/// A deterministic test double for [`ChatModel`] and [`EmbeddingModel`].
///
/// **This is not a model.** It replies what you scripted: by call number, by rules matching the
/// request, by a sequence, then a fallback. It can fail on chosen calls (rate limit with
/// retry-after, timeout, 5xx, overloaded, malformed JSON, a stream cut off mid-reply), streams its
/// replies in chunks, reports usage counted by [`TokenCounter::for_model`] for its model name
/// (exact for OpenAI names with the `tiktoken` feature), and records every request for
/// assertions. Cloning shares the script and the recording.
///
/// Its embeddings are a feature-hashed bag of lower-cased words, normalized to unit length:
/// deterministic, offline, and similar for texts that share words.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use llmkit_core::{ChatModel, ChatRequest, ErrorKind, Reply, ScriptedModel};
///
/// let model = ScriptedModel::builder()
///     .reply(Reply::rate_limited(Duration::from_secs(1)))
///     .reply("second call answers")
///     .build();
/// let first = model.chat(ChatRequest::user("hi")).await.unwrap_err();
/// assert_eq!(first.kind(), ErrorKind::RateLimited);
/// let second = model.chat(ChatRequest::user("hi again")).await?;
/// assert_eq!(second.text(), "second call answers");
/// assert_eq!(model.requests().len(), 2);
/// # Ok::<(), llmkit_core::Error>(()) }).unwrap();
/// ```
#[derive(Clone)]
pub struct ScriptedModel {
    inner: Arc<Inner>,
}

impl fmt::Debug for ScriptedModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedModel")
            .field("info", &self.inner.info)
            .finish_non_exhaustive()
    }
}

impl ScriptedModel {
    /// Starts a script.
    pub fn builder() -> ScriptedModelBuilder {
        ScriptedModelBuilder {
            info: ModelInfo::new("scripted", "scripted-model")
                .with_capabilities(Capabilities::all()),
            sequence: Vec::new(),
            on_call: HashMap::new(),
            rules: Vec::new(),
            fallback: None,
            chunk_chars: 8,
            dimensions: 64,
            embed_sequence: Vec::new(),
        }
    }

    /// Provider, model and capabilities. Inherent so `model.info()` is not ambiguous between the
    /// [`ChatModel`] and [`EmbeddingModel`] impls.
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// A model that answers every call with `text`.
    pub fn always(text: impl Into<String>) -> Self {
        Self::builder().fallback(Reply::Text(text.into())).build()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panicking test thread; the recorded data is still fine.
        crate::sync::lock(&self.inner.state)
    }

    /// Every chat request received, in order (streamed ones included).
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.state().requests.clone()
    }

    /// Number of chat calls received.
    pub fn call_count(&self) -> usize {
        self.state().requests.len()
    }

    /// Every embedding request received, in order.
    pub fn embed_requests(&self) -> Vec<EmbeddingRequest> {
        self.state().embed_requests.clone()
    }

    /// Scripted replies not used yet.
    pub fn remaining(&self) -> usize {
        self.state().sequence.len()
    }

    /// Records the request and picks its reply.
    fn next_reply(&self, request: &ChatRequest) -> Reply {
        let mut state = self.state();
        state.requests.push(request.clone());
        let n = state.requests.len();
        if let Some(r) = state.on_call.remove(&n) {
            return r;
        }
        if let Some(rule) = state.rules.iter().find(|r| (r.matches)(request)) {
            return rule.reply.clone();
        }
        if let Some(r) = state.sequence.pop_front() {
            return r;
        }
        state.fallback.clone().unwrap_or_else(|| {
            Reply::Fail(Error::new(
                ErrorKind::Other,
                format!(
                    "scripted model has no reply for call {n}: add one with .reply(), .when() or .fallback()"
                ),
            ))
        })
    }

    /// Resolves delays and dynamic replies to a concrete one.
    async fn resolve(&self, mut reply: Reply, request: &ChatRequest) -> Reply {
        loop {
            match reply {
                Reply::Delayed(d, inner) => {
                    tokio::time::sleep(d).await;
                    reply = *inner;
                }
                Reply::Dynamic(f) => reply = f(request),
                other => return other,
            }
        }
    }

    /// Usage counted like the model it pretends to be ([`TokenCounter::for_model`]): exact for
    /// an OpenAI model name with the `tiktoken` feature, the approximation otherwise.
    fn usage_for(&self, request: &ChatRequest, output: &str) -> Usage {
        let model = request.model.as_deref().unwrap_or(&self.inner.info.model);
        let counter = TokenCounter::for_model(model);
        Usage {
            input_tokens: counter.count_chat(request),
            output_tokens: counter.count(output),
            ..Default::default()
        }
    }

    fn respond(&self, request: &ChatRequest, reply: Reply) -> Result<ChatResponse> {
        let info = &self.inner.info;
        let (message, finish_reason) = match reply {
            Reply::Text(t) => (Message::assistant(t), FinishReason::Stop),
            Reply::Truncated(t) => (Message::assistant(t), FinishReason::Length),
            Reply::ToolCalls { text, calls } => (
                Message::assistant_tool_calls(text, calls),
                FinishReason::ToolCalls,
            ),
            Reply::Fail(e) => return Err(e.or_context(&info.provider, &info.model)),
            Reply::CutStream(t) => {
                return Err(Error::new(
                    ErrorKind::Truncated,
                    format!("stream cut off after {} characters", t.len()),
                )
                .or_context(&info.provider, &info.model));
            }
            Reply::Delayed(..) | Reply::Dynamic(_) => {
                return Err(Error::new(ErrorKind::Other, "unresolved scripted reply"));
            }
        };
        let mut output = message.text();
        for call in message.tool_calls() {
            output.push_str(&call.arguments.to_string());
        }
        let n = self.call_count();
        Ok(ChatResponse {
            usage: self.usage_for(request, &output),
            message,
            finish_reason,
            model: request.model.clone().unwrap_or_else(|| info.model.clone()),
            provider: info.provider.clone(),
            provider_request_id: Some(format!("scripted-{n}")),
            ..Default::default()
        })
    }

    fn chunks(&self, text: &str) -> Vec<StreamEvent> {
        let chars: Vec<char> = text.chars().collect();
        chars
            .chunks(self.inner.chunk_chars)
            .map(|c| StreamEvent::TextDelta {
                text: c.iter().collect(),
            })
            .collect()
    }
}

/// The model-independent token estimate: [`tokens::approximate`](crate::tokens::approximate),
/// under its older name. Prefer [`TokenCounter::for_model`], which is exact for OpenAI models.
pub fn estimate_tokens(text: &str) -> u64 {
    crate::tokens::approximate(text)
}

#[async_trait]
impl ChatModel for ScriptedModel {
    fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let reply = self.next_reply(&request);
        let reply = self.resolve(reply, &request).await;
        self.respond(&request, reply)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let reply = self.next_reply(&request);
        let reply = self.resolve(reply, &request).await;
        let events: Vec<Result<StreamEvent>> = match reply {
            Reply::CutStream(text) => {
                let mut ev = vec![Ok(StreamEvent::Start {
                    model: self.inner.info.model.clone(),
                    provider_request_id: None,
                })];
                ev.extend(self.chunks(&text).into_iter().map(Ok));
                ev
            }
            other => {
                let resp = self.respond(&request, other)?;
                let mut ev = Vec::new();
                for e in crate::model::response_to_events(&resp) {
                    match e {
                        StreamEvent::TextDelta { text } => {
                            ev.extend(self.chunks(&text).into_iter().map(Ok));
                        }
                        other => ev.push(Ok(other)),
                    }
                }
                ev
            }
        };
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

#[async_trait]
impl EmbeddingModel for ScriptedModel {
    fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let scripted = {
            let mut state = self.state();
            state.embed_requests.push(request.clone());
            state.embed_sequence.pop_front()
        };
        let mut reply = scripted;
        while let Some(Reply::Delayed(d, inner)) = reply {
            tokio::time::sleep(d).await;
            reply = Some(*inner);
        }
        if let Some(Reply::Fail(e)) = reply {
            let info = &self.inner.info;
            return Err(e.or_context(&info.provider, &info.model));
        }
        let dims = request
            .dimensions
            .map_or(self.inner.dimensions, |d| d as usize)
            .max(1);
        let embeddings = request
            .inputs
            .iter()
            .map(|t| hashed_embedding(t, dims))
            .collect();
        let model = request.model.as_deref().unwrap_or(&self.inner.info.model);
        let counter = TokenCounter::for_model(model);
        let input_tokens = request.inputs.iter().map(|t| counter.count(t)).sum();
        Ok(EmbeddingResponse {
            embeddings,
            model: self.inner.info.model.clone(),
            provider: self.inner.info.provider.clone(),
            usage: Usage {
                input_tokens,
                ..Default::default()
            },
            ..Default::default()
        })
    }

    fn dimensions(&self) -> Option<usize> {
        Some(self.inner.dimensions)
    }
}

/// A deterministic bag-of-words embedding: each lower-cased alphanumeric word is hashed (FNV-1a)
/// into one of `dims` buckets with a sign, then the vector is normalized. Texts sharing words get
/// a high cosine similarity. Offline and stable across runs and platforms.
pub fn hashed_embedding(text: &str, dims: usize) -> Vec<f32> {
    let dims = dims.max(1);
    let mut v = vec![0f32; dims];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in word.to_lowercase().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        let bucket = (h % dims as u64) as usize;
        let sign = if (h >> 63) == 0 { 1.0 } else { -1.0 };
        if let Some(slot) = v.get_mut(bucket) {
            *slot += sign;
        }
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}
