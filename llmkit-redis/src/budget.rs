//! [`RedisBudgetLedger`]: one budget for every replica.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use llmkit_core::budget::{BudgetLedger, BudgetLimit, Refusal, Reservation};
use llmkit_core::{Decimal, Error, Result};
use redis::Script;
use rust_decimal::prelude::ToPrimitive;

use crate::cache::millis;
use crate::connection::{RedisConnection, failed, unreadable};

/// Largest amount the ledger holds exactly: Lua numbers are doubles, exact to 2^53 nano-USD
/// (about 9 million USD per window).
const MAX_NANOS: i64 = 1 << 53;

/// Lua shared by the scripts that read a window: `now` (ms, Redis's clock) and `purge`, which
/// releases reservations whose lease expired (their holder died without settling).
const PRELUDE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function purge(base, res, exp)
  local expired = redis.call('ZRANGEBYSCORE', exp, '-inf', now)
  if #expired == 0 then return end
  local spent = tonumber(redis.call('HGET', base, 'spent') or '0')
  for _, rid in ipairs(expired) do
    spent = spent - tonumber(redis.call('HGET', res, rid) or '0')
    redis.call('HDEL', res, rid)
  end
  if spent < 0 then spent = 0 end
  redis.call('HSET', base, 'spent', string.format('%d', spent))
  redis.call('ZREMRANGEBYSCORE', exp, '-inf', now)
end
";

/// Per scope three keys (`base` hash: window `start` ms and `spent` nano-USD; `res` hash:
/// reservation id → amount; `exp` zset: reservation id → lease expiry ms). In one step, per
/// scope: roll the window if its period passed (dropping its reservations) or release expired
/// reservations, then check; if every scope fits, add the amount to each and record the leased
/// reservation. Returns {1, start1, start2, …} or {0, index, spent, limit}.
/// ARGV: amount, lease ms, id, then per scope: limit, period ms.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r"
local amount = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local id = ARGV[3]
local n = #KEYS / 3
local starts = {}
for i = 1, n do
  local base, res, exp = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local limit = tonumber(ARGV[2+2*i])
  local period = tonumber(ARGV[3+2*i])
  local start = tonumber(redis.call('HGET', base, 'start'))
  if (not start) or now - start >= period then
    start = now
    redis.call('HSET', base, 'start', string.format('%d', now), 'spent', '0')
    redis.call('DEL', res, exp)
  else
    purge(base, res, exp)
  end
  local spent = tonumber(redis.call('HGET', base, 'spent') or '0')
  if spent + amount > limit then
    return {'0', string.format('%d', i - 1), string.format('%d', spent), string.format('%d', limit)}
  end
  starts[i] = string.format('%d', start)
end
for i = 1, n do
  local base, res, exp = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local period = tonumber(ARGV[3+2*i])
  local spent = tonumber(redis.call('HGET', base, 'spent') or '0') + amount
  redis.call('HSET', base, 'spent', string.format('%d', spent))
  redis.call('HSET', res, id, string.format('%d', amount))
  redis.call('ZADD', exp, now + lease, id)
  local keep = period + lease + 1000
  redis.call('PEXPIRE', base, keep)
  redis.call('PEXPIRE', res, keep)
  redis.call('PEXPIRE', exp, keep)
end
local out = {'1'}
for i = 1, n do out[i + 1] = starts[i] end
return out
"
    ))
});

/// Per scope: if the reservation's window is still current, replace its held amount by the
/// actual one (a reservation whose lease expired was already released: charge the actual
/// amount afresh). A window that rolled meanwhile counted the reservation in its own period.
/// ARGV: id, reserved, actual, then per scope the window start it was held in.
static SETTLE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local id = ARGV[1]
local reserved = tonumber(ARGV[2])
local actual = tonumber(ARGV[3])
for i = 1, #KEYS / 3 do
  local base, res, exp = KEYS[3*i-2], KEYS[3*i-1], KEYS[3*i]
  local start = redis.call('HGET', base, 'start')
  if start and start == ARGV[3+i] then
    local delta = actual
    if redis.call('HDEL', res, id) == 1 then delta = actual - reserved end
    redis.call('ZREM', exp, id)
    local spent = tonumber(redis.call('HGET', base, 'spent') or '0') + delta
    if spent < 0 then spent = 0 end
    redis.call('HSET', base, 'spent', string.format('%d', spent))
  end
end
return 1
",
    )
});

/// Spent in the current window after releasing expired reservations.
static SPENT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{PRELUDE}{}",
        r"
purge(KEYS[1], KEYS[2], KEYS[3])
return string.format('%d', tonumber(redis.call('HGET', KEYS[1], 'spent') or '0'))
"
    ))
});

/// A [`BudgetLedger`] on Redis: every replica reserves and settles against the same windows.
///
/// Each call is one Lua script (atomic in Redis), so the invariants of a shared ledger hold:
/// reserve checks and adds across the tenant and global scopes together; a window rolls inside
/// that same step (never a separate `SET` that could lose concurrent spend); a reservation
/// carries a lease (the layer's `reservation_lease`) and is released when it expires, so a
/// replica killed mid-call leaks nothing; time is Redis's `TIME`, so replicas agree on windows.
/// Amounts are held as whole nano-USD (reservations rounded up), exact up to about 9 million USD
/// per window. Windows start at the first reservation after the previous one ended, like
/// [`MemoryBudgetLedger`](llmkit_core::budget::MemoryBudgetLedger).
#[derive(Debug, Clone)]
pub struct RedisBudgetLedger {
    redis: RedisConnection,
}

impl RedisBudgetLedger {
    /// A ledger on `redis`.
    pub fn new(redis: RedisConnection) -> Self {
        RedisBudgetLedger { redis }
    }

    fn keys(&self, scope: &str) -> [String; 3] {
        [
            self.redis.key("budget", scope),
            self.redis.key("budget-res", scope),
            self.redis.key("budget-exp", scope),
        ]
    }
}

/// `usd` in whole nano-USD, rounded up (a reservation never holds less than the estimate).
fn nanos(usd: Decimal) -> Result<i64> {
    (usd.max(Decimal::ZERO) * Decimal::from(1_000_000_000u64))
        .ceil()
        .to_i64()
        .filter(|n| *n <= MAX_NANOS)
        .ok_or_else(|| {
            Error::config(format!(
                "budget amount ${usd} is too large for the redis ledger (at most about 9 million USD)"
            ))
        })
}

fn usd(nanos: i64) -> Decimal {
    Decimal::new(nanos, 9)
}

fn parse(op: &'static str, raw: &str) -> Result<i64> {
    raw.parse().map_err(|e| unreadable(op, e))
}

#[async_trait]
impl BudgetLedger for RedisBudgetLedger {
    async fn reserve(
        &self,
        limits: &[BudgetLimit],
        amount: Decimal,
        lease: Duration,
    ) -> Result<std::result::Result<Reservation, Refusal>> {
        let id = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let amount_nanos = nanos(amount)?;
        if limits.is_empty() {
            return Ok(Ok(Reservation {
                id,
                amount,
                windows: Vec::new(),
            }));
        }
        let mut invocation = RESERVE.prepare_invoke();
        for l in limits {
            for key in self.keys(&l.scope) {
                invocation.key(key);
            }
        }
        invocation
            .arg(amount_nanos)
            .arg(millis(lease).max(1))
            .arg(&id);
        for l in limits {
            invocation.arg(nanos(l.limit)?).arg(millis(l.period).max(1));
        }
        let mut conn = self.redis.conn();
        let reply: Vec<String> = invocation
            .invoke_async(&mut conn)
            .await
            .map_err(failed("budget reserve"))?;
        let op = "budget reserve";
        match reply.split_first() {
            Some((ok, starts)) if ok == "1" && starts.len() == limits.len() => {
                let windows = limits
                    .iter()
                    .zip(starts)
                    .map(|(l, s)| Ok((l.scope.clone(), parse(op, s)?)))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Ok(Reservation {
                    id,
                    // What the ledger holds (rounded up), so settling releases exactly that.
                    amount: usd(amount_nanos),
                    windows,
                }))
            }
            Some((ok, rest)) if ok == "0" => match rest {
                [index, spent, limit] => Ok(Err(Refusal {
                    index: usize::try_from(parse(op, index)?).map_err(|e| unreadable(op, e))?,
                    spent: usd(parse(op, spent)?),
                    limit: usd(parse(op, limit)?),
                })),
                _ => Err(unreadable(op, "malformed refusal")),
            },
            _ => Err(unreadable(op, "malformed reply")),
        }
    }

    async fn settle(&self, reservation: &Reservation, actual: Decimal) -> Result<()> {
        if reservation.windows.is_empty() {
            return Ok(());
        }
        let mut invocation = SETTLE.prepare_invoke();
        for (scope, _) in &reservation.windows {
            for key in self.keys(scope) {
                invocation.key(key);
            }
        }
        invocation
            .arg(&reservation.id)
            .arg(nanos(reservation.amount)?)
            .arg(nanos(actual)?);
        for (_, start) in &reservation.windows {
            invocation.arg(start.to_string());
        }
        let mut conn = self.redis.conn();
        invocation
            .invoke_async::<i64>(&mut conn)
            .await
            .map_err(failed("budget settle"))?;
        Ok(())
    }

    async fn spent(&self, scope: &str) -> Result<Decimal> {
        let [base, res, exp] = self.keys(scope);
        let mut conn = self.redis.conn();
        let raw: String = SPENT
            .key(base)
            .key(res)
            .key(exp)
            .invoke_async(&mut conn)
            .await
            .map_err(failed("budget spent"))?;
        Ok(usd(parse("budget spent", &raw)?))
    }
}
