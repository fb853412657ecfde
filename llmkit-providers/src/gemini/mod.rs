//! Google Gemini provider, via AI Studio (API key) or Vertex AI (bearer token).

#[allow(dead_code)]
pub(crate) mod schema;
// Temporary until the HTTP client (next commit) calls the converters.
#[allow(dead_code)]
pub(crate) mod wire;

#[cfg(test)]
mod tests;
