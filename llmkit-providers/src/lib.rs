//! # llmkit-providers
//!
//! One module per provider, each behind its cargo feature, all implementing
//! [`llmkit_core::ChatModel`] (and [`llmkit_core::EmbeddingModel`] where the provider has
//! embeddings). Application code only sees `Arc<dyn ChatModel>`.
//!
//! ```
//! use llmkit_core::ChatModel;
//! fn takes_any_model(_: &dyn ChatModel) {}
//! takes_any_model(&llmkit_core::ScriptedModel::always("ok"));
//! ```

#[cfg(feature = "anthropic")]
pub mod anthropic;
#[cfg(feature = "gemini")]
pub mod gemini;
#[cfg(feature = "ollama")]
pub mod ollama;
#[cfg(all(
    test,
    any(feature = "anthropic", feature = "gemini", feature = "ollama")
))]
mod test_support;
#[cfg(any(feature = "gemini", feature = "ollama"))]
#[allow(dead_code)]
mod tool_names;
