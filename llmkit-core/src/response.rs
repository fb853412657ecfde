//! The normalized chat response, usage, cost, the trail layers leave, and embeddings.

use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::message::{Message, ToolCall};
use crate::request::PromptRef;

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FinishReason {
    /// It finished naturally or hit a stop sequence.
    #[default]
    Stop,
    /// It hit the token limit: the output is truncated.
    Length,
    /// It wants tool calls answered.
    ToolCalls,
    /// The provider filtered or refused the content.
    ContentFilter,
    /// A value llmkit does not know yet, kept verbatim.
    Other(String),
}

impl FinishReason {
    /// The OpenTelemetry-style name (`stop`, `length`, `tool_calls`, `content_filter`, or the raw
    /// provider value).
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }
}

/// Token counts, normalized once at the provider boundary.
///
/// Following the OpenTelemetry GenAI conventions, `input_tokens` **includes** cached-read and
/// cache-write tokens; `cached_input_tokens` and `cache_write_tokens` say how many of them were
/// priced at those rates. `output_tokens` includes `reasoning_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// All prompt tokens, cached or not.
    pub input_tokens: u64,
    /// Of `input_tokens`, those read from the provider's prompt cache.
    #[serde(default)]
    pub cached_input_tokens: u64,
    /// Of `input_tokens`, those written to the provider's prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// All generated tokens.
    pub output_tokens: u64,
    /// Of `output_tokens`, those spent on hidden reasoning.
    #[serde(default)]
    pub reasoning_tokens: u64,
}

impl Usage {
    /// Input plus output.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Adds another usage field by field (sums attempts, re-asks or stream chunks).
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.cached_input_tokens = self
            .cached_input_tokens
            .saturating_add(other.cached_input_tokens);
        self.cache_write_tokens = self
            .cache_write_tokens
            .saturating_add(other.cache_write_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.reasoning_tokens = self.reasoning_tokens.saturating_add(other.reasoning_tokens);
    }
}

/// What a call cost, in exact decimal US dollars, and which price table priced it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cost {
    /// Total in USD.
    pub total_usd: Decimal,
    /// Part for uncached input tokens.
    #[serde(default)]
    pub input_usd: Decimal,
    /// Part for cache-read input tokens.
    #[serde(default)]
    pub cached_input_usd: Decimal,
    /// Part for cache-write input tokens.
    #[serde(default)]
    pub cache_write_usd: Decimal,
    /// Part for output tokens.
    #[serde(default)]
    pub output_usd: Decimal,
    /// The price table version used (e.g. `2026-11-01`).
    #[serde(default)]
    pub price_table: String,
}

impl Cost {
    /// Adds another cost; the price table of `self` is kept unless it was empty.
    pub fn add(&mut self, other: &Cost) {
        self.total_usd += other.total_usd;
        self.input_usd += other.input_usd;
        self.cached_input_usd += other.cached_input_usd;
        self.cache_write_usd += other.cache_write_usd;
        self.output_usd += other.output_usd;
        if self.price_table.is_empty() {
            self.price_table.clone_from(&other.price_table);
        }
    }
}

/// One note a layer left on a response: cache hit, attempt, fallback link, guard decision, re-ask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrailEntry {
    /// The layer that wrote it (`retry`, `cache`, `fallback`, `guard`, ...).
    pub layer: String,
    /// What happened, a short snake_case word (`hit`, `attempt_failed`, `answered`, ...).
    pub event: String,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// The notes layers appended to a response, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Trail(pub Vec<TrailEntry>);

impl Trail {
    /// Appends a note.
    pub fn push(
        &mut self,
        layer: impl Into<String>,
        event: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(TrailEntry {
            layer: layer.into(),
            event: event.into(),
            detail: detail.into(),
        });
    }

    /// Whether some layer noted `event`.
    pub fn has(&self, layer: &str, event: &str) -> bool {
        self.0.iter().any(|e| e.layer == layer && e.event == event)
    }

    /// Notes written by one layer.
    pub fn by_layer<'a>(&'a self, layer: &'a str) -> impl Iterator<Item = &'a TrailEntry> + 'a {
        self.0.iter().filter(move |e| e.layer == layer)
    }

    /// All notes.
    pub fn entries(&self) -> &[TrailEntry] {
        &self.0
    }

    /// Whether no layer wrote anything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A chat response, normalized at the provider boundary.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatResponse {
    /// The assistant's message: text and tool calls.
    pub message: Message,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Token counts.
    pub usage: Usage,
    /// Cost, when a price table knew the model; `None` means unknown, never zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// The model that actually answered (may differ from the one asked, e.g. a dated snapshot).
    pub model: String,
    /// The provider that answered.
    pub provider: String,
    /// llmkit's request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The provider's response or request id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_request_id: Option<String>,
    /// The prompt that produced the request, copied from its metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptRef>,
    /// Wall time of the call as seen by the layer that measured it last.
    #[serde(default, with = "duration_micros")]
    pub latency: Duration,
    /// Notes from layers.
    #[serde(default, skip_serializing_if = "trail_is_empty")]
    pub trail: Trail,
}

fn trail_is_empty(t: &Trail) -> bool {
    t.0.is_empty()
}

impl Default for Message {
    fn default() -> Self {
        Message {
            role: crate::message::Role::Assistant,
            content: Vec::new(),
            name: None,
        }
    }
}

impl ChatResponse {
    /// The assistant's text.
    pub fn text(&self) -> String {
        self.message.text()
    }

    /// The tool calls the model asked for.
    pub fn tool_calls(&self) -> Vec<&ToolCall> {
        self.message.tool_calls().collect()
    }
}

/// Serializes a duration as integer microseconds (compact, lossless enough for latency).
pub(crate) mod duration_micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_micros(u64::deserialize(d)?))
    }
}

/// One event of a streamed reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StreamEvent {
    /// First event when the provider says which model and id answered.
    Start {
        /// The model that answered.
        model: String,
        /// The provider's response id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_request_id: Option<String>,
    },
    /// A piece of text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A piece of a tool call. The first delta of a call carries its id and name; later ones
    /// only argument text. `index` tells parallel calls apart.
    ToolCallDelta {
        /// Position of the call in the reply.
        index: usize,
        /// The call id, on the first delta.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The tool name, on the first delta.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// A fragment of the JSON arguments.
        #[serde(default)]
        arguments: String,
    },
    /// Token usage; providers may send several (cumulative counts are folded with `max`).
    Usage {
        /// The usage so far.
        usage: Usage,
    },
    /// The stream ended normally.
    Done {
        /// Why it stopped.
        finish_reason: FinishReason,
    },
}

/// An embeddings request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    /// Model; `None` means the configured one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Texts to embed, one vector each, in order.
    pub inputs: Vec<String>,
    /// Requested dimensions, for models that can shorten their vectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Metadata for layers.
    #[serde(default)]
    pub meta: crate::request::RequestMeta,
}

impl EmbeddingRequest {
    /// A request for these texts.
    pub fn new<I, S>(inputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        EmbeddingRequest {
            inputs: inputs.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }
}

/// An embeddings response: one vector per input, in input order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    /// The vectors.
    pub embeddings: Vec<Vec<f32>>,
    /// Model that answered.
    pub model: String,
    /// Provider that answered.
    pub provider: String,
    /// Token usage (output is zero).
    pub usage: Usage,
    /// Cost, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// llmkit's request id (stamped by [`Pipeline::build_embedding`](crate::Pipeline::build_embedding)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Notes the embedding layers left (retry attempts, cache hits, budget settlement), as on
    /// [`ChatResponse::trail`].
    #[serde(default, skip_serializing_if = "Trail::is_empty")]
    pub trail: Trail,
}
