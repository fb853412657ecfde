//! What a run records: per-case [`CaseResult`]s with every evaluator's [`NamedScore`], the
//! aggregate [`Summary`] (pass rates per evaluator and tag, tokens, cost, latency percentiles,
//! retrieval means), [`RunStats`], and the whole [`RunResult`] that reports, comparisons and the
//! gate read.

use std::collections::BTreeMap;
use std::path::Path;

use llmkit_core::Decimal;
use serde::{Deserialize, Serialize};

use crate::calibration::JudgeInfo;
use crate::dataset::DatasetRef;
use crate::error::EvalError;
use crate::retrieval::RetrievalMetrics;
use crate::target::{TargetId, TargetOutput};

/// One evaluator's score on one case, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedScore {
    /// Evaluator name.
    pub evaluator: String,
    /// Value in `0..=1`.
    pub value: f64,
    /// Passed.
    pub passed: bool,
    /// Why.
    pub reason: String,
    /// The evaluator itself failed (e.g. the judge model errored); counted as a fail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
}

/// Everything recorded for one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseResult {
    /// Case id.
    pub id: String,
    /// Case tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The case's inputs, so a report shows what was asked without the dataset file.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// The case's reference answer, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The ids retrieval was expected to find, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_ids: Option<Vec<String>>,
    /// The target's output, unless it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<TargetOutput>,
    /// The target's error, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Every evaluator's score.
    #[serde(default)]
    pub scores: Vec<NamedScore>,
    /// Mean of the scores' values (0 on a target error, 1 with no evaluators).
    pub score: f64,
    /// No target error and every evaluator passed.
    pub passed: bool,
    /// Retrieval metrics, when the case expects ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalMetrics>,
    /// The output came from the cache.
    #[serde(default)]
    pub cached: bool,
}

/// Pass rate and mean score of a group of cases (a tag, an evaluator).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct GroupStats {
    /// Cases in the group.
    pub cases: usize,
    /// Cases that passed.
    pub passed: usize,
    /// `passed / cases`.
    pub pass_rate: f64,
    /// Mean score.
    pub mean_score: f64,
}

impl GroupStats {
    fn from_pairs(pairs: impl IntoIterator<Item = (bool, f64)>) -> Self {
        let mut g = GroupStats::default();
        let mut sum = 0.0;
        for (passed, score) in pairs {
            g.cases += 1;
            g.passed += usize::from(passed);
            sum += score;
        }
        if g.cases > 0 {
            g.pass_rate = g.passed as f64 / g.cases as f64;
            g.mean_score = sum / g.cases as f64;
        }
        g
    }
}

/// Aggregates of a run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Cases run.
    pub cases: usize,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed (target errors included).
    pub failed: usize,
    /// Cases whose target failed.
    pub target_errors: usize,
    /// Scores whose evaluator failed.
    pub evaluator_errors: usize,
    /// `passed / cases`.
    pub pass_rate: f64,
    /// Mean case score.
    pub mean_score: f64,
    /// Input tokens, summed.
    pub input_tokens: u64,
    /// Output tokens, summed.
    pub output_tokens: u64,
    /// Known costs, summed.
    pub cost_usd: Decimal,
    /// Cases whose cost was unknown.
    pub cost_unknown: usize,
    /// Median latency in milliseconds (nearest rank).
    pub latency_p50_ms: f64,
    /// 95th-percentile latency in milliseconds (nearest rank).
    pub latency_p95_ms: f64,
    /// Per-evaluator pass rate and mean.
    pub evaluators: BTreeMap<String, GroupStats>,
    /// Per-tag pass rate and mean.
    pub tags: BTreeMap<String, GroupStats>,
    /// Mean retrieval metrics over cases that expect ids, reported apart from generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalMetrics>,
}

impl Summary {
    /// Cost for humans: `$0.0123`, `$0.0123 (2 of 30 unknown)`, or `unknown` when no case
    /// reported one (never a misleading `$0`).
    pub fn cost_text(&self) -> String {
        if self.cases > 0 && self.cost_unknown >= self.cases {
            "unknown".into()
        } else if self.cost_unknown > 0 {
            format!(
                "${} ({} of {} unknown)",
                self.cost_usd, self.cost_unknown, self.cases
            )
        } else {
            format!("${}", self.cost_usd)
        }
    }

    /// Aggregates case results.
    pub fn from_cases(cases: &[CaseResult]) -> Self {
        let overall = GroupStats::from_pairs(cases.iter().map(|c| (c.passed, c.score)));
        let mut s = Summary {
            cases: overall.cases,
            passed: overall.passed,
            failed: overall.cases - overall.passed,
            pass_rate: overall.pass_rate,
            mean_score: overall.mean_score,
            ..Default::default()
        };
        let mut latencies = Vec::new();
        let mut by_eval: BTreeMap<String, Vec<(bool, f64)>> = BTreeMap::new();
        let mut by_tag: BTreeMap<String, Vec<(bool, f64)>> = BTreeMap::new();
        for c in cases {
            s.target_errors += usize::from(c.error.is_some());
            s.evaluator_errors += c.scores.iter().filter(|x| x.error).count();
            if let Some(o) = &c.output {
                s.input_tokens += o.usage.input_tokens;
                s.output_tokens += o.usage.output_tokens;
                match &o.cost {
                    Some(cost) => s.cost_usd += cost.total_usd,
                    None => s.cost_unknown += 1,
                }
                latencies.push(o.latency.as_secs_f64() * 1000.0);
            }
            for x in &c.scores {
                by_eval
                    .entry(x.evaluator.clone())
                    .or_default()
                    .push((x.passed, x.value));
            }
            for t in &c.tags {
                by_tag
                    .entry(t.clone())
                    .or_default()
                    .push((c.passed, c.score));
            }
        }
        s.evaluators = by_eval
            .into_iter()
            .map(|(k, v)| (k, GroupStats::from_pairs(v)))
            .collect();
        s.tags = by_tag
            .into_iter()
            .map(|(k, v)| (k, GroupStats::from_pairs(v)))
            .collect();
        latencies.sort_by(f64::total_cmp);
        s.latency_p50_ms = nearest_rank(&latencies, 0.50);
        s.latency_p95_ms = nearest_rank(&latencies, 0.95);
        s.retrieval = RetrievalMetrics::mean(cases.iter().filter_map(|c| c.retrieval.as_ref()));
        s
    }
}

fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or(0.0)
}

/// Target calls and cache use of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunStats {
    /// Calls made to the target (retries included).
    pub target_calls: usize,
    /// Outputs served from the cache.
    pub cache_hits: usize,
}

/// A complete run: which dataset and target, every case, the summary. Serialize it with
/// [`save`](RunResult::save) to compare or gate it later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// Run name (e.g. `support@v2`).
    pub name: String,
    /// Dataset name, hash and size.
    pub dataset: DatasetRef,
    /// Target prompt version and model.
    pub target: TargetId,
    /// Unix seconds when the run finished.
    pub finished_at: u64,
    /// Retrieval cutoff used.
    pub retrieval_k: usize,
    /// Per-case results in dataset order.
    pub cases: Vec<CaseResult>,
    /// Aggregates.
    pub summary: Summary,
    /// Target calls and cache hits.
    pub stats: RunStats,
    /// LLM judges used, with their calibration.
    #[serde(default)]
    pub judges: Vec<JudgeInfo>,
    /// The prompt file text of the target, when the caller records it (reports diff two runs'
    /// prompts with it); the runner cannot see it, so it starts empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_source: Option<String>,
}

impl CaseResult {
    /// Why the case failed: the target error, or each failing evaluator's `name: reason`
    /// joined by `; ` (empty when it passed).
    pub fn failure_reason(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        self.scores
            .iter()
            .filter(|x| !x.passed)
            .map(|x| format!("{}: {}", x.evaluator, x.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl RunResult {
    /// The result of a case.
    pub fn case(&self, id: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.id == id)
    }

    /// Writes the run as pretty JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), EvalError> {
        crate::error::write_json_file(path.as_ref(), self)
    }

    /// Reads a run written by [`save`](Self::save).
    pub fn load(path: impl AsRef<Path>) -> Result<Self, EvalError> {
        crate::error::read_json_file(path.as_ref())
    }
}
