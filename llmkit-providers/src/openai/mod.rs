//! OpenAI Chat Completions and Embeddings, and the same code for any OpenAI-compatible server
//! (vLLM, llama.cpp server, LM Studio, Together, Groq...) by base URL.
//!
//! - [`OpenAiModel`] implements [`ChatModel`]: messages with images, tool calls and results,
//!   tools and `tool_choice`, `response_format` (`json_object`, `json_schema` transformed for
//!   strict mode by [`llmkit_core::schema`]), `max_completion_tokens`, seed, stop, native SSE
//!   streaming with `stream_options.include_usage`, and usage including cached and reasoning
//!   tokens. `RequestMeta::idempotency_key` becomes an `Idempotency-Key` header.
//! - [`OpenAiEmbeddings`] implements [`EmbeddingModel`] over `/embeddings`.
//! - [`crate::azure`] reuses this module's wire code with Azure's URLs and auth.
//!
//! A refusal (`message.refusal`) becomes the reply text with [`FinishReason::ContentFilter`];
//! a stream that ends without a finish reason or `[DONE]` ends with an
//! [`ErrorKind::Truncated`](llmkit_core::ErrorKind::Truncated) error.
//!
//! ```
//! use llmkit_providers::openai::OpenAiModel;
//! use llmkit_providers::{ProviderConfig, ProviderKind};
//!
//! // A local vLLM or llama.cpp server needs no key.
//! let config = ProviderConfig::new(ProviderKind::OpenAiCompatible, "qwen2.5")
//!     .with_base_url("http://127.0.0.1:8000/v1");
//! let model = OpenAiModel::from_config(&config)?;
//! assert_eq!(model.info().provider, "openai_compatible");
//! assert_eq!(model.chat_url(), "http://127.0.0.1:8000/v1/chat/completions");
//! # Ok::<(), llmkit_core::Error>(())
//! ```
//!
//! [`FinishReason::ContentFilter`]: llmkit_core::FinishReason::ContentFilter

pub(crate) mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use llmkit_core::{
    Capabilities, ChatModel, ChatRequest, ChatResponse, ChatStream, EmbeddingModel,
    EmbeddingRequest, EmbeddingResponse, Error, ModelInfo, Result, async_trait,
};
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::config::{ProviderConfig, ProviderKind};
use crate::http::{self, ErrorMapper, ErrorRule};
use crate::secret::SecretString;
use crate::sse::sse_stream;

pub(crate) use wire::BodyOptions;

/// OpenAI's default API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// Provider name of OpenAI (OpenTelemetry `gen_ai.provider.name`).
pub const PROVIDER: &str = "openai";

/// Provider name used for OpenAI-compatible servers, so their calls are not priced or counted
/// as OpenAI's.
pub const COMPATIBLE_PROVIDER: &str = "openai_compatible";

/// OpenAI-specific error rules, checked before [`http::COMMON_RULES`].
pub static OPENAI_RULES: &[ErrorRule] = &[
    ErrorRule::message(
        "reduce the length of the messages",
        llmkit_core::ErrorKind::ContextLength,
    ),
    ErrorRule::code(
        "unsupported_country_region_territory",
        llmkit_core::ErrorKind::Auth,
    ),
];

/// Everything that differs between OpenAI, Azure and compatible servers; the wire code is
/// shared.
pub(crate) struct Endpoint {
    pub provider: &'static str,
    pub model: String,
    pub chat_url: String,
    pub embeddings_url: String,
    pub headers: HeaderMap,
    /// Redacted from error text: the key or token, and every extra header value.
    pub secrets: Vec<SecretString>,
    pub rules: &'static [ErrorRule],
    pub body: BodyOptions,
    pub timeout: Option<Duration>,
    pub capabilities: Capabilities,
}

#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) client: reqwest::Client,
    pub(crate) info: ModelInfo,
    pub(crate) chat_url: String,
    embeddings_url: String,
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: Option<Duration>,
    pub(crate) mapper: ErrorMapper,
    pub(crate) body: BodyOptions,
}

/// A Chat Completions model (OpenAI or any compatible server). Cheap to clone: clones share
/// the HTTP connection pool.
#[derive(Clone)]
pub struct OpenAiModel {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for OpenAiModel {
    /// Never prints headers: they carry the key and possibly gateway tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("provider", &self.inner.info.provider)
            .field("model", &self.inner.info.model)
            .field("chat_url", &self.inner.chat_url)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Validates a base URL and strips trailing slashes.
pub(crate) fn base_url(raw: &str, env_var: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    match reqwest::Url::parse(trimmed) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(trimmed.to_owned()),
        _ => Err(Error::config(format!(
            "invalid base url `{trimmed}`: set {env_var} to an http(s) url such as https://api.openai.com/v1"
        ))),
    }
}

/// The shared header set: extra config headers first, so llmkit's own auth headers win.
pub(crate) fn config_headers(config: &ProviderConfig) -> Result<HeaderMap> {
    http::headers_from(config.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Extra header values may be gateway tokens: treat them as secrets in error text.
pub(crate) fn header_secrets(config: &ProviderConfig) -> Vec<SecretString> {
    config
        .headers
        .values()
        .map(|v| SecretString::new(v.clone()))
        .collect()
}

impl OpenAiModel {
    /// Builds a model from a config of kind `openai` (key required; `base_url`,
    /// `organization`, `project` optional) or `openai_compatible` (`base_url` required, key
    /// optional).
    pub fn from_config(config: &ProviderConfig) -> Result<Self> {
        Self::from_endpoint(openai_endpoint(config, false)?)
    }

    /// An OpenAI model with this key; every other setting at its default.
    pub fn new(api_key: impl Into<SecretString>, model: impl Into<String>) -> Result<Self> {
        Self::from_config(&ProviderConfig::new(ProviderKind::OpenAi, model).with_api_key(api_key))
    }

    /// A model on an OpenAI-compatible server at `base_url` (e.g. `http://127.0.0.1:8000/v1`).
    pub fn compatible(base_url: impl Into<String>, model: impl Into<String>) -> Result<Self> {
        Self::from_config(
            &ProviderConfig::new(ProviderKind::OpenAiCompatible, model).with_base_url(base_url),
        )
    }

    pub(crate) fn from_endpoint(e: Endpoint) -> Result<Self> {
        let mut mapper = ErrorMapper::new(e.provider, e.rules);
        for secret in &e.secrets {
            mapper = mapper.with_secret(secret);
        }
        Ok(OpenAiModel {
            inner: Arc::new(Inner {
                client: http::default_client()?,
                info: ModelInfo::new(e.provider, e.model).with_capabilities(e.capabilities),
                chat_url: e.chat_url,
                embeddings_url: e.embeddings_url,
                headers: e.headers,
                timeout: e.timeout,
                mapper,
                body: e.body,
            }),
        })
    }

    /// Sends through `client` instead of this model's own, e.g. to share one connection pool
    /// between models that live on the same tokio runtime (see [`http::default_client`]).
    pub fn with_http_client(self, client: reqwest::Client) -> Self {
        let inner = Arc::unwrap_or_clone(self.inner);
        OpenAiModel {
            inner: Arc::new(Inner { client, ..inner }),
        }
    }

    /// Provider, model and capabilities (inherent, so it is unambiguous).
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// The Chat Completions URL requests go to.
    pub fn chat_url(&self) -> &str {
        &self.inner.chat_url
    }

    fn request_headers(&self, request: &ChatRequest) -> Result<HeaderMap> {
        let mut headers = self.inner.headers.clone();
        if let Some(key) = &request.meta.idempotency_key {
            http::insert_header(&mut headers, "idempotency-key", key)?;
        }
        Ok(headers)
    }

    fn context(&self, request: &ChatRequest) -> impl Fn(Error) -> Error + '_ {
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.inner.info.model.clone());
        let request_id = request.meta.request_id.clone();
        move |e: Error| {
            let e = e.or_context(&self.inner.info.provider, &model);
            match (&request_id, e.request_id()) {
                (Some(id), None) => e.with_request_id(id.clone()),
                _ => e,
            }
        }
    }
}

/// The endpoint for `openai` / `openai_compatible` configs. `embeddings` picks the model name.
fn openai_endpoint(config: &ProviderConfig, embeddings: bool) -> Result<Endpoint> {
    let compatible = match config.provider {
        ProviderKind::OpenAi => false,
        ProviderKind::OpenAiCompatible => true,
        other => {
            return Err(Error::config(format!(
                "OpenAiModel::from_config needs provider openai or openai_compatible, got {other}"
            )));
        }
    };
    let model = if embeddings {
        config.require_embedding_model()?.to_owned()
    } else {
        config.require_model()?.to_owned()
    };
    let base = if compatible {
        base_url(
            config.require(&config.base_url, "base_url", "OPENAI_BASE_URL")?,
            "OPENAI_BASE_URL",
        )?
    } else {
        base_url(
            config.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL),
            "OPENAI_BASE_URL",
        )?
    };
    let mut headers = config_headers(config)?;
    let key = if compatible {
        config.api_key.clone().filter(|k| !k.is_empty())
    } else {
        Some(config.require_api_key("OPENAI_API_KEY")?.clone())
    };
    let mut secrets = header_secrets(config);
    if let Some(key) = key {
        http::insert_secret_header(&mut headers, "authorization", "Bearer ", &key)?;
        secrets.push(key);
    }
    if let Some(org) = &config.organization {
        http::insert_header(&mut headers, "openai-organization", org)?;
    }
    if let Some(project) = &config.project {
        http::insert_header(&mut headers, "openai-project", project)?;
    }
    Ok(Endpoint {
        provider: if compatible {
            COMPATIBLE_PROVIDER
        } else {
            PROVIDER
        },
        model,
        chat_url: format!("{base}/chat/completions"),
        embeddings_url: format!("{base}/embeddings"),
        headers,
        secrets,
        rules: OPENAI_RULES,
        body: BodyOptions {
            // Most compatible servers only know the older name.
            max_tokens_field: if compatible {
                "max_tokens"
            } else {
                "max_completion_tokens"
            },
            strict_schemas: !compatible,
        },
        timeout: config.timeout,
        capabilities: Capabilities {
            json_schema: true,
            tools: true,
            streaming: true,
            prompt_caching: false,
            batch: false,
            embeddings: true,
            vision: true,
        },
    })
}

#[async_trait]
impl ChatModel for OpenAiModel {
    fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let ctx = self.context(&request);
        let inner = &self.inner;
        let run = async {
            let body = wire::chat_body(&request, &inner.info.model, false, inner.body)?;
            let timeout = http::effective_timeout(inner.timeout, request.meta.deadline)?;
            let response = http::post_json(
                &inner.client,
                &inner.chat_url,
                self.request_headers(&request)?,
                &body,
                timeout,
                &inner.mapper,
            )
            .await?;
            let header_id = http::provider_request_id(response.headers());
            let parsed: wire::WireResponse = http::read_json(response, &inner.mapper).await?;
            let mut out = wire::parse_response(parsed, &inner.info.provider, &inner.info.model)?;
            if header_id.is_some() {
                out.provider_request_id = header_id;
            }
            out.request_id.clone_from(&request.meta.request_id);
            out.prompt.clone_from(&request.meta.prompt);
            Ok(out)
        };
        run.await.map_err(ctx)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let ctx = self.context(&request);
        let inner = &self.inner;
        let start = async {
            let body = wire::chat_body(&request, &inner.info.model, true, inner.body)?;
            let timeout = http::effective_timeout(inner.timeout, request.meta.deadline)?;
            http::post_json_stream(
                &inner.client,
                &inner.chat_url,
                self.request_headers(&request)?,
                &body,
                timeout,
                &inner.mapper,
            )
            .await
        };
        let response = start.await.map_err(&ctx)?;
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| inner.info.model.clone());
        let mut state =
            wire::StreamState::new(http::provider_request_id(response.headers()), model);
        let mapper = inner.mapper.clone();
        let events = sse_stream(response.bytes_stream(), move |e| mapper.transport_error(e));
        let mapper = inner.mapper.clone();
        let this = self.clone();
        Ok(crate::frames::chat_stream(
            events,
            "[DONE] or a finish reason",
            move |event: Option<crate::sse::SseEvent>| match event {
                Some(event) => {
                    state.on_data(&event.data, &|body| mapper.error_from_stream_event(body))
                }
                None => Ok(state.on_end()),
            },
            move |e| this.context(&request)(e),
        ))
    }
}

/// OpenAI (or compatible) embeddings over `/embeddings`. Cheap to clone.
#[derive(Clone)]
pub struct OpenAiEmbeddings {
    model: OpenAiModel,
    dimensions: Option<usize>,
}

impl fmt::Debug for OpenAiEmbeddings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbeddings")
            .field("model", &self.model.inner.info.model)
            .field("url", &self.model.inner.embeddings_url)
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbeddings {
    /// Builds embeddings from a config of kind `openai` or `openai_compatible`, using
    /// `embedding_model`.
    pub fn from_config(config: &ProviderConfig) -> Result<Self> {
        Ok(OpenAiEmbeddings {
            model: OpenAiModel::from_endpoint(openai_endpoint(config, true)?)?,
            dimensions: None,
        })
    }

    #[cfg(feature = "azure")]
    pub(crate) fn from_model(model: OpenAiModel) -> Self {
        OpenAiEmbeddings {
            model,
            dimensions: None,
        }
    }

    /// Asks for shortened vectors of this length (text-embedding-3 models support it).
    #[must_use]
    pub fn with_dimensions(mut self, dimensions: usize) -> Self {
        self.dimensions = Some(dimensions);
        self
    }

    /// Provider, model and capabilities.
    pub fn info(&self) -> &ModelInfo {
        &self.model.inner.info
    }
}

#[async_trait]
impl EmbeddingModel for OpenAiEmbeddings {
    fn info(&self) -> &ModelInfo {
        &self.model.inner.info
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let inner = &self.model.inner;
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| inner.info.model.clone());
        let run = async {
            let mut body = json!({
                "model": model,
                "input": request.inputs,
                "encoding_format": "float",
            });
            let dims = request.dimensions.map(|d| d as usize).or(self.dimensions);
            if let (Some(d), Some(obj)) = (dims, body.as_object_mut()) {
                obj.insert("dimensions".into(), json!(d));
            }
            let mut headers = inner.headers.clone();
            if let Some(key) = &request.meta.idempotency_key {
                http::insert_header(&mut headers, "idempotency-key", key)?;
            }
            let timeout = http::effective_timeout(inner.timeout, request.meta.deadline)?;
            let response = http::post_json(
                &inner.client,
                &inner.embeddings_url,
                headers,
                &body,
                timeout,
                &inner.mapper,
            )
            .await?;
            let parsed: wire::WireEmbeddings = http::read_json(response, &inner.mapper).await?;
            let (embeddings, answered, usage) =
                wire::parse_embeddings(parsed, request.inputs.len())?;
            Ok(EmbeddingResponse {
                embeddings,
                model: answered.unwrap_or_else(|| model.clone()),
                provider: inner.info.provider.clone(),
                usage,
                cost: None,
            })
        };
        run.await
            .map_err(|e: Error| e.or_context(&inner.info.provider, &model))
    }

    fn dimensions(&self) -> Option<usize> {
        self.dimensions
    }
}

#[cfg(test)]
mod tests;
