//! A response-cache hit through `CacheLayer`: Redis (`RedisCacheStore`, one round trip on
//! loopback plus JSON decoding) against the in-process moka store. Needs a Redis at
//! `LLMKIT_TEST_REDIS_URL` (`scripts/test-services.sh redis`); without one only the in-memory
//! case runs and a notice says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use llmkit::core::cache::{CacheLayer, CacheStore, MokaCacheStore};
use llmkit::core::{ChatModel, ChatRequest, Pipeline, ScriptedModel};
use llmkit::redis::{RedisCacheStore, RedisConnection};

fn cached(rt: &tokio::runtime::Runtime, store: Arc<dyn CacheStore>) -> Arc<dyn ChatModel> {
    let model = Pipeline::builder()
        .layer(CacheLayer::new().store(store))
        .build(Arc::new(ScriptedModel::always(
            "The capital of France is Paris. It has been the capital since the 10th century.",
        )));
    // Fill the entry once, so every measured call is a hit.
    rt.block_on(model.chat(request())).unwrap();
    model
}

fn request() -> ChatRequest {
    ChatRequest::user("What is the capital of France? Answer in one sentence.")
        .with_temperature(0.0)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("cache_hit");
    let memory = cached(&rt, Arc::new(MokaCacheStore::default()));
    group.bench_function("memory", |b| {
        b.to_async(&rt).iter(|| memory.chat(request()));
    });
    match std::env::var("LLMKIT_TEST_REDIS_URL") {
        Ok(url) => {
            let redis = rt.block_on(async {
                RedisConnection::open(&url)
                    .unwrap()
                    .with_prefix(&format!("llmkit-bench:{:08x}", std::process::id()))
            });
            let store =
                Arc::new(RedisCacheStore::new(redis).ttl(std::time::Duration::from_secs(60)));
            let model = cached(&rt, store);
            group.bench_function("redis", |b| {
                b.to_async(&rt).iter(|| model.chat(request()));
            });
        }
        Err(_) => eprintln!(
            "cache_hit/redis skipped: LLMKIT_TEST_REDIS_URL is not set (scripts/test-services.sh redis)"
        ),
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
