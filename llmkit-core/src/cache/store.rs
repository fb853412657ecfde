//! Where cached responses live.

use std::time::Duration;

use async_trait::async_trait;

use super::key::CacheKey;
use crate::error::Result;
use crate::response::ChatResponse;

/// A store of cached responses. The moka default lives in one process; implement this trait over
/// a shared engine (Redis: `GET`/`SET key value PX ttl`, values as the response's JSON) so many
/// replicas share hits. Stores must be safe to call concurrently.
#[async_trait]
pub trait CacheStore: Send + Sync {
    /// The cached response for `key`, if present and fresh.
    async fn get(&self, key: &CacheKey) -> Result<Option<ChatResponse>>;
    /// Stores a response.
    async fn put(&self, key: &CacheKey, response: &ChatResponse) -> Result<()>;
    /// Removes an entry (for invalidation).
    async fn remove(&self, key: &CacheKey) -> Result<()>;
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
