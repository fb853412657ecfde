//! Glue from a stream of parsed frames (SSE events, NDJSON lines, from the shared parsers in
//! `sse.rs` / `ndjson.rs`) to a [`ChatStream`], through a provider's stateful converter.

use std::collections::VecDeque;

use futures::{Stream, StreamExt};
use llmkit_core::{ChatStream, Result, StreamEvent};

/// Turns `frames` into a [`ChatStream`].
///
/// `convert(Some(frame))` handles one frame; `convert(None)` runs once when the frames end, for
/// providers whose final events depend on having seen everything (Gemini holds usage back).
/// The stream stops after the first error or after a [`StreamEvent::Done`]: nothing a provider
/// sends after its terminal marker can change the reply.
pub(crate) fn chat_stream<S, T, F>(frames: S, convert: F) -> ChatStream
where
    S: Stream<Item = Result<T>> + Send + 'static,
    T: Send + 'static,
    F: FnMut(Option<T>) -> Result<Vec<StreamEvent>> + Send + 'static,
{
    struct State<S, F> {
        frames: std::pin::Pin<Box<S>>,
        convert: F,
        pending: VecDeque<Result<StreamEvent>>,
        finished: bool,
    }

    fn absorb<S, F>(state: &mut State<S, F>, out: Result<Vec<StreamEvent>>) {
        match out {
            Ok(events) => {
                for e in events {
                    let done = matches!(e, StreamEvent::Done { .. });
                    state.pending.push_back(Ok(e));
                    if done {
                        state.finished = true;
                        return;
                    }
                }
            }
            Err(e) => {
                state.pending.push_back(Err(e));
                state.finished = true;
            }
        }
    }

    let state = State {
        frames: Box::pin(frames),
        convert,
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
                    absorb(&mut state, out);
                }
                Some(Err(e)) => {
                    state.pending.push_back(Err(e));
                    state.finished = true;
                }
                None => {
                    let out = (state.convert)(None);
                    absorb(&mut state, out);
                    state.finished = true;
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmkit_core::{Error, ErrorKind, FinishReason};

    fn text(t: &str) -> StreamEvent {
        StreamEvent::TextDelta { text: t.into() }
    }

    #[tokio::test]
    async fn stops_after_done_and_after_errors() {
        let frames = futures::stream::iter(vec![Ok(1), Ok(2), Ok(3)]);
        let s = chat_stream(frames, |f| {
            Ok(match f {
                Some(1) => vec![text("a")],
                Some(2) => vec![StreamEvent::Done {
                    finish_reason: FinishReason::Stop,
                }],
                Some(_) => vec![text("after done")],
                None => vec![text("end")],
            })
        });
        let got: Vec<_> = s.collect().await;
        assert_eq!(got.len(), 2);

        let frames = futures::stream::iter(vec![
            Ok(1),
            Err(Error::new(ErrorKind::Transport, "reset")),
            Ok(2),
        ]);
        let s = chat_stream(frames, |f| {
            Ok(f.map(|_| vec![text("x")]).unwrap_or_default())
        });
        let got: Vec<_> = s.collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].as_ref().unwrap_err().kind(), ErrorKind::Transport);
    }

    #[tokio::test]
    async fn end_hook_runs_once_at_the_end() {
        let frames = futures::stream::iter(vec![Ok::<_, Error>("a")]);
        let s = chat_stream(frames, |f| {
            Ok(match f {
                Some(t) => vec![text(t)],
                None => vec![text("end")],
            })
        });
        let got: Vec<_> = s.map(|e| e.unwrap()).collect().await;
        assert_eq!(got, vec![text("a"), text("end")]);
    }
}
