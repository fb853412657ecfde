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
                if let Some(v) = map.get(k) {
                    canonical_json(v, out);
                }
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
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
        "v": 1,
        "provider": info.provider,
        "model": model,
        "request": canon,
        "prompt": prompt,
        "tenant": tenant,
    });
    let mut text = String::with_capacity(256);
    canonical_json(&value, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    CacheKey(hex)
}
