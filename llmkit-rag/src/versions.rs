//! Where an [`Index`](crate::Index) keeps which version of each document it indexed, so a
//! process restarted over a persistent vector store re-embeds only what changed.
//!
//! The index compares each document's content hash with the stored one: equal means skip. In
//! memory that table is lost on restart, and the next `sync` re-embeds the whole corpus (and
//! pays for it). Give the index a persistent [`DocumentVersions`] with
//! [`Index::with_document_versions`](crate::Index::with_document_versions): it loads the table
//! before its first change and writes each document's row after the document's vectors are
//! stored (so a crash in between re-embeds that document, never skips it).

use std::collections::BTreeMap;

use async_trait::async_trait;
use llmkit_core::Result;
use serde::{Deserialize, Serialize};

/// What the index remembers about one indexed document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentVersion {
    /// The document id.
    pub doc_id: String,
    /// Its content hash when indexed ([`Document::content_hash`](crate::Document)).
    pub hash: String,
    /// When it was indexed, unix milliseconds.
    pub indexed_ms: u64,
    /// Its metadata.
    pub metadata: BTreeMap<String, String>,
}

/// Persists [`DocumentVersion`]s. Required: all three methods; implementations must make
/// `save` an upsert by `doc_id`.
#[async_trait]
pub trait DocumentVersions: Send + Sync {
    /// Every stored version.
    async fn load(&self) -> Result<Vec<DocumentVersion>>;
    /// Stores or replaces one document's version.
    async fn save(&self, version: &DocumentVersion) -> Result<()>;
    /// Forgets a document.
    async fn remove(&self, doc_id: &str) -> Result<()>;
}
