//! Hybrid retrieval: [`rrf`], reciprocal rank fusion of ranked lists whose scores are not
//! comparable (vector similarity, BM25).

use crate::store::Hit;

/// Reciprocal rank fusion: each list contributes `1 / (k + rank)` (rank from 1) per chunk; the
/// usual `k` is 60. Robust to the lists' incomparable score scales.
pub fn rrf(lists: &[Vec<Hit>], k: f32, top: usize) -> Vec<Hit> {
    let mut fused: Vec<Hit> = Vec::new();
    for list in lists {
        for (rank, hit) in list.iter().enumerate() {
            let add = 1.0 / (k + rank as f32 + 1.0);
            match fused.iter_mut().find(|h| h.chunk.id == hit.chunk.id) {
                Some(h) => h.score += add,
                None => fused.push(Hit {
                    chunk: hit.chunk.clone(),
                    score: add,
                }),
            }
        }
    }
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused.truncate(top);
    fused
}
