//! Reference-based metrics: [`exact_match`], [`normalized_match`], [`token_f1`], [`rouge_l`] and
//! [`embedding_similarity`] through any [`EmbeddingModel`].
//!
//! The pure scoring functions ([`normalize`], [`token_f1_score`], [`rouge_l_f1`], [`cosine`]) are
//! public so they can be checked by hand. A case without a `reference` fails with that reason.
//!
//! ```
//! use llmkit_eval::reference::{rouge_l_f1, token_f1_score};
//! // LCS of the two is "the cat on the mat" (5 of 6 tokens each side): P = R = F = 5/6.
//! let f = rouge_l_f1("the cat lay on the mat", "the cat sat on the mat");
//! assert!((f - 5.0 / 6.0).abs() < 1e-12);
//! assert_eq!(token_f1_score("The answer is 42.", "42"), 0.5);
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use llmkit_core::{EmbeddingModel, EmbeddingRequest, Error, ErrorKind, async_trait};

use crate::dataset::Case;
use crate::evaluator::{Evaluator, Score};
use crate::target::TargetOutput;

/// Lower-cased alphanumeric words.
pub fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// SQuAD-style normalization: lower case, punctuation removed, articles (`a`, `an`, `the`)
/// dropped, whitespace collapsed.
pub fn normalize(text: &str) -> String {
    tokens(text)
        .into_iter()
        .filter(|t| !matches!(t.as_str(), "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Token-overlap F1 of normalized texts (SQuAD): bag-of-words precision and recall.
/// Two empty texts score 1; one empty text scores 0.
pub fn token_f1_score(candidate: &str, reference: &str) -> f64 {
    let cand = normalize(candidate);
    let refr = normalize(reference);
    let cand: Vec<&str> = cand.split_whitespace().collect();
    let refr: Vec<&str> = refr.split_whitespace().collect();
    if cand.is_empty() || refr.is_empty() {
        return if cand.is_empty() && refr.is_empty() {
            1.0
        } else {
            0.0
        };
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for t in &refr {
        *counts.entry(t).or_default() += 1;
    }
    let mut common = 0usize;
    for t in &cand {
        if let Some(c) = counts.get_mut(t)
            && *c > 0
        {
            *c -= 1;
            common += 1;
        }
    }
    if common == 0 {
        return 0.0;
    }
    let p = common as f64 / cand.len() as f64;
    let r = common as f64 / refr.len() as f64;
    2.0 * p * r / (p + r)
}

/// Length of the longest common subsequence of two token lists (O(n·m) time, O(m) memory).
pub fn lcs_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            let diag = prev.get(j).copied().unwrap_or(0);
            let up = prev.get(j + 1).copied().unwrap_or(0);
            let left = cur.get(j).copied().unwrap_or(0);
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = if x == y { diag + 1 } else { up.max(left) };
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// ROUGE-L F-measure (β = 1) over lower-cased word tokens: with `l` the LCS length,
/// `P = l / |candidate|`, `R = l / |reference|`, `F = 2PR / (P + R)`.
pub fn rouge_l_f1(candidate: &str, reference: &str) -> f64 {
    let cand = tokens(candidate);
    let refr = tokens(reference);
    if cand.is_empty() || refr.is_empty() {
        return if cand.is_empty() && refr.is_empty() {
            1.0
        } else {
            0.0
        };
    }
    let l = lcs_len(&cand, &refr) as f64;
    if l == 0.0 {
        return 0.0;
    }
    let p = l / cand.len() as f64;
    let r = l / refr.len() as f64;
    2.0 * p * r / (p + r)
}

/// Cosine similarity; 0 when either vector is zero or the lengths differ
/// ([`llmkit_core::vector::cosine`], widened to `f64` like every other score here).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    f64::from(llmkit_core::vector::cosine(a, b))
}

#[derive(Debug, Clone, Copy)]
enum Metric {
    Exact,
    Normalized,
    TokenF1,
    RougeL,
}

/// A text metric against the case's reference; built by [`exact_match`], [`normalized_match`],
/// [`token_f1`] or [`rouge_l`].
#[derive(Debug)]
pub struct ReferenceMetric {
    name: String,
    metric: Metric,
    threshold: f64,
}

fn metric(name: &str, metric: Metric, threshold: f64) -> Arc<dyn Evaluator> {
    Arc::new(ReferenceMetric {
        name: name.to_owned(),
        metric,
        threshold,
    })
}

/// 1 when the output equals the reference exactly (after trimming surrounding whitespace).
pub fn exact_match() -> Arc<dyn Evaluator> {
    metric("exact_match", Metric::Exact, 1.0)
}

/// 1 when the [`normalize`]d output equals the normalized reference.
pub fn normalized_match() -> Arc<dyn Evaluator> {
    metric("normalized_match", Metric::Normalized, 1.0)
}

/// [`token_f1_score`]; passes at `threshold`.
pub fn token_f1(threshold: f64) -> Arc<dyn Evaluator> {
    metric("token_f1", Metric::TokenF1, threshold)
}

/// [`rouge_l_f1`]; passes at `threshold`.
pub fn rouge_l(threshold: f64) -> Arc<dyn Evaluator> {
    metric("rouge_l", Metric::RougeL, threshold)
}

fn no_reference(case: &Case) -> Score {
    Score::fail(format!("case `{}` has no reference output", case.id))
}

#[async_trait]
impl Evaluator for ReferenceMetric {
    fn name(&self) -> &str {
        &self.name
    }

    async fn evaluate(&self, case: &Case, output: &TargetOutput) -> llmkit_core::Result<Score> {
        let Some(reference) = &case.reference else {
            return Ok(no_reference(case));
        };
        let value = match self.metric {
            Metric::Exact => f64::from(u8::from(output.text.trim() == reference.trim())),
            Metric::Normalized => {
                f64::from(u8::from(normalize(&output.text) == normalize(reference)))
            }
            Metric::TokenF1 => token_f1_score(&output.text, reference),
            Metric::RougeL => rouge_l_f1(&output.text, reference),
        };
        Ok(Score::graded(
            value,
            self.threshold,
            format!("{} {value:.3} (pass at {})", self.name, self.threshold),
        ))
    }
}

/// Cosine similarity of output and reference embeddings; built by [`embedding_similarity`].
pub struct EmbeddingSimilarity {
    model: Arc<dyn EmbeddingModel>,
    threshold: f64,
}

impl std::fmt::Debug for EmbeddingSimilarity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingSimilarity")
            .field("model", &self.model.info().model)
            .field("threshold", &self.threshold)
            .finish()
    }
}

/// Cosine similarity of the output and reference embeddings from `model` (one request with
/// both texts); passes at `threshold`. Negative similarities score 0.
pub fn embedding_similarity(model: Arc<dyn EmbeddingModel>, threshold: f64) -> Arc<dyn Evaluator> {
    Arc::new(EmbeddingSimilarity { model, threshold })
}

#[async_trait]
impl Evaluator for EmbeddingSimilarity {
    fn name(&self) -> &str {
        "embedding_similarity"
    }

    async fn evaluate(&self, case: &Case, output: &TargetOutput) -> llmkit_core::Result<Score> {
        let Some(reference) = &case.reference else {
            return Ok(no_reference(case));
        };
        let resp = self
            .model
            .embed(EmbeddingRequest::new([
                output.text.as_str(),
                reference.as_str(),
            ]))
            .await?;
        let (Some(a), Some(b)) = (resp.embeddings.first(), resp.embeddings.get(1)) else {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                format!(
                    "embedding model returned {} vectors for 2 inputs",
                    resp.embeddings.len()
                ),
            ));
        };
        let value = cosine(a, b);
        Ok(Score::graded(
            value,
            self.threshold,
            format!("cosine {value:.3} (pass at {})", self.threshold),
        ))
    }
}
