//! Store files: written atomically, read with errors that name the path, and the error a
//! poisoned store lock becomes (stores refuse rather than serve from an index a panic may have
//! left half-written).

use std::path::Path;

use llmkit_core::{Error, ErrorKind, Result};

pub(crate) fn poisoned() -> Error {
    Error::new(
        ErrorKind::Other,
        "vector store lock poisoned by a panicking thread",
    )
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        ErrorKind::Other,
        format!("vector store file {}: {e}", path.display()),
    )
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`: a crash
/// mid-write leaves the previous store intact, never half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| io_error(path, &e))
}

/// Reads a store file; the error names the path.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| io_error(path, &e))
}
