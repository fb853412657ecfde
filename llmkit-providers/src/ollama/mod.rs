//! Ollama native API provider (`/api/chat`, `/api/embed`).

// Temporary until the HTTP client (next commit) calls the converters.
#[allow(dead_code)]
pub(crate) mod wire;

#[cfg(test)]
mod tests;
