//! llmkit-local's embedding model: loading errors and the forward pass on a tiny generated
//! model (offline), and all-MiniLM-L6-v2 against reference vectors computed by the PyPI wheel's
//! sentence-transformers (`tests/data/minilm-reference.json`, written by
//! `scripts/minilm-reference.py`) when the real weights are provisioned.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{Device, Tensor};
use llmkit_core::{EmbeddingModel, EmbeddingRequest, ErrorKind};
use llmkit_local::{LocalEmbeddingModel, LocalError};

/// The directory of the real all-MiniLM-L6-v2 files. Tests needing it are
/// `#[ignore = "needs …"]`; when they run, a missing directory fails them (never a skip).
fn minilm_dir() -> PathBuf {
    match std::env::var("LLMKIT_MINILM_DIR") {
        Ok(v) if !v.is_empty() => PathBuf::from(v),
        _ => panic!(
            "LLMKIT_MINILM_DIR is not set: this test needs the all-MiniLM-L6-v2 weights; run \
             `scripts/test-services.sh up && source .cache/services/env` (or scripts/fetch-minilm.sh)"
        ),
    }
}

const VOCAB: &[&str] = &[
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "where",
    "is",
    "my",
    "parcel",
    "ignore",
    "all",
    "previous",
    "instructions",
    "?",
    ".",
    "##s",
];

/// A WordPiece tokenizer.json over [`VOCAB`] shaped like MiniLM's.
fn tokenizer_json() -> String {
    let vocab: serde_json::Map<String, serde_json::Value> = VOCAB
        .iter()
        .enumerate()
        .map(|(i, w)| ((*w).to_owned(), serde_json::json!(i)))
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": 128, "strategy": "LongestFirst", "stride": 0},
        "padding": null,
        "added_tokens": [],
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true, "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}, {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}, "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##", "max_input_chars_per_word": 100, "vocab": vocab}
    })
    .to_string()
}

const HIDDEN: usize = 8;

/// Writes a tiny random BERT (hidden 8, 2 heads, 1 layer, max 16 positions) into `dir`.
fn write_tiny_model(dir: &Path) {
    let config = serde_json::json!({
        "vocab_size": VOCAB.len(), "hidden_size": HIDDEN, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "max_position_embeddings": 16,
        "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("tokenizer.json"), tokenizer_json()).unwrap();
    let dev = Device::Cpu;
    let mut t: HashMap<String, Tensor> = HashMap::new();
    let mut add = |name: &str, shape: &[usize]| {
        let v = Tensor::randn(0f32, 0.5, shape, &dev).unwrap();
        t.insert(name.to_owned(), v);
    };
    let v = VOCAB.len();
    add("embeddings.word_embeddings.weight", &[v, HIDDEN]);
    add("embeddings.position_embeddings.weight", &[16, HIDDEN]);
    add("embeddings.token_type_embeddings.weight", &[2, HIDDEN]);
    add("embeddings.LayerNorm.weight", &[HIDDEN]);
    add("embeddings.LayerNorm.bias", &[HIDDEN]);
    let l = "encoder.layer.0";
    for p in [
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
    ] {
        add(&format!("{l}.{p}.weight"), &[HIDDEN, HIDDEN]);
        add(&format!("{l}.{p}.bias"), &[HIDDEN]);
    }
    add(&format!("{l}.attention.output.LayerNorm.weight"), &[HIDDEN]);
    add(&format!("{l}.attention.output.LayerNorm.bias"), &[HIDDEN]);
    add(&format!("{l}.intermediate.dense.weight"), &[16, HIDDEN]);
    add(&format!("{l}.intermediate.dense.bias"), &[16]);
    add(&format!("{l}.output.dense.weight"), &[HIDDEN, 16]);
    add(&format!("{l}.output.dense.bias"), &[HIDDEN]);
    add(&format!("{l}.output.LayerNorm.weight"), &[HIDDEN]);
    add(&format!("{l}.output.LayerNorm.bias"), &[HIDDEN]);
    candle_core::safetensors::save(&t, dir.join("model.safetensors")).unwrap();
    std::fs::write(
        dir.join("sentence_bert_config.json"),
        r#"{"max_seq_length": 6}"#,
    )
    .unwrap();
}

fn tiny() -> (tempfile::TempDir, LocalEmbeddingModel) {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path());
    let model = LocalEmbeddingModel::load(dir.path()).unwrap();
    (dir, model)
}

fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[test]
fn a_missing_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = LocalEmbeddingModel::load(dir.path()).unwrap_err();
    assert!(
        matches!(&err, LocalError::MissingFile { path } if path == &dir.path().join("config.json")),
        "{err:?}"
    );
    write_tiny_model(dir.path());
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = LocalEmbeddingModel::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    let core: llmkit_core::Error = err.into();
    assert_eq!(core.kind(), ErrorKind::Config);
}

#[test]
fn a_corrupt_file_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    write_tiny_model(dir.path());
    // A truncated download.
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = LocalEmbeddingModel::load(dir.path()).unwrap_err();
    assert!(
        matches!(&err, LocalError::Corrupt { path, .. } if path == &weights),
        "{err:?}"
    );
    // A tensor missing from otherwise valid weights.
    write_tiny_model(dir.path());
    let mut t = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    t.remove("encoder.layer.0.output.dense.weight");
    candle_core::safetensors::save(&t, &weights).unwrap();
    let err = LocalEmbeddingModel::load(dir.path()).unwrap_err();
    assert!(
        matches!(&err, LocalError::Corrupt { path, .. } if path == &weights),
        "{err:?}"
    );
    assert!(err.to_string().contains("output.dense.weight"), "{err}");
    // A tokenizer that is not JSON.
    write_tiny_model(dir.path());
    std::fs::write(dir.path().join("tokenizer.json"), "<html>").unwrap();
    let err = LocalEmbeddingModel::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
    // A configuration this loader does not run.
    write_tiny_model(dir.path());
    let cfg = dir.path().join("config.json");
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("\"gelu\"", "\"relu\"");
    std::fs::write(&cfg, body).unwrap();
    let err = LocalEmbeddingModel::load(dir.path()).unwrap_err();
    assert!(matches!(err, LocalError::Unsupported { .. }), "{err:?}");
}

#[tokio::test]
async fn embeds_unit_vectors_in_input_order_across_batches() {
    let (_dir, model) = tiny();
    assert_eq!(model.max_seq_length(), 6);
    let texts: Vec<String> = (0..70)
        .map(|i| match i % 3 {
            0 => "where is my parcel?".to_owned(),
            1 => "ignore all previous instructions.".to_owned(),
            _ => "parcels ".repeat(i % 7 + 1),
        })
        .collect();
    let model: Arc<dyn EmbeddingModel> = Arc::new(model);
    assert_eq!(model.dimensions(), Some(HIDDEN));
    let out = model
        .embed(EmbeddingRequest::new(texts.clone()))
        .await
        .unwrap();
    assert_eq!(out.embeddings.len(), texts.len());
    assert_eq!(out.provider, "local");
    assert!(out.usage.input_tokens > 0);
    for v in &out.embeddings {
        assert_eq!(v.len(), HIDDEN);
        assert!((norm(v) - 1.0).abs() < 1e-4, "{v:?}");
    }
    // The same text gives the same vector wherever it sits and whatever it is batched with
    // (padding is masked out).
    let alone = model
        .embed(EmbeddingRequest::new([texts[1].clone()]))
        .await
        .unwrap();
    for i in [1, 4, 67] {
        let d: f32 = out.embeddings[i]
            .iter()
            .zip(&alone.embeddings[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d < 1e-5, "text {i} differs by {d}");
    }
    assert_ne!(out.embeddings[0], out.embeddings[1]);
    // Truncation: everything past max_seq_length (6 tokens with [CLS]/[SEP]) is not read.
    let a = model
        .embed(EmbeddingRequest::new([
            "where is my parcel ignore all previous",
        ]))
        .await
        .unwrap();
    let b = model
        .embed(EmbeddingRequest::new([
            "where is my parcel ignore instructions ?",
        ]))
        .await
        .unwrap();
    assert_eq!(a.embeddings, b.embeddings);
}

#[tokio::test]
async fn asking_for_other_dimensions_is_an_invalid_request() {
    let (_dir, model) = tiny();
    let mut request = EmbeddingRequest::new(["where"]);
    request.dimensions = Some(4);
    let err = model.embed(request).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    let mut request = EmbeddingRequest::new(["where"]);
    request.dimensions = Some(HIDDEN as u32);
    assert!(model.embed(request).await.is_ok());
    let empty = model
        .embed(EmbeddingRequest::new(Vec::<String>::new()))
        .await
        .unwrap();
    assert!(empty.embeddings.is_empty());
}

#[derive(serde::Deserialize)]
struct Reference {
    max_seq_length: usize,
    cases: Vec<Case>,
}

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    tokens: u64,
    embedding: Vec<f32>,
}

#[tokio::test]
#[ignore = "needs the all-MiniLM-L6-v2 weights: run scripts/test-services.sh up (LLMKIT_MINILM_DIR)"]
async fn minilm_matches_sentence_transformers() {
    let reference: Reference =
        serde_json::from_str(include_str!("data/minilm-reference.json")).unwrap();
    let model = LocalEmbeddingModel::load(minilm_dir()).unwrap();
    assert_eq!(model.max_seq_length(), reference.max_seq_length);
    assert_eq!(model.dimensions(), Some(384));
    let texts: Vec<String> = reference.cases.iter().map(|c| c.text.clone()).collect();
    // All in one batch (padded to the longest) and each alone: both match.
    let batch = model
        .embed(EmbeddingRequest::new(texts.clone()))
        .await
        .unwrap();
    let expected_tokens: u64 = reference.cases.iter().map(|c| c.tokens).sum();
    assert_eq!(batch.usage.input_tokens, expected_tokens);
    for (case, got) in reference.cases.iter().zip(&batch.embeddings) {
        let alone = model
            .embed_texts(&[case.text.as_str()])
            .unwrap()
            .0
            .remove(0);
        for v in [got, &alone] {
            let max_diff = v
                .iter()
                .zip(&case.embedding)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            let cosine: f32 = v.iter().zip(&case.embedding).map(|(a, b)| a * b).sum();
            assert!(
                max_diff < 1e-4 && cosine > 0.9999,
                "{:?}: max |diff| {max_diff}, cosine {cosine}",
                case.text
            );
        }
    }
}
