//! [`OpenAiModel`] and [`OpenAiEmbeddings`]: Chat Completions and Embeddings over HTTP, built
//! like every other provider (a builder on the shared [`http::Transport`]). Azure OpenAI
//! (`crate::azure`) builds the same types with its own [`Endpoint`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use llmkit_core::{
    Capabilities, ChatModel, ChatRequest, ChatResponse, ChatStream, EmbeddingModel,
    EmbeddingRequest, EmbeddingResponse, Error, ModelInfo, Result, async_trait,
};
use reqwest::header::HeaderMap;

use super::wire::{self, BodyOptions, MaxTokensField};
use super::{COMPATIBLE_PROVIDER, DEFAULT_BASE_URL, OPENAI_RULES, PROVIDER};
use crate::config::{ProviderConfig, ProviderKind};
use crate::http::{self, ErrorMapper, ErrorRule};
use crate::secret::SecretString;
use crate::sse::{SseEvent, sse_stream};

/// Everything that differs between OpenAI, Azure and compatible servers; the wire code and the
/// client are shared.
pub(crate) struct Endpoint {
    pub(crate) provider: &'static str,
    pub(crate) model: String,
    pub(crate) chat_url: String,
    pub(crate) embeddings_url: String,
    /// Auth and account headers; they win over the transport's extra headers.
    pub(crate) headers: HeaderMap,
    /// Redacted from error text: the key or token (extra header values are added from the
    /// transport).
    pub(crate) secrets: Vec<SecretString>,
    pub(crate) rules: &'static [ErrorRule],
    pub(crate) body: BodyOptions,
    pub(crate) capabilities: Capabilities,
    pub(crate) transport: http::Transport,
}

/// What the Chat Completions family (OpenAI, Azure, compatible servers) can do.
pub(crate) const CAPABILITIES: Capabilities = Capabilities {
    json_schema: true,
    tools: true,
    streaming: true,
    prompt_caching: false,
    batch: false,
    embeddings: true,
    vision: true,
};

/// What one built model holds; shared by its clones.
#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) client: reqwest::Client,
    pub(crate) info: ModelInfo,
    pub(crate) chat_url: String,
    pub(crate) embeddings_url: String,
    pub(crate) headers: HeaderMap,
    pub(crate) timeout: Option<Duration>,
    pub(crate) mapper: ErrorMapper,
    pub(crate) body: BodyOptions,
}

/// A Chat Completions model (OpenAI or any compatible server). Cheap to clone: clones share
/// the HTTP connection pool.
///
/// ```
/// use llmkit_providers::openai::OpenAiModel;
/// let model = OpenAiModel::builder("gpt-4o-mini")
///     .api_key("sk-example")
///     .organization("org-1")
///     .timeout(std::time::Duration::from_secs(30))
///     .build()?;
/// assert_eq!(model.chat_url(), "https://api.openai.com/v1/chat/completions");
/// assert!(!format!("{model:?}").contains("sk-example"));
/// # Ok::<(), llmkit_core::Error>(())
/// ```
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

/// Builds an [`OpenAiModel`] (or [`OpenAiEmbeddings`]); every setting has a documented default.
#[must_use]
// Derived: `SecretString` and `Transport` print no secret (key redacted, header names only).
#[derive(Clone, Debug)]
pub struct OpenAiBuilder {
    model: String,
    compatible: bool,
    api_key: Option<SecretString>,
    base_url: Option<String>,
    organization: Option<String>,
    project: Option<String>,
    transport: http::Transport,
}

impl OpenAiBuilder {
    /// The API key, sent as `Authorization: Bearer`. Required for OpenAI; optional (default
    /// none) for a compatible server.
    pub fn api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// API base URL. Default [`DEFAULT_BASE_URL`] for OpenAI; required for a compatible
    /// server (e.g. `http://127.0.0.1:8000/v1`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// `OpenAI-Organization` header. Default: none.
    pub fn organization(mut self, id: impl Into<String>) -> Self {
        self.organization = Some(id.into());
        self
    }

    /// `OpenAI-Project` header. Default: none.
    pub fn project(mut self, id: impl Into<String>) -> Self {
        self.project = Some(id.into());
        self
    }

    http::transport_setters!();

    /// Builds the chat model.
    ///
    /// # Errors
    /// [`llmkit_core::ErrorKind::Config`] naming `OPENAI_API_KEY` or `OPENAI_BASE_URL` when
    /// the key (OpenAI) or the base URL (compatible server) is missing or invalid.
    pub fn build(self) -> Result<OpenAiModel> {
        OpenAiModel::from_endpoint(self.endpoint()?)
    }

    /// Builds embeddings instead, with the builder's model as the embedding model.
    ///
    /// # Errors
    /// As [`build`](Self::build).
    pub fn build_embeddings(self) -> Result<OpenAiEmbeddings> {
        Ok(OpenAiEmbeddings::from_model(self.build()?))
    }

    fn endpoint(self) -> Result<Endpoint> {
        let base = match (&self.base_url, self.compatible) {
            (Some(url), _) => base_url(url, "OPENAI_BASE_URL")?,
            (None, false) => DEFAULT_BASE_URL.to_owned(),
            (None, true) => {
                return Err(Error::config(
                    "missing base url for openai_compatible: set OPENAI_BASE_URL (or `base_url` in the provider config)",
                ));
            }
        };
        let key = self.api_key.filter(|k| !k.is_empty());
        if key.is_none() && !self.compatible {
            return Err(Error::config(
                "missing api key for openai: set OPENAI_API_KEY (or `api_key` in the provider config)",
            ));
        }
        let mut headers = HeaderMap::new();
        let mut secrets = Vec::new();
        if let Some(key) = key {
            http::insert_secret_header(&mut headers, "authorization", "Bearer ", &key)?;
            secrets.push(key);
        }
        if let Some(org) = &self.organization {
            http::insert_header(&mut headers, "openai-organization", org)?;
        }
        if let Some(project) = &self.project {
            http::insert_header(&mut headers, "openai-project", project)?;
        }
        Ok(Endpoint {
            provider: if self.compatible {
                COMPATIBLE_PROVIDER
            } else {
                PROVIDER
            },
            model: self.model,
            chat_url: format!("{base}/chat/completions"),
            embeddings_url: format!("{base}/embeddings"),
            headers,
            secrets,
            rules: OPENAI_RULES,
            body: BodyOptions {
                // Most compatible servers only know the older name.
                max_tokens_field: if self.compatible {
                    MaxTokensField::MaxTokens
                } else {
                    MaxTokensField::MaxCompletionTokens
                },
                strict_schemas: !self.compatible,
            },
            capabilities: CAPABILITIES,
            transport: self.transport,
        })
    }
}

impl OpenAiModel {
    /// A builder for an OpenAI `model` (e.g. `gpt-4o-mini`); the key is required.
    pub fn builder(model: impl Into<String>) -> OpenAiBuilder {
        OpenAiBuilder {
            model: model.into(),
            compatible: false,
            api_key: None,
            base_url: None,
            organization: None,
            project: None,
            transport: http::Transport::default(),
        }
    }

    /// A builder for `model` on an OpenAI-compatible server at `base_url` (vLLM, llama.cpp
    /// server, LM Studio...): key optional, provider name `openai_compatible`, `max_tokens`
    /// instead of `max_completion_tokens`, schemas sent non-strict.
    pub fn compatible_builder(
        base_url: impl Into<String>,
        model: impl Into<String>,
    ) -> OpenAiBuilder {
        Self::builder(model).compatible(base_url)
    }

    /// Builds a model from a config of kind `openai` (key required; `base_url`,
    /// `organization`, `project` optional) or `openai_compatible` (`base_url` required, key
    /// optional), with its `timeout` and extra `headers`.
    pub fn from_config(config: &ProviderConfig) -> Result<Self> {
        builder_from_config(config, config.require_model()?)?.build()
    }

    /// An OpenAI model with this key; every other setting at its default.
    pub fn new(api_key: impl Into<SecretString>, model: impl Into<String>) -> Result<Self> {
        Self::builder(model).api_key(api_key).build()
    }

    /// A model on an OpenAI-compatible server at `base_url` (e.g. `http://127.0.0.1:8000/v1`).
    pub fn compatible(base_url: impl Into<String>, model: impl Into<String>) -> Result<Self> {
        Self::compatible_builder(base_url, model).build()
    }

    pub(crate) fn from_endpoint(e: Endpoint) -> Result<Self> {
        let mut mapper = ErrorMapper::new(e.provider, e.rules);
        // Extra header values may be gateway tokens: treat them as secrets in error text.
        for (_, value) in &e.transport.headers {
            mapper = mapper.with_secret(&SecretString::new(value.clone()));
        }
        for secret in &e.secrets {
            mapper = mapper.with_secret(secret);
        }
        let transport = e.transport.resolve()?;
        let mut headers = transport.headers;
        for (name, value) in &e.headers {
            headers.insert(name.clone(), value.clone());
        }
        Ok(OpenAiModel {
            inner: Arc::new(Inner {
                client: transport.client,
                info: ModelInfo::new(e.provider, e.model)
                    .with_capabilities(e.capabilities)
                    .with_server_url(&e.chat_url),
                chat_url: e.chat_url,
                embeddings_url: e.embeddings_url,
                headers,
                timeout: transport.timeout,
                mapper,
                body: e.body,
            }),
        })
    }

    /// Sends through `client` instead of this model's own, e.g. to share one connection pool
    /// between models that live on the same tokio runtime (see [`http::default_client`]).
    /// The builders' `http_client` setter does the same.
    ///
    /// reqwest's major version is part of this signature: a reqwest upgrade that changes its
    /// major version is a breaking change of llmkit-providers too.
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

    /// The endpoint at `url` with this model's client, headers, timeout and mapper. The
    /// request's idempotency key goes out as `Idempotency-Key`, the header OpenAI's own SDKs
    /// send on retried POSTs (docs/providers.md, "Idempotency keys").
    fn endpoint(&self, url: &str) -> Result<http::Endpoint> {
        let inner = &self.inner;
        http::Endpoint::new(inner.client.clone(), url, inner.mapper.clone())
            .headers(&inner.headers)
            .timeout(inner.timeout)
            .idempotency_header("idempotency-key")
    }

    fn context(&self, request: &ChatRequest) -> impl Fn(Error) -> Error + Send + 'static {
        let provider = self.inner.info.provider.clone();
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.inner.info.model.clone());
        let request_id = request.meta.request_id.clone();
        move |e: Error| {
            let e = e.or_context(&provider, &model);
            match (&request_id, e.request_id()) {
                (Some(id), None) => e.with_request_id(id.clone()),
                _ => e,
            }
        }
    }
}

impl OpenAiBuilder {
    /// Turns this into a builder for a compatible server at `base_url`.
    fn compatible(mut self, base_url: impl Into<String>) -> Self {
        self.compatible = true;
        self.base_url = Some(base_url.into());
        self
    }
}

/// The builder a config of kind `openai` / `openai_compatible` describes, for `model`.
fn builder_from_config(config: &ProviderConfig, model: &str) -> Result<OpenAiBuilder> {
    let mut b = OpenAiModel::builder(model);
    match config.provider {
        ProviderKind::OpenAi => {
            b = b.api_key(config.require_api_key("OPENAI_API_KEY")?.clone());
            if let Some(url) = &config.base_url {
                b = b.base_url(url.clone());
            }
        }
        ProviderKind::OpenAiCompatible => {
            b = b.compatible(config.require(&config.base_url, "base_url", "OPENAI_BASE_URL")?);
            if let Some(key) = &config.api_key {
                b = b.api_key(key.clone());
            }
        }
        other => {
            return Err(Error::config(format!(
                "OpenAiModel::from_config needs provider openai or openai_compatible, got {other}"
            )));
        }
    }
    if let Some(org) = &config.organization {
        b = b.organization(org.clone());
    }
    if let Some(project) = &config.project {
        b = b.project(project.clone());
    }
    b.transport = config.transport();
    Ok(b)
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
            let response = self
                .endpoint(&inner.chat_url)?
                .post_json(&body, &request.meta)
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
            self.endpoint(&inner.chat_url)?
                .post_json_stream(&body, &request.meta)
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
        Ok(crate::frames::chat_stream(
            events,
            "[DONE] or a finish reason",
            move |event: Option<SseEvent>| match event {
                Some(event) => {
                    state.on_data(&event.data, &|body| mapper.error_from_stream_event(body))
                }
                None => Ok(state.on_end()),
            },
            ctx,
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
        builder_from_config(config, config.require_embedding_model()?)?.build_embeddings()
    }

    pub(crate) fn from_model(model: OpenAiModel) -> Self {
        OpenAiEmbeddings {
            model,
            dimensions: None,
        }
    }

    /// Asks for shortened vectors of this length (text-embedding-3 models support it).
    /// Default: the model's full length.
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
            let body = wire::EmbeddingsRequest {
                dimensions: request.dimensions.map(|d| d as usize).or(self.dimensions),
                encoding_format: "float",
                input: &request.inputs,
                model: &model,
            };
            let response = self
                .model
                .endpoint(&inner.embeddings_url)?
                .post_json(&body, &request.meta)
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
                ..Default::default()
            })
        };
        run.await
            .map_err(|e: Error| e.or_context(&inner.info.provider, &model))
    }

    fn dimensions(&self) -> Option<usize> {
        self.dimensions
    }
}
