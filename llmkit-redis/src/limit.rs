//! [`RedisRateLimitStore`]: request and token buckets shared by replicas (GCRA).

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use llmkit_core::Result;
use llmkit_core::resilience::{Admission, RateBucket, RateLimitStore};
use redis::Script;

use crate::connection::{RedisConnection, failed, unreadable};

/// GCRA over several buckets in one step. Per bucket the key holds its theoretical arrival time
/// (TAT, µs of Redis's clock); emission interval `T = period / limit`; a call of `cost` units
/// may go once `max(TAT, now) + cost·T − period ≤ now` (a full bucket holds `limit` units, i.e.
/// `period` of time). The longest wait over the buckets decides: above `max_wait` nothing is
/// written; otherwise every TAT advances (the caller waits out the debt, so callers are served
/// in arrival order). Same arithmetic as the in-memory token bucket, written as times.
/// ARGV: max wait µs (-1: unbounded), then per bucket: cost, period µs, limit.
/// Returns {admitted 0|1, wait µs, bucket index}.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_wait = tonumber(ARGV[1])
local worst, which = 0, 0
local tats = {}
for i, key in ipairs(KEYS) do
  local cost = tonumber(ARGV[3*i-1])
  local period = tonumber(ARGV[3*i])
  local limit = tonumber(ARGV[3*i+1])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local new = tat + cost * period / limit
  local wait = new - period - now
  if wait > worst then worst = wait; which = i - 1 end
  tats[i] = new
end
if max_wait >= 0 and worst > max_wait then
  return {0, math.ceil(worst), which}
end
for i, key in ipairs(KEYS) do
  local ttl = math.ceil((tats[i] - now) / 1000) + 1
  if ttl > 0 then
    redis.call('SET', key, string.format('%.0f', tats[i]), 'PX', ttl)
  end
end
return {1, math.ceil(worst), which}
",
    )
});

/// Takes `cost` more units (negative: gives them back, never beyond a full bucket).
/// ARGV: cost, period µs, limit.
static ADJUST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new = tat + tonumber(ARGV[1]) * tonumber(ARGV[2]) / tonumber(ARGV[3])
if new <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
end
return 1
",
    )
});

/// A [`RateLimitStore`] on Redis using **GCRA** (the generic cell rate algorithm, as in
/// redis-cell and the ATM networks it comes from): one key per bucket holding its theoretical
/// arrival time, updated by a Lua script, so every replica draws from the same requests- and
/// tokens-per-period buckets. Keys expire once their bucket is full again. Time is Redis's
/// `TIME`, so replica clocks do not matter.
#[derive(Debug, Clone)]
pub struct RedisRateLimitStore {
    redis: RedisConnection,
}

impl RedisRateLimitStore {
    /// A store on `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        RedisRateLimitStore { redis }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl RateLimitStore for RedisRateLimitStore {
    async fn acquire(
        &self,
        buckets: &[RateBucket],
        max_wait: Option<Duration>,
    ) -> Result<Admission> {
        if buckets.is_empty() {
            return Ok(Admission::Now);
        }
        let mut invocation = ACQUIRE.prepare_invoke();
        for b in buckets {
            invocation.key(self.redis.key("limit", &b.key));
        }
        invocation.arg(max_wait.map_or(-1, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX)));
        for b in buckets {
            invocation
                .arg(b.cost)
                .arg(micros(b.period))
                .arg(b.limit.max(1));
        }
        let mut conn = self.redis.conn();
        let reply: Vec<i64> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(failed("limit acquire"))?;
        let [admitted, wait, bucket] = reply.as_slice() else {
            return Err(unreadable("limit acquire", "malformed reply"));
        };
        let wait = Duration::from_micros(u64::try_from(*wait).unwrap_or(0));
        let bucket = usize::try_from(*bucket).unwrap_or(0);
        Ok(match (*admitted, wait.is_zero()) {
            (1, true) => Admission::Now,
            (1, false) => Admission::After { wait, bucket },
            _ => Admission::Refused {
                retry_after: wait,
                bucket,
            },
        })
    }

    async fn adjust(&self, bucket: &RateBucket) -> Result<()> {
        let mut conn = self.redis.conn();
        ADJUST
            .key(self.redis.key("limit", &bucket.key))
            .arg(bucket.cost)
            .arg(micros(bucket.period))
            .arg(bucket.limit.max(1))
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(failed("limit adjust"))?;
        Ok(())
    }
}
