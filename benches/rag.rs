//! RAG throughput and latency: chunking in MB/s against a naive fixed-window splitter, and
//! top-10 vector search, exact (`MemoryVectorStore`) against approximate (`HnswVectorStore`),
//! with the approximate store's recall@10 measured against the exact one and printed.
//!
//! `cargo bench --bench rag --features rag`; corpus sizes come from `LLMKIT_RAG_BENCH_SIZES`
//! (comma-separated, default `10000,100000`; `1000000` works but building the graph takes a
//! long time on a small machine). Vectors are clustered in 384 dimensions (a centroid per ~100
//! vectors plus noise, queries near stored vectors), a stand-in for real embeddings; uniform
//! random vectors would be a worst case no corpus has.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "support/vectors.rs"]
mod vectors;

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use llmkit::rag::store::Filter;
use llmkit::rag::{Chunker, Document, HnswVectorStore, MemoryVectorStore, VectorStore};
use vectors::{Rng, clustered, items};

/// About `bytes` of support-knowledge-base-like Markdown: headings, paragraphs of sentences.
fn markdown_corpus(bytes: usize) -> String {
    const WORDS: &[&str] = &[
        "refund",
        "order",
        "delivery",
        "customer",
        "within",
        "days",
        "policy",
        "warranty",
        "shipping",
        "return",
        "the",
        "a",
        "is",
        "are",
        "accepted",
        "after",
        "before",
        "support",
        "account",
        "invoice",
        "payment",
        "card",
        "replacement",
        "damaged",
        "item",
        "contact",
    ];
    let mut rng = Rng(1);
    let mut out = String::with_capacity(bytes + 1024);
    let mut section = 0;
    while out.len() < bytes {
        section += 1;
        out.push_str(&format!("## Section {section}\n\n"));
        for _ in 0..(2 + rng.below(4)) {
            for _ in 0..(3 + rng.below(5)) {
                let n = 6 + rng.below(14);
                let sentence: Vec<&str> = (0..n).map(|_| WORDS[rng.below(WORDS.len())]).collect();
                out.push_str(&sentence.join(" "));
                out.push_str(". ");
            }
            out.push_str("\n\n");
        }
    }
    out
}

/// The baseline a demo ships: owned windows of `size` characters, no structure, no overlap,
/// no offsets, no ids.
fn fixed_windows(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size.max(1)).map(String::from_iter).collect()
}

fn chunking(c: &mut Criterion) {
    let text = markdown_corpus(2 << 20);
    let doc = Document::new("kb", text.clone());
    let chunker = Chunker::new();
    let chunks = chunker.chunk(&doc);
    let mean = chunks.iter().map(|c| c.text.len()).sum::<usize>() / chunks.len().max(1);
    let mut g = c.benchmark_group("chunking");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("baseline: fixed character windows", |b| {
        b.iter(|| fixed_windows(black_box(&text), mean).len())
    });
    g.bench_function(
        "Chunker (structure-aware, token sized, overlap, offsets)",
        |b| b.iter(|| chunker.chunk(black_box(&doc)).len()),
    );
    g.finish();
}

fn sizes() -> Vec<usize> {
    std::env::var("LLMKIT_RAG_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10_000, 100_000])
}

fn search(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut report = Vec::new();
    for n in sizes() {
        let mut rng = Rng(n as u64);
        let vectors = clustered(n, &mut rng);
        // Queries near stored vectors (a question about a topic the corpus covers).
        let queries: Vec<Vec<f32>> = (0..100)
            .map(|_| {
                let v = &vectors[rng.below(vectors.len())];
                v.iter().map(|x| x + 0.3 * rng.next_f32()).collect()
            })
            .collect();
        let data = items(vectors);
        let exact = MemoryVectorStore::new();
        rt.block_on(exact.upsert(data.clone())).unwrap();
        let approx = HnswVectorStore::new();
        let built = Instant::now();
        rt.block_on(approx.upsert(data)).unwrap();
        let build_time = built.elapsed();
        let (mut found, mut total) = (0usize, 0usize);
        for q in &queries {
            let truth: HashSet<String> = rt
                .block_on(exact.search(q, 10, &Filter::new()))
                .unwrap()
                .into_iter()
                .map(|h| h.chunk.id)
                .collect();
            let got = rt.block_on(approx.search(q, 10, &Filter::new())).unwrap();
            found += got.iter().filter(|h| truth.contains(&h.chunk.id)).count();
            total += truth.len();
        }
        report.push((n, found as f64 / total as f64, build_time));

        let mut g = c.benchmark_group("top10_search_384d");
        let mut i = 0;
        g.bench_with_input(BenchmarkId::new("exact", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                rt.block_on(exact.search(&queries[i], 10, &Filter::new()))
                    .unwrap()
                    .len()
            })
        });
        g.bench_with_input(BenchmarkId::new("hnsw", n), &n, |b, _| {
            b.iter(|| {
                i = (i + 1) % queries.len();
                rt.block_on(approx.search(&queries[i], 10, &Filter::new()))
                    .unwrap()
                    .len()
            })
        });
        g.finish();
    }
    println!("\n| vectors (384 d) | HNSW recall@10 vs exact | HNSW build time |");
    println!("|---|---|---|");
    for (n, recall, build) in report {
        println!("| {n} | {recall:.3} | {:.1} s |", build.as_secs_f64());
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = chunking, search
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
