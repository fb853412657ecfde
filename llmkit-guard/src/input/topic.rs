//! Topic allow and deny lists.
//!
//! [`TopicGuard`] holds named topics, each a list of keywords or phrases matched as whole words,
//! case-insensitively, in one precompiled regex per topic. A text touching a denied topic
//! fires; when an allow list is set, a text touching none of the allowed topics fires too (a
//! support bot that should only talk about orders and shipping).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use llmkit_guard::{Guard, GuardContext, Provenance};
//! use llmkit_guard::input::topic::TopicGuard;
//!
//! let g = TopicGuard::new()
//!     .deny("medical", &["diagnosis", "prescription", "dosage"])?
//!     .allow("orders", &["order", "refund", "shipping", "delivery"])?;
//! let ctx = GuardContext::input(Provenance::User);
//! assert!(g.check("Where is my order?", &ctx).await.is_allow());
//! assert!(g.check("What dosage of ibuprofen for my order?", &ctx).await.is_block());
//! assert!(g.check("Write me a poem", &ctx).await.is_block());
//! # Ok::<(), llmkit_core::Error>(()) }).unwrap();
//! ```

use async_trait::async_trait;
use llmkit_core::Error;
use regex::Regex;

use crate::guard::{Action, Decision, Finding, Guard, GuardContext};

#[derive(Debug, Clone)]
struct Topic {
    name: String,
    re: Regex,
}

fn compile(name: &str, keywords: &[&str]) -> Result<Topic, Error> {
    if keywords.is_empty() {
        return Err(Error::config(format!(
            "topic {name} has no keywords: give at least one"
        )));
    }
    let alternatives: Vec<String> = keywords
        .iter()
        .map(|k| {
            regex::escape(k.trim())
                .replace(r"\ ", r"\s+")
                .replace(' ', r"\s+")
        })
        .collect();
    let pattern = format!(r"(?i)\b(?:{})\b", alternatives.join("|"));
    let re = Regex::new(&pattern)
        .map_err(|e| Error::config(format!("topic {name}: invalid keyword list: {e}")))?;
    Ok(Topic {
        name: name.to_owned(),
        re,
    })
}

/// The topic guard. Defaults: no topics (allows everything), action [`Action::Block`]. With
/// [`Action::Redact`] denied keywords are replaced by `[TOPIC]`.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct TopicGuard {
    deny: Vec<Topic>,
    allow: Vec<Topic>,
    action: Action,
}

impl TopicGuard {
    /// No topics.
    pub fn new() -> Self {
        TopicGuard::default()
    }

    /// Adds a denied topic.
    ///
    /// # Errors
    /// [`llmkit_core::ErrorKind::Config`] when the list is empty.
    pub fn deny(mut self, name: &str, keywords: &[&str]) -> Result<Self, Error> {
        self.deny.push(compile(name, keywords)?);
        Ok(self)
    }

    /// Adds an allowed topic; once any is set, text must touch at least one.
    ///
    /// # Errors
    /// [`llmkit_core::ErrorKind::Config`] when the list is empty.
    pub fn allow(mut self, name: &str, keywords: &[&str]) -> Result<Self, Error> {
        self.allow.push(compile(name, keywords)?);
        Ok(self)
    }

    /// Sets the action.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// Findings: one per denied keyword hit, plus an `off_topic` finding over the whole text
    /// when an allow list is set and nothing matched.
    pub fn findings(&self, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        for t in &self.deny {
            for m in t.re.find_iter(text) {
                out.push(
                    Finding::new("denied_topic", m.range(), 0.9)
                        .with_detail(t.name.clone())
                        .with_replacement(format!("[{}]", t.name.to_uppercase())),
                );
            }
        }
        if !self.allow.is_empty() && !self.allow.iter().any(|t| t.re.is_match(text)) {
            let names: Vec<&str> = self.allow.iter().map(|t| t.name.as_str()).collect();
            out.push(
                Finding::new("off_topic", 0..text.len(), 0.8)
                    .with_detail(format!("not about {}", names.join(", ")))
                    .with_replacement("[off-topic request removed]"),
            );
        }
        out
    }
}

#[async_trait]
impl Guard for TopicGuard {
    fn name(&self) -> &str {
        "topic"
    }

    async fn check(&self, text: &str, _ctx: &GuardContext<'_>) -> Decision {
        Decision::from_findings("topic", self.action, 0.5, self.findings(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_words_only() {
        let g = TopicGuard::new()
            .deny("weapons", &["gun", "rifle scope"])
            .unwrap();
        assert_eq!(g.findings("a GUN").len(), 1);
        assert_eq!(g.findings("rifle   scope").len(), 1);
        assert!(g.findings("begun the gunther").is_empty());
        assert!(TopicGuard::new().deny("x", &[]).is_err());
    }
}
