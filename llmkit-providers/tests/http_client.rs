//! The default client against local servers: status mapping end to end, transport failures,
//! timeouts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use llmkit_core::ErrorKind;
use llmkit_providers::http::{self, ErrorMapper, ErrorRule};
use reqwest::header::HeaderMap;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

static RULES: &[ErrorRule] = &[];

#[tokio::test]
async fn non_2xx_is_classified_with_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/x"))
        .and(header("content-type", "application/json"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "3")
                .insert_header("x-request-id", "req_42")
                .set_body_string(
                    r#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#,
                ),
        )
        .mount(&server)
        .await;
    let client = http::default_client().unwrap();
    let mapper = ErrorMapper::new("test", RULES);
    let err = http::post_json(
        &client,
        &format!("{}/v1/x", server.uri()),
        HeaderMap::new(),
        &serde_json::json!({"a": 1}),
        Some(Duration::from_secs(5)),
        &mapper,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(err.provider_request_id(), Some("req_42"));
    assert_eq!(err.status(), Some(429));
}

#[tokio::test]
async fn success_and_malformed_json() {
    let server = MockServer::start().await;
    Mock::given(path("/ok"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"v":1}"#))
        .mount(&server)
        .await;
    Mock::given(path("/bad"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .mount(&server)
        .await;
    let client = http::default_client().unwrap();
    let mapper = ErrorMapper::new("test", RULES);
    let ok = http::post_json(
        &client,
        &format!("{}/ok", server.uri()),
        HeaderMap::new(),
        &1,
        None,
        &mapper,
    )
    .await
    .unwrap();
    let v: serde_json::Value = http::read_json(ok, &mapper).await.unwrap();
    assert_eq!(v["v"], 1);
    let bad = http::post_json(
        &client,
        &format!("{}/bad", server.uri()),
        HeaderMap::new(),
        &1,
        None,
        &mapper,
    )
    .await
    .unwrap();
    let err = http::read_json::<serde_json::Value>(bad, &mapper)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    assert_eq!(err.body_excerpt(), Some("{not json"));
}

#[tokio::test]
async fn connection_refused_is_transport() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = http::default_client().unwrap();
    let mapper = ErrorMapper::new("test", RULES);
    let err = http::post_json(
        &client,
        &format!("http://{addr}/v1"),
        HeaderMap::new(),
        &1,
        None,
        &mapper,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.provider(), Some("test"));
}

#[tokio::test]
async fn silent_server_is_timeout() {
    // Accepts and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _accept = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let client = http::default_client().unwrap();
    let mapper = ErrorMapper::new("test", RULES);
    let url = format!("http://{addr}/v1");
    let err = http::post_json(
        &client,
        &url,
        HeaderMap::new(),
        &1,
        Some(Duration::from_millis(150)),
        &mapper,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let err = http::post_json_stream(
        &client,
        &url,
        HeaderMap::new(),
        &1,
        Some(Duration::from_millis(150)),
        &mapper,
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}
