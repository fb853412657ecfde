//! Finding JSON in what models actually return.
//!
//! Real replies wrap the object in a markdown fence, put prose before or after it, or offer
//! several candidates ("Here is a draft: {...} and the final answer: {...}"). [`json_candidates`]
//! returns every JSON object or array embedded in a text, in order; the caller validates them
//! against the schema and keeps the first that passes.
//!
//! The scan tries a parse at each `{` or `[` and, after a success, jumps past the value, so text
//! inside an accepted object is never offered twice. A failed start costs at most a parse up to
//! the point where the text stops being JSON; worst case is quadratic in the reply length,
//! which for model replies (kilobytes) is microseconds.

use serde_json::Value;

/// Every JSON object or array embedded in `text`, in order of appearance.
///
/// A text that is itself valid JSON (after trimming) is returned as the single candidate, even
/// when it is a string or a number.
///
/// ```
/// use llmkit_core::structured::json_candidates;
/// let reply = "Sure! Here is the verdict:\n```json\n{\"decision\": \"approve\"}\n```\nAnything else?";
/// let found = json_candidates(reply);
/// assert_eq!(found, vec![serde_json::json!({"decision": "approve"})]);
/// ```
pub fn json_candidates(text: &str) -> Vec<Value> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        return vec![v];
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rel) = text.get(pos..).and_then(|rest| rest.find(['{', '['])) {
        let start = pos + rel;
        let Some(rest) = text.get(start..) else { break };
        let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
        match stream.next() {
            Some(Ok(value)) => {
                out.push(value);
                pos = start + stream.byte_offset().max(1);
            }
            // `{` and `[` are one byte, so `start + 1` is a char boundary.
            _ => pos = start + 1,
        }
    }
    out
}

/// Whether `text` ends inside an unclosed JSON object or array, as a reply cut off by a token
/// limit does. Used to word the error when no candidate was found.
pub fn looks_truncated(text: &str) -> bool {
    let mut depth: i64 = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut opened = false;
    for c in text.chars() {
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' if depth > 0 => in_string = true,
            '{' | '[' => {
                depth += 1;
                opened = true;
            }
            '}' | ']' => depth = (depth - 1).max(0),
            _ => {}
        }
    }
    opened && depth > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn finds_objects_in_fences_prose_and_pairs() {
        assert_eq!(json_candidates(r#"{"a":1}"#), vec![json!({"a":1})]);
        assert_eq!(
            json_candidates("```json\n{\"a\": [1, 2]}\n```"),
            vec![json!({"a": [1, 2]})]
        );
        assert_eq!(
            json_candidates("Let me think {not json}. Draft: {\"a\":1} final: {\"a\":2} done"),
            vec![json!({"a":1}), json!({"a":2})]
        );
        // Braces inside strings do not confuse the scan.
        assert_eq!(
            json_candidates(r#"x {"t": "a } b {"} y"#),
            vec![json!({"t": "a } b {"})]
        );
        assert!(json_candidates("no json here").is_empty());
        assert!(json_candidates(r#"{"decision": "approve", "confid"#).is_empty());
    }

    #[test]
    fn truncation_is_detected() {
        assert!(looks_truncated(r#"{"decision": "approve", "confid"#));
        assert!(looks_truncated("```json\n{\"a\": [1, 2"));
        assert!(!looks_truncated(r#"{"a": "}"}"#));
        assert!(!looks_truncated("plain prose"));
    }

    fn arb_object() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        let value = leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop::collection::btree_map("[a-z]{1,6}", value, 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    proptest! {
        #[test]
        fn never_panics(text in any::<String>()) {
            let _ = json_candidates(&text);
            let _ = looks_truncated(&text);
        }

        #[test]
        fn never_panics_on_json_like_text(text in r#"[\{\}\[\]":,a-z0-9\\ \n`]{0,200}"#) {
            let _ = json_candidates(&text);
            let _ = looks_truncated(&text);
        }

        #[test]
        fn embedded_object_is_found(
            obj in arb_object(),
            before in "[^{\\[]{0,60}",
            after in ".{0,60}",
            fence in any::<bool>(),
            pretty in any::<bool>(),
        ) {
            let body = if pretty {
                serde_json::to_string_pretty(&obj).unwrap()
            } else {
                obj.to_string()
            };
            let text = if fence {
                format!("{before}\n```json\n{body}\n```\n{after}")
            } else {
                format!("{before}{body}{after}")
            };
            let found = json_candidates(&text);
            prop_assert!(found.contains(&obj), "{text:?} -> {found:?}");
        }
    }
}
