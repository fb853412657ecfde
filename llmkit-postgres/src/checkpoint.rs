//! A PostgreSQL [`Checkpointer`] for runs that resume on another machine, with leases so
//! exactly one worker advances a thread.
//!
//! Two guards keep two workers from both advancing one thread:
//! - **Write once per position.** A checkpoint row is inserted, never overwritten: the second
//!   worker to write position `n` gets [`PgError::Conflict`] instead of replacing the first
//!   one's state (the old table let the last writer win).
//! - **Leases with a fencing token.** [`PostgresCheckpointer::lease`] takes a thread for one
//!   worker for a time-to-live, by the database's clock. While it is live, others fail fast
//!   with [`PgError::LeaseHeld`] before running any node, so a node is not run (or billed)
//!   twice. Every write through the [`LeasedCheckpointer`] checks its token in the same
//!   transaction and extends the lease; a worker that stalled past its lease, and was taken
//!   over, has its next write refused with [`PgError::LeaseLost`].

use std::time::Duration;

use async_trait::async_trait;
use llmkit_graph::{Checkpoint, CheckpointStats, Checkpointer, Retention, now_ms};
use tokio_postgres::Row;

use crate::error::{PgError, db_err};
use crate::pool::Postgres;
use llmkit_core::{Error, ErrorKind, Result};

/// Checkpoints in PostgreSQL (tables `checkpoints` and `threads` of the [`Postgres`] schema,
/// created by [`Postgres::migrate`]). Two workers never both advance one thread: a position is
/// written once (the second writer gets [`PgError::Conflict`]), and [`PostgresCheckpointer::lease`]
/// hands a thread to one worker with a fencing token ([`PgError::LeaseHeld`] for the others,
/// [`PgError::LeaseLost`] for a worker whose lease was taken over).
///
/// `latest` reads the thread's head row and that one checkpoint (two primary-key lookups),
/// never the history; `prune` and `stats` run as SQL in the database.
#[derive(Debug, Clone)]
pub struct PostgresCheckpointer {
    pg: Postgres,
}

fn seq_i64(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| {
        Error::new(
            ErrorKind::InvalidRequest,
            "checkpoint sequence out of range",
        )
    })
}

fn ms_i64(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(|e| db_err("read row", &e))
}

fn decode(row: &Row) -> Result<Checkpoint> {
    let body: serde_json::Value = col(row, 0)?;
    serde_json::from_value(body).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("stored checkpoint is not valid: {e}"),
        )
    })
}

/// Who may write a thread: anyone while no lease is live, or the holder of this token.
#[derive(Debug, Clone, Copy)]
enum Writer<'a> {
    Unleased,
    Leased {
        owner: &'a str,
        token: i64,
        ttl: Duration,
    },
}

impl PostgresCheckpointer {
    /// A checkpointer on `pg`'s pool and schema (run [`Postgres::migrate`] once first).
    pub fn new(pg: Postgres) -> Self {
        PostgresCheckpointer { pg }
    }

    /// Takes thread `thread_id` for `owner` for `ttl` (by the database clock). Fails with
    /// [`PgError::LeaseHeld`] while another owner's lease is live. Taking it again as the same
    /// owner, or after the previous lease expired, issues a new fencing token, which fences off
    /// any older handle. Run the graph through the returned [`LeasedCheckpointer`]; each of its
    /// writes extends the lease by `ttl`, so `ttl` must outlast the slowest node.
    pub async fn lease(
        &self,
        thread_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<LeasedCheckpointer> {
        let threads = self.pg.table("threads");
        let conn = self.pg.conn().await?;
        let row = conn
            .query_opt(
                &format!(
                    "INSERT INTO {threads} AS t (thread_id, head_seq, lease_owner, lease_token, lease_expires_at)
                     VALUES ($1, -1, $2, 1, now() + $3::bigint * interval '1 millisecond')
                     ON CONFLICT (thread_id) DO UPDATE
                        SET lease_owner = EXCLUDED.lease_owner,
                            lease_token = t.lease_token + 1,
                            lease_expires_at = EXCLUDED.lease_expires_at
                      WHERE t.lease_expires_at IS NULL OR t.lease_expires_at <= now()
                         OR t.lease_owner = EXCLUDED.lease_owner
                     RETURNING lease_token"
                ),
                &[&thread_id, &owner, &ms_i64(ttl)],
            )
            .await
            .map_err(|e| db_err("lease", &e))?;
        if let Some(row) = row {
            let token: i64 = col(&row, 0)?;
            tracing::debug!(
                thread = thread_id,
                owner,
                token,
                "llmkit.postgres.lease.acquired"
            );
            return Ok(LeasedCheckpointer {
                store: self.clone(),
                thread_id: thread_id.to_owned(),
                owner: owner.to_owned(),
                token,
                ttl,
            });
        }
        let held = conn
            .query_opt(
                &format!(
                    "SELECT coalesce(lease_owner, ''),
                            greatest(0, (extract(epoch FROM lease_expires_at - now()) * 1000)::bigint)
                       FROM {threads} WHERE thread_id = $1"
                ),
                &[&thread_id],
            )
            .await
            .map_err(|e| db_err("lease", &e))?;
        let (holder, remaining_ms) = match held {
            Some(r) => (col(&r, 0)?, col(&r, 1)?),
            None => (String::new(), 0),
        };
        Err(PgError::LeaseHeld {
            thread_id: thread_id.to_owned(),
            holder,
            remaining_ms,
        }
        .into())
    }

    /// Writes one checkpoint in one transaction: checks the writer against the thread's lease
    /// (locking the head row), inserts the row unless the position is taken, moves the head.
    async fn write(&self, cp: &Checkpoint, writer: Writer<'_>) -> Result<()> {
        let threads = self.pg.table("threads");
        let checkpoints = self.pg.table("checkpoints");
        let seq = seq_i64(cp.seq)?;
        let body = serde_json::to_value(cp)?;
        let created = i64::try_from(cp.created_ms).unwrap_or(i64::MAX);
        let mut conn = self.pg.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| db_err("put: begin", &e))?;
        // Make sure the head row exists, then lock it: concurrent writers of one thread queue
        // here, and the lease check below sees the committed state.
        tx.execute(
            &format!(
                "INSERT INTO {threads} (thread_id, head_seq) VALUES ($1, -1) ON CONFLICT (thread_id) DO NOTHING"
            ),
            &[&cp.thread_id],
        )
        .await
        .map_err(|e| db_err("put: thread row", &e))?;
        let head = tx
            .query_one(
                &format!(
                    "SELECT lease_owner, lease_token, coalesce(lease_expires_at > now(), false)
                       FROM {threads} WHERE thread_id = $1 FOR UPDATE"
                ),
                &[&cp.thread_id],
            )
            .await
            .map_err(|e| db_err("put: lock thread", &e))?;
        let lease_owner: Option<String> = col(&head, 0)?;
        let lease_token: i64 = col(&head, 1)?;
        let lease_live: bool = col(&head, 2)?;
        match writer {
            Writer::Unleased if lease_live => {
                return Err(PgError::LeaseHeld {
                    thread_id: cp.thread_id.clone(),
                    holder: lease_owner.unwrap_or_default(),
                    remaining_ms: 0,
                }
                .into());
            }
            Writer::Leased { owner, token, .. }
                if !lease_live || lease_token != token || lease_owner.as_deref() != Some(owner) =>
            {
                return Err(PgError::LeaseLost {
                    thread_id: cp.thread_id.clone(),
                    token,
                }
                .into());
            }
            _ => {}
        }
        let inserted = tx
            .execute(
                &format!(
                    "INSERT INTO {checkpoints} (thread_id, seq, id, body, created_ms)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (thread_id, seq) DO NOTHING"
                ),
                &[&cp.thread_id, &seq, &cp.id, &body, &created],
            )
            .await
            .map_err(|e| db_err("put: insert", &e))?;
        if inserted == 0 {
            return Err(PgError::Conflict {
                thread_id: cp.thread_id.clone(),
                seq,
            }
            .into());
        }
        let extend_ms = match writer {
            Writer::Leased { ttl, .. } => Some(ms_i64(ttl)),
            Writer::Unleased => None,
        };
        tx.execute(
            &format!(
                "UPDATE {threads}
                    SET head_seq = greatest(head_seq, $2),
                        finished = CASE WHEN $2 >= head_seq THEN $3 ELSE finished END,
                        lease_expires_at = CASE WHEN $4::bigint IS NULL THEN lease_expires_at
                                                ELSE now() + $4::bigint * interval '1 millisecond' END
                  WHERE thread_id = $1"
            ),
            &[&cp.thread_id, &seq, &cp.is_finished(), &extend_ms],
        )
        .await
        .map_err(|e| db_err("put: move head", &e))?;
        tx.commit().await.map_err(|e| db_err("put: commit", &e))?;
        Ok(())
    }

    async fn latest_row(&self, thread_id: &str) -> Result<Option<Checkpoint>> {
        let conn = self.pg.conn().await?;
        let row = conn
            .query_opt(
                &format!(
                    "SELECT c.body FROM {} t JOIN {} c ON c.thread_id = t.thread_id AND c.seq = t.head_seq
                      WHERE t.thread_id = $1",
                    self.pg.table("threads"),
                    self.pg.table("checkpoints")
                ),
                &[&thread_id],
            )
            .await
            .map_err(|e| db_err("latest", &e))?;
        row.as_ref().map(decode).transpose()
    }
}

#[async_trait]
impl Checkpointer for PostgresCheckpointer {
    /// Inserts the checkpoint; fails with [`PgError::Conflict`] when its position is taken and
    /// with [`PgError::LeaseHeld`] while a worker holds the thread's lease.
    async fn put(&self, checkpoint: &Checkpoint) -> Result<()> {
        self.write(checkpoint, Writer::Unleased).await
    }

    async fn list(&self, thread_id: &str) -> Result<Vec<Checkpoint>> {
        let conn = self.pg.conn().await?;
        let rows = conn
            .query(
                &format!(
                    "SELECT body FROM {} WHERE thread_id = $1 ORDER BY seq",
                    self.pg.table("checkpoints")
                ),
                &[&thread_id],
            )
            .await
            .map_err(|e| db_err("list", &e))?;
        rows.iter().map(decode).collect()
    }

    async fn delete(&self, thread_id: &str, ids: &[String]) -> Result<()> {
        let mut conn = self.pg.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| db_err("delete: begin", &e))?;
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE thread_id = $1 AND id = ANY($2)",
                self.pg.table("checkpoints")
            ),
            &[&thread_id, &ids],
        )
        .await
        .map_err(|e| db_err("delete", &e))?;
        fix_heads(&tx, &self.pg, Some(thread_id)).await?;
        tx.commit().await.map_err(|e| db_err("delete: commit", &e))
    }

    async fn threads(&self) -> Result<Vec<String>> {
        let conn = self.pg.conn().await?;
        let rows = conn
            .query(
                &format!(
                    "SELECT thread_id FROM {} WHERE head_seq >= 0 ORDER BY thread_id",
                    self.pg.table("threads")
                ),
                &[],
            )
            .await
            .map_err(|e| db_err("threads", &e))?;
        rows.iter().map(|r| col(r, 0)).collect()
    }

    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>> {
        self.latest_row(thread_id).await
    }

    async fn get(&self, thread_id: &str, id: &str) -> Result<Option<Checkpoint>> {
        let conn = self.pg.conn().await?;
        let row = conn
            .query_opt(
                &format!(
                    "SELECT body FROM {} WHERE thread_id = $1 AND id = $2",
                    self.pg.table("checkpoints")
                ),
                &[&thread_id, &id],
            )
            .await
            .map_err(|e| db_err("get", &e))?;
        row.as_ref().map(decode).transpose()
    }

    /// The same policy as the default, in one transaction of SQL: the newest `keep_last` per
    /// thread stay, older ones past `max_age` go (the newest always stays), finished threads go
    /// whole when `prune_finished`.
    async fn prune(&self, retention: &Retention) -> Result<usize> {
        let keep_last = i64::try_from(retention.keep_last.max(1)).unwrap_or(i64::MAX);
        let cutoff: Option<i64> = retention.max_age.map(|age| {
            i64::try_from(now_ms())
                .unwrap_or(i64::MAX)
                .saturating_sub(ms_i64(age))
        });
        let checkpoints = self.pg.table("checkpoints");
        let threads = self.pg.table("threads");
        let mut conn = self.pg.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| db_err("prune: begin", &e))?;
        let mut removed = 0u64;
        if retention.prune_finished {
            removed += tx
                .execute(
                    &format!(
                        "DELETE FROM {checkpoints} c USING {threads} t
                          WHERE c.thread_id = t.thread_id AND t.finished"
                    ),
                    &[],
                )
                .await
                .map_err(|e| db_err("prune finished", &e))?;
        }
        removed += tx
            .execute(
                &format!(
                    "DELETE FROM {checkpoints} c USING (
                        SELECT thread_id, seq, created_ms,
                               row_number() OVER (PARTITION BY thread_id ORDER BY seq DESC) AS rn
                          FROM {checkpoints}) r
                      WHERE c.thread_id = r.thread_id AND c.seq = r.seq AND r.rn > 1
                        AND (r.rn > $1 OR ($2::bigint IS NOT NULL AND r.created_ms < $2::bigint))"
                ),
                &[&keep_last, &cutoff],
            )
            .await
            .map_err(|e| db_err("prune", &e))?;
        fix_heads(&tx, &self.pg, None).await?;
        tx.commit().await.map_err(|e| db_err("prune: commit", &e))?;
        Ok(usize::try_from(removed).unwrap_or(usize::MAX))
    }

    async fn stats(&self) -> Result<CheckpointStats> {
        let conn = self.pg.conn().await?;
        let row = conn
            .query_one(
                &format!(
                    "SELECT count(DISTINCT thread_id), count(*), coalesce(sum(octet_length(body::text)), 0)::bigint
                       FROM {}",
                    self.pg.table("checkpoints")
                ),
                &[],
            )
            .await
            .map_err(|e| db_err("stats", &e))?;
        let n = |i| -> Result<i64> { col(&row, i) };
        Ok(CheckpointStats {
            threads: usize::try_from(n(0)?).unwrap_or(0),
            checkpoints: usize::try_from(n(1)?).unwrap_or(0),
            bytes: u64::try_from(n(2)?).unwrap_or(0),
        })
    }
}

/// After deletions: point each head at its newest remaining checkpoint, and drop head rows of
/// threads left empty unless a lease on them is live.
async fn fix_heads(
    tx: &deadpool_postgres::Transaction<'_>,
    pg: &Postgres,
    thread_id: Option<&str>,
) -> Result<()> {
    let checkpoints = pg.table("checkpoints");
    let threads = pg.table("threads");
    tx.execute(
        &format!(
            "UPDATE {threads} t SET head_seq = coalesce(
                 (SELECT max(seq) FROM {checkpoints} c WHERE c.thread_id = t.thread_id), -1)
              WHERE $1::text IS NULL OR t.thread_id = $1"
        ),
        &[&thread_id],
    )
    .await
    .map_err(|e| db_err("fix heads", &e))?;
    tx.execute(
        &format!(
            "DELETE FROM {threads} WHERE head_seq < 0
                AND (lease_expires_at IS NULL OR lease_expires_at <= now())
                AND ($1::text IS NULL OR thread_id = $1)"
        ),
        &[&thread_id],
    )
    .await
    .map_err(|e| db_err("fix heads", &e))?;
    Ok(())
}

/// A [`PostgresCheckpointer`] holding one thread's lease (from
/// [`PostgresCheckpointer::lease`]). Pass it to `Graph::run_or_resume` / `resume`: every write
/// checks the fencing token and extends the lease; reads go straight to the store. Release it
/// when the run returns so the next worker need not wait for the time-to-live.
#[derive(Debug)]
pub struct LeasedCheckpointer {
    store: PostgresCheckpointer,
    thread_id: String,
    owner: String,
    token: i64,
    ttl: Duration,
}

impl LeasedCheckpointer {
    /// The fencing token: grows by one with every acquisition of this thread's lease.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// The leased thread.
    pub fn thread_id(&self) -> &str {
        &self.thread_id
    }

    /// Extends the lease by its time-to-live without writing (for a node that runs long);
    /// fails with [`PgError::LeaseLost`] when it was already lost.
    pub async fn renew(&self) -> Result<()> {
        let n = self
            .store
            .pg
            .conn()
            .await?
            .execute(
                &format!(
                    "UPDATE {} SET lease_expires_at = now() + $4::bigint * interval '1 millisecond'
                      WHERE thread_id = $1 AND lease_owner = $2 AND lease_token = $3
                        AND lease_expires_at > now()",
                    self.store.pg.table("threads")
                ),
                &[&self.thread_id, &self.owner, &self.token, &ms_i64(self.ttl)],
            )
            .await
            .map_err(|e| db_err("renew lease", &e))?;
        if n == 0 {
            return Err(self.lost());
        }
        Ok(())
    }

    /// Gives the lease up now (a no-op when it was already lost or taken over).
    pub async fn release(self) -> Result<()> {
        self.store
            .pg
            .conn()
            .await?
            .execute(
                &format!(
                    "UPDATE {} SET lease_owner = NULL, lease_expires_at = NULL
                      WHERE thread_id = $1 AND lease_owner = $2 AND lease_token = $3",
                    self.store.pg.table("threads")
                ),
                &[&self.thread_id, &self.owner, &self.token],
            )
            .await
            .map_err(|e| db_err("release lease", &e))?;
        Ok(())
    }

    fn lost(&self) -> Error {
        PgError::LeaseLost {
            thread_id: self.thread_id.clone(),
            token: self.token,
        }
        .into()
    }
}

#[async_trait]
impl Checkpointer for LeasedCheckpointer {
    /// Writes through the lease: refused with [`PgError::LeaseLost`] once the token is stale,
    /// and for any thread other than the leased one.
    async fn put(&self, checkpoint: &Checkpoint) -> Result<()> {
        if checkpoint.thread_id != self.thread_id {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "lease covers thread `{}`, not `{}`",
                    self.thread_id, checkpoint.thread_id
                ),
            ));
        }
        self.store
            .write(
                checkpoint,
                Writer::Leased {
                    owner: &self.owner,
                    token: self.token,
                    ttl: self.ttl,
                },
            )
            .await
    }
    async fn list(&self, thread_id: &str) -> Result<Vec<Checkpoint>> {
        self.store.list(thread_id).await
    }
    async fn delete(&self, thread_id: &str, ids: &[String]) -> Result<()> {
        self.store.delete(thread_id, ids).await
    }
    async fn threads(&self) -> Result<Vec<String>> {
        self.store.threads().await
    }
    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>> {
        self.store.latest(thread_id).await
    }
    async fn get(&self, thread_id: &str, id: &str) -> Result<Option<Checkpoint>> {
        self.store.get(thread_id, id).await
    }
    async fn prune(&self, retention: &Retention) -> Result<usize> {
        self.store.prune(retention).await
    }
    async fn stats(&self) -> Result<CheckpointStats> {
        self.store.stats().await
    }
}
