//! Vectors shared by the vector-search benches (`rag.rs`, `pgvector.rs`): one generator, so
//! every store in every bench is measured on the same data.
#![allow(dead_code)]

use std::collections::BTreeMap;

use llmkit::rag::Chunk;

/// Dimensions of every bench vector (all-MiniLM-L6-v2's size).
pub const DIMS: usize = 384;

/// xorshift64*: the same vectors every run, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    pub fn vector(&mut self) -> Vec<f32> {
        (0..DIMS).map(|_| self.next_f32()).collect()
    }

    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_f32() + 1.0) / 2.0 * n as f32) as usize % n.max(1)
    }
}

/// Clustered vectors, like real embeddings (topics): a centroid per ~100 vectors plus noise.
/// Uniform random vectors have no neighbourhood structure at all, which no real corpus has.
pub fn clustered(n: usize, rng: &mut Rng) -> Vec<Vec<f32>> {
    let centroids: Vec<Vec<f32>> = (0..(n / 100).max(10)).map(|_| rng.vector()).collect();
    (0..n)
        .map(|_| {
            let c = &centroids[rng.below(centroids.len())];
            c.iter().map(|x| x + 0.5 * rng.next_f32()).collect()
        })
        .collect()
}

pub fn items(vectors: Vec<Vec<f32>>) -> Vec<(Chunk, Vec<f32>, BTreeMap<String, String>)> {
    vectors
        .into_iter()
        .enumerate()
        .map(|(i, vector)| {
            let chunk = Chunk {
                id: format!("d{}#c{i}", i / 8),
                doc_id: format!("d{}", i / 8),
                ordinal: i % 8,
                start: 0,
                end: 0,
                text: String::new(),
                heading: None,
            };
            (chunk, vector, BTreeMap::new())
        })
        .collect()
}
