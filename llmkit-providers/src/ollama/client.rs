//! [`OllamaModel`]: the Ollama native API over HTTP.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmkit_core::{
    Capabilities, ChatModel, ChatRequest, ChatResponse, ChatStream, EmbeddingModel,
    EmbeddingRequest, EmbeddingResponse, Error, ModelInfo, RequestMeta, Result, Usage, async_trait,
};
use serde::Serialize;

use super::wire::{self, BuildOptions, PROVIDER};
use crate::config::ProviderConfig;
use crate::http;
use crate::ndjson::ndjson_stream;

/// Default server address (`OLLAMA_HOST` overrides it in configuration).
pub const DEFAULT_HOST: &str = "http://localhost:11434";

/// A model served by Ollama's native API; also an [`EmbeddingModel`] via `/api/embed`.
///
/// Cheap to clone. No API key: put Ollama behind a proxy if it must be protected.
///
/// ```
/// use llmkit_providers::ollama::OllamaModel;
/// let model = OllamaModel::builder("llama3.2").host("127.0.0.1:11434").build()?;
/// assert_eq!(model.base_url(), "http://127.0.0.1:11434");
/// # Ok::<(), llmkit_core::Error>(())
/// ```
#[derive(Clone)]
pub struct OllamaModel {
    inner: Arc<Inner>,
}

impl fmt::Debug for OllamaModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OllamaModel")
            .field("model", &self.inner.info.model)
            .field("base_url", &self.inner.base_url)
            .field(
                "headers",
                &self.inner.extra_headers.keys().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

struct Inner {
    info: ModelInfo,
    base_url: String,
    keep_alive: Option<String>,
    num_ctx: Option<u32>,
    timeout: Option<Duration>,
    extra_headers: reqwest::header::HeaderMap,
    client: reqwest::Client,
}

/// Builds an [`OllamaModel`]; every setting has a documented default.
#[must_use]
// Derived: `SecretString` and `Transport` print no secret (key redacted, header names only).
#[derive(Clone, Debug)]
pub struct OllamaBuilder {
    model: String,
    host: String,
    keep_alive: Option<String>,
    num_ctx: Option<u32>,
    transport: http::Transport,
}

impl OllamaBuilder {
    /// Server address, with or without scheme (`localhost:11434`, `http://gpu-box:11434`).
    /// Default [`DEFAULT_HOST`].
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = host.into();
        self
    }

    /// How long Ollama keeps the model loaded after a call (`"5m"`, `"-1"` = forever). Default:
    /// the server's (5 minutes).
    pub fn keep_alive(mut self, keep_alive: impl Into<String>) -> Self {
        self.keep_alive = Some(keep_alive.into());
        self
    }

    /// Context window (`options.num_ctx`). Default: the model's (often only 2048-4096 tokens,
    /// which silently truncates long prompts: set it for RAG workloads).
    pub fn num_ctx(mut self, tokens: u32) -> Self {
        self.num_ctx = Some(tokens);
        self
    }

    http::transport_setters!();

    /// Builds the model. Fails with a config error on an empty host.
    pub fn build(self) -> Result<OllamaModel> {
        let host = self.host.trim().trim_end_matches('/');
        if host.is_empty() {
            return Err(Error::config("empty ollama host: set OLLAMA_HOST").with_provider(PROVIDER));
        }
        let base_url = if host.starts_with("http://") || host.starts_with("https://") {
            host.to_owned()
        } else {
            format!("http://{host}")
        };
        let info = ModelInfo::new(PROVIDER, &self.model)
            .with_capabilities(Capabilities {
                json_schema: true,
                tools: true,
                streaming: true,
                prompt_caching: false,
                batch: false,
                embeddings: true,
                vision: true,
            })
            .with_server_url(&base_url);
        let transport = self.transport.resolve()?;
        Ok(OllamaModel {
            inner: Arc::new(Inner {
                info,
                base_url,
                keep_alive: self.keep_alive,
                num_ctx: self.num_ctx,
                timeout: transport.timeout,
                extra_headers: transport.headers,
                client: transport.client,
            }),
        })
    }
}

impl OllamaModel {
    /// A builder for `model` (e.g. `llama3.2`, `qwen3:8b`).
    pub fn builder(model: impl Into<String>) -> OllamaBuilder {
        OllamaBuilder {
            model: model.into(),
            host: DEFAULT_HOST.to_owned(),
            keep_alive: None,
            num_ctx: None,
            transport: http::Transport::default(),
        }
    }

    /// Builds a model from a provider configuration section: `model`, `base_url` (the host,
    /// `OLLAMA_HOST`), `timeout` and extra `headers`.
    pub fn from_config(config: &ProviderConfig) -> Result<Self> {
        let mut b = Self::builder(config.require_model()?);
        if let Some(url) = &config.base_url {
            b = b.host(url.clone());
        }
        b.transport = config.transport();
        b.build()
    }

    /// Provider, model and capabilities (inherent, so no trait import is needed).
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    /// The server's base URL, with scheme.
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    fn context(&self, e: Error, req_id: Option<&String>) -> Error {
        let mut e = e.or_context(PROVIDER, &self.inner.info.model);
        if let Some(id) = req_id {
            e = e.with_request_id(id.clone());
        }
        e
    }

    /// Posts `body`; non-2xx answers come back as classified errors from the shared mapper.
    async fn post<B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
        meta: &RequestMeta,
        stream: bool,
    ) -> Result<reqwest::Response> {
        let req_id = meta.request_id.as_ref();
        // Ollama documents no idempotency header: none is sent.
        let endpoint = http::Endpoint::new(
            self.inner.client.clone(),
            format!("{}{path}", self.inner.base_url),
            wire::error_mapper(),
        )
        .headers(&self.inner.extra_headers)
        .timeout(self.inner.timeout);
        let sent = if stream {
            endpoint.post_json_stream(body, meta).await
        } else {
            endpoint.post_json(body, meta).await
        };
        sent.map_err(|e| self.context(e, req_id))
    }

    fn body(&self, req: &ChatRequest, stream: bool) -> Result<wire::ChatBody> {
        wire::build_request(
            req,
            &BuildOptions {
                model: self.inner.info.model.clone(),
                keep_alive: self.inner.keep_alive.clone(),
                num_ctx: self.inner.num_ctx,
                stream,
            },
        )
        .map_err(|e| self.context(e, req.meta.request_id.as_ref()))
    }
}

#[async_trait]
impl ChatModel for OllamaModel {
    fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let started = Instant::now();
        let req_id = request.meta.request_id.as_ref();
        let body = self.body(&request, false)?;
        let resp = self.post("/api/chat", &body, &request.meta, false).await?;
        let chunk: wire::ChatChunk = http::read_json(resp, &wire::error_mapper())
            .await
            .map_err(|e| self.context(e, req_id))?;
        let mut response = wire::parse_response(chunk).map_err(|e| self.context(e, req_id))?;
        if response.model.is_empty() {
            response.model.clone_from(&self.inner.info.model);
        }
        response.request_id.clone_from(&request.meta.request_id);
        response.prompt.clone_from(&request.meta.prompt);
        response.latency = started.elapsed();
        Ok(response)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let req_id = request.meta.request_id.clone();
        let body = self.body(&request, true)?;
        let resp = self.post("/api/chat", &body, &request.meta, true).await?;
        let mut state = wire::StreamState::new();
        let mapper = wire::error_mapper();
        let lines = ndjson_stream::<wire::ChatChunk, _, _, _, _>(resp.bytes_stream(), move |e| {
            mapper.transport_error(e)
        });
        let this = self.clone();
        Ok(crate::frames::chat_stream(
            lines,
            "a line with done: true",
            move |chunk| match chunk {
                Some(chunk) => state.on_chunk(chunk),
                // `Done` comes only from `done: true`; the shared contract turns its absence
                // into a truncation error.
                None => Ok(Vec::new()),
            },
            move |e| this.context(e, req_id.as_ref()),
        ))
    }
}

#[async_trait]
impl EmbeddingModel for OllamaModel {
    fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let req_id = request.meta.request_id.as_ref();
        let body = wire::EmbedBody {
            model: request
                .model
                .clone()
                .unwrap_or_else(|| self.inner.info.model.clone()),
            input: request.inputs.clone(),
            dimensions: request.dimensions,
            keep_alive: self.inner.keep_alive.clone(),
        };
        let resp = self.post("/api/embed", &body, &request.meta, false).await?;
        let parsed: wire::EmbedResponse = http::read_json(resp, &wire::error_mapper())
            .await
            .map_err(|e| self.context(e, req_id))?;
        if parsed.embeddings.len() != request.inputs.len() {
            return Err(self.context(
                Error::invalid_response(format!(
                    "ollama returned {} embeddings for {} inputs",
                    parsed.embeddings.len(),
                    request.inputs.len()
                )),
                req_id,
            ));
        }
        Ok(EmbeddingResponse {
            embeddings: parsed.embeddings,
            model: if parsed.model.is_empty() {
                body.model
            } else {
                parsed.model
            },
            provider: PROVIDER.to_owned(),
            usage: Usage {
                input_tokens: parsed.prompt_eval_count.unwrap_or(0),
                ..Default::default()
            },
            cost: None,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_normalization() {
        for (host, want) in [
            ("localhost:11434", "http://localhost:11434"),
            ("http://gpu:11434/", "http://gpu:11434"),
            ("https://ollama.example", "https://ollama.example"),
        ] {
            let m = OllamaModel::builder("m").host(host).build().unwrap();
            assert_eq!(m.base_url(), want);
        }
        assert!(OllamaModel::builder("m").host(" ").build().is_err());
    }
}
