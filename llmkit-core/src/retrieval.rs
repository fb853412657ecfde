//! Retrieval metrics over ids, defined once: [`recall_at_k`], [`precision_at_k`], [`mrr`],
//! [`ndcg_at_k`] and [`hit_rate_at_k`] for one query, from the retrieved ids (best first) and
//! the expected (relevant) ids. llmkit-eval reports them per case and per run; llmkit-rag
//! averages them over labelled queries. They take ids, so neither crate needs the other.
//!
//! Relevance is binary (an id is relevant when it is expected). Repeated retrieved ids count
//! once, at their first position. With no expected id, recall, nDCG and hit rate are 1
//! (nothing was missed).
//!
//! ```
//! use llmkit_core::retrieval::{ndcg_at_k, recall_at_k};
//! let retrieved = ["d3", "d1", "d9"];
//! let expected = ["d1", "d2"];
//! assert_eq!(recall_at_k(&retrieved, &expected, 3), 0.5);
//! // DCG = 1/log2(3); ideal = 1 + 1/log2(3).
//! let want = (1.0 / 3f64.log2()) / (1.0 + 1.0 / 3f64.log2());
//! assert!((ndcg_at_k(&retrieved, &expected, 3) - want).abs() < 1e-12);
//! ```

use std::collections::HashSet;

fn top_k<S: AsRef<str>>(retrieved: &[S], k: usize) -> Vec<&str> {
    let mut seen = HashSet::new();
    retrieved
        .iter()
        .map(AsRef::as_ref)
        .filter(|id| seen.insert(*id))
        .take(k)
        .collect()
}

fn expected_set<S: AsRef<str>>(expected: &[S]) -> HashSet<&str> {
    expected.iter().map(AsRef::as_ref).collect()
}

/// Share of expected ids found in the top `k`; 1 when nothing was expected.
pub fn recall_at_k<S: AsRef<str>, T: AsRef<str>>(retrieved: &[S], expected: &[T], k: usize) -> f64 {
    let want = expected_set(expected);
    if want.is_empty() {
        return 1.0;
    }
    let found = top_k(retrieved, k)
        .iter()
        .filter(|id| want.contains(*id))
        .count();
    found as f64 / want.len() as f64
}

/// Share of the top `k` slots holding an expected id (divided by `k`, so returning fewer than
/// `k` ids does not inflate precision); 0 when `k` is 0.
pub fn precision_at_k<S: AsRef<str>, T: AsRef<str>>(
    retrieved: &[S],
    expected: &[T],
    k: usize,
) -> f64 {
    if k == 0 {
        return 0.0;
    }
    let want = expected_set(expected);
    let found = top_k(retrieved, k)
        .iter()
        .filter(|id| want.contains(*id))
        .count();
    found as f64 / k as f64
}

/// Reciprocal rank of the first expected id (over the whole list); 0 when none is retrieved.
pub fn mrr<S: AsRef<str>, T: AsRef<str>>(retrieved: &[S], expected: &[T]) -> f64 {
    let want = expected_set(expected);
    top_k(retrieved, usize::MAX)
        .iter()
        .position(|id| want.contains(*id))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// nDCG@k with binary relevance and a log2 discount: `DCG = Σ rel_i / log2(i + 1)` over ranks
/// `i = 1..=k`, divided by the DCG of a perfect ranking of `min(k, |expected|)` relevant ids.
/// 1 when nothing was expected.
pub fn ndcg_at_k<S: AsRef<str>, T: AsRef<str>>(retrieved: &[S], expected: &[T], k: usize) -> f64 {
    let want = expected_set(expected);
    if want.is_empty() {
        return 1.0;
    }
    let discount = |rank: usize| 1.0 / ((rank as f64) + 1.0).log2();
    let dcg: f64 = top_k(retrieved, k)
        .iter()
        .enumerate()
        .filter(|(_, id)| want.contains(*id))
        .map(|(i, _)| discount(i + 1))
        .sum();
    let ideal: f64 = (1..=k.min(want.len())).map(discount).sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// 1 when any expected id is in the top `k`, else 0; 1 when nothing was expected.
pub fn hit_rate_at_k<S: AsRef<str>, T: AsRef<str>>(
    retrieved: &[S],
    expected: &[T],
    k: usize,
) -> f64 {
    let want = expected_set(expected);
    if want.is_empty() {
        return 1.0;
    }
    f64::from(u8::from(
        top_k(retrieved, k).iter().any(|id| want.contains(*id)),
    ))
}
