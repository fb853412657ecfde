//! Deterministic checks on an output: [`valid_json`], [`matches_schema`], [`field_in`],
//! [`contains`] / [`not_contains`], [`matches_regex`], [`equals`], [`number_between`],
//! [`latency_below`], [`cost_below`] and [`custom`] closures.
//!
//! Each returns an `Arc<dyn Evaluator>` scoring 1 (pass) or 0 (fail) with a reason. Constructors
//! that compile something (schema, regex) return a [`EvalError::Config`] for bad input.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use llmkit_eval::{assertions, Case, TargetOutput};
//! let decision = assertions::field_in("/decision", ["approve", "reject", "escalate"]);
//! let case = Case::new("c1", serde_json::json!({}));
//! let ok = decision.evaluate(&case, &TargetOutput::text(r#"{"decision": "approve"}"#)).await?;
//! let bad = decision.evaluate(&case, &TargetOutput::text(r#"{"decision": "maybe"}"#)).await?;
//! assert!(ok.passed && !bad.passed);
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use std::sync::Arc;
use std::time::Duration;

use llmkit_core::{Decimal, async_trait};
use serde_json::Value;

use crate::dataset::Case;
use crate::error::EvalError;
use crate::evaluator::{Evaluator, Score};
use crate::target::TargetOutput;

type Check = dyn Fn(&Case, &TargetOutput) -> Score + Send + Sync;

/// A synchronous check wrapped as an [`Evaluator`].
pub struct Assertion {
    name: String,
    check: Box<Check>,
}

impl std::fmt::Debug for Assertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Assertion")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Evaluator for Assertion {
    fn name(&self) -> &str {
        &self.name
    }
    async fn evaluate(&self, case: &Case, output: &TargetOutput) -> llmkit_core::Result<Score> {
        Ok((self.check)(case, output))
    }
}

fn assertion(
    name: impl Into<String>,
    check: impl Fn(&Case, &TargetOutput) -> Score + Send + Sync + 'static,
) -> Arc<dyn Evaluator> {
    Arc::new(Assertion {
        name: name.into(),
        check: Box::new(check),
    })
}

/// A custom check: any closure from case and output to a [`Score`].
pub fn custom(
    name: impl Into<String>,
    check: impl Fn(&Case, &TargetOutput) -> Score + Send + Sync + 'static,
) -> Arc<dyn Evaluator> {
    assertion(name, check)
}

/// The output as JSON: the whole text, or else the first JSON value found in it (a fenced
/// block or an object inside prose), as the structured-output machinery extracts it.
pub(crate) fn parse_json(text: &str) -> Result<Value, String> {
    let trimmed = text.trim();
    match serde_json::from_str(trimmed) {
        Ok(v) => Ok(v),
        Err(e) => llmkit_core::structured::json_candidates(trimmed)
            .into_iter()
            .next()
            .ok_or_else(|| format!("output is not json: {e}")),
    }
}

/// Passes when the output is JSON or holds a JSON value (fenced or inside prose).
pub fn valid_json() -> Arc<dyn Evaluator> {
    assertion("valid_json", |_, out| match parse_json(&out.text) {
        Ok(_) => Score::pass("output is json"),
        Err(e) => Score::fail(e),
    })
}

/// Passes when the output is JSON valid against `schema`. Fails at construction when the
/// schema does not compile.
pub fn matches_schema(schema: &Value) -> Result<Arc<dyn Evaluator>, EvalError> {
    let validator = jsonschema::validator_for(schema)
        .map_err(|e| EvalError::Config(format!("json schema does not compile: {e}")))?;
    Ok(assertion("matches_schema", move |_, out| {
        let value = match parse_json(&out.text) {
            Ok(v) => v,
            Err(e) => return Score::fail(e),
        };
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .take(3)
            .map(|e| {
                let path = e.instance_path().to_string();
                format!("{}: {e}", if path.is_empty() { "/" } else { path.as_str() })
            })
            .collect();
        Score::check(
            errors.is_empty(),
            "output matches the schema",
            errors.join("; "),
        )
    }))
}

/// Passes when the JSON field at `pointer` (RFC 6901, e.g. `/decision`) is one of `allowed`.
pub fn field_in<I, V>(pointer: impl Into<String>, allowed: I) -> Arc<dyn Evaluator>
where
    I: IntoIterator<Item = V>,
    V: Into<Value>,
{
    let pointer = pointer.into();
    let allowed: Vec<Value> = allowed.into_iter().map(Into::into).collect();
    assertion(format!("field_in:{pointer}"), move |_, out| {
        let value = match parse_json(&out.text) {
            Ok(v) => v,
            Err(e) => return Score::fail(e),
        };
        match value.pointer(&pointer) {
            None => Score::fail(format!("field `{pointer}` is missing")),
            Some(v) if allowed.contains(v) => Score::pass(format!("`{pointer}` is {v}")),
            Some(v) => Score::fail(format!("`{pointer}` is {v}, not one of the allowed values")),
        }
    })
}

/// Passes when the output contains `needle` (case-sensitive).
pub fn contains(needle: impl Into<String>) -> Arc<dyn Evaluator> {
    let needle = needle.into();
    assertion(format!("contains:{needle}"), move |_, out| {
        Score::check(
            out.text.contains(&needle),
            format!("contains `{needle}`"),
            format!("does not contain `{needle}`"),
        )
    })
}

/// Passes when the output does not contain `needle` (case-insensitive, so a refusal phrase is
/// caught in any casing).
pub fn not_contains(needle: impl Into<String>) -> Arc<dyn Evaluator> {
    let needle = needle.into();
    let lower = needle.to_lowercase();
    assertion(format!("not_contains:{needle}"), move |_, out| {
        Score::check(
            !out.text.to_lowercase().contains(&lower),
            format!("does not contain `{needle}`"),
            format!("contains forbidden `{needle}`"),
        )
    })
}

/// Passes when the output contains every string listed in the case's `metadata[key]` (a
/// string or an array of strings), case-insensitively. Cases without the key pass.
pub fn contains_metadata(key: impl Into<String>) -> Arc<dyn Evaluator> {
    let key = key.into();
    assertion(format!("contains_metadata:{key}"), move |case, out| {
        let wanted: Vec<String> = match case.metadata.get(&key) {
            None => return Score::pass(format!("case has no `{key}`")),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect(),
            Some(other) => vec![other.to_string()],
        };
        let text = out.text.to_lowercase();
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|w| !text.contains(&w.to_lowercase()))
            .collect();
        let found = wanted.len() - missing.len();
        let value = if wanted.is_empty() {
            1.0
        } else {
            found as f64 / wanted.len() as f64
        };
        Score::new(
            value,
            missing.is_empty(),
            if missing.is_empty() {
                format!("contains all {} expected terms", wanted.len())
            } else {
                format!(
                    "missing {}",
                    missing
                        .iter()
                        .map(|m| format!("`{m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        )
    })
}

/// Passes when the regex finds a match. Fails at construction for an invalid pattern.
pub fn matches_regex(pattern: &str) -> Result<Arc<dyn Evaluator>, EvalError> {
    let re = regex::Regex::new(pattern).map_err(|e| {
        EvalError::Config(format!("invalid regex `{pattern}`: {e}").replace('\n', " "))
    })?;
    Ok(assertion(format!("regex:{pattern}"), move |_, out| {
        Score::check(
            re.is_match(&out.text),
            format!("matches /{}/", re.as_str()),
            format!("does not match /{}/", re.as_str()),
        )
    }))
}

/// Passes when the output, trimmed, equals `expected`, trimmed.
pub fn equals(expected: impl Into<String>) -> Arc<dyn Evaluator> {
    let expected = expected.into();
    assertion("equals", move |_, out| {
        Score::check(
            out.text.trim() == expected.trim(),
            "equals the expected text",
            format!("expected `{}`", expected.trim()),
        )
    })
}

/// Passes when the number at `pointer` in the JSON output (or the whole output when the
/// pointer is empty) lies in `min..=max`.
pub fn number_between(pointer: impl Into<String>, min: f64, max: f64) -> Arc<dyn Evaluator> {
    let pointer = pointer.into();
    let label = if pointer.is_empty() {
        "output".to_owned()
    } else {
        format!("`{pointer}`")
    };
    assertion(format!("number_between:{pointer}"), move |_, out| {
        let number = if pointer.is_empty() {
            out.text
                .trim()
                .parse::<f64>()
                .map_err(|_| "output is not a number".to_owned())
        } else {
            parse_json(&out.text).and_then(|v| {
                v.pointer(&pointer)
                    .and_then(Value::as_f64)
                    .ok_or_else(|| format!("{label} is missing or not a number"))
            })
        };
        match number {
            Err(e) => Score::fail(e),
            Ok(n) => Score::check(
                (min..=max).contains(&n),
                format!("{label} = {n} within {min}..={max}"),
                format!("{label} = {n} outside {min}..={max}"),
            ),
        }
    })
}

/// Passes when the target's latency is at most `max`.
pub fn latency_below(max: Duration) -> Arc<dyn Evaluator> {
    assertion("latency", move |_, out| {
        Score::check(
            out.latency <= max,
            format!(
                "latency {} ms within {} ms",
                out.latency.as_millis(),
                max.as_millis()
            ),
            format!(
                "latency {} ms above {} ms",
                out.latency.as_millis(),
                max.as_millis()
            ),
        )
    })
}

/// Passes when the target's cost is known and at most `max_usd`. An unknown cost fails: a
/// bound that cannot be checked must not pass silently.
pub fn cost_below(max_usd: Decimal) -> Arc<dyn Evaluator> {
    assertion("cost", move |_, out| match &out.cost {
        None => Score::fail("cost unknown: the target did not report one"),
        Some(c) => Score::check(
            c.total_usd <= max_usd,
            format!("cost ${} within ${max_usd}", c.total_usd),
            format!("cost ${} above ${max_usd}", c.total_usd),
        ),
    })
}
