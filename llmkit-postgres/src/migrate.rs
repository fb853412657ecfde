//! Versioned, idempotent migrations, run by an explicit call ([`Postgres::migrate`]).
//!
//! Each migration has a number and runs once per schema, inside one transaction together with
//! the row that records it in `schema_migrations`. A transaction-scoped advisory lock keyed on
//! the schema name serialises concurrent callers (two replicas starting at once): the second
//! waits, then finds everything applied and does nothing. Migrations never run implicitly: a
//! store used before them fails with [`PgError::NotMigrated`](crate::PgError::NotMigrated).

use llmkit_core::Result;

use crate::error::db_err;
use crate::pool::Postgres;

/// One schema change. `{s}` in the SQL stands for the quoted schema name.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// The schema history, oldest first. Append only: a released migration is never edited.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "checkpoints and thread heads with leases",
        sql: "
CREATE TABLE {s}.checkpoints (
    thread_id  TEXT   NOT NULL,
    seq        BIGINT NOT NULL,
    id         TEXT   NOT NULL,
    body       JSONB  NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (thread_id, seq)
);
-- One row per thread: the newest checkpoint's position (latest() is two primary-key lookups,
-- whatever the history length) and the lease with its fencing token.
CREATE TABLE {s}.threads (
    thread_id        TEXT        PRIMARY KEY,
    head_seq         BIGINT      NOT NULL,
    finished         BOOLEAN     NOT NULL DEFAULT false,
    lease_owner      TEXT,
    lease_token      BIGINT      NOT NULL DEFAULT 0,
    lease_expires_at TIMESTAMPTZ
);",
    },
    Migration {
        version: 2,
        name: "review queue and its audit trail",
        sql: "
CREATE TABLE {s}.review_items (
    id            TEXT             PRIMARY KEY,
    score         DOUBLE PRECISION NOT NULL,
    verdict       TEXT             NOT NULL,
    reason        TEXT             NOT NULL,
    payload       JSONB            NOT NULL,
    label         TEXT,
    claimed_by    TEXT,
    claimed_until TIMESTAMPTZ,
    decided_by    TEXT,
    created_at    TIMESTAMPTZ      NOT NULL DEFAULT now(),
    decided_at    TIMESTAMPTZ,
    position      BIGSERIAL
);
CREATE INDEX review_items_pending ON {s}.review_items (position) WHERE label IS NULL;
CREATE TABLE {s}.review_audit (
    event_id BIGSERIAL   PRIMARY KEY,
    item_id  TEXT        NOT NULL,
    at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor    TEXT,
    action   TEXT        NOT NULL,
    detail   JSONB       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX review_audit_item ON {s}.review_audit (item_id, event_id);",
    },
    Migration {
        version: 3,
        name: "rag document versions",
        sql: "
CREATE TABLE {s}.rag_documents (
    collection TEXT   NOT NULL,
    doc_id     TEXT   NOT NULL,
    hash       TEXT   NOT NULL,
    indexed_ms BIGINT NOT NULL,
    metadata   JSONB  NOT NULL,
    PRIMARY KEY (collection, doc_id)
);",
    },
];

/// What [`Postgres::migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this call, oldest first (empty when already up to date).
    pub applied: Vec<i32>,
    /// The schema version after the call.
    pub version: i32,
}

/// The newest migration this code knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

impl Postgres {
    /// Creates the schema and applies every migration not applied yet, each in its own
    /// transaction with its bookkeeping row. Safe to call from many processes at once and again
    /// on every start; returns what it applied.
    pub async fn migrate(&self) -> Result<MigrationReport> {
        let mut conn = self.conn().await?;
        let s = format!("\"{}\"", self.schema());
        let mut applied = Vec::new();
        for m in MIGRATIONS {
            let tx = conn
                .transaction()
                .await
                .map_err(|e| db_err("migrate: begin", &e))?;
            // Serialises concurrent migrators of this schema until commit.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext('llmkit.migrate.' || $1::text))",
                &[&self.schema()],
            )
            .await
            .map_err(|e| db_err("migrate: lock", &e))?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {s};
                 CREATE TABLE IF NOT EXISTS {s}.schema_migrations (
                     version    INTEGER     PRIMARY KEY,
                     name       TEXT        NOT NULL,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                 );"
            ))
            .await
            .map_err(|e| db_err("migrate: bookkeeping table", &e))?;
            let done = tx
                .query_opt(
                    &format!("SELECT 1 FROM {s}.schema_migrations WHERE version = $1"),
                    &[&m.version],
                )
                .await
                .map_err(|e| db_err("migrate: read version", &e))?
                .is_some();
            if !done {
                tx.batch_execute(&m.sql.replace("{s}", &s))
                    .await
                    .map_err(|e| db_err("migrate: apply", &e))?;
                tx.execute(
                    &format!("INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)"),
                    &[&m.version, &m.name],
                )
                .await
                .map_err(|e| db_err("migrate: record version", &e))?;
                applied.push(m.version);
            }
            tx.commit()
                .await
                .map_err(|e| db_err("migrate: commit", &e))?;
        }
        if !applied.is_empty() {
            tracing::info!(schema = self.schema(), ?applied, "llmkit.postgres.migrated");
        }
        Ok(MigrationReport {
            applied,
            version: latest_version(),
        })
    }

    /// The schema version recorded in the database (0 when never migrated).
    pub async fn schema_version(&self) -> Result<i32> {
        let conn = self.conn().await?;
        let row = conn
            .query_one(
                "SELECT to_regclass(quote_ident($1) || '.schema_migrations') IS NOT NULL",
                &[&self.schema()],
            )
            .await
            .map_err(|e| db_err("schema version", &e))?;
        if !row.get::<_, bool>(0) {
            return Ok(0);
        }
        let row = conn
            .query_one(
                &format!(
                    "SELECT coalesce(max(version), 0) FROM {}",
                    self.table("schema_migrations")
                ),
                &[],
            )
            .await
            .map_err(|e| db_err("schema version", &e))?;
        Ok(row.get(0))
    }
}
