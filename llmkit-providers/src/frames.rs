//! The one stream contract every provider's streaming goes through (issue 17 item 2: the
//! Anthropic handler once ended a cut-off stream differently from the OpenAI one because they
//! were separate code).
//!
//! Glue from a stream of parsed frames (SSE events, NDJSON lines, from the shared parsers in
//! `sse.rs` / `ndjson.rs`) to a [`ChatStream`], through a provider's stateful converter. The
//! converter only translates the provider's vocabulary; how a stream *ends* is decided here:
//!
//! - success ends with exactly one [`StreamEvent::Done`], and nothing follows it;
//! - frames that run out before the converter produced a `Done` (the provider's end marker
//!   never came) end with an [`ErrorKind::Truncated`] error;
//! - a `Done` whose tool calls have arguments that are not JSON (cut off mid-object, typically
//!   by a token limit) becomes an error instead: [`ErrorKind::Truncated`] when the JSON just
//!   stops, [`ErrorKind::InvalidResponse`] when it is malformed. A partial call never looks
//!   like a finished one;
//! - the first error ends the stream;
//! - every error leaving the stream goes through the provider's `context` (provider, model,
//!   llmkit request id).
//!
//! A downstream provider uses it the same way (`examples/custom_provider.rs` does), and the
//! public conformance suite holds every provider to this contract.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use futures::StreamExt;
//! use llmkit_core::{ErrorKind, FinishReason, StreamEvent};
//! use llmkit_providers::frames::chat_stream;
//!
//! // Frames as a parser yields them; "end" is this toy provider's end marker.
//! let convert = |frame: Option<&str>| -> llmkit_core::Result<Vec<StreamEvent>> {
//!     Ok(match frame {
//!         Some("end") => vec![StreamEvent::Done { finish_reason: FinishReason::Stop }],
//!         Some(text) => vec![StreamEvent::TextDelta { text: text.to_owned() }],
//!         None => Vec::new(),
//!     })
//! };
//! let frames = futures::stream::iter([Ok("Hel"), Ok("lo")]); // cut off: no "end"
//! let items: Vec<_> = chat_stream(frames, "end", convert, |e| e.with_provider("toy"))
//!     .collect()
//!     .await;
//! let err = items.last().unwrap().as_ref().unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Truncated);
//! assert_eq!(err.provider(), Some("toy"));
//! # });
//! ```

use std::collections::{BTreeMap, VecDeque};

use futures::{Stream, StreamExt};
use llmkit_core::{ChatStream, Error, ErrorKind, Result, StreamEvent};

/// A tool call's name and argument text as streamed so far.
#[derive(Default)]
struct PendingCall {
    name: String,
    arguments: String,
}

/// Turns `frames` into a [`ChatStream`] that keeps the contract in the [module docs](self).
///
/// `convert(Some(frame))` handles one frame; `convert(None)` runs once when the frames end, for
/// providers whose final events depend on having seen everything (Gemini holds usage back).
/// `end_marker` names the provider's end marker in the truncation message (`message_stop`,
/// `[DONE]`, ...). `context` stamps every error with the provider's context.
pub fn chat_stream<S, T, F, C>(
    frames: S,
    end_marker: &'static str,
    convert: F,
    context: C,
) -> ChatStream
where
    S: Stream<Item = Result<T>> + Send + 'static,
    T: Send + 'static,
    F: FnMut(Option<T>) -> Result<Vec<StreamEvent>> + Send + 'static,
    C: Fn(Error) -> Error + Send + 'static,
{
    struct State<S, F, C> {
        frames: std::pin::Pin<Box<S>>,
        convert: F,
        context: C,
        end_marker: &'static str,
        calls: BTreeMap<usize, PendingCall>,
        pending: VecDeque<Result<StreamEvent>>,
        finished: bool,
    }

    impl<S, F, C: Fn(Error) -> Error> State<S, F, C> {
        fn fail(&mut self, e: Error) {
            self.pending.push_back(Err((self.context)(e)));
            self.finished = true;
        }

        fn absorb(&mut self, out: Result<Vec<StreamEvent>>) {
            let events = match out {
                Ok(events) => events,
                Err(e) => return self.fail(e),
            };
            for e in events {
                match &e {
                    StreamEvent::ToolCallDelta {
                        index,
                        name,
                        arguments,
                        ..
                    } => {
                        let call = self.calls.entry(*index).or_default();
                        if let Some(name) = name {
                            call.name.push_str(name);
                        }
                        call.arguments.push_str(arguments);
                    }
                    StreamEvent::Done { .. } => {
                        if let Some(err) = unfinished_call(&self.calls) {
                            return self.fail(err);
                        }
                        self.pending.push_back(Ok(e));
                        self.finished = true;
                        return;
                    }
                    _ => {}
                }
                self.pending.push_back(Ok(e));
            }
        }

        /// The frames ran out and the converter had its last word: without a `Done` the
        /// reply was cut off.
        fn end(&mut self) {
            if !self.finished {
                let marker = self.end_marker;
                self.fail(Error::new(
                    ErrorKind::Truncated,
                    format!("stream ended before {marker}"),
                ));
            }
        }
    }

    let state = State {
        frames: Box::pin(frames),
        convert,
        context,
        end_marker,
        calls: BTreeMap::new(),
        pending: VecDeque::new(),
        finished: false,
    };
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        loop {
            if let Some(item) = state.pending.pop_front() {
                return Some((item, state));
            }
            if state.finished {
                return None;
            }
            match state.frames.next().await {
                Some(Ok(frame)) => {
                    let out = (state.convert)(Some(frame));
                    state.absorb(out);
                }
                Some(Err(e)) => state.fail(e),
                None => {
                    let out = (state.convert)(None);
                    state.absorb(out);
                    state.end();
                }
            }
        }
    }))
}

/// The error for the first tool call whose arguments are not JSON, if any. Empty arguments are
/// fine: a call without parameters.
fn unfinished_call(calls: &BTreeMap<usize, PendingCall>) -> Option<Error> {
    calls.values().find_map(|call| {
        if call.arguments.trim().is_empty() {
            return None;
        }
        let e = serde_json::from_str::<serde::de::IgnoredAny>(&call.arguments).err()?;
        let (kind, what) = if e.is_eof() {
            (ErrorKind::Truncated, "were cut off")
        } else {
            (ErrorKind::InvalidResponse, "are not json")
        };
        Some(Error::new(
            kind,
            format!("tool call `{}` arguments {what}: {e}", call.name),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmkit_core::FinishReason;

    fn text(t: &str) -> StreamEvent {
        StreamEvent::TextDelta { text: t.into() }
    }

    fn done() -> StreamEvent {
        StreamEvent::Done {
            finish_reason: FinishReason::Stop,
        }
    }

    fn call(index: usize, name: Option<&str>, arguments: &str) -> StreamEvent {
        StreamEvent::ToolCallDelta {
            index,
            id: name.map(|n| format!("id-{n}")),
            name: name.map(str::to_owned),
            arguments: arguments.into(),
        }
    }

    fn tagged(e: Error) -> Error {
        e.with_provider("p")
    }

    async fn run<T: Send + 'static>(
        frames: Vec<Result<T>>,
        convert: impl FnMut(Option<T>) -> Result<Vec<StreamEvent>> + Send + 'static,
    ) -> Vec<Result<StreamEvent>> {
        chat_stream(futures::stream::iter(frames), "[END]", convert, tagged)
            .collect()
            .await
    }

    #[tokio::test]
    async fn stops_after_done_and_after_errors() {
        let got = run(vec![Ok(1), Ok(2), Ok(3)], |f| {
            Ok(match f {
                Some(1) => vec![text("a")],
                Some(2) => vec![done(), text("same frame, after done")],
                Some(_) => vec![text("after done")],
                None => vec![text("end")],
            })
        })
        .await;
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Ok(StreamEvent::Done { .. })));

        let got = run(
            vec![Ok(1), Err(Error::new(ErrorKind::Transport, "reset")), Ok(2)],
            |f| Ok(f.map(|_| vec![text("x")]).unwrap_or_default()),
        )
        .await;
        assert_eq!(got.len(), 2);
        let err = got[1].as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Transport);
        assert_eq!(err.provider(), Some("p"), "errors get the context");
    }

    #[tokio::test]
    async fn end_hook_runs_once_at_the_end() {
        let got = run(vec![Ok::<_, Error>("a")], |f| {
            Ok(match f {
                Some(t) => vec![text(t)],
                None => vec![text("end"), done()],
            })
        })
        .await;
        let got: Vec<_> = got.into_iter().map(|e| e.unwrap()).collect();
        assert_eq!(got, vec![text("a"), text("end"), done()]);
    }

    #[tokio::test]
    async fn frames_ending_without_done_are_truncated() {
        let got = run(vec![Ok::<_, Error>("a")], |f| {
            Ok(f.map(|t| vec![text(t)]).unwrap_or_default())
        })
        .await;
        assert_eq!(got.len(), 2);
        let err = got[1].as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated);
        assert_eq!(err.message(), "stream ended before [END]");
        assert_eq!(err.provider(), Some("p"));
        // No frames at all is a truncation too.
        let got = run(Vec::<Result<()>>::new(), |_| Ok(Vec::new())).await;
        assert_eq!(got[0].as_ref().unwrap_err().kind(), ErrorKind::Truncated);
    }

    #[tokio::test]
    async fn cut_tool_arguments_turn_done_into_an_error() {
        // Fragments that stop mid-object, then the end marker (a token limit hit mid-call).
        let frames = vec![
            Ok(vec![
                call(0, Some("f"), "{\"city\": "),
                call(1, Some("g"), "{}"),
            ]),
            Ok(vec![call(0, None, "\"Pa")]),
            Ok(vec![done()]),
        ];
        let got = run(frames, |f| Ok(f.unwrap_or_default())).await;
        assert!(
            got.iter()
                .all(|e| !matches!(e, Ok(StreamEvent::Done { .. })))
        );
        let err = got.last().unwrap().as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Truncated, "{err}");
        assert!(err.message().contains("`f`"), "{err}");

        // Malformed rather than cut off.
        let frames = vec![Ok(vec![call(0, Some("f"), "{\"a\" 1}"), done()])];
        let got = run(frames, |f| Ok(f.unwrap_or_default())).await;
        let err = got.last().unwrap().as_ref().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);

        // Whole arguments, or none, finish normally.
        let frames = vec![Ok(vec![
            call(0, Some("f"), "{\"a\""),
            call(0, None, ": 1}"),
            call(1, Some("g"), ""),
            done(),
        ])];
        let got = run(frames, |f| Ok(f.unwrap_or_default())).await;
        assert!(matches!(got.last(), Some(Ok(StreamEvent::Done { .. }))));
    }
}
