//! The PostgreSQL checkpointer against a real server. Needs `LLMKIT_TEST_PG_URL` (set by
//! `scripts/test-services.sh up`); without it the test prints a loud skip line.
#![cfg(feature = "postgres")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use llmkit_graph::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
struct St {
    n: u32,
}

fn url() -> Option<String> {
    let url = std::env::var("LLMKIT_TEST_PG_URL").ok();
    if url.is_none() {
        // CI provisions every service, so there a missing one is a failure, not a skip.
        assert!(
            std::env::var_os("LLMKIT_REQUIRE_SERVICES").is_none(),
            "LLMKIT_TEST_PG_URL is not set but LLMKIT_REQUIRE_SERVICES is: scripts/test-services.sh up failed?"
        );
        eprintln!(
            "INTEGRATION SKIPPED: LLMKIT_TEST_PG_URL is not set; start services with scripts/test-services.sh up"
        );
    }
    url
}

#[tokio::test]
async fn postgres_checkpointer_runs_resumes_and_prunes() {
    let Some(url) = url() else { return };
    let table = format!("llmkit_cp_test_{}", std::process::id());
    let store = PostgresCheckpointer::connect_with_table(&url, &table)
        .await
        .unwrap();
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
