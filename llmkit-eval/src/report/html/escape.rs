//! The one escaping function of the HTML report.

use std::fmt::Write;

/// Escapes text for HTML text and attribute values alike: `& < > " '` become entities, and
/// invisible characters that can disguise text (bidirectional overrides such as U+202E,
/// zero-width spaces, control characters other than tab and newline) are shown as `[U+XXXX]`,
/// so a reviewer sees exactly what a model wrote.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            c if is_hidden(c) => {
                let _ = write!(out, "[U+{:04X}]", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{2060}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralizes_markup_quotes_and_bidi_controls() {
        assert_eq!(
            esc("<a href='x'>\"&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&quot;&amp;&quot;&lt;/a&gt;"
        );
        assert_eq!(esc("abc\u{202E}def"), "abc[U+202E]def");
        assert_eq!(esc("nul\0\u{1b}"), "nul[U+0000][U+001B]");
        assert_eq!(esc("line\n\ttab é 👩‍💻"), "line\n\ttab é 👩‍💻");
    }
}
