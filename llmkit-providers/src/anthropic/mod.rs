//! Anthropic Messages API provider.

#[allow(dead_code)]
pub(crate) mod cache;
// Temporary until the HTTP client (next commit) calls the converters.
#[allow(dead_code)]
pub(crate) mod wire;

pub use cache::{CacheTtl, min_cacheable_tokens};

#[cfg(test)]
mod tests;
