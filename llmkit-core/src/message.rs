//! Messages, content parts, tools and tool calls: the provider-neutral conversation vocabulary.

use serde::{Deserialize, Serialize};

/// Who authored a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions from the application: the privileged position. Never put untrusted text here.
    System,
    /// The end user (untrusted).
    User,
    /// The model.
    Assistant,
    /// The result of a tool call, sent back to the model.
    Tool,
}

impl Role {
    /// The lower-case wire name (`system`, `user`, `assistant`, `tool`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    /// A URL the provider fetches itself.
    Url {
        /// The image address.
        url: String,
    },
    /// Inline bytes, base64-encoded.
    Base64 {
        /// MIME type such as `image/png`.
        media_type: String,
        /// Base64 data without a `data:` prefix.
        data: String,
    },
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentPart {
    /// Plain text.
    Text {
        /// The text.
        text: String,
        /// Marks the end of a prefix that providers with explicit prompt caching may cache
        /// (becomes an Anthropic `cache_control` breakpoint; OpenAI-style providers cache stable
        /// prefixes automatically and ignore it).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        cache_breakpoint: bool,
    },
    /// An image.
    Image {
        /// Where the image is.
        source: ImageSource,
    },
    /// A tool call made by the assistant (only in assistant messages).
    ToolCall(ToolCall),
    /// The result of a tool call (only in tool messages).
    ToolResult(ToolResult),
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text {
            text: text.into(),
            cache_breakpoint: false,
        }
    }

    /// The text of a text part, `None` for other parts.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ContentPart::Text { text, .. } => Some(text),
            _ => None,
        }
    }
}

/// A call the model asked the application to make.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for the call, echoed back in the [`ToolResult`].
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// Arguments as JSON. Untrusted: validate before acting (see llmkit-guard's action gate).
    pub arguments: serde_json::Value,
}

/// The outcome of a tool call, returned to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the [`ToolCall`] this answers.
    pub call_id: String,
    /// The result, usually JSON or text.
    pub content: String,
    /// Whether the tool failed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
}

/// One message in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The author.
    pub role: Role,
    /// The content, in order.
    pub content: Vec<ContentPart>,
    /// Optional participant name (some providers use it to tell users apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl Message {
    /// A message of `role` holding one text part.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            content: vec![ContentPart::text(text)],
            name: None,
        }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Message::new(Role::System, text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Message::new(Role::User, text)
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Message::new(Role::Assistant, text)
    }

    /// An assistant message carrying tool calls (and optional text before them).
    pub fn assistant_tool_calls(text: Option<String>, calls: Vec<ToolCall>) -> Self {
        let mut content = Vec::with_capacity(calls.len() + 1);
        if let Some(t) = text.filter(|t| !t.is_empty()) {
            content.push(ContentPart::text(t));
        }
        content.extend(calls.into_iter().map(ContentPart::ToolCall));
        Message {
            role: Role::Assistant,
            content,
            name: None,
        }
    }

    /// A tool message answering the call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            role: Role::Tool,
            content: vec![ContentPart::ToolResult(ToolResult {
                call_id: call_id.into(),
                content: content.into(),
                is_error: false,
            })],
            name: None,
        }
    }

    /// Adds an image part.
    #[must_use]
    pub fn with_image(mut self, source: ImageSource) -> Self {
        self.content.push(ContentPart::Image { source });
        self
    }

    /// Marks the last text part as the end of a cacheable prefix (see
    /// [`ContentPart::Text::cache_breakpoint`]).
    #[must_use]
    pub fn cacheable(mut self) -> Self {
        if let Some(ContentPart::Text {
            cache_breakpoint, ..
        }) = self
            .content
            .iter_mut()
            .rev()
            .find(|p| matches!(p, ContentPart::Text { .. }))
        {
            *cache_breakpoint = true;
        }
        self
    }

    /// All text parts joined with no separator.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let Some(t) = part.as_text() {
                out.push_str(t);
            }
        }
        out
    }

    /// The tool calls in this message.
    pub fn tool_calls(&self) -> impl Iterator<Item = &ToolCall> {
        self.content.iter().filter_map(|p| match p {
            ContentPart::ToolCall(c) => Some(c),
            _ => None,
        })
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// Name the model uses to call it.
    pub name: String,
    /// What it does; the model reads this to decide when to call it.
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: serde_json::Value,
    /// Ask the provider to enforce the schema strictly where it can.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
}

impl ToolDefinition {
    /// A tool with a name, description and argument schema.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        ToolDefinition {
            name: name.into(),
            description: description.into(),
            parameters,
            strict: false,
        }
    }
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides (the provider default).
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call some tool.
    Required,
    /// The model must call this tool.
    Tool {
        /// The tool's name.
        name: String,
    },
}
