//! # llmkit-postgres
//!
//! llmkit's state on PostgreSQL, for work shared by many processes and machines:
//! [`PostgresCheckpointer`] keeps `llmkit-graph` checkpoints so a run resumes on another
//! machine. The `llmkit` facade re-exports this crate as `llmkit::postgres` (feature `postgres`).
//! Keeping the database client here means `llmkit-core` and `llmkit-graph` depend on none.

mod checkpoint;

pub use checkpoint::PostgresCheckpointer;
