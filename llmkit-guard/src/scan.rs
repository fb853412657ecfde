//! One pass over a text for a whole pattern table, yielding every pattern's matches.
//!
//! A detector needs, for each of its patterns, exactly what `Regex::find_iter` gives: the
//! leftmost-first, non-overlapping matches of that pattern alone. Running one `find_iter` per
//! pattern reads the text once per pattern; a `RegexSet` prefilter (the previous design) adds a
//! pass and still reads the whole text again for every pattern that matches anywhere. A single
//! leftmost-first search over all patterns is not an option either: a match of one pattern would
//! hide a match of another that starts inside it (an Anthropic key is also OpenAI-shaped, an
//! injection phrase can hold another), which would change decisions.
//!
//! [`PatternScan`] reads the text once with a lazy DFA over all patterns in
//! [`MatchKind::All`] mode, which reports, for every pattern, every
//! offset where *some* match of it ends. That is complete: whatever `find_iter` would return
//! ends at one of those offsets. Each pattern with at least one end is then located with its own
//! regex, starting no earlier than it must: a match that ends at or after the first reported
//! end `e` past the cursor and is at most `max_len` bytes long cannot start before
//! `e - max_len`. So a pattern that matches nowhere costs nothing beyond the shared pass, and a
//! bounded pattern that matches once costs a search over about its own length, not the text.
//! Patterns without a length bound (`{24,}`) search from the cursor, as `find_iter` does.
//!
//! The result is exactly `find_iter`'s, pattern by pattern; `tests` check that against
//! `find_iter` itself on the guard corpora and on generated text. If the lazy DFA gives up (it
//! cannot on these patterns, which are ASCII-`\b` only, but the engine allows it) the scan falls
//! back to `find_iter` per pattern, which is slower and identical.

use std::ops::Range;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::{Input, MatchKind};

/// Creates a lazy-DFA cache for one thread.
type CacheFn = Box<dyn Fn() -> Cache + Send + Sync>;

/// Size limit for the compiled NFA and for each thread's lazy-DFA cache. The same budget the
/// `RegexSet` prefilter had: the injection table's automaton needs more than the 10 MB default.
const SIZE_LIMIT: usize = 64 << 20;

/// A pattern table compiled for [`PatternScan::find_all`].
pub(crate) struct PatternScan {
    /// One regex per pattern, for locating matches (leftmost-first, as `find_iter`).
    regexes: Vec<regex::Regex>,
    /// Where each pattern's next match can start.
    windows: Vec<Window>,
    /// The all-patterns forward DFA and a cache per thread; `None` when it could not be built
    /// (every pattern then runs `find_iter`).
    dfa: Option<(DFA, Pool<Cache, CacheFn>)>,
}

impl std::fmt::Debug for PatternScan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternScan")
            .field("patterns", &self.regexes.len())
            .field("dfa", &self.dfa.is_some())
            .finish()
    }
}

impl PatternScan {
    /// Compiles `patterns` (already through [`crate::guard::ascii_pattern`]), whose regexes the
    /// caller compiled from the same strings (so a broken pattern was reported there).
    pub(crate) fn new(patterns: &[String], regexes: Vec<regex::Regex>) -> PatternScan {
        let windows = patterns
            .iter()
            .map(|p| {
                let Ok(hir) = regex_automata::util::syntax::parse(p) else {
                    return Window::MaybeEmpty;
                };
                let props = hir.properties();
                match (props.minimum_len(), props.maximum_len()) {
                    (Some(min), Some(max)) if min > 0 => Window::Bounded(max),
                    (Some(min), None) if min > 0 => Window::Unbounded,
                    _ => Window::MaybeEmpty,
                }
            })
            .collect();
        let dfa = (regexes.len() == patterns.len())
            .then(|| {
                DFA::builder()
                    .configure(
                        DFA::config()
                            .match_kind(MatchKind::All)
                            .cache_capacity(SIZE_LIMIT),
                    )
                    .thompson(thompson::Config::new().nfa_size_limit(Some(SIZE_LIMIT)))
                    .build_many(patterns)
                    .ok()
            })
            .flatten()
            .map(|dfa| {
                let for_cache = dfa.clone();
                let create: CacheFn = Box::new(move || for_cache.create_cache());
                (dfa, Pool::new(create))
            });
        PatternScan {
            regexes,
            windows,
            dfa,
        }
    }

    /// The number of patterns.
    pub(crate) fn len(&self) -> usize {
        self.regexes.len()
    }

    /// The regex of pattern `i`.
    pub(crate) fn regex(&self, i: usize) -> Option<&regex::Regex> {
        self.regexes.get(i)
    }

    /// For every pattern, in table order, the ranges `find_iter` would return on `text`.
    pub(crate) fn find_all(&self, text: &str) -> Vec<Vec<Range<usize>>> {
        match self.ends(text) {
            Some(ends) => self
                .regexes
                .iter()
                .zip(&self.windows)
                .zip(&ends)
                .map(|((re, window), ends)| locate(re, *window, ends, text))
                .collect(),
            None => self.find_iter_each(text),
        }
    }

    /// `find_iter` per pattern: the fallback, and the oracle the tests compare against.
    pub(crate) fn find_iter_each(&self, text: &str) -> Vec<Vec<Range<usize>>> {
        self.regexes
            .iter()
            .map(|re| re.find_iter(text).map(|m| m.range()).collect())
            .collect()
    }

    /// Every offset at which a match of each pattern ends, ascending; `None` when there is no
    /// DFA or it gave up.
    ///
    /// The same walk as regex-automata's overlapping forward search, written out so the hot
    /// loop is one table lookup per byte: that search returns to its caller once per match and
    /// re-checks its state on each call, which made it three times slower per byte here. Match
    /// states are delayed by one byte, so a match state reached on the byte at `at` means
    /// matches ending at `at`; the end-of-input transition reports matches ending at the end.
    fn ends(&self, text: &str) -> Option<Vec<Vec<usize>>> {
        let (dfa, pool) = self.dfa.as_ref()?;
        let mut cache = pool.get();
        let mut ends: Vec<Vec<usize>> = vec![Vec::new(); self.regexes.len()];
        let record = |ends: &mut Vec<Vec<usize>>, cache: &Cache, sid, at: usize| {
            for i in 0..dfa.match_len(cache, sid) {
                let p = dfa.match_pattern(cache, sid, i).as_usize();
                if let Some(e) = ends.get_mut(p) {
                    e.push(at);
                }
            }
        };
        let input = Input::new(text);
        let mut sid = dfa.start_state_forward(&mut cache, &input).ok()?;
        for (at, &b) in text.as_bytes().iter().enumerate() {
            sid = dfa.next_state(&mut cache, sid, b).ok()?;
            if sid.is_tagged() {
                if sid.is_match() {
                    record(&mut ends, &cache, sid, at);
                } else if sid.is_dead() {
                    // Nothing can match any more (never the case for an unanchored search).
                    return Some(ends);
                } else if sid.is_quit() {
                    return None;
                }
            }
        }
        sid = dfa.next_eoi_state(&mut cache, sid).ok()?;
        if sid.is_match() {
            record(&mut ends, &cache, sid, text.len());
        }
        Some(ends)
    }
}

/// How far back from a reported end a pattern's match can start.
#[derive(Debug, Clone, Copy)]
enum Window {
    /// Every match is non-empty and at most this many bytes long.
    Bounded(usize),
    /// Every match is non-empty, with no upper bound (`{24,}`): search from the cursor.
    Unbounded,
    /// The pattern can match the empty string: the ends-after-the-cursor argument does not
    /// hold, so it runs `find_iter` whenever it matches at all.
    MaybeEmpty,
}

/// The matches of `re` on `text` given every offset where one of its matches ends (`ends`,
/// ascending): `find_iter`'s result, searching only where a match can start.
fn locate(re: &regex::Regex, window: Window, ends: &[usize], text: &str) -> Vec<Range<usize>> {
    if ends.is_empty() {
        return Vec::new();
    }
    let max_len = match window {
        Window::Bounded(n) => n,
        Window::Unbounded => usize::MAX,
        Window::MaybeEmpty => return re.find_iter(text).map(|m| m.range()).collect(),
    };
    let mut out = Vec::new();
    let mut pos = 0;
    let mut next = 0;
    loop {
        // The next match starts at or after `pos` and is not empty, so it ends after `pos`,
        // at one of the reported offsets: at the earliest, the first one past `pos`. None
        // left means no match left.
        while ends.get(next).is_some_and(|&e| e <= pos) {
            next += 1;
        }
        let Some(&end) = ends.get(next) else { break };
        let from = pos.max(end.saturating_sub(max_len));
        let Some(m) = re.find_at(text, from) else {
            break;
        };
        out.push(m.range());
        pos = m.end();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::ascii_pattern;

    fn scan(patterns: &[&str]) -> PatternScan {
        let p: Vec<String> = patterns.iter().map(|p| ascii_pattern(p)).collect();
        let r = p.iter().map(|p| regex::Regex::new(p).unwrap()).collect();
        PatternScan::new(&p, r)
    }

    /// Overlapping patterns keep every match of each, as separate `find_iter`s would: a
    /// leftmost-first search over the union would lose `b`'s match inside `a`'s.
    #[test]
    fn overlapping_patterns_keep_their_own_matches() {
        let s = scan(&[r"\bsk-[a-z]{4,}", r"ant-[a-z]+", r"x{2}", "zz?"]);
        assert!(s.dfa.is_some());
        let text = "key sk-ant-abcdef and ant-q xxxxx zzz";
        assert_eq!(s.find_all(text), s.find_iter_each(text));
        assert_eq!(s.find_all(text)[1].len(), 2);
        assert_eq!(s.find_all(text)[2].len(), 2);
    }

    /// A pattern that can match the empty string is located as `find_iter` locates it.
    #[test]
    fn empty_matches_fall_back_to_find_iter() {
        let s = scan(&["a*", r"[0-9]{0,3}"]);
        for text in ["", "baaab", "12345 6", "ééa"] {
            assert_eq!(s.find_all(text), s.find_iter_each(text), "{text:?}");
        }
    }
}

#[cfg(test)]
pub(crate) mod test_texts;

/// The one-pass scans of the three built-in tables against `find_iter` per pattern (the
/// mechanics they replaced), on the benchmark input, the guard corpora and generated text.
/// `tests/same_decisions.rs` checks the decisions built on top against a recording.
#[cfg(test)]
mod equivalence {
    use proptest::prelude::*;

    use super::PatternScan;

    fn tables() -> Vec<(&'static str, &'static PatternScan)> {
        let [rules, rules_and_decoders, decoders] = crate::injection::scorer::pattern_scans();
        let tables = [
            ("injection", rules),
            ("injection+decoders", rules_and_decoders),
            ("decoders", decoders),
            ("pii", crate::input::pii::pattern_scan()),
            ("secrets", crate::input::secrets::pattern_scan()),
        ];
        tables
            .into_iter()
            .map(|(name, scan)| {
                let scan = scan.unwrap_or_else(|| panic!("{name} table does not compile"));
                assert!(scan.dfa.is_some(), "{name}: no one-pass DFA");
                (name, scan)
            })
            .collect()
    }

    #[test]
    fn corpus_matches_find_iter() {
        let mut matches = 0;
        for text in super::test_texts::corpus() {
            for (name, scan) in tables() {
                let fast = scan.find_all(&text);
                assert_eq!(fast, scan.find_iter_each(&text), "{name}: {text:?}");
                matches += fast.iter().map(Vec::len).sum::<usize>();
            }
        }
        // The corpora are full of matches; a scan that found nothing would compare equal to a
        // broken oracle only if both were empty.
        assert!(matches > 1000, "{matches} matches");
    }

    proptest! {
        #[test]
        fn generated_text_matches_find_iter(text in super::test_texts::mixed()) {
            for (name, scan) in tables() {
                prop_assert_eq!(scan.find_all(&text), scan.find_iter_each(&text), "{}", name);
            }
        }
    }
}
