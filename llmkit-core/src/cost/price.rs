//! The price table: bundled dated data, user overrides, snapshot-tolerant model matching and
//! exact decimal pricing. See the [module docs](super) for an example.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{Error, Result};
use crate::response::{ChatResponse, Cost, EmbeddingResponse, Usage};

/// The bundled price data, compiled into the crate. Its `version` is the date it was checked.
const BUNDLED: &str = include_str!("data/prices-2026-11-28.toml");

/// Prices of one model, in USD per **million** tokens.
///
/// `cached_input` and `cache_write` fall back to `input` when absent (no discount assumed, so a
/// missing rate over-states rather than under-states spend); batch prices fall back to the
/// interactive ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelPrice {
    /// Uncached prompt tokens.
    #[serde(deserialize_with = "decimal_any")]
    pub input: Decimal,
    /// Prompt tokens read from the provider's prompt cache.
    #[serde(
        default,
        deserialize_with = "opt_decimal_any",
        skip_serializing_if = "Option::is_none"
    )]
    pub cached_input: Option<Decimal>,
    /// Prompt tokens written to the provider's prompt cache.
    #[serde(
        default,
        deserialize_with = "opt_decimal_any",
        skip_serializing_if = "Option::is_none"
    )]
    pub cache_write: Option<Decimal>,
    /// Generated tokens (reasoning tokens included).
    #[serde(deserialize_with = "decimal_any")]
    pub output: Decimal,
    /// Uncached prompt tokens through the batch API.
    #[serde(
        default,
        deserialize_with = "opt_decimal_any",
        skip_serializing_if = "Option::is_none"
    )]
    pub batch_input: Option<Decimal>,
    /// Generated tokens through the batch API.
    #[serde(
        default,
        deserialize_with = "opt_decimal_any",
        skip_serializing_if = "Option::is_none"
    )]
    pub batch_output: Option<Decimal>,
}

impl ModelPrice {
    /// A price with only input and output rates (per million tokens).
    pub fn new(input: Decimal, output: Decimal) -> Self {
        ModelPrice {
            input,
            cached_input: None,
            cache_write: None,
            output,
            batch_input: None,
            batch_output: None,
        }
    }

    /// Sets the cache-read rate.
    #[must_use]
    pub fn with_cached_input(mut self, rate: Decimal) -> Self {
        self.cached_input = Some(rate);
        self
    }

    /// Sets the cache-write rate.
    #[must_use]
    pub fn with_cache_write(mut self, rate: Decimal) -> Self {
        self.cache_write = Some(rate);
        self
    }

    /// Sets the batch rates.
    #[must_use]
    pub fn with_batch(mut self, input: Decimal, output: Decimal) -> Self {
        self.batch_input = Some(input);
        self.batch_output = Some(output);
        self
    }

    /// Prices `usage` in `mode`, stamping `version` as the price table used.
    ///
    /// Batch mode applies the batch ratio (batch input / input) to cached and cache-write rates
    /// too, as providers discount the whole request.
    pub fn cost(&self, usage: &Usage, mode: PricingMode, version: &str) -> Cost {
        let split = TokenSplit::from_usage(usage);
        let (input, output, cached, write) = match mode {
            PricingMode::Interactive => (
                self.input,
                self.output,
                self.cached_input.unwrap_or(self.input),
                self.cache_write.unwrap_or(self.input),
            ),
            PricingMode::Batch => {
                let bi = self.batch_input.unwrap_or(self.input);
                let ratio = if self.input.is_zero() {
                    Decimal::ONE
                } else {
                    bi.checked_div(self.input).unwrap_or(Decimal::ONE)
                };
                let scale = |d: Decimal| d.checked_mul(ratio).unwrap_or(d);
                (
                    bi,
                    self.batch_output.unwrap_or(self.output),
                    scale(self.cached_input.unwrap_or(self.input)),
                    scale(self.cache_write.unwrap_or(self.input)),
                )
            }
        };
        let input_usd = per_million(split.uncached_input, input);
        let cached_input_usd = per_million(split.cached_input, cached);
        let cache_write_usd = per_million(split.cache_write, write);
        let output_usd = per_million(split.output, output);
        let total_usd = [cached_input_usd, cache_write_usd, output_usd]
            .into_iter()
            .fold(input_usd, |acc, d| {
                acc.checked_add(d).unwrap_or(Decimal::MAX)
            });
        Cost {
            total_usd: total_usd.normalize(),
            input_usd,
            cached_input_usd,
            cache_write_usd,
            output_usd,
            price_table: version.to_owned(),
        }
    }
}

/// `tokens × rate / 1e6`, exact; saturates instead of panicking on absurd inputs.
fn per_million(tokens: u64, rate_per_million: Decimal) -> Decimal {
    Decimal::from(tokens)
        .checked_mul(rate_per_million)
        .and_then(|d| d.checked_mul(Decimal::new(1, 6)))
        .unwrap_or(Decimal::MAX)
        .normalize()
}

/// Interactive calls or the provider's batch API (usually half price).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PricingMode {
    /// Normal synchronous calls (the default).
    #[default]
    Interactive,
    /// The provider's batch API.
    Batch,
}

/// Usage split into disjoint, separately priced parts: the one place tokens are normalized.
///
/// `input_tokens` includes cache reads and cache writes (OpenTelemetry convention), so
/// `uncached_input = input − cached − cache_write`. Inconsistent provider numbers (cached plus
/// writes above input) are clamped so that the parts always add up to `input_tokens`: no token is
/// counted twice or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenSplit {
    /// Input tokens billed at the plain input rate.
    pub uncached_input: u64,
    /// Input tokens billed at the cache-read rate.
    pub cached_input: u64,
    /// Input tokens billed at the cache-write rate.
    pub cache_write: u64,
    /// Output tokens.
    pub output: u64,
}

impl TokenSplit {
    /// Splits a usage; `uncached_input + cached_input + cache_write == usage.input_tokens`.
    pub fn from_usage(usage: &Usage) -> Self {
        let cached_input = usage.cached_input_tokens.min(usage.input_tokens);
        let cache_write = usage
            .cache_write_tokens
            .min(usage.input_tokens - cached_input);
        TokenSplit {
            uncached_input: usage.input_tokens - cached_input - cache_write,
            cached_input,
            cache_write,
            output: usage.output_tokens,
        }
    }

    /// All input tokens (equals the usage's `input_tokens`).
    pub fn input_total(&self) -> u64 {
        self.uncached_input
            .saturating_add(self.cached_input)
            .saturating_add(self.cache_write)
    }
}

/// Per provider and model prices with a version, matched tolerantly to dated snapshots.
///
/// Built-in data: [`PriceTable::bundled`] (shared) or [`PriceTable::default`] (an owned copy;
/// dated, see its `version`). Extend or override it with
/// [`PriceTable::extend_from_toml`] / [`PriceTable::extend_from_json`] /
/// [`PriceTable::extend_from_path`], or [`PriceTable::set`]. The file format is:
///
/// ```toml
/// version = "acme-2026-12-01"          # optional in override files
/// [aliases]                             # provider name -> provider whose prices apply
/// "azure.ai.openai" = "openai"
/// [[model]]
/// provider = "openai"
/// model = "gpt-4o"
/// input = "2.50"                        # USD per million tokens; strings or numbers
/// cached_input = "1.25"                 # optional, defaults to input
/// cache_write = "3.125"                 # optional, defaults to input
/// output = "10.00"
/// batch_input = "1.25"                  # optional, defaults to input
/// batch_output = "5.00"                 # optional, defaults to output
/// ```
///
/// Model matching: exact name first (case-insensitive, a `models/` or `provider/` prefix is
/// ignored), then the **longest** table name that the asked name starts with, followed by a
/// snapshot suffix (`-2024-08-06`, `-20250514`, `@20241022`, `-001`, `-latest`). So
/// `gpt-4o-2024-08-06` → `gpt-4o` but `gpt-4o-mini` never falls back to `gpt-4o`.
pub struct PriceTable {
    version: String,
    aliases: HashMap<String, String>,
    models: HashMap<String, BTreeMap<String, ModelPrice>>,
    warned: Mutex<HashSet<String>>,
}

impl fmt::Debug for PriceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PriceTable")
            .field("version", &self.version)
            .field("models", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for PriceTable {
    /// An owned copy of the [bundled](PriceTable::bundled) table, ready to extend.
    fn default() -> Self {
        PriceTable::bundled().as_ref().clone()
    }
}

impl Clone for PriceTable {
    fn clone(&self) -> Self {
        PriceTable {
            version: self.version.clone(),
            aliases: self.aliases.clone(),
            models: self.models.clone(),
            warned: Mutex::new(HashSet::new()),
        }
    }
}

#[derive(Deserialize)]
struct PriceFile {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    aliases: HashMap<String, String>,
    #[serde(default, rename = "model")]
    models: Vec<PriceRow>,
}

#[derive(Deserialize)]
struct PriceRow {
    provider: String,
    model: String,
    #[serde(flatten)]
    price: ModelPrice,
}

impl PriceTable {
    /// An empty table with this version name; every lookup is unknown until you add prices.
    pub fn empty(version: impl Into<String>) -> Self {
        PriceTable {
            version: version.into(),
            aliases: HashMap::new(),
            models: HashMap::new(),
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// The table compiled into llmkit (shared, parsed once). Its [`version`](Self::version) is
    /// the date the prices were checked.
    pub fn bundled() -> Arc<PriceTable> {
        static TABLE: OnceLock<Arc<PriceTable>> = OnceLock::new();
        TABLE
            .get_or_init(|| {
                Arc::new(PriceTable::from_toml_str(BUNDLED).unwrap_or_else(|e| {
                    // Unreachable in practice: a unit test parses the bundled file.
                    tracing::error!(error = %e, "bundled price table does not parse");
                    PriceTable::empty("bundled-invalid")
                }))
            })
            .clone()
    }

    /// A table parsed from TOML in the format shown on [`PriceTable`]. A missing `version`
    /// becomes `custom`.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let file: PriceFile = toml::from_str(text)
            .map_err(|e| Error::config(format!("price table is not valid toml: {e}")))?;
        Ok(Self::from_file(file))
    }

    /// A table parsed from JSON with the same fields as the TOML format (`model` is an array).
    pub fn from_json_str(text: &str) -> Result<Self> {
        let file: PriceFile = serde_json::from_str(text)
            .map_err(|e| Error::config(format!("price table is not valid json: {e}")))?;
        Ok(Self::from_file(file))
    }

    /// A table read from a `.toml` or `.json` file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!("cannot read price table {}: {e}", path.display()))
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Self::from_json_str(&text),
            Some("toml") => Self::from_toml_str(&text),
            _ => Err(Error::config(format!(
                "price table {} must end in .toml or .json",
                path.display()
            ))),
        }
    }

    fn from_file(file: PriceFile) -> Self {
        let mut table = PriceTable::empty(file.version.unwrap_or_else(|| "custom".to_owned()));
        for (from, to) in file.aliases {
            table.alias(from, to);
        }
        for row in file.models {
            table.set(row.provider, row.model, row.price);
        }
        table
    }

    /// Adds or replaces the price of one model. Names are stored lower-case.
    pub fn set(
        &mut self,
        provider: impl Into<String>,
        model: impl Into<String>,
        price: ModelPrice,
    ) -> &mut Self {
        let provider = provider.into().to_lowercase();
        self.models
            .entry(provider)
            .or_default()
            .insert(model.into().to_lowercase(), price);
        self
    }

    /// Bills provider `from` with the prices of provider `to` (e.g. `azure.ai.openai` → `openai`).
    pub fn alias(&mut self, from: impl Into<String>, to: impl Into<String>) -> &mut Self {
        self.aliases
            .insert(from.into().to_lowercase(), to.into().to_lowercase());
        self
    }

    /// Overrides and extends this table with `other`: its prices replace ours model by model.
    /// The version becomes `ours+theirs`, so every cost says an override was in force.
    pub fn extend(&mut self, other: PriceTable) -> &mut Self {
        self.aliases.extend(other.aliases);
        for (provider, models) in other.models {
            self.models.entry(provider).or_default().extend(models);
        }
        if other.version != self.version {
            self.version = format!("{}+{}", self.version, other.version);
        }
        self
    }

    /// [`extend`](Self::extend) with a TOML override.
    pub fn extend_from_toml(mut self, text: &str) -> Result<Self> {
        self.extend(Self::from_toml_str(text)?);
        Ok(self)
    }

    /// [`extend`](Self::extend) with a JSON override.
    pub fn extend_from_json(mut self, text: &str) -> Result<Self> {
        self.extend(Self::from_json_str(text)?);
        Ok(self)
    }

    /// [`extend`](Self::extend) with an override file (`.toml` or `.json`).
    pub fn extend_from_path(mut self, path: impl AsRef<Path>) -> Result<Self> {
        self.extend(Self::from_path(path)?);
        Ok(self)
    }

    /// The version every cost priced by this table names.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Number of priced models.
    pub fn len(&self) -> usize {
        self.models.values().map(BTreeMap::len).sum()
    }

    /// Whether no model is priced.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The price of `model` at `provider`, and the table name it matched.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<(&str, &ModelPrice)> {
        // Every call is priced (by the trace and budget layers): no allocation when the names
        // are already lower case, which they are in practice.
        let provider = lowercase(provider);
        let provider = self
            .aliases
            .get(provider.as_ref())
            .map_or(provider.as_ref(), String::as_str);
        let models = self.models.get(provider)?;
        let lowered = lowercase(model);
        let name = lowered.rsplit('/').next().unwrap_or(&lowered);
        if let Some((k, v)) = models.get_key_value(name) {
            return Some((k.as_str(), v));
        }
        // A dated snapshot: try the names left after cutting a snapshot suffix, longest first,
        // instead of scanning the whole table.
        name.char_indices()
            .rev()
            .filter(|&(i, c)| matches!(c, '-' | '@' | ':') && i > 0)
            .filter(|&(i, _)| name.get(i..).is_some_and(is_snapshot_suffix))
            .find_map(|(i, _)| models.get_key_value(name.get(..i)?))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Prices an interactive call. `None` means the model is unknown: a warning is logged once
    /// per provider and model, and the caller reports "cost unknown", never zero.
    pub fn cost(&self, provider: &str, model: &str, usage: &Usage) -> Option<Cost> {
        self.cost_with_mode(provider, model, usage, PricingMode::Interactive)
    }

    /// Prices a call in `mode` (interactive or batch).
    pub fn cost_with_mode(
        &self,
        provider: &str,
        model: &str,
        usage: &Usage,
        mode: PricingMode,
    ) -> Option<Cost> {
        match self.lookup(provider, model) {
            Some((_, price)) => Some(price.cost(usage, mode, &self.version)),
            None => {
                self.warn_unknown(provider, model);
                None
            }
        }
    }

    /// Sets `response.cost` from its usage when no layer priced it yet. Returns whether the
    /// response now carries a cost.
    pub fn price_response(&self, response: &mut ChatResponse) -> bool {
        if response.cost.is_none() {
            response.cost = self.cost(&response.provider, &response.model, &response.usage);
        }
        response.cost.is_some()
    }

    /// Sets `response.cost` of an embeddings call from its input tokens when not set yet.
    /// Returns whether the response now carries a cost.
    pub fn price_embedding(&self, response: &mut EmbeddingResponse) -> bool {
        if response.cost.is_none() {
            response.cost = self.cost(&response.provider, &response.model, &response.usage);
        }
        response.cost.is_some()
    }

    fn warn_unknown(&self, provider: &str, model: &str) {
        let key = format!("{provider}/{model}");
        let first = crate::sync::lock(&self.warned).insert(key);
        if first {
            tracing::warn!(
                provider,
                model,
                price_table = %self.version,
                "cost unknown: model not in the price table; add it to your price overrides"
            );
        }
    }
}

/// `text` in lower case, borrowed when it already is.
fn lowercase(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().any(char::is_uppercase) {
        std::borrow::Cow::Owned(text.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// Whether what follows a matched model name is a snapshot marker, not a different model:
/// `-2024-08-06`, `-20250514`, `@20241022`, `-001`, `-latest`. The first digit run must have at
/// least three digits, so `claude-sonnet-4` never matches `claude-sonnet-4-7`.
fn is_snapshot_suffix(rest: &str) -> bool {
    let Some(tail) = rest
        .strip_prefix('-')
        .or_else(|| rest.strip_prefix('@'))
        .or_else(|| rest.strip_prefix(':'))
    else {
        return false;
    };
    if tail == "latest" {
        return true;
    }
    let first_run = tail.chars().take_while(char::is_ascii_digit).count();
    first_run >= 3 && tail.chars().all(|c| c.is_ascii_digit() || c == '-')
}

/// Accepts `"2.50"`, `2.5` or `2` for a price: strings are exact, numbers are read through their
/// shortest decimal text so `2.5` stays exactly 2.5.
fn decimal_any<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Decimal, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        S(String),
        I(i64),
        F(f64),
    }
    let text = match Raw::deserialize(d)? {
        Raw::S(s) => s,
        Raw::I(i) => i.to_string(),
        Raw::F(f) => f.to_string(),
    };
    text.trim()
        .parse::<Decimal>()
        .map_err(|e| serde::de::Error::custom(format!("price `{text}` is not a decimal: {e}")))
        .and_then(|d| {
            if d.is_sign_negative() {
                Err(serde::de::Error::custom(format!(
                    "price `{text}` is negative"
                )))
            } else {
                Ok(d)
            }
        })
}

fn opt_decimal_any<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Decimal>, D::Error> {
    decimal_any(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usage(input: u64, cached: u64, write: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            cache_write_tokens: write,
            output_tokens: output,
            reasoning_tokens: 0,
        }
    }

    #[test]
    fn bundled_table_parses_and_is_dated() {
        let t = PriceTable::from_toml_str(BUNDLED).unwrap();
        assert_eq!(t.version(), "2026-11-28");
        assert!(t.len() >= 20);
        assert!(t.lookup("anthropic", "claude-sonnet-4-5").is_some());
        assert!(t.lookup("gcp.gemini", "gemini-2.5-flash").is_some());
    }

    #[test]
    fn snapshot_suffixes() {
        for ok in ["-2024-08-06", "-20250514", "@20241022", "-001", "-latest"] {
            assert!(is_snapshot_suffix(ok), "{ok}");
        }
        for bad in ["", "-mini", "-7", "-5-20250929", "x-2024", "-preview-05-20"] {
            assert!(!is_snapshot_suffix(bad), "{bad}");
        }
    }

    proptest! {
        /// Any table written in the documented format parses back to the same prices, and
        /// every dated snapshot of a listed model finds it.
        #[test]
        fn price_files_round_trip(rows in proptest::collection::btree_map(
                "[a-z][a-z0-9.]{0,8}(-[a-z0-9]{1,4}){0,3}",
                (0u64..100_000, 0u32..6, 0u64..100_000, proptest::option::of(0u64..1000)),
                1..8),
            year in 2020u32..2030, month in 1u32..13, day in 1u32..29) {
            let mut text = String::from("version = \"t\"\n");
            for (model, (i, scale, o, cached)) in &rows {
                text.push_str(&format!("[[model]]\nprovider = \"p\"\nmodel = \"{model}\"\ninput = \"{}\"\noutput = {o}\n",
                    Decimal::new(*i as i64, *scale)));
                if let Some(c) = cached {
                    text.push_str(&format!("cached_input = \"0.{c:03}\"\n"));
                }
            }
            let t = PriceTable::from_toml_str(&text).unwrap();
            prop_assert_eq!(t.len(), rows.len());
            for (model, (i, scale, o, cached)) in &rows {
                let (name, p) = t.lookup("p", model).unwrap();
                prop_assert_eq!(name, model.as_str());
                prop_assert_eq!(p.input, Decimal::new(*i as i64, *scale));
                prop_assert_eq!(p.output, Decimal::from(*o));
                prop_assert_eq!(p.cached_input, cached.map(|c| Decimal::new(c as i64, 3)));
                let snapshot = format!("{model}-{year}-{month:02}-{day:02}");
                let (name, _) = t.lookup("P", &snapshot).unwrap();
                prop_assert!(snapshot.starts_with(name));
                prop_assert!(rows.contains_key(name));
            }
        }

        #[test]
        fn split_never_double_counts_or_drops(input in 0u64..10_000_000, cached in 0u64..10_000_000,
                                              write in 0u64..10_000_000, output in 0u64..1_000_000) {
            let u = usage(input, cached, write, output);
            let s = TokenSplit::from_usage(&u);
            prop_assert_eq!(s.input_total(), input);
            prop_assert_eq!(s.output, output);
            prop_assert!(s.cached_input <= cached && s.cache_write <= write);
        }

        #[test]
        fn cost_parts_sum_to_total_and_grow_with_tokens(input in 0u64..5_000_000, cached_frac in 0u64..=100,
                                                       write_frac in 0u64..=100, output in 0u64..500_000,
                                                       extra in 1u64..10_000) {
            let cached = input * cached_frac / 100;
            let write = (input - cached) * write_frac / 100;
            let price = ModelPrice::new(Decimal::new(300, 2), Decimal::new(1500, 2))
                .with_cached_input(Decimal::new(30, 2))
                .with_cache_write(Decimal::new(375, 2));
            let c = price.cost(&usage(input, cached, write, output), PricingMode::Interactive, "v");
            prop_assert_eq!(c.input_usd + c.cached_input_usd + c.cache_write_usd + c.output_usd, c.total_usd);
            // Priced token by token, each class at its own rate.
            let expected = (Decimal::from(input - cached - write) * Decimal::new(300, 2)
                + Decimal::from(cached) * Decimal::new(30, 2)
                + Decimal::from(write) * Decimal::new(375, 2)
                + Decimal::from(output) * Decimal::new(1500, 2)) / Decimal::from(1_000_000u64);
            prop_assert_eq!(c.total_usd, expected.normalize());
            let more_in = price.cost(&usage(input + extra, cached, write, output), PricingMode::Interactive, "v");
            let more_out = price.cost(&usage(input, cached, write, output + extra), PricingMode::Interactive, "v");
            prop_assert!(more_in.total_usd > c.total_usd);
            prop_assert!(more_out.total_usd > c.total_usd);
        }
    }
}
