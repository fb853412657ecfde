//! The PostgreSQL review queue against a real server: concurrent claims never hand out one
//! item twice (`SKIP LOCKED`), claims expire, decisions are final and checked against the
//! claim, and every step lands in the audit trail. Needs `LLMKIT_TEST_PG_URL`; `#[ignore]`d
//! without provisioning. Each test works in a schema of its own and drops it at the end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use llmkit_core::ErrorKind;
use llmkit_graph::review::{HitlGate, ReviewItem, ReviewQueue, ReviewReason, Thresholds, Verdict};
use llmkit_postgres::{Postgres, PostgresReviewQueue};

use common::with_schema;

fn item(id: &str) -> ReviewItem {
    ReviewItem {
        id: id.into(),
        score: 0.5,
        verdict: Verdict::Escalate,
        reason: ReviewReason::Escalated,
        payload: serde_json::json!({"case": id}),
        label: None,
    }
}

async fn queue(url: &str, schema: &str) -> PostgresReviewQueue {
    let pg = Postgres::builder(url).schema(schema).build().unwrap();
    pg.migrate().await.unwrap();
    PostgresReviewQueue::new(pg)
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn concurrent_reviewers_never_claim_the_same_item() {
    with_schema(
        "LLMKIT_TEST_PG_URL",
        "llmkit_t_rq",
        |url, schema| async move {
            let q = Arc::new(queue(&url, &schema).await);
            for i in 0..40 {
                q.push(item(&format!("case-{i:02}"))).await.unwrap();
            }
            // Eight reviewers on their own pools claim until the queue is empty.
            let mut tasks = Vec::new();
            for r in 0..8 {
                let q = Arc::new(queue(&url, &schema).await);
                tasks.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    while let Some(it) = q
                        .claim(&format!("rev-{r}"), Duration::from_secs(60))
                        .await
                        .unwrap()
                    {
                        q.decide(&it.id, &format!("rev-{r}"), "ok").await.unwrap();
                        mine.push(it.id);
                    }
                    mine
                }));
            }
            let mut seen = HashSet::new();
            let mut total = 0;
            for t in tasks {
                for id in t.await.unwrap() {
                    total += 1;
                    assert!(seen.insert(id.clone()), "{id} claimed twice");
                }
            }
            assert_eq!(total, 40);
            assert!(q.pending().await.unwrap().is_empty());
            assert!(
                q.all()
                    .await
                    .unwrap()
                    .iter()
                    .all(|i| i.label.as_deref() == Some("ok"))
            );
        },
    )
    .await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: run scripts/test-services.sh up"]
async fn claims_expire_decisions_are_final_and_audited() {
    with_schema(
        "LLMKIT_TEST_PG_URL",
        "llmkit_t_rq2",
        |url, schema| async move {
            let q = queue(&url, &schema).await;
            // The gate writes escalations into the shared queue; a retried push keeps one item.
            let gate = HitlGate::new(Thresholds::new(0.9, 0.3).unwrap(), Arc::new(q.clone()))
                .sample_rate(0.0)
                .unwrap();
            gate.decide("a", 0.5, serde_json::json!({"why": "middle"}))
                .await
                .unwrap();
            gate.decide("a", 0.5, serde_json::json!({"why": "middle"}))
                .await
                .unwrap();
            q.push(item("b")).await.unwrap();
            assert_eq!(q.pending().await.unwrap().len(), 2);

            let first = q
                .claim("alice", Duration::from_millis(300))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(first.id, "a", "oldest first");
            assert_eq!(first.payload["why"], "middle");
            let err = q.decide("a", "bob", "reject").await.unwrap_err();
            assert_eq!(
                err.kind(),
                ErrorKind::InvalidRequest,
                "alice's live claim blocks bob"
            );
            let second = q
                .claim("bob", Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(second.id, "b");
            assert!(
                q.claim("carol", Duration::from_secs(60))
                    .await
                    .unwrap()
                    .is_none()
            );
            // Alice walks away: her claim expires and the item is offered again.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let again = q
                .claim("carol", Duration::from_secs(60))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(again.id, "a");
            q.decide("a", "carol", "approve").await.unwrap();
            let err = q.decide("a", "carol", "reject").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidRequest, "a decision is final");
            assert_eq!(
                q.label("nope", "x").await.unwrap_err().kind(),
                ErrorKind::NotFound
            );

            let trail: Vec<(String, Option<String>)> = q
                .audit("a")
                .await
                .unwrap()
                .into_iter()
                .map(|e| (e.action, e.actor))
                .collect();
            assert_eq!(
                trail,
                vec![
                    ("pushed".to_owned(), None),
                    ("pushed_again".to_owned(), None),
                    ("claimed".to_owned(), Some("alice".to_owned())),
                    ("claimed".to_owned(), Some("carol".to_owned())),
                    ("decided".to_owned(), Some("carol".to_owned())),
                ]
            );
            let decided = q.audit("a").await.unwrap().pop().unwrap();
            assert_eq!(decided.detail["label"], "approve");
            assert_eq!(q.pending().await.unwrap().len(), 1);
        },
    )
    .await;
}
