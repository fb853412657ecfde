//! Build a model from configuration: switching provider is a configuration change, nothing else.
//!
//! - [`from_env`] / [`embedding_from_env`] read `LLMKIT_PROVIDER`, `LLMKIT_MODEL`
//!   (`LLMKIT_EMBEDDING_MODEL`) and the provider's conventional variables.
//! - [`from_config`] / [`embedding_from_config`] take a [`ProviderConfig`] (a TOML or JSON
//!   section, or built in code).
//! - [`config_from_lookup`] is the environment reader behind `from_env`, taking any lookup
//!   closure, so tests never mutate the process environment.
//!
//! A missing key or an unknown provider is an [`ErrorKind::Config`](llmkit_core::ErrorKind)
//! error naming the variable to set.
//!
//! | provider (`LLMKIT_PROVIDER`) | variables |
//! |---|---|
//! | `openai` | `OPENAI_API_KEY` (required), `OPENAI_BASE_URL`, `OPENAI_ORG_ID`, `OPENAI_PROJECT_ID` |
//! | `openai_compatible` | `OPENAI_BASE_URL` (required), `OPENAI_API_KEY` (optional) |
//! | `azure` | `AZURE_OPENAI_ENDPOINT` (required), `AZURE_OPENAI_API_KEY` or `AZURE_OPENAI_AD_TOKEN`, `OPENAI_API_VERSION`, `AZURE_OPENAI_DEPLOYMENT` |
//! | `anthropic` | `ANTHROPIC_API_KEY` (required), `ANTHROPIC_BASE_URL` |
//! | `gemini` | `GEMINI_API_KEY` (required), `GEMINI_BASE_URL` |
//! | `vertex` | `GOOGLE_CLOUD_PROJECT`, `GOOGLE_CLOUD_LOCATION`, `GOOGLE_ACCESS_TOKEN` (required) |
//! | `ollama` | `OLLAMA_HOST` (default `http://localhost:11434`) |
//!
//! Every provider also reads `LLMKIT_TIMEOUT` (`30s`, `2m`).
//!
//! ```
//! use llmkit_providers::factory::config_from_lookup;
//! use llmkit_providers::ProviderKind;
//!
//! let env = |name: &str| match name {
//!     "LLMKIT_PROVIDER" => Some("ollama".to_owned()),
//!     "LLMKIT_MODEL" => Some("llama3.2".to_owned()),
//!     "OLLAMA_HOST" => Some("127.0.0.1:11434".to_owned()),
//!     _ => None,
//! };
//! let config = config_from_lookup(env)?;
//! assert_eq!(config.provider, ProviderKind::Ollama);
//! assert_eq!(config.base_url.as_deref(), Some("http://127.0.0.1:11434"));
//!
//! let missing = config_from_lookup(|_| None).unwrap_err();
//! assert!(missing.message().contains("LLMKIT_PROVIDER"));
//! # Ok::<(), llmkit_core::Error>(())
//! ```

use std::sync::Arc;

use llmkit_core::{ChatModel, EmbeddingModel, Error, Result};

use crate::config::{ProviderConfig, ProviderKind, parse_duration};
use crate::secret::SecretString;

/// Builds the chat model the process environment selects.
pub fn from_env() -> Result<Arc<dyn ChatModel>> {
    from_lookup(env_lookup)
}

/// Builds the chat model a lookup function selects (see [`config_from_lookup`]).
pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Arc<dyn ChatModel>> {
    from_config(&config_from_lookup(lookup)?)
}

/// Builds the embedding model the process environment selects: `LLMKIT_EMBEDDING_PROVIDER`
/// (default `LLMKIT_PROVIDER`) and `LLMKIT_EMBEDDING_MODEL`.
pub fn embedding_from_env() -> Result<Arc<dyn EmbeddingModel>> {
    embedding_from_lookup(env_lookup)
}

/// Builds the embedding model a lookup function selects.
pub fn embedding_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn EmbeddingModel>> {
    embedding_from_config(&embedding_config_from_lookup(lookup)?)
}

/// The process environment, with empty values treated as unset.
pub fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Reads a [`ProviderConfig`] for the chat model from a lookup function (`LLMKIT_PROVIDER`,
/// `LLMKIT_MODEL`, `LLMKIT_EMBEDDING_MODEL`, `LLMKIT_TIMEOUT` and the provider's variables).
/// Empty values count as unset.
pub fn config_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ProviderConfig> {
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let provider = get("LLMKIT_PROVIDER").ok_or_else(|| {
        Error::config(format!(
            "no provider selected: set LLMKIT_PROVIDER to one of {}",
            ProviderKind::names()
        ))
    })?;
    let kind: ProviderKind = provider
        .parse()
        .map_err(|e: Error| Error::config(format!("LLMKIT_PROVIDER: {}", e.message())))?;
    config_for(kind, get("LLMKIT_MODEL").unwrap_or_default(), &get)
}

/// Reads a [`ProviderConfig`] for the embedding model: `LLMKIT_EMBEDDING_PROVIDER` (default
/// `LLMKIT_PROVIDER`) and `LLMKIT_EMBEDDING_MODEL` (required).
pub fn embedding_config_from_lookup(
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ProviderConfig> {
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let provider = get("LLMKIT_EMBEDDING_PROVIDER")
        .or_else(|| get("LLMKIT_PROVIDER"))
        .ok_or_else(|| {
            Error::config(format!(
                "no embedding provider selected: set LLMKIT_EMBEDDING_PROVIDER or LLMKIT_PROVIDER to one of {}",
                ProviderKind::names()
            ))
        })?;
    let kind: ProviderKind = provider.parse()?;
    let model = get("LLMKIT_EMBEDDING_MODEL").ok_or_else(|| {
        Error::config(format!(
            "missing embedding model for {kind}: set LLMKIT_EMBEDDING_MODEL"
        ))
    })?;
    config_for(kind, model, &get)
}

fn config_for(
    kind: ProviderKind,
    model: String,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<ProviderConfig> {
    let secret = |name: &str| get(name).map(SecretString::new);
    let mut c = ProviderConfig::new(kind, model);
    c.embedding_model = get("LLMKIT_EMBEDDING_MODEL");
    if let Some(t) = get("LLMKIT_TIMEOUT") {
        c.timeout = Some(parse_duration(&t).ok_or_else(|| {
            Error::config("LLMKIT_TIMEOUT is not a duration: use a value such as 30s, 2m or 500ms")
        })?);
    }
    match kind {
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            c.api_key = secret("OPENAI_API_KEY");
            c.base_url = get("OPENAI_BASE_URL");
            c.organization = get("OPENAI_ORG_ID");
            c.project = get("OPENAI_PROJECT_ID");
            if kind == ProviderKind::OpenAi {
                c.require_api_key("OPENAI_API_KEY")?;
            } else {
                c.require(&c.base_url, "base_url", "OPENAI_BASE_URL")?;
            }
        }
        ProviderKind::Azure => {
            c.base_url = get("AZURE_OPENAI_ENDPOINT");
            c.api_key = secret("AZURE_OPENAI_API_KEY");
            c.access_token = secret("AZURE_OPENAI_AD_TOKEN");
            c.api_version = get("OPENAI_API_VERSION");
            c.deployment = get("AZURE_OPENAI_DEPLOYMENT");
            c.require(&c.base_url, "endpoint", "AZURE_OPENAI_ENDPOINT")?;
            if c.access_token.is_none() {
                c.require_api_key("AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN)")?;
            }
            if c.model.is_empty()
                && let Some(d) = &c.deployment
            {
                c.model.clone_from(d);
            }
        }
        ProviderKind::Anthropic => {
            c.api_key = secret("ANTHROPIC_API_KEY");
            c.base_url = get("ANTHROPIC_BASE_URL");
            c.require_api_key("ANTHROPIC_API_KEY")?;
        }
        ProviderKind::Gemini => {
            c.api_key = secret("GEMINI_API_KEY");
            c.base_url = get("GEMINI_BASE_URL");
            c.require_api_key("GEMINI_API_KEY")?;
        }
        ProviderKind::Vertex => {
            c.gcp_project = get("GOOGLE_CLOUD_PROJECT");
            c.gcp_location = get("GOOGLE_CLOUD_LOCATION");
            c.access_token = secret("GOOGLE_ACCESS_TOKEN");
            c.base_url = get("VERTEX_BASE_URL");
            c.require(&c.gcp_project, "gcp_project", "GOOGLE_CLOUD_PROJECT")?;
            if c.access_token.is_none() {
                return Err(Error::config(
                    "missing access token for vertex: set GOOGLE_ACCESS_TOKEN (for example from `gcloud auth print-access-token`)",
                ));
            }
        }
        ProviderKind::Ollama => {
            c.base_url = Some(normalize_ollama_host(
                get("OLLAMA_HOST")
                    .as_deref()
                    .unwrap_or("http://localhost:11434"),
            ));
        }
    }
    Ok(c)
}

/// `OLLAMA_HOST` is often `host:port` or `0.0.0.0` without a scheme (it is also the server's
/// bind address); turn it into a URL a client can call. Like Ollama's own client: no scheme
/// means `http` and port 11434; an explicit scheme keeps that scheme's default port.
fn normalize_ollama_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    let url = match host.split_once("://") {
        Some(_) => host.to_owned(),
        None if host.contains(':') => format!("http://{host}"),
        None => format!("http://{host}:11434"),
    };
    url.replacen("://0.0.0.0", "://127.0.0.1", 1)
}

/// The error for a provider whose feature is off (or that this build does not include).
pub fn not_compiled_in(kind: ProviderKind) -> Error {
    if kind.is_compiled_in() {
        Error::config(format!(
            "provider {kind} is not available in this build of llmkit-providers"
        ))
    } else {
        Error::config(format!(
            "provider {kind} is not compiled in: enable the `{}` feature of llmkit-providers",
            kind.feature()
        ))
    }
}

/// Builds the chat model a config describes. One match arm per provider.
pub fn from_config(config: &ProviderConfig) -> Result<Arc<dyn ChatModel>> {
    // Which arms exist depends on the enabled features and on the provider modules merged.
    #[allow(unreachable_patterns, clippy::match_single_binding)]
    match config.provider {
        #[cfg(feature = "openai")]
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => {
            Ok(Arc::new(crate::openai::OpenAiModel::from_config(config)?))
        }
        #[cfg(feature = "azure")]
        ProviderKind::Azure => Ok(Arc::new(crate::azure::AzureOpenAiModel::from_config(
            config,
        )?)),
        #[cfg(feature = "anthropic")]
        ProviderKind::Anthropic => Ok(Arc::new(crate::anthropic::AnthropicModel::from_config(
            config,
        )?)),
        #[cfg(feature = "gemini")]
        ProviderKind::Gemini | ProviderKind::Vertex => {
            Ok(Arc::new(crate::gemini::GeminiModel::from_config(config)?))
        }
        #[cfg(feature = "ollama")]
        ProviderKind::Ollama => Ok(Arc::new(crate::ollama::OllamaModel::from_config(config)?)),
        other => Err(not_compiled_in(other)),
    }
}

/// The config with `embedding_model` filled from `model` when unset, so a config section
/// written for embeddings alone can name its model in `model`.
pub fn with_embedding_model(config: &ProviderConfig) -> ProviderConfig {
    let mut c = config.clone();
    if c.embedding_model
        .as_deref()
        .is_none_or(|m| m.trim().is_empty())
        && !c.model.trim().is_empty()
    {
        c.embedding_model = Some(c.model.clone());
    }
    c
}

/// [`with_embedding_model`], then the embedding model also as `model`: for providers whose one
/// model type serves both chat and embeddings (Gemini, Ollama).
#[cfg(any(feature = "gemini", feature = "ollama"))]
fn embedding_as_model(config: &ProviderConfig) -> ProviderConfig {
    let mut c = with_embedding_model(config);
    if let Some(m) = c.embedding_model.clone() {
        c.model = m;
    }
    c
}

/// Builds the embedding model a config describes (uses `embedding_model`, falling back to
/// `model`). Providers without embeddings are an [`ErrorKind::Unsupported`] error.
///
/// [`ErrorKind::Unsupported`]: llmkit_core::ErrorKind::Unsupported
pub fn embedding_from_config(config: &ProviderConfig) -> Result<Arc<dyn EmbeddingModel>> {
    #[allow(unreachable_patterns, clippy::match_single_binding)]
    match config.provider {
        ProviderKind::Anthropic => Err(Error::new(
            llmkit_core::ErrorKind::Unsupported,
            "anthropic has no embeddings endpoint: set LLMKIT_EMBEDDING_PROVIDER to another provider",
        )),
        #[cfg(feature = "openai")]
        ProviderKind::OpenAi | ProviderKind::OpenAiCompatible => Ok(Arc::new(
            crate::openai::OpenAiEmbeddings::from_config(&with_embedding_model(config))?,
        )),
        #[cfg(feature = "azure")]
        ProviderKind::Azure => Ok(Arc::new(crate::azure::AzureOpenAiEmbeddings::from_config(
            &with_embedding_model(config),
        )?)),
        #[cfg(feature = "gemini")]
        ProviderKind::Gemini | ProviderKind::Vertex => Ok(Arc::new(
            crate::gemini::GeminiModel::from_config(&embedding_as_model(config))?,
        )),
        #[cfg(feature = "ollama")]
        ProviderKind::Ollama => Ok(Arc::new(crate::ollama::OllamaModel::from_config(
            &embedding_as_model(config),
        )?)),
        other => Err(not_compiled_in(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmkit_core::ErrorKind;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn missing_values_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "LLMKIT_PROVIDER"),
            (&[("LLMKIT_PROVIDER", "bard")], "LLMKIT_PROVIDER"),
            (&[("LLMKIT_PROVIDER", "openai")], "OPENAI_API_KEY"),
            (
                &[("LLMKIT_PROVIDER", "openai"), ("OPENAI_API_KEY", "  ")],
                "OPENAI_API_KEY",
            ),
            (
                &[("LLMKIT_PROVIDER", "openai_compatible")],
                "OPENAI_BASE_URL",
            ),
            (&[("LLMKIT_PROVIDER", "azure")], "AZURE_OPENAI_ENDPOINT"),
            (
                &[
                    ("LLMKIT_PROVIDER", "azure"),
                    ("AZURE_OPENAI_ENDPOINT", "https://x"),
                ],
                "AZURE_OPENAI_API_KEY",
            ),
            (&[("LLMKIT_PROVIDER", "anthropic")], "ANTHROPIC_API_KEY"),
            (&[("LLMKIT_PROVIDER", "gemini")], "GEMINI_API_KEY"),
            (&[("LLMKIT_PROVIDER", "vertex")], "GOOGLE_CLOUD_PROJECT"),
            (
                &[("LLMKIT_PROVIDER", "vertex"), ("GOOGLE_CLOUD_PROJECT", "p")],
                "GOOGLE_ACCESS_TOKEN",
            ),
            (
                &[("LLMKIT_PROVIDER", "ollama"), ("LLMKIT_TIMEOUT", "soon")],
                "LLMKIT_TIMEOUT",
            ),
        ];
        for (pairs, var) in cases {
            let e = config_from_lookup(env(pairs)).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{pairs:?}");
            assert!(e.message().contains(var), "{pairs:?}: {}", e.message());
        }
        let e = embedding_config_from_lookup(env(&[("LLMKIT_PROVIDER", "ollama")])).unwrap_err();
        assert!(e.message().contains("LLMKIT_EMBEDDING_MODEL"));
    }

    #[test]
    fn reads_each_providers_variables() {
        let c = config_from_lookup(env(&[
            ("LLMKIT_PROVIDER", "openai"),
            ("LLMKIT_MODEL", "gpt-4o-mini"),
            ("OPENAI_API_KEY", "sk-secret-1"),
            ("OPENAI_ORG_ID", "org-1"),
            ("OPENAI_PROJECT_ID", "proj-1"),
            ("LLMKIT_TIMEOUT", "1m30s"),
        ]))
        .unwrap();
        assert_eq!(c.model, "gpt-4o-mini");
        assert_eq!(c.organization.as_deref(), Some("org-1"));
        assert_eq!(c.project.as_deref(), Some("proj-1"));
        assert_eq!(c.timeout, Some(std::time::Duration::from_secs(90)));
        assert!(!format!("{c:?}").contains("sk-secret-1"));

        let c = config_from_lookup(env(&[
            ("LLMKIT_PROVIDER", "azure"),
            ("AZURE_OPENAI_ENDPOINT", "https://res.openai.azure.com"),
            ("AZURE_OPENAI_API_KEY", "k"),
            ("AZURE_OPENAI_DEPLOYMENT", "prod"),
            ("OPENAI_API_VERSION", "2024-10-21"),
        ]))
        .unwrap();
        assert_eq!(c.model, "prod");
        assert_eq!(c.api_version.as_deref(), Some("2024-10-21"));

        let c = config_from_lookup(env(&[
            ("LLMKIT_PROVIDER", "vertex"),
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("GOOGLE_CLOUD_LOCATION", "europe-west4"),
            ("GOOGLE_ACCESS_TOKEN", "ya29.token"),
        ]))
        .unwrap();
        assert_eq!(c.gcp_location.as_deref(), Some("europe-west4"));
        assert_eq!(c.access_token.as_ref().unwrap().expose(), "ya29.token");
    }

    #[test]
    fn ollama_host_forms() {
        for (input, want) in [
            ("localhost", "http://localhost:11434"),
            ("0.0.0.0:11434", "http://127.0.0.1:11434"),
            ("http://gpu-box:8080/", "http://gpu-box:8080"),
            ("https://ollama.example.com", "https://ollama.example.com"),
        ] {
            assert_eq!(normalize_ollama_host(input), want);
        }
    }

    #[test]
    fn unknown_or_disabled_provider_is_a_config_error() {
        let e = not_compiled_in(ProviderKind::Ollama);
        assert_eq!(e.kind(), ErrorKind::Config);
        let e = embedding_from_config(&ProviderConfig::new(ProviderKind::Anthropic, "x"))
            .err()
            .unwrap();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
    }
}
