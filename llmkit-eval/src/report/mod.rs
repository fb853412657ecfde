//! Reports of a [`RunResult`]: a [`terminal`] summary table, [`json`], [`markdown`] (with an
//! optional [`Comparison`] and [`GateOutcome`]) and [`junit`] XML so CI systems show each case
//! as a test. All include per-tag breakdowns; retrieval metrics get their own section.
//! [`html`] renders one self-contained page for people (A/B diffs, calibration, trend).
//! [`write_all`] writes every format into a directory.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use llmkit_eval::{assertions, report, runner::{target_fn, Runner, TargetId}, Case, Dataset, TargetOutput};
//! let dataset = Dataset::from_cases("d", vec![Case::new("a", serde_json::json!({})).with_tag("smoke")])?;
//! let target = target_fn(TargetId::new("p@1", "m"), |_| async { Ok(TargetOutput::text("hello")) });
//! let run = Runner::new().evaluator(assertions::contains("hello")).run("r", &dataset, &*target).await?;
//! assert!(report::junit(&run).contains("<testcase"));
//! assert!(report::terminal(&run).contains("smoke"));
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

pub mod html;
mod junit;
mod markdown;
mod terminal;
mod text;

use std::path::{Path, PathBuf};

pub use junit::junit;
pub use markdown::markdown;
pub use terminal::terminal;

use crate::compare::Comparison;
use crate::error::EvalError;
use crate::gate::GateOutcome;
use crate::result::RunResult;

/// The run as pretty JSON (the format [`RunResult::load`] reads back).
pub fn json(run: &RunResult) -> String {
    serde_json::to_string_pretty(run).unwrap_or_default()
}

/// Writes `run.json`, `report.md` and `junit.xml` (plus `comparison.json` and `gate.json`
/// when given) into `dir`, creating it. Returns the paths written.
pub fn write_all(
    dir: impl AsRef<Path>,
    run: &RunResult,
    comparison: Option<&Comparison>,
    gate: Option<&GateOutcome>,
) -> Result<Vec<PathBuf>, EvalError> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut files = vec![
        ("run.json", json(run)),
        ("report.md", markdown(run, comparison, gate)),
        ("junit.xml", junit(run)),
    ];
    if let Some(c) = comparison {
        files.push((
            "comparison.json",
            serde_json::to_string_pretty(c).unwrap_or_default(),
        ));
    }
    if let Some(g) = gate {
        files.push((
            "gate.json",
            serde_json::to_string_pretty(g).unwrap_or_default(),
        ));
    }
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| EvalError::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}
