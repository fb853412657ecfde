//! The [`Evaluator`] trait, its [`Score`], and the combinators [`all`], [`any`] and [`weighted`].
//!
//! An evaluator looks at one [`Case`] and the target's [`TargetOutput`] and returns a score in
//! `0..=1`, a pass/fail verdict and a reason. Assertions ([`crate::assertions`]), reference
//! metrics ([`crate::reference`]) and the LLM judge ([`crate::judge`]) all implement it, and so
//! can your own type; combinators nest.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use llmkit_eval::{assertions, evaluator::{all, Evaluator}, Case, TargetOutput};
//! let check = all("polite json", vec![assertions::valid_json(), assertions::not_contains("As an AI")]);
//! let score = check.evaluate(&Case::new("c1", serde_json::json!({})), &TargetOutput::text("{\"ok\": true}")).await?;
//! assert!(score.passed);
//! assert_eq!(score.value, 1.0);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::sync::Arc;

use llmkit_core::async_trait;
use serde::{Deserialize, Serialize};

use crate::calibration::JudgeInfo;
use crate::dataset::Case;
use crate::target::TargetOutput;

/// One evaluator's verdict on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Quality in `0..=1` (1 is best). NaN is stored as 0.
    pub value: f64,
    /// Whether the case passes this evaluator.
    pub passed: bool,
    /// Why, in one line.
    pub reason: String,
}

impl Score {
    /// A score; `value` is clamped into `0..=1`.
    pub fn new(value: f64, passed: bool, reason: impl Into<String>) -> Self {
        let value = if value.is_nan() {
            0.0
        } else {
            value.clamp(0.0, 1.0)
        };
        Score {
            value,
            passed,
            reason: reason.into(),
        }
    }

    /// Value 1, passed.
    pub fn pass(reason: impl Into<String>) -> Self {
        Score::new(1.0, true, reason)
    }

    /// Value 0, failed.
    pub fn fail(reason: impl Into<String>) -> Self {
        Score::new(0.0, false, reason)
    }

    /// Passes when `value >= threshold`.
    pub fn graded(value: f64, threshold: f64, reason: impl Into<String>) -> Self {
        Score::new(value, value >= threshold, reason)
    }

    /// Pass or fail from a bool, with one reason for each outcome.
    pub fn check(ok: bool, pass_reason: impl Into<String>, fail_reason: impl Into<String>) -> Self {
        if ok {
            Score::pass(pass_reason)
        } else {
            Score::fail(fail_reason)
        }
    }
}

/// Scores one output of one case.
///
/// Implementors provide [`name`](Evaluator::name) and [`evaluate`](Evaluator::evaluate);
/// [`judges`](Evaluator::judges) defaults to none and is only overridden by LLM judges and
/// combinators, so the gate can check each judge's calibration.
///
/// Return `Err` only when the evaluator could not decide (a judge model failed); the runner
/// records it as a failed score and counts it as an evaluator error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a llmkit-eval `Evaluator`",
    note = "implement `name` and `evaluate` with `#[llmkit_core::async_trait]`"
)]
#[async_trait]
pub trait Evaluator: Send + Sync {
    /// Name in reports (unique within a suite).
    fn name(&self) -> &str;

    /// Scores `output` for `case`.
    async fn evaluate(&self, case: &Case, output: &TargetOutput) -> llmkit_core::Result<Score>;

    /// LLM judges inside this evaluator, with their prompt and calibration.
    fn judges(&self) -> Vec<JudgeInfo> {
        Vec::new()
    }
}

#[async_trait]
impl<E: Evaluator + ?Sized> Evaluator for Arc<E> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn evaluate(&self, case: &Case, output: &TargetOutput) -> llmkit_core::Result<Score> {
        (**self).evaluate(case, output).await
    }
    fn judges(&self) -> Vec<JudgeInfo> {
        (**self).judges()
    }
}

/// How a [`Combined`] evaluator folds its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    All,
    Any,
    Weighted { threshold: f64 },
}

/// Several evaluators as one; built by [`all`], [`any`] or [`weighted`].
pub struct Combined {
    name: String,
    mode: Mode,
    parts: Vec<(Arc<dyn Evaluator>, f64)>,
}

impl std::fmt::Debug for Combined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Combined")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field(
                "parts",
                &self
                    .parts
                    .iter()
                    .map(|(e, w)| (e.name(), *w))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Passes when every part passes; value is the mean of the parts' values.
pub fn all(name: impl Into<String>, parts: Vec<Arc<dyn Evaluator>>) -> Arc<dyn Evaluator> {
    Arc::new(Combined {
        name: name.into(),
        mode: Mode::All,
        parts: parts.into_iter().map(|p| (p, 1.0)).collect(),
    })
}

/// Passes when at least one part passes; value is the best part's value.
pub fn any(name: impl Into<String>, parts: Vec<Arc<dyn Evaluator>>) -> Arc<dyn Evaluator> {
    Arc::new(Combined {
        name: name.into(),
        mode: Mode::Any,
        parts: parts.into_iter().map(|p| (p, 1.0)).collect(),
    })
}

/// Value is the weighted mean of the parts' values; passes when it reaches `threshold`.
/// Negative weights count as zero; when all weights are zero the value is 0.
pub fn weighted(
    name: impl Into<String>,
    parts: Vec<(Arc<dyn Evaluator>, f64)>,
    threshold: f64,
) -> Arc<dyn Evaluator> {
    Arc::new(Combined {
        name: name.into(),
        mode: Mode::Weighted { threshold },
        parts: parts.into_iter().map(|(p, w)| (p, w.max(0.0))).collect(),
    })
}

#[async_trait]
impl Evaluator for Combined {
    fn name(&self) -> &str {
        &self.name
    }

    async fn evaluate(&self, case: &Case, output: &TargetOutput) -> llmkit_core::Result<Score> {
        let mut scores = Vec::with_capacity(self.parts.len());
        for (part, weight) in &self.parts {
            scores.push((
                part.name().to_owned(),
                part.evaluate(case, output).await?,
                *weight,
            ));
        }
        if scores.is_empty() {
            return Ok(Score::fail("no evaluators to combine"));
        }
        let reason = scores
            .iter()
            .map(|(n, s, _)| format!("{n}: {}", if s.passed { "pass" } else { s.reason.as_str() }))
            .collect::<Vec<_>>()
            .join("; ");
        let n = scores.len() as f64;
        Ok(match self.mode {
            Mode::All => Score::new(
                scores.iter().map(|(_, s, _)| s.value).sum::<f64>() / n,
                scores.iter().all(|(_, s, _)| s.passed),
                reason,
            ),
            Mode::Any => Score::new(
                scores.iter().map(|(_, s, _)| s.value).fold(0.0, f64::max),
                scores.iter().any(|(_, s, _)| s.passed),
                reason,
            ),
            Mode::Weighted { threshold } => {
                let total: f64 = scores.iter().map(|(_, _, w)| w).sum();
                let value = if total > 0.0 {
                    scores.iter().map(|(_, s, w)| s.value * w).sum::<f64>() / total
                } else {
                    0.0
                };
                Score::graded(
                    value,
                    threshold,
                    format!("weighted {value:.3} (pass at {threshold}); {reason}"),
                )
            }
        })
    }

    fn judges(&self) -> Vec<JudgeInfo> {
        self.parts.iter().flat_map(|(p, _)| p.judges()).collect()
    }
}
