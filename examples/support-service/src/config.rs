//! Configuration: a TOML file (the built-in `config/support.toml` when none is given), then
//! environment overrides `SUPPORT__SECTION__KEY=value` (double underscores separate the path,
//! so `SUPPORT__PROMPTS__CANARY_SHARE=0.25` sets `[prompts] canary_share`). Values parse as TOML
//! scalars (numbers, booleans) and fall back to strings.
//!
//! Secrets are never in this struct: the config names *where* they live (an environment
//! variable or a file), and [`Secrets`] holds the values, with a `Debug` that prints none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The built-in configuration, used when no file is given.
pub const DEFAULT_TOML: &str = include_str!("../config/support.toml");

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "SUPPORT__";

/// Why the configuration cannot be used.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listening and shutdown.
    pub server: Server,
    /// Model versions and the flag choosing one.
    pub model: Model,
    /// Prompts and the canary.
    pub prompts: Prompts,
    /// Knowledge base.
    pub data: Data,
    /// Retry, breaker, timeout.
    pub resilience: Resilience,
    /// Per-tenant limits and budgets.
    pub tenants: Tenants,
    /// The human-review gate.
    pub review: Review,
    /// Where secrets come from.
    pub secrets: SecretSources,
    /// Logs and traces.
    pub telemetry: Telemetry,
}

/// `[server]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Address to listen on (`127.0.0.1:8080`; port 0 picks a free port and logs it).
    pub listen: String,
    /// After SIGTERM, how long in-flight requests may take before the process exits anyway.
    pub drain_seconds: u64,
    /// Cap on any caller deadline.
    pub max_deadline_ms: u64,
    /// Deadline for callers that send none.
    pub default_deadline_ms: u64,
    /// Readiness probe interval (one cheap call through the stack at most this often).
    pub probe_seconds: u64,
}

/// `[model]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// The flag: which entry of `versions` answers by default.
    pub version: String,
    /// Every version the service can run; the OpenAI-compatible route also accepts them by
    /// name in `model`.
    pub versions: BTreeMap<String, ModelVersion>,
}

/// One model version.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelVersion {
    /// `scripted` (offline), `env` (`LLMKIT_PROVIDER` and friends) or a provider name
    /// (`openai`, `openai_compatible`, `anthropic`, `gemini`, `ollama`, ...).
    pub provider: String,
    /// Model name (for `scripted`, the name it reports).
    pub model: String,
    /// Base URL for HTTP providers.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Scripted only: simulated model latency in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
}

/// `[prompts]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prompts {
    /// Directory of prompt files and `labels.toml`.
    pub dir: PathBuf,
    /// Share of users (0..=1, sticky by a hash of the user id) served the `canary` label.
    pub canary_share: f64,
}

/// `[data]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Data {
    /// Directory of policy documents (Markdown and HTML).
    pub policies_dir: PathBuf,
}

/// `[resilience]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resilience {
    /// Attempts per call (1 = no retry).
    pub max_attempts: u32,
    /// Time one attempt may take.
    pub attempt_timeout_ms: u64,
    /// Consecutive failures that open a breaker.
    pub breaker_failures: u32,
    /// How long an open breaker fails fast.
    pub breaker_cool_down_ms: u64,
}

/// `[tenants]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenants {
    /// Requests per tenant per minute (0 = unlimited).
    pub requests_per_minute: u32,
    /// Spend per tenant per window, in USD (decimal string).
    #[serde(deserialize_with = "decimal_text")]
    pub budget_usd: String,
    /// Budget window.
    pub budget_window_seconds: u64,
    /// Price used for models missing from the bundled price table (the scripted model), per
    /// million input tokens.
    #[serde(deserialize_with = "decimal_text")]
    pub fallback_price_input_per_million: String,
    /// Same, output tokens.
    #[serde(deserialize_with = "decimal_text")]
    pub fallback_price_output_per_million: String,
}

/// A decimal as text, written either as a TOML string (`"5.00"`, exact) or a number (an
/// environment override such as `SUPPORT__TENANTS__BUDGET_USD=1000` arrives as one).
fn decimal_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Text(String),
        Int(i64),
        Float(f64),
    }
    Ok(match Num::deserialize(d)? {
        Num::Text(s) => s,
        Num::Int(i) => i.to_string(),
        Num::Float(f) => f.to_string(),
    })
}

/// `[review]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// Refund scores at or above this are approved without a human.
    pub approve_at: f64,
    /// Refund scores below this are rejected without a human.
    pub reject_below: f64,
}

/// `[secrets]`: where secrets live, never their values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSources {
    /// Environment variable with API keys: `key=tenant,key2=tenant2`.
    pub api_keys_env: String,
    /// File with one `key=tenant` per line (read when set).
    #[serde(default)]
    pub api_keys_file: Option<PathBuf>,
    /// Environment variable with a Redis URL (it may hold a password, so it is a secret): when
    /// set, tenant budgets live in Redis and every replica shares them; Redis is then a
    /// readiness check.
    #[serde(default = "default_redis_env")]
    pub redis_url_env: String,
    /// Environment variable with the upstream provider key (for non-`env` providers).
    pub upstream_key_env: String,
    /// File holding the upstream provider key (read when set).
    #[serde(default)]
    pub upstream_key_file: Option<PathBuf>,
}

fn default_redis_env() -> String {
    "LLMKIT_REDIS_URL".to_owned()
}

/// `[telemetry]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// JSON-lines file of call records (empty: none).
    #[serde(default)]
    pub trace_file: Option<PathBuf>,
}

fn scalar(v: &str) -> toml::Value {
    // `key = <v>` parsed as TOML gives numbers and booleans their types; anything else is text.
    match format!("v = {v}").parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(
                val @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)),
            ) => val,
            _ => toml::Value::String(v.to_owned()),
        },
        Err(_) => toml::Value::String(v.to_owned()),
    }
}

/// Applies `SUPPORT__A__B=v` overrides from `vars` to a TOML table.
pub fn apply_overrides(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in vars {
        let Some(path) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let parts: Vec<String> = path.split("__").map(str::to_lowercase).collect();
        let Some((last, parents)) = parts.split_last() else {
            continue;
        };
        let mut cur = &mut *table;
        for p in parents {
            let entry = cur
                .entry(p.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            cur = entry
                .as_table_mut()
                .ok_or_else(|| ConfigError(format!("{name}: `{p}` is not a section")))?;
        }
        cur.insert(last.clone(), scalar(&value));
    }
    Ok(())
}

impl Config {
    /// Parses `text` (TOML), applies `vars` overrides, resolves relative paths against `base`.
    pub fn parse(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
        base: &Path,
    ) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e| ConfigError(format!("config is not valid toml: {e}")))?;
        apply_overrides(&mut table, vars)?;
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e| ConfigError(format!("config: {e}")))?;
        for p in [&mut config.prompts.dir, &mut config.data.policies_dir] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Loads `path` (or the built-in config, with paths relative to this crate) and the
    /// process environment's overrides.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let vars = std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX));
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", p.display())))?;
                let base = p.parent().unwrap_or(Path::new("."));
                Config::parse(&text, vars, base)
            }
            None => Config::parse(DEFAULT_TOML, vars, Path::new(env!("CARGO_MANIFEST_DIR"))),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.model.versions.contains_key(&self.model.version) {
            return Err(ConfigError(format!(
                "model.version `{}` is not one of [{}]",
                self.model.version,
                self.model
                    .versions
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if !(0.0..=1.0).contains(&self.prompts.canary_share) {
            return Err(ConfigError(format!(
                "prompts.canary_share must be within 0..=1, got {}",
                self.prompts.canary_share
            )));
        }
        Ok(())
    }
}

/// Secret values, read once at start. `Debug` prints only what is present.
#[derive(Clone, Default)]
pub struct Secrets {
    /// API key → tenant.
    pub api_keys: BTreeMap<String, String>,
    /// The upstream provider key, when configured.
    pub upstream_key: Option<String>,
    /// The Redis URL for shared budgets, when configured.
    pub redis_url: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field(
                "api_keys",
                &format_args!("[redacted: {}]", self.api_keys.len()),
            )
            .field(
                "redis_url",
                &format_args!(
                    "{}",
                    if self.redis_url.is_some() {
                        "[redacted]"
                    } else {
                        "none"
                    }
                ),
            )
            .field(
                "upstream_key",
                &format_args!(
                    "{}",
                    if self.upstream_key.is_some() {
                        "[redacted]"
                    } else {
                        "none"
                    }
                ),
            )
            .finish()
    }
}

fn parse_keys(text: &str, from: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for (i, item) in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.starts_with('#'))
        .enumerate()
    {
        // The error names the position, never the text: it is a key.
        let (key, tenant) = item
            .split_once('=')
            .ok_or_else(|| ConfigError(format!("{from}: entry {} is not `key=tenant`", i + 1)))?;
        out.insert(key.trim().to_owned(), tenant.trim().to_owned());
    }
    Ok(out)
}

impl Secrets {
    /// Reads the secrets `sources` names through `env` (the process environment in the binary).
    pub fn load(
        sources: &SecretSources,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Secrets, ConfigError> {
        let mut api_keys = BTreeMap::new();
        if let Some(v) = env(&sources.api_keys_env).filter(|v| !v.trim().is_empty()) {
            api_keys.extend(parse_keys(&v, &sources.api_keys_env)?);
        }
        if let Some(path) = &sources.api_keys_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!("cannot read {}: {}", path.display(), e.kind()))
            })?;
            api_keys.extend(parse_keys(&text, &path.display().to_string())?);
        }
        let mut upstream_key = env(&sources.upstream_key_env).filter(|v| !v.trim().is_empty());
        if let Some(path) = &sources.upstream_key_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!("cannot read {}: {}", path.display(), e.kind()))
            })?;
            upstream_key = Some(text.trim().to_owned());
        }
        let redis_url = env(&sources.redis_url_env).filter(|v| !v.trim().is_empty());
        Ok(Secrets {
            api_keys,
            upstream_key,
            redis_url,
        })
    }

    /// What `/config` shows about secrets: counts and presence, never values.
    pub fn redacted(&self, sources: &SecretSources) -> serde_json::Value {
        serde_json::json!({
            "api_keys": format!("[redacted: {} keys from {}{}]", self.api_keys.len(), sources.api_keys_env,
                sources.api_keys_file.as_ref().map(|p| format!(" and {}", p.display())).unwrap_or_default()),
            "upstream_key": if self.upstream_key.is_some() { "[redacted]" } else { "not set" },
            "redis_url": if self.redis_url.is_some() { "[redacted]" } else { "not set: budgets in memory" },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn env_overrides_typed_values() {
        let c = Config::parse(
            DEFAULT_TOML,
            vars(&[
                ("SUPPORT__PROMPTS__CANARY_SHARE", "0.25"),
                ("SUPPORT__SERVER__LISTEN", "0.0.0.0:9000"),
                ("SUPPORT__MODEL__VERSION", "v2"),
                ("SUPPORT__MODEL__VERSIONS__V1__DELAY_MS", "50"),
                ("SUPPORT__TENANTS__BUDGET_USD", "1000"),
                ("OTHER", "ignored"),
            ]),
            Path::new("/base"),
        )
        .unwrap();
        assert_eq!(c.prompts.canary_share, 0.25);
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.model.version, "v2");
        assert_eq!(c.model.versions["v1"].delay_ms, 50);
        assert_eq!(
            c.tenants.budget_usd, "1000",
            "a number override of a decimal field"
        );
        assert!(c.prompts.dir.starts_with("/base"));
    }

    #[test]
    fn bad_values_are_errors() {
        for (k, v) in [
            ("SUPPORT__MODEL__VERSION", "v9"),
            ("SUPPORT__PROMPTS__CANARY_SHARE", "1.5"),
            ("SUPPORT__SERVER__NO_SUCH_KEY", "1"),
        ] {
            assert!(
                Config::parse(DEFAULT_TOML, vars(&[(k, v)]), Path::new(".")).is_err(),
                "{k}"
            );
        }
    }

    #[test]
    fn secrets_never_show() {
        let c = Config::parse(DEFAULT_TOML, Vec::new(), Path::new(".")).unwrap();
        let env = |name: &str| match name {
            "SUPPORT_API_KEYS" => Some("sk-abc123=acme, sk-def456=globex".to_owned()),
            "SUPPORT_UPSTREAM_API_KEY" => Some("sk-upstream-999".to_owned()),
            _ => None,
        };
        let s = Secrets::load(&c.secrets, env).unwrap();
        assert_eq!(
            s.api_keys.get("sk-abc123").map(String::as_str),
            Some("acme")
        );
        let shown = format!("{s:?} {}", s.redacted(&c.secrets));
        for secret in ["sk-abc123", "sk-def456", "sk-upstream-999"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let bad = Secrets::load(&c.secrets, |_| Some("sk-only-a-key".to_owned()));
        let msg = bad.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("entry 1") && !msg.contains("sk-only"), "{msg}");
    }
}
