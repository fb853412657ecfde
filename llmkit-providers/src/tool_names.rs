//! Finds the tool name a tool result answers, for providers whose wire format names the
//! function in the result (Gemini `functionResponse.name`, Ollama `tool_name`) while llmkit's
//! `ToolResult` only carries the call id.

use llmkit_core::Message;

/// The name of the latest tool call with id `call_id` in `messages[..before]`.
///
/// Searching backwards from the result makes repeated ids (some providers number calls per
/// turn) resolve to the nearest call, which is the one being answered.
pub(crate) fn tool_name_for_call<'a>(
    messages: &'a [Message],
    before: usize,
    call_id: &str,
) -> Option<&'a str> {
    messages
        .get(..before)?
        .iter()
        .rev()
        .flat_map(|m| m.tool_calls().collect::<Vec<_>>().into_iter().rev())
        .find(|c| c.id == call_id)
        .map(|c| c.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmkit_core::ToolCall;

    fn call(id: &str, name: &str) -> ToolCall {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: serde_json::json!({}),
        }
    }

    #[test]
    fn nearest_earlier_call_wins() {
        let msgs = vec![
            Message::assistant_tool_calls(None, vec![call("c0", "first")]),
            Message::tool_result("c0", "1"),
            Message::assistant_tool_calls(None, vec![call("c0", "second"), call("c1", "third")]),
            Message::tool_result("c0", "2"),
        ];
        assert_eq!(tool_name_for_call(&msgs, 1, "c0"), Some("first"));
        assert_eq!(tool_name_for_call(&msgs, 3, "c0"), Some("second"));
        assert_eq!(tool_name_for_call(&msgs, 3, "c1"), Some("third"));
        assert_eq!(tool_name_for_call(&msgs, 3, "nope"), None);
        assert_eq!(tool_name_for_call(&msgs, 99, "c0"), None);
    }
}
