//! Structure-aware chunking with exact byte offsets.

use llmkit_core::tokens::TokenCounter;
use serde::{Deserialize, Serialize};

use crate::document::{Document, content_hash};

/// Measures text size for chunking.
pub trait Tokenizer: Send + Sync {
    /// The size of `text`.
    fn count(&self, text: &str) -> usize;
}

/// llmkit's token approximation ([`llmkit_core::tokens::approximate`]): fast, no vocabulary,
/// right within a few percent for English and code and one token per CJK character. For exact
/// sizes use the embedding model's own counter: a [`TokenCounter`] is a [`Tokenizer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ApproxTokens;

impl Tokenizer for ApproxTokens {
    fn count(&self, text: &str) -> usize {
        usize::try_from(llmkit_core::tokens::approximate(text)).unwrap_or(usize::MAX)
    }
}

/// Sizes in the model's own tokens (exact for OpenAI models with llmkit-core's `tiktoken`
/// feature): `Chunker::new().tokenizer(TokenCounter::for_model("text-embedding-3-small"))`.
impl Tokenizer for TokenCounter {
    fn count(&self, text: &str) -> usize {
        usize::try_from(TokenCounter::count(self, text)).unwrap_or(usize::MAX)
    }
}

/// Sizes in characters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chars;

impl Tokenizer for Chars {
    fn count(&self, text: &str) -> usize {
        text.chars().count()
    }
}

/// A piece of a document. `text == document.text[start..end]`, always.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    /// Stable id: derived from the document id and the chunk text, so it survives re-indexing
    /// while the text is unchanged.
    pub id: String,
    /// The document it came from.
    pub doc_id: String,
    /// Position among the document's chunks.
    pub ordinal: usize,
    /// Byte offset of the first byte in the document text.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// The text.
    pub text: String,
    /// The nearest Markdown heading above the chunk, for citations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heading: Option<String>,
}

/// Splits documents recursively: sections (Markdown headings), then paragraphs, then sentences,
/// then words, merging neighbours up to `max_size`. Defaults: 256 approximate tokens, overlap
/// 32 tokens.
#[must_use]
pub struct Chunker {
    max_size: usize,
    overlap: usize,
    tokenizer: Box<dyn Tokenizer>,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker")
            .field("max_size", &self.max_size)
            .field("overlap", &self.overlap)
            .finish_non_exhaustive()
    }
}

impl Default for Chunker {
    fn default() -> Self {
        Chunker {
            max_size: 256,
            overlap: 32,
            tokenizer: Box::new(ApproxTokens),
        }
    }
}

/// Separators by level: sections, paragraphs, sentences, words.
const LEVELS: usize = 4;

impl Chunker {
    /// A chunker with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Largest chunk size (minimum 1), measured by the tokenizer.
    pub fn max_size(mut self, n: usize) -> Self {
        self.max_size = n.max(1);
        self
    }

    /// Overlap with the previous chunk, measured by the tokenizer (kept below `max_size`).
    pub fn overlap(mut self, n: usize) -> Self {
        self.overlap = n;
        self
    }

    /// How sizes are measured.
    pub fn tokenizer(mut self, t: impl Tokenizer + 'static) -> Self {
        self.tokenizer = Box::new(t);
        self
    }

    fn size(&self, text: &str, r: (usize, usize)) -> usize {
        text.get(r.0..r.1).map_or(0, |s| self.tokenizer.count(s))
    }

    /// Splits `doc` into chunks in document order.
    pub fn chunk(&self, doc: &Document) -> Vec<Chunk> {
        let text = doc.text.as_str();
        let mut ranges = Vec::new();
        self.split(text, (0, text.len()), 0, &mut ranges);
        let mut seen = std::collections::HashMap::<String, usize>::new();
        let mut out = Vec::with_capacity(ranges.len());
        for (ordinal, (start, end)) in ranges.into_iter().enumerate() {
            let start = if ordinal > 0 {
                self.overlap_start(text, start)
            } else {
                start
            };
            let Some(chunk_text) = text.get(start..end) else {
                continue;
            };
            let n = seen.entry(chunk_text.to_owned()).or_default();
            let id_hash = content_hash(&format!("{}\u{0}{chunk_text}\u{0}{n}", doc.id));
            *n += 1;
            out.push(Chunk {
                id: format!("{}#{}", doc.id, id_hash.get(..12).unwrap_or(&id_hash)),
                doc_id: doc.id.clone(),
                ordinal,
                start,
                end,
                text: chunk_text.to_owned(),
                heading: heading_before(text, start),
            });
        }
        out
    }

    /// Moves `start` back over up to `overlap` units of the preceding text, to a word boundary.
    fn overlap_start(&self, text: &str, start: usize) -> usize {
        if self.overlap == 0 {
            return start;
        }
        let budget = self.overlap.min(self.max_size.saturating_sub(1));
        let mut best = start;
        let prefix = text.get(..start).unwrap_or("");
        for (i, c) in prefix.char_indices().rev() {
            if self.size(text, (i, start)) > budget {
                break;
            }
            if c.is_whitespace() {
                best = i + c.len_utf8();
            }
        }
        best
    }

    fn split(
        &self,
        text: &str,
        range: (usize, usize),
        level: usize,
        out: &mut Vec<(usize, usize)>,
    ) {
        let range = trim(text, range);
        if range.0 >= range.1 {
            return;
        }
        if self.size(text, range) <= self.max_size {
            out.push(range);
            return;
        }
        if level >= LEVELS {
            // A single word larger than the limit: cut it on character boundaries.
            let mut start = range.0;
            let piece = text.get(range.0..range.1).unwrap_or("");
            for (i, c) in piece.char_indices() {
                let at = range.0 + i + c.len_utf8();
                if self.size(text, (start, at)) >= self.max_size {
                    out.push((start, at));
                    start = at;
                }
            }
            if start < range.1 {
                out.push((start, range.1));
            }
            return;
        }
        let pieces = boundaries(text, range, level);
        if pieces.len() <= 1 {
            self.split(text, range, level + 1, out);
            return;
        }
        // Greedily merge neighbouring pieces while they fit; recurse into pieces too big alone.
        let mut current: Option<(usize, usize)> = None;
        for piece in pieces {
            let piece = trim(text, piece);
            if piece.0 >= piece.1 {
                continue;
            }
            match current {
                Some(cur) if self.size(text, (cur.0, piece.1)) <= self.max_size => {
                    current = Some((cur.0, piece.1));
                }
                _ => {
                    if let Some(cur) = current.take() {
                        self.split(text, cur, level + 1, out);
                    }
                    current = Some(piece);
                }
            }
        }
        if let Some(cur) = current {
            self.split(text, cur, level + 1, out);
        }
    }
}

fn trim(text: &str, (mut s, mut e): (usize, usize)) -> (usize, usize) {
    let slice = text.get(s..e).unwrap_or("");
    let lead = slice.len() - slice.trim_start().len();
    s += lead;
    let slice = text.get(s..e).unwrap_or("");
    e -= slice.len() - slice.trim_end().len();
    (s, e.max(s))
}

/// Cuts `range` into consecutive pieces at the separators of `level`; the pieces cover the range.
fn boundaries(text: &str, range: (usize, usize), level: usize) -> Vec<(usize, usize)> {
    let slice = text.get(range.0..range.1).unwrap_or("");
    let mut cuts = vec![0];
    match level {
        0 => {
            // Before every Markdown heading line.
            let mut offset = 0;
            for line in slice.split_inclusive('\n') {
                if offset > 0 && line.trim_start().starts_with('#') {
                    cuts.push(offset);
                }
                offset += line.len();
            }
        }
        1 => {
            // After every blank line.
            let mut offset = 0;
            let mut prev_blank = false;
            for line in slice.split_inclusive('\n') {
                let blank = line.trim().is_empty();
                if prev_blank && !blank {
                    cuts.push(offset);
                }
                prev_blank = blank;
                offset += line.len();
            }
        }
        2 => {
            // After sentence punctuation followed by white space.
            let bytes: Vec<(usize, char)> = slice.char_indices().collect();
            for w in bytes.windows(2) {
                if let [(_, a), (j, b)] = w
                    && matches!(a, '.' | '?' | '!' | '。')
                    && b.is_whitespace()
                {
                    cuts.push(*j);
                }
            }
        }
        _ => {
            for (i, c) in slice.char_indices() {
                if c.is_whitespace() && i > 0 {
                    cuts.push(i);
                }
            }
        }
    }
    cuts.push(slice.len());
    cuts.dedup();
    cuts.windows(2)
        .filter_map(|w| match w {
            [a, b] => Some((range.0 + a, range.0 + b)),
            _ => None,
        })
        .collect()
}

fn heading_before(text: &str, at: usize) -> Option<String> {
    text.get(..at)?
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('#'))
        .map(|l| l.trim_start_matches(['#', ' ']).trim().to_owned())
}
