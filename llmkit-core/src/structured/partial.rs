//! Partial objects from a reply that is still streaming.
//!
//! [`partial_json`] closes what is open in a JSON prefix (strings, arrays, objects) and drops a
//! trailing fragment that cannot be completed (a half-written key, `tru`, a dangling `,`), so a
//! UI can show fields as they arrive. It never invents values: a key without a value is left
//! out, and a string is shown as far as it has arrived.

use serde_json::Value;

/// How many cut points are tried before giving up; each try is one parse of the prefix.
const MAX_BACKOFF: usize = 8;

/// The best-effort value of a JSON **prefix** starting at its first `{` or `[`, or `None` when
/// nothing usable has arrived yet.
///
/// ```
/// use llmkit_core::structured::partial_json;
/// use serde_json::json;
/// let so_far = r#"Here: {"decision": "approve", "reasons": ["unopened", "within 30 da"#;
/// assert_eq!(
///     partial_json(so_far),
///     Some(json!({"decision": "approve", "reasons": ["unopened", "within 30 da"]}))
/// );
/// assert_eq!(partial_json(r#"{"decision": "appr"#), Some(json!({"decision": "appr"})));
/// assert_eq!(partial_json(r#"{"decision"#), Some(json!({})));
/// ```
pub fn partial_json(text: &str) -> Option<Value> {
    let start = text.find(['{', '['])?;
    let body = text.get(start..)?;
    let scan = Scan::of(body);
    if let Some(end) = scan.complete_at {
        return serde_json::from_str(body.get(..end)?).ok();
    }
    // Cut points, most recent first: the whole prefix, then before each structural comma and
    // after each opener.
    let mut cuts = vec![body.len()];
    cuts.extend(scan.cuts.iter().rev());
    for &cut in cuts.iter().take(MAX_BACKOFF) {
        let Some(prefix) = body.get(..cut) else {
            continue;
        };
        let state = Scan::of(prefix);
        let mut candidate = prefix.trim_end().to_owned();
        if state.in_string {
            if state.escaped {
                candidate.pop();
            }
            candidate.push('"');
        }
        for open in state.stack.iter().rev() {
            candidate.push(if *open == '{' { '}' } else { ']' });
        }
        if let Ok(v) = serde_json::from_str::<Value>(&candidate) {
            return Some(v);
        }
    }
    None
}

#[derive(Default)]
struct Scan {
    stack: Vec<char>,
    in_string: bool,
    escaped: bool,
    /// Byte offsets where the prefix can be cut: just before a `,` and just after `{`/`[`.
    cuts: Vec<usize>,
    /// Where the first top-level value ended, when it did.
    complete_at: Option<usize>,
}

impl Scan {
    fn of(text: &str) -> Scan {
        let mut s = Scan::default();
        for (i, c) in text.char_indices() {
            if s.in_string {
                if s.escaped {
                    s.escaped = false;
                } else if c == '\\' {
                    s.escaped = true;
                } else if c == '"' {
                    s.in_string = false;
                }
                continue;
            }
            match c {
                '"' => s.in_string = true,
                '{' | '[' => {
                    s.stack.push(c);
                    s.cuts.push(i + 1);
                }
                '}' | ']' => {
                    s.stack.pop();
                    if s.stack.is_empty() {
                        s.complete_at = Some(i + 1);
                        return s;
                    }
                }
                ',' => s.cuts.push(i),
                _ => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn every_prefix_of_a_reply_gives_a_growing_view() {
        let full = r#"{"decision": "approve", "confidence": 0.92, "reasons": ["clause 1", "clause \"2\""], "extra": {"a": [1, 2]}}"#;
        let mut last_keys = 0;
        for end in 1..=full.len() {
            let Some(prefix) = full.get(..end) else {
                continue;
            };
            if let Some(Value::Object(m)) = partial_json(prefix) {
                assert!(m.len() + 1 >= last_keys, "{prefix}");
                last_keys = m.len();
            }
        }
        assert_eq!(
            partial_json(full),
            Some(serde_json::from_str(full).unwrap())
        );
        assert_eq!(
            partial_json(r#"{"confidence": 0.9, "reasons": ["a"#),
            Some(json!({"confidence": 0.9, "reasons": ["a"]}))
        );
        assert_eq!(partial_json(r#"{"ok": tru"#), Some(json!({})));
        assert_eq!(partial_json("no json"), None);
    }

    proptest! {
        #[test]
        fn never_panics(text in any::<String>()) {
            let _ = partial_json(&text);
        }

        #[test]
        fn prefixes_of_json_never_panic_and_full_text_round_trips(
            v in prop::collection::btree_map("[a-z]{1,4}", prop_oneof![
                any::<i32>().prop_map(|n| json!(n)),
                ".{0,8}".prop_map(Value::String),
                prop::collection::vec(any::<bool>(), 0..3).prop_map(|b| json!(b)),
            ], 0..5),
            cut in any::<prop::sample::Index>(),
        ) {
            let v = Value::Object(v.into_iter().collect());
            let text = v.to_string();
            let boundaries: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
            let at = boundaries.get(cut.index(boundaries.len().max(1))).copied().unwrap_or(0);
            let _ = partial_json(&text[..at]);
            prop_assert_eq!(partial_json(&text), Some(v));
        }
    }
}
