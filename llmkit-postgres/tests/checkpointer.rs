//! The PostgreSQL checkpointer against a real server. Needs `LLMKIT_TEST_PG_URL` (set by
//! `scripts/test-services.sh up`), so it is `#[ignore]`d: run it with `-- --ignored` after
//! provisioning; a missing server then fails it. Each run uses a table of its own and drops it at
//! the end, also when an assertion fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{SystemTime, UNIX_EPOCH};

use llmkit_graph::*;
use llmkit_postgres::PostgresCheckpointer;
use serde::{Deserialize, Serialize};

#[path = "../../tests/support/services.rs"]
mod services;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct St {
    n: u32,
}

/// A plain connection for setup and cleanup, outside the code under test.
async fn admin(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn table_exists(client: &tokio_postgres::Client, table: &str) -> bool {
    let row = client
        .query_one("SELECT to_regclass($1)::text", &[&table])
        .await
        .unwrap();
    row.get::<_, Option<String>>(0).is_some()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn postgres_checkpointer_runs_resumes_and_prunes() {
    let url = services::service("LLMKIT_TEST_PG_URL");
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let table = format!("llmkit_cp_test_{}_{nanos}", std::process::id());
    // The body runs as its own task so a failed assertion comes back here as a JoinError: the
    // table is dropped either way, then the failure is re-raised.
    let body = tokio::spawn(checkpointer_round_trip(url.clone(), table.clone())).await;
    let client = admin(&url).await;
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await
        .unwrap();
    assert!(!table_exists(&client, &table).await, "test table dropped");
    if let Err(e) = body {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn checkpointer_round_trip(url: String, table: String) {
    let store = PostgresCheckpointer::connect_with_table(&url, &table)
        .await
        .unwrap();
    assert!(
        table_exists(&admin(&url).await, &table).await,
        "connect creates the table"
    );
    assert!(
        !format!("{store:?}").contains("llmkit-test-only"),
        "no password in Debug"
    );
    let g = Graph::<St>::builder("pg")
        .node("inc", |mut s: St, _| async move {
            s.n += 1;
            Ok(NodeOutput::Update(s))
        })
        .entry("inc")
        .conditional_edge(
            "inc",
            |s: &St| if s.n < 3 { "inc".into() } else { END.into() },
            &["inc", END],
        )
        .build()
        .unwrap();
    let RunOutcome::Finished(s) = g.run(&store, "t-1", St::default()).await.unwrap() else {
        panic!()
    };
    assert_eq!(s.n, 3);
    let hist = store.list("t-1").await.unwrap();
    assert_eq!(hist.len(), 5);
    assert!(hist.last().unwrap().is_finished());
    // A second connection (another "machine") sees the same thread.
    let other = PostgresCheckpointer::connect_with_table(&url, &table)
        .await
        .unwrap();
    assert_eq!(other.latest("t-1").await.unwrap().unwrap().seq, 4);
    let removed = other
        .prune(&Retention {
            keep_last: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(removed, 3);
    assert_eq!(store.stats().await.unwrap().checkpoints, 2);
    assert!(
        PostgresCheckpointer::connect_with_table(&url, "bad; drop")
            .await
            .is_err()
    );
}
