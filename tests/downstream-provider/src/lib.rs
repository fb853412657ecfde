//! A provider a third party could publish, built against llmkit-core's contract alone
//! (`default-features = false`): the vocabulary, `ChatModel`, `Error`, `Layer`/`Pipeline` and
//! `ScriptedModel`, none of the heavier capabilities. `scripts/check-features.sh` builds and
//! tests it on its own, so a capability that leaks into the contract fails CI.
//!
//! The "provider" answers locally from a table of canned answers keyed by a word in the
//! question, so it needs no network; what matters is that everything a real provider touches
//! (request, response, usage, finish reason, typed errors, streaming) is reachable without the
//! capability features.

use std::collections::BTreeMap;

use llmkit_core::{
    ChatModel, ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, Message, ModelInfo,
    Result, Usage, async_trait, estimate_tokens,
};

/// Answers a question from a keyword table; an unknown question is a typed error.
#[derive(Debug, Clone)]
pub struct FaqModel {
    info: ModelInfo,
    answers: BTreeMap<String, String>,
}

impl FaqModel {
    /// A model named `model` answering from `(keyword, answer)` pairs (keywords match
    /// case-insensitively as words of the last user message).
    pub fn new<I, K, A>(model: &str, answers: I) -> Self
    where
        I: IntoIterator<Item = (K, A)>,
        K: Into<String>,
        A: Into<String>,
    {
        FaqModel {
            info: ModelInfo::new("faq", model),
            answers: answers
                .into_iter()
                .map(|(k, a)| (k.into().to_lowercase(), a.into()))
                .collect(),
        }
    }
}

#[async_trait]
impl ChatModel for FaqModel {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse> {
        let question = request
            .messages
            .iter()
            .rev()
            .find(|m| m.role == llmkit_core::Role::User)
            .map(Message::text)
            .ok_or_else(|| Error::new(ErrorKind::InvalidRequest, "no user message to answer"))?;
        let answer = question
            .split(|c: char| !c.is_alphanumeric())
            .find_map(|word| self.answers.get(&word.to_lowercase()))
            .ok_or_else(|| {
                Error::new(ErrorKind::InvalidRequest, "no answer for this question")
                    .or_context(&self.info.provider, &self.info.model)
            })?;
        Ok(ChatResponse {
            message: Message::assistant(answer.clone()),
            finish_reason: FinishReason::Stop,
            usage: Usage {
                input_tokens: estimate_tokens(&request.text()),
                output_tokens: estimate_tokens(answer),
                ..Usage::default()
            },
            model: self.info.model.clone(),
            provider: self.info.provider.clone(),
            request_id: request.meta.request_id.clone(),
            ..ChatResponse::default()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use llmkit_core::{
        ChatModel, ChatRequest, ErrorKind, Pipeline, ScriptedModel, StreamEvent, collect_stream,
        layer_fn,
    };

    use super::FaqModel;

    fn faq() -> FaqModel {
        FaqModel::new("faq-1", [("refund", "Refunds within 30 days.")])
    }

    #[tokio::test]
    async fn answers_through_a_pipeline_with_a_layer() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let model: Arc<dyn ChatModel> = Pipeline::builder()
            .layer(layer_fn("tag", move |req: ChatRequest| {
                log.lock().unwrap().push(req.text());
                req
            }))
            .build(Arc::new(faq()));
        let reply = model
            .chat(ChatRequest::user("Can I get a REFUND?"))
            .await
            .unwrap();
        assert_eq!(reply.text(), "Refunds within 30 days.");
        assert_eq!(reply.provider, "faq");
        assert!(reply.usage.input_tokens > 0 && reply.usage.output_tokens > 0);
        assert_eq!(seen.lock().unwrap().len(), 1, "the layer saw the request");
    }

    #[tokio::test]
    async fn unknown_question_is_a_typed_error_with_context() {
        let err = faq()
            .chat(ChatRequest::user("What is the weather?"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest);
        assert_eq!(err.provider(), Some("faq"));
        assert!(!err.is_retryable());
    }

    #[tokio::test]
    async fn default_stream_ends_with_one_done() {
        let model = faq();
        let stream = model.stream(ChatRequest::user("refund?")).await.unwrap();
        let events: Vec<_> = futures::StreamExt::collect::<Vec<_>>(stream).await;
        let dones = events
            .iter()
            .filter(|e| matches!(e, Ok(StreamEvent::Done { .. })))
            .count();
        assert_eq!(dones, 1);
        let stream = model.stream(ChatRequest::user("refund?")).await.unwrap();
        let collected = collect_stream(stream, model.info()).await.unwrap();
        assert_eq!(collected.text(), "Refunds within 30 days.");
    }

    #[tokio::test]
    async fn scripted_model_is_interchangeable() {
        let models: Vec<Arc<dyn ChatModel>> = vec![
            Arc::new(faq()),
            Arc::new(ScriptedModel::always("Refunds within 30 days.")),
        ];
        for m in models {
            let reply = m.chat(ChatRequest::user("refund")).await.unwrap();
            assert_eq!(reply.text(), "Refunds within 30 days.");
        }
    }
}
