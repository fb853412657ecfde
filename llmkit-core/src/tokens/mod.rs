//! Token counting: the one definition every part of llmkit uses (the scripted model's usage,
//! budget estimates, tokens-per-minute limits, long-context routing, the RAG chunker).
//!
//! - **Exact** for OpenAI-family models with the `tiktoken` feature: [`TokenCounter::for_model`]
//!   maps the model name to its BPE encoding (`o200k_base` for GPT-5, GPT-4.1, GPT-4o and the
//!   o-series; `cl100k_base` for GPT-4, GPT-3.5 and the `text-embedding-3`/`ada-002` embedding
//!   models; names as in OpenAI's tiktoken) and counts with `tiktoken-rs`, whose vocabulary files
//!   ship inside the crate, so counting works offline.
//! - **Approximate** everywhere else ([`approximate`]): Anthropic publishes no offline tokenizer
//!   (only a count-tokens endpoint), Google documents "about 4 characters per token" for Gemini,
//!   local models each have their own vocabulary. The approximation keeps that published rule
//!   for letters and corrects the text where it is most wrong: CJK (one token per character,
//!   where characters ÷ 4 undercounts about 4×) and code or JSON (symbols and digits two tokens
//!   per three). Measured against the exact encoders by `llmkit-core/tests/tokens.rs`; the
//!   errors are in `docs/cost.md` (Token counts).
//!
//! ```
//! use llmkit_core::tokens::{self, Method, TokenCounter};
//!
//! // Unknown to tiktoken: the documented approximation.
//! assert_eq!(tokens::count("claude-sonnet-4-5", "hello world"), 3);
//! assert_eq!(TokenCounter::for_model("claude-sonnet-4-5").method(), Method::Approximate);
//! # #[cfg(feature = "tiktoken")] {
//! // OpenAI family with the `tiktoken` feature: exact (tiktoken's own example).
//! assert_eq!(tokens::count("gpt-4", "tiktoken is great!"), 6);
//! assert!(TokenCounter::for_model("gpt-4o-mini").is_exact());
//! # }
//! ```

#[cfg(feature = "tiktoken")]
mod bpe;

use crate::request::ChatRequest;

/// A BPE vocabulary of OpenAI's tiktoken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// `cl100k_base`: GPT-4, GPT-3.5, `text-embedding-3-*`, `text-embedding-ada-002`.
    Cl100kBase,
    /// `o200k_base`: GPT-5, GPT-4.1, GPT-4o, o1, o3, o4-mini.
    O200kBase,
}

impl Encoding {
    /// tiktoken's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Cl100kBase => "cl100k_base",
            Encoding::O200kBase => "o200k_base",
        }
    }
}

/// How a [`TokenCounter`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// The model's own BPE vocabulary: the count the provider bills for the text.
    Exact(Encoding),
    /// The documented approximation ([`approximate`]).
    Approximate,
}

/// Counts tokens for one model. Cheap to build and `Copy`; the vocabularies load once per
/// process, on first use (about 0.1 s for `o200k_base` in a release build).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCounter {
    method: Method,
}

/// Tokens OpenAI adds around each chat message (role and separators), and to prime the reply:
/// the rule in OpenAI's cookbook ("How to count tokens with tiktoken") for current chat models.
const TOKENS_PER_MESSAGE: u64 = 3;
const TOKENS_PER_REPLY: u64 = 3;

impl TokenCounter {
    /// The counter for `model`: exact when the `tiktoken` feature is on and tiktoken knows the
    /// name (fine-tuned `ft:` names resolve to their base), the approximation otherwise.
    pub fn for_model(model: &str) -> Self {
        #[cfg(feature = "tiktoken")]
        if let Some(encoding) = bpe::encoding_for_model(model)
            && bpe::load(encoding).is_some()
        {
            return TokenCounter {
                method: Method::Exact(encoding),
            };
        }
        #[cfg(not(feature = "tiktoken"))]
        let _ = model;
        Self::approximate()
    }

    /// The documented approximation, whatever the model.
    pub fn approximate() -> Self {
        TokenCounter {
            method: Method::Approximate,
        }
    }

    /// How this counter counts.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Whether counts are exact.
    pub fn is_exact(&self) -> bool {
        matches!(self.method, Method::Exact(_))
    }

    /// Tokens in `text` (special-token text such as `<|endoftext|>` counts as ordinary text).
    pub fn count(&self, text: &str) -> u64 {
        #[cfg(feature = "tiktoken")]
        if let Method::Exact(encoding) = self.method
            && let Some(bpe) = bpe::load(encoding)
        {
            return bpe::count_exact(encoding, bpe, text);
        }
        approximate(text)
    }

    /// Input tokens of a chat request: every message's text and, for exact counters, OpenAI's
    /// per-message and reply-priming overhead (3 + 3 per message). Tool definitions and images
    /// are not counted, so this is a lower bound when a request carries them.
    pub fn count_chat(&self, request: &ChatRequest) -> u64 {
        let text: u64 = request
            .messages
            .iter()
            .map(|m| match m.content.as_slice() {
                // The common message, one text part: counted where it lies, not copied first.
                [part] => part.as_text().map_or(0, |t| self.count(t)),
                _ => self.count(&m.text()),
            })
            .sum();
        if self.is_exact() {
            text + TOKENS_PER_MESSAGE * request.messages.len() as u64 + TOKENS_PER_REPLY
        } else {
            text
        }
    }
}

/// Tokens in `text` for `model` ([`TokenCounter::for_model`]).
pub fn count(model: &str, text: &str) -> u64 {
    TokenCounter::for_model(model).count(text)
}

/// The approximation used where no exact vocabulary is available. Whitespace is free (BPE
/// vocabularies fold it into the next word); ASCII letters count one token per four, ASCII
/// punctuation, symbols and digits two tokens per three (code and JSON are dense in them), CJK
/// characters (Han, kana, Hangul, CJK punctuation, full-width forms) one each, any other
/// character (accented Latin, Cyrillic, Greek, ...) one per two; each class rounds up, and a
/// non-empty text is at least one token.
///
/// The weights were fitted against `cl100k_base` on English docs, Rust, Python, JSON and
/// Chinese/Japanese/Korean text; the errors measured by `llmkit-core/tests/tokens.rs` are in
/// `docs/cost.md` (Token counts). Chars ÷ 4, the rule it replaces, undercounts CJK text about 4×.
///
/// ```
/// use llmkit_core::tokens::approximate;
/// assert_eq!(approximate(""), 0);
/// assert_eq!(approximate("hello world"), 3); // 10 letters / 4, rounded up
/// assert_eq!(approximate("お誕生日おめでとう"), 9); // one per CJK character
/// assert_eq!(approximate("{\"a\": 1}"), 5); // 6 symbols and digits: 4; 1 letter: 1
/// ```
pub fn approximate(text: &str) -> u64 {
    let mut counts = Counts::default();
    text.chars().for_each(|c| counts.add(c));
    counts.tokens()
}

/// Where to cut `text` so the part before the cut is at most `max_tokens` by [`approximate`]:
/// the byte offset of the first character that would exceed it (always a character boundary),
/// or `None` when the whole text fits. Walks the text once, and only as far as the cut.
///
/// ```
/// use llmkit_core::tokens::{approximate, approximate_cut};
/// let text = "お誕生日おめでとう";
/// let cut = approximate_cut(text, 4).unwrap();
/// assert_eq!(&text[..cut], "お誕生日");
/// assert_eq!(approximate(&text[..cut]), 4);
/// assert_eq!(approximate_cut("hello world", 3), None);
/// ```
pub fn approximate_cut(text: &str, max_tokens: u64) -> Option<usize> {
    // No character counts more than one token, so a prefix of n bytes holds at most n tokens:
    // a text no longer than the limit fits without looking at it, and the count is worth
    // computing only once the prefix is longer than the limit (the size guard calls this on
    // every prompt, nearly all far below it).
    if text.len() as u64 <= max_tokens {
        return None;
    }
    let mut counts = Counts::default();
    for (i, c) in text.char_indices() {
        counts.add(c);
        if (i + c.len_utf8()) as u64 > max_tokens && counts.tokens() > max_tokens {
            return Some(i);
        }
    }
    None
}

/// Characters seen so far, by the classes [`approximate`] prices differently.
#[derive(Default)]
struct Counts {
    letters: u64,
    symbols: u64,
    cjk: u64,
    other: u64,
    any: bool,
}

impl Counts {
    fn add(&mut self, c: char) {
        self.any = true;
        if c.is_whitespace() {
            return;
        }
        let class = if is_cjk(c) {
            &mut self.cjk
        } else if c.is_ascii_punctuation() || c.is_ascii_digit() {
            &mut self.symbols
        } else if c.is_ascii() {
            &mut self.letters
        } else {
            &mut self.other
        };
        *class += 1;
    }

    fn tokens(&self) -> u64 {
        let tokens = self.letters.div_ceil(4)
            + (self.symbols * 2).div_ceil(3)
            + self.cjk
            + self.other.div_ceil(2);
        tokens.max(u64::from(self.any))
    }
}

/// Han ideographs, kana, Hangul, CJK symbols and punctuation, full-width forms.
fn is_cjk(c: char) -> bool {
    matches!(u32::from(c),
        0x3000..=0x303F   // CJK symbols and punctuation
        | 0x3040..=0x30FF // hiragana, katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
        | 0xF900..=0xFAFF // CJK compatibility ideographs
        | 0xFF00..=0xFFEF // half-width and full-width forms
        | 0x20000..=0x2FFFF // CJK extensions B..F
    )
}
