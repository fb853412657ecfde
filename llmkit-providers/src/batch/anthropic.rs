//! The Anthropic Message Batches lane.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};

use llmkit_core::batch::{
    BatchHandle, BatchItem, BatchLane, BatchProgress, BatchStatus, validate_items,
};
use llmkit_core::cost::PriceTable;
use llmkit_core::sync;
use llmkit_core::{ChatResponse, Error, ErrorKind, Result, async_trait};
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::anthropic::AnthropicModel;
use crate::anthropic::wire::{self, StructuredPlan};
use crate::http::{self, ErrorMapper};

type Plans = HashMap<String, Option<StructuredPlan>>;

/// Submits chat requests through the Anthropic Message Batches API
/// (`/v1/messages/batches`), using the [`AnthropicModel`]'s key, base URL, headers, body
/// builder and response parser.
#[derive(Clone)]
pub struct AnthropicBatchLane {
    model: AnthropicModel,
    prices: Arc<PriceTable>,
    /// Structured-output plans per batch and custom id, so results turn back into JSON text
    /// exactly like the interactive path.
    plans: Arc<Mutex<HashMap<String, Plans>>>,
}

impl fmt::Debug for AnthropicBatchLane {
    /// Never prints the key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicBatchLane")
            .field("base_url", &self.model.inner.base_url)
            .field("model", &self.model.info().model)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize, Default)]
struct RequestCounts {
    #[serde(default)]
    processing: u64,
    #[serde(default)]
    succeeded: u64,
    #[serde(default)]
    errored: u64,
    #[serde(default)]
    canceled: u64,
    #[serde(default)]
    expired: u64,
}

#[derive(Debug, Deserialize)]
struct MessageBatch {
    id: String,
    processing_status: String,
    #[serde(default)]
    request_counts: Option<RequestCounts>,
    #[serde(default)]
    results_url: Option<String>,
    #[serde(default)]
    cancel_initiated_at: Option<String>,
}

impl AnthropicBatchLane {
    /// A lane for `model`'s account. Prices default to the bundled [`PriceTable`].
    pub fn new(model: AnthropicModel) -> Self {
        AnthropicBatchLane {
            model,
            prices: PriceTable::bundled(),
            plans: Arc::default(),
        }
    }

    /// Prices results with `prices` (at their batch rate) instead of the bundled table.
    #[must_use]
    pub fn with_prices(mut self, prices: Arc<PriceTable>) -> Self {
        self.prices = prices;
        self
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/v1/messages/batches{rest}", self.model.inner.base_url)
    }

    fn headers(&self) -> Result<HeaderMap> {
        let inner = &self.model.inner;
        let mut headers = inner.extra_headers.clone();
        http::insert_header(&mut headers, "anthropic-version", &inner.api_version)?;
        http::insert_secret_header(&mut headers, "x-api-key", "", &inner.api_key)?;
        Ok(headers)
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        let mapper = self.model.mapper();
        let mut builder = builder.headers(self.headers()?);
        if let Some(t) = self.model.inner.timeout {
            builder = builder.timeout(t);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| mapper.transport_error(e))?;
        http::check_status(response, &mapper).await
    }

    async fn get_batch(&self, id: &str) -> Result<MessageBatch> {
        let response = self
            .send(self.model.inner.client.get(self.url(&format!("/{id}"))))
            .await?;
        http::read_json(response, &self.model.mapper()).await
    }

    fn context(&self, e: Error) -> Error {
        let info = self.model.info();
        e.or_context(&info.provider, &info.model)
    }
}

/// Maps Anthropic's `processing_status` (and whether cancel was asked) onto [`BatchStatus`].
fn status(batch: &MessageBatch) -> Result<BatchStatus> {
    let counts = batch.request_counts.as_ref();
    Ok(match batch.processing_status.as_str() {
        "in_progress" | "canceling" => BatchStatus::InProgress,
        "ended" if batch.cancel_initiated_at.is_some() => BatchStatus::Cancelled,
        "ended" if counts.is_some_and(|c| c.expired > 0) => BatchStatus::Expired,
        "ended" => BatchStatus::Completed,
        other => {
            return Err(Error::invalid_response(format!(
                "unknown anthropic batch processing_status `{other}`"
            )));
        }
    })
}

#[derive(Debug, Deserialize)]
struct ResultLine {
    custom_id: String,
    result: ItemResult,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ItemResult {
    Succeeded {
        message: Box<wire::MessagesResponse>,
    },
    Errored {
        #[serde(default)]
        error: Value,
    },
    Canceled,
    Expired,
}

/// The HTTP status an Anthropic error type stands for, so per-item errors go through the
/// same classification as interactive ones.
fn status_for(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// Parses an Anthropic batch results file (JSONL) into one result per custom id.
///
/// `succeeded` items go through the provider's response parser, `errored` items through the
/// provider's error mapping, `canceled` becomes [`ErrorKind::Cancelled`] and `expired`
/// [`ErrorKind::Timeout`]. Lines that do not parse are skipped (the item then counts as
/// unfinished). Never panics.
pub fn parse_anthropic_results(
    text: &str,
    mapper: &ErrorMapper,
) -> BTreeMap<String, Result<ChatResponse>> {
    parse_with_plans(text, mapper, &Plans::new())
}

fn parse_with_plans(
    text: &str,
    mapper: &ErrorMapper,
    plans: &Plans,
) -> BTreeMap<String, Result<ChatResponse>> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        // A malformed line is the provider's fault; its item is reported as unfinished.
        let Ok(parsed) = serde_json::from_str::<ResultLine>(line) else {
            continue;
        };
        let provider = mapper.provider();
        let result = match parsed.result {
            ItemResult::Succeeded { message } => {
                let plan = plans.get(&parsed.custom_id).and_then(Option::as_ref);
                wire::parse_response(*message, plan)
            }
            ItemResult::Errored { error } => {
                // Results nest the API error: {"type": "error", "error": {"type", "message"}}.
                let inner = error.get("error").cloned().unwrap_or(error);
                let kind = inner.get("type").and_then(Value::as_str).unwrap_or("");
                let body = json!({"type": "error", "error": inner}).to_string();
                Err(mapper.error_from_parts(status_for(kind), &HeaderMap::new(), &body))
            }
            ItemResult::Canceled => Err(Error::new(
                ErrorKind::Cancelled,
                "batch item was canceled before it ran",
            )
            .with_provider(provider)),
            ItemResult::Expired => Err(Error::new(
                ErrorKind::Timeout,
                "batch item expired before it ran (24h window)",
            )
            .with_provider(provider)),
        };
        out.insert(parsed.custom_id, result);
    }
    out
}

#[async_trait]
impl BatchLane for AnthropicBatchLane {
    async fn submit(&self, items: Vec<BatchItem>) -> Result<BatchHandle> {
        validate_items(&items)?;
        let run = async {
            let mut requests = Vec::with_capacity(items.len());
            let mut plans = Plans::new();
            for item in &items {
                let built = self.model.build_body(&item.request, false)?;
                requests.push(json!({"custom_id": item.custom_id, "params": built.body}));
                plans.insert(item.custom_id.clone(), built.structured);
            }
            let response = self
                .send(
                    self.model
                        .inner
                        .client
                        .post(self.url(""))
                        .json(&json!({ "requests": requests })),
                )
                .await?;
            let batch: MessageBatch = http::read_json(response, &self.model.mapper()).await?;
            sync::lock(&self.plans).insert(batch.id.clone(), plans);
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
            let status = status(&batch)?;
            let c = batch.request_counts.unwrap_or_default();
            Ok(BatchProgress {
                status,
                total: c.processing + c.succeeded + c.errored + c.canceled + c.expired,
                succeeded: c.succeeded,
                failed: c.errored + c.canceled + c.expired,
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
            let Some(url) = batch.results_url else {
                return Ok(BTreeMap::new());
            };
            let mapper = self.model.mapper();
            let response = self.send(self.model.inner.client.get(url)).await?;
            let text = response
                .text()
                .await
                .map_err(|e| mapper.transport_error(e))?;
            let plans = sync::lock(&self.plans)
                .get(&handle.id)
                .cloned()
                .unwrap_or_default();
            let mut out = parse_with_plans(&text, &mapper, &plans);
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
        let url = self.url(&format!("/{}/cancel", handle.id));
        self.send(self.model.inner.client.post(url))
            .await
            .map(|_| ())
            .map_err(|e| self.context(e))
    }
}
