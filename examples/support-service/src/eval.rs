//! The service's eval set through the real typed-API handler ([`App::handle_answer`]), gated by
//! llmkit-eval: the CI step `cargo run -p support-service -- eval` fails when the gate fails.
//!
//! A case's `inputs` are the request (`question`, optional `user_id`, optional
//! `days_since_purchase`); its `metadata` says what must happen: `expect_status` (default 200),
//! `expect_code` (the error code for non-200), `expect_refused`, `expect_doc` (a cited document)
//! and `expect_decision` (the refund verdict).

use std::path::Path;

use axum::http::HeaderMap;
use llmkit::eval::assertions::custom;
use llmkit::eval::gate::{GateConfig, GateOutcome, evaluate_gate};
use llmkit::eval::{Case, Dataset, Runner, Score, TargetId, TargetOutput, target_fn};
use serde_json::Value;

use crate::App;

/// Default eval set and gate, beside this crate.
pub const DEFAULT_CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/cases.jsonl");
/// Default gate thresholds.
pub const DEFAULT_GATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/eval/gate.json");

fn request_body(case: &Case) -> Value {
    let mut body = serde_json::json!({
        "user_id": case.inputs.get("user_id").and_then(Value::as_str).unwrap_or(&case.id),
        "question": case.inputs.get("question").cloned().unwrap_or(Value::Null),
    });
    if let (Some(days), Some(obj)) = (case.inputs.get("days_since_purchase"), body.as_object_mut())
    {
        obj.insert(
            "refund".to_owned(),
            serde_json::json!({"days_since_purchase": days}),
        );
    }
    body
}

fn at<'a>(v: &'a Value, pointer: &str) -> &'a Value {
    v.pointer(pointer).unwrap_or(&Value::Null)
}

/// Scores one output (status line + JSON body) against the case's expectations.
pub fn score(case: &Case, out: &TargetOutput) -> Score {
    let meta = &case.metadata;
    let (status, body) = out.text.split_once('\n').unwrap_or(("", ""));
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let want_status = meta
        .get("expect_status")
        .and_then(Value::as_u64)
        .unwrap_or(200);
    let mut problems = Vec::new();
    if status != want_status.to_string() {
        problems.push(format!("status {status}, expected {want_status}"));
    }
    if let Some(code) = meta.get("expect_code").and_then(Value::as_str)
        && at(&body, "/error/code") != code
    {
        problems.push(format!(
            "error code {}, expected {code}",
            at(&body, "/error/code")
        ));
    }
    if let Some(refused) = meta.get("expect_refused").and_then(Value::as_bool)
        && at(&body, "/refused").as_bool() != Some(refused)
    {
        problems.push(format!(
            "refused {}, expected {refused}",
            at(&body, "/refused")
        ));
    }
    if let Some(doc) = meta.get("expect_doc").and_then(Value::as_str)
        && !out.retrieved_ids.iter().any(|d| d == doc)
    {
        problems.push(format!(
            "no citation of `{doc}` (cited {:?})",
            out.retrieved_ids
        ));
    }
    if let Some(decision) = meta.get("expect_decision").and_then(Value::as_str)
        && at(&body, "/verdict/verdict/decision") != decision
    {
        problems.push(format!(
            "decision {}, expected {decision}",
            at(&body, "/verdict/verdict/decision")
        ));
    }
    Score::check(problems.is_empty(), "as expected", problems.join("; "))
}

/// Runs `cases` through `app`'s handler and checks the run against `gate`.
pub async fn run(
    app: &App,
    cases: &Path,
    gate: &Path,
) -> Result<(GateOutcome, llmkit::eval::RunResult), Box<dyn std::error::Error>> {
    let dataset = Dataset::load(cases)?;
    let gate: GateConfig = serde_json::from_str(&std::fs::read_to_string(gate)?)?;
    let handler = app.clone();
    let target = target_fn(
        TargetId::new("support-service", "configured"),
        move |case: Case| {
            let app = handler.clone();
            async move {
                let body = serde_json::to_vec(&request_body(&case)).unwrap_or_default();
                let started = std::time::Instant::now();
                let response = app.handle_answer(&HeaderMap::new(), &body).await;
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .map_err(|e| {
                        llmkit::core::Error::new(llmkit::core::ErrorKind::Other, e.to_string())
                    })?;
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let json: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let mut docs: Vec<String> = at(&json, "/citations")
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| at(c, "/doc_id").as_str().map(str::to_owned))
                    .collect();
                docs.dedup();
                Ok(TargetOutput {
                    text: format!("{status}\n{text}"),
                    latency: started.elapsed(),
                    retrieved_ids: docs,
                    request_id: at(&json, "/request_id").as_str().map(str::to_owned),
                    ..TargetOutput::default()
                })
            }
        },
    );
    let runner = Runner::new()
        .concurrency(4)
        .evaluator(custom("expected_behaviour", score));
    let result = runner.run("support-service", &dataset, &*target).await?;
    let outcome = evaluate_gate(&result, None, &gate);
    Ok((outcome, result))
}
