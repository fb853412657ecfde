//! Character policy: invisible characters, bidirectional controls and homoglyph mixing.
//!
//! [`CharPolicy`] finds zero-width characters (used to hide instructions or split trigger
//! words), bidi controls (the "Trojan Source" trick that displays text in another order than it
//! is read) and words that mix Latin letters with look-alike Cyrillic or Greek ones
//! (`pаypal` with a Cyrillic `а`). With [`Action::Redact`] invisible characters are removed and
//! mixed words are folded to their Latin skeleton.
//!
//! ```
//! use llmkit_guard::input::charset::{CharPolicy, strip_invisible};
//! assert_eq!(strip_invisible("ig\u{200b}nore"), "ignore");
//! let findings = CharPolicy::new().findings("p\u{0430}ypal login");
//! assert_eq!(findings[0].kind, "homoglyph_mixing");
//! ```

use async_trait::async_trait;

use crate::guard::{Action, Decision, Finding, Guard, GuardContext};

/// Zero-width and other invisible format characters.
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' | '\u{00AD}' | '\u{180E}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// Bidirectional control characters.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// Removes invisible and bidi control characters.
pub fn strip_invisible(text: &str) -> String {
    text.chars()
        .filter(|&c| !is_invisible(c) && !is_bidi_control(c))
        .collect()
}

/// The Latin letter a Cyrillic or Greek look-alike is confused with, if any.
pub fn latin_skeleton(c: char) -> Option<char> {
    Some(match c {
        // Cyrillic
        'а' => 'a',
        'е' => 'e',
        'о' => 'o',
        'р' => 'p',
        'с' => 'c',
        'у' => 'y',
        'х' => 'x',
        'і' => 'i',
        'ј' => 'j',
        'ѕ' => 's',
        'ԁ' => 'd',
        'ԛ' => 'q',
        'ԝ' => 'w',
        'А' => 'A',
        'В' => 'B',
        'Е' => 'E',
        'К' => 'K',
        'М' => 'M',
        'Н' => 'H',
        'О' => 'O',
        'Р' => 'P',
        'С' => 'C',
        'Т' => 'T',
        'Х' => 'X',
        'І' => 'I',
        'Ј' => 'J',
        'Ѕ' => 'S',
        // Greek
        'ο' => 'o',
        'α' => 'a',
        'ν' => 'v',
        'ι' => 'i',
        'κ' => 'k',
        'Α' => 'A',
        'Β' => 'B',
        'Ε' => 'E',
        'Ζ' => 'Z',
        'Η' => 'H',
        'Ι' => 'I',
        'Κ' => 'K',
        'Μ' => 'M',
        'Ν' => 'N',
        'Ο' => 'O',
        'Ρ' => 'P',
        'Τ' => 'T',
        'Υ' => 'Y',
        'Χ' => 'X',
        _ => return None,
    })
}

/// Folds look-alike letters to Latin and removes invisible characters: the text an attacker
/// meant the model to read. Used before pattern matching so `ign\u{200b}оre` still matches.
pub fn skeleton(text: &str) -> String {
    text.chars()
        .filter(|&c| !is_invisible(c) && !is_bidi_control(c))
        .map(|c| latin_skeleton(c).unwrap_or(c))
        .collect()
}

/// The character-policy guard. Defaults: flags invisible characters, bidi controls and
/// homoglyph mixing, action [`Action::Block`], threshold 0.5.
#[derive(Debug, Clone)]
#[must_use]
pub struct CharPolicy {
    action: Action,
    threshold: f32,
    allow_bidi: bool,
}

impl Default for CharPolicy {
    fn default() -> Self {
        CharPolicy::new()
    }
}

impl CharPolicy {
    /// The default policy.
    pub fn new() -> Self {
        CharPolicy {
            action: Action::Block,
            threshold: 0.5,
            allow_bidi: false,
        }
    }

    /// Sets the action (default block). Redact removes invisible characters and folds mixed
    /// words to Latin.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// Allows bidi controls (for applications that legitimately handle right-to-left text with
    /// explicit marks). Default: not allowed.
    pub fn allow_bidi(mut self, allow: bool) -> Self {
        self.allow_bidi = allow;
        self
    }

    /// Everything this policy objects to in `text`.
    pub fn findings(&self, text: &str) -> Vec<Finding> {
        // Invisible and bidi controls and Cyrillic/Greek look-alikes are all non-ASCII, and
        // the ASCII check is a vectorised scan: most prompts are done here.
        if text.is_ascii() {
            return Vec::new();
        }
        // Every finding needs an invisible, bidi or look-alike character; accented and
        // non-Latin text usually has none, and the word-by-word pass below is the expensive part
        // (issue 23).
        if !text.chars().any(|c| {
            !c.is_ascii() && (is_invisible(c) || is_bidi_control(c) || latin_skeleton(c).is_some())
        }) {
            return Vec::new();
        }
        self.findings_char_by_char(text)
    }

    /// [`CharPolicy::findings`] without the shortcuts: every character and word looked at.
    fn findings_char_by_char(&self, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        for (i, c) in text.char_indices() {
            let range = i..i + c.len_utf8();
            if is_invisible(c) {
                out.push(
                    Finding::new("invisible_char", range, 0.6)
                        .with_detail(format!("U+{:04X}", c as u32))
                        .with_replacement(""),
                );
            } else if is_bidi_control(c) && !self.allow_bidi {
                out.push(
                    Finding::new("bidi_control", range, 0.8)
                        .with_detail(format!("U+{:04X}", c as u32))
                        .with_replacement(""),
                );
            }
        }
        // A word mixing Latin with Cyrillic/Greek look-alikes is the homoglyph trick; a word
        // entirely in Cyrillic or Greek is just another language.
        let mut start: Option<usize> = None;
        for (i, c) in text
            .char_indices()
            .chain(std::iter::once((text.len(), ' ')))
        {
            if c.is_alphanumeric() || is_invisible(c) {
                start.get_or_insert(i);
                continue;
            }
            if let Some(s) = start.take() {
                let word = text.get(s..i).unwrap_or("");
                let latin = word.chars().any(|c| c.is_ascii_alphabetic());
                let lookalike = word.chars().any(|c| latin_skeleton(c).is_some());
                if latin && lookalike {
                    let folded: String = word
                        .chars()
                        .filter(|&c| !is_invisible(c))
                        .map(|c| latin_skeleton(c).unwrap_or(c))
                        .collect();
                    out.retain(|f| !(f.range.start >= s && f.range.end <= i));
                    out.push(
                        Finding::new("homoglyph_mixing", s..i, 0.7)
                            .with_detail("latin mixed with cyrillic or greek look-alikes")
                            .with_replacement(folded),
                    );
                }
            }
        }
        out.sort_by_key(|f| f.range.start);
        out
    }
}

#[async_trait]
impl Guard for CharPolicy {
    fn name(&self) -> &str {
        "charset"
    }

    async fn check(&self, text: &str, _ctx: &GuardContext<'_>) -> Decision {
        Decision::from_findings("charset", self.action, self.threshold, self.findings(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_invisible_bidi_and_mixing() {
        let p = CharPolicy::new();
        assert!(
            p.findings("plain ascii and Ελληνικά and русский")
                .is_empty()
        );
        let f = p.findings("a\u{202E}b");
        assert_eq!(f[0].kind, "bidi_control");
        let f = p.findings("ig\u{200B}nore");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, "invisible_char");
        let f = p.findings("visit раypal.com");
        assert_eq!(f[0].kind, "homoglyph_mixing");
        assert_eq!(f[0].replacement.as_deref(), Some("paypal"));
        assert!(
            CharPolicy::new()
                .allow_bidi(true)
                .findings("a\u{200F}b")
                .is_empty()
        );
    }

    /// The shortcuts in `findings` decide as the character-by-character pass (issue 23).
    #[test]
    fn shortcut_matches_the_full_pass() {
        for p in [CharPolicy::new(), CharPolicy::new().allow_bidi(true)] {
            for text in [
                "",
                "plain",
                "Die Lieferung verzögert sich, Straße, naïve café",
                "Ελληνικά and русский",
                "visit раypal.com",
                "ig\u{200B}nore",
                "a\u{202E}b \u{200F}",
                "ＩＧＮＯＲＥ all",
            ] {
                assert_eq!(p.findings(text), p.findings_char_by_char(text), "{text:?}");
            }
            for text in crate::scan::test_texts::corpus() {
                assert_eq!(
                    p.findings(&text),
                    p.findings_char_by_char(&text),
                    "{text:?}"
                );
            }
            proptest::proptest!(|(text in crate::scan::test_texts::mixed())| {
                proptest::prop_assert_eq!(p.findings(&text), p.findings_char_by_char(&text));
            });
        }
    }

    #[test]
    fn skeleton_folds() {
        assert_eq!(skeleton("ign\u{200b}оre"), "ignore");
    }
}
