//! Builds runs with chosen per-case scores and verdicts, through the real runner.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use llmkit_eval::runner::{TargetId, target_fn};
use llmkit_eval::{Case, Dataset, RunResult, Runner, Score, TargetOutput, assertions};

/// A dataset of `n` cases `c0..`, tagged `a` or `b` alternately.
pub fn dataset(n: usize) -> Dataset {
    Dataset::from_cases(
        "stats",
        (0..n)
            .map(|i| {
                Case::new(format!("c{i}"), serde_json::json!({"i": i}))
                    .with_reference(format!("reference {i}"))
                    .with_tag(if i % 2 == 0 { "a" } else { "b" })
            })
            .collect(),
    )
    .unwrap()
}

/// A run whose case `i` scores `scores[i]` and passes when the score is at least 0.5.
pub async fn run_with(name: &str, scores: &[f64]) -> RunResult {
    let scores = scores.to_vec();
    let ds = dataset(scores.len());
    let target = target_fn(TargetId::new(name, "m"), move |case| {
        let i = case.inputs["i"].as_u64().unwrap() as usize;
        let s = scores[i];
        async move { Ok(TargetOutput::text(format!("{s}"))) }
    });
    let eval = assertions::custom("score", |_, out| {
        Score::graded(out.text.parse::<f64>().unwrap(), 0.5, "scripted score")
    });
    Runner::new()
        .evaluator(eval)
        .run(name, &ds, &*target)
        .await
        .unwrap()
}

/// A run from pass/fail verdicts (1.0 for pass, 0.0 for fail).
pub async fn run_passes(name: &str, passes: &[bool]) -> RunResult {
    let scores: Vec<f64> = passes.iter().map(|p| if *p { 1.0 } else { 0.0 }).collect();
    run_with(name, &scores).await
}
