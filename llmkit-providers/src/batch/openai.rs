//! The OpenAI Batch API lane.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use llmkit_core::batch::{
    BatchHandle, BatchItem, BatchLane, BatchProgress, BatchStatus, validate_items,
};
use llmkit_core::cost::PriceTable;
use llmkit_core::{ChatResponse, Error, ErrorKind, Result, async_trait};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{self, ErrorMapper};
use crate::openai::{OpenAiModel, wire};

/// The Chat Completions endpoint every batch line targets.
const ENDPOINT: &str = "/v1/chat/completions";

/// Submits chat requests through the OpenAI Batch API (`/v1/files` + `/v1/batches`), using the
/// [`OpenAiModel`]'s key, base URL, headers, body builder and response parser.
#[derive(Clone)]
pub struct OpenAiBatchLane {
    model: OpenAiModel,
    base_url: String,
    prices: Arc<PriceTable>,
}

impl fmt::Debug for OpenAiBatchLane {
    /// Never prints headers: they carry the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiBatchLane")
            .field("base_url", &self.base_url)
            .field("model", &self.model.info().model)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct FileObject {
    id: String,
}

#[derive(Debug, Deserialize, Default)]
struct RequestCounts {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    completed: u64,
    #[serde(default)]
    failed: u64,
}

#[derive(Debug, Deserialize)]
struct BatchObject {
    id: String,
    status: String,
    #[serde(default)]
    output_file_id: Option<String>,
    #[serde(default)]
    error_file_id: Option<String>,
    #[serde(default)]
    request_counts: Option<RequestCounts>,
}

impl OpenAiBatchLane {
    /// A lane for `model`'s provider; the base URL is the model's chat URL without
    /// `/chat/completions`. Prices default to the bundled [`PriceTable`].
    pub fn new(model: OpenAiModel) -> Self {
        let chat = model.chat_url();
        let base_url = chat
            .strip_suffix("/chat/completions")
            .unwrap_or(chat)
            .trim_end_matches('/')
            .to_string();
        OpenAiBatchLane {
            model,
            base_url,
            prices: PriceTable::bundled(),
        }
    }

    /// Prices results with `prices` (at their batch rate) instead of the bundled table.
    #[must_use]
    pub fn with_prices(mut self, prices: Arc<PriceTable>) -> Self {
        self.prices = prices;
        self
    }

    /// The API base URL (e.g. `https://api.openai.com/v1`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    fn mapper(&self) -> &ErrorMapper {
        &self.model.inner.mapper
    }

    /// One JSONL line per item, bodies from the provider's own builder.
    fn jsonl(&self, items: &[BatchItem]) -> Result<String> {
        let inner = &self.model.inner;
        let mut out = String::new();
        for item in items {
            let body = wire::chat_body(&item.request, &inner.info.model, false, inner.body)?;
            let line = json!({
                "custom_id": item.custom_id,
                "method": "POST",
                "url": ENDPOINT,
                "body": body,
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        Ok(out)
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let inner = &self.model.inner;
        let mut builder = builder.headers(inner.headers.clone());
        if let Some(t) = inner.timeout {
            builder = builder.timeout(t);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| self.mapper().transport_error(e))?;
        http::check_status(response, self.mapper()).await
    }

    async fn get_batch(&self, id: &str) -> Result<BatchObject> {
        let client = &self.model.inner.client;
        let url = format!("{}/batches/{id}", self.base_url);
        let response = self.send(client.get(url)).await?;
        http::read_json(response, self.mapper()).await
    }

    async fn file_content(&self, file_id: &str) -> Result<String> {
        let client = &self.model.inner.client;
        let url = format!("{}/files/{file_id}/content", self.base_url);
        let response = self.send(client.get(url)).await?;
        response
            .text()
            .await
            .map_err(|e| self.mapper().transport_error(e))
    }

    fn context(&self, e: Error) -> Error {
        let info = self.model.info();
        e.or_context(&info.provider, &info.model)
    }
}

/// A `multipart/form-data` body with `purpose=batch` and the JSONL file; built by hand so the
/// HTTP client needs no extra reqwest feature.
fn multipart(jsonl: &str) -> (String, Vec<u8>) {
    let boundary = format!("llmkit-batch-{:016x}", boundary_nonce());
    let mut body = Vec::with_capacity(jsonl.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"batch.jsonl\"\r\n\
             Content-Type: application/jsonl\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(jsonl.as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A boundary that cannot collide with JSONL content in practice: JSON lines never start
/// with `--`, and the nanosecond clock makes it differ per upload.
fn boundary_nonce() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed)
}

/// Maps OpenAI's batch status vocabulary onto [`BatchStatus`].
fn status(raw: &str) -> Result<BatchStatus> {
    Ok(match raw {
        "validating" => BatchStatus::Queued,
        "in_progress" | "finalizing" | "cancelling" => BatchStatus::InProgress,
        "completed" => BatchStatus::Completed,
        "expired" => BatchStatus::Expired,
        "cancelled" => BatchStatus::Cancelled,
        "failed" => BatchStatus::Failed,
        other => {
            return Err(Error::invalid_response(format!(
                "unknown openai batch status `{other}`"
            )));
        }
    })
}

#[derive(Debug, Deserialize)]
struct OutputResponse {
    status_code: u16,
    #[serde(default)]
    request_id: Option<String>,
    #[serde(default)]
    body: Value,
}

#[derive(Debug, Deserialize)]
struct OutputError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct OutputLine {
    custom_id: String,
    #[serde(default)]
    response: Option<OutputResponse>,
    #[serde(default)]
    error: Option<OutputError>,
}

/// Parses an OpenAI batch output or error file (JSONL) into one result per custom id.
///
/// A line with `response.status_code` 2xx is parsed by the provider's response parser; other
/// status codes are classified by `mapper` like an interactive error; `error.code`
/// `batch_expired` becomes [`ErrorKind::Timeout`]. Lines that are not valid JSON or have no
/// `custom_id` are skipped (the item then counts as unfinished). Never panics.
pub fn parse_openai_results(
    text: &str,
    mapper: &ErrorMapper,
    model: &str,
) -> BTreeMap<String, Result<ChatResponse>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // A malformed line is the provider's fault; its item is reported as unfinished.
        let Ok(parsed) = serde_json::from_str::<OutputLine>(line) else {
            continue;
        };
        let result = item_result(parsed.response, parsed.error, mapper, model);
        out.insert(parsed.custom_id, result);
    }
    out
}

fn item_result(
    response: Option<OutputResponse>,
    error: Option<OutputError>,
    mapper: &ErrorMapper,
    model: &str,
) -> Result<ChatResponse> {
    let provider = mapper.provider().to_string();
    if let Some(resp) = response {
        if (200..300).contains(&resp.status_code) {
            let wire: wire::WireResponse = serde_json::from_value(resp.body).map_err(|e| {
                Error::invalid_response(format!("batch item body is not a chat completion: {e}"))
                    .with_provider(&provider)
            })?;
            let mut parsed = wire::parse_response(wire, &provider, model)?;
            // Like the interactive path: the HTTP request id wins over the body's id.
            if resp.request_id.is_some() {
                parsed.provider_request_id = resp.request_id;
            }
            return Ok(parsed);
        }
        let body = resp.body.to_string();
        let mut err = mapper.error_from_parts(resp.status_code, &HeaderMap::new(), &body);
        if let Some(id) = resp.request_id {
            err = err.with_provider_request_id(id);
        }
        return Err(err);
    }
    let (code, message) = match error {
        Some(e) => (e.code.unwrap_or_default(), e.message.unwrap_or_default()),
        None => (String::new(), String::new()),
    };
    let kind = match code.as_str() {
        "batch_expired" => ErrorKind::Timeout,
        "batch_cancelled" => ErrorKind::Cancelled,
        _ => ErrorKind::Other,
    };
    let text = if code.is_empty() && message.is_empty() {
        "batch item has neither a response nor an error".to_string()
    } else {
        format!("batch item failed: {code}: {}", mapper.redact(&message))
    };
    Err(Error::new(kind, text).with_provider(provider))
}

#[async_trait]
impl BatchLane for OpenAiBatchLane {
    async fn submit(&self, items: Vec<BatchItem>) -> Result<BatchHandle> {
        validate_items(&items)?;
        let run = async {
            let jsonl = self.jsonl(&items)?;
            let (content_type, body) = multipart(&jsonl);
            let client = &self.model.inner.client;
            let content_type = HeaderValue::from_str(&content_type)
                .map_err(|e| Error::new(ErrorKind::Config, format!("bad content type: {e}")))?;
            let upload = self
                .send(
                    client
                        .post(format!("{}/files", self.base_url))
                        .header(CONTENT_TYPE, content_type)
                        .body(body),
                )
                .await?;
            let file: FileObject = http::read_json(upload, self.mapper()).await?;
            let create = self
                .send(
                    client
                        .post(format!("{}/batches", self.base_url))
                        .json(&json!({
                            "input_file_id": file.id,
                            "endpoint": ENDPOINT,
                            "completion_window": "24h",
                        })),
                )
                .await?;
            let batch: BatchObject = http::read_json(create, self.mapper()).await?;
            Ok(BatchHandle {
                id: batch.id,
                provider: self.model.info().provider.clone(),
            })
        };
        run.await.map_err(|e| self.context(e))
    }

    async fn progress(&self, handle: &BatchHandle) -> Result<BatchProgress> {
        let run = async {
            let batch = self.get_batch(&handle.id).await?;
            let counts = batch.request_counts.unwrap_or_default();
            Ok(BatchProgress {
                status: status(&batch.status)?,
                total: counts.total,
                succeeded: counts.completed,
                failed: counts.failed,
            })
        };
        run.await.map_err(|e| self.context(e))
    }

    async fn results(
        &self,
        handle: &BatchHandle,
    ) -> Result<BTreeMap<String, Result<ChatResponse>>> {
        let run = async {
            let batch = self.get_batch(&handle.id).await?;
            let model = self.model.info().model.clone();
            let mut out = BTreeMap::new();
            for file in [&batch.output_file_id, &batch.error_file_id]
                .into_iter()
                .flatten()
            {
                let text = self.file_content(file).await?;
                out.extend(parse_openai_results(&text, self.mapper(), &model));
            }
            for result in out.values_mut() {
                match result {
                    Ok(resp) => super::price_batch(&self.prices, resp),
                    Err(e) => *e = self.context(e.clone()),
                }
            }
            Ok(out)
        };
        run.await.map_err(|e| self.context(e))
    }

    async fn cancel(&self, handle: &BatchHandle) -> Result<()> {
        let client = &self.model.inner.client;
        let url = format!("{}/batches/{}/cancel", self.base_url, handle.id);
        self.send(client.post(url))
            .await
            .map(|_| ())
            .map_err(|e| self.context(e))
    }
}
