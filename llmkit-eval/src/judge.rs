//! LLM-as-judge: [`Judge`] grades an output with a versioned rubric prompt and returns a
//! structured [`JudgeVerdict`] (`score` 1–5, `rationale`) through
//! [`llmkit_core::structured::Structured`]; [`Calibration`] measures how far to trust it.
//!
//! The rubric is a [`Prompt`] from the prompt registry (its [`PromptRef`] is recorded in every
//! run), declaring any of the variables `criteria`, `input` (case inputs as JSON), `output` and
//! `reference`. [`Judge::with_default_rubric`] uses the built-in `llmkit_eval_judge@1`.
//!
//! Calibration compares the judge's pass/fail with human labels on the same cases and reports
//! raw agreement and Cohen's kappa. [`Judge::require_agreement`] refuses an uncalibrated judge or
//! one below the floor, and the gate ([`crate::gate::GateConfig::judge_agreement_floor`]) fails a
//! run that used one.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use llmkit_core::ScriptedModel;
//! use llmkit_eval::{judge::{Calibration, Judge}, Case, Evaluator, TargetOutput};
//!
//! let model = Arc::new(ScriptedModel::always(r#"{"score": 5, "rationale": "Matches the reference."}"#));
//! let judge = Judge::with_default_rubric(model)?.criteria("Answers the refund question correctly.");
//! let case = Case::new("c1", serde_json::json!({"question": "Refund window?"})).with_reference("30 days");
//! let score = judge.evaluate(&case, &TargetOutput::text("Within 30 days.")).await?;
//! assert!(score.passed && score.value == 1.0);
//!
//! // 8 of 10 human labels agree with the judge.
//! let pairs = [(true, true); 5].into_iter().chain([(false, false); 3]).chain([(true, false), (false, true)]);
//! let cal = Calibration::from_pairs("judge", pairs);
//! assert_eq!(cal.agreement, 0.8);
//! assert!(judge.with_calibration(cal).require_agreement(0.9).is_err());
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::sync::{Arc, OnceLock};

use llmkit_core::prompt::{Prompt, PromptRegistry};
use llmkit_core::structured::Structured;
use llmkit_core::{ChatModel, PromptRef, async_trait};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::dataset::Case;
use crate::error::EvalError;
use crate::evaluator::{Evaluator, Score};
use crate::result::RunResult;
use crate::review::HumanLabel;
use crate::target::TargetOutput;

// Calibration and JudgeInfo are plain data in their own module; these paths stay.
pub use crate::calibration::{Calibration, Disagreement, JudgeInfo};

/// Source of the built-in rubric, `llmkit_eval_judge@1`.
pub const DEFAULT_RUBRIC: &str = include_str!("judge_rubric_v1.prompt");

/// What the judge model must return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JudgeVerdict {
    /// Grade from 1 (wrong) to 5 (fully correct).
    #[schemars(range(min = 1, max = 5))]
    pub score: u8,
    /// Why, in one or two sentences.
    pub rationale: String,
}

/// Grades outputs with a model and a rubric prompt. Defaults: name `judge`, pass at score 4,
/// criteria "Is the answer correct, complete and grounded in the inputs?", 3 structured-output
/// attempts, not calibrated.
#[must_use]
pub struct Judge {
    name: String,
    model: Arc<dyn ChatModel>,
    rubric: Arc<Prompt>,
    pass_score: u8,
    criteria: String,
    calibration: Option<Calibration>,
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("name", &self.name)
            .field("model", &self.model.info().model)
            .field("rubric", &self.rubric.prompt_ref().to_string())
            .field("pass_score", &self.pass_score)
            .field("calibration", &self.calibration)
            .finish()
    }
}

/// The built-in rubric, parsed once.
pub fn default_rubric() -> Result<Arc<Prompt>, EvalError> {
    static RUBRIC: OnceLock<Result<Arc<Prompt>, String>> = OnceLock::new();
    RUBRIC
        .get_or_init(|| {
            PromptRegistry::from_sources(
                [("llmkit_eval/judge_rubric_v1.prompt", DEFAULT_RUBRIC)],
                None,
            )
            .and_then(|r| r.get("llmkit_eval_judge@1"))
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(EvalError::Config)
}

impl Judge {
    /// A judge using `rubric` (from a [`PromptRegistry`]) on `model`.
    pub fn new(model: Arc<dyn ChatModel>, rubric: Arc<Prompt>) -> Self {
        Judge {
            name: "judge".into(),
            model,
            rubric,
            pass_score: 4,
            criteria: "Is the answer correct, complete and grounded in the inputs?".into(),
            calibration: None,
        }
    }

    /// A judge using the built-in rubric [`DEFAULT_RUBRIC`].
    pub fn with_default_rubric(model: Arc<dyn ChatModel>) -> Result<Self, EvalError> {
        Ok(Self::new(model, default_rubric()?))
    }

    /// Sets the evaluator name (default `judge`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the lowest passing grade, 1–5 (default 4).
    pub fn pass_score(mut self, score: u8) -> Self {
        self.pass_score = score.clamp(1, 5);
        self
    }

    /// Sets the criteria text given to the rubric.
    pub fn criteria(mut self, criteria: impl Into<String>) -> Self {
        self.criteria = criteria.into();
        self
    }

    /// Attaches a calibration; runs record it so the gate can check it.
    pub fn with_calibration(mut self, calibration: Calibration) -> Self {
        self.calibration = Some(calibration);
        self
    }

    /// The rubric's `id@version@hash`.
    pub fn rubric(&self) -> PromptRef {
        self.rubric.prompt_ref()
    }

    /// Refuses a judge that was not calibrated or whose agreement is below `floor`.
    pub fn require_agreement(self, floor: f64) -> Result<Self, EvalError> {
        match &self.calibration {
            None => Err(EvalError::UntrustedJudge {
                judge: self.name.clone(),
                reason: "not calibrated against human labels".into(),
            }),
            Some(c) => c.check(floor).map(|()| self),
        }
    }

    /// Asks the judge for a verdict on one output.
    pub async fn verdict(
        &self,
        case: &Case,
        output: &TargetOutput,
    ) -> llmkit_core::Result<JudgeVerdict> {
        let vars = json!({
            "criteria": self.criteria,
            "input": serde_json::to_string_pretty(&case.inputs).unwrap_or_default(),
            "output": output.text,
            "reference": case.reference.as_deref().unwrap_or("(none)"),
        });
        let request = self.rubric.render(vars)?.into_request();
        let generated = Structured::<JudgeVerdict>::new()
            .validator(|v: &JudgeVerdict| {
                if (1..=5).contains(&v.score) {
                    Ok(())
                } else {
                    Err(format!(
                        "score must be an integer from 1 to 5, got {}",
                        v.score
                    ))
                }
            })
            .generate(&*self.model, request)
            .await?;
        Ok(generated.value)
    }
}

#[async_trait]
impl Evaluator for Judge {
    fn name(&self) -> &str {
        &self.name
    }

    async fn evaluate(&self, case: &Case, output: &TargetOutput) -> llmkit_core::Result<Score> {
        let v = self.verdict(case, output).await?;
        Ok(Score::new(
            f64::from(v.score.saturating_sub(1)) / 4.0,
            v.score >= self.pass_score,
            format!("{}/5: {}", v.score, v.rationale.replace('\n', " ")),
        ))
    }

    fn judges(&self) -> Vec<JudgeInfo> {
        vec![JudgeInfo {
            name: self.name.clone(),
            prompt: self.rubric.prompt_ref(),
            model: self.model.info().model.clone(),
            calibration: self.calibration.clone(),
        }]
    }
}

impl Calibration {
    /// Compares the verdicts evaluator `judge` gave in `run` with human `labels` (cases
    /// without both are skipped). Fails when no labelled case was judged.
    pub fn from_run(
        run: &RunResult,
        judge: &str,
        labels: &[HumanLabel],
    ) -> Result<Self, EvalError> {
        let judged: Vec<(&HumanLabel, &crate::result::NamedScore)> = labels
            .iter()
            .filter_map(|label| {
                let case = run.cases.iter().find(|c| c.id == label.case_id)?;
                let score = case.scores.iter().find(|s| s.evaluator == judge)?;
                Some((label, score))
            })
            .collect();
        if judged.is_empty() {
            return Err(EvalError::Config(format!(
                "no labelled case has a `{judge}` score in run `{}`: label cases from this run",
                run.name
            )));
        }
        let mut calibration =
            Self::from_pairs(judge, judged.iter().map(|(l, s)| (s.passed, l.passed)));
        calibration.disagreements = judged
            .iter()
            .filter(|(l, s)| l.passed != s.passed)
            .map(|(l, s)| Disagreement {
                case_id: l.case_id.clone(),
                judge_passed: s.passed,
                judge_reason: s.reason.clone(),
                human_passed: l.passed,
                human_note: l.note.clone(),
            })
            .collect();
        Ok(calibration)
    }
}
