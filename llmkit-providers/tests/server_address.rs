#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every provider tells the trace layer where it sends requests (`server.address` and
//! `server.port` of the OpenTelemetry GenAI conventions), parsed from its base URL.

#[allow(unused_imports)]
use llmkit_core::{ChatModel, ServerAddress};

#[allow(dead_code)]
fn server(host: &str, port: u16) -> Option<ServerAddress> {
    Some(ServerAddress {
        host: host.to_owned(),
        port,
    })
}

#[cfg(feature = "openai")]
#[test]
fn openai_compatible_and_default_endpoints() {
    use llmkit_providers::openai::OpenAiModel;
    let m = OpenAiModel::compatible("http://127.0.0.1:8000/v1", "m").unwrap();
    assert_eq!(m.info().server, server("127.0.0.1", 8000));
    let m = OpenAiModel::builder("gpt-4o")
        .api_key("sk-test")
        .build()
        .unwrap();
    assert_eq!(m.info().server, server("api.openai.com", 443));
}

#[cfg(feature = "anthropic")]
#[test]
fn anthropic_endpoint() {
    use llmkit_providers::anthropic::AnthropicModel;
    let m = AnthropicModel::builder("claude-haiku-4-5")
        .api_key("k")
        .build()
        .unwrap();
    assert_eq!(m.info().server, server("api.anthropic.com", 443));
}

#[cfg(feature = "gemini")]
#[test]
fn gemini_endpoint() {
    use llmkit_providers::gemini::GeminiModel;
    let m = GeminiModel::builder("gemini-2.0-flash")
        .api_key("k")
        .base_url("http://localhost:9099/")
        .build()
        .unwrap();
    assert_eq!(m.info().server, server("localhost", 9099));
}

#[cfg(feature = "ollama")]
#[test]
fn ollama_host_without_scheme() {
    use llmkit_providers::ollama::OllamaModel;
    let m = OllamaModel::builder("llama3.2")
        .host("10.0.0.5:11434")
        .build()
        .unwrap();
    assert_eq!(m.info().server, server("10.0.0.5", 11434));
}
