//! [`SecretString`]: an API key or token that never prints.
//!
//! Keys live in configs, models and request builders; any `{:?}` on one of those (a log line, a
//! panic message, a test failure) would leak them. `SecretString` prints `[redacted]` in both
//! `Debug` and `Display`, is not `Serialize`, and is read only through the explicit
//! [`SecretString::expose`], so every place that uses the raw key is greppable.
//!
//! ```
//! use llmkit_providers::SecretString;
//! let key = SecretString::new("sk-live-123");
//! assert_eq!(format!("{key} {key:?}"), "[redacted] [redacted]");
//! assert_eq!(key.expose(), "sk-live-123");
//! ```

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

/// A secret string (API key, bearer token). Cheap to clone; prints as `[redacted]`.
///
/// Deserializes from a plain string, so config files and environment variables fill it
/// directly. It deliberately does not implement `Serialize`: a secret never goes back out in a
/// config dump.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(Arc<str>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretString(Arc::from(secret.into()))
    }

    /// The raw secret. Call it only where the secret goes on the wire (an auth header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (an unset variable exported as `KEY=`).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        SecretString::new(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString::new(s)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString::new)
    }
}

/// Replaces every occurrence of each secret in `text` with `[redacted]`.
///
/// Used on provider error messages and bodies before they enter an [`llmkit_core::Error`]:
/// some providers echo the key they were sent, and a key that does not look like a key would
/// slip past [`llmkit_core::error::scrub_excerpt`]'s shape heuristics.
pub fn redact_secrets(text: &str, secrets: &[&SecretString]) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        let raw = secret.expose().trim();
        // Very short "secrets" (test placeholders) would redact ordinary words.
        if raw.len() >= 6 && out.contains(raw) {
            out = out.replace(raw, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = SecretString::new("sk-proj-verysecret");
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some([redacted])");
        assert_eq!(s.expose(), "sk-proj-verysecret");
    }

    #[test]
    fn deserializes_from_string() {
        let s: SecretString = serde_json::from_str("\"abc\"").unwrap();
        assert_eq!(s.expose(), "abc");
        assert!(SecretString::new("  ").is_empty());
    }

    #[test]
    fn redacts_exact_occurrences() {
        let k = SecretString::new("plainpassword");
        let out = redact_secrets("bad key plainpassword given; plainpassword", &[&k]);
        assert_eq!(out, "bad key [redacted] given; [redacted]");
        let short = SecretString::new("ab");
        assert_eq!(redact_secrets("ab cab", &[&short]), "ab cab");
    }
}
