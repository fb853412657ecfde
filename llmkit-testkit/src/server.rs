//! [`FakeServer`]: a local HTTP server that replays canned responses and records requests.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::serve::ListenerExt;
// A panicking test thread must not hide the recorded requests from the others.
use llmkit_core::sync::lock;
use llmkit_core::{Error, ErrorKind, Result};

/// A response the fake server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The body, sent in one piece or in chunks.
    pub body: CannedBody,
}

/// How a canned body is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CannedBody {
    /// In one piece.
    Bytes(Vec<u8>),
    /// As separate chunks, so stream parsers meet lines split across reads.
    Chunks(Vec<Vec<u8>>),
}

/// Chunk size used by [`CannedResponse::sse`] and [`CannedResponse::ndjson`]: small and odd,
/// so events, lines and UTF-8 sequences get split at awkward places.
pub const STREAM_CHUNK_BYTES: usize = 23;

impl CannedResponse {
    /// A JSON body with this status.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::raw(status, "application/json", body.to_string())
    }

    /// Any body with a content type.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        CannedResponse {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: CannedBody::Bytes(body.into()),
        }
    }

    /// A 200 `text/event-stream` body sent in [`STREAM_CHUNK_BYTES`]-byte chunks.
    pub fn sse(body: &str) -> Self {
        Self::chunked("text/event-stream", body)
    }

    /// A 200 `application/x-ndjson` body sent in [`STREAM_CHUNK_BYTES`]-byte chunks.
    pub fn ndjson(body: &str) -> Self {
        Self::chunked("application/x-ndjson", body)
    }

    fn chunked(content_type: &str, body: &str) -> Self {
        CannedResponse {
            status: 200,
            headers: vec![("content-type".into(), content_type.into())],
            body: CannedBody::Chunks(
                body.as_bytes()
                    .chunks(STREAM_CHUNK_BYTES)
                    .map(<[u8]>::to_vec)
                    .collect(),
            ),
        }
    }

    /// Adds a response header.
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// One request the fake server received.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `POST`, `GET`, ...
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// Headers, names lower-case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

/// Headers whose values [`RecordedRequest`]'s `Debug` hides.
const SECRET_HEADERS: [&str; 4] = ["authorization", "api-key", "x-api-key", "x-goog-api-key"];

impl fmt::Debug for RecordedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let shown = if SECRET_HEADERS.contains(&k.as_str()) {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("RecordedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("headers", &headers)
            .field("body", &self.body_text())
            .finish()
    }
}

impl RecordedRequest {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON, when it is JSON.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Default)]
struct State {
    responses: VecDeque<CannedResponse>,
    requests: Vec<RecordedRequest>,
}

/// A local HTTP/1.1 server on `127.0.0.1:0` that answers each request with the next queued
/// [`CannedResponse`] (a 599 with an explanatory body when none is left) and records every
/// request. Accepted sockets get `TCP_NODELAY`. The server stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Starts a server on an ephemeral local port (needs a Tokio runtime).
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::new(ErrorKind::Transport, format!("fake server bind: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::new(ErrorKind::Transport, format!("fake server addr: {e}")))?;
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let shared = Arc::clone(&shared);
                async move { handle(&shared, method, uri, headers, body) }
            },
        );
        let listener = listener.tap_io(|tcp| {
            // Without it a reused keep-alive connection shows a flat ~40 ms per request.
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeServer { addr, state, task })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a response.
    pub fn push(&self, response: CannedResponse) {
        lock(&self.state).responses.push_back(response);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let next = {
        let mut st = lock(state);
        st.requests.push(RecordedRequest {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.to_vec(),
        });
        st.responses.pop_front()
    };
    let canned = next.unwrap_or_else(|| {
        CannedResponse::raw(599, "text/plain", "fake server: no canned response left")
    });
    let status = StatusCode::from_u16(canned.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match canned.body {
        CannedBody::Bytes(b) => Body::from(b),
        CannedBody::Chunks(chunks) => Body::from_stream(futures::stream::iter(
            chunks
                .into_iter()
                .map(|c| Ok::<_, std::io::Error>(Bytes::from(c))),
        )),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    for (name, value) in canned.headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}
