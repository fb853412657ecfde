//! Test-only helpers: locating the shared third-party fixtures.
#![allow(clippy::panic)]

use std::path::PathBuf;

/// The shared provider fixtures folder (`../shared/fixtures/providers` next to the workspace,
/// or `$LLMKIT_SHARED_FIXTURES`), or `None` after printing a loud skip notice. The shared
/// folder is not part of the repository: tests that replay it must not fail without it.
pub(crate) fn shared_fixtures(provider: &str) -> Option<PathBuf> {
    let base = std::env::var_os("LLMKIT_SHARED_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/providers")
        });
    let dir = base.join(provider);
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: ../shared/fixtures not found ({} missing; set LLMKIT_SHARED_FIXTURES)",
            dir.display()
        );
        None
    }
}

/// Reads one shared fixture file.
pub(crate) fn read(dir: &std::path::Path, name: &str) -> String {
    let path = dir.join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[cfg(any(feature = "anthropic", feature = "gemini"))]
/// Test-only: the `data:` payloads of an SSE body (the providers use the shared incremental
/// parser; this only feeds the pure converters).
pub(crate) fn sse_data(raw: &str) -> Vec<String> {
    raw.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.trim().to_owned())
        .collect()
}
