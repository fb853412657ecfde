//! # llmkit-providers
//!
//! One module per provider, each behind its cargo feature, all implementing
//! [`llmkit_core::ChatModel`] (and [`llmkit_core::EmbeddingModel`] where the provider has
//! embeddings). Application code only sees `Arc<dyn ChatModel>`.
//!
//! - [`factory`]: [`from_env`] and [`from_config`] build a model from configuration
//!   ([`ProviderConfig`], [`ProviderKind`]); switching provider is a configuration change.
//! - [`http`]: the one shared, tuned HTTP client and the error mapping every provider uses
//!   ([`http::ErrorMapper`], [`http::ErrorRule`], Retry-After parsing).
//! - [`sse`] and [`ndjson`]: incremental stream parsers over `bytes_stream()`.
//! - [`frames::chat_stream`]: the one stream contract (exactly one `Done`, `Truncated` when the
//!   end marker never came, no partial tool calls) every provider's streaming goes through,
//!   public so a downstream provider gets it too.
//! - [`SecretString`]: API keys that never print.
//!
//! ```
//! use llmkit_core::ChatModel;
//! use llmkit_providers::{ProviderConfig, ProviderKind};
//!
//! fn takes_any_model(_: &dyn ChatModel) {}
//! takes_any_model(&llmkit_core::ScriptedModel::always("ok"));
//!
//! // Without LLMKIT_PROVIDER the factory says which variable to set.
//! let err = llmkit_providers::factory::from_lookup(|_| None).err().unwrap();
//! assert!(err.message().contains("LLMKIT_PROVIDER"));
//! let config = ProviderConfig::new(ProviderKind::Ollama, "llama3.2");
//! assert_eq!(config.provider.as_str(), "ollama");
//! ```

#[cfg(feature = "azure")]
pub mod azure;
#[cfg(any(feature = "openai", feature = "anthropic"))]
pub mod batch;
pub mod config;
pub mod factory;
pub mod frames;
pub mod http;
pub mod ndjson;
#[cfg(feature = "openai")]
pub mod openai;
pub mod secret;
pub mod sse;

pub use config::{ProviderConfig, ProviderKind};
pub use factory::{embedding_from_config, embedding_from_env, from_config, from_env};
pub use secret::SecretString;

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
mod tool_names;
