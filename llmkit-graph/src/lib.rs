//! # llmkit-graph
//!
//! Orchestration: a typed graph of checkpointed, testable steps, and the human-in-the-loop gate.
//! It depends on `llmkit-core` only; the `llmkit` facade re-exports it as `llmkit::graph` (feature
//! `graph`, in `full`).
//!
//! A [`Graph`] holds nodes (async functions or [`Node`] trait objects that take the state and
//! return the next state), fixed and conditional edges, an entry node and a step limit. The
//! state is your own type (`Serialize + DeserializeOwned + Clone`). After every node the runner
//! saves a [`Checkpoint`] through a [`Checkpointer`], so:
//!
//! - a run restarted after a crash ([`Graph::resume`]) continues from the last checkpoint and
//!   never re-runs (or re-bills) a completed node;
//! - a node can pause for a human ([`NodeOutput::Interrupt`]); [`Graph::resume_with`] continues
//!   later, possibly in another process, merging the decision through the node's resume handler
//!   without re-running the code that ran before the pause;
//! - history can be listed and a run forked from an earlier checkpoint ([`Graph::fork`]).
//!
//! Nodes get a timeout, a retry policy for retryable errors and an optional fallback node
//! ([`NodePolicy`]). The graph is validated when built (unknown targets, unreachable nodes, nodes
//! with no path to the end) and renders as Mermaid text ([`Graph::to_mermaid`]).
//!
//! Checkpoints are kept by a [`Checkpointer`]: [`MemoryCheckpointer`] and [`FileCheckpointer`]
//! here, `SqliteCheckpointer` behind the `sqlite` feature (one machine, an embedded SQLite file);
//! the PostgreSQL one lives in the `llmkit-postgres` crate (facade feature `postgres`), so
//! this crate depends on no database client. [`review`] holds the [`HitlGate`]
//! (explicit approve / escalate / reject bands, sampling of automatic decisions) and the
//! [`ReviewQueue`] a human works through.
//!
//! [`HitlGate`]: review::HitlGate
//! [`ReviewQueue`]: review::ReviewQueue
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_graph::{Graph, MemoryCheckpointer, NodeOutput, RunOutcome, END};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Count { n: u32 }
//!
//! let graph = Graph::<Count>::builder("counter")
//!     .node("inc", |mut s: Count, _ctx| async move { s.n += 1; Ok(NodeOutput::Update(s)) })
//!     .entry("inc")
//!     .conditional_edge("inc", |s: &Count| if s.n < 3 { "inc".into() } else { END.into() }, &["inc", END])
//!     .build()?;
//! let store = Arc::new(MemoryCheckpointer::new());
//! let outcome = graph.run(store.as_ref(), "thread-1", Count { n: 0 }).await?;
//! assert!(matches!(outcome, RunOutcome::Finished(Count { n: 3 })));
//! println!("{}", graph.to_mermaid());
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

mod builder;
mod checkpoint;
pub mod review;
mod run;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use builder::{
    END, Graph, GraphBuilder, GraphState, Node, NodeContext, NodeOutput, NodePolicy,
};
pub use checkpoint::{
    Checkpoint, CheckpointStats, Checkpointer, FileCheckpointer, MemoryCheckpointer, Retention,
    RunStatus, now_ms,
};
pub use run::RunOutcome;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteCheckpointer;
