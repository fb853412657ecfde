//! Content capture: off by default; when on, prompts and outputs pass a [`Redactor`] and a size
//! cap before they become span events or JSON-lines fields.
//!
//! [`DefaultRedactor`] masks e-mail addresses, phone-like numbers, card-like numbers (Luhn
//! checked) and API-key-like tokens. It is a safety net for traces, not a PII detector; the guard
//! crate has the full detectors. Any `Fn(&str) -> String` is a redactor too.
//!
//! ```
//! use llmkit_core::telemetry::{CaptureConfig, DefaultRedactor, Redactor};
//!
//! let r = DefaultRedactor::new();
//! let out = r.redact("mail ann@example.com, card 4111 1111 1111 1111, key sk-abcdefghijklmnop1234");
//! assert_eq!(out, "mail [EMAIL], card [CARD], key [SECRET]");
//!
//! let capture = CaptureConfig::enabled().max_chars(8);
//! assert_eq!(capture.apply("hello world"), ("hello wo…".to_string(), true));
//! assert!(!CaptureConfig::default().is_enabled(), "capture is off by default");
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use regex::Regex;

/// Rewrites text before it is recorded. Implement it for your own PII rules, or pass a closure.
pub trait Redactor: Send + Sync {
    /// Returns `text` with sensitive parts masked.
    fn redact(&self, text: &str) -> String;
}

impl<F> Redactor for F
where
    F: Fn(&str) -> String + Send + Sync,
{
    fn redact(&self, text: &str) -> String {
        self(text)
    }
}

/// Masks e-mails (`[EMAIL]`), card-like numbers passing the Luhn check (`[CARD]`), phone-like
/// numbers of 7 to 15 digits (`[PHONE]`) and credentials (`[SECRET]`: every shape in
/// [`crate::secrets::SECRET_SHAPES`] — `sk-…`, `sk-ant-…`, `AKIA…`, `ghp_…`, `AIza…`, `xox?-…`,
/// Stripe keys, PEM private keys, JWTs — and `Bearer …`).
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRedactor {
    _private: (),
}

struct Patterns {
    secret: Regex,
    email: Regex,
    digits: Regex,
}

fn patterns() -> Option<&'static Patterns> {
    static P: OnceLock<Option<Patterns>> = OnceLock::new();
    P.get_or_init(|| {
        Some(Patterns {
            // Every credential shape llmkit knows (`crate::secrets`), plus bearer tokens.
            secret: Regex::new(
                &crate::secrets::SECRET_SHAPES
                    .iter()
                    .map(|s| s.pattern)
                    .chain([crate::secrets::BEARER_PATTERN])
                    .collect::<Vec<_>>()
                    .join("|"),
            )
            .ok()?,
            email: Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}").ok()?,
            // A run of digits with single spaces, dashes, dots or parentheses between them,
            // optionally led by `+`. Classified by digit count below.
            digits: Regex::new(r"\+?\(?\d(?:[\d\s\-.()]*\d)?").ok()?,
        })
    })
    .as_ref()
}

fn luhn_ok(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

impl DefaultRedactor {
    /// The default redactor.
    pub fn new() -> Self {
        DefaultRedactor::default()
    }
}

impl Redactor for DefaultRedactor {
    fn redact(&self, text: &str) -> String {
        let Some(p) = patterns() else {
            // The patterns are constants; if they ever failed to compile, record nothing
            // rather than raw content.
            return "[REDACTED]".to_owned();
        };
        let text = p.secret.replace_all(text, "[SECRET]");
        let text = p.email.replace_all(&text, "[EMAIL]");
        let text = p.digits.replace_all(&text, |caps: &regex::Captures<'_>| {
            let m = caps.get(0).map_or("", |m| m.as_str());
            let digits: Vec<u32> = m.chars().filter_map(|c| c.to_digit(10)).collect();
            let n = digits.len();
            if (13..=19).contains(&n) && luhn_ok(&digits) {
                "[CARD]".to_owned()
            } else if ((7..=15).contains(&n) && m.chars().any(|c| !c.is_ascii_digit())) || n >= 10 {
                // Separated runs of 7+ digits look like phone numbers; a bare run needs 10+
                // digits so that years, amounts and small ids stay readable.
                "[PHONE]".to_owned()
            } else {
                m.to_owned()
            }
        });
        text.into_owned()
    }
}

/// Whether and how content is captured. Default: **off**; when enabled, the
/// [`DefaultRedactor`] and a cap of 4096 characters per captured text apply.
#[derive(Clone)]
#[must_use]
pub struct CaptureConfig {
    enabled: bool,
    max_chars: usize,
    redactor: Arc<dyn Redactor>,
}

impl fmt::Debug for CaptureConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaptureConfig")
            .field("enabled", &self.enabled)
            .field("max_chars", &self.max_chars)
            .finish_non_exhaustive()
    }
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            enabled: false,
            max_chars: 4096,
            redactor: Arc::new(DefaultRedactor::new()),
        }
    }
}

impl CaptureConfig {
    /// Capture off (the default).
    pub fn disabled() -> Self {
        Self::default()
    }

    /// Capture on, with the default redactor and cap.
    pub fn enabled() -> Self {
        CaptureConfig {
            enabled: true,
            ..Self::default()
        }
    }

    /// Maximum characters kept per captured text (default 4096); longer text is cut and marked.
    pub fn max_chars(mut self, n: usize) -> Self {
        self.max_chars = n;
        self
    }

    /// Replaces the redactor (default: [`DefaultRedactor`]).
    pub fn redactor(mut self, redactor: impl Redactor + 'static) -> Self {
        self.redactor = Arc::new(redactor);
        self
    }

    /// Whether capture is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Redacts, then caps `text`. Returns the text and whether it was cut. Redaction runs first
    /// so a secret straddling the cap is never half-recorded.
    pub fn apply(&self, text: &str) -> (String, bool) {
        let redacted = self.redactor.redact(text);
        match redacted.char_indices().nth(self.max_chars) {
            Some((cut, _)) => {
                let mut s = redacted.get(..cut).unwrap_or_default().to_owned();
                s.push('…');
                (s, true)
            }
            None => (redacted, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn masks_each_kind_and_keeps_ordinary_numbers() {
        let r = DefaultRedactor::new();
        assert_eq!(r.redact("call +1 (415) 555-0133 now"), "call [PHONE] now");
        assert_eq!(
            r.redact("in 2026 we sold 42 units"),
            "in 2026 we sold 42 units"
        );
        assert_eq!(r.redact("AKIAIOSFODNN7EXAMPLE"), "[SECRET]");
        assert_eq!(r.redact("Bearer abcdefghijklmnopqrstu"), "[SECRET]");
        assert_eq!(r.redact("x@y.io"), "[EMAIL]");
        // Fails Luhn, 16 digits, no separators: still masked as a long number.
        assert_eq!(r.redact("4111111111111112"), "[PHONE]");
    }

    proptest! {
        #[test]
        fn redacted_output_never_contains_the_email(user in "[a-z]{1,10}", host in "[a-z]{1,10}") {
            let email = format!("{user}@{host}.com");
            let out = DefaultRedactor::new().redact(&format!("contact {email} please"));
            prop_assert!(!out.contains(&email));
        }

        #[test]
        fn cap_bounds_length(text in ".{0,200}", cap in 0usize..50) {
            let (out, cut) = CaptureConfig::enabled().redactor(|s: &str| s.to_owned()).max_chars(cap).apply(&text);
            prop_assert!(out.chars().count() <= cap + 1);
            prop_assert_eq!(cut, text.chars().count() > cap);
        }
    }
}
