//! Size limits in characters and in estimated tokens.
//!
//! [`SizeLimit`] blocks (or, with [`Action::Redact`], truncates) text longer than a number of
//! characters or of estimated tokens. Tokens are estimated with the one approximation the
//! budget and the rate limiter also use, [`llmkit_core::tokens::approximate`] (letters, symbols
//! and CJK characters priced apart), which is enough for a guard whose job is to stop a 2 MB
//! paste before it costs money; the cut is [`llmkit_core::tokens::approximate_cut`].
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use llmkit_guard::{Guard, GuardContext, Provenance, Verdict};
//! use llmkit_guard::input::size::SizeLimit;
//!
//! let limit = SizeLimit::new().max_chars(10);
//! let d = limit.check("this is far too long", &GuardContext::input(Provenance::User)).await;
//! assert_eq!(d.verdict, Verdict::Block);
//! # })
//! ```

use async_trait::async_trait;

use crate::guard::{Action, Decision, Edit, Guard, GuardContext, TransformKind, Verdict};

/// The size-limit guard. Defaults: 32 000 characters, 8 000 estimated tokens, action
/// [`Action::Block`]; [`Action::Redact`] truncates to the limit instead.
#[derive(Debug, Clone)]
#[must_use]
pub struct SizeLimit {
    max_chars: usize,
    max_tokens: u64,
    action: Action,
}

impl Default for SizeLimit {
    fn default() -> Self {
        SizeLimit::new()
    }
}

impl SizeLimit {
    /// The defaults.
    pub fn new() -> Self {
        SizeLimit {
            max_chars: 32_000,
            max_tokens: 8_000,
            action: Action::Block,
        }
    }

    /// Maximum characters (Unicode scalar values).
    pub fn max_chars(mut self, n: usize) -> Self {
        self.max_chars = n;
        self
    }

    /// Maximum estimated tokens.
    pub fn max_tokens(mut self, n: u64) -> Self {
        self.max_tokens = n;
        self
    }

    /// Sets the action.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// The byte offset where the text must be cut to fit both limits, or `None` if it fits.
    pub fn cut_at(&self, text: &str) -> Option<usize> {
        // Walk only as far as needed: a huge text must not be walked whole. The character cut
        // comes first, so the token count never looks past it.
        // A text of at most `max_chars` bytes has at most that many characters: no walk.
        let by_chars = if text.len() <= self.max_chars {
            None
        } else {
            text.char_indices().nth(self.max_chars).map(|(i, _)| i)
        };
        let head = by_chars.map_or(text, |i| text.get(..i).unwrap_or(text));
        llmkit_core::tokens::approximate_cut(head, self.max_tokens).or(by_chars)
    }
}

#[async_trait]
impl Guard for SizeLimit {
    fn name(&self) -> &str {
        "size"
    }

    async fn check(&self, text: &str, _ctx: &GuardContext<'_>) -> Decision {
        let Some(cut) = self.cut_at(text) else {
            return Decision::allow("size");
        };
        let chars = text.chars().count();
        let tokens = llmkit_core::estimate_tokens(text);
        let reason = format!(
            "text of {chars} chars (~{tokens} tokens) exceeds the limit of {} chars / {} tokens",
            self.max_chars, self.max_tokens
        );
        let mut d = Decision::block("size", 1.0, reason);
        d.verdict = match self.action {
            Action::Block => Verdict::Block,
            Action::Flag => Verdict::Flag,
            Action::Redact => Verdict::Transform {
                kind: TransformKind::Truncate,
                edits: vec![Edit {
                    range: cut..text.len(),
                    replacement: String::new(),
                }],
            },
        };
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::{Provenance, apply_edits};

    #[tokio::test]
    async fn limits_and_truncation() {
        let ctx = GuardContext::input(Provenance::User);
        let g = SizeLimit::new().max_chars(5).action(Action::Redact);
        let d = g.check("héllo wörld", &ctx).await;
        let Verdict::Transform { edits, kind } = &d.verdict else {
            panic!("{d:?}")
        };
        assert_eq!(*kind, TransformKind::Truncate);
        assert_eq!(apply_edits("héllo wörld", edits), "héllo");
        assert!(g.check("short", &ctx).await.is_allow());
        // The token limit uses the shared approximation: digits cost 2 tokens per 3, letters 1
        // per 4, CJK characters 1 each (not chars / 4, which let 8 CJK characters through as 2).
        let t = SizeLimit::new().max_tokens(2);
        assert!(t.check("123", &ctx).await.is_allow());
        assert!(t.check("1234", &ctx).await.is_block());
        assert!(t.check("hello wo", &ctx).await.is_allow());
        assert!(t.check("お誕", &ctx).await.is_allow());
        assert!(t.check("お誕生日おめでとう", &ctx).await.is_block());
        let cut = SizeLimit::new().max_tokens(2).action(Action::Redact);
        let d = cut.check("お誕生日おめでとう", &ctx).await;
        let Verdict::Transform { edits, .. } = &d.verdict else {
            panic!("{d:?}")
        };
        assert_eq!(apply_edits("お誕生日おめでとう", edits), "お誕");
        // The character limit at its edge, where the byte-length shortcut decides: five
        // characters in five or six bytes fit, a sixth character is cut.
        let five = SizeLimit::new().max_chars(5);
        assert_eq!(five.cut_at("hello"), None);
        assert_eq!(five.cut_at("héllo"), None);
        assert_eq!(five.cut_at("hello!"), Some(5));
        assert_eq!(five.cut_at("héllo!"), Some(6));
        // Both limits: the sooner cut wins.
        let both = SizeLimit::new().max_chars(3).max_tokens(100);
        assert_eq!(both.cut_at("abcdef"), Some(3));
        assert_eq!(
            SizeLimit::new()
                .max_chars(100)
                .max_tokens(1)
                .cut_at("abcdef"),
            Some(4)
        );
    }
}
