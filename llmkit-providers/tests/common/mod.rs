//! Helpers shared by the integration tests: the shared third-party fixtures and the OpenAI
//! OpenAPI request validator.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

/// The shared provider fixtures folder for `provider`: `$LLMKIT_SHARED_FIXTURES/<provider>`, or
/// the first `shared/fixtures/providers/<provider>` above the crate (the repository's
/// `../shared`). `None` after a loud notice when absent: fresh clones do not have it.
pub fn shared_fixtures(provider: &str) -> Option<PathBuf> {
    // An explicit setting is authoritative (and lets CI prove the skip path works).
    let found = match std::env::var_os("LLMKIT_SHARED_FIXTURES") {
        Some(base) => Some(PathBuf::from(base).join(provider)).filter(|p| p.is_dir()),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|a| a.join("shared/fixtures/providers").join(provider))
            .find(|p| p.is_dir()),
    };
    if found.is_none() {
        eprintln!(
            "SKIPPED: ../shared/fixtures not found (no shared/fixtures/providers/{provider} above {}; set LLMKIT_SHARED_FIXTURES)",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    found
}

/// This crate's own fixture file.
pub fn own_fixture(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Validates a Chat Completions request body against `CreateChatCompletionRequest` from the
/// official OpenAPI spec in the shared fixtures. `Ok(false)` when the spec is absent (skipped,
/// loudly, once).
pub fn validate_chat_request(body: &serde_json::Value) -> Result<bool, String> {
    static VALIDATOR: OnceLock<Option<jsonschema::Validator>> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let dir = shared_fixtures("openai")?;
        let text = std::fs::read_to_string(dir.join("openapi.yaml"))
            .ok()
            .or_else(|| {
                eprintln!("SKIPPED: openapi.yaml not found in {}", dir.display());
                None
            })?;
        // The spec writes the `seed` bounds as ±9223372036854776000, beyond i64/u64: read every
        // such integer as a float, which is what a JSON Schema validator compares anyway.
        let text: String = text
            .lines()
            .map(|line| {
                let value = line.rsplit(": ").next().unwrap_or("").trim();
                let digits = value.trim_start_matches('-');
                if digits.len() >= 19 && digits.bytes().all(|b| b.is_ascii_digit()) {
                    format!("{line}.0\n")
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&text).expect("openapi.yaml parses");
        let spec = yaml_to_json(yaml);
        let schema = serde_json::json!({
            "$ref": "#/components/schemas/CreateChatCompletionRequest",
            "components": spec["components"],
        });
        Some(
            jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .build(&schema)
                .expect("CreateChatCompletionRequest compiles"),
        )
    });
    let Some(validator) = validator else {
        return Ok(false);
    };
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(true)
    } else {
        Err(format!(
            "request violates CreateChatCompletionRequest: {}",
            errors.join("; ")
        ))
    }
}

/// YAML to JSON (mapping keys that are not strings become their YAML text).
fn yaml_to_json(v: serde_yaml_ng::Value) -> serde_json::Value {
    use serde_json::Value as J;
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Null => J::Null,
        Y::Bool(b) => J::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                J::from(i)
            } else if let Some(u) = n.as_u64() {
                J::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(J::Null, J::Number)
            }
        }
        Y::String(s) => J::String(s),
        Y::Sequence(items) => J::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => J::Object(
            map.into_iter()
                .filter_map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        other => serde_yaml_ng::to_string(&other).ok()?.trim().to_owned(),
                    };
                    Some((key, yaml_to_json(v)))
                })
                .collect(),
        ),
        Y::Tagged(t) => yaml_to_json(t.value),
    }
}
