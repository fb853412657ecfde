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
use serde_json::{Value, json};

use crate::message::{ContentPart, ImageSource, Message, Role};
use crate::model::SystemInstructions;
use crate::response::FinishReason;

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
    sum.is_multiple_of(10)
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

impl CaptureConfig {
    /// `messages` in the OpenTelemetry GenAI input-messages JSON shape
    /// (`[{"role":"user","parts":[{"type":"text","content":"…"}]}]`), every text redacted and
    /// capped as in [`CaptureConfig::apply`]. Tool-call arguments are redacted leaf by leaf;
    /// inline image bytes are never recorded, only their size.
    ///
    /// ```
    /// use llmkit_core::Message;
    /// use llmkit_core::telemetry::CaptureConfig;
    /// let json = CaptureConfig::enabled().input_messages(&[Message::user("mail ann@example.com")]);
    /// let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    /// assert_eq!(value, serde_json::json!(
    ///     [{"role": "user", "parts": [{"type": "text", "content": "mail [EMAIL]"}]}]));
    /// ```
    pub fn input_messages(&self, messages: &[Message]) -> String {
        Value::Array(messages.iter().map(|m| self.message(m, None)).collect()).to_string()
    }

    /// The request's messages as the conventions record them for a provider that takes system
    /// messages as `placement` says. With [`SystemInstructions::Separate`] the system messages'
    /// parts become the `gen_ai.system_instructions` JSON (returned first; `None` when there are
    /// none) and the other messages the `gen_ai.input.messages` JSON; with
    /// [`SystemInstructions::InHistory`] every message is an input message. Redacted and capped
    /// like [`CaptureConfig::input_messages`].
    ///
    /// ```
    /// use llmkit_core::{Message, SystemInstructions};
    /// use llmkit_core::telemetry::CaptureConfig;
    /// let messages = [Message::system("Answer in French."), Message::user("hello")];
    /// let (system, input) = CaptureConfig::enabled().input(&messages, SystemInstructions::Separate);
    /// let system: serde_json::Value = serde_json::from_str(&system.unwrap()).unwrap();
    /// assert_eq!(system, serde_json::json!([{"type": "text", "content": "Answer in French."}]));
    /// assert!(!input.contains("French"));
    /// ```
    pub fn input(
        &self,
        messages: &[Message],
        placement: SystemInstructions,
    ) -> (Option<String>, String) {
        if placement == SystemInstructions::InHistory {
            return (None, self.input_messages(messages));
        }
        let (system, history): (Vec<&Message>, Vec<&Message>) =
            messages.iter().partition(|m| m.role == Role::System);
        let instructions = (!system.is_empty()).then(|| {
            let parts: Vec<Value> = system
                .iter()
                .flat_map(|m| m.content.iter().map(|p| self.part(p)))
                .collect();
            Value::Array(parts).to_string()
        });
        let history = history.into_iter().map(|m| self.message(m, None)).collect();
        (instructions, Value::Array(history).to_string())
    }

    /// The answer in the output-messages JSON shape: one assistant message with its parts and
    /// `finish_reason`, redacted and capped like [`CaptureConfig::input_messages`].
    pub fn output_messages(&self, message: &Message, finish: &FinishReason) -> String {
        Value::Array(vec![self.message(message, Some(finish))]).to_string()
    }

    fn message(&self, m: &Message, finish: Option<&FinishReason>) -> Value {
        let parts: Vec<Value> = m.content.iter().map(|p| self.part(p)).collect();
        let mut v = json!({ "role": m.role.as_str(), "parts": parts });
        if let Value::Object(map) = &mut v {
            if let Some(name) = &m.name {
                map.insert("name".into(), Value::String(self.apply(name).0));
            }
            if let Some(f) = finish {
                map.insert("finish_reason".into(), Value::String(f.as_str().to_owned()));
            }
        }
        v
    }

    fn part(&self, part: &ContentPart) -> Value {
        match part {
            ContentPart::Text { text, .. } => {
                json!({ "type": "text", "content": self.apply(text).0 })
            }
            ContentPart::Image {
                source: ImageSource::Url { url },
            } => json!({ "type": "uri", "modality": "image", "uri": self.apply(url).0 }),
            ContentPart::Image {
                source: ImageSource::Base64 { media_type, data },
            } => json!({
                "type": "blob",
                "modality": "image",
                "mime_type": media_type,
                "content": format!("[{} base64 characters not recorded]", data.len()),
            }),
            ContentPart::ToolCall(c) => json!({
                "type": "tool_call",
                "id": c.id,
                "name": c.name,
                "arguments": self.redact_value(&c.arguments),
            }),
            ContentPart::ToolResult(r) => json!({
                "type": "tool_call_response",
                "id": r.call_id,
                "response": self.apply(&r.content).0,
            }),
        }
    }

    fn redact_value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.apply(s).0),
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.redact_value(i)).collect())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), self.redact_value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn separate_system_instructions_leave_the_history() {
        let capture = CaptureConfig::enabled();
        let messages = [
            Message::system("Rules: never mail ann@example.com"),
            Message::user("hi"),
            Message::system("Be brief."),
        ];
        let (system, input) = capture.input(&messages, SystemInstructions::Separate);
        let system: Value = serde_json::from_str(&system.unwrap()).unwrap();
        assert_eq!(
            system,
            json!([{"type": "text", "content": "Rules: never mail [EMAIL]"},
                   {"type": "text", "content": "Be brief."}])
        );
        let input: Value = serde_json::from_str(&input).unwrap();
        assert_eq!(
            input,
            json!([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}])
        );

        let (none, all) = capture.input(&messages, SystemInstructions::InHistory);
        assert!(none.is_none());
        assert_eq!(all, capture.input_messages(&messages));
        let (none, _) = capture.input(&messages[1..2], SystemInstructions::Separate);
        assert!(none.is_none(), "no system message, no attribute");
    }

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

    #[test]
    fn messages_follow_the_conventions_shape_and_are_redacted() {
        use crate::message::{Role, ToolCall, ToolResult};
        let capture = CaptureConfig::enabled().max_chars(12);
        let call = Message {
            role: Role::Assistant,
            content: vec![ContentPart::ToolCall(ToolCall {
                id: "c1".into(),
                name: "lookup".into(),
                arguments: json!({"email": "bo@example.org", "n": 3}),
            })],
            name: None,
        };
        let result = Message {
            role: Role::Tool,
            content: vec![ContentPart::ToolResult(ToolResult {
                call_id: "c1".into(),
                content: "key sk-abcdefghijklmnop1234".into(),
                is_error: false,
            })],
            name: None,
        };
        let input: Value = serde_json::from_str(&capture.input_messages(&[
            Message::system("be brief and kind"),
            call,
            result,
        ]))
        .unwrap();
        assert_eq!(
            input,
            json!([
                {"role": "system", "parts": [{"type": "text", "content": "be brief and…"}]},
                {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "lookup",
                    "arguments": {"email": "[EMAIL]", "n": 3}}]},
                {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1",
                    "response": "key [SECRET]"}]}
            ])
        );
        let output: Value = serde_json::from_str(
            &capture.output_messages(&Message::assistant("ok"), &FinishReason::Length),
        )
        .unwrap();
        assert_eq!(
            output,
            json!([{"role": "assistant", "parts": [{"type": "text", "content": "ok"}], "finish_reason": "length"}])
        );
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
