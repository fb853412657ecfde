//! Ollama native API provider (`/api/chat`, `/api/embed`).
//!
//! [`OllamaModel`] implements [`llmkit_core::ChatModel`] (NDJSON streaming, tools, `format`
//! for JSON and JSON Schema output, `options` for sampling) and
//! [`llmkit_core::EmbeddingModel`]. No API key. Conversions live in `wire.rs`.
//!
//! ```
//! use llmkit_providers::ollama::OllamaModel;
//! let model = OllamaModel::builder("llama3.2").num_ctx(8192).keep_alive("10m").build()?;
//! assert_eq!(model.info().provider, "ollama");
//! # Ok::<(), llmkit_core::Error>(())
//! ```

mod client;
mod wire;

pub use client::{DEFAULT_HOST, OllamaBuilder, OllamaModel};

#[cfg(test)]
mod tests;
