//! pgvector against the in-process stores: top-10 cosine search over the same clustered 384-d
//! vectors in `PgVectorStore` (HNSW in PostgreSQL 18 + pgvector 0.8, one local server),
//! `HnswVectorStore` (in process) and `MemoryVectorStore` (exact), with each approximate
//! store's recall@10 against the exact answers and the load time printed.
//!
//! `LLMKIT_BENCH_PGVECTOR_URL=postgres://… cargo bench --bench pgvector --features pgvector`
//! (`scripts/test-services.sh up` starts the server; `LLMKIT_TEST_PGVECTOR_URL` is used when the
//! bench variable is unset). Sizes from `LLMKIT_PGVECTOR_BENCH_SIZES` (default `100000`). The
//! bench's tables live in schema `llmkit_bench` and are dropped when measured.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "support/vectors.rs"]
mod vectors;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group};
use llmkit::postgres::{PgVectorStore, Postgres};
use llmkit::rag::store::Filter;
use llmkit::rag::{HnswConfig, HnswVectorStore, MemoryVectorStore, VectorStore};
use vectors::{DIMS, Rng, clustered, items};

fn sizes() -> Vec<usize> {
    std::env::var("LLMKIT_PGVECTOR_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100_000])
}

fn url() -> Option<String> {
    ["LLMKIT_BENCH_PGVECTOR_URL", "LLMKIT_TEST_PGVECTOR_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

fn recall(
    rt: &tokio::runtime::Runtime,
    exact: &MemoryVectorStore,
    store: &dyn VectorStore,
    queries: &[Vec<f32>],
) -> f64 {
    let (mut found, mut total) = (0usize, 0usize);
    for q in queries {
        let truth: HashSet<String> = rt
            .block_on(exact.search(q, 10, &Filter::new()))
            .unwrap()
            .into_iter()
            .map(|h| h.chunk.id)
            .collect();
        let got = rt.block_on(store.search(q, 10, &Filter::new())).unwrap();
        found += got.iter().filter(|h| truth.contains(&h.chunk.id)).count();
        total += truth.len();
    }
    found as f64 / total as f64
}

fn search(c: &mut Criterion) {
    let Some(url) = url() else {
        println!(
            "pgvector bench skipped: set LLMKIT_BENCH_PGVECTOR_URL (scripts/test-services.sh up starts a server)"
        );
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // One fixed schema; each collection table is dropped after its size is measured.
    let pg = Postgres::builder(&url)
        .schema("llmkit_bench")
        .build()
        .unwrap();
    let mut report = Vec::new();
    for n in sizes() {
        let mut rng = Rng(n as u64);
        let vectors = clustered(n, &mut rng);
        let queries: Vec<Vec<f32>> = (0..100)
            .map(|_| {
                let v = &vectors[rng.below(vectors.len())];
                v.iter().map(|x| x + 0.3 * rng.next_f32()).collect()
            })
            .collect();
        let data = items(vectors);
        let exact = MemoryVectorStore::new();
        rt.block_on(exact.upsert(data.clone())).unwrap();
        let hnsw = HnswVectorStore::with_config(HnswConfig {
            expected_chunks: n,
            ..HnswConfig::default()
        })
        .unwrap();
        let t = Instant::now();
        rt.block_on(hnsw.upsert(data.clone())).unwrap();
        let hnsw_build = t.elapsed();
        let pgv = PgVectorStore::new(pg.clone(), &format!("bench_{n}"), DIMS).unwrap();
        rt.block_on(pgv.drop_collection()).unwrap();
        rt.block_on(pgv.migrate()).unwrap();
        let t = Instant::now();
        // Loaded in slices of 5,000 rows (one transaction each), as an indexer would.
        for slice in data.chunks(5_000) {
            rt.block_on(pgv.upsert(slice.to_vec())).unwrap();
        }
        let pg_build = t.elapsed();
        let pg_recall = recall(&rt, &exact, &pgv, &queries);
        let hnsw_recall = recall(&rt, &exact, &hnsw, &queries);
        report.push((n, pg_recall, pg_build, hnsw_recall, hnsw_build));

        let mut g = c.benchmark_group("top10_search_384d_same_data");
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("exact", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                rt.block_on(exact.search(&queries[i], 10, &Filter::new()))
                    .unwrap()
                    .len()
            })
        });
        g.bench_with_input(BenchmarkId::new("hnsw_in_process", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                rt.block_on(hnsw.search(&queries[i], 10, &Filter::new()))
                    .unwrap()
                    .len()
            })
        });
        g.bench_with_input(BenchmarkId::new("pgvector_hnsw", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                rt.block_on(pgv.search(&queries[i], 10, &Filter::new()))
                    .unwrap()
                    .len()
            })
        });
        g.finish();
        rt.block_on(pgv.drop_collection()).unwrap();
    }
    println!(
        "\n| vectors (384 d) | pgvector recall@10 | pgvector load (rows/s) | in-process HNSW recall@10 | in-process HNSW build |"
    );
    println!("|---|---|---|---|---|");
    for (n, pr, pb, hr, hb) in report {
        println!(
            "| {n} | {pr:.3} | {:.1} s ({:.0}/s) | {hr:.3} | {:.1} s |",
            pb.as_secs_f64(),
            n as f64 / pb.as_secs_f64(),
            hb.as_secs_f64()
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = search
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
