//! The BERT encoder (post-layer-norm, absolute positions, GELU) that sentence-transformers
//! models such as all-MiniLM-L6-v2 use, written on candle-nn's layers.
//!
//! Written here rather than taken from candle-transformers: that crate carries every model
//! candle supports, and this encoder is ~150 lines; the reference-vector test
//! (`tests/minilm.rs`) holds it to the Python implementation.

use candle_core::{D, DType, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

/// The fields of a Hugging Face BERT `config.json` the encoder needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_position")]
    pub position_embedding_type: String,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}
fn default_position() -> String {
    "absolute".into()
}

impl BertConfig {
    /// Why this configuration cannot be run, if it cannot.
    pub(crate) fn unsupported(&self) -> Option<String> {
        if self.hidden_act != "gelu" {
            return Some(format!("hidden_act {:?} (only \"gelu\")", self.hidden_act));
        }
        if self.position_embedding_type != "absolute" {
            return Some(format!(
                "position_embedding_type {:?} (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Some(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        None
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

/// A BERT encoder: token ids and attention mask in, one hidden state per token out.
pub(crate) struct Bert {
    words: Embedding,
    positions: Embedding,
    token_types: Embedding,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    head_dim: usize,
}

fn norm(size: usize, eps: f64, vb: VarBuilder<'_>) -> candle_core::Result<LayerNorm> {
    candle_nn::layer_norm(size, candle_nn::LayerNormConfig::from(eps), vb)
}

impl Bert {
    /// Loads the weights under their Hugging Face names (`embeddings.*`, `encoder.layer.N.*`).
    pub(crate) fn load(vb: VarBuilder<'_>, c: &BertConfig) -> candle_core::Result<Self> {
        let h = c.hidden_size;
        let e = vb.pp("embeddings");
        let words = candle_nn::embedding(c.vocab_size, h, e.pp("word_embeddings"))?;
        let positions =
            candle_nn::embedding(c.max_position_embeddings, h, e.pp("position_embeddings"))?;
        let token_types =
            candle_nn::embedding(c.type_vocab_size, h, e.pp("token_type_embeddings"))?;
        let embedding_norm = norm(h, c.layer_norm_eps, e.pp("LayerNorm"))?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let a = l.pp("attention");
            layers.push(Layer {
                query: candle_nn::linear(h, h, a.pp("self.query"))?,
                key: candle_nn::linear(h, h, a.pp("self.key"))?,
                value: candle_nn::linear(h, h, a.pp("self.value"))?,
                attention_out: candle_nn::linear(h, h, a.pp("output.dense"))?,
                attention_norm: norm(h, c.layer_norm_eps, a.pp("output.LayerNorm"))?,
                intermediate: candle_nn::linear(
                    h,
                    c.intermediate_size,
                    l.pp("intermediate.dense"),
                )?,
                output: candle_nn::linear(c.intermediate_size, h, l.pp("output.dense"))?,
                output_norm: norm(h, c.layer_norm_eps, l.pp("output.LayerNorm"))?,
            });
        }
        Ok(Bert {
            words,
            positions,
            token_types,
            embedding_norm,
            layers,
            heads: c.num_attention_heads,
            head_dim: h / c.num_attention_heads,
        })
    }

    /// Hidden states `[batch, tokens, hidden]` for `ids` `[batch, tokens]` (u32) and `mask`
    /// `[batch, tokens]` (f32, 1 for a real token, 0 for padding). Token type 0 throughout
    /// (single sentences).
    pub(crate) fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (batch, tokens) = ids.dims2()?;
        let device = ids.device();
        let position_ids = Tensor::arange(0u32, tokens as u32, device)?;
        let type_ids = Tensor::zeros(tokens, DType::U32, device)?;
        let mut x = self
            .words
            .forward(ids)?
            .broadcast_add(&self.positions.forward(&position_ids)?)?
            .broadcast_add(&self.token_types.forward(&type_ids)?)?;
        x = self.embedding_norm.forward(&x)?;
        // Padding gets a large negative attention bias, as in transformers' extended mask.
        let bias = ((mask.ones_like()? - mask)? * -1.0e4)?.reshape((batch, 1, 1, tokens))?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let split = |t: Tensor| -> candle_core::Result<Tensor> {
            t.reshape((batch, tokens, self.heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        for layer in &self.layers {
            let q = split(layer.query.forward(&x)?)?;
            let k = split(layer.key.forward(&x)?)?;
            let v = split(layer.value.forward(&x)?)?;
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores)?;
            let context = probs.matmul(&v)?.transpose(1, 2)?.contiguous()?.reshape((
                batch,
                tokens,
                self.heads * self.head_dim,
            ))?;
            let attended = layer
                .attention_norm
                .forward(&(layer.attention_out.forward(&context)? + &x)?)?;
            let inner = layer.intermediate.forward(&attended)?.gelu_erf()?;
            x = layer
                .output_norm
                .forward(&(layer.output.forward(&inner)? + &attended)?)?;
        }
        Ok(x)
    }
}

/// Mean of the hidden states over real tokens, then L2-normalised, as sentence-transformers'
/// `Pooling(mean)` + `Normalize` modules do. `hidden` `[batch, tokens, dim]`, `mask`
/// `[batch, tokens]` → `[batch, dim]`.
pub(crate) fn mean_pool_normalize(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let m = mask.unsqueeze(D::Minus1)?;
    let summed = hidden.broadcast_mul(&m)?.sum(1)?;
    let counts = m.sum(1)?.clamp(1e-9, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    mean.broadcast_div(&norms)
}
