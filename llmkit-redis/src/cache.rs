//! [`RedisCacheStore`]: the response cache shared by replicas.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use llmkit_core::cache::{CacheKey, CacheStore, Fill};
use llmkit_core::{ChatResponse, Result};
use redis::Script;

use crate::connection::{RedisConnection, failed, unreadable};

/// Stores an entry with its TTL and trims the insertion-ordered index to the size bound,
/// deleting the oldest entries: one atomic step, so concurrent puts never overshoot the bound.
/// KEYS[1] entry, KEYS[2] index; ARGV: value, ttl ms, max entries, entry key for the index.
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local t = redis.call('TIME')
redis.call('ZADD', KEYS[2], t[1] * 1000000 + t[2], KEYS[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', oldest[i]) end
end
return 1
",
    )
});

/// A [`CacheStore`] on Redis, shared by every replica using the same Redis and prefix.
///
/// - **TTL**: each entry is `SET key json PX ttl` (default one hour).
/// - **Size bound**: at most `max_entries` entries (default 10,000): an insertion-ordered index
///   (`ZSET`) is trimmed in the same Lua script as each put, deleting the oldest entries first;
///   responses whose JSON exceeds `max_entry_bytes` (default 1 MiB) are not stored. Bound Redis
///   memory as a whole with `maxmemory` as well if other data shares it.
/// - **Single flight across replicas**: [`try_fill`](CacheStore::try_fill) takes a lease
///   (`SET lease token NX PX lease`); the cache layer makes the lease holder call upstream while
///   the others poll for its answer, and a leader that dies releases the key when the lease
///   expires.
#[derive(Debug, Clone)]
pub struct RedisCacheStore {
    redis: RedisConnection,
    ttl: Duration,
    max_entries: u64,
    max_entry_bytes: usize,
}

impl RedisCacheStore {
    /// A store with the defaults above.
    pub fn new(redis: RedisConnection) -> Self {
        RedisCacheStore {
            redis,
            ttl: Duration::from_secs(3600),
            max_entries: 10_000,
            max_entry_bytes: 1 << 20,
        }
    }

    /// How long an entry is served (default one hour; at least 1 ms).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.max(Duration::from_millis(1));
        self
    }

    /// Most entries kept; the oldest go first (default 10,000; at least 1).
    #[must_use]
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// Largest response stored, as JSON bytes (default 1 MiB); larger ones are not cached.
    #[must_use]
    pub fn max_entry_bytes(mut self, n: usize) -> Self {
        self.max_entry_bytes = n;
        self
    }

    /// Entries in the size-bound index (entries expired by TTL leave it on the next trim).
    pub async fn indexed_entries(&self) -> Result<u64> {
        let mut conn = self.redis.conn();
        redis::cmd("ZCARD")
            .arg(self.index())
            .query_async(&mut conn)
            .await
            .map_err(failed("cache len"))
    }

    fn entry(&self, key: &CacheKey) -> String {
        self.redis.key("cache", &key.0)
    }

    fn index(&self) -> String {
        self.redis.key("cache-index", "entries")
    }

    fn lease(&self, key: &CacheKey) -> String {
        self.redis.key("cache-lease", &key.0)
    }
}

#[async_trait]
impl CacheStore for RedisCacheStore {
    async fn get(&self, key: &CacheKey) -> Result<Option<ChatResponse>> {
        let mut conn = self.redis.conn();
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.entry(key))
            .query_async(&mut conn)
            .await
            .map_err(failed("cache get"))?;
        raw.map(|json| serde_json::from_str(&json).map_err(|e| unreadable("cache get", e)))
            .transpose()
    }

    async fn put(&self, key: &CacheKey, response: &ChatResponse) -> Result<()> {
        let json = serde_json::to_string(response).map_err(|e| unreadable("cache put", e))?;
        if json.len() > self.max_entry_bytes {
            tracing::debug!(bytes = json.len(), "llmkit.cache.redis.too_large");
            return Ok(());
        }
        let mut conn = self.redis.conn();
        let entry = self.entry(key);
        PUT.key(&entry)
            .key(self.index())
            .arg(json)
            .arg(millis(self.ttl))
            .arg(self.max_entries)
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(failed("cache put"))?;
        Ok(())
    }

    async fn remove(&self, key: &CacheKey) -> Result<()> {
        let mut conn = self.redis.conn();
        let entry = self.entry(key);
        redis::pipe()
            .cmd("DEL")
            .arg(&entry)
            .ignore()
            .cmd("ZREM")
            .arg(self.index())
            .arg(&entry)
            .ignore()
            .query_async::<()>(&mut conn)
            .await
            .map_err(failed("cache remove"))
    }

    async fn try_fill(&self, key: &CacheKey, lease: Duration) -> Result<Fill> {
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let mut conn = self.redis.conn();
        let taken: Option<String> = redis::cmd("SET")
            .arg(self.lease(key))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(millis(lease).max(1))
            .query_async(&mut conn)
            .await
            .map_err(failed("cache lease"))?;
        Ok(match taken {
            Some(_) => Fill::Lead(token),
            None => Fill::Wait,
        })
    }

    async fn end_fill(&self, key: &CacheKey, token: &str) -> Result<()> {
        // Only if it still holds this caller's token: a lease that expired and was taken by
        // another replica is not theirs to end.
        self.redis
            .del_if_equal("cache end lease", self.lease(key), token)
            .await
    }
}

/// Whole milliseconds of `d`, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
