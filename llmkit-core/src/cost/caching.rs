//! Provider prompt-caching rules, in one place: which prefix a provider caches, for how long,
//! and what a cache write costs. The price table ([`PriceTable`](super::PriceTable)) says what a
//! cached or written token costs; these rules say *which* tokens become cached or written, so a
//! cost projection (or a provider deciding where to put a cache breakpoint) never gives a
//! discount the provider would not.
//!
//! Sources, checked 2026-12 (prices change less often than these rules; re-check both together):
//! - OpenAI, "Prompt caching" guide (developers.openai.com/api/docs/guides/prompt-caching) and
//!   the "Prompt Caching 201" cookbook: automatic for prompts of **1,024 tokens or more**, hits
//!   in **128-token increments**, no fee for writes; in-memory retention typically ends after
//!   **5–10 minutes** of inactivity and always within an hour (the same text is in Azure
//!   OpenAI's "Prompt caching" page); `prompt_cache_retention: "24h"` keeps prefixes up to 24 h.
//! - Anthropic, "Prompt caching" (platform.claude.com/docs/en/build-with-claude/prompt-caching):
//!   explicit `cache_control` breakpoints (at most 4); minimum cacheable prefix **4,096 tokens**
//!   for Claude Opus 4.5/4.6 and Haiku 4.5, **2,048** for Sonnet 4.6 and Haiku 3/3.5, **1,024**
//!   for the other models (Sonnet 4.5, Sonnet 4, Opus 4.1, Opus 4, Sonnet 3.7); writes cost
//!   **1.25×** the input rate with the default **5-minute** lifetime (refreshed free on every
//!   hit) and **2×** with the 1-hour lifetime; reads cost 0.1×.
//! - Google, "Context caching" (ai.google.dev/gemini-api/docs/caching, updated 2026-07):
//!   implicit caching on Gemini 2.5 and newer, minimum **2,048 tokens** for 2.5 Flash and
//!   2.5 Pro (4,096 for the 3.x models); no write fee. Gemini 2.0 has no implicit caching. Google
//!   documents no lifetime for implicit caches; 5 minutes is assumed here, like OpenAI's lower
//!   bound, so a projection errs towards fewer hits.
//!
//! ```
//! use std::time::Duration;
//! use llmkit_core::cost::caching::{caching_rules, PromptCacheSimulator, Retention};
//! use llmkit_core::Usage;
//!
//! let openai = caching_rules("openai", "gpt-4.1", Retention::Default).unwrap();
//! assert_eq!(openai.cacheable_prefix(750), 0);        // below OpenAI's 1,024-token minimum
//! assert_eq!(openai.cacheable_prefix(1_300), 1_280);  // hits come in 128-token steps
//!
//! let mut sim = PromptCacheSimulator::new(Retention::Default);
//! let mut first = Usage { input_tokens: 5_000, ..Default::default() };
//! sim.apply("anthropic", "claude-sonnet-4-5", "policy-v3", 4_800, Duration::ZERO, &mut first);
//! assert_eq!(first.cache_write_tokens, 4_800);       // the first call writes the prefix
//! let mut second = Usage { input_tokens: 5_000, ..Default::default() };
//! sim.apply("anthropic", "claude-sonnet-4-5", "policy-v3", 4_800, Duration::from_secs(60), &mut second);
//! assert_eq!(second.cached_input_tokens, 4_800);     // within 5 minutes: read from the cache
//! ```

use std::collections::HashMap;
use std::time::Duration;

use rust_decimal::Decimal;

use super::price::ModelPrice;
use crate::response::Usage;

/// How long the caller asks a provider to keep a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Retention {
    /// The provider's default: 5 minutes at Anthropic (refreshed on each hit), in-memory at
    /// OpenAI (5–10 minutes of inactivity; 5 assumed), implicit at Google.
    #[default]
    Default,
    /// The longer option where a provider sells one: Anthropic's 1-hour lifetime (writes at
    /// 2× input), OpenAI's `prompt_cache_retention: "24h"` (no write fee). Providers without
    /// one keep their default.
    Extended,
}

/// How a provider decides what to cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheControl {
    /// The provider caches every long enough prefix by itself (OpenAI, Gemini implicit caching).
    Automatic,
    /// Only prefixes the request marks are cached, with at most `max` marks per request
    /// (Anthropic `cache_control` breakpoints).
    Breakpoints {
        /// Most breakpoints one request may carry.
        max: usize,
    },
}

/// One provider's prompt-caching rules for one model. Build with [`caching_rules`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachingRules {
    /// Who decides what is cached.
    pub control: CacheControl,
    /// A prefix shorter than this many tokens is never cached.
    pub min_prefix_tokens: u64,
    /// Cached prefixes are counted in steps of this many tokens (OpenAI: 128; others: 1).
    pub increment_tokens: u64,
    /// How long an unused prefix stays cached. Every hit restarts the clock.
    pub ttl: Duration,
    /// What one written token costs, as a multiple of the model's input rate; `None` when the
    /// provider bills no write premium (the first call pays ordinary input).
    pub write_multiplier: Option<Decimal>,
}

impl CachingRules {
    /// How many tokens of a `prefix_tokens`-long stable prefix the provider caches: zero below
    /// the minimum, otherwise the prefix rounded down to the provider's increment.
    pub fn cacheable_prefix(&self, prefix_tokens: u64) -> u64 {
        if prefix_tokens < self.min_prefix_tokens {
            return 0;
        }
        let step = self.increment_tokens.max(1);
        prefix_tokens - prefix_tokens % step
    }

    /// `price` with its cache-write rate set from these rules: `input × write_multiplier`
    /// (the 1-hour Anthropic rate is not in the bundled table), or the plain input rate when
    /// the provider bills no premium.
    #[must_use]
    pub fn apply_to_price(&self, price: &ModelPrice) -> ModelPrice {
        let write = self
            .write_multiplier
            .and_then(|m| price.input.checked_mul(m))
            .unwrap_or(price.input);
        price.clone().with_cache_write(write)
    }
}

/// The prompt-caching rules of `model` at `provider` (OpenTelemetry provider names, as in the
/// price table: `openai`, `azure.ai.openai`, `anthropic`, `gcp.gemini`, `gcp.vertex_ai`), or
/// `None` when the provider or model does not cache prompts (or is unknown to llmkit), so no
/// discount is assumed.
pub fn caching_rules(provider: &str, model: &str, retention: Retention) -> Option<CachingRules> {
    let model = model.to_ascii_lowercase();
    let model = model.rsplit('/').next().unwrap_or(&model);
    const FIVE_MINUTES: Duration = Duration::from_secs(5 * 60);
    match provider.to_ascii_lowercase().as_str() {
        "openai" | "azure.ai.openai" | "azure" => Some(CachingRules {
            control: CacheControl::Automatic,
            min_prefix_tokens: 1_024,
            increment_tokens: 128,
            ttl: match retention {
                Retention::Default => FIVE_MINUTES,
                Retention::Extended => Duration::from_secs(24 * 60 * 60),
            },
            write_multiplier: None,
        }),
        "anthropic" => {
            let (ttl, write) = match retention {
                Retention::Default => (FIVE_MINUTES, Decimal::new(125, 2)),
                Retention::Extended => (Duration::from_secs(60 * 60), Decimal::TWO),
            };
            Some(CachingRules {
                control: CacheControl::Breakpoints { max: 4 },
                min_prefix_tokens: anthropic_min_prefix_tokens(model),
                increment_tokens: 1,
                ttl,
                write_multiplier: Some(write),
            })
        }
        "gcp.gemini" | "gemini" | "google" | "gcp.vertex_ai" => {
            let min = if model.starts_with("gemini-2.5") {
                2_048
            } else if model.starts_with("gemini-3") {
                4_096
            } else {
                // Gemini 2.0 and older: no implicit caching.
                return None;
            };
            Some(CachingRules {
                control: CacheControl::Automatic,
                min_prefix_tokens: min,
                increment_tokens: 1,
                ttl: FIVE_MINUTES,
                write_multiplier: None,
            })
        }
        _ => None,
    }
}

/// Anthropic's minimum cacheable prefix for `model` (lower-case name, snapshot suffix allowed):
/// 4,096 tokens for Claude Haiku 4.x and Opus 4.5 and later, 2,048 for Haiku 3/3.5 and Sonnet
/// 4.6, 1,024 for the rest. Unknown names get 1,024.
pub fn anthropic_min_prefix_tokens(model: &str) -> u64 {
    let m = model.to_ascii_lowercase();
    let newer_opus = [
        "opus-4-5", "opus-4-6", "opus-4-7", "opus-4-8", "opus-4-9", "opus-5",
    ];
    if m.contains("haiku-4") || newer_opus.iter().any(|v| m.contains(v)) {
        4_096
    } else if m.contains("haiku") || m.contains("sonnet-4-6") {
        2_048
    } else {
        1_024
    }
}

/// What the provider's prompt cache did for one call, as [`PromptCacheSimulator::apply`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheEvent {
    /// The provider or model does not cache prompts.
    Unsupported,
    /// The prefix is shorter than the provider's minimum.
    TooShort,
    /// The prefix was written (first use, or its lifetime had passed).
    Written {
        /// Tokens written.
        tokens: u64,
    },
    /// The prefix was read from the cache.
    Hit {
        /// Tokens read.
        tokens: u64,
    },
}

/// Replays the provider-side prompt cache over a sequence of calls, applying
/// [`caching_rules`]: for cost projections ("what would prompt caching save on this traffic?")
/// and offline examples, where no provider reports cache tokens.
///
/// Time is passed in (`at`, since any fixed start), so a replay is deterministic.
#[derive(Debug, Default)]
pub struct PromptCacheSimulator {
    retention: Retention,
    /// (provider, model, prefix key) → when the prefix was last written or read.
    last_used: HashMap<(String, String, String), Duration>,
}

impl PromptCacheSimulator {
    /// A simulator whose calls all ask for `retention`.
    pub fn new(retention: Retention) -> Self {
        PromptCacheSimulator {
            retention,
            last_used: HashMap::new(),
        }
    }

    /// Applies the provider's rules to one call whose stable prefix (identified by
    /// `prefix_key`, e.g. a prompt `id@version@hash`) is `prefix_tokens` long, at time `at`.
    /// Sets `usage.cached_input_tokens` on a hit and, where the provider bills writes,
    /// `usage.cache_write_tokens` on a write; both stay within `usage.input_tokens`.
    pub fn apply(
        &mut self,
        provider: &str,
        model: &str,
        prefix_key: &str,
        prefix_tokens: u64,
        at: Duration,
        usage: &mut Usage,
    ) -> CacheEvent {
        let Some(rules) = caching_rules(provider, model, self.retention) else {
            return CacheEvent::Unsupported;
        };
        let tokens = rules
            .cacheable_prefix(prefix_tokens)
            .min(usage.input_tokens);
        if tokens == 0 || tokens < rules.min_prefix_tokens {
            return CacheEvent::TooShort;
        }
        let key = (provider.to_owned(), model.to_owned(), prefix_key.to_owned());
        let warm = self
            .last_used
            .get(&key)
            .is_some_and(|&last| at.saturating_sub(last) <= rules.ttl);
        self.last_used.insert(key, at);
        if warm {
            usage.cached_input_tokens = tokens;
            CacheEvent::Hit { tokens }
        } else {
            if rules.write_multiplier.is_some() {
                usage.cache_write_tokens = tokens;
            }
            CacheEvent::Written { tokens }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64) -> Usage {
        Usage {
            input_tokens: input,
            ..Default::default()
        }
    }

    #[test]
    fn openai_needs_1024_tokens_and_counts_in_128_token_steps() {
        let r = caching_rules("openai", "gpt-4.1-mini", Retention::Default).unwrap();
        assert_eq!(
            r.cacheable_prefix(750),
            0,
            "issue 17: a ~750-token prefix got a discount"
        );
        assert_eq!(r.cacheable_prefix(1_023), 0);
        assert_eq!(r.cacheable_prefix(1_024), 1_024);
        assert_eq!(r.cacheable_prefix(1_151), 1_024);
        assert_eq!(r.cacheable_prefix(1_152), 1_152);
        assert_eq!(r.write_multiplier, None);
    }

    #[test]
    fn anthropic_minimums_per_model() {
        let table = [
            ("claude-haiku-4-5", 4_096),
            ("claude-haiku-4-5-20251001", 4_096),
            ("claude-3-5-haiku-latest", 2_048),
            ("claude-sonnet-4-5", 1_024),
            ("claude-sonnet-4-6", 2_048),
            ("claude-opus-4-1", 1_024),
            ("claude-opus-4-5", 4_096),
            ("claude-opus-4-6", 4_096),
        ];
        for (model, min) in table {
            let r = caching_rules("anthropic", model, Retention::Default).unwrap();
            assert_eq!(r.min_prefix_tokens, min, "{model}");
        }
    }

    #[test]
    fn anthropic_write_premium_and_ttl_follow_retention() {
        let short = caching_rules("anthropic", "claude-sonnet-4-5", Retention::Default).unwrap();
        let long = caching_rules("anthropic", "claude-sonnet-4-5", Retention::Extended).unwrap();
        assert_eq!(short.ttl, Duration::from_secs(300));
        assert_eq!(long.ttl, Duration::from_secs(3_600));
        let price = ModelPrice::new(Decimal::new(300, 2), Decimal::new(1_500, 2));
        assert_eq!(
            short.apply_to_price(&price).cache_write,
            Some(Decimal::new(375, 2))
        );
        assert_eq!(
            long.apply_to_price(&price).cache_write,
            Some(Decimal::new(600, 2))
        );
    }

    #[test]
    fn gemini_implicit_caching_only_from_2_5() {
        assert!(caching_rules("gcp.gemini", "gemini-2.0-flash", Retention::Default).is_none());
        let r = caching_rules("gcp.gemini", "gemini-2.5-flash", Retention::Default).unwrap();
        assert_eq!(r.min_prefix_tokens, 2_048);
        assert!(caching_rules("acme", "anything", Retention::Default).is_none());
    }

    #[test]
    fn simulator_expires_prefixes_after_the_ttl_and_refreshes_on_hits() {
        let mut sim = PromptCacheSimulator::new(Retention::Default);
        let mut at = |secs: u64, u: &mut Usage| {
            sim.apply(
                "anthropic",
                "claude-sonnet-4-5",
                "p",
                2_000,
                Duration::from_secs(secs),
                u,
            )
        };
        let mut u = usage(2_100);
        assert_eq!(at(0, &mut u), CacheEvent::Written { tokens: 2_000 });
        assert_eq!((u.cache_write_tokens, u.cached_input_tokens), (2_000, 0));
        let mut u = usage(2_100);
        assert_eq!(at(240, &mut u), CacheEvent::Hit { tokens: 2_000 });
        // 240 s + 300 s: still warm because the hit at 240 s restarted the clock.
        assert_eq!(
            at(540, &mut usage(2_100)),
            CacheEvent::Hit { tokens: 2_000 }
        );
        // More than five minutes idle: written again.
        assert_eq!(
            at(900, &mut usage(2_100)),
            CacheEvent::Written { tokens: 2_000 }
        );
    }

    #[test]
    fn simulator_gives_no_discount_below_the_minimum_or_when_unsupported() {
        let mut sim = PromptCacheSimulator::new(Retention::Default);
        let mut call = |provider: &str, model: &str, prefix: u64, input: u64, secs: u64| {
            let mut u = usage(input);
            let ev = sim.apply(
                provider,
                model,
                "p",
                prefix,
                Duration::from_secs(secs),
                &mut u,
            );
            (ev, u)
        };
        for secs in [0, 1] {
            let (ev, u) = call("openai", "gpt-4.1", 750, 900, secs);
            assert_eq!(ev, CacheEvent::TooShort);
            assert_eq!(u.cached_input_tokens, 0);
        }
        let (ev, u) = call("openai", "gpt-4.1-mini", 4_000, 5_000, 0);
        assert_eq!(ev, CacheEvent::Written { tokens: 3_968 });
        assert_eq!(u.cache_write_tokens, 0, "OpenAI bills no write premium");
        let (ev, _) = call("gcp.gemini", "gemini-2.0-flash", 4_000, 5_000, 0);
        assert_eq!(ev, CacheEvent::Unsupported);
    }
}
