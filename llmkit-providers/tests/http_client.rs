//! The default client and [`http::Endpoint`] against local servers: status mapping end to end,
//! transport failures classified by type, timeouts, idempotency header.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use llmkit_core::{ErrorKind, RequestMeta};
use llmkit_providers::http::{self, Endpoint, ErrorMapper, ErrorRule};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

static RULES: &[ErrorRule] = &[];

fn endpoint(url: String) -> Endpoint {
    Endpoint::new(
        http::default_client().unwrap(),
        url,
        ErrorMapper::new("test", RULES),
    )
}

#[tokio::test]
async fn non_2xx_is_classified_with_headers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/x"))
        .and(header("content-type", "application/json"))
        .and(header("x-extra", "1"))
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
    let err = endpoint(format!("{}/v1/x", server.uri()))
        .header("x-extra", "1")
        .unwrap()
        .timeout(Some(Duration::from_secs(5)))
        .post_json(&serde_json::json!({"a": 1}), &RequestMeta::default())
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
    let meta = RequestMeta::default();
    let ok = endpoint(format!("{}/ok", server.uri()));
    let response = ok.post_json(&1, &meta).await.unwrap();
    let v: serde_json::Value = http::read_json(response, ok.mapper()).await.unwrap();
    assert_eq!(v["v"], 1);
    let bad = endpoint(format!("{}/bad", server.uri()));
    let response = bad.post_json(&1, &meta).await.unwrap();
    let err = http::read_json::<serde_json::Value>(response, bad.mapper())
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
    let err = endpoint(format!("http://{addr}/v1"))
        .post_json(&1, &RequestMeta::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.provider(), Some("test"));
}

/// A 200 whose body stops short of its `Content-Length` (the connection died mid-body) is a
/// retryable transport failure, not a malformed reply: decided by the error's type and source
/// chain, not by its message text.
#[tokio::test]
async fn body_cut_off_mid_way_is_transport() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"v\": ")
                .await;
            // Dropped: the body ends 94 bytes early.
        }
    });
    let ep = endpoint(format!("http://{addr}/v1"));
    let response = ep.post_json(&1, &RequestMeta::default()).await.unwrap();
    let err = http::read_json::<serde_json::Value>(response, ep.mapper())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Transport, "{err}");
    assert!(err.is_retryable());
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
    let ep = endpoint(format!("http://{addr}/v1")).timeout(Some(Duration::from_millis(150)));
    let meta = RequestMeta::default();
    let err = ep.post_json(&1, &meta).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    let err = ep.post_json_stream(&1, &meta).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    // A deadline already passed sends nothing.
    let past = RequestMeta {
        deadline: std::time::Instant::now().checked_sub(Duration::from_millis(1)),
        ..RequestMeta::default()
    };
    let err = ep.post_json(&1, &past).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

/// The idempotency key goes out only in the header the endpoint names.
#[tokio::test]
async fn idempotency_header_only_when_configured() {
    let server = MockServer::start().await;
    Mock::given(path("/x"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
        .mount(&server)
        .await;
    let meta = RequestMeta {
        idempotency_key: Some("key-1".into()),
        ..RequestMeta::default()
    };
    let url = format!("{}/x", server.uri());
    endpoint(url.clone())
        .idempotency_header("Idempotency-Key")
        .unwrap()
        .post_json(&1, &meta)
        .await
        .unwrap();
    endpoint(url).post_json(&1, &meta).await.unwrap();
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent[0].headers["idempotency-key"], "key-1");
    assert!(sent[1].headers.get("idempotency-key").is_none());
}
