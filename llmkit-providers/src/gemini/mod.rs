//! Google Gemini provider, via AI Studio (API key) or Vertex AI (bearer token).
//!
//! [`GeminiModel`] implements [`llmkit_core::ChatModel`] (`generateContent`, SSE streaming via
//! `streamGenerateContent?alt=sse`, function calling with `thoughtSignature` kept across turns,
//! `responseSchema` structured output through `llmkit_core::schema`'s Gemini dialect) and
//! [`llmkit_core::EmbeddingModel`]
//! (`batchEmbedContents` on AI Studio, `predict` on Vertex). The provider name is
//! [`PROVIDER_GEMINI`] or [`PROVIDER_VERTEX`]. Conversions live in `wire.rs`.
//!
//! ```
//! use llmkit_providers::gemini::GeminiModel;
//! let model = GeminiModel::vertex("gemini-2.5-flash", "my-project", "us-central1")
//!     .access_token("ya29.example")
//!     .build()?;
//! assert_eq!(model.info().provider, "gcp.vertex_ai");
//! # Ok::<(), llmkit_core::Error>(())
//! ```

mod client;
mod wire;

pub use client::{
    DEFAULT_BASE_URL, DEFAULT_EMBEDDING_MODEL, GeminiBuilder, GeminiModel, PROVIDER_GEMINI,
    PROVIDER_VERTEX,
};

#[cfg(test)]
mod tests;
