//! # llmkit-postgres
//!
//! llmkit's shared state on PostgreSQL, for work spread over many processes and machines. The
//! `llmkit` facade re-exports it as `llmkit::postgres` (feature `postgres`; the vector store
//! with feature `pgvector`). Keeping the database client here means `llmkit-core` and
//! `llmkit-graph` depend on none.
//!
//! - [`Postgres`]: one connection pool (deadpool) and one schema, optional TLS through rustls
//!   ([`PostgresBuilder::tls`], [`tls_config_from_pem`]), and versioned, idempotent
//!   migrations run by an explicit [`Postgres::migrate`] call.
//! - [`PostgresCheckpointer`]: `llmkit-graph` checkpoints, written once per position, the
//!   latest one read from a head row (not the history), retention in SQL, and leases with
//!   fencing tokens ([`PostgresCheckpointer::lease`] → [`LeasedCheckpointer`]) so exactly one
//!   worker advances a thread.
//! - [`PostgresReviewQueue`]: the human review queue; reviewers claim items with
//!   `FOR UPDATE SKIP LOCKED`, decisions are final and every step is in an audit trail.
//! - `PgVectorStore` and `PgDocumentVersions` (feature `pgvector`): a RAG `VectorStore` with
//!   an HNSW index, metadata filters and full-text ranking for hybrid search, and the index's
//!   document versions, so a restarted index re-embeds only what changed.
//!
//! Every failure is an `llmkit_core::Error` whose source is a typed [`PgError`] ([`pg_error`]
//! reads it back). When the database is down, calls fail closed with
//! [`PgError::Unavailable`] (kind `Transport`): no checkpoint or review decision is assumed
//! written, and the pool reconnects on its own once the server answers.
//!
//! ```no_run
//! # async fn demo() -> llmkit_core::Result<()> {
//! use std::time::Duration;
//! use llmkit_postgres::{Postgres, PostgresCheckpointer};
//!
//! let pg = Postgres::builder("postgres://app:secret@db:5432/app").max_connections(16).build()?;
//! pg.migrate().await?; // explicit, idempotent, safe from many replicas at once
//! let checkpoints = PostgresCheckpointer::new(pg.clone());
//! let lease = checkpoints.lease("thread-42", "worker-7", Duration::from_secs(60)).await?;
//! // graph.run_or_resume(&lease, "thread-42", initial).await?;
//! lease.release().await?;
//! # Ok(()) }
//! ```

mod checkpoint;
mod error;
mod migrate;
mod pool;
mod review;
#[cfg(feature = "pgvector")]
mod vector;

pub use checkpoint::{LeasedCheckpointer, PostgresCheckpointer};
pub use error::{PgError, pg_error};
pub use migrate::{MigrationReport, latest_version};
pub use pool::{Postgres, PostgresBuilder, tls_config_from_pem};
pub use review::{AuditEvent, PostgresReviewQueue};
#[cfg(feature = "pgvector")]
pub use vector::{PgDocumentVersions, PgVectorStore};
