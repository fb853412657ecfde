//! Shared by the PostgreSQL integration tests: a schema of their own per test, dropped at the
//! end also when the test fails, and a plain admin connection outside the code under test.
#![allow(dead_code)]

use std::future::Future;
use std::time::{SystemTime, UNIX_EPOCH};

#[path = "../../../tests/support/services.rs"]
pub mod services;

/// A schema name no other test run uses.
pub fn unique_schema(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// A plain connection for setup and cleanup.
pub async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Runs `body` with a fresh schema name, then drops the schema (cascade) and checks it is gone;
/// a failed assertion in `body` comes back as a JoinError and is re-raised after the cleanup.
pub async fn with_schema<F, Fut>(url_var: &str, prefix: &str, body: F)
where
    F: FnOnce(String, String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let url = services::service(url_var);
    let schema = unique_schema(prefix);
    let result = tokio::spawn(body(url.clone(), schema.clone())).await;
    let client = admin(&url).await;
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .unwrap();
    let left = client
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(left, 0, "test schema dropped");
    if let Err(e) = result {
        std::panic::resume_unwind(e.into_panic());
    }
}
