//! An incremental newline-delimited JSON parser (Ollama's native streaming format).
//!
//! [`NdjsonParser`] splits bytes into lines across chunk boundaries (tolerating `\r\n` and a
//! UTF-8 sequence split between chunks), skips blank lines and parses each line into `T`. A
//! line that is not valid JSON for `T` is an [`ErrorKind::InvalidResponse`] item, not a panic;
//! [`ndjson_stream`] adapts a `bytes_stream()`. As with SSE, whether the reply finished is the
//! provider's call (Ollama's `"done": true`), so a stream that ends early is visible.
//!
//! ```
//! use llmkit_providers::ndjson::NdjsonParser;
//! let mut parser = NdjsonParser::<serde_json::Value>::new();
//! let mut items = parser.push(b"{\"a\":1}\n{\"a\"");
//! items.extend(parser.push(b":2}\n"));
//! let values: Vec<_> = items.into_iter().map(|r| r.unwrap()["a"].as_i64().unwrap()).collect();
//! assert_eq!(values, [1, 2]);
//! ```

use std::marker::PhantomData;

use futures::Stream;
use llmkit_core::{Error, ErrorKind};
use serde::de::DeserializeOwned;

use crate::sse::{LineSplitter, framed};

/// The incremental parser; yields one `Result<T>` per non-blank line.
#[derive(Debug)]
pub struct NdjsonParser<T> {
    lines: LineSplitter,
    _item: PhantomData<fn() -> T>,
}

impl<T> Default for NdjsonParser<T> {
    fn default() -> Self {
        NdjsonParser {
            lines: LineSplitter::default(),
            _item: PhantomData,
        }
    }
}

impl<T: DeserializeOwned> NdjsonParser<T> {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk; returns the items of the lines it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Result<T, Error>> {
        let mut out = Vec::new();
        self.lines.push(chunk, |line| {
            if let Some(item) = parse_line(line) {
                out.push(item);
            }
        });
        out
    }

    /// Ends the stream: parses a last line that lacked its newline.
    pub fn finish(&mut self) -> Option<Result<T, Error>> {
        self.lines.finish().and_then(|line| parse_line(&line))
    }
}

fn parse_line<T: DeserializeOwned>(line: &str) -> Option<Result<T, Error>> {
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    Some(serde_json::from_str(line).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("stream line is not the expected json: {e}"),
        )
        .with_body_excerpt(line)
    }))
}

/// Adapts a byte stream into a stream of parsed items. A transport error is mapped with
/// `map_err`, yielded, and ends the stream.
pub fn ndjson_stream<T, S, B, E, F>(
    bytes: S,
    map_err: F,
) -> impl Stream<Item = Result<T, Error>> + Send
where
    T: DeserializeOwned + Send + 'static,
    S: Stream<Item = Result<B, E>> + Send + Unpin + 'static,
    B: AsRef<[u8]> + Send,
    E: Send,
    F: Fn(E) -> Error + Send + 'static,
{
    futures::StreamExt::map(
        framed(
            bytes,
            map_err,
            NdjsonParser::<T>::new(),
            NdjsonParser::push,
            NdjsonParser::finish,
        ),
        // `framed` wraps every parser item in `Ok`; parse failures live one level down.
        |item| item.and_then(|inner| inner),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use proptest::prelude::*;
    use serde_json::Value;

    fn parse_all(chunks: &[&[u8]]) -> Vec<Result<Value, ErrorKind>> {
        let mut p = NdjsonParser::<Value>::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(p.push(c));
        }
        out.extend(p.finish());
        out.into_iter().map(|r| r.map_err(|e| e.kind())).collect()
    }

    #[test]
    fn blank_lines_crlf_and_unterminated_last_line() {
        let items = parse_all(&[b"{\"n\":1}\r\n\n  \n{\"n\":2}\n{\"n\":3}"]);
        let ns: Vec<i64> = items
            .iter()
            .map(|r| r.as_ref().unwrap()["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, [1, 2, 3]);
    }

    #[test]
    fn bad_line_is_an_error_item_and_parsing_continues() {
        let items = parse_all(&[b"{\"n\":1}\nnot json\n{\"n\":2}\n"]);
        assert_eq!(items.len(), 3);
        assert_eq!(items[1], Err(ErrorKind::InvalidResponse));
        assert!(items[2].is_ok());
    }

    #[tokio::test]
    async fn stream_adapter() {
        let chunks: Vec<Result<Vec<u8>, ()>> = vec![
            Ok(b"{\"t\":\"h\xC3".to_vec()),
            Ok(b"\xA9\"}\n{\"t\":\"x\"}".to_vec()),
        ];
        let items: Vec<Result<Value, Error>> = ndjson_stream(futures::stream::iter(chunks), |_| {
            Error::new(ErrorKind::Transport, "x")
        })
        .collect()
        .await;
        assert_eq!(items[0].as_ref().unwrap()["t"], "hé");
        assert_eq!(items[1].as_ref().unwrap()["t"], "x");
    }

    proptest! {
        #[test]
        fn splitting_never_changes_items(
            texts in proptest::collection::vec("[ -~é🚀]{0,12}", 0..6),
            crlf in proptest::bool::ANY,
            cuts in proptest::collection::vec(0usize..300, 0..6),
        ) {
            let sep = if crlf { "\r\n" } else { "\n" };
            let mut input = String::new();
            for t in &texts {
                input.push_str(&serde_json::json!({ "t": t }).to_string());
                input.push_str(sep);
            }
            let bytes = input.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.extend([0, bytes.len()]);
            points.sort_unstable();
            points.dedup();
            let chunks: Vec<&[u8]> = points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
            let whole = parse_all(&[bytes]);
            prop_assert_eq!(parse_all(&chunks), whole.clone());
            let got: Vec<String> = whole.into_iter().map(|r| r.unwrap()["t"].as_str().unwrap().to_owned()).collect();
            prop_assert_eq!(got, texts);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300), cut in 0usize..300) {
            let cut = cut.min(bytes.len());
            prop_assert_eq!(parse_all(&[&bytes]), parse_all(&[&bytes[..cut], &bytes[cut..]]));
        }
    }
}
