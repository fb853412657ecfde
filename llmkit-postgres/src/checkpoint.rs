//! A PostgreSQL [`Checkpointer`] for runs that resume on another machine.

use async_trait::async_trait;
use tokio_postgres::{Client, NoTls};

use llmkit_core::{Error, ErrorKind, Result};
use llmkit_graph::{Checkpoint, Checkpointer};

/// Checkpoints in a PostgreSQL table (`llmkit_checkpoints` by default), one row per checkpoint,
/// the checkpoint as `jsonb`. Each `put` is a single `INSERT ... ON CONFLICT` statement, atomic
/// by the database's own guarantees. The connection is plain TCP (`NoTls`): keep it on a private
/// network or put a TLS-terminating proxy in front.
pub struct PostgresCheckpointer {
    client: Client,
    table: String,
}

impl std::fmt::Debug for PostgresCheckpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The connection string may hold a password: never print it.
        f.debug_struct("PostgresCheckpointer")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

fn db_err(what: &str, e: &tokio_postgres::Error) -> Error {
    let kind = if e.is_closed() {
        ErrorKind::Transport
    } else {
        ErrorKind::Other
    };
    Error::new(kind, format!("postgres checkpointer: {what}: {e}"))
}

impl PostgresCheckpointer {
    /// Connects with a `postgres://user:password@host:port/db` URL and creates the table when
    /// missing.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with_table(url, "llmkit_checkpoints").await
    }

    /// Like [`connect`](Self::connect) with another table name (letters, digits, `_`).
    pub async fn connect_with_table(url: &str, table: &str) -> Result<Self> {
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(Error::config(format!(
                "checkpoint table name `{table}` must be letters, digits and '_'"
            )));
        }
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| db_err("connect", &e))?;
        // The connection object drives the socket; it ends when the client is dropped.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "llmkit.graph.postgres.connection_closed");
            }
        });
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                    thread_id TEXT NOT NULL,
                    seq BIGINT NOT NULL,
                    body JSONB NOT NULL,
                    created_ms BIGINT NOT NULL,
                    PRIMARY KEY (thread_id, seq)
                )"
            ))
            .await
            .map_err(|e| db_err("create table", &e))?;
        Ok(PostgresCheckpointer {
            client,
            table: table.to_owned(),
        })
    }
}

fn seq_i64(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| {
        Error::new(
            ErrorKind::InvalidRequest,
            "checkpoint sequence out of range",
        )
    })
}

#[async_trait]
impl Checkpointer for PostgresCheckpointer {
    async fn put(&self, checkpoint: &Checkpoint) -> Result<()> {
        let body = serde_json::to_value(checkpoint)?;
        let created = i64::try_from(checkpoint.created_ms).unwrap_or(i64::MAX);
        self.client
            .execute(
                &format!(
                    "INSERT INTO {} (thread_id, seq, body, created_ms) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (thread_id, seq) DO UPDATE SET body = EXCLUDED.body, created_ms = EXCLUDED.created_ms",
                    self.table
                ),
                &[&checkpoint.thread_id, &seq_i64(checkpoint.seq)?, &body, &created],
            )
            .await
            .map_err(|e| db_err("insert", &e))?;
        Ok(())
    }

    async fn list(&self, thread_id: &str) -> Result<Vec<Checkpoint>> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT body FROM {} WHERE thread_id = $1 ORDER BY seq",
                    self.table
                ),
                &[&thread_id],
            )
            .await
            .map_err(|e| db_err("select", &e))?;
        rows.into_iter()
            .map(|row| {
                let body: serde_json::Value = row.try_get(0).map_err(|e| db_err("read row", &e))?;
                serde_json::from_value(body).map_err(|e| {
                    Error::new(
                        ErrorKind::InvalidResponse,
                        format!("stored checkpoint is not valid: {e}"),
                    )
                })
            })
            .collect()
    }

    async fn delete(&self, thread_id: &str, ids: &[String]) -> Result<()> {
        let seqs: Vec<i64> = self
            .list(thread_id)
            .await?
            .into_iter()
            .filter(|c| ids.contains(&c.id))
            .map(|c| seq_i64(c.seq))
            .collect::<Result<_>>()?;
        self.client
            .execute(
                &format!(
                    "DELETE FROM {} WHERE thread_id = $1 AND seq = ANY($2)",
                    self.table
                ),
                &[&thread_id, &seqs],
            )
            .await
            .map_err(|e| db_err("delete", &e))?;
        Ok(())
    }

    async fn threads(&self) -> Result<Vec<String>> {
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT DISTINCT thread_id FROM {} ORDER BY thread_id",
                    self.table
                ),
                &[],
            )
            .await
            .map_err(|e| db_err("select threads", &e))?;
        rows.into_iter()
            .map(|r| r.try_get(0).map_err(|e| db_err("read row", &e)))
            .collect()
    }
}
