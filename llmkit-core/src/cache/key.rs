//! Cache keys: a canonical hash of everything that changes the answer, and nothing else.

use sha2::{Digest, Sha256};

use crate::model::ModelInfo;
use crate::request::ChatRequest;

/// A response-cache key: hex SHA-256 of the canonical form of a request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(pub String);

impl std::fmt::Display for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Writes `value` as JSON with object keys sorted at every depth and no insignificant
/// whitespace, so two schemas that differ only in field order or formatting hash the same
/// (serde_json keeps insertion order when any crate in the build enables `preserve_order`).
pub fn canonical_json(value: &serde_json::Value, out: &mut String) {
    let mut bytes = std::mem::take(out).into_bytes();
    write_canonical(value, &mut bytes);
    // Only whole JSON tokens were written, so the bytes are UTF-8; the lossy path never runs.
    *out = String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
}

/// Writes a JSON scalar or string (escaped as serde_json does) without an intermediate
/// `String`: keys and leaves used to cost one allocation each.
fn write_token<T: serde::Serialize + ?Sized>(token: &T, out: &mut Vec<u8>) {
    // Writing to a Vec cannot fail and these values always serialize.
    let _ = serde_json::to_writer(&mut *out, token);
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_token(k.as_str(), out);
                out.push(b':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out);
                }
            }
            out.push(b'}');
        }
        serde_json::Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        other => write_token(other, out),
    }
}

/// Computes the key of `request` sent to the model described by `info`.
///
/// Included: provider, model (the request's or the configured one), messages, tools, tool
/// choice, response format and schema, sampling parameters (temperature, top_p, max tokens,
/// stop, seed) and the prompt reference (id, version, hash). Excluded: request id, idempotency
/// key, tags, user, context ids, deadline and the `no_cache` flag — they do not change the answer.
/// The tenant is included only when `scope_by_tenant` is set.
pub fn cache_key(info: &ModelInfo, request: &ChatRequest, scope_by_tenant: bool) -> CacheKey {
    // Serialize the request by reference instead of cloning it: the canonical form is the
    // request without `model` (absent when `None`) and with default metadata (`{}`), exactly
    // what serializing a clone with those fields reset produced, so keys are unchanged.
    let mut canon = serde_json::to_value(request).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut canon {
        map.remove("model");
        map.insert(
            "meta".to_owned(),
            serde_json::Value::Object(serde_json::Map::new()),
        );
    }
    let model = request.model.as_deref().unwrap_or(&info.model);
    let tenant = if scope_by_tenant {
        request.meta.tenant.as_deref()
    } else {
        None
    };
    let value = serde_json::json!({
        "v": 1,
        "provider": info.provider,
        "model": model,
        "request": canon,
        "prompt": request.meta.prompt,
        "tenant": tenant,
    });
    let mut text = Vec::with_capacity(512);
    write_canonical(&value, &mut text);
    let digest = Sha256::digest(&text);
    let mut hex = String::with_capacity(64);
    for b in digest {
        // Two pushes per byte instead of a `format!` (one allocation) per byte.
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 0x0f), 16).unwrap_or('0'));
    }
    CacheKey(hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::PromptRef;

    /// The previous implementation (clone, reset, `to_string` per token, `format!` per hex
    /// byte), kept to prove the faster one computes the very same keys.
    fn reference_key(info: &ModelInfo, request: &ChatRequest, scope_by_tenant: bool) -> String {
        fn canon_ref(value: &serde_json::Value, out: &mut String) {
            match value {
                serde_json::Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    out.push('{');
                    for (i, k) in keys.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&serde_json::Value::String(k.clone()).to_string());
                        out.push(':');
                        canon_ref(&map[k], out);
                    }
                    out.push('}');
                }
                serde_json::Value::Array(items) => {
                    out.push('[');
                    for (i, v) in items.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        canon_ref(v, out);
                    }
                    out.push(']');
                }
                other => out.push_str(&other.to_string()),
            }
        }
        let mut canon = request.clone();
        let model = canon.model.take().unwrap_or_else(|| info.model.clone());
        let prompt = canon.meta.prompt.take();
        let tenant = if scope_by_tenant {
            canon.meta.tenant.take()
        } else {
            None
        };
        canon.meta = Default::default();
        let value = serde_json::json!({
            "v": 1, "provider": info.provider, "model": model, "request": canon,
            "prompt": prompt, "tenant": tenant,
        });
        let mut text = String::new();
        canon_ref(&value, &mut text);
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn keys_match_the_reference_implementation() {
        let info = ModelInfo::new("openai", "gpt-4o-mini");
        let mut full = ChatRequest::new(vec![
            crate::message::Message::system("Be brief. \"quoted\" \u{e9}\n"),
            crate::message::Message::user("Capital of France?"),
        ])
        .with_temperature(0.25)
        .with_max_tokens(64);
        full.model = Some("gpt-4o".into());
        full.stop = vec!["END".into()];
        full.seed = Some(7);
        full.meta.tenant = Some("acme".into());
        full.meta.request_id = Some("req-1".into());
        full.meta.no_cache = true;
        full.meta.tags.insert("cache".into(), "on".into());
        full.meta.prompt = Some(PromptRef {
            id: "refund".into(),
            version: "3".into(),
            hash: "abc".into(),
        });
        full.response_format = crate::request::ResponseFormat::JsonSchema {
            name: "v".into(),
            schema: serde_json::json!({"type": "object", "properties": {"z": {}, "a": {}}}),
            strict: true,
        };
        for req in [ChatRequest::user("hi"), full] {
            for scoped in [false, true] {
                assert_eq!(
                    cache_key(&info, &req, scoped).0,
                    reference_key(&info, &req, scoped)
                );
            }
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_escapes() {
        let v = serde_json::json!({"b": [1, 2.5, "x\"y"], "a": {"d": null, "c": true}});
        let mut out = String::from("prefix:");
        canonical_json(&v, &mut out);
        assert_eq!(
            out,
            r#"prefix:{"a":{"c":true,"d":null},"b":[1,2.5,"x\"y"]}"#
        );
    }
}
