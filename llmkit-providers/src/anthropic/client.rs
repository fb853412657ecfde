//! [`AnthropicModel`]: the Messages API over HTTP.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmkit_core::{
    Capabilities, ChatModel, ChatRequest, ChatResponse, ChatStream, Error, ModelInfo, Result,
    SystemInstructions, async_trait,
};

use super::cache::CacheTtl;
use super::wire::{self, BuildOptions, BuiltRequest, PROVIDER};
use crate::config::ProviderConfig;
use crate::http;
use crate::secret::SecretString;
use crate::sse::{SseEvent, sse_stream};

/// Default API base.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// `anthropic-version` header value sent by default.
pub const DEFAULT_API_VERSION: &str = "2023-06-01";
/// `max_tokens` sent when a request leaves it unset (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// An Anthropic Messages API model.
///
/// Cheap to clone (an `Arc` inside). Build it with [`AnthropicModel::builder`] or
/// [`AnthropicModel::from_config`]. The API key never appears in `Debug` output or errors.
///
/// ```
/// use llmkit_providers::anthropic::AnthropicModel;
/// let model = AnthropicModel::builder("claude-sonnet-4-5")
///     .api_key("sk-ant-example")
///     .build()?;
/// assert_eq!(model.info().provider, "anthropic");
/// assert!(!format!("{model:?}").contains("sk-ant-example"));
/// # Ok::<(), llmkit_core::Error>(())
/// ```
#[derive(Clone)]
pub struct AnthropicModel {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) info: ModelInfo,
    pub(crate) base_url: String,
    pub(crate) api_key: SecretString,
    pub(crate) api_version: String,
    pub(crate) default_max_tokens: u32,
    pub(crate) cache_tools: bool,
    pub(crate) cache_ttl: CacheTtl,
    pub(crate) min_cache_tokens: Option<u32>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) extra_headers: reqwest::header::HeaderMap,
    pub(crate) client: reqwest::Client,
}

impl fmt::Debug for AnthropicModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicModel")
            .field("model", &self.inner.info.model)
            .field("base_url", &self.inner.base_url)
            .field("api_key", &self.inner.api_key)
            .field("api_version", &self.inner.api_version)
            .field("default_max_tokens", &self.inner.default_max_tokens)
            .field("cache_tools", &self.inner.cache_tools)
            .field("cache_ttl", &self.inner.cache_ttl)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AnthropicModel`]; every setting has a documented default.
#[must_use]
// Derived: `SecretString` and `Transport` print no secret (key redacted, header names only).
#[derive(Clone, Debug)]
pub struct AnthropicBuilder {
    model: String,
    api_key: Option<SecretString>,
    base_url: String,
    api_version: String,
    default_max_tokens: u32,
    cache_tools: bool,
    cache_ttl: CacheTtl,
    min_cache_tokens: Option<u32>,
    transport: http::Transport,
}

impl AnthropicBuilder {
    /// The API key (required), sent as `x-api-key`.
    pub fn api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// API base URL. Default [`DEFAULT_BASE_URL`]; point it at a proxy or a test server.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// `anthropic-version` header. Default [`DEFAULT_API_VERSION`].
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    /// `max_tokens` for requests that set none. Default [`DEFAULT_MAX_TOKENS`].
    pub fn default_max_tokens(mut self, n: u32) -> Self {
        self.default_max_tokens = n;
        self
    }

    /// Put a cache breakpoint after the tool definitions. Default `false`.
    pub fn cache_tools(mut self, on: bool) -> Self {
        self.cache_tools = on;
        self
    }

    /// Lifetime of cache entries written by breakpoints. Default [`CacheTtl::FiveMinutes`].
    pub fn cache_ttl(mut self, ttl: CacheTtl) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Overrides the model's minimum cacheable prefix length in tokens. Default: from
    /// [`super::min_cacheable_tokens`].
    pub fn min_cache_tokens(mut self, tokens: u32) -> Self {
        self.min_cache_tokens = Some(tokens);
        self
    }

    http::transport_setters!();

    /// Builds the model. Fails with a [`llmkit_core::ErrorKind::Config`] error naming
    /// `ANTHROPIC_API_KEY` when the key is missing.
    pub fn build(self) -> Result<AnthropicModel> {
        let api_key = self.api_key.ok_or_else(|| {
            Error::config("missing anthropic api key: set ANTHROPIC_API_KEY")
                .with_provider(PROVIDER)
        })?;
        let info = ModelInfo::new(PROVIDER, &self.model)
            .with_capabilities(Capabilities {
                json_schema: true,
                tools: true,
                streaming: true,
                prompt_caching: true,
                batch: false,
                embeddings: false,
                vision: true,
            })
            // System messages travel in the top-level `system` field (wire::build).
            .with_system_instructions(SystemInstructions::Separate)
            .with_server_url(&self.base_url);
        let transport = self.transport.resolve()?;
        Ok(AnthropicModel {
            inner: Arc::new(Inner {
                info,
                base_url: self.base_url.trim_end_matches('/').to_owned(),
                api_key,
                api_version: self.api_version,
                default_max_tokens: self.default_max_tokens,
                cache_tools: self.cache_tools,
                cache_ttl: self.cache_ttl,
                min_cache_tokens: self.min_cache_tokens,
                timeout: transport.timeout,
                extra_headers: transport.headers,
                client: transport.client,
            }),
        })
    }
}

impl AnthropicModel {
    /// A builder for `model` (e.g. `claude-sonnet-4-5`).
    pub fn builder(model: impl Into<String>) -> AnthropicBuilder {
        AnthropicBuilder {
            model: model.into(),
            api_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
            cache_tools: false,
            cache_ttl: CacheTtl::default(),
            min_cache_tokens: None,
            transport: http::Transport::default(),
        }
    }

    /// Builds a model from a provider configuration section: `model`, `api_key` (required,
    /// `ANTHROPIC_API_KEY`), `base_url`, `api_version`, `timeout` and extra `headers`. Caching
    /// settings are builder-only.
    pub fn from_config(config: &ProviderConfig) -> Result<Self> {
        let key = config.require_api_key("ANTHROPIC_API_KEY")?;
        let mut b = Self::builder(config.require_model()?).api_key(key.clone());
        if let Some(url) = &config.base_url {
            b = b.base_url(url.clone());
        }
        if let Some(v) = &config.api_version {
            b = b.api_version(v.clone());
        }
        b.transport = config.transport();
        b.build()
    }

    /// Provider, model and capabilities (inherent, so no trait import is needed).
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    pub(crate) fn build_body(&self, req: &ChatRequest, stream: bool) -> Result<BuiltRequest> {
        wire::build_request(
            req,
            &BuildOptions {
                model: self.inner.info.model.clone(),
                default_max_tokens: self.inner.default_max_tokens,
                cache_tools: self.inner.cache_tools,
                cache_ttl: self.inner.cache_ttl,
                min_cache_tokens: self.inner.min_cache_tokens,
                stream,
            },
        )
        .map_err(|e| self.context(e, req))
    }

    fn context(&self, e: Error, req: &ChatRequest) -> Error {
        let mut e = e.or_context(PROVIDER, &self.inner.info.model);
        if let Some(id) = &req.meta.request_id {
            e = e.with_request_id(id.clone());
        }
        if let Some(p) = &req.meta.prompt {
            e = e.with_prompt(p.clone());
        }
        e
    }

    pub(crate) fn mapper(&self) -> http::ErrorMapper {
        wire::error_mapper().with_secret(&self.inner.api_key)
    }

    /// Sends the body; non-2xx answers come back as classified errors (with `retry-after`
    /// and the `request-id` header) from the shared error mapper. Anthropic documents no
    /// idempotency header, so none is sent (docs/providers.md, "Idempotency keys").
    async fn send(&self, req: &ChatRequest, built: &BuiltRequest) -> Result<reqwest::Response> {
        let inner = &self.inner;
        let send = async {
            let endpoint = http::Endpoint::new(
                inner.client.clone(),
                format!("{}/v1/messages", inner.base_url),
                wire::error_mapper(),
            )
            .headers(&inner.extra_headers)
            .header("anthropic-version", &inner.api_version)?
            .auth("x-api-key", "", &inner.api_key)?
            .timeout(inner.timeout);
            if built.body.stream {
                endpoint
                    .header("accept", "text/event-stream")?
                    .post_json_stream(&built.body, &req.meta)
                    .await
            } else {
                endpoint.post_json(&built.body, &req.meta).await
            }
        };
        send.await.map_err(|e| self.context(e, req))
    }
}

#[async_trait]
impl ChatModel for AnthropicModel {
    fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let started = Instant::now();
        let built = self.build_body(&request, false)?;
        let resp = self.send(&request, &built).await?;
        let header_id = http::provider_request_id(resp.headers());
        let parsed: wire::MessagesResponse = http::read_json(resp, &self.mapper())
            .await
            .map_err(|e| self.context(e, &request))?;
        let mut response = wire::parse_response(parsed, built.structured.as_ref())
            .map_err(|e| self.context(e, &request))?;
        if header_id.is_some() {
            response.provider_request_id = header_id;
        }
        response.request_id.clone_from(&request.meta.request_id);
        response.prompt.clone_from(&request.meta.prompt);
        response.latency = started.elapsed();
        if let Some(note) = built.cache.note() {
            response.trail.push(PROVIDER, "cache_breakpoints", note);
        }
        Ok(response)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let built = self.build_body(&request, true)?;
        let resp = self.send(&request, &built).await?;
        let mut state = wire::StreamState::new(
            built.structured.clone(),
            http::provider_request_id(resp.headers()),
        );
        let mapper = self.mapper();
        let frames = sse_stream(resp.bytes_stream(), move |e| mapper.transport_error(e));
        let this = self.clone();
        Ok(crate::frames::chat_stream(
            frames,
            "message_stop",
            move |event: Option<SseEvent>| match event {
                Some(event) => state.on_data(&event.data),
                // `Done` comes only from `message_stop`; the shared contract turns its absence
                // into a truncation error.
                None => Ok(Vec::new()),
            },
            move |e| this.context(e, &request),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmkit_core::ErrorKind;

    #[test]
    fn missing_key_is_a_config_error_naming_the_variable() {
        let err = AnthropicModel::builder("claude-haiku-4-5")
            .build()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
        assert!(err.to_string().contains("ANTHROPIC_API_KEY"));
    }
}
