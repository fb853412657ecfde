//! Human review: [`sample`] picks cases for reviewers (random or stratified by tag, with a set
//! share of auto-passed cases so judge leniency is caught too), [`export_csv`] /
//! [`export_jsonl`] write them, and [`import_labels_csv`] / [`import_labels_jsonl`] read the
//! verdicts back as [`HumanLabel`]s for [`crate::judge::Calibration::from_run`].
//!
//! Reviewers fill the `human_passed` column (`true`/`false`, `yes`/`no`, `1`/`0`, `pass`/`fail`)
//! and optionally `human_note`; rows left empty are skipped on import.
//!
//! ```
//! use llmkit_eval::review::import_labels_csv;
//! let csv = "case_id,human_passed,human_note\nc1,yes,\nc2,no,wrong window\nc3,,\n";
//! let labels = import_labels_csv(csv.as_bytes())?;
//! assert_eq!(labels.len(), 2);
//! assert!(labels[0].passed && !labels[1].passed);
//! # Ok::<(), llmkit_eval::EvalError>(())
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::EvalError;
use crate::result::{CaseResult, RunResult};

/// How to pick cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Uniformly at random within the passed and failed pools.
    Random,
    /// Round-robin over each case's first tag, so small tags are represented.
    StratifiedByTag,
}

/// Sampling settings. Defaults: 20 cases, stratified by tag, 25 % auto-passed, seed 7.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleOptions {
    /// Cases wanted.
    pub size: usize,
    /// Random or stratified.
    pub strategy: Strategy,
    /// Share of the sample taken from auto-passed cases (0..=1); the rest are auto-failed.
    /// When one pool runs short the other fills in.
    pub passed_share: f64,
    /// RNG seed, for a reproducible sample.
    pub seed: u64,
}

impl Default for SampleOptions {
    fn default() -> Self {
        SampleOptions {
            size: 20,
            strategy: Strategy::StratifiedByTag,
            passed_share: 0.25,
            seed: 7,
        }
    }
}

/// One row for reviewers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// Case id.
    pub case_id: String,
    /// Tags, `;`-separated.
    pub tags: String,
    /// Case inputs as JSON.
    pub inputs: String,
    /// The output under review.
    pub output: String,
    /// The reference, if any.
    pub reference: String,
    /// Automatic verdict.
    pub auto_passed: bool,
    /// Automatic score.
    pub auto_score: f64,
    /// Failing evaluators' reasons (or the judge's rationale).
    pub auto_reason: String,
    /// For the reviewer: pass or fail.
    pub human_passed: String,
    /// For the reviewer: a note.
    pub human_note: String,
}

/// A reviewer's verdict on one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanLabel {
    /// Case id.
    pub case_id: String,
    /// Whether the output is acceptable.
    pub passed: bool,
    /// Optional note.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

fn shuffle<T>(items: &mut [T], rng: &mut ChaCha8Rng) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

fn order<'a>(
    mut pool: Vec<&'a CaseResult>,
    strategy: Strategy,
    rng: &mut ChaCha8Rng,
) -> Vec<&'a CaseResult> {
    shuffle(&mut pool, rng);
    if strategy == Strategy::Random {
        return pool;
    }
    let mut groups: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for c in pool {
        groups
            .entry(c.tags.first().map_or("", String::as_str))
            .or_default()
            .push(c);
    }
    let mut out = Vec::new();
    let mut iters: Vec<_> = groups.into_values().map(Vec::into_iter).collect();
    loop {
        let before = out.len();
        for it in &mut iters {
            if let Some(c) = it.next() {
                out.push(c);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// Picks cases of `run` for review (target errors excluded), in a reproducible order.
pub fn sample<'a>(run: &'a RunResult, options: &SampleOptions) -> Vec<&'a CaseResult> {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let usable = run.cases.iter().filter(|c| c.output.is_some());
    let (passed, failed): (Vec<&CaseResult>, Vec<&CaseResult>) = usable.partition(|c| c.passed);
    let passed = order(passed, options.strategy, &mut rng);
    let failed = order(failed, options.strategy, &mut rng);
    let size = options.size.min(passed.len() + failed.len());
    let want_passed = ((size as f64) * options.passed_share.clamp(0.0, 1.0)).round() as usize;
    let take_passed = want_passed
        .min(passed.len())
        .max(size.saturating_sub(failed.len()));
    let take_failed = size - take_passed;
    passed
        .into_iter()
        .take(take_passed)
        .chain(failed.into_iter().take(take_failed))
        .collect()
}

/// Review rows for sampled cases; inputs and references come from `dataset`.
pub fn review_items(
    run: &RunResult,
    dataset: &Dataset,
    options: &SampleOptions,
) -> Vec<ReviewItem> {
    sample(run, options)
        .into_iter()
        .map(|c| {
            let case = dataset.get(&c.id);
            ReviewItem {
                case_id: c.id.clone(),
                tags: c.tags.join(";"),
                inputs: case
                    .map(|k| serde_json::to_string(&k.inputs).unwrap_or_default())
                    .unwrap_or_default(),
                output: c
                    .output
                    .as_ref()
                    .map(|o| o.text.clone())
                    .unwrap_or_default(),
                reference: case.and_then(|k| k.reference.clone()).unwrap_or_default(),
                auto_passed: c.passed,
                auto_score: c.score,
                auto_reason: c
                    .scores
                    .iter()
                    .filter(|s| !s.passed || s.evaluator.contains("judge"))
                    .map(|s| format!("{}: {}", s.evaluator, s.reason))
                    .collect::<Vec<_>>()
                    .join("; "),
                human_passed: String::new(),
                human_note: String::new(),
            }
        })
        .collect()
}

/// Writes review rows as CSV with a header.
pub fn export_csv(items: &[ReviewItem], out: impl Write) -> Result<(), EvalError> {
    let mut w = csv::Writer::from_writer(out);
    for item in items {
        w.serialize(item)
            .map_err(|e| EvalError::format("review csv", 1, e))?;
    }
    w.flush().map_err(|e| EvalError::io("review csv", e))
}

/// Writes review rows as JSON lines.
pub fn export_jsonl(items: &[ReviewItem], mut out: impl Write) -> Result<(), EvalError> {
    for item in items {
        let line =
            serde_json::to_string(item).map_err(|e| EvalError::format("review jsonl", 1, e))?;
        writeln!(out, "{line}").map_err(|e| EvalError::io("review jsonl", e))?;
    }
    Ok(())
}

fn parse_verdict(s: &str) -> Option<bool> {
    match s.trim().to_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "pass" | "passed" | "ok" => Some(true),
        "false" | "no" | "n" | "0" | "fail" | "failed" => Some(false),
        _ => None,
    }
}

/// Reads labels from CSV with at least `case_id` and `human_passed` columns (the export
/// format); rows with an empty verdict are skipped, unreadable verdicts are errors naming
/// the line.
pub fn import_labels_csv(input: impl Read) -> Result<Vec<HumanLabel>, EvalError> {
    let mut r = csv::Reader::from_reader(input);
    let headers = r
        .headers()
        .map_err(|e| EvalError::format("labels csv", 1, e))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let id_col = col("case_id")
        .ok_or_else(|| EvalError::format("labels csv", 1, "missing `case_id` column"))?;
    let verdict_col = col("human_passed")
        .ok_or_else(|| EvalError::format("labels csv", 1, "missing `human_passed` column"))?;
    let note_col = col("human_note");
    let mut labels = Vec::new();
    for (i, record) in r.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| EvalError::format("labels csv", line, e))?;
        let verdict = record.get(verdict_col).unwrap_or("").trim();
        if verdict.is_empty() {
            continue;
        }
        let passed = parse_verdict(verdict).ok_or_else(|| {
            EvalError::format(
                "labels csv",
                line,
                format!("`{verdict}` is not a verdict: use yes/no, true/false, pass/fail or 1/0"),
            )
        })?;
        labels.push(HumanLabel {
            case_id: record.get(id_col).unwrap_or("").to_owned(),
            passed,
            note: note_col
                .and_then(|c| record.get(c))
                .unwrap_or("")
                .to_owned(),
        });
    }
    Ok(labels)
}

/// Reads labels from JSON lines: either [`HumanLabel`] rows (`case_id`, `passed`) or exported
/// [`ReviewItem`] rows with `human_passed` filled in.
pub fn import_labels_jsonl(text: &str) -> Result<Vec<HumanLabel>, EvalError> {
    let mut labels = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| EvalError::format("labels jsonl", i + 1, e))?;
        let case_id = value.get("case_id").and_then(|v| v.as_str());
        let verdict = match value.get("passed").or_else(|| value.get("human_passed")) {
            Some(serde_json::Value::Bool(b)) => Some(*b),
            Some(serde_json::Value::String(s)) if s.trim().is_empty() => None,
            Some(serde_json::Value::String(s)) => Some(parse_verdict(s).ok_or_else(|| {
                EvalError::format("labels jsonl", i + 1, format!("`{s}` is not a verdict"))
            })?),
            _ => None,
        };
        let (Some(case_id), Some(passed)) = (case_id, verdict) else {
            continue;
        };
        let note = value
            .get("note")
            .or_else(|| value.get("human_note"))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        labels.push(HumanLabel {
            case_id: case_id.to_owned(),
            passed,
            note,
        });
    }
    Ok(labels)
}
