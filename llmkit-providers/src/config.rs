//! [`ProviderConfig`]: everything needed to build a provider model, from a config file section
//! or the environment, and [`ProviderKind`], the providers llmkit knows.
//!
//! Every provider implements `XModel::from_config(&ProviderConfig) -> llmkit_core::Result<Self>`
//! and reads only the fields it needs; the [factory](crate::factory) picks the provider by
//! [`ProviderConfig::provider`]. Secrets deserialize straight into [`SecretString`], and `Debug`
//! shows header names but never header values.
//!
//! ```
//! use llmkit_providers::{ProviderConfig, ProviderKind};
//! let config: ProviderConfig = serde_json::from_str(r#"{
//!     "provider": "openai", "model": "gpt-4o-mini", "api_key": "sk-test", "timeout": "30s"
//! }"#)?;
//! assert_eq!(config.provider, ProviderKind::OpenAi);
//! assert_eq!(config.timeout, Some(std::time::Duration::from_secs(30)));
//! assert!(!format!("{config:?}").contains("sk-test"));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use llmkit_core::schema::SchemaDialect;
use llmkit_core::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize};

use crate::secret::SecretString;

/// The providers llmkit can build. Parsed from `LLMKIT_PROVIDER` or a config's `provider` field.
///
/// The default is `openai`, so `ProviderConfig::default()` works with struct update syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProviderKind {
    /// OpenAI's API (`openai`).
    #[default]
    #[serde(rename = "openai")]
    OpenAi,
    /// Any server speaking OpenAI's Chat Completions by base URL: vLLM, llama.cpp server, LM
    /// Studio, Together, Groq... (`openai_compatible`). No key required.
    #[serde(rename = "openai_compatible", alias = "openai-compatible")]
    OpenAiCompatible,
    /// Azure OpenAI deployments (`azure`).
    #[serde(rename = "azure", alias = "azure_openai")]
    Azure,
    /// Anthropic Messages (`anthropic`).
    #[serde(rename = "anthropic")]
    Anthropic,
    /// Google Gemini through an AI Studio key (`gemini`).
    #[serde(rename = "gemini")]
    Gemini,
    /// Google Gemini through a Vertex AI endpoint (`vertex`).
    #[serde(rename = "vertex", alias = "vertex_ai")]
    Vertex,
    /// Ollama's native API (`ollama`).
    #[serde(rename = "ollama")]
    Ollama,
}

impl ProviderKind {
    /// Every kind, in documentation order.
    pub const ALL: [ProviderKind; 7] = [
        ProviderKind::OpenAi,
        ProviderKind::OpenAiCompatible,
        ProviderKind::Azure,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Vertex,
        ProviderKind::Ollama,
    ];

    /// The configuration name (`openai`, `openai_compatible`, `azure`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::OpenAiCompatible => "openai_compatible",
            ProviderKind::Azure => "azure",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Vertex => "vertex",
            ProviderKind::Ollama => "ollama",
        }
    }

    /// The cargo feature of `llmkit-providers` that compiles this provider in.
    pub fn feature(self) -> &'static str {
        match self {
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => "openai",
            ProviderKind::Azure => "azure",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini | ProviderKind::Vertex => "gemini",
            ProviderKind::Ollama => "ollama",
        }
    }

    /// The JSON Schema dialect this provider's structured output speaks: what its wire code
    /// hands to [`llmkit_core::schema::to_dialect`]. OpenAI, Azure and compatible servers take
    /// [`SchemaDialect::OpenAiStrict`] (a schema strict mode cannot express is sent as given,
    /// non-strict); Gemini and Vertex the OpenAPI subset; Anthropic a tool `input_schema`;
    /// Ollama plain JSON Schema. This is the one place that maps providers to dialects.
    ///
    /// ```
    /// use llmkit_core::schema::SchemaDialect;
    /// use llmkit_providers::ProviderKind;
    /// assert_eq!(ProviderKind::Vertex.schema_dialect(), SchemaDialect::Gemini);
    /// ```
    pub fn schema_dialect(self) -> SchemaDialect {
        match self {
            ProviderKind::OpenAi | ProviderKind::OpenAiCompatible | ProviderKind::Azure => {
                SchemaDialect::OpenAiStrict
            }
            ProviderKind::Anthropic => SchemaDialect::Anthropic,
            ProviderKind::Gemini | ProviderKind::Vertex => SchemaDialect::Gemini,
            ProviderKind::Ollama => SchemaDialect::Ollama,
        }
    }

    /// Whether this build has the provider's feature enabled.
    pub fn is_compiled_in(self) -> bool {
        const ENABLED: [(&str, bool); 5] = [
            ("openai", cfg!(feature = "openai")),
            ("azure", cfg!(feature = "azure")),
            ("anthropic", cfg!(feature = "anthropic")),
            ("gemini", cfg!(feature = "gemini")),
            ("ollama", cfg!(feature = "ollama")),
        ];
        ENABLED
            .iter()
            .any(|(feature, on)| *on && *feature == self.feature())
    }

    /// The names [`FromStr`] accepts, for error messages.
    pub fn names() -> String {
        ProviderKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderKind {
    type Err = Error;

    /// Case-insensitive; `-` and `_` are interchangeable; `azure_openai` and `vertex_ai` are
    /// accepted aliases.
    fn from_str(s: &str) -> Result<Self> {
        let norm = s.trim().to_ascii_lowercase().replace('-', "_");
        let kind = match norm.as_str() {
            "openai" => ProviderKind::OpenAi,
            "openai_compatible" => ProviderKind::OpenAiCompatible,
            "azure" | "azure_openai" => ProviderKind::Azure,
            "anthropic" => ProviderKind::Anthropic,
            "gemini" => ProviderKind::Gemini,
            "vertex" | "vertex_ai" => ProviderKind::Vertex,
            "ollama" => ProviderKind::Ollama,
            _ => {
                return Err(Error::config(format!(
                    "unknown provider `{}`: use one of {}",
                    s.trim(),
                    ProviderKind::names()
                )));
            }
        };
        Ok(kind)
    }
}

/// Everything needed to build a provider model. Unknown fields are rejected, so a typo in a
/// config file is an error rather than a silently ignored setting.
///
/// Each provider reads the fields it needs: `api_key`, `base_url`, `organization` and
/// `project` (OpenAI); `base_url` (OpenAI-compatible servers, Ollama, Anthropic); `base_url` as
/// the endpoint plus `api_version`, `deployment` and `api_key` or `access_token` (Azure);
/// `gcp_project`, `gcp_location` and `access_token` (Vertex).
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Which provider. Required.
    pub provider: ProviderKind,
    /// The model (for Azure, the deployment when `deployment` is unset).
    #[serde(default)]
    pub model: String,
    /// The model used by the embedding factory functions.
    #[serde(default)]
    pub embedding_model: Option<String>,
    /// API key (`OPENAI_API_KEY`, `AZURE_OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, `GEMINI_API_KEY`).
    #[serde(default)]
    pub api_key: Option<SecretString>,
    /// Bearer token used instead of a key (Vertex `GOOGLE_ACCESS_TOKEN`, Azure Entra ID token).
    #[serde(default)]
    pub access_token: Option<SecretString>,
    /// Base URL overriding the provider default (Azure: the resource endpoint).
    #[serde(default)]
    pub base_url: Option<String>,
    /// OpenAI organization id (`OpenAI-Organization` header).
    #[serde(default)]
    pub organization: Option<String>,
    /// OpenAI project id (`OpenAI-Project` header).
    #[serde(default)]
    pub project: Option<String>,
    /// API version (Azure `api-version`, Anthropic `anthropic-version`).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Azure deployment name.
    #[serde(default)]
    pub deployment: Option<String>,
    /// Google Cloud project (Vertex).
    #[serde(default)]
    pub gcp_project: Option<String>,
    /// Google Cloud location (Vertex), e.g. `us-central1` or `global`.
    #[serde(default)]
    pub gcp_location: Option<String>,
    /// Per-request timeout: `"30s"`, `"1m30s"`, `"500ms"` or a number of seconds. `None`
    /// leaves it to the timeout layer and the request deadline.
    #[serde(default, deserialize_with = "de_duration")]
    pub timeout: Option<Duration>,
    /// Extra HTTP headers sent with every request (proxies, gateways). Values never print.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("embedding_model", &self.embedding_model)
            .field("api_key", &self.api_key)
            .field("access_token", &self.access_token)
            .field("base_url", &self.base_url)
            .field("organization", &self.organization)
            .field("project", &self.project)
            .field("api_version", &self.api_version)
            .field("deployment", &self.deployment)
            .field("gcp_project", &self.gcp_project)
            .field("gcp_location", &self.gcp_location)
            .field("timeout", &self.timeout)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProviderConfig {
    /// The transport this section describes (its timeout and extra headers): the one place
    /// every provider's `from_config` reads them from.
    #[cfg(any(
        feature = "openai",
        feature = "anthropic",
        feature = "gemini",
        feature = "ollama"
    ))]
    pub(crate) fn transport(&self) -> crate::http::Transport {
        crate::http::Transport {
            timeout: self.timeout,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            client: None,
        }
    }

    /// A config for `provider` and `model`; every other field unset.
    pub fn new(provider: ProviderKind, model: impl Into<String>) -> Self {
        ProviderConfig {
            provider,
            model: model.into(),
            ..Default::default()
        }
    }

    /// Sets the API key.
    #[must_use]
    pub fn with_api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the bearer access token.
    #[must_use]
    pub fn with_access_token(mut self, token: impl Into<SecretString>) -> Self {
        self.access_token = Some(token.into());
        self
    }

    /// Sets the base URL (for Azure, the resource endpoint).
    #[must_use]
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Sets the embedding model.
    #[must_use]
    pub fn with_embedding_model(mut self, model: impl Into<String>) -> Self {
        self.embedding_model = Some(model.into());
        self
    }

    /// Sets the OpenAI organization.
    #[must_use]
    pub fn with_organization(mut self, org: impl Into<String>) -> Self {
        self.organization = Some(org.into());
        self
    }

    /// Sets the OpenAI project.
    #[must_use]
    pub fn with_project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// Sets the API version.
    #[must_use]
    pub fn with_api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }

    /// Sets the Azure deployment.
    #[must_use]
    pub fn with_deployment(mut self, deployment: impl Into<String>) -> Self {
        self.deployment = Some(deployment.into());
        self
    }

    /// Sets the Google Cloud project and location (Vertex).
    #[must_use]
    pub fn with_gcp(mut self, project: impl Into<String>, location: impl Into<String>) -> Self {
        self.gcp_project = Some(project.into());
        self.gcp_location = Some(location.into());
        self
    }

    /// Sets the per-request timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Adds an extra header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The API key, or a [`ErrorKind::Config`](llmkit_core::ErrorKind::Config) error naming the
    /// variable to set. An empty key counts as missing.
    pub fn require_api_key(&self, env_var: &str) -> Result<&SecretString> {
        self.api_key
            .as_ref()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::config(format!(
                    "missing api key for {}: set {env_var} (or `api_key` in the provider config)",
                    self.provider
                ))
            })
    }

    /// The model, or a config error naming `LLMKIT_MODEL`.
    pub fn require_model(&self) -> Result<&str> {
        let model = self.model.trim();
        if model.is_empty() {
            return Err(Error::config(format!(
                "missing model for {}: set LLMKIT_MODEL (or `model` in the provider config)",
                self.provider
            )));
        }
        Ok(model)
    }

    /// A string field, or a config error naming the variable to set.
    pub fn require<'a>(
        &self,
        value: &'a Option<String>,
        field: &str,
        env_var: &str,
    ) -> Result<&'a str> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                Error::config(format!(
                    "missing {field} for {}: set {env_var} (or `{field}` in the provider config)",
                    self.provider
                ))
            })
    }

    /// The embedding model, or a config error naming `LLMKIT_EMBEDDING_MODEL`.
    pub fn require_embedding_model(&self) -> Result<&str> {
        self.embedding_model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                Error::config(format!(
                    "missing embedding model for {}: set LLMKIT_EMBEDDING_MODEL (or `embedding_model` in the provider config)",
                    self.provider
                ))
            })
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(f64),
        Text(String),
    }
    let Some(raw) = Option::<Raw>::deserialize(d)? else {
        return Ok(None);
    };
    let parsed = match &raw {
        Raw::Secs(s) if s.is_finite() && *s >= 0.0 => Some(Duration::from_secs_f64(*s)),
        Raw::Secs(_) => None,
        Raw::Text(t) => parse_duration(t),
    };
    parsed.map(Some).ok_or_else(|| {
        serde::de::Error::custom(
            "invalid timeout: use a duration such as \"30s\", \"1m30s\" or \"500ms\"",
        )
    })
}

/// Parses a configuration duration such as `30s`, `1m30s`, `500ms` or `2.5` (seconds).
pub fn parse_duration(text: &str) -> Option<Duration> {
    // The same grammar as OpenAI's `x-ratelimit-reset-*` headers, without their 10-minute cap.
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(n);
        let number: f64 = num.parse().ok()?;
        let u = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(u);
        let secs = match unit {
            "h" => number * 3600.0,
            "m" => number * 60.0,
            "s" => number,
            "ms" => number / 1e3,
            "us" | "µs" => number / 1e6,
            "ns" => number / 1e9,
            _ => return None,
        };
        if !secs.is_finite() {
            return None;
        }
        total = total.checked_add(Duration::try_from_secs_f64(secs).ok()?)?;
        rest = next;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_provider_states_its_schema_dialect() {
        let dialects: Vec<(&str, SchemaDialect)> = ProviderKind::ALL
            .iter()
            .map(|k| (k.as_str(), k.schema_dialect()))
            .collect();
        assert_eq!(
            dialects,
            [
                ("openai", SchemaDialect::OpenAiStrict),
                ("openai_compatible", SchemaDialect::OpenAiStrict),
                ("azure", SchemaDialect::OpenAiStrict),
                ("anthropic", SchemaDialect::Anthropic),
                ("gemini", SchemaDialect::Gemini),
                ("vertex", SchemaDialect::Gemini),
                ("ollama", SchemaDialect::Ollama),
            ]
        );
    }

    #[test]
    fn deserializes_a_toml_section_and_hides_secrets() {
        let text = r#"
            provider = "azure"
            model = "gpt-4o"
            api_key = "azure-key-123456"
            base_url = "https://res.openai.azure.com"
            api_version = "2024-10-21"
            deployment = "prod-4o"
            timeout = 45
            [headers]
            x-gateway-token = "gw-secret-value"
        "#;
        let c: ProviderConfig = toml::from_str(text).unwrap();
        assert_eq!(c.provider, ProviderKind::Azure);
        assert_eq!(c.api_key.as_ref().unwrap().expose(), "azure-key-123456");
        assert_eq!(c.timeout, Some(Duration::from_secs(45)));
        let debug = format!("{c:?}");
        assert!(!debug.contains("azure-key-123456"), "{debug}");
        assert!(!debug.contains("gw-secret-value"), "{debug}");
        assert!(debug.contains("x-gateway-token"));
    }

    #[test]
    fn rejects_typos_and_unknown_providers() {
        let e = serde_json::from_str::<ProviderConfig>(r#"{"provider":"openai","modle":"x"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("modle"));
        assert!(serde_json::from_str::<ProviderConfig>(r#"{"provider":"bard"}"#).is_err());
        let e = "bard".parse::<ProviderKind>().unwrap_err();
        assert_eq!(e.kind(), llmkit_core::ErrorKind::Config);
        assert!(e.message().contains("openai_compatible"));
        assert!(
            serde_json::from_str::<ProviderConfig>(r#"{"provider":"openai","timeout":"soon"}"#)
                .is_err()
        );
    }

    #[test]
    fn kinds_round_trip() {
        for k in ProviderKind::ALL {
            assert_eq!(k.as_str().parse::<ProviderKind>().unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert_eq!(
            "OpenAI-Compatible".parse::<ProviderKind>().unwrap(),
            ProviderKind::OpenAiCompatible
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("3 days"), None);
    }

    #[test]
    fn required_fields_name_the_variable() {
        let c = ProviderConfig::new(ProviderKind::OpenAi, "");
        assert!(
            c.require_api_key("OPENAI_API_KEY")
                .unwrap_err()
                .message()
                .contains("OPENAI_API_KEY")
        );
        assert!(
            c.require_model()
                .unwrap_err()
                .message()
                .contains("LLMKIT_MODEL")
        );
        let c = c.with_api_key("");
        assert!(c.require_api_key("OPENAI_API_KEY").is_err());
    }
}
