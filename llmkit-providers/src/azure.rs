//! Azure OpenAI: the OpenAI wire code with Azure's deployment URLs, `api-version` and auth.
//!
//! Requests go to `{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=...`
//! with an `api-key` header, or `Authorization: Bearer` when an Entra ID access token is
//! configured instead. [`AzureOpenAiModel`] and [`AzureOpenAiEmbeddings`] are thin wrappers over
//! [`OpenAiModel`] / [`OpenAiEmbeddings`]: only the endpoint differs, never the wire format.
//! Provider name `azure.ai.openai` (OpenTelemetry `gen_ai.provider.name`).
//!
//! ```
//! use llmkit_providers::azure::AzureOpenAiModel;
//! use llmkit_providers::{ProviderConfig, ProviderKind};
//!
//! let config = ProviderConfig::new(ProviderKind::Azure, "gpt-4o")
//!     .with_base_url("https://my-resource.openai.azure.com/")
//!     .with_deployment("prod-4o")
//!     .with_api_key("azure-key");
//! let model = AzureOpenAiModel::from_config(&config)?;
//! assert_eq!(
//!     model.chat_url(),
//!     "https://my-resource.openai.azure.com/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21"
//! );
//! assert_eq!(model.info().provider, "azure.ai.openai");
//! # Ok::<(), llmkit_core::Error>(())
//! ```

use llmkit_core::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, EmbeddingModel, EmbeddingRequest,
    EmbeddingResponse, Error, ErrorKind, ModelInfo, Result, async_trait,
};

use crate::config::{ProviderConfig, ProviderKind};
use crate::http::{self, ErrorRule};
use crate::openai::{
    BodyOptions, CAPABILITIES, Endpoint, MaxTokensField, OpenAiEmbeddings, OpenAiModel, base_url,
};

/// Provider name of Azure OpenAI (OpenTelemetry `gen_ai.provider.name`).
pub const PROVIDER: &str = "azure.ai.openai";

/// The `api-version` used when none is configured (the current GA version).
pub const DEFAULT_API_VERSION: &str = "2024-10-21";

/// Azure-specific error rules, checked before the rules every provider shares.
pub static AZURE_RULES: &[ErrorRule] = &[
    // Azure's content filter answers 400 with code `content_filter`; the common table maps
    // it, and this catches the policy-violation wording some API versions use instead.
    ErrorRule::message("responsibleaipolicyviolation", ErrorKind::ContentFiltered),
    ErrorRule::code("DeploymentNotFound", ErrorKind::NotFound),
];

fn azure_endpoint(config: &ProviderConfig, embeddings: bool) -> Result<Endpoint> {
    if config.provider != ProviderKind::Azure {
        return Err(Error::config(format!(
            "AzureOpenAiModel::from_config needs provider azure, got {}",
            config.provider
        )));
    }
    let endpoint = base_url(
        config.require(&config.base_url, "endpoint", "AZURE_OPENAI_ENDPOINT")?,
        "AZURE_OPENAI_ENDPOINT",
    )?;
    let model = if embeddings {
        config.require_embedding_model()?.to_owned()
    } else {
        config.require_model()?.to_owned()
    };
    // For chat the deployment defaults to the model name; embeddings always use the embedding
    // model name as their deployment, since one deployment serves one model.
    let deployment = match (&config.deployment, embeddings) {
        (Some(d), false) if !d.trim().is_empty() => d.trim().to_owned(),
        _ => model.clone(),
    };
    let version = config
        .api_version
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or(DEFAULT_API_VERSION);
    let mut headers = reqwest::header::HeaderMap::new();
    let secret = if let Some(token) = config.access_token.as_ref().filter(|t| !t.is_empty()) {
        http::insert_secret_header(&mut headers, "authorization", "Bearer ", token)?;
        token.clone()
    } else {
        let key = config.require_api_key("AZURE_OPENAI_API_KEY (or AZURE_OPENAI_AD_TOKEN)")?;
        http::insert_secret_header(&mut headers, "api-key", "", key)?;
        key.clone()
    };
    let base = format!("{endpoint}/openai/deployments/{deployment}");
    Ok(Endpoint {
        provider: PROVIDER,
        model,
        chat_url: format!("{base}/chat/completions?api-version={version}"),
        embeddings_url: format!("{base}/embeddings?api-version={version}"),
        headers,
        secrets: vec![secret],
        rules: AZURE_RULES,
        body: BodyOptions {
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            strict_schemas: true,
        },
        capabilities: CAPABILITIES,
        transport: config.transport(),
    })
}

/// An Azure OpenAI chat deployment. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AzureOpenAiModel(OpenAiModel);

impl AzureOpenAiModel {
    /// Builds the model from a config of kind `azure`: `base_url` is the resource endpoint
    /// (`AZURE_OPENAI_ENDPOINT`), `deployment` defaults to `model`, `api_version` to
    /// [`DEFAULT_API_VERSION`]; `api_key` or `access_token` is required.
    pub fn from_config(config: &ProviderConfig) -> Result<Self> {
        Ok(AzureOpenAiModel(OpenAiModel::from_endpoint(
            azure_endpoint(config, false)?,
        )?))
    }

    /// Provider, model and capabilities.
    pub fn info(&self) -> &ModelInfo {
        self.0.info()
    }

    /// The deployment URL chat requests go to.
    pub fn chat_url(&self) -> &str {
        self.0.chat_url()
    }
}

#[async_trait]
impl ChatModel for AzureOpenAiModel {
    fn info(&self) -> &ModelInfo {
        self.0.info()
    }
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        self.0.chat(request).await
    }
    async fn stream(&self, request: ChatRequest) -> Result<ChatStream> {
        self.0.stream(request).await
    }
}

/// Azure OpenAI embeddings; the embedding model name is also its deployment name.
#[derive(Clone, Debug)]
pub struct AzureOpenAiEmbeddings(OpenAiEmbeddings);

impl AzureOpenAiEmbeddings {
    /// Builds embeddings from a config of kind `azure`, using `embedding_model` as deployment.
    pub fn from_config(config: &ProviderConfig) -> Result<Self> {
        Ok(AzureOpenAiEmbeddings(OpenAiEmbeddings::from_model(
            OpenAiModel::from_endpoint(azure_endpoint(config, true)?)?,
        )))
    }

    /// Provider, model and capabilities.
    pub fn info(&self) -> &ModelInfo {
        self.0.info()
    }
}

#[async_trait]
impl EmbeddingModel for AzureOpenAiEmbeddings {
    fn info(&self) -> &ModelInfo {
        self.0.info()
    }
    async fn embed(&self, request: EmbeddingRequest) -> Result<EmbeddingResponse> {
        self.0.embed(request).await
    }
    fn dimensions(&self) -> Option<usize> {
        EmbeddingModel::dimensions(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_auth_and_errors() {
        let base = ProviderConfig::new(ProviderKind::Azure, "gpt-4o")
            .with_base_url("https://r.openai.azure.com")
            .with_api_version("2024-12-01-preview");
        let e = AzureOpenAiModel::from_config(&base).unwrap_err();
        assert!(e.message().contains("AZURE_OPENAI_API_KEY"));
        let m =
            AzureOpenAiModel::from_config(&base.clone().with_access_token("eyJ-token")).unwrap();
        assert_eq!(
            m.chat_url(),
            "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-12-01-preview"
        );
        assert!(!format!("{m:?}").contains("eyJ-token"));
        let e = AzureOpenAiModel::from_config(&ProviderConfig::new(ProviderKind::Azure, "m"))
            .unwrap_err();
        assert!(e.message().contains("AZURE_OPENAI_ENDPOINT"));
        let emb = AzureOpenAiEmbeddings::from_config(
            &base
                .with_api_key("k")
                .with_embedding_model("text-embedding-3-small"),
        )
        .unwrap();
        assert_eq!(emb.info().model, "text-embedding-3-small");
    }
}
