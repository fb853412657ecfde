//! The exact encoders: tiktoken-rs with the vocabularies it ships.

use std::cell::RefCell;
use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

use super::Encoding;

/// The encoding tiktoken uses for `model`, when it is one llmkit counts exactly.
pub(super) fn encoding_for_model(model: &str) -> Option<Encoding> {
    match get_tokenizer(model)? {
        Tokenizer::O200kBase => Some(Encoding::O200kBase),
        Tokenizer::Cl100kBase => Some(Encoding::Cl100kBase),
        // Older encodings (GPT-3, Codex) and gpt-oss's harmony format: approximate.
        _ => None,
    }
}

/// The encoder, loaded once per process. `None` only if the bundled vocabulary fails to parse,
/// which would be a broken build of tiktoken-rs: callers then fall back to the approximation
/// rather than panic.
pub(super) fn load(encoding: Encoding) -> Option<&'static CoreBPE> {
    static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();
    static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();
    let cell = match encoding {
        Encoding::Cl100kBase => &CL100K,
        Encoding::O200kBase => &O200K,
    };
    cell.get_or_init(|| {
        let loaded = match encoding {
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base(),
            Encoding::O200kBase => tiktoken_rs::o200k_base(),
        };
        match loaded {
            Ok(bpe) => Some(bpe),
            Err(e) => {
                tracing::warn!(encoding = encoding.name(), error = %e, "llmkit.tokens.vocabulary_failed");
                None
            }
        }
    })
    .as_ref()
}

/// Longest chunk whose count is remembered: a slot holds the chunk's bytes inline, so a slot
/// is 32 bytes and a lookup touches one cache line. Longer chunks (rare in prose: a word with
/// its leading space and trailing punctuation) are counted by tiktoken every time.
const CHUNK_MAX: usize = 28;
/// Remembered chunks per thread (direct-mapped, 128 KiB once allocated): a few thousand
/// distinct words is the working vocabulary of most prompts.
const SLOTS: usize = 4096;

/// One remembered chunk: its bytes, encoding and token count. `len == 0` is an empty slot
/// (chunks are never empty).
#[derive(Clone, Copy)]
struct Slot {
    bytes: [u8; CHUNK_MAX],
    len: u8,
    encoding: u8,
    count: u16,
}

const EMPTY: Slot = Slot {
    bytes: [0; CHUNK_MAX],
    len: 0,
    encoding: 0,
    count: 0,
};

thread_local! {
    static CHUNKS: RefCell<Option<Box<[Slot]>>> = const { RefCell::new(None) };
}

/// The exact count of `text` in `encoding`: tiktoken's, computed chunk by chunk with each
/// chunk's count remembered on this thread.
///
/// Why (issue 23): the recommended stack counts every prompt exactly, in the budget (to price
/// it) and in the rate limiter (to reserve tokens), and tiktoken's split regex
/// (`fancy-regex`, with a look-ahead) plus its hash lookups cost ~14k instructions and ~12
/// allocations for a one-line prompt. Prompts are made of words a thread has seen before, so
/// most of that work is repeated.
///
/// Why it is exact: tiktoken splits text with its pattern and encodes each piece on its own
/// (BPE never merges across pieces), so the count of a text is the sum of the counts of any
/// chunks whose edges are piece edges, provided the pattern splits each chunk alone as it
/// does in place. In both `cl100k_base` and `o200k_base`:
/// - no alternative matches a non-whitespace character followed by whitespace (letter, digit
///   and punctuation runs stop before whitespace; the whitespace alternatives hold only
///   whitespace), so a space after a visible ASCII character (`!`..=`~`) starts a piece;
/// - digits only ever match `\p{N}{1,3}`, so an ASCII digit after a visible non-digit, and a
///   non-digit ASCII character after a digit, start a piece, and a digit run splits into
///   threes from its start;
/// - a single space between a visible character and a digit is a piece of its own (`\s`).
///
/// Every chunk cut this way ends in a visible character (or is that single space, which the
/// pattern matches alone either way), so the look-ahead (`\s+(?!\S)`) and the end anchor
/// (`\s++$`) see inside the chunk what they see in the whole text. Checked against tiktoken
/// on random text and on every document of this repository (tests below). The numbers that
/// make most prompts unique (ids, amounts, dates) become chunks of at most three digits,
/// which a thread soon knows.
///
/// A slot that holds another chunk (a hash collision) is overwritten, never searched, so
/// crafted text can at worst make every chunk a miss: tiktoken's own cost.
pub(super) fn count_exact(encoding: Encoding, bpe: &CoreBPE, text: &str) -> u64 {
    CHUNKS.with(|cell| {
        // A re-entrant call (never expected) just counts.
        let Ok(mut slots) = cell.try_borrow_mut() else {
            return encode_len(bpe, text);
        };
        let slots = slots.get_or_insert_with(|| vec![EMPTY; SLOTS].into_boxed_slice());
        let visible = |b: u8| matches!(b, b'!'..=b'~');
        let mut total = 0;
        let mut start = 0;
        // The two bytes before `b` (0: none), and the length of the ASCII digit run `b`
        // continues when that run started after an ASCII byte (so it is a whole `\p{N}` run).
        let (mut prev, mut prev2) = (0u8, 0u8);
        let mut run: Option<usize> = None;
        for (i, &b) in text.as_bytes().iter().enumerate() {
            let cut = if b == b' ' {
                visible(prev)
            } else if b.is_ascii_digit() {
                match run {
                    Some(n) if prev.is_ascii_digit() => n % 3 == 0,
                    _ => {
                        (visible(prev) && !prev.is_ascii_digit())
                            || (prev == b' ' && visible(prev2))
                    }
                }
            } else {
                b.is_ascii() && prev.is_ascii_digit()
            };
            if cut && i > start {
                total += chunk(slots, encoding, bpe, text.get(start..i).unwrap_or_default());
                start = i;
            }
            run = if !b.is_ascii_digit() {
                None
            } else if prev.is_ascii_digit() {
                run.map(|n| n + 1)
            } else if prev.is_ascii() {
                Some(1)
            } else {
                None
            };
            prev2 = prev;
            prev = b;
        }
        total + chunk(slots, encoding, bpe, text.get(start..).unwrap_or_default())
    })
}

/// One chunk's count, from its slot or from tiktoken (then remembered).
fn chunk(slots: &mut [Slot], encoding: Encoding, bpe: &CoreBPE, chunk: &str) -> u64 {
    let bytes = chunk.as_bytes();
    if bytes.is_empty() {
        return 0;
    }
    if bytes.len() > CHUNK_MAX {
        return encode_len(bpe, chunk);
    }
    let tag = encoding as u8;
    // FNV-1a over the chunk and its encoding: a few instructions per byte, and collisions
    // only cost a miss.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(tag);
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    #[allow(clippy::cast_possible_truncation)]
    let index = ((h ^ (h >> 32)) as usize) & (SLOTS - 1);
    let Some(slot) = slots.get_mut(index) else {
        return encode_len(bpe, chunk);
    };
    if usize::from(slot.len) == bytes.len()
        && slot.encoding == tag
        && slot.bytes.get(..bytes.len()) == Some(bytes)
    {
        return u64::from(slot.count);
    }
    let n = encode_len(bpe, chunk);
    if let (Ok(count), Some(dst)) = (u16::try_from(n), slot.bytes.get_mut(..bytes.len())) {
        dst.copy_from_slice(bytes);
        #[allow(clippy::cast_possible_truncation)]
        let len = bytes.len() as u8; // at most CHUNK_MAX
        slot.len = len;
        slot.encoding = tag;
        slot.count = count;
    }
    n
}

/// tiktoken's count of `text`, without special tokens.
fn encode_len(bpe: &CoreBPE, text: &str) -> u64 {
    bpe.encode_ordinary(text).len() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn loaded(encoding: Encoding) -> &'static CoreBPE {
        let Some(bpe) = load(encoding) else {
            panic!("the bundled {} vocabulary must load", encoding.name())
        };
        bpe
    }

    /// The chunked count against tiktoken's whole-text count, twice (the second from the
    /// remembered chunks).
    fn assert_exact(encoding: Encoding, text: &str) {
        let bpe = loaded(encoding);
        let direct = encode_len(bpe, text);
        let first = count_exact(encoding, bpe, text);
        let second = count_exact(encoding, bpe, text);
        assert_eq!(
            (first, second),
            (direct, direct),
            "{} on {text:?}",
            encoding.name()
        );
    }

    #[test]
    fn chunked_counts_equal_tiktoken_on_the_patterns_edge_cases() {
        let cases = [
            "",
            " ",
            "   ",
            "a",
            "What is the refund window for order 12345? Please answer in one sentence.",
            "Can I get a refund after 45 days? お誕生日おめでとう",
            "it's   spaced\tout\n\n  and  'LL they've\r\n done.",
            "trailing spaces   ",
            " leading",
            "x \u{a0} y\u{2003} z",
            "fn main() { let v = vec![1, 2, 3]; println!(\"{v:?}\"); }",
            "{\"a\": 1, \"b\": [true, null]}",
            "HTTPServer URLs ABCdef McDonald's I'M",
            "1234567 89 0.5 -3 1e10",
            "e\u{301}t\u{e9} \u{393}\u{3b5}\u{3b9}\u{3ac} \u{43f}\u{440}\u{438}\u{432}\u{435}\u{442}",
            "a\n b\n\n c \n\n\n d",
            "word ! ? . , ; : / \\ | ~ ` @ # $ % ^ & * ( ) - _ = + [ ] { } < >",
            "<|endoftext|> is text here",
            "order 1234567890, ids a1b2c3 3f2a-99 x 12 y  34 z\t56 \u{663}12 12\u{663}45 1\u{b2}234",
            "1 22 333 4444 55555 666666 7777777 12345678901234567890",
        ];
        for encoding in [Encoding::Cl100kBase, Encoding::O200kBase] {
            for text in cases {
                assert_exact(encoding, text);
            }
        }
    }

    #[test]
    fn chunked_counts_equal_tiktoken_on_every_document_of_the_repository() {
        // Text this code was not written against: the repository's own docs and READMEs,
        // paragraph by paragraph and whole.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("docs"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        files.push(root.join("README.md"));
        files.retain(|p| p.extension().is_some_and(|e| e == "md"));
        assert!(
            files.len() > 3,
            "expected the repository's docs, found {files:?}"
        );
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            for encoding in [Encoding::Cl100kBase, Encoding::O200kBase] {
                assert_exact(encoding, &text);
                for paragraph in text.split("\n\n") {
                    assert_exact(encoding, paragraph);
                }
            }
        }
    }

    #[test]
    fn colliding_and_long_chunks_stay_exact() {
        // More distinct chunks than slots: collisions overwrite, and every count stays exact.
        let text: String = (0..SLOTS * 2).map(|i| format!(" w{i:x}q")).collect();
        assert_exact(Encoding::O200kBase, &text);
        let long = format!("{} tail", "x".repeat(CHUNK_MAX * 3));
        assert_exact(Encoding::Cl100kBase, &long);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn chunked_counts_equal_tiktoken_on_random_text(
            text in "[ a-zA-Z0-9'\"\\n\\r\\t.,?!/:;(){}\\-_\u{a0}\u{2003}\u{e9}\u{df}\u{301}\u{6f22}\u{3042}\u{1f600}]{0,80}"
        ) {
            for encoding in [Encoding::Cl100kBase, Encoding::O200kBase] {
                let bpe = loaded(encoding);
                prop_assert_eq!(count_exact(encoding, bpe, &text), encode_len(bpe, &text));
            }
        }
    }
}
