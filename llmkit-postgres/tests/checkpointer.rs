//! The PostgreSQL checkpointer against a real server: migrations, run/resume/prune, the head
//! row (latest without reading history), leases with fencing tokens, write-once positions.
//! Needs `LLMKIT_TEST_PG_URL` (set by `scripts/test-services.sh up`), so every test is
//! `#[ignore]`d: run them with `-- --ignored` after provisioning; a missing server then fails
//! them. Each test works in a schema of its own and drops it at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use llmkit_core::ErrorKind;
use llmkit_graph::*;
use llmkit_postgres::{PgError, Postgres, PostgresCheckpointer, pg_error};

use common::{admin, with_schema};

const PG: &str = "LLMKIT_TEST_PG_URL";

#[path = "../../llmkit-graph/tests/support/counter.rs"]
mod counting;
use counting::Count as St;

fn counter(until: u32) -> Graph<St> {
    counting::counter("pg", until)
}

async fn open_store(url: &str, schema: &str) -> (Postgres, PostgresCheckpointer) {
    let pg = Postgres::builder(url).schema(schema).build().unwrap();
    pg.migrate().await.unwrap();
    (pg.clone(), PostgresCheckpointer::new(pg))
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn migrations_are_explicit_versioned_and_idempotent() {
    with_schema(PG, "llmkit_t_mig", |url, schema| async move {
        let pg = Postgres::builder(&url).schema(&schema).build().unwrap();
        assert_eq!(pg.schema_version().await.unwrap(), 0);
        // Before migrate() the store fails with a typed "not migrated" error, never creates.
        let cp = PostgresCheckpointer::new(pg.clone());
        let err = cp.latest("t").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{err}");
        assert!(
            matches!(pg_error(&err), Some(PgError::NotMigrated { .. })),
            "{err}"
        );
        // Two replicas migrating at once: the advisory lock serialises them, each version
        // is applied exactly once.
        let pg2 = pg.clone();
        let (a, b) = tokio::join!(pg.migrate(), pg2.migrate());
        let (a, b) = (a.unwrap(), b.unwrap());
        let mut all: Vec<i32> = a.applied.iter().chain(&b.applied).copied().collect();
        all.sort_unstable();
        assert_eq!(all, vec![1, 2, 3]);
        let again = pg.migrate().await.unwrap();
        assert!(again.applied.is_empty());
        assert_eq!(pg.schema_version().await.unwrap(), 3);
        assert!(
            !format!("{pg:?}").contains("llmkit-test-only"),
            "no password in Debug"
        );
        assert!(Postgres::builder(&url).schema("bad; drop").build().is_err());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn runs_resumes_and_prunes_across_connections() {
    with_schema(PG, "llmkit_t_run", |url, schema| async move {
        let (_, store) = open_store(&url, &schema).await;
        let RunOutcome::Finished(s) = counter(3).run(&store, "t-1", St::default()).await.unwrap()
        else {
            panic!()
        };
        assert_eq!(s.n, 3);
        let hist = store.list("t-1").await.unwrap();
        assert_eq!(hist.len(), 5);
        assert!(hist.last().unwrap().is_finished());
        // Another pool (another machine) sees the same thread.
        let (_, other) = open_store(&url, &schema).await;
        assert_eq!(other.latest("t-1").await.unwrap().unwrap().seq, 4);
        assert_eq!(
            other.get("t-1", "t-1:000002").await.unwrap().unwrap().seq,
            2
        );
        assert_eq!(other.threads().await.unwrap(), vec!["t-1".to_owned()]);
        let removed = other
            .prune(&Retention {
                keep_last: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(removed, 3);
        assert_eq!(store.stats().await.unwrap().checkpoints, 2);
        assert_eq!(store.latest("t-1").await.unwrap().unwrap().seq, 4);
        // Finished threads pruned whole disappear from the thread list.
        let removed = store
            .prune(&Retention {
                prune_finished: true,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(removed, 2);
        assert!(store.threads().await.unwrap().is_empty());
        assert!(store.latest("t-1").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn latest_reads_the_head_not_the_history() {
    with_schema(PG, "llmkit_t_head", |url, schema| async move {
        let (_, store) = open_store(&url, &schema).await;
        counter(5).run(&store, "t", St::default()).await.unwrap();
        // Break an old checkpoint: loading the history now fails, the head read does not.
        admin(&url)
            .await
            .batch_execute(&format!(
                "UPDATE \"{schema}\".checkpoints SET body = '{{\"broken\": true}}' WHERE seq = 1"
            ))
            .await
            .unwrap();
        assert!(store.list("t").await.is_err());
        let latest = store.latest("t").await.unwrap().unwrap();
        assert_eq!(latest.seq, 6);
        assert!(latest.is_finished());
        // Deleting the head moves it back to the newest remaining checkpoint.
        store.delete("t", &["t:000006".to_owned()]).await.unwrap();
        assert_eq!(store.latest("t").await.unwrap().unwrap().seq, 5);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn a_position_is_written_once_the_second_writer_gets_a_conflict() {
    with_schema(PG, "llmkit_t_cas", |url, schema| async move {
        let (_, store) = open_store(&url, &schema).await;
        let mut cp = Checkpoint {
            id: Checkpoint::make_id("t", 0),
            thread_id: "t".into(),
            seq: 0,
            parent: None,
            completed_node: None,
            next: Some("inc".into()),
            state: serde_json::json!({"n": 0}),
            status: RunStatus::Running,
            steps: 0,
            created_ms: now_ms(),
        };
        store.put(&cp).await.unwrap();
        cp.state = serde_json::json!({"n": 99});
        let err = store.put(&cp).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert!(
            matches!(pg_error(&err), Some(PgError::Conflict { seq: 0, .. })),
            "{err}"
        );
        // The first writer's state stands (the old table let the last writer win).
        assert_eq!(store.latest("t").await.unwrap().unwrap().state["n"], 0);
    })
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn leases_let_one_worker_advance_and_fence_a_stale_one() {
    with_schema(PG, "llmkit_t_lease", |url, schema| async move {
        let (_, store) = open_store(&url, &schema).await;
        let g = counter(2);
        let a = store
            .lease("t", "worker-a", Duration::from_secs(30))
            .await
            .unwrap();
        // While A holds it, B is refused before running anything, and so is an unleased writer.
        let err = store
            .lease("t", "worker-b", Duration::from_secs(30))
            .await
            .unwrap_err();
        match pg_error(&err) {
            Some(PgError::LeaseHeld {
                holder,
                remaining_ms,
                ..
            }) => {
                assert_eq!(holder, "worker-a");
                assert!(*remaining_ms > 20_000, "{remaining_ms}");
            }
            other => panic!("expected LeaseHeld, got {other:?} ({err})"),
        }
        let err = g.run(&store, "t", St::default()).await.unwrap_err();
        assert!(
            matches!(pg_error(&err), Some(PgError::LeaseHeld { .. })),
            "{err}"
        );
        assert!(
            store.latest("t").await.unwrap().is_none(),
            "refused writer wrote nothing"
        );
        let RunOutcome::Finished(s) = g.run_or_resume(&a, "t", St::default()).await.unwrap() else {
            panic!()
        };
        assert_eq!(s.n, 2);
        let first_token = a.token();
        a.release().await.unwrap();
        // Released: B takes it at once, with a higher fencing token.
        let b = store
            .lease("t", "worker-b", Duration::from_secs(30))
            .await
            .unwrap();
        assert!(b.token() > first_token);
        b.release().await.unwrap();

        // A lease that expires is taken over; the stalled holder's next write is refused.
        let slow = store
            .lease("u", "slow", Duration::from_millis(300))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let fast = store
            .lease("u", "fast", Duration::from_secs(30))
            .await
            .unwrap();
        assert!(fast.token() > slow.token());
        let err = g.run(&slow, "u", St::default()).await.unwrap_err();
        assert!(
            matches!(pg_error(&err), Some(PgError::LeaseLost { .. })),
            "{err}"
        );
        assert!(
            slow.renew().await.is_err(),
            "a lost lease cannot be renewed"
        );
        assert!(
            store.latest("u").await.unwrap().is_none(),
            "the fenced writer wrote nothing"
        );
        g.run_or_resume(&fast, "u", St::default()).await.unwrap();
        assert_eq!(store.list("u").await.unwrap().len(), 4);
        fast.renew().await.unwrap();
        // A lease covers its own thread only.
        let err = g.run(&fast, "other", St::default()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    })
    .await;
}

/// TLS through rustls against Debian's PostgreSQL (`ssl = on` with the `ssl-cert` snakeoil
/// certificate, issued to `localhost`): trusting that certificate connects; trusting only the
/// public CAs fails verification, so the handshake really is TLS and really is checked.
#[tokio::test]
#[ignore = "needs PostgreSQL with ssl = on: run scripts/test-services.sh up"]
async fn tls_with_rustls_verifies_the_server() {
    with_schema(PG, "llmkit_t_tls", |url, schema| async move {
        let cert = std::fs::read("/etc/ssl/certs/ssl-cert-snakeoil.pem")
            .expect("Debian's ssl-cert snakeoil certificate (installed with postgresql)");
        let config: tokio_postgres::Config = url.parse().unwrap();
        let password = String::from_utf8(config.get_password().unwrap().to_vec()).unwrap();
        let tls_url = format!(
            "postgres://{}:{password}@localhost:{}/{}?sslmode=require",
            config.get_user().unwrap(),
            config.get_ports().first().copied().unwrap_or(5432),
            config.get_dbname().unwrap()
        );
        let pg = Postgres::builder(&tls_url)
            .schema(&schema)
            .tls(llmkit_postgres::tls_config_from_pem(&cert).unwrap())
            .build()
            .unwrap();
        assert_eq!(
            pg.migrate().await.unwrap().version,
            llmkit_postgres::latest_version()
        );
        assert!(format!("{pg:?}").contains("tls: true"));
        let public = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap();
        let wrong = Postgres::builder(&tls_url)
            .schema(&schema)
            .tls(llmkit_postgres::tls_config_from_pem(&public).unwrap())
            .build()
            .unwrap();
        let err = wrong.schema_version().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
        assert!(llmkit_postgres::tls_config_from_pem(b"not a pem").is_err());
    })
    .await;
}
