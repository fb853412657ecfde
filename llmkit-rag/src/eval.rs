//! Retrieval evaluation: retrieved ids per query, graded apart from generation.

use serde::{Deserialize, Serialize};

use crate::index::{Index, SearchMode};
use crate::store::Filter;
use llmkit_core::{Result, retrieval};

/// A labelled query: which documents (or chunks) should be retrieved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievalCase {
    /// The query.
    pub query: String,
    /// Relevant document ids or chunk ids.
    pub relevant: Vec<String>,
}

/// Retrieved ids for one query (document ids, best first, deduplicated), ready for llmkit-eval's
/// recall@k, MRR and nDCG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievedIds {
    /// The query.
    pub query: String,
    /// Document ids in rank order.
    pub retrieved: Vec<String>,
    /// The labelled relevant ids.
    pub relevant: Vec<String>,
}

/// Runs every case through `index` and returns the retrieved document ids.
pub async fn retrieve_ids(
    index: &Index,
    cases: &[RetrievalCase],
    k: usize,
    mode: SearchMode,
) -> Result<Vec<RetrievedIds>> {
    let mut out = Vec::with_capacity(cases.len());
    for case in cases {
        let hits = index
            .search(&case.query, k * 3, &Filter::new(), mode)
            .await?;
        let mut ids: Vec<String> = Vec::new();
        for h in hits {
            let id = if case.relevant.contains(&h.chunk.id) {
                h.chunk.id
            } else {
                h.chunk.doc_id
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
            if ids.len() == k {
                break;
            }
        }
        out.push(RetrievedIds {
            query: case.query.clone(),
            retrieved: ids,
            relevant: case.relevant.clone(),
        });
    }
    Ok(out)
}

/// Mean recall@k: the share of relevant ids found in the top k, averaged over queries
/// ([`llmkit_core::retrieval::recall_at_k`] per query, the definition llmkit-eval reports).
pub fn recall_at_k(results: &[RetrievedIds], k: usize) -> f64 {
    mean(
        results
            .iter()
            .map(|r| retrieval::recall_at_k(&r.retrieved, &r.relevant, k)),
    )
}

/// Mean reciprocal rank of the first relevant id ([`llmkit_core::retrieval::mrr`] per query).
pub fn mrr(results: &[RetrievedIds]) -> f64 {
    mean(
        results
            .iter()
            .map(|r| retrieval::mrr(&r.retrieved, &r.relevant)),
    )
}

fn mean(it: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = it.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 { 0.0 } else { sum / n as f64 }
}
