//! [`RedisIdempotencyStore`]: idempotency claims and results shared by replicas.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use llmkit_core::resilience::{Claim, IdempotencyStore};
use llmkit_core::{ChatResponse, Result};
use redis::Script;

use crate::cache::millis;
use crate::connection::{RedisConnection, failed, unreadable};

/// The value of an in-flight claim; a completed one is `DONE` followed by the response's JSON.
const IN_FLIGHT: &str = "I";
const DONE: char = 'D';

/// Returns the stored value, or writes an in-flight mark with its lease and returns nil: the
/// check and the write are one step, so exactly one replica acquires.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
",
    )
});

/// An [`IdempotencyStore`] on Redis: one key per idempotency key holding an in-flight mark
/// (expires after the claim's lease, so a claimant that crashed blocks duplicates at most that
/// long) or the completed response (kept for the layer's TTL).
///
/// **At-least-once window**: a claimant that dies after sending its upstream call but before
/// storing the result is indistinguishable from one that never sent it; after the lease expires
/// a duplicate executes the call again. Keep the lease above the longest call so a slow but live
/// claimant is never overtaken.
#[derive(Debug, Clone)]
pub struct RedisIdempotencyStore {
    redis: RedisConnection,
}

impl RedisIdempotencyStore {
    /// A store on `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        RedisIdempotencyStore { redis }
    }

    fn key(&self, key: &str) -> String {
        self.redis.key("idem", key)
    }
}

fn completed(op: &'static str, raw: &str) -> Result<Option<ChatResponse>> {
    match raw.strip_prefix(DONE) {
        Some(json) => serde_json::from_str(json)
            .map(Some)
            .map_err(|e| unreadable(op, e)),
        None => Ok(None),
    }
}

#[async_trait]
impl IdempotencyStore for RedisIdempotencyStore {
    async fn claim(&self, key: &str, lease: Duration) -> Result<Claim> {
        let mut conn = self.redis.conn();
        let existing: Option<String> = CLAIM
            .key(self.key(key))
            .arg(IN_FLIGHT)
            .arg(millis(lease).max(1))
            .invoke_async(&mut conn)
            .await
            .map_err(failed("idempotency claim"))?;
        Ok(match existing {
            None => Claim::Acquired,
            Some(raw) => match completed("idempotency claim", &raw)? {
                Some(resp) => Claim::Completed(Box::new(resp)),
                None => Claim::InFlight,
            },
        })
    }

    async fn put(&self, key: &str, response: &ChatResponse, ttl: Duration) -> Result<()> {
        let json = serde_json::to_string(response).map_err(|e| unreadable("idempotency put", e))?;
        let mut conn = self.redis.conn();
        redis::cmd("SET")
            .arg(self.key(key))
            .arg(format!("{DONE}{json}"))
            .arg("PX")
            .arg(millis(ttl).max(1))
            .query_async::<()>(&mut conn)
            .await
            .map_err(failed("idempotency put"))
    }

    async fn get(&self, key: &str) -> Result<Option<ChatResponse>> {
        let mut conn = self.redis.conn();
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.key(key))
            .query_async(&mut conn)
            .await
            .map_err(failed("idempotency get"))?;
        match raw {
            Some(raw) => completed("idempotency get", &raw),
            None => Ok(None),
        }
    }

    async fn release(&self, key: &str) -> Result<()> {
        // An in-flight mark only, never a completed response.
        self.redis
            .del_if_equal("idempotency release", self.key(key), IN_FLIGHT)
            .await
    }
}
