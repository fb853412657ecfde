//! The shapes of API keys and other credentials, as data, in one place. Three readers use it:
//! error scrubbing ([`crate::error::scrub_excerpt`], by [`has_key_prefix`], with no regex),
//! trace content capture (`telemetry::capture`, one regex over every pattern) and
//! llmkit-guard's secret detector (a rule per shape, named by [`SecretShape::kind`]). Adding a
//! provider's key format is one row here.

/// One kind of credential.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecretShape {
    /// Stable snake_case name (`openai_key`, `aws_access_key`, ...), reported by detectors.
    pub kind: &'static str,
    /// How sure a match is, in `0.0..=1.0`.
    pub confidence: f32,
    /// Literal prefixes every such secret starts with (empty when it has none), for cheap
    /// checks without a regex.
    pub prefixes: &'static [&'static str],
    /// A regex (Rust `regex` syntax) matching the whole secret.
    pub pattern: &'static str,
}

/// Every known credential shape, most specific first (Anthropic's `sk-ant-` before OpenAI's
/// `sk-`).
pub const SECRET_SHAPES: &[SecretShape] = &[
    SecretShape {
        kind: "anthropic_key",
        confidence: 0.99,
        prefixes: &["sk-ant-"],
        pattern: r"\bsk-ant-(?:api|admin)\d{2}-[A-Za-z0-9_-]{20,}",
    },
    SecretShape {
        kind: "openai_key",
        confidence: 0.95,
        prefixes: &["sk-"],
        pattern: r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
    },
    SecretShape {
        kind: "aws_access_key",
        confidence: 0.95,
        prefixes: &["AKIA", "ASIA", "AGPA", "AIDA", "AROA"],
        pattern: r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b",
    },
    SecretShape {
        kind: "github_token",
        confidence: 0.97,
        prefixes: &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        pattern: r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}",
    },
    SecretShape {
        kind: "google_api_key",
        confidence: 0.95,
        prefixes: &["AIza"],
        pattern: r"\bAIza[0-9A-Za-z_-]{35}",
    },
    SecretShape {
        kind: "slack_token",
        confidence: 0.95,
        prefixes: &[
            "xoxa-", "xoxb-", "xoxp-", "xoxo-", "xoxs-", "xoxr-", "xoxe-",
        ],
        pattern: r"\bxox[abposre]-[A-Za-z0-9-]{10,}",
    },
    SecretShape {
        kind: "stripe_key",
        confidence: 0.97,
        prefixes: &["sk_live_", "sk_test_", "rk_live_", "rk_test_"],
        pattern: r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}",
    },
    SecretShape {
        kind: "private_key",
        confidence: 0.99,
        prefixes: &["-----BEGIN "],
        pattern: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:[\s\S]{0,8000}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----)?",
    },
    SecretShape {
        kind: "jwt",
        confidence: 0.9,
        prefixes: &["eyJ"],
        pattern: r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    },
];

/// An `Authorization: Bearer …` credential, which has no shape of its own: any token after the
/// word. Not a [`SecretShape`], because in free text "bearer" is an ordinary word; readers of
/// headers and logs add it.
pub const BEARER_PATTERN: &str = r"(?i:bearer)\s+[A-Za-z0-9._\-]{16,}";

/// Whether `token` starts with a known credential prefix ([`SecretShape::prefixes`]).
///
/// ```
/// use llmkit_core::secrets::has_key_prefix;
/// assert!(has_key_prefix("sk-proj-abc123"));
/// assert!(has_key_prefix("AKIAIOSFODNN7EXAMPLE"));
/// assert!(!has_key_prefix("skeleton"));
/// ```
pub fn has_key_prefix(token: &str) -> bool {
    SECRET_SHAPES
        .iter()
        .flat_map(|s| s.prefixes)
        .any(|p| token.starts_with(p))
}
