//! Approximate nearest-neighbour libraries at scale: hnsw_rs (behind `HnswVectorStore`) against
//! USearch, driven directly on the same vectors with the same graph parameters, top-10 by cosine.
//!
//! ```text
//! LLMKIT_ANN_BENCH_SIZE=1000000 nice -n 19 cargo bench --features ann-bench --bench ann
//! ```
//!
//! Environment (defaults keep a CI run cheap):
//! - `LLMKIT_ANN_BENCH_SIZE`: vectors indexed (default 20000);
//! - `LLMKIT_ANN_BENCH_QUERIES`: queries per query set (default 200; there are two sets);
//! - `LLMKIT_ANN_EF_CONSTRUCTION`: candidates while inserting, hnsw_rs `ef_construction` and
//!   USearch `expansion_add` (default 200, `HnswConfig`'s default);
//! - `LLMKIT_ANN_EF_SEARCH`: the sweep of search candidates, hnsw_rs `ef` and USearch
//!   `expansion_search` (default `10,16,32,64,128,256`);
//! - `LLMKIT_ANN_LIBS`: which libraries to run (default `hnsw_rs,usearch`);
//! - `LLMKIT_ANN_QUERY_NOISE`: amplitude of the uniform noise added to each coordinate of a
//!   stored unit vector to make a query (default 0.3: a hard set, a query's cosine to its
//!   nearest vector is about 0.3; 0.024 matches `benches/rag.rs`, whose 0.3 goes onto vectors
//!   of length ~12.6 before normalizing, cosine ~0.97).
//!
//! Method. The vectors are `support/vectors.rs`'s clustered 384-d ones (a centroid per ~100
//! vectors plus noise), unit-normalized as both stores do. Ground truth is the exact top-10 of
//! `MemoryVectorStore` (brute force). Both graphs use M = 16 links per node and the same
//! construction candidates, and insert on every core (hnsw_rs through rayon's pool, USearch from
//! one scoped thread per core). Two query sets around stored vectors: the *sweep* set picks, per
//! library, the smallest search ef whose recall@10 reaches 0.95; the *held-out* set, which
//! nothing was chosen on, reports recall and latency at that ef. Latency is one query at a time
//! on one thread, each query timed three times after one untimed pass. Memory is the process's
//! resident-set growth over the build (Linux `/proc/self/statm`), which includes the library's
//! copy of the vectors. The load average is printed, since this machine is shared, and so is
//! CPU time (build, and per query over the timed passes): under `nice` on a busy machine wall
//! time is mostly waiting for a core.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[path = "support/vectors.rs"]
mod vectors;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use llmkit::core::vector::{dot, normalize};
use llmkit::rag::store::Filter;
use llmkit::rag::{MemoryVectorStore, VectorStore};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
use vectors::{Rng, clustered, items};

const K: usize = 10;
const M: usize = 16;
const TARGET_RECALL: f64 = 0.95;
const TIMED_PASSES: usize = 3;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// CPU time this process has used, all threads (Linux `/proc/self/stat` user + system ticks,
/// at the kernel's usual 100 per second), or zero where `/proc` is missing. On a shared machine
/// a niced bench's wall time is mostly waiting; CPU time is the work done.
fn cpu_time() -> Duration {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are the 14th and
            // 15th fields of the line, the 12th and 13th after the name.
            let rest = s.get(s.rfind(')')? + 2..)?;
            let mut f = rest.split_whitespace().skip(11);
            let user: u64 = f.next()?.parse().ok()?;
            let system: u64 = f.next()?.parse().ok()?;
            Some(Duration::from_millis((user + system) * 10))
        })
        .unwrap_or_default()
}

/// Resident set in bytes, or 0 where `/proc` is missing.
fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<usize>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// `HnswVectorStore`'s distance: `1 - a·b` of unit vectors, clamped at zero.
#[derive(Clone, Copy, Default)]
struct UnitCosine;

impl Distance<f32> for UnitCosine {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

/// One library under test: built once, searched at a settable ef.
trait Ann {
    fn name(&self) -> &'static str;
    fn search(&self, query: &[f32], ef: usize) -> Vec<usize>;
}

struct HnswRs(Hnsw<'static, f32, UnitCosine>);

impl HnswRs {
    fn build(vectors: &[Vec<f32>], ef_construction: usize) -> Self {
        let graph = Hnsw::new(M, vectors.len(), 16, ef_construction, UnitCosine);
        let batch: Vec<(&[f32], usize)> = vectors
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_slice(), i))
            .collect();
        graph.parallel_insert_slice(&batch);
        HnswRs(graph)
    }
}

impl Ann for HnswRs {
    fn name(&self) -> &'static str {
        "hnsw_rs 0.3"
    }
    fn search(&self, query: &[f32], ef: usize) -> Vec<usize> {
        self.0
            .search(query, K, ef.max(K))
            .into_iter()
            .map(|n| n.d_id)
            .collect()
    }
}

struct USearch(Index);

impl USearch {
    fn build(vectors: &[Vec<f32>], ef_construction: usize, threads: usize) -> Self {
        let options = IndexOptions {
            dimensions: vectors.first().map_or(1, Vec::len),
            // Inner product of unit vectors is cosine, as in `UnitCosine`; f32 storage, no
            // quantization (USearch's default is bf16, which would not be the same data).
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: M,
            expansion_add: ef_construction,
            expansion_search: 64,
            multi: false,
        };
        let index = Index::new(&options).unwrap();
        index
            .reserve_capacity_and_threads(vectors.len(), threads)
            .unwrap();
        std::thread::scope(|s| {
            for t in 0..threads {
                let index = &index;
                s.spawn(move || {
                    for (i, v) in vectors.iter().enumerate().skip(t).step_by(threads) {
                        index.add(i as u64, v).unwrap();
                    }
                });
            }
        });
        USearch(index)
    }
}

impl Ann for USearch {
    fn name(&self) -> &'static str {
        "usearch 2.26"
    }
    fn search(&self, query: &[f32], ef: usize) -> Vec<usize> {
        self.0.change_expansion_search(ef.max(K));
        let found = self.0.search(query, K).unwrap();
        found.keys.into_iter().map(|k| k as usize).collect()
    }
}

/// Recall@10 and per-query latencies of one query set at one ef.
struct Run {
    recall: f64,
    p50: Duration,
    p99: Duration,
    /// Process CPU time over the timed passes, per query.
    cpu_per_query: Duration,
}

fn measure(ann: &dyn Ann, queries: &[Vec<f32>], truth: &[HashSet<usize>], ef: usize) -> Run {
    let (mut found, mut total) = (0usize, 0usize);
    for (q, t) in queries.iter().zip(truth) {
        found += ann.search(q, ef).iter().filter(|id| t.contains(id)).count();
        total += t.len();
    }
    let mut times = Vec::with_capacity(queries.len() * TIMED_PASSES);
    let cpu = cpu_time();
    for _ in 0..TIMED_PASSES {
        for q in queries {
            let start = Instant::now();
            std::hint::black_box(ann.search(std::hint::black_box(q), ef));
            times.push(start.elapsed());
        }
    }
    let cpu_per_query = cpu_time().saturating_sub(cpu) / times.len().max(1) as u32;
    times.sort();
    let at = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    Run {
        recall: found as f64 / total.max(1) as f64,
        p50: at(0.50),
        p99: at(0.99),
        cpu_per_query,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Queries around stored vectors (a question about a topic the corpus covers): a stored unit
/// vector plus uniform noise of amplitude `noise` per coordinate, normalized.
fn queries(vectors: &[Vec<f32>], n: usize, noise: f32, rng: &mut Rng) -> Vec<Vec<f32>> {
    (0..n)
        .map(|_| {
            let v = &vectors[rng.below(vectors.len())];
            let mut q: Vec<f32> = v.iter().map(|x| x + noise * rng.next_f32()).collect();
            normalize(&mut q);
            q
        })
        .collect()
}

fn main() {
    let n = env_usize("LLMKIT_ANN_BENCH_SIZE", 20_000);
    let nq = env_usize("LLMKIT_ANN_BENCH_QUERIES", 200).max(1);
    let ef_construction = env_usize("LLMKIT_ANN_EF_CONSTRUCTION", 200).max(1);
    let mut sweep: Vec<usize> = env_list("LLMKIT_ANN_EF_SEARCH", "10,16,32,64,128,256")
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    sweep.sort_unstable();
    let libs = env_list("LLMKIT_ANN_LIBS", "hnsw_rs,usearch");
    let noise = std::env::var("LLMKIT_ANN_QUERY_NOISE")
        .ok()
        .and_then(|v| v.trim().parse::<f32>().ok())
        .unwrap_or(0.3);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    println!(
        "ANN bench: {n} x 384 vectors, {nq} + {nq} queries, M {M}, ef_construction {ef_construction}, \
         {threads} insert threads, load average at start {}",
        load_average()
    );

    let started = Instant::now();
    let mut rng = Rng(n as u64);
    let mut vectors = clustered(n, &mut rng);
    for v in &mut vectors {
        normalize(v);
    }
    let sweep_queries = queries(&vectors, nq, noise, &mut rng);
    let held_out = queries(&vectors, nq, noise, &mut rng);

    // Ground truth from the exact store, dropped before any graph is built so its memory is
    // not counted against one.
    // The mean cosine of a query to its nearest stored vector says how hard the query set is
    // (1.0: every query is a stored vector).
    let mut top1_cosine = 0.0f32;
    let (sweep_truth, held_truth) = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let exact = MemoryVectorStore::new();
        rt.block_on(exact.upsert(items(vectors.clone()))).unwrap();
        let mut truth = |qs: &[Vec<f32>]| -> Vec<HashSet<usize>> {
            qs.iter()
                .map(|q| {
                    let hits = rt.block_on(exact.search(q, K, &Filter::new())).unwrap();
                    top1_cosine += hits.first().map_or(0.0, |h| h.score);
                    hits.into_iter()
                        // `items` names chunk i `d{i / 8}#c{i}`.
                        .map(|h| h.chunk.id.rsplit("#c").next().unwrap().parse().unwrap())
                        .collect()
                })
                .collect()
        };
        (truth(&sweep_queries), truth(&held_out))
    };
    println!(
        "data and exact ground truth: {:.1} s; query noise {noise}, mean cosine of a query to its nearest vector {:.3}",
        started.elapsed().as_secs_f64(),
        top1_cosine / (2 * nq) as f32
    );

    let mut summary = Vec::new();
    for lib in &libs {
        let rss_before = rss_bytes();
        let load_before = load_average();
        let (built, cpu_before) = (Instant::now(), cpu_time());
        let ann: Box<dyn Ann> = match lib.as_str() {
            "hnsw_rs" => Box::new(HnswRs::build(&vectors, ef_construction)),
            "usearch" => Box::new(USearch::build(&vectors, ef_construction, threads)),
            other => {
                eprintln!("LLMKIT_ANN_LIBS: skipping unknown library `{other}` (hnsw_rs, usearch)");
                continue;
            }
        };
        let build = built.elapsed();
        let build_cpu = cpu_time().saturating_sub(cpu_before);
        let rss = rss_bytes().saturating_sub(rss_before);
        println!(
            "\n{}: build {:.1} s wall, {:.1} s CPU on {threads} threads, RSS +{:.0} MiB (load average before {load_before}, after {})",
            ann.name(),
            build.as_secs_f64(),
            build_cpu.as_secs_f64(),
            rss as f64 / (1 << 20) as f64,
            load_average()
        );
        println!("| ef | recall@10 (sweep set) | p50 ms | p99 ms | CPU ms/query |");
        println!("|---|---|---|---|---|");
        let mut chosen = None;
        for &ef in &sweep {
            let run = measure(ann.as_ref(), &sweep_queries, &sweep_truth, ef);
            println!(
                "| {ef} | {:.3} | {:.3} | {:.3} | {:.3} |",
                run.recall,
                ms(run.p50),
                ms(run.p99),
                ms(run.cpu_per_query)
            );
            if chosen.is_none() && run.recall >= TARGET_RECALL {
                chosen = Some(ef);
            }
        }
        let ef = chosen.unwrap_or_else(|| sweep.last().copied().unwrap_or(64));
        let held = measure(ann.as_ref(), &held_out, &held_truth, ef);
        println!(
            "held-out at ef {ef}{}: recall@10 {:.3}, p50 {:.3} ms, p99 {:.3} ms, CPU {:.3} ms/query",
            if chosen.is_some() {
                ""
            } else {
                " (no ef in the sweep reached 0.95)"
            },
            held.recall,
            ms(held.p50),
            ms(held.p99),
            ms(held.cpu_per_query)
        );
        summary.push((ann.name(), build, build_cpu, rss, ef, held));
    }

    println!(
        "\n| {n} x 384 | build s wall ({threads} threads) | build s CPU | RSS MiB | ef for recall >= 0.95 | held-out recall@10 | p50 ms | p99 ms | CPU ms/query |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, build, build_cpu, rss, ef, run) in summary {
        println!(
            "| {name} | {:.1} | {:.1} | {:.0} | {ef} | {:.3} | {:.3} | {:.3} | {:.3} |",
            build.as_secs_f64(),
            build_cpu.as_secs_f64(),
            rss as f64 / (1 << 20) as f64,
            run.recall,
            ms(run.p50),
            ms(run.p99),
            ms(run.cpu_per_query)
        );
    }
    println!(
        "total {:.0} s, load average at end {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
}
