//! Prompt-cache breakpoint placement for the Messages API.
//!
//! llmkit marks cacheable prefixes provider-neutrally (`ContentPart::Text { cache_breakpoint:
//! true }`, plus the provider's `cache_tools` flag). Anthropic accepts at most four
//! `cache_control` breakpoints per request and ignores (while still accepting) a breakpoint
//! whose prefix is shorter than the model's minimum cacheable length. We therefore drop
//! breakpoints on too-short prefixes first, then keep the **last** four: a later breakpoint
//! covers a longer prefix, and the API also looks back from each breakpoint for earlier cache
//! hits, so the last ones save the most.

use serde::{Deserialize, Serialize};

/// Where a breakpoint sits in the built body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BreakpointSite {
    /// On the tool definition at this index.
    Tool(usize),
    /// On the system block at this index.
    System(usize),
    /// On block `.1` of message `.0`.
    Message(usize, usize),
}

/// How long a cache entry lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CacheTtl {
    /// Five minutes, refreshed on every hit (the API default; writes cost 1.25x input).
    #[default]
    #[serde(rename = "5m")]
    FiveMinutes,
    /// One hour (writes cost 2x input): for prefixes reused less often than every 5 minutes.
    #[serde(rename = "1h")]
    OneHour,
}

/// Which marked breakpoints were sent and which were dropped, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CachePlan {
    /// Breakpoints sent, in prefix order.
    pub(crate) kept: Vec<BreakpointSite>,
    /// Dropped because the prefix was shorter than the model's minimum.
    pub(crate) too_short: usize,
    /// Dropped because more than the maximum were marked (the earliest go).
    pub(crate) over_limit: usize,
}

impl CachePlan {
    /// A one-line note for the response trail, when something was dropped.
    pub(crate) fn note(&self) -> Option<String> {
        (self.too_short + self.over_limit > 0).then(|| {
            format!(
                "kept {} cache breakpoints; dropped {} on prefixes below the minimum cacheable length and {} over the limit of 4",
                self.kept.len(),
                self.too_short,
                self.over_limit
            )
        })
    }
}

/// Characters per token used for the prefix-length estimate. Deliberately rough: a wrong
/// estimate only costs a skipped or a useless (free) breakpoint, never a failed request.
pub(crate) const CHARS_PER_TOKEN: usize = 4;

/// Chooses the breakpoints to send. `sites` come in prefix order with the prefix length (in
/// characters) up to and including each marked block.
pub(crate) fn plan(sites: &[(BreakpointSite, usize)], min_tokens: u32, max: usize) -> CachePlan {
    let min_chars = usize::try_from(min_tokens)
        .unwrap_or(usize::MAX)
        .saturating_mul(CHARS_PER_TOKEN);
    let long_enough: Vec<BreakpointSite> = sites
        .iter()
        .filter(|(_, chars)| *chars >= min_chars)
        .map(|(site, _)| *site)
        .collect();
    let too_short = sites.len() - long_enough.len();
    let over_limit = long_enough.len().saturating_sub(max);
    CachePlan {
        kept: long_enough.into_iter().skip(over_limit).collect(),
        too_short,
        over_limit,
    }
}

/// The minimum cacheable prompt length of a model, in tokens, from Anthropic's published
/// table, kept with the other providers' caching rules in
/// [`llmkit_core::cost::caching::anthropic_min_prefix_tokens`]: 4096 for Claude Haiku 4.5 and
/// Opus 4.5 and later, 2048 for Haiku 3/3.5 and Sonnet 4.6, 1024 for the rest. Unknown names
/// get 1024; override with the provider's `min_cache_tokens` setting when a new model differs.
pub fn min_cacheable_tokens(model: &str) -> u32 {
    let min = llmkit_core::cost::caching::anthropic_min_prefix_tokens(model);
    u32::try_from(min).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_tokens_table() {
        let table = [
            ("claude-haiku-4-5", 4096),
            ("claude-haiku-4-5-20251001", 4096),
            ("claude-3-5-haiku-latest", 2048),
            ("claude-3-haiku-20240307", 2048),
            ("claude-sonnet-4-5", 1024),
            ("claude-sonnet-4-6", 2048),
            ("claude-opus-4-1", 1024),
            ("claude-opus-4-5", 4096),
            ("some-future-model", 1024),
        ];
        for (model, min) in table {
            assert_eq!(min_cacheable_tokens(model), min, "{model}");
        }
    }

    #[test]
    fn keeps_last_four_long_enough() {
        let sites: Vec<(BreakpointSite, usize)> = (0..6)
            .map(|i| (BreakpointSite::Message(i, 0), 1000 * (i + 1)))
            .collect();
        // min 1024 tokens = 4096 chars: sites 0..=3 (1000 to 4000 chars) are too short.
        let p = plan(&sites, 1024, 4);
        assert_eq!(p.too_short, 4);
        assert_eq!(p.over_limit, 0);
        assert_eq!(p.kept.len(), 2);

        let p = plan(&sites, 0, 4);
        assert_eq!(p.over_limit, 2);
        assert_eq!(
            p.kept,
            vec![
                BreakpointSite::Message(2, 0),
                BreakpointSite::Message(3, 0),
                BreakpointSite::Message(4, 0),
                BreakpointSite::Message(5, 0)
            ]
        );
        assert!(p.note().unwrap().contains("2 over the limit"));
        assert_eq!(plan(&[], 1024, 4).note(), None);
    }

    proptest::proptest! {
        #[test]
        fn plan_never_exceeds_limit(lens in proptest::collection::vec(0usize..20_000, 0..12), min in 0u32..5000) {
            let mut acc = 0;
            let sites: Vec<_> = lens.iter().enumerate().map(|(i, l)| { acc += l; (BreakpointSite::System(i), acc) }).collect();
            let p = plan(&sites, min, 4);
            proptest::prop_assert!(p.kept.len() <= 4);
            proptest::prop_assert_eq!(p.kept.len() + p.too_short + p.over_limit, sites.len());
            for site in &p.kept {
                let chars = sites.iter().find(|(s, _)| s == site).map(|(_, c)| *c).unwrap();
                proptest::prop_assert!(chars >= min as usize * CHARS_PER_TOKEN);
            }
        }
    }
}
