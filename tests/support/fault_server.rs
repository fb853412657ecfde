//! A scripted HTTP/1.1 server on `127.0.0.1:0` for fault injection, shared by
//! `tests/fault_injection.rs`, `tests/fault_matrix.rs` and `examples/resilience.rs`.
//!
//! Each connection serves one request (`Connection: close`) with the next scripted [`Fault`],
//! then the fallback fault. Raw TCP instead of a framework, because the faults worth testing
//! (a reset connection, a reset halfway through a body, a body that stalls after the headers,
//! a chunked stream cut before its last chunk) are exactly what frameworks are built to
//! prevent. Accepted sockets get `TCP_NODELAY` (without it a flat ~40 ms appears per
//! response).
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// Poison-tolerant: a panicking test must not hide the recorded requests from the others.
use llmkit::core::sync::lock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted way to answer (or not answer) a request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// A complete response: status, extra headers, body (JSON unless a header says otherwise).
    Respond {
        /// HTTP status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Body.
        body: String,
    },
    /// Read the request, then reset the connection (RST) without answering.
    Reset,
    /// Wait this long before answering at all.
    Delay(Duration, Box<Fault>),
    /// Send `200` headers at once and the body only after `delay`.
    SlowBody {
        /// Stall between headers and body.
        delay: Duration,
        /// Body sent after the stall.
        body: String,
    },
    /// A chunked `text/event-stream`, one chunk per frame with `gap` between frames;
    /// `truncate` closes the connection without the terminating chunk.
    Sse {
        /// SSE frames, each already ending in a blank line.
        frames: Vec<String>,
        /// Pause between frames.
        gap: Duration,
        /// Cut the stream before its end.
        truncate: bool,
    },
    /// [`Fault::Sse`] with any content type (`application/x-ndjson` for Ollama): a chunked
    /// `200`, one chunk per frame. `truncate` resets the connection instead of sending the
    /// terminating chunk; a frame list without the provider's end marker and `truncate: false`
    /// is a stream that ends cleanly at the HTTP level but is cut at the provider level.
    Chunked {
        /// `content-type` of the response.
        content_type: String,
        /// Frames, each sent as one chunk.
        frames: Vec<String>,
        /// Pause between frames.
        gap: Duration,
        /// Reset the connection instead of ending the body.
        truncate: bool,
        /// Before frame `n`, go silent for this long (a stream that stalls mid-reply).
        stall: Option<(usize, Duration)>,
    },
    /// Announce a complete response (`content-length` of the whole body), send only the first
    /// `keep` bytes of the body, then reset the connection: a reset mid-body.
    CutBody {
        /// HTTP status.
        status: u16,
        /// `content-type` of the response.
        content_type: String,
        /// The whole body the headers announce.
        body: String,
        /// Bytes of the body actually sent before the reset.
        keep: usize,
    },
}

/// Header name that [`Fault::retry_after_date`] leaves for the server to turn into a
/// `retry-after` date when it writes the response; never sent as is.
const RETRY_AFTER_DATE_MARKER: &str = "x-fault-retry-after-date-in-ms";

impl Fault {
    /// A JSON response.
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Fault::Respond {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A complete response with an explicit `content-type` (an HTML error page, plain text).
    pub fn respond(status: u16, content_type: &str, body: impl Into<String>) -> Self {
        Fault::Respond {
            status,
            headers: vec![("content-type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    /// Adds a header (only to [`Fault::Respond`]).
    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Fault::Respond { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// Adds `retry-after` as an HTTP date `ahead` of the moment the response is written (only to
    /// [`Fault::Respond`]). Computed at response time, not when the fault is scripted: a date
    /// fixed at scripting time can already be (nearly) past when a loaded machine gets to the
    /// call, and the client then rightly waits less than the test expects.
    #[must_use]
    pub fn retry_after_date(self, ahead: Duration) -> Self {
        self.header(RETRY_AFTER_DATE_MARKER, &ahead.as_millis().to_string())
    }

    /// This fault after a delay.
    #[must_use]
    pub fn after(self, delay: Duration) -> Self {
        Fault::Delay(delay, Box::new(self))
    }
}

/// A request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Request line path.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl Recorded {
    /// A header value by (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Fault>>,
    fallback: Mutex<Option<Fault>>,
    requests: Mutex<Vec<Recorded>>,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: Mutex<(usize, usize)>,
}

/// Counts a request as in flight until dropped, whichever way its answer ends.
struct InFlight<'a>(&'a State);

impl<'a> InFlight<'a> {
    fn enter(state: &'a State) -> Self {
        let mut n = lock(&state.in_flight);
        n.0 += 1;
        n.1 = n.1.max(n.0);
        InFlight(state)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        lock(&self.0.in_flight).0 -= 1;
    }
}

/// The running server; stops when dropped.
pub struct FaultServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultServer {
    /// Starts a server with an empty script.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let _ = socket.set_nodelay(true);
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, &state).await;
                });
            }
        });
        Ok(FaultServer { addr, state, task })
    }

    /// Appends faults to the script.
    pub fn push(&self, faults: impl IntoIterator<Item = Fault>) {
        lock(&self.state.script).extend(faults);
    }

    /// The answer once the script is used up.
    pub fn fallback(&self, fault: Fault) {
        *lock(&self.state.fallback) = Some(fault);
    }

    /// `http://127.0.0.1:PORT`, for providers whose base URL is the host (Anthropic, Gemini,
    /// Vertex AI, Azure, Ollama).
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Base URL of an OpenAI-style API (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }

    /// Number of requests received so far.
    pub fn request_count(&self) -> usize {
        lock(&self.state.requests).len()
    }

    /// The most requests that were being answered at the same time (a client-side concurrency
    /// limit shows here as a ceiling).
    pub fn max_concurrent(&self) -> usize {
        lock(&self.state.in_flight).1
    }
}

async fn read_request(socket: &mut TcpStream) -> std::io::Result<Recorded> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    };
    let head = String::from_utf8_lossy(buf.get(..header_end).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf.get(header_end..).unwrap_or_default().to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(Recorded {
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

async fn serve(mut socket: TcpStream, state: &State) -> std::io::Result<()> {
    let request = read_request(&mut socket).await?;
    let _in_flight = InFlight::enter(state);
    lock(&state.requests).push(request);
    let scripted = lock(&state.script).pop_front();
    let mut fault = scripted
        .or_else(|| lock(&state.fallback).clone())
        .unwrap_or_else(|| Fault::json(500, r#"{"error":{"message":"unscripted request"}}"#));
    loop {
        match fault {
            Fault::Delay(d, inner) => {
                tokio::time::sleep(d).await;
                fault = *inner;
            }
            Fault::Reset => {
                socket.set_zero_linger()?;
                drop(socket);
                return Ok(());
            }
            Fault::Respond {
                status,
                headers,
                body,
            } => {
                let mut head = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\nconnection: close\r\n",
                    reason(status),
                    body.len()
                );
                if !headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
                {
                    head.push_str("content-type: application/json\r\n");
                }
                for (n, v) in &headers {
                    if n == RETRY_AFTER_DATE_MARKER {
                        let ahead = Duration::from_millis(v.parse().unwrap_or(0));
                        let at = httpdate::fmt_http_date(std::time::SystemTime::now() + ahead);
                        head.push_str(&format!("retry-after: {at}\r\n"));
                    } else {
                        head.push_str(&format!("{n}: {v}\r\n"));
                    }
                }
                head.push_str("\r\n");
                socket.write_all(head.as_bytes()).await?;
                socket.write_all(body.as_bytes()).await?;
                socket.shutdown().await?;
                return Ok(());
            }
            Fault::SlowBody { delay, body } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                socket.write_all(head.as_bytes()).await?;
                socket.flush().await?;
                tokio::time::sleep(delay).await;
                socket.write_all(body.as_bytes()).await?;
                socket.shutdown().await?;
                return Ok(());
            }
            Fault::Sse {
                frames,
                gap,
                truncate,
            } => {
                fault = Fault::Chunked {
                    content_type: "text/event-stream".to_owned(),
                    frames,
                    gap,
                    truncate,
                    stall: None,
                };
            }
            Fault::Chunked {
                content_type,
                frames,
                gap,
                truncate,
                stall,
            } => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                );
                socket.write_all(head.as_bytes()).await?;
                for (i, frame) in frames.into_iter().enumerate() {
                    if let Some((_, pause)) = stall.filter(|(at, _)| *at == i) {
                        tokio::time::sleep(pause).await;
                    }
                    socket
                        .write_all(format!("{:x}\r\n{frame}\r\n", frame.len()).as_bytes())
                        .await?;
                    socket.flush().await?;
                    tokio::time::sleep(gap).await;
                }
                if truncate {
                    socket.set_zero_linger()?;
                    drop(socket);
                    return Ok(());
                }
                socket.write_all(b"0\r\n\r\n").await?;
                socket.shutdown().await?;
                return Ok(());
            }
            Fault::CutBody {
                status,
                content_type,
                body,
                keep,
            } => {
                let head = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    reason(status),
                    body.len()
                );
                socket.write_all(head.as_bytes()).await?;
                socket
                    .write_all(body.as_bytes().get(..keep).unwrap_or(body.as_bytes()))
                    .await?;
                socket.flush().await?;
                // Let the client read what was sent before the reset discards it.
                tokio::time::sleep(Duration::from_millis(20)).await;
                socket.set_zero_linger()?;
                drop(socket);
                return Ok(());
            }
        }
    }
}

/// An OpenAI chat completion body answering `text`.
pub fn openai_completion(text: &str) -> String {
    serde_json::json!({
        "id": "chatcmpl-fault-1",
        "object": "chat.completion",
        "created": 1_764_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    })
    .to_string()
}

/// An OpenAI error body.
pub fn openai_error(message: &str, kind: &str, code: &str) -> String {
    serde_json::json!({"error": {"message": message, "type": kind, "code": code}}).to_string()
}

/// OpenAI streaming frames for `text`, split into `pieces`, ending with `[DONE]`.
pub fn openai_sse(pieces: &[&str]) -> Vec<String> {
    let chunk = |delta: serde_json::Value, finish: serde_json::Value| {
        let v = serde_json::json!({
            "id": "chatcmpl-fault-2",
            "object": "chat.completion.chunk",
            "created": 1_764_000_000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        });
        format!("data: {v}\n\n")
    };
    let mut frames = vec![chunk(
        serde_json::json!({"role": "assistant", "content": ""}),
        serde_json::Value::Null,
    )];
    for p in pieces {
        frames.push(chunk(
            serde_json::json!({"content": p}),
            serde_json::Value::Null,
        ));
    }
    frames.push(chunk(serde_json::json!({}), serde_json::json!("stop")));
    frames.push("data: [DONE]\n\n".to_owned());
    frames
}
