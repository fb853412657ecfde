//! Documents and text cleaning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

/// Hex SHA-256 of some text: the identity of a document's or chunk's content.
pub fn content_hash(text: &str) -> String {
    llmkit_core::hex::encode(Sha256::digest(text.as_bytes()))
}

/// A source document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Stable id chosen by the application (a path, a URL, a database key).
    pub id: String,
    /// Where it came from (for citations).
    pub source: String,
    /// The (cleaned) text; chunk offsets point into it.
    pub text: String,
    /// Free-form metadata, filterable at search time.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// SHA-256 of `text`: unchanged documents are skipped when re-indexing.
    pub content_hash: String,
}

impl Document {
    /// A document whose source is its id.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        let id = id.into();
        let text = text.into();
        Document {
            source: id.clone(),
            content_hash: content_hash(&text),
            id,
            text,
            metadata: BTreeMap::new(),
        }
    }

    /// Sets the source.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }

    /// Adds a metadata entry.
    #[must_use]
    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// A document from Markdown or HTML: HTML is reduced to its visible text with headings kept
    /// as `#` lines, so the chunker still sees the structure. Then the text is [`clean`]ed.
    pub fn from_markup(id: impl Into<String>, markup: &str) -> Self {
        let looks_html = markup.trim_start().starts_with('<');
        let text = if looks_html {
            html_to_text(markup)
        } else {
            markup.to_owned()
        };
        Document::new(id, clean(&text))
    }
}

/// Cleans messy real-world text: Unicode NFKC normalization, control characters removed (tabs
/// and newlines kept), words hyphenated across line breaks joined, runs of spaces collapsed,
/// and lines that repeat on many pages (running headers and footers) dropped.
pub fn clean(text: &str) -> String {
    let normalized: String = text
        .nfkc()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t'))
        .collect();
    let dehyphenated = dehyphenate(&normalized);
    let lines: Vec<String> = dehyphenated
        .lines()
        .map(|l| {
            let mut out = String::with_capacity(l.len());
            let mut last_space = false;
            for c in l.trim_end().chars() {
                let space = c == ' ' || c == '\t';
                if !(space && last_space) {
                    out.push(if space { ' ' } else { c });
                }
                last_space = space;
            }
            out
        })
        .collect();
    let repeated = repeated_boilerplate(&lines);
    let mut out = String::with_capacity(dehyphenated.len());
    let mut blank_run = 0;
    for line in lines.iter().filter(|l| !repeated.contains(l.trim())) {
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_owned()
}

/// Joins `exam-\nple` into `example` (a lower-case letter must follow, so real hyphenated
/// compounds at a line end such as "state-\nOf" are left alone).
fn dehyphenate(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let prev_alpha = i > 0 && chars.get(i - 1).is_some_and(|p| p.is_alphabetic());
        if c == '-' && prev_alpha && chars.get(i + 1) == Some(&'\n') {
            let mut j = i + 2;
            while chars.get(j).is_some_and(|c| *c == ' ') {
                j += 1;
            }
            if chars.get(j).is_some_and(|n| n.is_lowercase()) {
                i = j;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Short lines that occur at least three times and on at least a fifth of the "pages" (form-feed
/// or blank-line separated blocks) look like running headers/footers ("Page 3 of 9" differs, but
/// "ACME CONFIDENTIAL" repeats).
fn repeated_boilerplate(lines: &[String]) -> std::collections::HashSet<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for l in lines {
        let t = l.trim();
        if !t.is_empty() && t.len() <= 80 {
            *counts.entry(t).or_default() += 1;
        }
    }
    let blocks = lines.iter().filter(|l| l.trim().is_empty()).count() + 1;
    counts
        .into_iter()
        .filter(|(_, n)| *n >= 3 && *n * 5 >= blocks)
        .map(|(t, _)| t.to_owned())
        .collect()
}

/// Jaccard similarity of the word 3-shingles of two texts (0..=1): near-duplicates score high.
pub fn shingle_similarity(a: &str, b: &str) -> f64 {
    let shingles = |t: &str| -> std::collections::HashSet<String> {
        let words: Vec<String> = t
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect();
        if words.len() < 3 {
            return std::iter::once(words.join(" ")).collect();
        }
        words.windows(3).map(|w| w.join(" ")).collect()
    };
    let (sa, sb) = (shingles(a), shingles(b));
    let inter = sa.intersection(&sb).count();
    let union = sa.union(&sb).count();
    if union == 0 {
        1.0
    } else {
        inter as f64 / union as f64
    }
}

/// Ids of documents that nearly duplicate an earlier one (similarity at or above `threshold`),
/// paired with the id they duplicate.
pub fn near_duplicates(docs: &[Document], threshold: f64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if let Some(orig) = docs
            .iter()
            .take(i)
            .find(|e| shingle_similarity(&e.text, &d.text) >= threshold)
        {
            out.push((d.id.clone(), orig.id.clone()));
        }
    }
    out
}

/// Visible text of an HTML page: tags removed, `script`/`style` skipped, block elements become
/// line breaks, `h1`..`h6` become Markdown headings, common entities decoded.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    let mut skip_until: Option<String> = None;
    while let Some(lt) = rest.find('<') {
        let (text, tail) = rest.split_at(lt);
        if skip_until.is_none() {
            out.push_str(&decode_entities(text));
        }
        let Some(gt) = tail.find('>') else {
            rest = "";
            break;
        };
        let tag = tail.get(1..gt).unwrap_or("").trim().to_lowercase();
        rest = tail.get(gt + 1..).unwrap_or("");
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_alphanumeric())
            .collect();
        if let Some(end) = &skip_until {
            if tag.starts_with('/') && &name == end {
                skip_until = None;
            }
            continue;
        }
        match name.as_str() {
            "script" | "style" | "head" if !tag.starts_with('/') => skip_until = Some(name),
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" if !tag.starts_with('/') => {
                let level = name[1..].parse::<usize>().unwrap_or(1);
                out.push_str("\n\n");
                out.push_str(&"#".repeat(level));
                out.push(' ');
            }
            "p" | "div" | "li" | "tr" | "section" | "article" | "h1" | "h2" | "h3" | "h4"
            | "h5" | "h6" | "ul" | "ol" | "table" => out.push_str("\n\n"),
            "br" => out.push('\n'),
            _ => {}
        }
    }
    if skip_until.is_none() {
        out.push_str(&decode_entities(rest));
    }
    out
}

fn decode_entities(text: &str) -> String {
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
