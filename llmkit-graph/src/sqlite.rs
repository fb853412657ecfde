//! [`SqliteCheckpointer`]: checkpoints in one SQLite file, for one machine (feature `sqlite`).
//!
//! SQLite is a library, not a server: rusqlite with its bundled SQLite compiles it into the
//! program, so nothing needs installing or running. The file is in WAL mode with a busy
//! timeout, so several processes on the machine may share it (readers never block the writer).
//! Like the PostgreSQL store, a checkpoint position is written once: a second writer of the
//! same position gets an error instead of replacing the first one's state. Many machines need
//! `llmkit-postgres`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use crate::checkpoint::{Checkpoint, CheckpointStats, Checkpointer, Retention, now_ms};
use llmkit_core::{Error, ErrorKind, Result};

/// Checkpoints in a SQLite database file (table `checkpoints`, created when missing).
/// `latest` is one primary-key lookup from the end; `prune` and `stats` run as SQL.
#[derive(Clone)]
pub struct SqliteCheckpointer {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteCheckpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteCheckpointer")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn sql_err(what: &str, e: &rusqlite::Error) -> Error {
    let kind = match e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            ErrorKind::Overloaded
        }
        rusqlite::Error::SqliteFailure(f, _)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            ErrorKind::InvalidRequest
        }
        _ => ErrorKind::Other,
    };
    Error::new(kind, format!("sqlite checkpointer: {what}: {e}"))
}

fn seq_i64(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| {
        Error::new(
            ErrorKind::InvalidRequest,
            "checkpoint sequence out of range",
        )
    })
}

fn decode(body: &str) -> Result<Checkpoint> {
    serde_json::from_str(body).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("stored checkpoint is not valid: {e}"),
        )
    })
}

impl SqliteCheckpointer {
    /// Opens (or creates) the database at `path` and its table.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let conn = Connection::open(&path).map_err(|e| sql_err("open", &e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| sql_err("busy timeout", &e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| sql_err("wal", &e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| sql_err("synchronous", &e))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS checkpoints (
                 thread_id  TEXT    NOT NULL,
                 seq        INTEGER NOT NULL,
                 id         TEXT    NOT NULL,
                 body       TEXT    NOT NULL,
                 created_ms INTEGER NOT NULL,
                 finished   INTEGER NOT NULL,
                 PRIMARY KEY (thread_id, seq)
             ) WITHOUT ROWID;",
        )
        .map_err(|e| sql_err("create table", &e))?;
        Ok(SqliteCheckpointer {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// Runs `f` on the connection on tokio's blocking pool (SQLite calls block).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = llmkit_core::sync::lock(&conn);
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Other, format!("sqlite task failed: {e}")))?
    }
}

#[async_trait]
impl Checkpointer for SqliteCheckpointer {
    /// Inserts the checkpoint; a position already written fails with `InvalidRequest`.
    async fn put(&self, checkpoint: &Checkpoint) -> Result<()> {
        let body = serde_json::to_string(checkpoint)?;
        let seq = seq_i64(checkpoint.seq)?;
        let cp = checkpoint.clone();
        let created = i64::try_from(cp.created_ms).unwrap_or(i64::MAX);
        self.with(move |c| {
            let n = c
                .execute(
                    "INSERT INTO checkpoints (thread_id, seq, id, body, created_ms, finished)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (thread_id, seq) DO NOTHING",
                    params![cp.thread_id, seq, cp.id, body, created, cp.is_finished()],
                )
                .map_err(|e| sql_err("insert", &e))?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "checkpoint {seq} of thread `{}` was already written by another worker",
                        cp.thread_id
                    ),
                ));
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, thread_id: &str) -> Result<Vec<Checkpoint>> {
        let thread = thread_id.to_owned();
        self.with(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT body FROM checkpoints WHERE thread_id = ?1 ORDER BY seq")
                .map_err(|e| sql_err("list", &e))?;
            let rows = stmt
                .query_map(params![thread], |r| r.get::<_, String>(0))
                .map_err(|e| sql_err("list", &e))?;
            rows.map(|r| decode(&r.map_err(|e| sql_err("list", &e))?))
                .collect()
        })
        .await
    }

    async fn delete(&self, thread_id: &str, ids: &[String]) -> Result<()> {
        let thread = thread_id.to_owned();
        let ids = ids.to_vec();
        self.with(move |c| {
            let tx = c.transaction().map_err(|e| sql_err("delete", &e))?;
            for id in &ids {
                tx.execute(
                    "DELETE FROM checkpoints WHERE thread_id = ?1 AND id = ?2",
                    params![thread, id],
                )
                .map_err(|e| sql_err("delete", &e))?;
            }
            tx.commit().map_err(|e| sql_err("delete", &e))
        })
        .await
    }

    async fn threads(&self) -> Result<Vec<String>> {
        self.with(|c| {
            let mut stmt = c
                .prepare_cached("SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id")
                .map_err(|e| sql_err("threads", &e))?;
            let rows = stmt
                .query_map([], |r| r.get::<_, String>(0))
                .map_err(|e| sql_err("threads", &e))?;
            rows.map(|r| r.map_err(|e| sql_err("threads", &e)))
                .collect()
        })
        .await
    }

    async fn latest(&self, thread_id: &str) -> Result<Option<Checkpoint>> {
        let thread = thread_id.to_owned();
        self.with(move |c| {
            c.query_row(
                "SELECT body FROM checkpoints WHERE thread_id = ?1 ORDER BY seq DESC LIMIT 1",
                params![thread],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(|e| sql_err("latest", &e))?
            .map(|b| decode(&b))
            .transpose()
        })
        .await
    }

    async fn get(&self, thread_id: &str, id: &str) -> Result<Option<Checkpoint>> {
        let (thread, id) = (thread_id.to_owned(), id.to_owned());
        self.with(move |c| {
            c.query_row(
                "SELECT body FROM checkpoints WHERE thread_id = ?1 AND id = ?2",
                params![thread, id],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map_err(|e| sql_err("get", &e))?
            .map(|b| decode(&b))
            .transpose()
        })
        .await
    }

    /// The default policy in one SQL transaction (window functions, SQLite ≥ 3.25).
    async fn prune(&self, retention: &Retention) -> Result<usize> {
        let keep_last = i64::try_from(retention.keep_last.max(1)).unwrap_or(i64::MAX);
        let cutoff: Option<i64> = retention.max_age.map(|age| {
            i64::try_from(now_ms())
                .unwrap_or(i64::MAX)
                .saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX))
        });
        let prune_finished = retention.prune_finished;
        self.with(move |c| {
            let tx = c.transaction().map_err(|e| sql_err("prune", &e))?;
            let mut removed = 0usize;
            if prune_finished {
                removed += tx
                    .execute(
                        "DELETE FROM checkpoints WHERE thread_id IN (
                            SELECT thread_id FROM checkpoints c
                             WHERE seq = (SELECT max(seq) FROM checkpoints d WHERE d.thread_id = c.thread_id)
                               AND finished)",
                        [],
                    )
                    .map_err(|e| sql_err("prune finished", &e))?;
            }
            removed += tx
                .execute(
                    "DELETE FROM checkpoints WHERE (thread_id, seq) IN (
                        SELECT thread_id, seq FROM (
                            SELECT thread_id, seq, created_ms,
                                   row_number() OVER (PARTITION BY thread_id ORDER BY seq DESC) AS rn
                              FROM checkpoints)
                         WHERE rn > 1 AND (rn > ?1 OR (?2 IS NOT NULL AND created_ms < ?2)))",
                    params![keep_last, cutoff],
                )
                .map_err(|e| sql_err("prune", &e))?;
            tx.commit().map_err(|e| sql_err("prune", &e))?;
            Ok(removed)
        })
        .await
    }

    async fn stats(&self) -> Result<CheckpointStats> {
        self.with(|c| {
            c.query_row(
                "SELECT count(DISTINCT thread_id), count(*), coalesce(sum(length(CAST(body AS BLOB))), 0)
                   FROM checkpoints",
                [],
                |r| {
                    Ok(CheckpointStats {
                        threads: usize::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        checkpoints: usize::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        bytes: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    })
                },
            )
            .map_err(|e| sql_err("stats", &e))
        })
        .await
    }
}
