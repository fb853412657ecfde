//! # llmkit-eval
//!
//! An eval harness that runs on every change, as easily as `cargo test`.
//!
//! - [`Dataset`]: JSON-lines [`Case`]s with a content hash, so results name the exact data.
//! - [`Evaluator`]s score a case's [`TargetOutput`] in `0..=1` with pass/fail and a reason:
//!   [`assertions`] (JSON, schema, allowed values, contains, regex, bounds, closures),
//!   [`reference`](mod@reference) metrics (exact, normalized, token F1, ROUGE-L, embedding cosine), the LLM
//!   [`judge`] with human [`Calibration`], combined with
//!   [`evaluator::all`]/[`any`](evaluator::any)/[`weighted`](evaluator::weighted).
//!   [`retrieval`] metrics (recall@k, precision@k, MRR, nDCG@k, hit rate) are reported apart.
//! - The [`Runner`] runs a [`Target`] (any async function, or an [`OutputsFile`]) with bounded
//!   concurrency and an [`OutputCache`], producing a [`RunResult`] ([`result`]: per-case
//!   results, summary, stats).
//!
//! Modules import only from lower layers (`tests/module_graph.rs` checks there is no cycle):
//! `error`; `dataset`; `target`, `calibration`, `retrieval`; `evaluator`; `result`; then
//! `cache`, `review`, the evaluators, `runner`, `judge`, `compare`, `gate` and `report`.
//! - [`report`] renders it (terminal, JSON, Markdown, JUnit XML); [`compare`] pairs two runs
//!   (bootstrap CI, McNemar, regressed cases); [`gate`] turns thresholds and a stored
//!   [`Baseline`] into an exit code; [`review`] exports samples for humans and
//!   imports their labels.
//! - The `llmkit-eval` binary (`run`, `compare`, `gate`; feature `cli`) does the same from a
//!   shell.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use llmkit_eval::{assertions, reference, gate::{check, GateConfig}, runner::{target_fn, TargetId}};
//! use llmkit_eval::{Case, Dataset, Runner, TargetOutput};
//!
//! let dataset = Dataset::from_cases("capitals", vec![
//!     Case::new("fr", serde_json::json!({"country": "France"})).with_reference("Paris"),
//!     Case::new("it", serde_json::json!({"country": "Italy"})).with_reference("Rome"),
//! ])?;
//! let target = target_fn(TargetId::new("capital@1", "lookup"), |case| async move {
//!     let answer = if case.id == "fr" { "Paris" } else { "Milan" };
//!     Ok(TargetOutput::text(answer))
//! });
//! let run = Runner::new()
//!     .evaluator(reference::exact_match())
//!     .evaluator(assertions::not_contains("I don't know"))
//!     .run("capitals@1", &dataset, &*target)
//!     .await?;
//! assert_eq!(run.summary.passed, 1);
//! assert!(check(&run, None, &GateConfig::new().min_pass_rate(0.9)).is_err());
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

pub mod assertions;
pub mod cache;
pub mod calibration;
pub mod compare;
pub mod dataset;
pub mod error;
pub mod evaluator;
pub mod gate;
pub mod judge;
pub mod reference;
pub mod report;
pub mod result;
pub mod retrieval;
pub mod review;
pub mod runner;
pub mod target;

/// The evals guide (`docs/evals.md`); its example is compiled and run by the facade crate
/// (facade paths), so it is not collected as a doctest here.
#[cfg_attr(not(doctest), doc = include_str!("../../docs/evals.md"))]
pub mod guide {}

pub use cache::OutputCache;
pub use calibration::{Calibration, JudgeInfo};
pub use compare::{CompareOptions, Comparison};
pub use dataset::{Case, Dataset, DatasetError};
pub use error::EvalError;
pub use evaluator::{Evaluator, Score};
pub use gate::{Baseline, GateConfig, GateOutcome};
pub use judge::{Judge, JudgeVerdict};
pub use result::{CaseResult, GroupStats, NamedScore, RunResult, RunStats, Summary};
pub use retrieval::RetrievalMetrics;
pub use runner::Runner;
pub use target::{OutputsFile, Target, TargetId, TargetOutput, target_fn};
