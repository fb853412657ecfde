//! [`GeminiModel`]: `generateContent` over HTTP, on AI Studio or Vertex AI.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmkit_core::{
    Capabilities, ChatModel, ChatRequest, ChatResponse, ChatStream, EmbeddingModel,
    EmbeddingRequest, EmbeddingResponse, Error, ModelInfo, RequestMeta, Result, SystemInstructions,
    Usage, async_trait,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::wire;
use crate::config::{ProviderConfig, ProviderKind};
use crate::http;
use crate::secret::SecretString;
use crate::sse::{SseEvent, sse_stream};

/// Provider name of the AI Studio endpoint.
pub const PROVIDER_GEMINI: &str = "gcp.gemini";
/// Provider name of the Vertex AI endpoint.
pub const PROVIDER_VERTEX: &str = "gcp.vertex_ai";
/// Default AI Studio base URL.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// Default embedding model.
pub const DEFAULT_EMBEDDING_MODEL: &str = "gemini-embedding-001";

/// Which Google endpoint a [`GeminiModel`] talks to.
#[derive(Clone)]
enum Endpoint {
    /// AI Studio: API key in `x-goog-api-key`.
    Studio { api_key: SecretString },
    /// Vertex AI: OAuth access token as a bearer token.
    Vertex {
        project: String,
        location: String,
        access_token: SecretString,
    },
}

/// A Gemini model on AI Studio or Vertex AI; also an [`EmbeddingModel`].
///
/// Cheap to clone. Build it with [`GeminiModel::builder`] (AI Studio),
/// [`GeminiModel::vertex`] (Vertex AI) or [`GeminiModel::from_config`]. Credentials never appear
/// in `Debug` output or errors.
///
/// ```
/// use llmkit_providers::gemini::GeminiModel;
/// let studio = GeminiModel::builder("gemini-2.5-flash").api_key("AIza-example").build()?;
/// assert_eq!(studio.info().provider, "gcp.gemini");
/// let vertex = GeminiModel::vertex("gemini-2.5-flash", "my-project", "europe-west4")
///     .access_token("ya29.example")
///     .build()?;
/// assert_eq!(vertex.info().provider, "gcp.vertex_ai");
/// assert!(!format!("{vertex:?}").contains("ya29.example"));
/// # Ok::<(), llmkit_core::Error>(())
/// ```
#[derive(Clone)]
pub struct GeminiModel {
    inner: Arc<Inner>,
}

struct Inner {
    info: ModelInfo,
    endpoint: Endpoint,
    base_url: String,
    embedding_model: String,
    timeout: Option<Duration>,
    extra_headers: reqwest::header::HeaderMap,
    client: reqwest::Client,
}

impl fmt::Debug for GeminiModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("GeminiModel");
        d.field("provider", &self.inner.info.provider)
            .field("model", &self.inner.info.model)
            .field("base_url", &self.inner.base_url);
        match &self.inner.endpoint {
            Endpoint::Studio { api_key } => d.field("api_key", api_key),
            Endpoint::Vertex {
                project,
                location,
                access_token,
            } => d
                .field("project", project)
                .field("location", location)
                .field("access_token", access_token),
        };
        d.finish_non_exhaustive()
    }
}

/// Builds a [`GeminiModel`]; every setting has a documented default.
#[must_use]
// Derived: `SecretString` and `Transport` print no secret (key redacted, header names only).
#[derive(Clone, Debug)]
pub struct GeminiBuilder {
    model: String,
    vertex: Option<(String, String)>,
    credential: Option<SecretString>,
    base_url: Option<String>,
    embedding_model: String,
    transport: http::Transport,
}

impl GeminiBuilder {
    /// AI Studio API key (required for AI Studio), sent as `x-goog-api-key`.
    pub fn api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.credential = Some(key.into());
        self
    }

    /// Vertex AI OAuth access token (required for Vertex), sent as a bearer token. llmkit does
    /// not mint or refresh tokens: pass one from your credentials tooling.
    pub fn access_token(mut self, token: impl Into<SecretString>) -> Self {
        self.credential = Some(token.into());
        self
    }

    /// Overrides the base URL (proxy or test server). Default: [`DEFAULT_BASE_URL`] for AI
    /// Studio, `https://{location}-aiplatform.googleapis.com` for Vertex (`global` uses
    /// `https://aiplatform.googleapis.com`).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Model used by [`EmbeddingModel::embed`] when the request names none. Default
    /// [`DEFAULT_EMBEDDING_MODEL`].
    pub fn embedding_model(mut self, model: impl Into<String>) -> Self {
        self.embedding_model = model.into();
        self
    }

    http::transport_setters!();

    /// Builds the model. Fails with a [`llmkit_core::ErrorKind::Config`] error naming the
    /// variable to set when the credential or the Vertex project is missing.
    pub fn build(self) -> Result<GeminiModel> {
        let model = self
            .model
            .strip_prefix("models/")
            .unwrap_or(&self.model)
            .to_owned();
        let (provider, endpoint, default_base) = match self.vertex {
            None => {
                let api_key = self.credential.ok_or_else(|| {
                    Error::config("missing gemini api key: set GEMINI_API_KEY")
                        .with_provider(PROVIDER_GEMINI)
                })?;
                (
                    PROVIDER_GEMINI,
                    Endpoint::Studio { api_key },
                    DEFAULT_BASE_URL.to_owned(),
                )
            }
            Some((project, location)) => {
                let access_token = self.credential.ok_or_else(|| {
                    Error::config("missing vertex ai access token: set GOOGLE_ACCESS_TOKEN")
                        .with_provider(PROVIDER_VERTEX)
                })?;
                if project.is_empty() {
                    return Err(Error::config(
                        "missing vertex ai project: set GOOGLE_CLOUD_PROJECT",
                    )
                    .with_provider(PROVIDER_VERTEX));
                }
                let base = if location == "global" {
                    "https://aiplatform.googleapis.com".to_owned()
                } else {
                    format!("https://{location}-aiplatform.googleapis.com")
                };
                (
                    PROVIDER_VERTEX,
                    Endpoint::Vertex {
                        project,
                        location,
                        access_token,
                    },
                    base,
                )
            }
        };
        let info = ModelInfo::new(provider, &model)
            .with_capabilities(Capabilities {
                json_schema: true,
                tools: true,
                streaming: true,
                prompt_caching: false,
                batch: false,
                embeddings: true,
                vision: true,
            })
            // System messages travel in `systemInstruction` (wire::build).
            .with_system_instructions(SystemInstructions::Separate);
        let transport = self.transport.resolve()?;
        let base_url = self
            .base_url
            .unwrap_or(default_base)
            .trim_end_matches('/')
            .to_owned();
        Ok(GeminiModel {
            inner: Arc::new(Inner {
                info: info.with_server_url(&base_url),
                endpoint,
                base_url,
                embedding_model: self.embedding_model,
                timeout: transport.timeout,
                extra_headers: transport.headers,
                client: transport.client,
            }),
        })
    }
}

impl GeminiModel {
    /// A builder for an AI Studio model (e.g. `gemini-2.5-flash`).
    pub fn builder(model: impl Into<String>) -> GeminiBuilder {
        GeminiBuilder {
            model: model.into(),
            vertex: None,
            credential: None,
            base_url: None,
            embedding_model: DEFAULT_EMBEDDING_MODEL.to_owned(),
            transport: http::Transport::default(),
        }
    }

    /// A builder for a Vertex AI model in `project` and `location` (e.g. `us-central1`,
    /// `global`).
    pub fn vertex(
        model: impl Into<String>,
        project: impl Into<String>,
        location: impl Into<String>,
    ) -> GeminiBuilder {
        let mut b = Self::builder(model);
        b.vertex = Some((project.into(), location.into()));
        b
    }

    /// Builds a model from a provider configuration section. `provider = "vertex"` reads
    /// `gcp_project` (`GOOGLE_CLOUD_PROJECT`), `gcp_location` (default `us-central1`) and
    /// `access_token` (`GOOGLE_ACCESS_TOKEN`); `provider = "gemini"` reads `api_key`
    /// (`GEMINI_API_KEY`). Both read `model`, `base_url`, `embedding_model`, `timeout` and
    /// extra `headers`.
    pub fn from_config(config: &ProviderConfig) -> Result<Self> {
        let model = config.require_model()?;
        let mut b = if config.provider == ProviderKind::Vertex {
            let project =
                config.require(&config.gcp_project, "gcp_project", "GOOGLE_CLOUD_PROJECT")?;
            let location = config
                .gcp_location
                .as_deref()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .unwrap_or("us-central1");
            let token = config.access_token.as_ref().filter(|t| !t.is_empty()).ok_or_else(|| {
                Error::config(
                    "missing access token for vertex: set GOOGLE_ACCESS_TOKEN (or `access_token` in the provider config)",
                )
            })?;
            Self::vertex(model, project, location).access_token(token.clone())
        } else {
            Self::builder(model).api_key(config.require_api_key("GEMINI_API_KEY")?.clone())
        };
        if let Some(url) = &config.base_url {
            b = b.base_url(url.clone());
        }
        if let Some(m) = &config.embedding_model {
            b = b.embedding_model(m.clone());
        }
        b.transport = config.transport();
        b.build()
    }

    /// Provider, model and capabilities (inherent, so no trait import is needed).
    pub fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    fn provider(&self) -> &str {
        &self.inner.info.provider
    }

    /// `{base}/.../models/{model}:{method}` for the configured endpoint.
    fn url(&self, model: &str, method: &str) -> String {
        let model = model.strip_prefix("models/").unwrap_or(model);
        match &self.inner.endpoint {
            Endpoint::Studio { .. } => {
                format!("{}/v1beta/models/{model}:{method}", self.inner.base_url)
            }
            Endpoint::Vertex {
                project, location, ..
            } => format!(
                "{}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}",
                self.inner.base_url
            ),
        }
    }

    fn context(&self, e: Error, req_id: Option<&String>) -> Error {
        let mut e = e.or_context(self.provider(), &self.inner.info.model);
        if let Some(id) = req_id {
            e = e.with_request_id(id.clone());
        }
        e
    }

    fn mapper(&self) -> http::ErrorMapper {
        let mapper = wire::error_mapper(self.provider());
        match &self.inner.endpoint {
            Endpoint::Studio { api_key } => mapper.with_secret(api_key),
            Endpoint::Vertex { access_token, .. } => mapper.with_secret(access_token),
        }
    }

    /// Posts `body`; non-2xx answers come back as classified errors from the shared mapper.
    async fn post<B: Serialize + ?Sized>(
        &self,
        url: String,
        body: &B,
        meta: &RequestMeta,
        stream: bool,
    ) -> Result<reqwest::Response> {
        let req_id = meta.request_id.as_ref();
        let send = async {
            let endpoint = http::Endpoint::new(
                self.inner.client.clone(),
                url,
                wire::error_mapper(self.provider()),
            )
            .headers(&self.inner.extra_headers)
            .timeout(self.inner.timeout);
            // Google documents no idempotency header: none is sent.
            let endpoint = match &self.inner.endpoint {
                Endpoint::Studio { api_key } => endpoint.auth("x-goog-api-key", "", api_key)?,
                Endpoint::Vertex { access_token, .. } => {
                    endpoint.auth("authorization", "Bearer ", access_token)?
                }
            };
            if stream {
                endpoint.post_json_stream(body, meta).await
            } else {
                endpoint.post_json(body, meta).await
            }
        };
        send.await.map_err(|e| self.context(e, req_id))
    }

    fn build_body(&self, req: &ChatRequest) -> Result<wire::BuiltRequest> {
        wire::build_request(req).map_err(|e| self.context(e, req.meta.request_id.as_ref()))
    }
}

#[async_trait]
impl ChatModel for GeminiModel {
    fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let started = Instant::now();
        let req_id = request.meta.request_id.as_ref();
        let wire::BuiltRequest { body, dropped } = self.build_body(&request)?;
        let model = request.model.as_deref().unwrap_or(&self.inner.info.model);
        let resp = self
            .post(
                self.url(model, "generateContent"),
                &body,
                &request.meta,
                false,
            )
            .await?;
        let parsed: wire::GenerateContentResponse = http::read_json(resp, &self.mapper())
            .await
            .map_err(|e| self.context(e, req_id))?;
        let mut response = wire::parse_response(parsed, self.provider(), model)
            .map_err(|e| self.context(e, req_id))?;
        response.request_id.clone_from(&request.meta.request_id);
        response.prompt.clone_from(&request.meta.prompt);
        response.latency = started.elapsed();
        if !dropped.is_empty() {
            response.trail.push(
                "gemini",
                "schema_dropped",
                format!(
                    "not enforced by the provider: {}",
                    dropped
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            );
        }
        Ok(response)
    }

    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        let req_id = request.meta.request_id.clone();
        let body = self.build_body(&request)?.body;
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.inner.info.model.clone());
        let url = format!("{}?alt=sse", self.url(&model, "streamGenerateContent"));
        let resp = self.post(url, &body, &request.meta, true).await?;
        let mut state = wire::StreamState::new(self.provider());
        let mapper = self.mapper();
        let frames = sse_stream(resp.bytes_stream(), move |e| mapper.transport_error(e));
        let this = self.clone();
        Ok(crate::frames::chat_stream(
            frames,
            "a chunk with a finishReason",
            move |event: Option<SseEvent>| match event {
                Some(event) => state.on_data(&event.data, &model),
                None => Ok(state.on_end()),
            },
            move |e| this.context(e, req_id.as_ref()),
        ))
    }
}

/// `batchEmbedContents` request (AI Studio).
#[derive(Serialize)]
struct BatchEmbedRequest {
    requests: Vec<EmbedContentRequest>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EmbedContentRequest {
    model: String,
    content: wire::Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_dimensionality: Option<u32>,
}

#[derive(Deserialize)]
struct BatchEmbedResponse {
    #[serde(default)]
    embeddings: Vec<EmbeddingValues>,
}

#[derive(Deserialize)]
struct EmbeddingValues {
    #[serde(default)]
    values: Vec<f32>,
}

/// Vertex `:predict` request for embedding models.
#[derive(Serialize)]
struct PredictRequest {
    instances: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Deserialize)]
struct PredictResponse {
    #[serde(default)]
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    embeddings: PredictionEmbedding,
}

#[derive(Deserialize)]
struct PredictionEmbedding {
    #[serde(default)]
    values: Vec<f32>,
    #[serde(default)]
    statistics: Option<PredictionStats>,
}

#[derive(Deserialize)]
struct PredictionStats {
    #[serde(default)]
    token_count: f64,
}

#[async_trait]
impl EmbeddingModel for GeminiModel {
    fn info(&self) -> &ModelInfo {
        &self.inner.info
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        let req_id = request.meta.request_id.as_ref();
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.inner.embedding_model.clone());
        let model = model.strip_prefix("models/").unwrap_or(&model).to_owned();
        let (embeddings, input_tokens) = match &self.inner.endpoint {
            Endpoint::Studio { .. } => {
                let body = BatchEmbedRequest {
                    requests: request
                        .inputs
                        .iter()
                        .map(|text| EmbedContentRequest {
                            model: format!("models/{model}"),
                            content: wire::Content {
                                role: None,
                                parts: vec![wire::Part {
                                    text: Some(text.clone()),
                                    ..Default::default()
                                }],
                            },
                            output_dimensionality: request.dimensions,
                        })
                        .collect(),
                };
                let resp = self
                    .post(
                        self.url(&model, "batchEmbedContents"),
                        &body,
                        &request.meta,
                        false,
                    )
                    .await?;
                let parsed: BatchEmbedResponse = http::read_json(resp, &self.mapper())
                    .await
                    .map_err(|e| self.context(e, req_id))?;
                (
                    parsed
                        .embeddings
                        .into_iter()
                        .map(|e| e.values)
                        .collect::<Vec<_>>(),
                    0,
                )
            }
            Endpoint::Vertex { .. } => {
                let body = PredictRequest {
                    instances: request
                        .inputs
                        .iter()
                        .map(|t| serde_json::json!({ "content": t }))
                        .collect(),
                    parameters: request
                        .dimensions
                        .map(|d| serde_json::json!({ "outputDimensionality": d })),
                };
                let resp = self
                    .post(self.url(&model, "predict"), &body, &request.meta, false)
                    .await?;
                let parsed: PredictResponse = http::read_json(resp, &self.mapper())
                    .await
                    .map_err(|e| self.context(e, req_id))?;
                let tokens: f64 = parsed
                    .predictions
                    .iter()
                    .filter_map(|p| p.embeddings.statistics.as_ref())
                    .map(|s| s.token_count)
                    .sum();
                (
                    parsed
                        .predictions
                        .into_iter()
                        .map(|p| p.embeddings.values)
                        .collect(),
                    // Token counts arrive as floats; they are whole numbers.
                    tokens.max(0.0).round() as u64,
                )
            }
        };
        if embeddings.len() != request.inputs.len() {
            return Err(self.context(
                Error::invalid_response(format!(
                    "gemini returned {} embeddings for {} inputs",
                    embeddings.len(),
                    request.inputs.len()
                )),
                req_id,
            ));
        }
        Ok(EmbeddingResponse {
            embeddings,
            model,
            provider: self.provider().to_owned(),
            usage: Usage {
                input_tokens,
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
    use llmkit_core::ErrorKind;

    #[test]
    fn urls_for_both_endpoints() {
        let s = GeminiModel::builder("models/gemini-2.5-flash")
            .api_key("k")
            .build()
            .unwrap();
        assert_eq!(
            s.url("gemini-2.5-flash", "generateContent"),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(s.info().model, "gemini-2.5-flash");
        let v = GeminiModel::vertex("gemini-2.5-flash", "proj", "europe-west4")
            .access_token("t")
            .build()
            .unwrap();
        assert_eq!(
            v.url("gemini-2.5-flash", "generateContent"),
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        let g = GeminiModel::vertex("m", "proj", "global")
            .access_token("t")
            .build()
            .unwrap();
        assert!(
            g.url("m", "x").starts_with(
                "https://aiplatform.googleapis.com/v1/projects/proj/locations/global/"
            )
        );
    }

    #[test]
    fn missing_credentials_name_the_variable() {
        let e = GeminiModel::builder("m").build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("GEMINI_API_KEY"));
        let e = GeminiModel::vertex("m", "p", "l").build().unwrap_err();
        assert!(e.to_string().contains("GOOGLE_ACCESS_TOKEN"));
        let e = GeminiModel::vertex("m", "", "l")
            .access_token("t")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("GOOGLE_CLOUD_PROJECT"));
    }
}
