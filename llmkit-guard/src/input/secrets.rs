//! Secret detection: provider API keys, private keys, JWTs and high-entropy tokens.
//!
//! [`SecretDetector`] knows the shapes of OpenAI (`sk-`, `sk-proj-`), Anthropic (`sk-ant-`),
//! AWS access key ids (`AKIA`, `ASIA`), GitHub (`ghp_`, `gho_`, `github_pat_`), Google (`AIza`),
//! Slack (`xoxb-`, `xoxp-`, ...) and Stripe (`sk_live_`, `rk_live_`) keys, PEM private keys and
//! JWTs; anything else that looks like a random token is caught by a Shannon-entropy test
//! ([`shannon_entropy`]). Redaction writes `[REDACTED_KIND]`; secrets are never put in a vault.
//!
//! ```
//! use llmkit_guard::input::secrets::{SecretDetector, shannon_entropy};
//! let found = SecretDetector::new().detect("key=AKIAIOSFODNN7EXAMPLE");
//! assert_eq!(found[0].kind, "aws_access_key");
//! assert!(shannon_entropy("aaaa") < 0.01);
//! ```

use std::ops::Range;
use std::sync::LazyLock;

use async_trait::async_trait;
use llmkit_core::secrets::{SECRET_SHAPES, SecretShape};

use crate::guard::{
    Action, Decision, Finding, Guard, GuardContext, PatternError, ascii_pattern, compile_scan,
};
use crate::scan::PatternScan;

/// A detected secret: kind, byte range, confidence.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretMatch {
    /// `openai_key`, `anthropic_key`, `aws_access_key`, `github_token`, `google_api_key`,
    /// `slack_token`, `stripe_key`, `private_key`, `jwt` or `high_entropy`.
    pub kind: &'static str,
    /// Byte range in the text.
    pub range: Range<usize>,
    /// Confidence.
    pub score: f32,
}

/// The known credential shapes: llmkit-core's one table, shared with error scrubbing and trace
/// capture.
const KNOWN: &[SecretShape] = SECRET_SHAPES;

const TOKEN: &str = r"[A-Za-z0-9+/=_\-]{24,}";

/// The detector patterns, for the benchmark's `RegexSet` baseline.
pub fn patterns() -> Vec<String> {
    KNOWN
        .iter()
        .map(|k| k.pattern)
        .chain([TOKEN])
        .map(ascii_pattern)
        .collect()
}

/// Every known shape then the token pattern, compiled into one [`PatternScan`], or the first
/// that does not compile (surfaced by [`SecretDetector::try_new`]; never a shape silently
/// skipped).
static COMPILED: LazyLock<Result<PatternScan, PatternError>> = LazyLock::new(|| {
    compile_scan(
        "secrets",
        KNOWN
            .iter()
            .map(|k| (k.kind, k.pattern))
            .chain([("high_entropy", TOKEN)]),
    )
});

/// The compiled table, for the one-pass equivalence tests.
#[cfg(test)]
pub(crate) fn pattern_scan() -> Option<&'static PatternScan> {
    COMPILED.as_ref().ok()
}

/// Shannon entropy of the characters of `s`, in bits per character.
pub fn shannon_entropy(s: &str) -> f64 {
    let mut counts = [0u32; 256];
    let mut n = 0u32;
    for b in s.bytes() {
        if let Some(c) = counts.get_mut(usize::from(b)) {
            *c += 1;
        }
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    let n = f64::from(n);
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            -p * p.log2()
        })
        .sum()
}

/// Finds secrets. Defaults: every known kind, entropy test on tokens of at least 24 characters
/// with at least 4.0 bits per character that mix at least two of lower case, upper case and
/// digits and contain a digit.
#[derive(Debug, Clone)]
#[must_use]
pub struct SecretDetector {
    min_len: usize,
    min_entropy: f64,
    entropy: bool,
}

impl Default for SecretDetector {
    fn default() -> Self {
        SecretDetector::new()
    }
}

impl SecretDetector {
    /// The defaults. Compiles the patterns now (once per process), so the first request pays
    /// nothing; [`SecretDetector::try_new`] also reports a pattern that does not compile.
    pub fn new() -> Self {
        LazyLock::force(&COMPILED);
        SecretDetector {
            min_len: 24,
            min_entropy: 4.0,
            entropy: true,
        }
    }

    /// [`SecretDetector::new`], or the pattern that does not compile.
    pub fn try_new() -> Result<Self, PatternError> {
        let detector = SecretDetector::new();
        match COMPILED.as_ref() {
            Ok(_) => Ok(detector),
            Err(e) => Err(e.clone()),
        }
    }

    /// Sets the entropy threshold in bits per character (default 4.0).
    pub fn min_entropy(mut self, bits: f64) -> Self {
        self.min_entropy = bits;
        self
    }

    /// Sets the minimum token length for the entropy test (default 24).
    pub fn min_len(mut self, n: usize) -> Self {
        self.min_len = n;
        self
    }

    /// Turns the entropy test on or off (default on).
    pub fn entropy(mut self, on: bool) -> Self {
        self.entropy = on;
        self
    }

    /// Whether a token looks random enough to be a credential.
    pub fn is_high_entropy(&self, token: &str) -> bool {
        if token.len() < self.min_len {
            return false;
        }
        let lower = token.bytes().any(|b| b.is_ascii_lowercase());
        let upper = token.bytes().any(|b| b.is_ascii_uppercase());
        let digit = token.bytes().any(|b| b.is_ascii_digit());
        let classes = usize::from(lower) + usize::from(upper) + usize::from(digit);
        classes >= 2 && digit && shannon_entropy(token) >= self.min_entropy
    }

    /// Every secret, sorted and non-overlapping (known shapes win over the entropy test).
    pub fn detect(&self, text: &str) -> Vec<SecretMatch> {
        let mut out: Vec<SecretMatch> = Vec::new();
        let Ok(scan) = COMPILED.as_ref() else {
            return out;
        };
        // One pass for every shape and the token pattern (last), indices as in `KNOWN`.
        let mut found = scan.find_all(text);
        let tokens = found.pop().unwrap_or_default();
        for (shape, ranges) in KNOWN.iter().zip(found) {
            for m in ranges {
                // `sk-ant-` also matches the OpenAI shape; the earlier, more specific rule wins.
                if out
                    .iter()
                    .any(|o| o.range.start < m.end && m.start < o.range.end)
                {
                    continue;
                }
                out.push(SecretMatch {
                    kind: shape.kind,
                    range: m,
                    score: shape.confidence,
                });
            }
        }
        if self.entropy {
            for m in tokens {
                let overlaps = out
                    .iter()
                    .any(|o| o.range.start < m.end && m.start < o.range.end);
                if !overlaps && self.is_high_entropy(text.get(m.clone()).unwrap_or("")) {
                    out.push(SecretMatch {
                        kind: "high_entropy",
                        range: m,
                        score: 0.7,
                    });
                }
            }
        }
        out.sort_by_key(|m| m.range.start);
        out
    }
}

/// The secret guard. Defaults: [`SecretDetector::new`], action [`Action::Redact`], threshold
/// 0.5.
#[derive(Debug, Clone)]
#[must_use]
pub struct SecretGuard {
    detector: SecretDetector,
    action: Action,
    threshold: f32,
}

impl Default for SecretGuard {
    fn default() -> Self {
        SecretGuard::new()
    }
}

impl SecretGuard {
    /// The defaults.
    pub fn new() -> Self {
        SecretGuard {
            detector: SecretDetector::new(),
            action: Action::Redact,
            threshold: 0.5,
        }
    }

    /// Uses this detector.
    pub fn detector(mut self, detector: SecretDetector) -> Self {
        self.detector = detector;
        self
    }

    /// Sets the action.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// Sets the threshold (default 0.5; 0.8 ignores the entropy test's findings).
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// The findings for `text`.
    pub fn findings(&self, text: &str) -> Vec<Finding> {
        self.detector
            .detect(text)
            .into_iter()
            .map(|m| {
                Finding::new(m.kind, m.range, m.score)
                    .with_replacement(format!("[REDACTED_{}]", m.kind.to_uppercase()))
            })
            .collect()
    }
}

#[async_trait]
impl Guard for SecretGuard {
    fn name(&self) -> &str {
        "secrets"
    }

    async fn check(&self, text: &str, _ctx: &GuardContext<'_>) -> Decision {
        Decision::from_findings("secrets", self.action, self.threshold, self.findings(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<&'static str> {
        SecretDetector::new()
            .detect(text)
            .into_iter()
            .map(|m| m.kind)
            .collect()
    }

    #[test]
    fn known_shapes() {
        let cases = [
            (
                "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
                "openai_key",
            ),
            (
                "key sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_aa",
                "anthropic_key",
            ),
            ("AKIAIOSFODNN7EXAMPLE", "aws_access_key"),
            ("ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "github_token"),
            ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q", "google_api_key"),
            ("xoxb-123456789012-abcdefABCDEF", "slack_token"),
            ("sk_live_51HxYzAbCdEfGhIjKlMn", "stripe_key"),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----",
                "private_key",
            ),
            (
                "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
                "jwt",
            ),
            ("token=Zx8Qm2Lp9Vt4Rw7Yb1Nc6Hd3Jf5Kg0Sa", "high_entropy"),
        ];
        for (text, kind) in cases {
            let k = kinds(text);
            assert_eq!(k.first().copied(), Some(kind), "{text}: {k:?}");
        }
    }

    #[test]
    fn near_misses() {
        for text in [
            "the task-runner skips sk-short ones",
            "internationalization_and_localization_guide",
            "commit 3f786850e387550fdab836ed7e6dc881de23001b",
            "uuid 123e4567-e89b-12d3-a456-426614174000",
            "AKIA is a prefix people talk about",
            "pk_live_publishableKeyIsFine",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    #[test]
    fn table_compiles() {
        assert_eq!(COMPILED.as_ref().map(PatternScan::len), Ok(KNOWN.len() + 1));
        assert!(SecretDetector::try_new().is_ok());
    }

    #[test]
    fn entropy_values() {
        assert!((shannon_entropy("abcd") - 2.0).abs() < 1e-9);
        assert_eq!(shannon_entropy(""), 0.0);
    }
}
