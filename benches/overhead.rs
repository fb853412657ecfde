//! llmkit's own overhead per call: raw reqwest vs the OpenAI provider vs the full recommended
//! stack against a loopback server, plus cache-hit and no-HTTP stack benches with baselines.
//!
//! `cargo bench --bench overhead` runs the criterion benches, then the load driver, which prints
//! a Markdown table (throughput, p50/p99, added latency) for concurrency 1, 8 and 64.
//! `LLMKIT_BENCH_SECS` (per round, default 1) and `LLMKIT_BENCH_ROUNDS` (default 3) size it;
//! `LLMKIT_BENCH_LOAD=0` skips it. Allocations per call: `cargo bench --bench overhead_allocs`.
//! `LLMKIT_BENCH_PROFILE=N` runs only N full-stack calls, for callgrind (see `profile_calls`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod common;

use std::hint::black_box;
use std::time::Duration;

use common::{InstantModel, Path, Sample};
use criterion::{Criterion, criterion_group};
use llmkit::core::cache::{CacheLayer, cache_key};
use llmkit::core::{ChatModel, ChatRequest, Pipeline};

fn no_http(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Cache hit: a deterministic request answered from the in-process store.
    let bare = Pipeline::builder().build(InstantModel::shared());
    let cached = Pipeline::builder()
        .layer(CacheLayer::new())
        .build(InstantModel::shared());
    let req = ChatRequest::user("What is the refund window? Please answer in one sentence.")
        .with_temperature(0.0);
    rt.block_on(cached.chat(req.clone())).unwrap();
    let mut g = c.benchmark_group("cache_hit");
    g.bench_function("baseline: pipeline over an instant model", |b| {
        b.to_async(&rt).iter(|| bare.chat(black_box(req.clone())))
    });
    g.bench_function("cache hit", |b| {
        b.to_async(&rt).iter(|| cached.chat(black_box(req.clone())))
    });
    let info = InstantModel::shared().info().clone();
    g.bench_function("cache key only", |b| {
        b.iter(|| cache_key(&info, black_box(&req), false))
    });
    g.finish();

    // The full stack with the provider replaced by an instant model: llmkit's own cost.
    let full = common::full_stack(InstantModel::shared());
    let direct = InstantModel::shared();
    let mut g = c.benchmark_group("stack_no_http");
    g.bench_function("baseline: instant model called directly", |b| {
        b.to_async(&rt)
            .iter(|| direct.chat(ChatRequest::user(common::next_prompt())))
    });
    g.bench_function("full stack (cache miss)", |b| {
        b.to_async(&rt)
            .iter(|| full.chat(ChatRequest::user(common::next_prompt())))
    });
    g.finish();

    let mut g = c.benchmark_group("layer_alone");
    for (name, model) in common::each_layer(&InstantModel::shared()) {
        g.bench_function(name, |b| {
            b.to_async(&rt)
                .iter(|| model.chat(ChatRequest::user(common::next_prompt())))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = no_http
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The load driver: raw / provider / full stack at concurrency 1, 8 and 64, interleaved in
/// rounds so drift in machine load hits every configuration alike.
fn load() {
    let secs: f64 = env_or("LLMKIT_BENCH_SECS", 1.0);
    let rounds: usize = env_or("LLMKIT_BENCH_ROUNDS", 3);
    let per_round = Duration::from_secs_f64(secs);
    let addr = common::start_server();
    let rt = common::client_runtime();
    let provider = common::provider(addr);
    let paths = [
        ("raw reqwest", common::raw(addr)),
        ("provider alone", Path::Model(provider.clone())),
        ("full stack", Path::Model(common::full_stack(provider))),
    ];
    let levels = [1usize, 8, 64];
    let mut samples: Vec<Vec<Sample>> = levels
        .iter()
        .map(|_| paths.iter().map(|_| Sample::default()).collect())
        .collect();
    rt.block_on(async {
        // Warm every connection pool and lazy static before measuring.
        for (_, p) in &paths {
            common::drive(p, 64, Duration::from_millis(300), &mut Sample::default()).await;
        }
        for _ in 0..rounds {
            for (li, &conc) in levels.iter().enumerate() {
                for (pi, (_, p)) in paths.iter().enumerate() {
                    common::drive(p, conc, per_round, &mut samples[li][pi]).await;
                }
            }
        }
    });

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("\n## overhead load driver ({rounds} rounds × {secs} s per configuration)");
    println!("load average at the end: {}", load.trim());
    println!(
        "\n| conc | path | req/s | p50 µs | p99 µs | added p50 µs vs raw | added p99 µs vs raw | added p99 µs vs provider | req/s ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (li, &conc) in levels.iter().enumerate() {
        let row = &mut samples[li];
        let stats: Vec<(f64, f64, f64)> = row
            .iter_mut()
            .map(|s| (s.throughput(), s.quantile_us(0.5), s.quantile_us(0.99)))
            .collect();
        let (raw_tp, raw50, raw99) = stats[0];
        let (prov_tp, _, prov99) = stats[1];
        for (pi, (name, _)) in paths.iter().enumerate() {
            let (tp, p50, p99) = stats[pi];
            let (vs_prov, ratio) = match pi {
                0 => ("—".to_owned(), "1.00 (base)".to_owned()),
                1 => ("—".to_owned(), format!("{:.3} of raw", tp / raw_tp)),
                _ => (
                    format!("{:+.1}", p99 - prov99),
                    format!("{:.3} of provider", tp / prov_tp),
                ),
            };
            println!(
                "| {conc} | {name} | {tp:.0} | {p50:.1} | {p99:.1} | {:+.1} | {:+.1} | {vs_prov} | {ratio} |",
                p50 - raw50,
                p99 - raw99
            );
        }
    }
}

/// `LLMKIT_BENCH_PROFILE=N`: only makes N calls (after one warm-up call that compiles the
/// guards' regexes), for an instruction profile. `LLMKIT_BENCH_PROFILE_PATH` picks what is
/// called: `stack` (default: the full stack over the instant model), `hit` (cache hits),
/// `provider` (the provider alone against the loopback server) or `stack-http` (the full stack
/// over the provider). Example:
/// `LLMKIT_BENCH_PROFILE=2000 valgrind --tool=callgrind --toggle-collect='*overhead::measured*'
/// target/release/deps/overhead-<hash>`.
#[inline(never)]
fn profile_calls(calls: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let path = std::env::var("LLMKIT_BENCH_PROFILE_PATH").unwrap_or_default();
    let provider = || {
        let addr = common::start_server();
        // Built inside the runtime that will drive its connections.
        rt.block_on(async { common::provider(addr) })
    };
    let (stack, fixed) = match path.as_str() {
        "hit" => {
            let cached = Pipeline::builder()
                .layer(CacheLayer::new())
                .build(InstantModel::shared());
            let req = ChatRequest::user("What is the refund window?").with_temperature(0.0);
            (cached, Some(req))
        }
        "provider" => (provider(), None),
        "stack-http" => (common::full_stack(provider()), None),
        _ => (common::full_stack(InstantModel::shared()), None),
    };
    let request = || {
        fixed
            .clone()
            .unwrap_or_else(|| ChatRequest::user(common::next_prompt()))
    };
    rt.block_on(stack.chat(request())).unwrap();
    let run = || {
        rt.block_on(async {
            for _ in 0..calls {
                black_box(stack.chat(request()).await).unwrap();
            }
        })
    };
    measured(run);
}

/// The only function the profile collects in.
#[inline(never)]
fn measured(run: impl FnOnce()) {
    run();
}

fn main() {
    let profile = env_or("LLMKIT_BENCH_PROFILE", 0usize);
    if profile > 0 {
        profile_calls(profile);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
    if env_or("LLMKIT_BENCH_LOAD", 1u8) != 0 {
        load();
    }
}
