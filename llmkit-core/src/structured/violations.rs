//! How a JSON Schema violation reads, in one place: `pointer: message` on one bounded line. The
//! re-ask prompt of [`Structured`](super::Structured) and llmkit-guard's schema guard and action
//! gate all show violations this way.

use serde_json::Value;

/// Longest message kept per violation: `jsonschema` messages quote the offending instance, and
/// a whole document echoed back would crowd the re-ask.
pub(crate) const MAX_ERROR_CHARS: usize = 240;

/// Up to `max` violations of `instance`, each `pointer: message` (`/` for the root), on one
/// line of at most 240 message characters.
///
/// ```
/// use llmkit_core::structured::violations;
/// let schema = serde_json::json!({"type": "object", "required": ["id"], "properties": {"n": {"type": "integer"}}});
/// let validator = jsonschema::validator_for(&schema).unwrap();
/// let found = violations(&validator, &serde_json::json!({"n": "x"}), 10);
/// assert_eq!(found.len(), 2);
/// assert!(found.iter().any(|v| v.starts_with("/n: ")));
/// assert!(found.iter().any(|v| v.starts_with("/: ")));
/// ```
pub fn violations(validator: &jsonschema::Validator, instance: &Value, max: usize) -> Vec<String> {
    validator
        .iter_errors(instance)
        .take(max)
        .map(|e| {
            let path = e.instance_path().to_string();
            let path = if path.is_empty() { "/" } else { &path };
            format!("{path}: {}", clip(&e.to_string(), MAX_ERROR_CHARS))
        })
        .collect()
}

/// `s` on one line, cut at `max` characters with `…`.
pub(crate) fn clip(s: &str, max: usize) -> String {
    let one_line = s.replace(['\n', '\r'], " ");
    match one_line.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", one_line.get(..i).unwrap_or_default()),
        None => one_line,
    }
}
