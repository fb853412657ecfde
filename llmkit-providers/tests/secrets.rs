//! Secrets never appear in Debug or Display of configs, models or errors, including error
//! bodies that echo the key back and keys that do not look like keys.
#![cfg(feature = "azure")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use llmkit_core::{ChatModel, ChatRequest, EmbeddingModel, EmbeddingRequest, ErrorKind};
use llmkit_providers::azure::{AzureOpenAiEmbeddings, AzureOpenAiModel};
use llmkit_providers::openai::{OpenAiEmbeddings, OpenAiModel};
use llmkit_providers::{ProviderConfig, ProviderKind, SecretString};
use llmkit_testkit::{CannedResponse, FakeServer};

/// Deliberately shaped like an ordinary word so the excerpt scrubber's heuristics miss it:
/// only exact redaction of the configured key catches it.
const KEY: &str = "correcthorsebatterystaple";
const TOKEN: &str = "entra-token-value-7f3a";
const GATEWAY: &str = "gateway-secret-header-value";

fn assert_clean(what: &str, text: &str) {
    for secret in [KEY, TOKEN, GATEWAY] {
        assert!(!text.contains(secret), "{what} leaks a secret: {text}");
    }
}

#[test]
fn configs_and_models_never_print_secrets() {
    let config = ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o-mini")
        .with_api_key(KEY)
        .with_access_token(TOKEN)
        .with_header("x-gateway-auth", GATEWAY)
        .with_embedding_model("text-embedding-3-small");
    assert_clean("config", &format!("{config:?}"));
    assert_clean(
        "secret",
        &format!("{} {:?}", SecretString::new(KEY), SecretString::new(KEY)),
    );
    let model = OpenAiModel::from_config(&config).unwrap();
    assert_clean("openai model", &format!("{model:?}"));
    assert_clean(
        "openai embeddings",
        &format!("{:?}", OpenAiEmbeddings::from_config(&config).unwrap()),
    );

    let azure = ProviderConfig {
        provider: ProviderKind::Azure,
        base_url: Some("https://r.openai.azure.com".into()),
        ..config.clone()
    };
    assert_clean(
        "azure model",
        &format!("{:?}", AzureOpenAiModel::from_config(&azure).unwrap()),
    );
    assert_clean(
        "azure embeddings",
        &format!("{:?}", AzureOpenAiEmbeddings::from_config(&azure).unwrap()),
    );

    let parsed: ProviderConfig = toml::from_str(&format!(
        "provider = \"openai\"\nmodel = \"m\"\napi_key = \"{KEY}\"\n[headers]\nx-gateway-auth = \"{GATEWAY}\"\n"
    ))
    .unwrap();
    assert_clean("parsed config", &format!("{parsed:?}"));
}

#[tokio::test]
async fn errors_that_echo_the_key_are_redacted() {
    let server = FakeServer::start().await.unwrap();
    let echo = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {KEY}. Header was {GATEWAY}","type":"invalid_request_error","code":"invalid_api_key"}}}}"#
    );
    server.push(CannedResponse::raw(401, "application/json", echo.clone()));
    server.push(CannedResponse::raw(401, "application/json", echo));
    server.push(CannedResponse::raw(
        200,
        "application/json",
        format!("not json {KEY}"),
    ));
    let config = ProviderConfig::new(ProviderKind::OpenAi, "gpt-4o-mini")
        .with_api_key(KEY)
        .with_header("x-gateway-auth", GATEWAY)
        .with_base_url(format!("{}/v1", server.base_url()))
        .with_embedding_model("e");
    let model = OpenAiModel::from_config(&config).unwrap();

    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    assert_clean("error display", &err.to_string());
    assert_clean("error debug", &format!("{err:?}"));
    assert_clean("error excerpt", err.body_excerpt().unwrap());
    assert_clean("error clone", &format!("{:?}", err.clone()));
    // Extra header values count as secrets too; what the excerpt keeps still says what went
    // wrong.
    assert!(
        err.body_excerpt()
            .unwrap()
            .contains("Incorrect API key provided")
    );

    let emb = OpenAiEmbeddings::from_config(&config).unwrap();
    let err = emb.embed(EmbeddingRequest::new(["x"])).await.unwrap_err();
    assert_clean("embedding error", &format!("{err} {err:?}"));

    let err = model.chat(ChatRequest::user("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert_clean("decode error", &format!("{err} {err:?}"));

    // The key only ever travels in the authorization header.
    for request in server.requests() {
        assert!(!request.body_text().contains(KEY));
        assert!(!format!("{request:?}").contains(KEY));
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
    }
}

/// The builders share one `Transport`; its Debug shows header names, never values.
#[test]
fn builders_never_print_header_values() {
    let transport = llmkit_providers::http::Transport {
        headers: vec![("x-gateway-auth".into(), GATEWAY.into())],
        ..Default::default()
    };
    let shown = format!("{transport:?}");
    assert!(shown.contains("x-gateway-auth"), "{shown}");
    assert_clean("transport", &shown);
    assert!(
        transport.resolve().is_ok(),
        "valid headers resolve to a sendable transport"
    );
    let bad = llmkit_providers::http::Transport {
        headers: vec![("x-bad".into(), format!("{GATEWAY}\n"))],
        ..Default::default()
    };
    let err = bad.resolve().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert_clean("header error", &err.to_string());
}
