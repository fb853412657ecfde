//! Helpers shared by the Redis tests: the service address and a per-test key prefix that is
//! deleted afterwards.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../../tests/support/services.rs"]
mod services;

use llmkit_redis::RedisConnection;

/// The test Redis URL (`LLMKIT_TEST_REDIS_URL`); fails the test when unset.
pub fn redis_url() -> String {
    services::service("LLMKIT_TEST_REDIS_URL")
}

/// A connection whose keys live under a fresh prefix; [`Scratch::cleanup`] deletes them.
pub struct Scratch {
    pub redis: RedisConnection,
    pub prefix: String,
    url: String,
}

impl Scratch {
    pub fn new(test: &str) -> Self {
        let url = redis_url();
        let prefix = format!("llmkit-test:{test}:{:08x}", fastrand::u32(..));
        let redis = RedisConnection::open(&url).unwrap().with_prefix(&prefix);
        Scratch { redis, prefix, url }
    }

    /// Keys under this test's prefix.
    pub async fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query_async(&mut conn)
            .await
            .unwrap()
    }

    /// Deletes every key this test created.
    pub async fn cleanup(self) {
        let keys = self.keys().await;
        if keys.is_empty() {
            return;
        }
        let client = redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<i64>(&mut conn)
            .await
            .unwrap();
    }
}
