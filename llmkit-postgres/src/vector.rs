//! [`PgVectorStore`]: a RAG [`VectorStore`] on pgvector, with PostgreSQL full-text ranking as
//! the lexical half of hybrid search, and [`PgDocumentVersions`], the index's document versions
//! kept beside it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use async_trait::async_trait;
use llmkit_core::{Error, ErrorKind, Result};
use llmkit_rag::store::{Filter, Hit, VectorStore};
use llmkit_rag::{Chunk, DocumentVersion, DocumentVersions};
use pgvector::Vector;
use tokio_postgres::types::ToSql;

use crate::checkpoint::col;
use crate::error::db_err;
use crate::pool::{Postgres, check_ident};

/// Rows per multi-row `INSERT` in [`PgVectorStore::upsert`]: 6 parameters a row stays far below
/// PostgreSQL's 65,535-parameter limit, and one round trip carries many rows.
const UPSERT_BATCH: usize = 500;

/// Chunks, vectors and metadata in one table per collection (`vectors_{collection}` in the
/// [`Postgres`] schema), created by [`migrate`](Self::migrate):
///
/// - an HNSW index on the embedding (`vector_cosine_ops`, m = 16, ef_construction = 64 by
///   pgvector's defaults) for approximate cosine top-k;
/// - a GIN index on the metadata (`jsonb_path_ops`) so a [`Filter`] is one `@>` containment
///   test; filtered queries use pgvector 0.8's iterative index scan (`relaxed_order`), so a
///   selective filter still returns `k` hits instead of the few that survived the first scan;
/// - a generated `tsvector` column with a GIN index, ranked with `ts_rank_cd` by
///   [`search_text`](VectorStore::search_text): the lexical half of hybrid search, so
///   `llmkit_rag::Index` needs no in-memory BM25 over a shared corpus.
///
/// Scores: vector hits carry cosine similarity (`1 - cosine distance`), text hits the
/// `ts_rank_cd` rank; the index fuses the two by rank (RRF), never by score.
#[derive(Debug, Clone)]
pub struct PgVectorStore {
    pg: Postgres,
    table: String,
    dims: usize,
    ef_search: u32,
    text_config: String,
}

fn vector_literal(v: &[f32]) -> Vector {
    Vector::from(v.to_vec())
}

fn decode_hit(row: &tokio_postgres::Row) -> Result<Hit> {
    let chunk: serde_json::Value = col(row, 0)?;
    let score: f64 = col(row, 1)?;
    let chunk: Chunk = serde_json::from_value(chunk).map_err(|e| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("stored chunk is not valid: {e}"),
        )
    })?;
    Ok(Hit {
        chunk,
        score: score as f32,
    })
}

fn filter_json(filter: &Filter) -> serde_json::Value {
    serde_json::Value::Object(
        filter
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

impl PgVectorStore {
    /// The store for `collection` (letters `a-z`, digits, `_`) with `dims`-dimensional vectors.
    /// Defaults: `hnsw.ef_search` 100, text search configuration `simple` (no stemming, any
    /// language; pick `english` etc. with [`text_config`](Self::text_config)).
    pub fn new(pg: Postgres, collection: &str, dims: usize) -> Result<Self> {
        check_ident("collection", collection)?;
        if dims == 0 || dims > 16_000 {
            return Err(Error::config(format!(
                "vector dimensions {dims} must be within 1..=16000 (pgvector's limit)"
            )));
        }
        let table = pg.table(&format!("vectors_{collection}"));
        Ok(PgVectorStore {
            pg,
            table,
            dims,
            ef_search: 100,
            text_config: "simple".to_owned(),
        })
    }

    /// Candidates the HNSW search keeps (`hnsw.ef_search`, at least `k` is useful): higher
    /// raises recall and latency.
    #[must_use]
    pub fn ef_search(mut self, ef: u32) -> Self {
        self.ef_search = ef.clamp(1, 1000);
        self
    }

    /// The PostgreSQL text search configuration for the lexical half (`simple`, `english`,
    /// `german`, ...). Fixed when [`migrate`](Self::migrate) creates the table.
    pub fn text_config(mut self, config: &str) -> Result<Self> {
        check_ident("text search configuration", config)?;
        config.clone_into(&mut self.text_config);
        Ok(self)
    }

    /// Creates the `vector` extension (when the role may), the table and its indexes, if
    /// missing; idempotent. Fails with a `Config` error naming the fix when the extension is
    /// absent and the role cannot create it (it needs a superuser once per database), or when
    /// the table exists with other dimensions.
    pub async fn migrate(&self) -> Result<()> {
        let conn = self.pg.conn().await?;
        let has_vector = conn
            .query_opt("SELECT 1 FROM pg_extension WHERE extname = 'vector'", &[])
            .await
            .map_err(|e| db_err("pgvector: check extension", &e))?
            .is_some();
        if !has_vector {
            conn.batch_execute("CREATE EXTENSION IF NOT EXISTS vector")
                .await
                .map_err(|e| {
                    Error::config(format!(
                        "pgvector is not installed in this database and this role cannot install it ({}): run `CREATE EXTENSION vector` once as a superuser",
                        crate::error::db("create extension", &e)
                    ))
                })?;
        }
        let t = &self.table;
        let name = t.rsplit('.').next().unwrap_or(t);
        let schema = format!("\"{}\"", self.pg.schema());
        conn.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {t} (
                 chunk_id  TEXT PRIMARY KEY,
                 doc_id    TEXT NOT NULL,
                 chunk     JSONB NOT NULL,
                 metadata  JSONB NOT NULL,
                 embedding vector({dims}) NOT NULL,
                 body_tsv  tsvector GENERATED ALWAYS AS (to_tsvector('{cfg}', chunk->>'text')) STORED
             );
             CREATE INDEX IF NOT EXISTS {name}_doc ON {t} (doc_id);
             CREATE INDEX IF NOT EXISTS {name}_hnsw ON {t} USING hnsw (embedding vector_cosine_ops);
             CREATE INDEX IF NOT EXISTS {name}_meta ON {t} USING gin (metadata jsonb_path_ops);
             CREATE INDEX IF NOT EXISTS {name}_tsv ON {t} USING gin (body_tsv);",
            dims = self.dims,
            cfg = self.text_config,
        ))
        .await
        .map_err(|e| db_err("pgvector: create table", &e))?;
        let row = conn
            .query_one(
                "SELECT atttypmod FROM pg_attribute
                  WHERE attrelid = $1::text::regclass AND attname = 'embedding'",
                &[&t],
            )
            .await
            .map_err(|e| db_err("pgvector: check dimensions", &e))?;
        let stored: i32 = col(&row, 0)?;
        if usize::try_from(stored).ok() != Some(self.dims) {
            return Err(Error::config(format!(
                "table {t} holds {stored}-dimensional vectors, this store was built for {}",
                self.dims
            )));
        }
        Ok(())
    }

    /// Drops the collection's table (tests, re-creating with other dimensions).
    pub async fn drop_collection(&self) -> Result<()> {
        self.pg
            .conn()
            .await?
            .batch_execute(&format!("DROP TABLE IF EXISTS {}", self.table))
            .await
            .map_err(|e| db_err("pgvector: drop table", &e))
    }

    /// Number of chunks stored.
    pub async fn len(&self) -> Result<usize> {
        let row = self
            .pg
            .conn()
            .await?
            .query_one(&format!("SELECT count(*) FROM {}", self.table), &[])
            .await
            .map_err(|e| db_err("pgvector: count", &e))?;
        let n: i64 = col(&row, 0)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn check_dims(&self, v: &[f32]) -> Result<()> {
        if v.len() == self.dims {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "vector has {} dimensions, the collection {}",
                    v.len(),
                    self.dims
                ),
            ))
        }
    }
}

#[async_trait]
impl VectorStore for PgVectorStore {
    /// Inserts or replaces chunks in batches of 500 rows, all in one transaction.
    async fn upsert(&self, items: Vec<(Chunk, Vec<f32>, BTreeMap<String, String>)>) -> Result<()> {
        for (_, v, _) in &items {
            self.check_dims(v)?;
        }
        let mut conn = self.pg.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| db_err("pgvector upsert: begin", &e))?;
        for batch in items.chunks(UPSERT_BATCH) {
            let mut sql = format!(
                "INSERT INTO {} (chunk_id, doc_id, chunk, metadata, embedding) VALUES ",
                self.table
            );
            let mut rows: Vec<(String, String, serde_json::Value, serde_json::Value, Vector)> =
                Vec::with_capacity(batch.len());
            for (i, (chunk, vector, meta)) in batch.iter().enumerate() {
                let p = i * 5;
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(
                    sql,
                    "{sep}(${}, ${}, ${}, ${}, ${})",
                    p + 1,
                    p + 2,
                    p + 3,
                    p + 4,
                    p + 5
                );
                rows.push((
                    chunk.id.clone(),
                    chunk.doc_id.clone(),
                    serde_json::to_value(chunk)?,
                    serde_json::to_value(meta)?,
                    vector_literal(vector),
                ));
            }
            sql.push_str(
                " ON CONFLICT (chunk_id) DO UPDATE SET doc_id = EXCLUDED.doc_id, chunk = EXCLUDED.chunk,
                  metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding",
            );
            let params: Vec<&(dyn ToSql + Sync)> = rows
                .iter()
                .flat_map(|(a, b, c, d, e)| {
                    [
                        a as &(dyn ToSql + Sync),
                        b as &(dyn ToSql + Sync),
                        c as &(dyn ToSql + Sync),
                        d as &(dyn ToSql + Sync),
                        e as &(dyn ToSql + Sync),
                    ]
                })
                .collect();
            tx.execute(&sql, &params)
                .await
                .map_err(|e| db_err("pgvector upsert", &e))?;
        }
        tx.commit()
            .await
            .map_err(|e| db_err("pgvector upsert: commit", &e))
    }

    async fn delete_document(&self, doc_id: &str) -> Result<()> {
        self.pg
            .conn()
            .await?
            .execute(
                &format!("DELETE FROM {} WHERE doc_id = $1", self.table),
                &[&doc_id],
            )
            .await
            .map_err(|e| db_err("pgvector delete", &e))?;
        Ok(())
    }

    async fn search(&self, query: &[f32], k: usize, filter: &Filter) -> Result<Vec<Hit>> {
        self.check_dims(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let k = i64::try_from(k).unwrap_or(i64::MAX);
        let mut conn = self.pg.conn().await?;
        let tx = conn
            .transaction()
            .await
            .map_err(|e| db_err("pgvector search: begin", &e))?;
        // SET LOCAL: the settings end with the transaction, so a pooled connection goes back
        // clean. Iterative scans keep walking the graph until `k` rows pass the filter.
        tx.batch_execute(&format!(
            "SET LOCAL hnsw.ef_search = {}; SET LOCAL hnsw.iterative_scan = relaxed_order;",
            self.ef_search
        ))
        .await
        .map_err(|e| db_err("pgvector search: settings", &e))?;
        let q = vector_literal(query);
        let sql = if filter.is_empty() {
            format!(
                "SELECT chunk, (1 - (embedding <=> $1))::float8 FROM {} ORDER BY embedding <=> $1 LIMIT $2",
                self.table
            )
        } else {
            format!(
                "SELECT chunk, (1 - (embedding <=> $1))::float8 FROM {} WHERE metadata @> $3
                  ORDER BY embedding <=> $1 LIMIT $2",
                self.table
            )
        };
        let f = filter_json(filter);
        let rows = if filter.is_empty() {
            tx.query(&sql, &[&q, &k]).await
        } else {
            tx.query(&sql, &[&q, &k, &f]).await
        }
        .map_err(|e| db_err("pgvector search", &e))?;
        tx.commit()
            .await
            .map_err(|e| db_err("pgvector search: commit", &e))?;
        let mut hits: Vec<Hit> = rows.iter().map(decode_hit).collect::<Result<_>>()?;
        // relaxed_order may return rows slightly out of order: sort them.
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(hits)
    }

    fn ranks_text(&self) -> bool {
        true
    }

    /// Full-text ranking: the query's words OR-ed (`plainto_tsquery` with `&` turned into `|`,
    /// so a chunk needs only some of them), ranked by `ts_rank_cd`, filtered like `search`.
    async fn search_text(
        &self,
        query: &str,
        k: usize,
        filter: &Filter,
    ) -> Result<Option<Vec<Hit>>> {
        if k == 0 {
            return Ok(Some(Vec::new()));
        }
        let k = i64::try_from(k).unwrap_or(i64::MAX);
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "WITH q AS (SELECT nullif(replace(plainto_tsquery('{cfg}', $1)::text, '&', '|'), '')::tsquery AS q)
                     SELECT chunk, ts_rank_cd(body_tsv, q.q)::float8 AS r FROM {t}, q
                      WHERE q.q IS NOT NULL AND body_tsv @@ q.q AND metadata @> $3
                      ORDER BY r DESC, chunk_id LIMIT $2",
                    cfg = self.text_config,
                    t = self.table
                ),
                &[&query, &k, &filter_json(filter)],
            )
            .await
            .map_err(|e| db_err("pgvector text search", &e))?;
        Ok(Some(rows.iter().map(decode_hit).collect::<Result<_>>()?))
    }
}

/// The RAG index's document versions (content hash, indexed time, metadata per document) in
/// table `rag_documents` (created by [`Postgres::migrate`]), one namespace per collection, so
/// an index restarted over a persistent vector store re-embeds only what changed.
#[derive(Debug, Clone)]
pub struct PgDocumentVersions {
    pg: Postgres,
    collection: String,
}

impl PgDocumentVersions {
    /// Versions of `collection` (any string; use the vector store's collection name).
    pub fn new(pg: Postgres, collection: impl Into<String>) -> Self {
        PgDocumentVersions {
            pg,
            collection: collection.into(),
        }
    }
}

#[async_trait]
impl DocumentVersions for PgDocumentVersions {
    async fn load(&self) -> Result<Vec<DocumentVersion>> {
        let rows = self
            .pg
            .conn()
            .await?
            .query(
                &format!(
                    "SELECT doc_id, hash, indexed_ms, metadata FROM {} WHERE collection = $1 ORDER BY doc_id",
                    self.pg.table("rag_documents")
                ),
                &[&self.collection],
            )
            .await
            .map_err(|e| db_err("rag versions load", &e))?;
        rows.iter()
            .map(|r| {
                let meta: serde_json::Value = col(r, 3)?;
                let indexed_ms: i64 = col(r, 2)?;
                Ok(DocumentVersion {
                    doc_id: col(r, 0)?,
                    hash: col(r, 1)?,
                    indexed_ms: u64::try_from(indexed_ms).unwrap_or(0),
                    metadata: serde_json::from_value(meta).map_err(|e| {
                        Error::new(
                            ErrorKind::InvalidResponse,
                            format!("stored document metadata is not valid: {e}"),
                        )
                    })?,
                })
            })
            .collect()
    }

    async fn save(&self, version: &DocumentVersion) -> Result<()> {
        let meta = serde_json::to_value(&version.metadata)?;
        let indexed = i64::try_from(version.indexed_ms).unwrap_or(i64::MAX);
        self.pg
            .conn()
            .await?
            .execute(
                &format!(
                    "INSERT INTO {} (collection, doc_id, hash, indexed_ms, metadata) VALUES ($1, $2, $3, $4, $5)
                     ON CONFLICT (collection, doc_id) DO UPDATE
                        SET hash = EXCLUDED.hash, indexed_ms = EXCLUDED.indexed_ms, metadata = EXCLUDED.metadata",
                    self.pg.table("rag_documents")
                ),
                &[&self.collection, &version.doc_id, &version.hash, &indexed, &meta],
            )
            .await
            .map_err(|e| db_err("rag versions save", &e))?;
        Ok(())
    }

    async fn remove(&self, doc_id: &str) -> Result<()> {
        self.pg
            .conn()
            .await?
            .execute(
                &format!(
                    "DELETE FROM {} WHERE collection = $1 AND doc_id = $2",
                    self.pg.table("rag_documents")
                ),
                &[&self.collection, &doc_id],
            )
            .await
            .map_err(|e| db_err("rag versions remove", &e))?;
        Ok(())
    }
}
