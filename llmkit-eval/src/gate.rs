//! The regression gate: [`GateConfig`] thresholds, absolute and against a stored [`Baseline`]
//! file, checked by [`evaluate_gate`] into a [`GateOutcome`] with an exit code, or by [`check`]
//! into a `Result` for `cargo test`.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! use llmkit_eval::{assertions, gate::{check, GateConfig}, runner::{target_fn, Runner, TargetId}, Case, Dataset, TargetOutput};
//! let dataset = Dataset::from_cases("d", vec![Case::new("a", serde_json::json!({}))])?;
//! let target = target_fn(TargetId::new("p@1", "m"), |_| async { Ok(TargetOutput::text("{}")) });
//! let run = Runner::new().evaluator(assertions::valid_json()).run("r", &dataset, &*target).await?;
//! let config = GateConfig::new().min_pass_rate(0.9);
//! assert_eq!(check(&run, None, &config)?.exit_code(), 0);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::EvalError;
use crate::result::RunResult;

/// Exit code of a passing gate.
pub const EXIT_PASS: i32 = 0;
/// Exit code of a failing gate.
pub const EXIT_FAIL: i32 = 1;
/// Exit code for bad input (unreadable files, bad flags).
pub const EXIT_ERROR: i32 = 2;

/// A stored reference run: aggregate numbers and per-case outcomes, committed next to the
/// dataset so each change is gated against the accepted state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// Run the baseline was taken from.
    pub run: String,
    /// Dataset `name@hash12`.
    pub dataset: String,
    /// Dataset content hash.
    pub dataset_hash: String,
    /// Pass rate.
    pub pass_rate: f64,
    /// Mean score.
    pub mean_score: f64,
    /// Case id → (passed, score).
    pub cases: BTreeMap<String, BaselineCase>,
}

/// One case in a [`Baseline`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineCase {
    /// Passed in the baseline.
    pub passed: bool,
    /// Score in the baseline.
    pub score: f64,
}

impl Baseline {
    /// The baseline of a run.
    pub fn from_run(run: &RunResult) -> Self {
        Baseline {
            run: run.name.clone(),
            dataset: run.dataset.version(),
            dataset_hash: run.dataset.hash.clone(),
            pass_rate: round6(run.summary.pass_rate),
            mean_score: round6(run.summary.mean_score),
            cases: run
                .cases
                .iter()
                .map(|c| {
                    (
                        c.id.clone(),
                        BaselineCase {
                            passed: c.passed,
                            score: round6(c.score),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Writes pretty JSON (stable order, rounded numbers, so diffs stay readable).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), EvalError> {
        crate::error::write_json_file(path.as_ref(), self)
    }

    /// Reads a baseline file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, EvalError> {
        crate::error::read_json_file(path.as_ref())
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Gate thresholds; every one is off until set.
#[must_use]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateConfig {
    /// Lowest acceptable pass rate.
    pub min_pass_rate: Option<f64>,
    /// Lowest acceptable mean score.
    pub min_mean_score: Option<f64>,
    /// Largest acceptable pass-rate drop versus the baseline (e.g. 0.02).
    pub max_pass_rate_drop: Option<f64>,
    /// Largest acceptable mean-score drop versus the baseline.
    pub max_mean_score_drop: Option<f64>,
    /// Most cases allowed to go from pass (in the baseline) to fail.
    pub max_regressed_cases: Option<usize>,
    /// Most target or evaluator errors allowed.
    pub max_errors: Option<usize>,
    /// Lowest per-evaluator pass rate, by evaluator name.
    pub min_evaluator_pass_rate: BTreeMap<String, f64>,
    /// Lowest mean retrieval recall@k.
    pub min_retrieval_recall: Option<f64>,
    /// Every LLM judge in the run must be calibrated with at least this agreement.
    pub judge_agreement_floor: Option<f64>,
}

impl GateConfig {
    /// No thresholds.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets [`min_pass_rate`](Self::min_pass_rate).
    pub fn min_pass_rate(mut self, x: f64) -> Self {
        self.min_pass_rate = Some(x);
        self
    }
    /// Sets [`min_mean_score`](Self::min_mean_score).
    pub fn min_mean_score(mut self, x: f64) -> Self {
        self.min_mean_score = Some(x);
        self
    }
    /// Sets [`max_pass_rate_drop`](Self::max_pass_rate_drop).
    pub fn max_pass_rate_drop(mut self, x: f64) -> Self {
        self.max_pass_rate_drop = Some(x);
        self
    }
    /// Sets [`max_mean_score_drop`](Self::max_mean_score_drop).
    pub fn max_mean_score_drop(mut self, x: f64) -> Self {
        self.max_mean_score_drop = Some(x);
        self
    }
    /// Sets [`max_regressed_cases`](Self::max_regressed_cases).
    pub fn max_regressed_cases(mut self, n: usize) -> Self {
        self.max_regressed_cases = Some(n);
        self
    }
    /// Sets [`max_errors`](Self::max_errors).
    pub fn max_errors(mut self, n: usize) -> Self {
        self.max_errors = Some(n);
        self
    }
    /// Adds a per-evaluator pass-rate floor.
    pub fn min_evaluator_pass_rate(mut self, evaluator: impl Into<String>, x: f64) -> Self {
        self.min_evaluator_pass_rate.insert(evaluator.into(), x);
        self
    }
    /// Sets [`min_retrieval_recall`](Self::min_retrieval_recall).
    pub fn min_retrieval_recall(mut self, x: f64) -> Self {
        self.min_retrieval_recall = Some(x);
        self
    }
    /// Sets [`judge_agreement_floor`](Self::judge_agreement_floor).
    pub fn judge_agreement_floor(mut self, x: f64) -> Self {
        self.judge_agreement_floor = Some(x);
        self
    }
}

/// One threshold checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateCheck {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// `actual vs threshold` in words.
    pub detail: String,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateOutcome {
    /// Every check passed.
    pub passed: bool,
    /// Each check.
    pub checks: Vec<GateCheck>,
    /// Warnings that do not fail the gate (e.g. the baseline used another dataset version).
    pub notes: Vec<String>,
}

impl GateOutcome {
    /// [`EXIT_PASS`] or [`EXIT_FAIL`].
    pub fn exit_code(&self) -> i32 {
        if self.passed { EXIT_PASS } else { EXIT_FAIL }
    }

    /// The failing checks.
    pub fn failures(&self) -> impl Iterator<Item = &GateCheck> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// A line per check, for terminals and logs.
    pub fn report(&self) -> String {
        let mut out = format!("gate: {}\n", if self.passed { "PASS" } else { "FAIL" });
        for c in &self.checks {
            out += &format!(
                "  [{}] {}: {}\n",
                if c.passed { "ok" } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        for n in &self.notes {
            out += &format!("  note: {n}\n");
        }
        out
    }
}

/// Checks `run` against `config` and, when given, `baseline`.
///
/// Baseline-relative thresholds are skipped with a note when no baseline is given.
pub fn evaluate_gate(
    run: &RunResult,
    baseline: Option<&Baseline>,
    config: &GateConfig,
) -> GateOutcome {
    let mut checks = Vec::new();
    let mut notes = Vec::new();
    let s = &run.summary;
    let mut push = |name: &str, passed: bool, detail: String| {
        checks.push(GateCheck {
            name: name.to_owned(),
            passed,
            detail,
        });
    };
    if let Some(min) = config.min_pass_rate {
        push(
            "pass rate",
            s.pass_rate >= min,
            format!("{:.3} (min {min})", s.pass_rate),
        );
    }
    if let Some(min) = config.min_mean_score {
        push(
            "mean score",
            s.mean_score >= min,
            format!("{:.3} (min {min})", s.mean_score),
        );
    }
    if let Some(max) = config.max_errors {
        let errors = s.target_errors + s.evaluator_errors;
        push("errors", errors <= max, format!("{errors} (max {max})"));
    }
    for (name, min) in &config.min_evaluator_pass_rate {
        match s.evaluators.get(name) {
            Some(g) => push(
                &format!("evaluator {name}"),
                g.pass_rate >= *min,
                format!("pass rate {:.3} (min {min})", g.pass_rate),
            ),
            None => push(&format!("evaluator {name}"), false, "not in the run".into()),
        }
    }
    if let Some(min) = config.min_retrieval_recall {
        match &s.retrieval {
            Some(r) => push(
                "retrieval recall",
                r.recall >= min,
                format!("recall@{} {:.3} (min {min})", r.k, r.recall),
            ),
            None => push(
                "retrieval recall",
                false,
                "no case expects retrieved ids".into(),
            ),
        }
    }
    if let Some(floor) = config.judge_agreement_floor {
        for j in &run.judges {
            match &j.calibration {
                None => push(
                    &format!("judge {}", j.name),
                    false,
                    "not calibrated against human labels".into(),
                ),
                Some(c) => push(
                    &format!("judge {}", j.name),
                    c.check(floor).is_ok(),
                    format!(
                        "agreement {:.3}, kappa {:.3} on {} labels (floor {floor})",
                        c.agreement, c.kappa, c.n
                    ),
                ),
            }
        }
    }
    let wants_baseline = config.max_pass_rate_drop.is_some()
        || config.max_mean_score_drop.is_some()
        || config.max_regressed_cases.is_some();
    match baseline {
        None if wants_baseline => notes.push("no baseline given: baseline checks skipped".into()),
        None => {}
        Some(b) => {
            if b.dataset_hash != run.dataset.hash {
                notes.push(format!(
                    "baseline was taken on {} but this run used {}: refresh it with --write-baseline once the change is accepted",
                    b.dataset,
                    run.dataset.version()
                ));
            }
            if let Some(max) = config.max_pass_rate_drop {
                let drop = b.pass_rate - s.pass_rate;
                push(
                    "pass rate vs baseline",
                    drop <= max + 1e-9,
                    format!(
                        "{:.3} -> {:.3}, drop {drop:.3} (max {max})",
                        b.pass_rate, s.pass_rate
                    ),
                );
            }
            if let Some(max) = config.max_mean_score_drop {
                let drop = b.mean_score - s.mean_score;
                push(
                    "mean score vs baseline",
                    drop <= max + 1e-9,
                    format!(
                        "{:.3} -> {:.3}, drop {drop:.3} (max {max})",
                        b.mean_score, s.mean_score
                    ),
                );
            }
            if let Some(max) = config.max_regressed_cases {
                let regressed: Vec<&str> = run
                    .cases
                    .iter()
                    .filter(|c| !c.passed && b.cases.get(&c.id).is_some_and(|bc| bc.passed))
                    .map(|c| c.id.as_str())
                    .collect();
                let shown: Vec<&str> = regressed.iter().take(10).copied().collect();
                push(
                    "regressed cases",
                    regressed.len() <= max,
                    format!(
                        "{} (max {max}){}",
                        regressed.len(),
                        if shown.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", shown.join(", "))
                        }
                    ),
                );
            }
        }
    }
    if checks.is_empty() {
        notes.push("no thresholds configured: the gate passes trivially".into());
    }
    GateOutcome {
        passed: checks.iter().all(|c| c.passed),
        checks,
        notes,
    }
}

/// [`evaluate_gate`] as a `Result`, for `cargo test` and `?`: `Err(EvalError::GateFailed)`
/// lists the failing checks.
pub fn check(
    run: &RunResult,
    baseline: Option<&Baseline>,
    config: &GateConfig,
) -> Result<GateOutcome, EvalError> {
    let outcome = evaluate_gate(run, baseline, config);
    if outcome.passed {
        Ok(outcome)
    } else {
        Err(EvalError::GateFailed(
            outcome
                .failures()
                .map(|c| format!("{}: {}", c.name, c.detail))
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}
