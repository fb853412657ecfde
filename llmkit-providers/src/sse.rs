//! An incremental Server-Sent Events parser over a byte stream.
//!
//! [`SseParser`] takes bytes in whatever chunks the network delivers — lines split across
//! chunks, a chunk boundary in the middle of a UTF-8 sequence, `\r\n`, `\r` or `\n` line ends —
//! and yields [`SseEvent`]s exactly as the WHATWG `text/event-stream` rules say: `:` comments
//! and keep-alives are skipped, multi-line `data:` fields are joined with `\n`, `event:`, `id:`
//! and `retry:` are kept. [`sse_stream`] adapts a `bytes_stream()` into a stream of events.
//!
//! A stream that ends in the middle of an event still yields that event (providers such as
//! Anthropic omit the final blank line); whether the *reply* was complete is the provider's
//! call, from its own terminal marker (`[DONE]`, `message_stop`, a finish reason), so the
//! caller can always tell a cut-off stream from a finished one.
//!
//! ```
//! use llmkit_providers::sse::SseParser;
//! let mut parser = SseParser::new();
//! let mut events = parser.push(b": keep-alive\r\nevent: delta\r\ndata: {\"a\":");
//! assert!(events.is_empty());
//! events.extend(parser.push(b"1}\r\n\r\ndata: [DONE]\n\n"));
//! assert_eq!(events[0].event.as_deref(), Some("delta"));
//! assert_eq!(events[0].data, "{\"a\":1}");
//! assert_eq!(events[1].data, "[DONE]");
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use futures::{Stream, StreamExt};
use llmkit_core::Error;

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `None` means the default type (`message`).
    pub event: Option<String>,
    /// The `data:` lines joined by `\n`.
    pub data: String,
    /// The last `id:` seen on the stream so far.
    pub id: Option<String>,
    /// A `retry:` reconnection time sent with this event.
    pub retry: Option<Duration>,
}

/// Splits bytes into lines on `\r\n`, `\r` or `\n`, across chunk boundaries. Lines are decoded
/// only once complete, so a UTF-8 sequence split between chunks survives intact.
#[derive(Debug, Default)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    /// The previous chunk ended with `\r`: a leading `\n` in the next chunk belongs to it.
    after_cr: bool,
}

impl LineSplitter {
    pub(crate) fn push(&mut self, mut chunk: &[u8], mut on_line: impl FnMut(&str)) {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while let Some(pos) = chunk.iter().position(|b| *b == b'\n' || *b == b'\r') {
            let (line, rest) = chunk.split_at(pos);
            let is_cr = rest.first() == Some(&b'\r');
            let mut rest = rest.get(1..).unwrap_or_default();
            if is_cr {
                match rest.first() {
                    Some(b'\n') => rest = rest.get(1..).unwrap_or_default(),
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if self.partial.is_empty() {
                on_line(&String::from_utf8_lossy(line));
            } else {
                self.partial.extend_from_slice(line);
                on_line(&String::from_utf8_lossy(&self.partial));
                self.partial.clear();
            }
            chunk = rest;
        }
        self.partial.extend_from_slice(chunk);
    }

    /// The unterminated last line, if any bytes are pending.
    pub(crate) fn finish(&mut self) -> Option<String> {
        self.after_cr = false;
        if self.partial.is_empty() {
            return None;
        }
        let line = String::from_utf8_lossy(&self.partial).into_owned();
        self.partial.clear();
        Some(line)
    }
}

/// The incremental parser. Feed it with [`push`](SseParser::push), then call
/// [`finish`](SseParser::finish) when the byte stream ends.
#[derive(Debug, Default)]
pub struct SseParser {
    lines: LineSplitter,
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    last_id: Option<String>,
    retry: Option<Duration>,
}

impl SseParser {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        let mut lines = std::mem::take(&mut self.lines);
        lines.push(chunk, |line| self.line(line, &mut out));
        self.lines = lines;
        out
    }

    /// Ends the stream: flushes a pending line and an event that lacked its final blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if let Some(line) = self.lines.finish() {
            self.line(&line, &mut out);
        }
        self.line("", &mut out);
        out.pop()
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        let line = if self.started {
            line
        } else {
            self.started = true;
            // A UTF-8 BOM may open the stream; the spec says to drop it. Done per line, not per
            // chunk, so a BOM split across chunks is handled too.
            line.strip_prefix('\u{feff}').unwrap_or(line)
        };
        if line.is_empty() {
            if self.has_data {
                let mut data = std::mem::take(&mut self.data);
                if data.ends_with('\n') {
                    data.pop();
                }
                out.push(SseEvent {
                    event: self.event.take(),
                    data,
                    id: self.last_id.clone(),
                    retry: self.retry.take(),
                });
            }
            self.event = None;
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            "id" if !value.contains('\0') => self.last_id = Some(value.to_owned()),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                self.retry = value.parse().ok().map(Duration::from_millis);
            }
            _ => {}
        }
    }
}

/// Adapts a byte stream (e.g. `reqwest::Response::bytes_stream()`) into a stream of
/// [`SseEvent`]s. A transport error from the byte stream is mapped with `map_err`, yielded, and
/// ends the stream.
pub fn sse_stream<S, B, E, F>(
    bytes: S,
    map_err: F,
) -> impl Stream<Item = Result<SseEvent, Error>> + Send
where
    S: Stream<Item = Result<B, E>> + Send + Unpin + 'static,
    B: AsRef<[u8]> + Send,
    E: Send,
    F: Fn(E) -> Error + Send + 'static,
{
    framed(
        bytes,
        map_err,
        SseParser::new(),
        |p, chunk| p.push(chunk),
        |p| p.finish(),
    )
}

/// The common driver of SSE and NDJSON: feeds chunks to a parser, queues what it yields, and
/// flushes it once at the end.
pub(crate) fn framed<S, B, E, F, P, T>(
    bytes: S,
    map_err: F,
    parser: P,
    push: fn(&mut P, &[u8]) -> Vec<T>,
    finish: fn(&mut P) -> Option<T>,
) -> impl Stream<Item = Result<T, Error>> + Send
where
    S: Stream<Item = Result<B, E>> + Send + Unpin + 'static,
    B: AsRef<[u8]> + Send,
    E: Send,
    F: Fn(E) -> Error + Send + 'static,
    P: Send + 'static,
    T: Send + 'static,
{
    struct State<S, F, P, T> {
        bytes: S,
        map_err: F,
        parser: P,
        queue: VecDeque<Result<T, Error>>,
        ended: bool,
    }
    let state = State {
        bytes,
        map_err,
        parser,
        queue: VecDeque::new(),
        ended: false,
    };
    futures::stream::unfold(state, move |mut st| async move {
        loop {
            if let Some(item) = st.queue.pop_front() {
                return Some((item, st));
            }
            if st.ended {
                return None;
            }
            match st.bytes.next().await {
                Some(Ok(chunk)) => {
                    let items = push(&mut st.parser, chunk.as_ref());
                    st.queue.extend(items.into_iter().map(Ok));
                }
                Some(Err(e)) => {
                    st.ended = true;
                    st.queue.push_back(Err((st.map_err)(e)));
                }
                None => {
                    st.ended = true;
                    if let Some(last) = finish(&mut st.parser) {
                        st.queue.push_back(Ok(last));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c));
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn fields_comments_and_multiline_data() {
        let input = b"\xEF\xBB\xBF: hello\nretry: 1500\nid: 7\nevent: update\ndata: line one\ndata:line two\n\n: ping\n\ndata\n\nevent: ignored-without-data\n\ndata: x\n\n";
        let events = parse_all(&[input]);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0].event.as_deref(), Some("update"));
        assert_eq!(events[0].data, "line one\nline two");
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(events[0].retry, Some(Duration::from_millis(1500)));
        assert_eq!(events[1].data, "");
        assert_eq!(events[1].event, None);
        // The id persists; retry belongs to the event it came with.
        assert_eq!(events[2].id.as_deref(), Some("7"));
        assert_eq!(events[2].retry, None);
        assert_eq!(events[2].event, None);
    }

    #[test]
    fn line_endings() {
        for input in [
            &b"data: a\r\n\r\ndata: b\r\n\r\n"[..],
            b"data: a\r\rdata: b\r\r",
            b"data: a\n\ndata: b\n\n",
            b"data: a\r\n\ndata: b\n\r\n",
        ] {
            let events = parse_all(&[input]);
            let data: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
            assert_eq!(data, ["a", "b"], "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn cr_at_chunk_end_then_lf() {
        let events = parse_all(&[b"data: a\r", b"\n\r", b"\ndata: b\n", b"\n"]);
        let data: Vec<_> = events.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a", "b"]);
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let text = "data: héllo wörld 🚀\n\n".as_bytes();
        let split = text.iter().position(|b| *b == 0xF0).unwrap() + 2;
        let events = parse_all(&[&text[..split], &text[split..]]);
        assert_eq!(events[0].data, "héllo wörld 🚀");
    }

    #[test]
    fn unterminated_last_event_is_flushed() {
        let events = parse_all(&[b"data: one\n\ndata: two"]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].data, "two");
        assert!(parse_all(&[b": only a comment"]).is_empty());
    }

    #[tokio::test]
    async fn stream_adapter_reports_transport_error_and_ends() {
        let chunks: Vec<Result<&'static [u8], &'static str>> = vec![
            Ok(b"data: a\n\nda"),
            Ok(b"ta: b\n\n"),
            Err("reset"),
            Ok(b"data: c\n\n"),
        ];
        let s = sse_stream(futures::stream::iter(chunks), |e| {
            Error::new(llmkit_core::ErrorKind::Transport, e)
        });
        let items: Vec<_> = s.collect().await;
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].as_ref().unwrap().data, "b");
        assert_eq!(
            items[2].as_ref().unwrap_err().kind(),
            llmkit_core::ErrorKind::Transport
        );
    }

    fn split_points(len: usize, cuts: &[usize]) -> Vec<usize> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
        points.push(0);
        points.push(len);
        points.sort_unstable();
        points.dedup();
        points
    }

    proptest! {
        #[test]
        fn splitting_never_changes_events(
            events in proptest::collection::vec(("[a-z]{0,6}", "[ -~é🚀]{0,20}", proptest::bool::ANY), 0..6),
            sep in prop_oneof![Just("\n"), Just("\r\n"), Just("\r")],
            cuts in proptest::collection::vec(0usize..400, 0..8),
        ) {
            let mut input = String::new();
            for (name, data, comment) in &events {
                if *comment { input.push_str(": keep-alive"); input.push_str(sep); }
                if !name.is_empty() { input.push_str("event: "); input.push_str(name); input.push_str(sep); }
                for line in data.split('\n') { input.push_str("data: "); input.push_str(line); input.push_str(sep); }
                input.push_str(sep);
            }
            let bytes = input.as_bytes();
            let whole = parse_all(&[bytes]);
            let points = split_points(bytes.len(), &cuts);
            let chunks: Vec<&[u8]> = points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
            prop_assert_eq!(&parse_all(&chunks), &whole);
            prop_assert_eq!(whole.len(), events.len());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), cut in 0usize..300) {
            let cut = cut.min(bytes.len());
            let whole = parse_all(&[&bytes]);
            let split = parse_all(&[&bytes[..cut], &bytes[cut..]]);
            prop_assert_eq!(whole, split);
        }
    }
}
