//! What can go wrong talking to PostgreSQL, typed, and how it maps onto llmkit's [`Error`].
//!
//! Every store in this crate returns `llmkit_core::Result`, so a graph or an index handles a
//! PostgreSQL failure like any other. The [`PgError`] behind it rides along as the error's
//! source; [`pg_error`] gets it back when a caller needs to tell a lost lease from an outage.

use llmkit_core::{Error, ErrorKind};

/// A PostgreSQL store failure. Messages never contain the connection string or its password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgError {
    /// The server could not be reached, the pool timed out waiting for a connection, or the
    /// connection broke mid-call. Maps to [`ErrorKind::Transport`] (retryable): nothing was
    /// written unless the call says otherwise, and the pool reconnects on the next call.
    #[error("postgres unavailable during {op}: {detail}")]
    Unavailable {
        /// What was being done.
        op: &'static str,
        /// The driver's description (no credentials).
        detail: String,
    },
    /// Another worker holds the thread's lease until it expires. Maps to
    /// [`ErrorKind::InvalidRequest`] (not retryable as is: wait for the lease or let the holder
    /// finish).
    #[error("thread `{thread_id}` is leased by `{holder}` for another {remaining_ms} ms")]
    LeaseHeld {
        /// The thread.
        thread_id: String,
        /// The worker holding it.
        holder: String,
        /// Milliseconds until the lease expires (by the database clock).
        remaining_ms: i64,
    },
    /// This worker's lease expired or was taken over (its fencing token is stale), so its write
    /// was refused. Maps to [`ErrorKind::InvalidRequest`].
    #[error("lease on thread `{thread_id}` lost (fencing token {token} is stale): write refused")]
    LeaseLost {
        /// The thread.
        thread_id: String,
        /// The stale token.
        token: i64,
    },
    /// The checkpoint position was already written by another worker: the thread advanced
    /// elsewhere. Maps to [`ErrorKind::InvalidRequest`].
    #[error("checkpoint {seq} of thread `{thread_id}` was already written by another worker")]
    Conflict {
        /// The thread.
        thread_id: String,
        /// The position that was taken.
        seq: i64,
    },
    /// The schema is older than this code: run `Postgres::migrate` first. Maps to
    /// [`ErrorKind::Config`].
    #[error(
        "postgres schema `{schema}` is not migrated ({detail}): call Postgres::migrate() first"
    )]
    NotMigrated {
        /// The schema.
        schema: String,
        /// What is missing.
        detail: String,
    },
    /// Any other statement failure (constraint, permission, syntax). Maps to
    /// [`ErrorKind::Other`].
    #[error("postgres {op} failed: {detail}")]
    Query {
        /// What was being done.
        op: &'static str,
        /// The server's message.
        detail: String,
    },
}

impl PgError {
    /// The llmkit error kind this failure maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PgError::Unavailable { .. } => ErrorKind::Transport,
            PgError::LeaseHeld { .. } | PgError::LeaseLost { .. } | PgError::Conflict { .. } => {
                ErrorKind::InvalidRequest
            }
            PgError::NotMigrated { .. } => ErrorKind::Config,
            PgError::Query { .. } => ErrorKind::Other,
        }
    }
}

impl From<PgError> for Error {
    fn from(e: PgError) -> Self {
        Error::new(e.kind(), e.to_string()).with_source(e)
    }
}

/// The [`PgError`] behind an llmkit error raised by this crate, if it is one.
pub fn pg_error(error: &Error) -> Option<&PgError> {
    std::error::Error::source(error).and_then(|s| s.downcast_ref::<PgError>())
}

/// Classifies a driver error: a closed or failed connection is an outage, the rest a query
/// failure. `undefined_table` means the schema was never migrated.
pub(crate) fn db(op: &'static str, e: &tokio_postgres::Error) -> PgError {
    if let Some(db) = e.as_db_error() {
        use tokio_postgres::error::SqlState;
        let code = db.code();
        if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME {
            return PgError::NotMigrated {
                schema: db.schema().unwrap_or_default().to_owned(),
                detail: db.message().to_owned(),
            };
        }
        // Admin shutdown / crash recovery / too many connections: the server is going away or
        // cannot take us now; the pool will reconnect.
        let class = code.code().get(..2).unwrap_or_default();
        if class == "57" || class == "08" || *code == SqlState::TOO_MANY_CONNECTIONS {
            return PgError::Unavailable {
                op,
                detail: db.message().to_owned(),
            };
        }
        return PgError::Query {
            op,
            detail: db.message().to_owned(),
        };
    }
    PgError::Unavailable {
        op,
        detail: e.to_string(),
    }
}

/// Shorthand: a driver error as an llmkit error.
pub(crate) fn db_err(op: &'static str, e: &tokio_postgres::Error) -> Error {
    db(op, e).into()
}

/// A pool failure (no connection within the timeouts, server unreachable).
pub(crate) fn pool_err(e: &deadpool_postgres::PoolError) -> Error {
    let detail = match e {
        deadpool_postgres::PoolError::Backend(b) => return db_err("connect", b),
        other => other.to_string(),
    };
    PgError::Unavailable {
        op: "connect",
        detail,
    }
    .into()
}
