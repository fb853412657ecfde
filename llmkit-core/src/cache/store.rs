//! Where cached responses live.

use std::time::Duration;

use async_trait::async_trait;

use super::key::CacheKey;
use crate::error::Result;
use crate::response::ChatResponse;

/// Who fills a missing entry, as a store that coordinates processes answers
/// [`CacheStore::try_fill`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fill {
    /// This caller leads: it calls upstream, stores the answer, then ends its lease with
    /// [`CacheStore::end_fill`] and this token.
    Lead(String),
    /// Another process holds the lease: poll [`CacheStore::get`] until the answer appears or the
    /// lease ends.
    Wait,
}

/// A store of cached responses. The moka default lives in one process; a shared store
/// (`llmkit_redis::RedisCacheStore`) lets many replicas share hits and fills. Stores must be safe
/// to call concurrently.
///
/// Required: `get`, `put`, `remove`. `try_fill`/`end_fill` have defaults for a store used by one
/// process, where the cache layer's in-process single flight already makes one leader per key; a
/// shared store overrides them with a lease (Redis: `SET lease token NX PX ms`) so one replica
/// leads per key and a leader that dies releases the key when its lease expires.
#[async_trait]
pub trait CacheStore: Send + Sync {
    /// The cached response for `key`, if present and fresh.
    async fn get(&self, key: &CacheKey) -> Result<Option<ChatResponse>>;
    /// Stores a response.
    async fn put(&self, key: &CacheKey, response: &ChatResponse) -> Result<()>;
    /// Removes an entry (for invalidation).
    async fn remove(&self, key: &CacheKey) -> Result<()>;
    /// Asks to lead the fill of a missing `key` for at most `lease`. Default: always
    /// [`Fill::Lead`] (one process needs no lease).
    async fn try_fill(&self, key: &CacheKey, lease: Duration) -> Result<Fill> {
        let _ = (key, lease);
        Ok(Fill::Lead(String::new()))
    }
    /// Ends a fill lease taken by [`try_fill`](Self::try_fill) (only if `token` still holds it).
    /// Default: nothing to end.
    async fn end_fill(&self, key: &CacheKey, token: &str) -> Result<()> {
        let _ = (key, token);
        Ok(())
    }
}

/// In-process cache on moka: bounded by entry count, entries expire after a time to live.
/// Defaults: 10,000 entries, one hour.
#[derive(Clone)]
pub struct MokaCacheStore {
    cache: moka::future::Cache<CacheKey, ChatResponse>,
}

impl std::fmt::Debug for MokaCacheStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MokaCacheStore")
            .field("entries", &self.cache.entry_count())
            .finish()
    }
}

impl Default for MokaCacheStore {
    fn default() -> Self {
        Self::new(10_000, Duration::from_secs(3600))
    }
}

impl MokaCacheStore {
    /// A store holding at most `max_entries` responses, each for at most `ttl`.
    pub fn new(max_entries: u64, ttl: Duration) -> Self {
        MokaCacheStore {
            cache: moka::future::Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// Entries currently stored (approximate: moka applies evictions lazily).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Applies pending evictions now; useful before reading [`entry_count`](Self::entry_count).
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }
}

#[async_trait]
impl CacheStore for MokaCacheStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<ChatResponse>> {
        Ok(self.cache.get(key).await)
    }
    async fn put(&self, key: &CacheKey, response: &ChatResponse) -> Result<()> {
        self.cache.insert(key.clone(), response.clone()).await;
        Ok(())
    }
    async fn remove(&self, key: &CacheKey) -> Result<()> {
        self.cache.invalidate(key).await;
        Ok(())
    }
}
