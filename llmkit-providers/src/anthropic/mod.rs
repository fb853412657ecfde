//! Anthropic Messages API provider.
//!
//! [`AnthropicModel`] implements [`llmkit_core::ChatModel`]: chat and SSE streaming, tool use,
//! structured output by tool forcing, prompt-cache breakpoints ([`CacheTtl`],
//! [`min_cacheable_tokens`]) and usage normalized so `input_tokens` includes cache reads and
//! writes. Build it with [`AnthropicModel::builder`] or [`AnthropicModel::from_config`]; the
//! conversions live in `wire.rs`, breakpoint placement in `cache.rs`.
//!
//! ```
//! use llmkit_core::{ChatRequest, Message};
//! use llmkit_providers::anthropic::{AnthropicModel, CacheTtl};
//!
//! let model = AnthropicModel::builder("claude-sonnet-4-5")
//!     .api_key("sk-ant-example")
//!     .cache_tools(true)
//!     .cache_ttl(CacheTtl::OneHour)
//!     .build()?;
//! // A long, stable system prompt marked as a cacheable prefix.
//! let request = ChatRequest::new(vec![
//!     Message::system("You answer from the policy below.\n...").cacheable(),
//!     Message::user("Can I return shoes after 40 days?"),
//! ]);
//! # let _ = (model, request);
//! # Ok::<(), llmkit_core::Error>(())
//! ```

mod cache;
pub(crate) mod client;
pub(crate) mod wire;

pub use cache::{CacheTtl, min_cacheable_tokens};
pub use client::{
    AnthropicBuilder, AnthropicModel, DEFAULT_API_VERSION, DEFAULT_BASE_URL, DEFAULT_MAX_TOKENS,
};

#[cfg(test)]
mod tests;
