//! Retrieval metrics from retrieved ids against expected ids, reported apart from generation
//! quality: [`recall_at_k`], [`precision_at_k`], [`mrr`], [`ndcg_at_k`], [`hit_rate_at_k`], and
//! [`RetrievalMetrics`] holding all five for a case or averaged over a run.
//!
//! The per-query functions are llmkit-core's ([`llmkit_core::retrieval`], re-exported here),
//! so RAG's own evaluation computes the very same numbers.
//!
//! ```
//! use llmkit_eval::retrieval::RetrievalMetrics;
//! let m = RetrievalMetrics::compute(&["d3", "d1", "d9"], &["d1", "d2"], 3);
//! assert_eq!((m.recall, m.mrr, m.hit_rate), (0.5, 0.5, 1.0));
//! ```

use serde::{Deserialize, Serialize};

// One definition of each metric, in core, so llmkit-rag uses the same ones without depending
// on this crate.
pub use llmkit_core::retrieval::{hit_rate_at_k, mrr, ndcg_at_k, precision_at_k, recall_at_k};

/// The five retrieval metrics for one case, or their means over a run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RetrievalMetrics {
    /// The cutoff.
    pub k: usize,
    /// Cases averaged (1 for a single case).
    pub cases: usize,
    /// Recall@k.
    pub recall: f64,
    /// Precision@k.
    pub precision: f64,
    /// Mean reciprocal rank.
    pub mrr: f64,
    /// nDCG@k.
    pub ndcg: f64,
    /// Hit rate@k.
    pub hit_rate: f64,
}

impl RetrievalMetrics {
    /// All five metrics for one case.
    pub fn compute<S: AsRef<str>, T: AsRef<str>>(
        retrieved: &[S],
        expected: &[T],
        k: usize,
    ) -> Self {
        RetrievalMetrics {
            k,
            cases: 1,
            recall: recall_at_k(retrieved, expected, k),
            precision: precision_at_k(retrieved, expected, k),
            mrr: mrr(retrieved, expected),
            ndcg: ndcg_at_k(retrieved, expected, k),
            hit_rate: hit_rate_at_k(retrieved, expected, k),
        }
    }

    /// Means over cases (weighted by each entry's `cases`); `None` for no input.
    pub fn mean<'a>(items: impl IntoIterator<Item = &'a RetrievalMetrics>) -> Option<Self> {
        let mut acc = RetrievalMetrics::default();
        for m in items {
            let w = m.cases as f64;
            acc.k = m.k;
            acc.cases += m.cases;
            acc.recall += m.recall * w;
            acc.precision += m.precision * w;
            acc.mrr += m.mrr * w;
            acc.ndcg += m.ndcg * w;
            acc.hit_rate += m.hit_rate * w;
        }
        if acc.cases == 0 {
            return None;
        }
        let n = acc.cases as f64;
        acc.recall /= n;
        acc.precision /= n;
        acc.mrr /= n;
        acc.ndcg /= n;
        acc.hit_rate /= n;
        Some(acc)
    }
}
