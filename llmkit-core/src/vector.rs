//! Vector math for embeddings, in one place: [`dot`] (the hot loop of exact vector search),
//! [`cosine`] and [`normalize`]. Used by the semantic cache, RAG's vector stores and eval's
//! embedding-similarity metric.

/// Dot product in 16-wide blocks with independent accumulators, then the tail. Fixed-size
/// arrays give LLVM bounds it can see, so the block loop compiles to SIMD multiply-adds
/// without bounds checks (a per-lane `get` kept it scalar: 3× slower; see `benches/rag.rs`).
/// Vectors of different lengths are multiplied over the shorter one.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        let (Ok(x), Ok(y)) = (<&[f32; LANES]>::try_from(x), <&[f32; LANES]>::try_from(y)) else {
            continue;
        };
        for ((s, p), q) in acc.iter_mut().zip(x).zip(y) {
            *s += p * q;
        }
    }
    let tail: f32 = if a.len() / LANES == b.len() / LANES {
        ra.iter().zip(rb).map(|(x, y)| x * y).sum()
    } else {
        // Different block counts: the shorter vector's tail meets a block of the longer one.
        let n = a.len().min(b.len());
        let start = n - n % LANES;
        a.get(start..n)
            .unwrap_or_default()
            .iter()
            .zip(b.get(start..n).unwrap_or_default())
            .map(|(x, y)| x * y)
            .sum()
    };
    acc.iter().sum::<f32>() + tail
}

/// Cosine similarity in `-1..=1`; 0 when either vector is empty or zero, or the lengths
/// differ (vectors from different embedders are not comparable).
///
/// ```
/// use llmkit_core::vector::cosine;
/// assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - 0.70710677).abs() < 1e-6);
/// assert_eq!(cosine(&[1.0, 0.0], &[1.0]), 0.0);
/// ```
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let (na, nb) = (dot(a, a), dot(b, b));
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot(a, b) / (na.sqrt() * nb.sqrt())
    }
}

/// Scales `v` to unit length in place (a zero vector stays zero), so that [`dot`] of two
/// normalized vectors is their cosine.
pub fn normalize(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn blocked_dot_matches_the_naive_sum() {
        for n in [0, 1, 15, 16, 17, 33, 100] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            assert!((dot(&a, &b) - naive(&a, &b)).abs() < 1e-4, "n = {n}");
            // Unequal lengths: over the shorter one.
            let short = &b[..n / 2];
            assert!((dot(&a, short) - naive(&a, short)).abs() < 1e-4, "n = {n}");
        }
    }

    #[test]
    fn cosine_and_normalize_agree() {
        let mut a = vec![3.0, 4.0];
        let b = vec![4.0, 3.0];
        let c = cosine(&a, &b);
        normalize(&mut a);
        assert!((dot(&a, &a) - 1.0).abs() < 1e-6);
        assert!((c - 0.96).abs() < 1e-6);
        assert_eq!(cosine(&[0.0, 0.0], &b), 0.0);
        let mut zero = vec![0.0; 3];
        normalize(&mut zero);
        assert_eq!(zero, vec![0.0; 3]);
    }
}
