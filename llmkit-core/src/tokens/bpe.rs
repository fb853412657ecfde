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

/// Texts longer than this are not remembered (their BPE pass dwarfs a second one anyway, and
/// a thread should not keep large prompts alive).
const MEMO_MAX_TEXT: usize = 16 * 1024;
/// Texts remembered per thread: a system prompt, a few turns.
const MEMO_ENTRIES: usize = 8;

/// Exact counts made recently on this thread.
#[derive(Default)]
struct Memo {
    entries: Vec<(Encoding, String, u64)>,
    next: usize,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::new(Memo::default());
}

/// The exact count of `text` in `encoding`, by `count` or from this thread's memo.
///
/// Why (issue 23): the recommended stack counts every prompt twice per call, once in the
/// budget (to price it) and once in the rate limiter (to reserve tokens), both before the call
/// leaves the thread; the BPE pass costs ~4 µs and ~24 allocations for a one-line prompt and
/// touches tiktoken's large tables, which over HTTP start cold on every call. The second count
/// is now a string comparison. A count depends only on the encoding and the text, so a
/// remembered one is the same number.
pub(super) fn count_memo(encoding: Encoding, text: &str, count: impl FnOnce(&str) -> u64) -> u64 {
    if text.len() > MEMO_MAX_TEXT {
        return count(text);
    }
    MEMO.with(|memo| {
        // A re-entrant call (never expected) just counts.
        let Ok(mut memo) = memo.try_borrow_mut() else {
            return count(text);
        };
        if let Some((_, _, n)) = memo
            .entries
            .iter()
            .find(|(e, t, _)| *e == encoding && t == text)
        {
            return *n;
        }
        let n = count(text);
        if memo.entries.len() < MEMO_ENTRIES {
            memo.entries.push((encoding, text.to_owned(), n));
        } else {
            let slot = memo.next % MEMO_ENTRIES;
            memo.next = slot + 1;
            if let Some(entry) = memo.entries.get_mut(slot) {
                // Reuses the slot's buffer: no allocation once it is large enough.
                entry.0 = encoding;
                entry.1.clear();
                entry.1.push_str(text);
                entry.2 = n;
            }
        }
        n
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn the_memo_counts_each_text_and_encoding_once_and_returns_the_same_number() {
        let calls = Cell::new(0u32);
        let count = |t: &str| {
            calls.set(calls.get() + 1);
            t.len() as u64
        };
        let (cl, o) = (Encoding::Cl100kBase, Encoding::O200kBase);
        assert_eq!(count_memo(cl, "memo test: refund window?", count), 25);
        assert_eq!(count_memo(cl, "memo test: refund window?", count), 25);
        assert_eq!(calls.get(), 1, "the second count came from the memo");
        // Another encoding is another count.
        assert_eq!(count_memo(o, "memo test: refund window?", count), 25);
        assert_eq!(calls.get(), 2);
        // More texts than entries: the oldest is forgotten and counted again, never mixed up.
        for i in 0..MEMO_ENTRIES {
            let text = format!("memo test {i}");
            assert_eq!(count_memo(cl, &text, count), text.len() as u64);
        }
        let before = calls.get();
        assert_eq!(count_memo(cl, "memo test: refund window?", count), 25);
        assert_eq!(calls.get(), before + 1);
        // Long texts are not remembered.
        let long = "x".repeat(MEMO_MAX_TEXT + 1);
        count_memo(cl, &long, count);
        count_memo(cl, &long, count);
        assert_eq!(calls.get(), before + 3);
    }

    #[test]
    fn remembered_counts_equal_tiktoken() {
        let Some(bpe) = load(Encoding::O200kBase) else {
            panic!("the bundled o200k_base vocabulary must load")
        };
        let text = "Can I get a refund after 45 days? お誕生日おめでとう";
        let direct = bpe.encode_ordinary(text).len() as u64;
        let first = count_memo(Encoding::O200kBase, text, |t| {
            bpe.encode_ordinary(t).len() as u64
        });
        let second = count_memo(Encoding::O200kBase, text, |_| u64::MAX);
        assert_eq!((first, second), (direct, direct));
    }
}
