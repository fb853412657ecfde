//! Lexical retrieval: [`terms`] (the one notion of a word for BM25 and overlap checks) and
//! [`Bm25`], Okapi BM25 over chunks with metadata filters.

use std::collections::{BTreeMap, HashMap};

use crate::chunk::Chunk;
use crate::store::{Filter, Hit, matches};

/// Lower-cased alphanumeric words: the shared notion of a term for BM25 and overlap checks.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// One indexed chunk: term frequencies, length in terms, document metadata.
type Posting = (
    Chunk,
    HashMap<String, usize>,
    usize,
    BTreeMap<String, String>,
);

/// Okapi BM25 over chunks. Defaults k1 = 1.2, b = 0.75.
#[derive(Debug, Clone)]
pub struct Bm25 {
    k1: f32,
    b: f32,
    docs: Vec<Posting>,
    df: HashMap<String, usize>,
    total_len: usize,
}

impl Default for Bm25 {
    fn default() -> Self {
        Bm25 {
            k1: 1.2,
            b: 0.75,
            docs: Vec::new(),
            df: HashMap::new(),
            total_len: 0,
        }
    }
}

impl Bm25 {
    /// An empty index with the default parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets k1 (term-frequency saturation) and b (length normalization).
    #[must_use]
    pub fn params(mut self, k1: f32, b: f32) -> Self {
        self.k1 = k1;
        self.b = b;
        self
    }

    /// Adds (or replaces) a chunk.
    pub fn insert(&mut self, chunk: Chunk, meta: BTreeMap<String, String>) {
        self.remove(|c| c.id == chunk.id);
        let words = terms(&chunk.text);
        let mut tf = HashMap::new();
        for w in &words {
            *tf.entry(w.clone()).or_default() += 1;
        }
        for w in tf.keys() {
            *self.df.entry(w.clone()).or_default() += 1;
        }
        self.total_len += words.len();
        self.docs.push((chunk, tf, words.len(), meta));
    }

    /// Removes every chunk of a document.
    pub fn delete_document(&mut self, doc_id: &str) {
        self.remove(|c| c.doc_id == doc_id);
    }

    fn remove(&mut self, pred: impl Fn(&Chunk) -> bool) {
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.docs)
            .into_iter()
            .partition(|(c, ..)| pred(c));
        self.docs = kept;
        for (_, tf, len, _) in gone {
            self.total_len -= len;
            for w in tf.keys() {
                if let Some(n) = self.df.get_mut(w) {
                    *n -= 1;
                    if *n == 0 {
                        self.df.remove(w);
                    }
                }
            }
        }
    }

    /// The `k` best chunks for `query` matching `filter`.
    pub fn search(&self, query: &str, k: usize, filter: &Filter) -> Vec<Hit> {
        let n = self.docs.len() as f32;
        if n == 0.0 {
            return Vec::new();
        }
        let avg = self.total_len as f32 / n;
        let q = terms(query);
        let mut scored: Vec<Hit> = self
            .docs
            .iter()
            .filter(|(.., meta)| matches(meta, filter))
            .filter_map(|(chunk, tf, len, _)| {
                let mut score = 0f32;
                for t in &q {
                    let Some(&f) = tf.get(t) else { continue };
                    let df = self.df.get(t).copied().unwrap_or(0) as f32;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    let f = f as f32;
                    score += idf * f * (self.k1 + 1.0)
                        / (f + self.k1 * (1.0 - self.b + self.b * *len as f32 / avg));
                }
                (score > 0.0).then(|| Hit {
                    chunk: chunk.clone(),
                    score,
                })
            })
            .collect();
        scored.sort_by(|a, b| b.score.total_cmp(&a.score));
        scored.truncate(k);
        scored
    }
}
