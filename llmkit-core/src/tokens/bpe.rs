//! The exact encoders: tiktoken-rs with the vocabularies it ships.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;
use tiktoken_rs::tokenizer::{Tokenizer, get_tokenizer};

use super::Encoding;

/// The encoding tiktoken uses for `model`, when it is one llmkit counts exactly.
pub(super) fn encoding_for_model(model: &str) -> Option<Encoding> {
    match get_tokenizer(model)? {
        Tokenizer::O200kBase => Some(Encoding::O200kBase),
        Tokenizer::Cl100kBase => Some(Encoding::Cl100kBase),
        // Older encodings (GPT-3, Codex) and gpt-oss's harmony format: approximate.
        _ => None,
    }
}

/// The encoder, loaded once per process. `None` only if the bundled vocabulary fails to parse,
/// which would be a broken build of tiktoken-rs: callers then fall back to the approximation
/// rather than panic.
pub(super) fn load(encoding: Encoding) -> Option<&'static CoreBPE> {
    static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();
    static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();
    let cell = match encoding {
        Encoding::Cl100kBase => &CL100K,
        Encoding::O200kBase => &O200K,
    };
    cell.get_or_init(|| {
        let loaded = match encoding {
            Encoding::Cl100kBase => tiktoken_rs::cl100k_base(),
            Encoding::O200kBase => tiktoken_rs::o200k_base(),
        };
        match loaded {
            Ok(bpe) => Some(bpe),
            Err(e) => {
                tracing::warn!(encoding = encoding.name(), error = %e, "llmkit.tokens.vocabulary_failed");
                None
            }
        }
    })
    .as_ref()
}
