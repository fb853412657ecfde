//! Redis backends for llmkit's shared state, so N replicas of a service hold one truth.
//!
//! | core trait | this crate | Redis structure |
//! |---|---|---|
//! | [`CacheStore`](llmkit_core::cache::CacheStore) | [`RedisCacheStore`] | `SET … PX ttl` per entry, an insertion-ordered index trimmed to `max_entries` in a Lua script, a fill lease `SET … NX PX` per missing key |
//! | [`IdempotencyStore`](llmkit_core::resilience::IdempotencyStore) | [`RedisIdempotencyStore`] | one key per idempotency key: an in-flight mark with a lease, or the completed response with a TTL |
//! | [`BudgetLedger`](llmkit_core::budget::BudgetLedger) | [`RedisBudgetLedger`] | a hash per scope (window start, spent in nano-USD) and leased reservations, reserved and settled in one Lua script per call |
//! | [`RateLimitStore`](llmkit_core::resilience::RateLimitStore) | [`RedisRateLimitStore`] | GCRA: one theoretical-arrival-time key per bucket, updated in one Lua script |
//!
//! Every store shares one [`RedisConnection`] (a redis-rs `ConnectionManager`: one multiplexed
//! connection that reconnects by itself after Redis restarts). Time comes from Redis (`TIME`)
//! wherever replicas must agree on it, so clock skew between replicas does not matter.
//!
//! **When Redis is down** every call returns an [`llmkit_core::Error`] of kind
//! [`Transport`](llmkit_core::ErrorKind::Transport) built from a [`StoreError`] (no URL or
//! password in it). What the layer above does with it is its failure policy: the cache fails open
//! by default ([`CacheLayer::fail_open`](llmkit_core::cache::CacheLayer::fail_open)), budget,
//! idempotency and rate limits fail closed. See `docs/scale-out.md`.
//!
//! ```no_run
//! # async fn run() -> Result<(), llmkit_core::Error> {
//! use std::sync::Arc;
//! use llmkit_core::budget::{BudgetLayer, FlatPricer};
//! use llmkit_core::cache::CacheLayer;
//! use llmkit_core::resilience::{IdempotencyLayer, LimitLayer};
//! use llmkit_core::{Decimal, Pipeline, ScriptedModel};
//! use llmkit_redis::{RedisBudgetLedger, RedisCacheStore, RedisConnection, RedisIdempotencyStore, RedisRateLimitStore};
//!
//! let redis = RedisConnection::open("redis://127.0.0.1:6379")?.with_prefix("myapp");
//! let pricer = Arc::new(FlatPricer::per_million(Decimal::from(1), Decimal::from(2)));
//! let model = Pipeline::builder()
//!     .layer(IdempotencyLayer::new().store(Arc::new(RedisIdempotencyStore::new(redis.clone()))))
//!     .layer(CacheLayer::new().store(Arc::new(RedisCacheStore::new(redis.clone()))))
//!     .layer(BudgetLayer::new(pricer).ledger(Arc::new(RedisBudgetLedger::new(redis.clone()))))
//!     .layer(LimitLayer::new().requests_per_minute(600).store(Arc::new(RedisRateLimitStore::new(redis))))
//!     .build(Arc::new(ScriptedModel::always("ok")));
//! # let _ = model; Ok(()) }
//! ```
//!
//! The `no_run` above needs a Redis server; every type here is exercised against a real one in
//! `llmkit-redis/tests/` and in the multi-process tests (`tests/multiprocess/`).

mod budget;
mod cache;
mod connection;
mod idempotency;
mod limit;

pub use budget::RedisBudgetLedger;
pub use cache::RedisCacheStore;
pub use connection::{RedisConnection, StoreError};
pub use idempotency::RedisIdempotencyStore;
pub use limit::RedisRateLimitStore;
