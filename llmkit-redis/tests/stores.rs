//! Each Redis store against a real Redis: the semantics its core trait documents, TTLs and
//! leases, the size bound, and the typed error when Redis is unreachable.
//! Needs `LLMKIT_TEST_REDIS_URL` (`scripts/test-services.sh up`); ignored otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Scratch;
use llmkit_core::budget::{BudgetLedger, BudgetLimit};
use llmkit_core::cache::{CacheKey, CacheStore, Fill};
use llmkit_core::resilience::{Admission, Claim, IdempotencyStore, RateBucket, RateLimitStore};
use llmkit_core::{ChatModel, ChatRequest, ChatResponse, Decimal, ErrorKind, ScriptedModel};
use llmkit_redis::{
    RedisBudgetLedger, RedisCacheStore, RedisConnection, RedisIdempotencyStore, RedisRateLimitStore,
};

async fn response(text: &str) -> ChatResponse {
    ScriptedModel::always(text)
        .chat(ChatRequest::user("q"))
        .await
        .unwrap()
}

fn key(name: &str) -> CacheKey {
    CacheKey(name.to_owned())
}

#[tokio::test]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn cache_round_trips_expires_and_stays_bounded() {
    let s = Scratch::new("cache");
    let store = RedisCacheStore::new(s.redis.clone())
        .ttl(Duration::from_millis(300))
        .max_entries(3);
    let answer = response("Paris").await;
    store.put(&key("a"), &answer).await.unwrap();
    assert_eq!(store.get(&key("a")).await.unwrap(), Some(answer.clone()));
    assert_eq!(store.get(&key("missing")).await.unwrap(), None);
    // TTL.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(store.get(&key("a")).await.unwrap(), None);
    // Size bound: the oldest entries go first.
    let store = store.ttl(Duration::from_secs(60));
    for name in ["1", "2", "3", "4", "5"] {
        store.put(&key(name), &answer).await.unwrap();
    }
    assert_eq!(store.indexed_entries().await.unwrap(), 3);
    assert_eq!(store.get(&key("1")).await.unwrap(), None);
    assert_eq!(store.get(&key("2")).await.unwrap(), None);
    assert!(store.get(&key("5")).await.unwrap().is_some());
    store.remove(&key("5")).await.unwrap();
    assert_eq!(store.get(&key("5")).await.unwrap(), None);
    // Too large to store: skipped, not an error.
    let tiny = store.clone().max_entry_bytes(10);
    tiny.put(&key("big"), &answer).await.unwrap();
    assert_eq!(store.get(&key("big")).await.unwrap(), None);
    s.cleanup().await;
}

#[tokio::test]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn cache_fill_lease_has_one_holder_and_expires() {
    let s = Scratch::new("lease");
    let store = RedisCacheStore::new(s.redis.clone());
    let lease = Duration::from_millis(300);
    let Fill::Lead(token) = store.try_fill(&key("k"), lease).await.unwrap() else {
        panic!("the first caller leads");
    };
    assert_eq!(store.try_fill(&key("k"), lease).await.unwrap(), Fill::Wait);
    // Someone else's token does not end the lease.
    store.end_fill(&key("k"), "not-the-token").await.unwrap();
    assert_eq!(store.try_fill(&key("k"), lease).await.unwrap(), Fill::Wait);
    store.end_fill(&key("k"), &token).await.unwrap();
    assert!(matches!(
        store.try_fill(&key("k"), lease).await.unwrap(),
        Fill::Lead(_)
    ));
    // A holder that never ends its lease (it died) releases the key when the lease expires.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        store.try_fill(&key("k"), lease).await.unwrap(),
        Fill::Lead(_)
    ));
    s.cleanup().await;
}

#[tokio::test]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn idempotency_claim_complete_replay_and_lease() {
    let s = Scratch::new("idem");
    let store = RedisIdempotencyStore::new(s.redis.clone());
    let lease = Duration::from_millis(300);
    assert!(matches!(
        store.claim("k", lease).await.unwrap(),
        Claim::Acquired
    ));
    assert!(matches!(
        store.claim("k", lease).await.unwrap(),
        Claim::InFlight
    ));
    assert_eq!(store.get("k").await.unwrap(), None);
    let answer = response("refunded").await;
    store
        .put("k", &answer, Duration::from_secs(60))
        .await
        .unwrap();
    match store.claim("k", lease).await.unwrap() {
        Claim::Completed(r) => assert_eq!(*r, answer),
        other => panic!("expected the stored response, got {other:?}"),
    }
    // Release never deletes a completed response.
    store.release("k").await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(answer));
    // A failed claimant releases; a crashed one is released by its lease.
    assert!(matches!(
        store.claim("f", lease).await.unwrap(),
        Claim::Acquired
    ));
    store.release("f").await.unwrap();
    assert!(matches!(
        store.claim("f", lease).await.unwrap(),
        Claim::Acquired
    ));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(matches!(
        store.claim("f", lease).await.unwrap(),
        Claim::Acquired
    ));
    s.cleanup().await;
}

fn limits(tenant: i64, global: i64, period: Duration) -> Vec<BudgetLimit> {
    vec![
        BudgetLimit {
            scope: "tenant:a".into(),
            limit: Decimal::from(tenant),
            period,
        },
        BudgetLimit {
            scope: "global".into(),
            limit: Decimal::from(global),
            period,
        },
    ]
}

#[tokio::test]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn ledger_reserves_atomically_settles_and_rolls() {
    let s = Scratch::new("ledger");
    let ledger = RedisBudgetLedger::new(s.redis.clone());
    let lease = Duration::from_secs(60);
    let minute = Duration::from_secs(60);
    let r = ledger
        .reserve(&limits(10, 5, minute), Decimal::from(4), lease)
        .await
        .unwrap()
        .unwrap();
    let refusal = ledger
        .reserve(&limits(10, 5, minute), Decimal::from(4), lease)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (refusal.index, refusal.spent, refusal.limit),
        (1, Decimal::from(4), Decimal::from(5))
    );
    assert_eq!(
        ledger.spent("tenant:a").await.unwrap(),
        Decimal::from(4),
        "all or nothing"
    );
    ledger.settle(&r, Decimal::new(15, 1)).await.unwrap();
    assert_eq!(ledger.spent("global").await.unwrap(), Decimal::new(15, 1));
    // Settling twice does not count twice.
    ledger.settle(&r, Decimal::new(15, 1)).await.unwrap();
    assert_eq!(ledger.spent("global").await.unwrap(), Decimal::new(3, 0));
    s.cleanup().await;

    // A window rolls inside the reserve step once its period passed.
    let s = Scratch::new("ledger-roll");
    let ledger = RedisBudgetLedger::new(s.redis.clone());
    let short = Duration::from_millis(300);
    let r = ledger
        .reserve(&limits(1, 1, short), Decimal::ONE, lease)
        .await
        .unwrap()
        .unwrap();
    ledger.settle(&r, Decimal::ONE).await.unwrap();
    assert!(
        ledger
            .reserve(&limits(1, 1, short), Decimal::ONE, lease)
            .await
            .unwrap()
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(
        ledger
            .reserve(&limits(1, 1, short), Decimal::ONE, lease)
            .await
            .unwrap()
            .is_ok()
    );
    s.cleanup().await;
}

#[tokio::test]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn ledger_releases_a_reservation_whose_holder_died() {
    let s = Scratch::new("ledger-lease");
    let ledger = RedisBudgetLedger::new(s.redis.clone());
    let minute = Duration::from_secs(60);
    let lease = Duration::from_millis(300);
    // Reserved and never settled: its process died.
    let orphan = ledger
        .reserve(&limits(1, 1, minute), Decimal::ONE, lease)
        .await
        .unwrap()
        .unwrap();
    assert!(
        ledger
            .reserve(&limits(1, 1, minute), Decimal::ONE, lease)
            .await
            .unwrap()
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(ledger.spent("global").await.unwrap(), Decimal::ZERO);
    let r = ledger
        .reserve(&limits(1, 1, minute), Decimal::ONE, minute)
        .await
        .unwrap()
        .unwrap();
    ledger.settle(&r, Decimal::new(5, 1)).await.unwrap();
    // The orphan's call did finish after all: charged its actual cost afresh.
    ledger.settle(&orphan, Decimal::new(2, 1)).await.unwrap();
    assert_eq!(ledger.spent("global").await.unwrap(), Decimal::new(7, 1));
    s.cleanup().await;
}

#[tokio::test]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn ledger_holds_exactly_under_concurrency() {
    let s = Scratch::new("ledger-race");
    let ledger = Arc::new(RedisBudgetLedger::new(s.redis.clone()));
    let minute = Duration::from_secs(60);
    let tasks = (0..100).map(|_| {
        let ledger = ledger.clone();
        tokio::spawn(async move {
            ledger
                .reserve(&limits(1000, 50, minute), Decimal::ONE, minute)
                .await
                .unwrap()
                .is_ok()
        })
    });
    let granted = futures::future::join_all(tasks)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(granted, 50);
    assert_eq!(ledger.spent("global").await.unwrap(), Decimal::from(50));
    s.cleanup().await;
}

fn bucket(key: &str, cost: f64, limit: u64, period: Duration) -> RateBucket {
    RateBucket {
        key: key.into(),
        cost,
        limit,
        period,
    }
}

#[tokio::test]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn gcra_admits_a_burst_then_the_rate() {
    let s = Scratch::new("gcra");
    let store = RedisRateLimitStore::new(s.redis.clone());
    let second = Duration::from_secs(1);
    let req = || [bucket("p/m/requests", 1.0, 10, second)];
    for _ in 0..10 {
        assert_eq!(
            store.acquire(&req(), Some(Duration::ZERO)).await.unwrap(),
            Admission::Now
        );
    }
    let Admission::Refused {
        retry_after,
        bucket: 0,
    } = store.acquire(&req(), Some(Duration::ZERO)).await.unwrap()
    else {
        panic!("the 11th request in a second is refused");
    };
    assert!(
        retry_after > Duration::ZERO && retry_after <= Duration::from_millis(100),
        "{retry_after:?}"
    );
    // Waiting callers reserve ahead: the next two wait about one and two emission intervals.
    let Admission::After { wait: first, .. } = store.acquire(&req(), None).await.unwrap() else {
        panic!("an unbounded wait is admitted");
    };
    let Admission::After {
        wait: second_wait, ..
    } = store.acquire(&req(), None).await.unwrap()
    else {
        panic!("an unbounded wait is admitted");
    };
    assert!(
        second_wait > first + Duration::from_millis(80),
        "{first:?} then {second_wait:?}"
    );
    s.cleanup().await;
}

#[tokio::test]
#[ignore = "needs redis: run scripts/test-services.sh up"]
async fn gcra_takes_all_buckets_or_none_and_gives_tokens_back() {
    let s = Scratch::new("gcra-multi");
    let store = RedisRateLimitStore::new(s.redis.clone());
    let minute = Duration::from_secs(60);
    let call = |tokens: f64| {
        [
            bucket("p/m/requests", 1.0, 100, minute),
            bucket("p/m/tokens", tokens, 1000, minute),
        ]
    };
    assert_eq!(
        store
            .acquire(&call(900.0), Some(Duration::ZERO))
            .await
            .unwrap(),
        Admission::Now
    );
    // Tokens refuse: the request bucket must not be charged either.
    assert!(matches!(
        store
            .acquire(&call(200.0), Some(Duration::ZERO))
            .await
            .unwrap(),
        Admission::Refused { bucket: 1, .. }
    ));
    // The call used 100 tokens, not 900: 800 come back and the next one fits.
    store
        .adjust(&bucket("p/m/tokens", -800.0, 1000, minute))
        .await
        .unwrap();
    assert_eq!(
        store
            .acquire(&call(200.0), Some(Duration::ZERO))
            .await
            .unwrap(),
        Admission::Now
    );
    // 98 requests are left of 100 (two admitted): the 99th-100th fit, the 101st does not.
    for _ in 0..98 {
        assert_eq!(
            store
                .acquire(
                    &[bucket("p/m/requests", 1.0, 100, minute)],
                    Some(Duration::ZERO)
                )
                .await
                .unwrap(),
            Admission::Now
        );
    }
    assert!(matches!(
        store
            .acquire(
                &[bucket("p/m/requests", 1.0, 100, minute)],
                Some(Duration::ZERO)
            )
            .await
            .unwrap(),
        Admission::Refused { .. }
    ));
    s.cleanup().await;
}

/// Not ignored: needs no Redis, only a port where none listens.
#[tokio::test]
async fn an_unreachable_redis_is_a_typed_error_without_the_password() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("redis://:hunter2-secret@127.0.0.1:{port}/0");
    let redis = RedisConnection::open(&url).unwrap();
    assert!(!format!("{redis:?}").contains("hunter2"));
    let started = std::time::Instant::now();
    let err = RedisCacheStore::new(redis.clone())
        .get(&key("k"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails fast: {:?}",
        started.elapsed()
    );
    let err = RedisBudgetLedger::new(redis.clone())
        .reserve(
            &limits(1, 1, Duration::from_secs(60)),
            Decimal::ONE,
            Duration::from_secs(1),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    let err = RedisIdempotencyStore::new(redis.clone())
        .claim("k", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    let err = RedisRateLimitStore::new(redis)
        .acquire(&[bucket("k", 1.0, 1, Duration::from_secs(1))], None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport);
    // A malformed URL is a config error that does not echo the URL either.
    let err: llmkit_core::Error = RedisConnection::open("redis://:hunter2@[::bad")
        .unwrap_err()
        .into();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!err.to_string().contains("hunter2"));
}
