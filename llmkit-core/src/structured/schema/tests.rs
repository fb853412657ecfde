//! Every dialect against schemars output, hand-written schemas and arbitrary JSON.

use std::collections::BTreeMap;

use super::openai::is_nullable;
use super::*;
use crate::error::ErrorKind;
use proptest::prelude::*;
use schemars::JsonSchema;
use serde_json::{Map, Value, json};

#[allow(dead_code)]
#[derive(JsonSchema)]
enum Decision {
    Approve,
    Reject,
    Escalate,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct Address {
    street: String,
    city: String,
    zip: Option<String>,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Contact {
    Email { address: String },
    Phone { number: String, ext: Option<u32> },
}

/// A typical extraction target.
#[allow(dead_code)]
#[derive(JsonSchema)]
struct Customer {
    /// Full name.
    name: String,
    age: Option<u8>,
    decision: Decision,
    /// Where the customer lives.
    address: Address,
    /// The address before the last move.
    previous: Option<Address>,
    tags: Vec<String>,
    contacts: Vec<Contact>,
    #[schemars(length(max = 40))]
    nickname: String,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct WithMap {
    scores: BTreeMap<String, f64>,
}

#[allow(dead_code)]
#[derive(JsonSchema)]
struct Tree {
    label: String,
    children: Vec<Tree>,
}

/// Every object node in `v` (outside `$defs` keys themselves).
fn objects(v: &Value, out: &mut Vec<Map<String, Value>>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("properties") {
                out.push(m.clone());
            }
            for (_, c) in m {
                objects(c, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|c| objects(c, out)),
        _ => {}
    }
}

fn keys_anywhere(v: &Value, key: &str) -> bool {
    match v {
        Value::Object(m) => m.contains_key(key) || m.values().any(|c| keys_anywhere(c, key)),
        Value::Array(a) => a.iter().any(|c| keys_anywhere(c, key)),
        _ => false,
    }
}

#[test]
fn openai_strict_requires_everything_and_closes_objects() {
    let schema = schema_for::<Customer>();
    let out = to_dialect(&schema, SchemaDialect::OpenAiStrict).unwrap();
    let mut objs = Vec::new();
    objects(&out.schema, &mut objs);
    assert!(objs.len() >= 4, "{:#}", out.schema);
    for o in &objs {
        assert_eq!(o["additionalProperties"], json!(false), "{o:?}");
        let props: Vec<&String> = o["properties"].as_object().unwrap().keys().collect();
        let req: Vec<&str> = o["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(props.len(), req.len());
    }
    assert!(!keys_anywhere(&out.schema, "oneOf"));
    assert!(!keys_anywhere(&out.schema, "$schema"));
    assert!(keys_anywhere(&out.schema, "$defs"), "defs stay");
    // The optional nested struct may be null; the max length and u8 format were reported.
    assert!(is_nullable(&out.schema["properties"]["previous"]));
    assert!(is_nullable(&out.schema["properties"]["age"]));
    assert!(!is_nullable(&out.schema["properties"]["name"]));
    let kw: Vec<&str> = out.dropped.iter().map(|d| d.keyword.as_str()).collect();
    assert!(kw.contains(&"maxLength"), "{kw:?}");
    assert!(kw.contains(&"format"), "{kw:?}");
    assert!(
        out.dropped
            .iter()
            .any(|d| d.path == "/properties/nickname" && d.keyword == "maxLength")
    );
}

#[test]
fn openai_strict_makes_optional_non_option_fields_nullable() {
    let schema = json!({
        "type": "object",
        "properties": {
            "a": {"type": "string", "enum": ["x", "y"]},
            "b": {"$ref": "#/$defs/B", "description": "bee"},
            "c": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "d": {"type": "integer"}
        },
        "required": ["d"],
        "$defs": {"B": {"type": "object", "properties": {"x": {"type": "boolean"}}, "required": ["x"]}}
    });
    let out = to_dialect(&schema, SchemaDialect::OpenAiStrict)
        .unwrap()
        .schema;
    assert_eq!(out["properties"]["a"]["type"], json!(["string", "null"]));
    assert_eq!(out["properties"]["a"]["enum"], json!(["x", "y", null]));
    assert_eq!(
        out["properties"]["b"],
        json!({"anyOf": [{"$ref": "#/$defs/B"}, {"type": "null"}], "description": "bee"})
    );
    assert_eq!(out["properties"]["c"]["anyOf"][2], json!({"type": "null"}));
    assert_eq!(out["properties"]["d"], json!({"type": "integer"}));
    assert_eq!(out["$defs"]["B"]["additionalProperties"], json!(false));
}

#[test]
fn openai_strict_leaves_nothing_beside_ref() {
    let schema = json!({
        "type": "object",
        "properties": {"b": {"$ref": "#/$defs/B", "description": "bee", "maxLength": 3}},
        "required": ["b"],
        "$defs": {"B": {"type": "string"}}
    });
    let out = to_dialect(&schema, SchemaDialect::OpenAiStrict).unwrap();
    assert_eq!(out.schema["properties"]["b"], json!({"$ref": "#/$defs/B"}));
    assert_eq!(out.dropped.len(), 1, "{:?}", out.dropped);
    assert_eq!(out.dropped[0].keyword, "maxLength");
    // Every `$ref` in a schemars schema ends up alone.
    fn refs_alone(v: &Value) -> bool {
        match v {
            Value::Object(m) if m.contains_key("$ref") => m.len() == 1,
            Value::Object(m) => m.values().all(refs_alone),
            Value::Array(a) => a.iter().all(refs_alone),
            _ => true,
        }
    }
    let out = to_dialect(&schema_for::<Customer>(), SchemaDialect::OpenAiStrict).unwrap();
    assert!(refs_alone(&out.schema), "{:#}", out.schema);
}

#[test]
fn openai_strict_rejects_maps_and_non_object_roots() {
    let err = to_dialect(&schema_for::<WithMap>(), SchemaDialect::OpenAiStrict).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.message().contains("/properties/scores"), "{err}");
    assert!(err.message().contains("map"), "{err}");

    let err = to_dialect(&schema_for::<Vec<String>>(), SchemaDialect::OpenAiStrict).unwrap_err();
    assert!(err.message().contains("wrap the type in a struct"), "{err}");
    let err = to_dialect(&schema_for::<Decision>(), SchemaDialect::Anthropic).unwrap_err();
    assert!(err.message().starts_with("anthropic schema"), "{err}");
}

#[test]
fn openai_strict_enforces_nesting_limit() {
    let mut schema =
        json!({"type": "object", "properties": {"leaf": {"type": "string"}}, "required": ["leaf"]});
    for _ in 0..OPENAI_MAX_DEPTH {
        schema = json!({"type": "object", "properties": {"n": schema}, "required": ["n"]});
    }
    let err = to_dialect(&schema, SchemaDialect::OpenAiStrict).unwrap_err();
    assert!(err.message().contains("levels of object nesting"), "{err}");
    // One level less is fine.
    let ok = schema["properties"]["n"].clone();
    to_dialect(&ok, SchemaDialect::OpenAiStrict).unwrap();
}

#[test]
fn openai_strict_allows_recursion_through_defs() {
    let out = to_dialect(&schema_for::<Tree>(), SchemaDialect::OpenAiStrict).unwrap();
    assert!(keys_anywhere(&out.schema, "$ref"));
}

#[test]
fn anthropic_keeps_the_schema() {
    let schema = schema_for::<Customer>();
    let out = to_dialect(&schema, SchemaDialect::Anthropic).unwrap();
    assert!(out.dropped.is_empty());
    assert_eq!(out.schema["properties"], schema["properties"]);
    assert!(out.schema.get("$schema").is_none());
}

#[test]
fn gemini_inlines_refs_and_uses_nullable() {
    let out = to_dialect(&schema_for::<Customer>(), SchemaDialect::Gemini).unwrap();
    let s = &out.schema;
    assert!(!keys_anywhere(s, "$ref"), "{s:#}");
    assert!(!keys_anywhere(s, "$defs"));
    assert!(!keys_anywhere(s, "additionalProperties"));
    assert!(!keys_anywhere(s, "oneOf"));
    assert_eq!(s["type"], "OBJECT");
    assert_eq!(s["properties"]["age"]["type"], "INTEGER");
    assert_eq!(s["properties"]["age"]["nullable"], true);
    assert_eq!(s["properties"]["previous"]["nullable"], true);
    assert_eq!(s["properties"]["previous"]["type"], "OBJECT");
    assert_eq!(
        s["properties"]["address"]["properties"]["city"]["type"],
        "STRING"
    );
    assert_eq!(
        s["properties"]["decision"]["enum"],
        json!(["Approve", "Reject", "Escalate"])
    );
    assert_eq!(s["properties"]["name"]["description"], "Full name.");
    assert_eq!(
        s["properties"]["address"]["description"],
        "Where the customer lives."
    );
    assert_eq!(s["properties"]["nickname"]["maxLength"], 40);
    // Internally tagged enum: `const` tags become single-value enums.
    let contact = &s["properties"]["contacts"]["items"]["anyOf"];
    assert_eq!(contact[0]["properties"]["kind"]["enum"], json!(["email"]));
}

#[test]
fn gemini_rejects_recursion_and_maps_lose_additional_properties() {
    let err = to_dialect(&schema_for::<Tree>(), SchemaDialect::Gemini).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.message().contains("recursive reference"), "{err}");
    let out = to_dialect(&schema_for::<WithMap>(), SchemaDialect::Gemini).unwrap();
    assert!(
        out.dropped
            .iter()
            .any(|d| d.keyword == "additionalProperties" && d.path == "/properties/scores")
    );
}

#[test]
fn ollama_and_prompt_only_keep_the_schema() {
    let schema = schema_for::<WithMap>();
    let o = to_dialect(&schema, SchemaDialect::Ollama).unwrap();
    assert_eq!(o.schema["properties"], schema["properties"]);
    assert!(o.schema.get("$schema").is_none());
    let p = to_dialect(&schema, SchemaDialect::PromptOnly).unwrap();
    assert_eq!(p.schema, schema);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "object",
            "array",
            "string",
            "null",
            "integer",
            "#/$defs/A",
            "#/$defs/B",
            "#/definitions/A",
            "x"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "type",
                    "properties",
                    "required",
                    "items",
                    "anyOf",
                    "oneOf",
                    "allOf",
                    "$ref",
                    "$defs",
                    "definitions",
                    "enum",
                    "const",
                    "format",
                    "additionalProperties",
                    "nullable",
                    "A",
                    "B",
                    "minLength"
                ])
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn no_dialect_panics_on_arbitrary_json(v in arb_json()) {
        for d in [
            SchemaDialect::OpenAiStrict,
            SchemaDialect::Anthropic,
            SchemaDialect::Gemini,
            SchemaDialect::Ollama,
            SchemaDialect::PromptOnly,
        ] {
            let _ = to_dialect(&v, d);
        }
    }
}
