//! A PostgreSQL [`ReviewQueue`] that many reviewers and replicas work through at once.
//!
//! Reviewers [`claim`](PostgresReviewQueue::claim) the oldest pending item with
//! `FOR UPDATE SKIP LOCKED`, so two reviewers never get the same item and neither waits for the
//! other; a claim lasts a time-to-live, after which the item is offered again (a reviewer who
//! closed the tab does not hide it forever). Every push, claim and decision appends a row to the
//! audit trail in the same transaction ([`audit`](PostgresReviewQueue::audit)).

use std::time::Duration;

use async_trait::async_trait;
use llmkit_graph::review::{ReviewItem, ReviewQueue, ReviewReason, Verdict};
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;

use crate::checkpoint::col;
use crate::error::db_err;
use crate::pool::Postgres;
use llmkit_core::{Error, ErrorKind, Result};

/// The review queue in tables `review_items` and `review_audit` of the [`Postgres`] schema
/// (created by [`Postgres::migrate`]). An item's id is the application's case id: pushing the
/// same id again keeps the one item (so a retried gate decision does not queue a case twice)
/// and records the repeat in the audit trail.
#[derive(Debug, Clone)]
pub struct PostgresReviewQueue {
    pg: Postgres,
}

/// One entry of an item's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// The item.
    pub item_id: String,
    /// `pushed`, `pushed_again`, `claimed` or `decided`.
    pub action: String,
    /// The reviewer, when one acted.
    pub actor: Option<String>,
    /// When, unix milliseconds (database clock).
    pub at_ms: i64,
    /// Details: the label for a decision, the claim's expiry for a claim.
    pub detail: serde_json::Value,
}

fn enum_text<T: Serialize>(v: &T) -> Result<String> {
    match serde_json::to_value(v)? {
        serde_json::Value::String(s) => Ok(s),
        other => Err(Error::new(
            ErrorKind::Other,
            format!("unexpected enum encoding {other}"),
        )),
    }
}

fn enum_from<T: for<'de> Deserialize<'de>>(s: String) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.clone())).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("stored review value `{s}` is not valid: {e}"),
        )
    })
}

const ITEM_COLUMNS: &str = "id, score, verdict, reason, payload, label";

fn item(row: &Row) -> Result<ReviewItem> {
    Ok(ReviewItem {
        id: col(row, 0)?,
        score: col(row, 1)?,
        verdict: enum_from::<Verdict>(col(row, 2)?)?,
        reason: enum_from::<ReviewReason>(col(row, 3)?)?,
        payload: col(row, 4)?,
        label: col(row, 5)?,
    })
}

fn not_found(id: &str) -> Error {
    Error::new(
        ErrorKind::NotFound,
        format!("review item `{id}` is not in the queue"),
    )
}

impl PostgresReviewQueue {
    /// A queue on `pg`'s pool and schema (run [`Postgres::migrate`] once first).
    pub fn new(pg: Postgres) -> Self {
        PostgresReviewQueue { pg }
    }

    /// Claims the oldest pending item not claimed by someone else (or whose claim expired) for
    /// `reviewer` for `ttl`. `None` when nothing is waiting. Concurrent claimers skip each
    /// other's locked rows instead of queueing behind them.
    pub async fn claim(&self, reviewer: &str, ttl: Duration) -> Result<Option<ReviewItem>> {
        let items = self.pg.table("review_items");
        let audit = self.pg.table("review_audit");
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let conn = self.pg.conn().await?;
        let row = conn
            .query_opt(
                &format!(
                    "WITH picked AS (
                        SELECT id FROM {items}
                         WHERE label IS NULL AND (claimed_until IS NULL OR claimed_until <= now())
                         ORDER BY position
                         LIMIT 1
                         FOR UPDATE SKIP LOCKED
                     ), claimed AS (
                        UPDATE {items} i SET claimed_by = $1, claimed_until = now() + $2::bigint * interval '1 millisecond'
                          FROM picked WHERE i.id = picked.id
                        RETURNING i.{cols}, i.claimed_until
                     ), logged AS (
                        INSERT INTO {audit} (item_id, actor, action, detail)
                        SELECT id, $1, 'claimed', jsonb_build_object('until_ms', (extract(epoch FROM claimed_until) * 1000)::bigint)
                          FROM claimed
                     )
                     SELECT {ITEM_COLUMNS} FROM claimed",
                    cols = ITEM_COLUMNS.replace(", ", ", i."),
                ),
                &[&reviewer, &ttl_ms],
            )
            .await
            .map_err(|e| db_err("review claim", &e))?;
        row.as_ref().map(item).transpose()
    }

    /// Records `reviewer`'s decision on an item. Fails with `NotFound` for an unknown id, and
    /// with `InvalidRequest` when another reviewer's claim on it is still live or it was already
    /// decided (a decision is final; the audit trail keeps who decided).
    pub async fn decide(&self, id: &str, reviewer: &str, label: &str) -> Result<()> {
        self.decide_as(id, Some(reviewer), label).await
    }

    async fn decide_as(&self, id: &str, reviewer: Option<&str>, label: &str) -> Result<()> {
        let items = self.pg.table("review_items");
        let audit = self.pg.table("review_audit");
        let mut conn = self.pg.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| db_err("review decide: begin", &e))?;
        let row = tx
            .query_opt(
                &format!(
                    "SELECT label, claimed_by, coalesce(claimed_until > now(), false)
                       FROM {items} WHERE id = $1 FOR UPDATE"
                ),
                &[&id],
            )
            .await
            .map_err(|e| db_err("review decide", &e))?
            .ok_or_else(|| not_found(id))?;
        let existing: Option<String> = col(&row, 0)?;
        let claimed_by: Option<String> = col(&row, 1)?;
        let claim_live: bool = col(&row, 2)?;
        if existing.is_some() {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!("review item `{id}` was already decided"),
            ));
        }
        if claim_live && claimed_by.is_some() && claimed_by.as_deref() != reviewer {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "review item `{id}` is claimed by `{}`",
                    claimed_by.unwrap_or_default()
                ),
            ));
        }
        tx.execute(
            &format!(
                "UPDATE {items} SET label = $2, decided_by = $3, decided_at = now(),
                        claimed_by = NULL, claimed_until = NULL
                  WHERE id = $1"
            ),
            &[&id, &label, &reviewer],
        )
        .await
        .map_err(|e| db_err("review decide", &e))?;
        tx.execute(
            &format!(
                "INSERT INTO {audit} (item_id, actor, action, detail)
                 VALUES ($1, $2, 'decided', jsonb_build_object('label', $3::text))"
            ),
            &[&id, &reviewer, &label],
        )
        .await
        .map_err(|e| db_err("review audit", &e))?;
        tx.commit()
            .await
            .map_err(|e| db_err("review decide: commit", &e))
    }

    /// The audit trail of one item, oldest first.
    pub async fn audit(&self, id: &str) -> Result<Vec<AuditEvent>> {
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "SELECT item_id, action, actor, (extract(epoch FROM at) * 1000)::bigint, detail
                       FROM {} WHERE item_id = $1 ORDER BY event_id",
                    self.pg.table("review_audit")
                ),
                &[&id],
            )
            .await
            .map_err(|e| db_err("review audit", &e))?;
        rows.iter()
            .map(|r| {
                Ok(AuditEvent {
                    item_id: col(r, 0)?,
                    action: col(r, 1)?,
                    actor: col(r, 2)?,
                    at_ms: col(r, 3)?,
                    detail: col(r, 4)?,
                })
            })
            .collect()
    }

    async fn select(&self, pending_only: bool) -> Result<Vec<ReviewItem>> {
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "SELECT {ITEM_COLUMNS} FROM {} WHERE NOT $1 OR label IS NULL ORDER BY position",
                    self.pg.table("review_items")
                ),
                &[&pending_only],
            )
            .await
            .map_err(|e| db_err("review select", &e))?;
        rows.iter().map(item).collect()
    }
}

#[async_trait]
impl ReviewQueue for PostgresReviewQueue {
    async fn push(&self, item: ReviewItem) -> Result<()> {
        let items = self.pg.table("review_items");
        let audit = self.pg.table("review_audit");
        let verdict = enum_text(&item.verdict)?;
        let reason = enum_text(&item.reason)?;
        self.pg
            .conn()
            .await?
            .execute(
                &format!(
                    "WITH ins AS (
                        INSERT INTO {items} (id, score, verdict, reason, payload, label)
                        VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING RETURNING id
                     )
                     INSERT INTO {audit} (item_id, action, detail)
                     SELECT $1, CASE WHEN EXISTS (SELECT 1 FROM ins) THEN 'pushed' ELSE 'pushed_again' END,
                            jsonb_build_object('verdict', $3::text, 'reason', $4::text, 'score', $2::float8)"
                ),
                &[
                    &item.id,
                    &item.score,
                    &verdict,
                    &reason,
                    &item.payload,
                    &item.label,
                ],
            )
            .await
            .map_err(|e| db_err("review push", &e))?;
        Ok(())
    }

    async fn pending(&self) -> Result<Vec<ReviewItem>> {
        self.select(true).await
    }

    /// A decision without a named reviewer (the trait's call); [`decide`](Self::decide) names
    /// one. Same rules: unknown id, a live claim by someone, or an earlier decision fail.
    async fn label(&self, id: &str, label: &str) -> Result<()> {
        self.decide_as(id, None, label).await
    }

    async fn all(&self) -> Result<Vec<ReviewItem>> {
        self.select(false).await
    }
}
