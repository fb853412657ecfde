//! Response caching: exact-match (default) and semantic (opt-in).
//!
//! [`CacheLayer`] keys each request by a canonical hash of everything that changes the answer
//! ([`cache_key`]: provider, model, messages, tools, response format and schema, sampling
//! parameters, prompt id@version@hash) and nothing that does not (request id, idempotency key,
//! tags). Only deterministic-enough requests are cached by default ([`CachePolicy`]); a burst of
//! identical misses makes one upstream call (single flight); hits are marked in the response
//! trail with the cost saved, and cost nothing. Storage is a [`CacheStore`]: [`MokaCacheStore`]
//! in-process, or your own over Redis for many replicas.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::{cache::CacheLayer, ChatModel, ChatRequest, Pipeline, ScriptedModel};
//!
//! let provider = Arc::new(ScriptedModel::always("Paris"));
//! let cache = CacheLayer::new();
//! let stats = cache.stats_handle();
//! let model = Pipeline::builder().layer(cache).build(provider.clone());
//! let ask = || ChatRequest::user("Capital of France?").with_temperature(0.0);
//! model.chat(ask()).await?;
//! let second = model.chat(ask()).await?;
//! assert!(second.trail.has("cache", "hit"));
//! assert_eq!(provider.call_count(), 1);
//! assert_eq!(stats.get().hits, 1);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

pub mod embedding;
mod key;
mod layer;
pub mod semantic;
mod store;

pub use embedding::{EmbeddingStore, MokaEmbeddingStore};
pub use key::{CacheKey, cache_key, canonical_json};
pub use layer::{CacheLayer, CachePolicy, CacheStats, CacheStatsHandle};
pub use semantic::SemanticCacheLayer;
pub use store::{CacheStore, Fill, MokaCacheStore};
