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
///
/// The hash is fed straight from serde into SHA-256 (no JSON tree, no buffer) whenever
/// serde_json's maps are sorted, which they are unless some crate in the build enables its
/// `preserve_order` feature; then the slower path that sorts every object's keys runs instead,
/// so two schemas that differ only in key order still share a key. The two paths hash different
/// bytes (`"v": 2` and `"v": 1`), so a build switching between them starts with a cold cache
/// rather than mixing forms.
pub fn cache_key(info: &ModelInfo, request: &ChatRequest, scope_by_tenant: bool) -> CacheKey {
    let digest = if serde_maps_are_sorted() {
        streamed_digest(info, request, scope_by_tenant)
    } else {
        canonical_digest(info, request, scope_by_tenant)
    };
    CacheKey(crate::hex::encode(digest))
}

/// Whether `serde_json::Map` iterates in key order in this build (it does unless a crate turns
/// on serde_json's `preserve_order`, which Cargo's feature unification applies to everyone).
fn serde_maps_are_sorted() -> bool {
    static SORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SORTED.get_or_init(|| {
        let mut map = serde_json::Map::new();
        map.insert("b".to_owned(), serde_json::Value::Null);
        map.insert("a".to_owned(), serde_json::Value::Null);
        map.keys().next().is_some_and(|k| k == "a")
    })
}

/// Lets serde write JSON straight into the hasher.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the streamed key hashes: the answer-changing fields of the request, borrowed.
#[derive(serde::Serialize)]
struct KeyView<'a> {
    v: u8,
    provider: &'a str,
    model: &'a str,
    messages: &'a [crate::message::Message],
    temperature: Option<f32>,
    top_p: Option<f32>,
    max_tokens: Option<u32>,
    stop: &'a [String],
    seed: Option<u64>,
    tools: &'a [crate::message::ToolDefinition],
    tool_choice: Option<&'a crate::message::ToolChoice>,
    response_format: &'a crate::request::ResponseFormat,
    prompt: Option<&'a crate::request::PromptRef>,
    tenant: Option<&'a str>,
}

fn streamed_digest(
    info: &ModelInfo,
    request: &ChatRequest,
    scope_by_tenant: bool,
) -> sha2::digest::Output<Sha256> {
    // Exhaustive on purpose: a field added to `ChatRequest` must be classified here as
    // answer-changing (hashed) or not, or the build fails; a silently unhashed field would
    // serve one request's cached answer to another.
    let ChatRequest {
        model,
        messages,
        temperature,
        top_p,
        max_tokens,
        stop,
        seed,
        tools,
        tool_choice,
        response_format,
        meta,
    } = request;
    let view = KeyView {
        v: 2,
        provider: &info.provider,
        model: model.as_deref().unwrap_or(&info.model),
        messages,
        temperature: *temperature,
        top_p: *top_p,
        max_tokens: *max_tokens,
        stop,
        seed: *seed,
        tools,
        tool_choice: tool_choice.as_ref(),
        response_format,
        prompt: meta.prompt.as_ref(),
        tenant: if scope_by_tenant {
            meta.tenant.as_deref()
        } else {
            None
        },
    };
    let mut hasher = Sha256::new();
    // Writing into a hasher cannot fail and these types always serialize.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), &view);
    hasher.finalize()
}

/// The order-insensitive form: the request as a JSON tree, every object's keys sorted.
fn canonical_digest(
    info: &ModelInfo,
    request: &ChatRequest,
    scope_by_tenant: bool,
) -> sha2::digest::Output<Sha256> {
    // Serialize the request by reference instead of cloning it: the canonical form is the
    // request without `model` (absent when `None`) and with default metadata (`{}`).
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
    Sha256::digest(&text)
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
    fn canonical_path_matches_the_reference_implementation() {
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
                let digest = canonical_digest(&info, &req, scoped);
                let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(hex, reference_key(&info, &req, scoped));
            }
        }
    }

    /// The streamed and the canonical path must agree on which requests share a key.
    #[test]
    fn streamed_and_canonical_paths_group_requests_alike() {
        assert!(
            serde_maps_are_sorted(),
            "this build's serde_json keeps insertion order"
        );
        let info = ModelInfo::new("openai", "gpt-4o-mini");
        let schema = |first: &str, second: &str| crate::request::ResponseFormat::JsonSchema {
            name: "v".into(),
            schema: serde_json::json!({"type": "object", "properties": {first: {}, second: {}}}),
            strict: true,
        };
        let mut requests = vec![
            ChatRequest::user("hi"),
            ChatRequest::user("hi").with_temperature(0.0),
            ChatRequest::user("hi").with_temperature(0.5),
            ChatRequest::user("hi").with_model("gpt-4o"),
            ChatRequest::user("hi").with_model("gpt-4o-mini"),
            ChatRequest::user("hello"),
            ChatRequest::user("hi").with_max_tokens(5),
        ];
        let mut ordered = ChatRequest::user("hi");
        ordered.response_format = schema("a", "z");
        requests.push(ordered);
        let mut reordered = ChatRequest::user("hi");
        reordered.response_format = schema("z", "a");
        requests.push(reordered);
        let mut with_id = ChatRequest::user("hi");
        with_id.meta.request_id = Some("r-1".into());
        with_id.meta.tenant = Some("acme".into());
        requests.push(with_id);
        for scoped in [false, true] {
            for a in &requests {
                for b in &requests {
                    let streamed =
                        streamed_digest(&info, a, scoped) == streamed_digest(&info, b, scoped);
                    let canonical =
                        canonical_digest(&info, a, scoped) == canonical_digest(&info, b, scoped);
                    assert_eq!(streamed, canonical, "{a:?} vs {b:?} (scoped: {scoped})");
                }
            }
        }
        // The model the request names and the configured one are the same model.
        assert_eq!(
            cache_key(&info, &requests[0], false),
            cache_key(&info, &requests[4], false)
        );
        assert_ne!(
            cache_key(&info, &requests[0], false),
            cache_key(&info, &requests[3], false)
        );
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
