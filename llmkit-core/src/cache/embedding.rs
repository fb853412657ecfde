//! The cache layer's embedding form: vectors cached per input text.
//!
//! Embeddings are deterministic for a given model, so every input is cached unless the request
//! opts out (`meta.no_cache` or tag `cache=off`); [`CachePolicy`](super::CachePolicy) applies to
//! chat only. Each input is looked up on its own, so a batch where some texts were embedded
//! before sends only the others upstream, in one call, and pays only for them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use super::key::CacheKey;
use super::layer::Counters;
use crate::error::{Error, ErrorKind, Result};
use crate::model::{EmbeddingModel, ModelInfo};
use crate::request::RequestMeta;
use crate::response::{EmbeddingRequest, EmbeddingResponse, Usage};

/// A store of cached embedding vectors, one per (provider, model, dimensions, input). The moka
/// default ([`MokaEmbeddingStore`]) lives in one process; implement this trait over a shared
/// engine so many replicas share vectors. Stores must be safe to call concurrently.
#[async_trait]
pub trait EmbeddingStore: Send + Sync {
    /// The cached vector for `key`, if present and fresh.
    async fn get(&self, key: &CacheKey) -> Result<Option<Arc<[f32]>>>;
    /// Stores a vector.
    async fn put(&self, key: &CacheKey, vector: Arc<[f32]>) -> Result<()>;
}

/// In-process embedding store on moka: bounded by entry count, entries expire after a time to
/// live. Defaults: 100,000 vectors, one day (embeddings of a fixed model do not go stale; the
/// bound is memory: 100,000 × 1,536 dimensions × 4 bytes ≈ 600 MB at most).
#[derive(Clone)]
pub struct MokaEmbeddingStore {
    cache: moka::future::Cache<CacheKey, Arc<[f32]>>,
}

impl std::fmt::Debug for MokaEmbeddingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MokaEmbeddingStore")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for MokaEmbeddingStore {
    fn default() -> Self {
        Self::new(100_000, Duration::from_secs(86_400))
    }
}

impl MokaEmbeddingStore {
    /// A store holding at most `max_entries` vectors, each for at most `ttl`.
    pub fn new(max_entries: u64, ttl: Duration) -> Self {
        MokaEmbeddingStore {
            cache: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
        }
    }
}

#[async_trait]
impl EmbeddingStore for MokaEmbeddingStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<Arc<[f32]>>> {
        Ok(self.cache.get(key).await)
    }
    async fn put(&self, key: &CacheKey, vector: Arc<[f32]>) -> Result<()> {
        self.cache.insert(key.clone(), vector).await;
        Ok(())
    }
}

/// The key of one input: provider, model (the request's or the configured one), requested
/// dimensions, the tenant when scoped, and the text, each length-prefixed so no two field
/// splits hash alike.
pub fn embedding_key(
    info: &ModelInfo,
    request: &EmbeddingRequest,
    input: &str,
    scope_by_tenant: bool,
) -> CacheKey {
    let mut h = Sha256::new();
    let model = request.model.as_deref().unwrap_or(&info.model);
    let dims = request
        .dimensions
        .map(|d| d.to_string())
        .unwrap_or_default();
    let tenant = if scope_by_tenant {
        request.meta.tenant.as_deref().unwrap_or("")
    } else {
        ""
    };
    for field in [
        "llmkit-embedding-v1",
        &info.provider,
        model,
        &dims,
        tenant,
        input,
    ] {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field.as_bytes());
    }
    CacheKey(crate::hex::encode(h.finalize()))
}

fn opted_out(meta: &RequestMeta) -> bool {
    meta.no_cache || meta.tags.get("cache").is_some_and(|v| v == "off")
}

pub(super) struct CachedEmbedding {
    pub(super) inner: Arc<dyn EmbeddingModel>,
    pub(super) store: Arc<dyn EmbeddingStore>,
    pub(super) scope_by_tenant: bool,
    pub(super) counters: Arc<Counters>,
    /// The cache layer's failure policy: a failing store reads as a miss (logged) when open.
    pub(super) fail_open: bool,
}

#[async_trait]
impl EmbeddingModel for CachedEmbedding {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }

    fn dimensions(&self) -> Option<usize> {
        self.inner.dimensions()
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        if opted_out(&request.meta) {
            self.counters.bypassed.fetch_add(1, Ordering::Relaxed);
            return self.inner.embed(request).await;
        }
        let info = self.inner.info();
        let keys: Vec<CacheKey> = request
            .inputs
            .iter()
            .map(|input| embedding_key(info, &request, input, self.scope_by_tenant))
            .collect();
        let mut found: Vec<Option<Arc<[f32]>>> = Vec::with_capacity(keys.len());
        for key in &keys {
            found.push(match self.store.get(key).await {
                Ok(found) => found,
                Err(e) if self.fail_open => {
                    tracing::warn!(error = %e, "llmkit.cache.store_unavailable");
                    None
                }
                Err(e) => return Err(e),
            });
        }
        let missing: Vec<usize> = (0..found.len())
            .filter(|&i| found.get(i).is_some_and(Option::is_none))
            .collect();
        let hits = found.len() - missing.len();

        let mut upstream = None;
        if !missing.is_empty() {
            let mut sub = request.clone();
            sub.inputs = missing
                .iter()
                .filter_map(|&i| request.inputs.get(i).cloned())
                .collect();
            let resp = self.inner.embed(sub).await?;
            if resp.embeddings.len() != missing.len() {
                return Err(Error::new(
                    ErrorKind::InvalidResponse,
                    format!(
                        "embedding model returned {} vectors for {} inputs",
                        resp.embeddings.len(),
                        missing.len()
                    ),
                )
                .or_context(&info.provider, &info.model));
            }
            for (&i, vector) in missing.iter().zip(&resp.embeddings) {
                let vector: Arc<[f32]> = vector.as_slice().into();
                if let Some(key) = keys.get(i)
                    && let Err(e) = self.store.put(key, vector.clone()).await
                {
                    tracing::warn!(error = %e, "llmkit.cache.store_failed");
                }
                if let Some(slot) = found.get_mut(i) {
                    *slot = Some(vector);
                }
            }
            upstream = Some(resp);
        }

        let counters = &self.counters;
        counters.hits.fetch_add(hits as u64, Ordering::Relaxed);
        counters
            .misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        let embeddings = found
            .into_iter()
            .map(|v| v.map(|v| v.to_vec()).unwrap_or_default())
            .collect();
        let mut resp = match upstream {
            // Only the inputs sent upstream were billed: keep that call's usage and cost.
            Some(resp) => EmbeddingResponse { embeddings, ..resp },
            None => EmbeddingResponse {
                embeddings,
                model: request.model.clone().unwrap_or_else(|| info.model.clone()),
                provider: info.provider.clone(),
                usage: Usage::default(),
                ..Default::default()
            },
        };
        if missing.is_empty() {
            resp.trail.push("cache", "hit", format!("inputs={hits}"));
        } else {
            resp.trail.push(
                "cache",
                "miss",
                format!("inputs={} cached={hits}", missing.len()),
            );
        }
        Ok(resp)
    }
}
