//! Loading documents from files and folders.
//!
//! The format follows the extension: `.txt` (and `.text`) as plain text, `.md` / `.markdown`
//! as Markdown, `.html` / `.htm` reduced to visible text with headings kept as `#` lines. All
//! three are cleaned with [`clean`]. A document's id is its path relative to the folder
//! (with `/` separators on every platform, so ids stay stable across machines), its source is
//! the path as given, and its metadata records `path` and `format`.
//!
//! ```
//! # fn main() -> llmkit_core::Result<()> {
//! use llmkit_rag::load::load_dir;
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::create_dir(dir.path().join("policies")).unwrap();
//! std::fs::write(dir.path().join("policies/refunds.md"), "# Refunds\n\nWithin 30 days.").unwrap();
//! std::fs::write(dir.path().join("notes.bin"), [0u8, 159, 146, 150]).unwrap();
//! let docs = load_dir(dir.path(), "**/*.md")?;
//! assert_eq!(docs.len(), 1);
//! assert_eq!(docs[0].id, "policies/refunds.md");
//! assert_eq!(docs[0].metadata["format"], "markdown");
//! # Ok(()) }
//! ```

use std::path::Path;

use globset::{Glob, GlobMatcher};
use llmkit_core::{Error, ErrorKind, Result};

use crate::document::{Document, clean, html_to_text};

/// A supported file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Plain text.
    Text,
    /// Markdown (kept as is: the chunker reads its headings).
    Markdown,
    /// HTML, reduced to its visible text.
    Html,
}

impl Format {
    /// The format for a path's extension (case-insensitive), if supported.
    pub fn of(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "txt" | "text" => Some(Format::Text),
            "md" | "markdown" => Some(Format::Markdown),
            "html" | "htm" => Some(Format::Html),
            _ => None,
        }
    }

    /// The name recorded in the `format` metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Markdown => "markdown",
            Format::Html => "html",
        }
    }
}

/// Builds a document from text in `format`.
pub fn parse(id: impl Into<String>, text: &str, format: Format) -> Document {
    let body = match format {
        Format::Html => html_to_text(text),
        Format::Text | Format::Markdown => text.to_owned(),
    };
    Document::new(id, clean(&body)).with_meta("format", format.as_str())
}

fn load_error(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!("cannot load {}: {what}", path.display()),
    )
}

/// Loads one file; its id is the path as given.
///
/// # Errors
/// [`ErrorKind::InvalidRequest`] naming the path when the file cannot be read, is not UTF-8,
/// or has an extension that is not a supported [`Format`].
pub fn load_file(path: &Path) -> Result<Document> {
    load_as(path, &path.to_string_lossy().replace('\\', "/"))
}

fn load_as(path: &Path, id: &str) -> Result<Document> {
    let format = Format::of(path).ok_or_else(|| {
        load_error(
            path,
            "unsupported extension (expected .txt, .md, .markdown, .html or .htm)",
        )
    })?;
    let bytes = std::fs::read(path).map_err(|e| load_error(path, e))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        load_error(
            path,
            format!(
                "not UTF-8 (invalid byte at offset {}); convert it first",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    Ok(parse(id, &text, format)
        .with_source(path.to_string_lossy())
        .with_meta("path", id))
}

/// Loads every file under `dir` whose path relative to `dir` matches `pattern` (a glob:
/// `**/*.md`, `policies/*.{md,html}`; `**` crosses folders) and has a supported extension,
/// in path order. Unsupported files that match are skipped, so `**/*` loads everything
/// loadable; a matching file that cannot be read or is not UTF-8 is an error, never silently
/// dropped.
///
/// # Errors
/// [`ErrorKind::InvalidRequest`] for a bad pattern, an unreadable folder or file, or a file
/// that is not UTF-8, naming the path.
pub fn load_dir(dir: &Path, pattern: &str) -> Result<Vec<Document>> {
    let matcher: GlobMatcher = Glob::new(pattern)
        .map_err(|e| {
            Error::new(
                ErrorKind::InvalidRequest,
                format!("bad glob pattern `{pattern}`: {e}"),
            )
        })?
        .compile_matcher();
    let mut docs = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dir).to_path_buf();
            load_error(&path, e)
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(dir) else {
            continue;
        };
        if !matcher.is_match(relative) || Format::of(entry.path()).is_none() {
            continue;
        }
        let id = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        docs.push(load_as(entry.path(), &id)?);
    }
    Ok(docs)
}
