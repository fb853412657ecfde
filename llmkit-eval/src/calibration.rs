//! How far to trust a judge: [`Calibration`] (agreement and Cohen's kappa between a judge's
//! pass/fail and human labels) and [`JudgeInfo`], the judge's identity and calibration as
//! recorded in run results for the gate.
//!
//! Both are plain data, so results, evaluators and the gate read them without depending on the
//! judge itself; [`Calibration::from_run`] lives beside the judge in [`crate::judge`] because it
//! reads a run and human labels.

use llmkit_core::PromptRef;
use serde::{Deserialize, Serialize};

use crate::error::EvalError;

/// A judge's identity and trust, recorded in run results for the gate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeInfo {
    /// Evaluator name.
    pub name: String,
    /// The rubric prompt.
    pub prompt: PromptRef,
    /// The judge model.
    pub model: String,
    /// Agreement with human labels, when calibrated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// How well a judge's pass/fail agrees with human labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The judge evaluated.
    pub judge: String,
    /// Labelled cases compared.
    pub n: usize,
    /// Share of cases where judge and human agree.
    pub agreement: f64,
    /// Cohen's kappa: agreement beyond chance, `(p_o - p_e) / (1 - p_e)`; 0 when chance
    /// agreement is 1 (every label the same), where kappa is undefined.
    pub kappa: f64,
    /// Judge pass, human pass.
    pub both_pass: usize,
    /// Judge pass, human fail: the judge is too lenient here.
    pub judge_pass_human_fail: usize,
    /// Judge fail, human pass: the judge is too strict here.
    pub judge_fail_human_pass: usize,
    /// Judge fail, human fail.
    pub both_fail: usize,
    /// The labelled cases where judge and human disagree (filled by
    /// [`from_run`](Self::from_run); pairs carry no case ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disagreements: Vec<Disagreement>,
}

/// A labelled case where the judge and the human reviewer disagree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disagreement {
    /// Case id.
    pub case_id: String,
    /// The judge's pass/fail.
    pub judge_passed: bool,
    /// The judge's reason (grade and rationale).
    pub judge_reason: String,
    /// The human's pass/fail.
    pub human_passed: bool,
    /// The human's note, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub human_note: String,
}

impl Calibration {
    /// From `(judge_passed, human_passed)` pairs.
    pub fn from_pairs(
        judge: impl Into<String>,
        pairs: impl IntoIterator<Item = (bool, bool)>,
    ) -> Self {
        let (mut a, mut b, mut c, mut d) = (0usize, 0usize, 0usize, 0usize);
        for pair in pairs {
            match pair {
                (true, true) => a += 1,
                (true, false) => b += 1,
                (false, true) => c += 1,
                (false, false) => d += 1,
            }
        }
        let n = a + b + c + d;
        let (agreement, kappa) = if n == 0 {
            (0.0, 0.0)
        } else {
            let nf = n as f64;
            let po = (a + d) as f64 / nf;
            let pe =
                ((a + b) as f64 * (a + c) as f64 + (c + d) as f64 * (b + d) as f64) / (nf * nf);
            let kappa = if (1.0 - pe).abs() < f64::EPSILON {
                0.0
            } else {
                (po - pe) / (1.0 - pe)
            };
            (po, kappa)
        };
        Calibration {
            judge: judge.into(),
            n,
            agreement,
            kappa,
            both_pass: a,
            judge_pass_human_fail: b,
            judge_fail_human_pass: c,
            both_fail: d,
            disagreements: Vec::new(),
        }
    }

    /// `Ok` when agreement reaches `floor`.
    pub fn check(&self, floor: f64) -> Result<(), EvalError> {
        if self.n > 0 && self.agreement >= floor {
            Ok(())
        } else {
            Err(EvalError::UntrustedJudge {
                judge: self.judge.clone(),
                reason: format!(
                    "agreement {:.3} with {} human labels is below the floor {floor} (kappa {:.3})",
                    self.agreement, self.n, self.kappa
                ),
            })
        }
    }
}
