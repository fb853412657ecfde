//! OpenAI Chat Completions and Embeddings, and the same code for any OpenAI-compatible server
//! (vLLM, llama.cpp server, LM Studio, Together, Groq...) by base URL.
//!
//! - [`OpenAiModel`] implements [`ChatModel`](llmkit_core::ChatModel): messages with images,
//!   tool calls and results, tools and `tool_choice`, `response_format` (`json_object`,
//!   `json_schema` transformed for strict mode by [`llmkit_core::schema`]),
//!   `max_completion_tokens`, seed, stop, native SSE streaming with
//!   `stream_options.include_usage`, and usage including cached and reasoning tokens.
//!   `RequestMeta::idempotency_key` becomes an `Idempotency-Key` header. Build it with
//!   [`OpenAiModel::builder`] (or [`OpenAiModel::compatible_builder`]) on the shared
//!   [`http::Transport`](crate::http::Transport), or from a [`ProviderConfig`].
//! - [`OpenAiEmbeddings`] implements [`EmbeddingModel`](llmkit_core::EmbeddingModel) over
//!   `/embeddings`.
//! - [`crate::azure`] builds the same types with Azure's URLs and auth.
//!
//! The files have the roles every provider's have: `client.rs` the builder and the HTTP side,
//! `wire.rs` the typed serde request/response structs and pure conversions. Streams go through
//! the shared [`frames::chat_stream`](crate::frames::chat_stream): a refusal
//! (`message.refusal`) becomes the reply text with [`FinishReason::ContentFilter`]; a stream
//! that ends without a finish reason or `[DONE]` ends with an
//! [`ErrorKind::Truncated`](llmkit_core::ErrorKind::Truncated) error.
//!
//! ```
//! use llmkit_providers::openai::OpenAiModel;
//! use llmkit_providers::{ProviderConfig, ProviderKind};
//!
//! // A local vLLM or llama.cpp server needs no key.
//! let config = ProviderConfig::new(ProviderKind::OpenAiCompatible, "qwen2.5")
//!     .with_base_url("http://127.0.0.1:8000/v1");
//! let model = OpenAiModel::from_config(&config)?;
//! assert_eq!(model.info().provider, "openai_compatible");
//! assert_eq!(model.chat_url(), "http://127.0.0.1:8000/v1/chat/completions");
//! # Ok::<(), llmkit_core::Error>(())
//! ```
//!
//! [`ProviderConfig`]: crate::ProviderConfig
//! [`FinishReason::ContentFilter`]: llmkit_core::FinishReason::ContentFilter

pub(crate) mod client;
pub(crate) mod wire;

use crate::http::ErrorRule;

pub use client::{OpenAiBuilder, OpenAiEmbeddings, OpenAiModel};
// What Azure builds its endpoint with.
#[cfg(feature = "azure")]
pub(crate) use client::{CAPABILITIES, Endpoint, base_url};
#[cfg(feature = "azure")]
pub(crate) use wire::{BodyOptions, MaxTokensField};

/// OpenAI's default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Provider name of OpenAI (OpenTelemetry `gen_ai.provider.name`).
pub const PROVIDER: &str = "openai";

/// Provider name used for OpenAI-compatible servers, so their calls are not priced or counted
/// as OpenAI's.
pub const COMPATIBLE_PROVIDER: &str = "openai_compatible";

/// OpenAI-specific error rules, checked before the rules every provider shares.
pub static OPENAI_RULES: &[ErrorRule] = &[
    ErrorRule::message(
        "reduce the length of the messages",
        llmkit_core::ErrorKind::ContextLength,
    ),
    ErrorRule::code(
        "unsupported_country_region_territory",
        llmkit_core::ErrorKind::Auth,
    ),
];

#[cfg(test)]
mod tests;
