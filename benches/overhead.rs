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
/// over the provider), or `layer:<name>` (one layer of `layer_alone` alone over the instant
/// model, e.g. `layer:budget`, named as in that group). Example:
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
        p if p.starts_with("layer:") => {
            let name = &p["layer:".len()..];
            let layer = common::each_layer(&InstantModel::shared())
                .into_iter()
                .find(|(n, _)| *n == name)
                .expect("LLMKIT_BENCH_PROFILE_PATH=layer:<name> names a layer_alone bench");
            (layer.1, None)
        }
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

/// CPU time, context switches and run-queue wait of every thread of this process, summed by
/// thread role (read from `/proc/self/task/*/{comm,schedstat,status}`).
#[derive(Default, Clone, Copy)]
struct ThreadCounts {
    cpu_ns: u64,
    wait_ns: u64,
    voluntary: u64,
    involuntary: u64,
    minor_faults: u64,
    migrations: u64,
}

/// Thread roles of the counting run: the client runtime (its worker and blocking threads are
/// named `client-rt`), the loopback server, the trace export threads, everything else.
const ROLES: [&str; 4] = ["client-rt", "bench-server", "llmkit-export", "other"];

fn thread_counts() -> [ThreadCounts; 4] {
    let mut out = [ThreadCounts::default(); 4];
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for task in dir.flatten() {
        let path = task.path();
        let read = |f: &str| std::fs::read_to_string(path.join(f)).unwrap_or_default();
        let comm = read("comm");
        let role = ROLES[..3]
            .iter()
            .position(|r| comm.trim() == *r)
            .unwrap_or(3);
        let sched: Vec<u64> = read("schedstat")
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        let status = read("status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        let stat = read("stat");
        // Fields after the command name's closing parenthesis start at field 3 (state);
        // minflt is field 10.
        let minflt = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(7))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let migrations = read("sched")
            .lines()
            .find_map(|l| l.strip_prefix("se.nr_migrations"))
            .and_then(|v| v.trim_start_matches([' ', ':']).trim().parse::<u64>().ok())
            .unwrap_or(0);
        let c = &mut out[role];
        c.minor_faults += minflt;
        c.migrations += migrations;
        c.cpu_ns += sched.first().copied().unwrap_or(0);
        c.wait_ns += sched.get(1).copied().unwrap_or(0);
        c.voluntary += field("voluntary_ctxt_switches:");
        c.involuntary += field("nonvoluntary_ctxt_switches:");
    }
    out
}

/// `LLMKIT_BENCH_PIN=1`: pins this process's threads with `taskset`, the loopback server on
/// CPU 1 and every other thread on CPU 0, so no thread migrates between the cores (the
/// experiment that tells cache-cold migrations from per-call work).
fn pin_threads() {
    if env_or("LLMKIT_BENCH_PIN", 0u8) == 0 {
        return;
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for task in dir.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        let cpu = if comm.trim() == "bench-server" {
            "1"
        } else {
            "0"
        };
        let tid = task.file_name().to_string_lossy().into_owned();
        let _ = std::process::Command::new("taskset")
            .args(["-pc", cpu, &tid])
            .stdout(std::process::Stdio::null())
            .status();
    }
}

/// `LLMKIT_BENCH_COUNTS=N`: where a call's CPU goes with and without HTTP. For the instant
/// model, the full stack over it, the provider alone and the full stack over the provider, at
/// concurrency 1 and 8, N calls each on the load driver's runtime (one client worker, the
/// server on its own thread): wall time, CPU per thread role, voluntary and involuntary context
/// switches and run-queue wait per call, and how often the client worker parked (went idle).
/// These counts come from the kernel's per-thread accounting, so unlike callgrind they include
/// system calls and the threads the client wakes. `LLMKIT_BENCH_COUNTS_PATH` (a substring of a
/// path name) runs only matching paths, e.g. under `strace -f -c`.
fn counts(calls: usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let parks = Arc::new(AtomicU64::new(0));
    let p = parks.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("client-rt")
        .on_thread_park(move || {
            p.fetch_add(1, Ordering::Relaxed);
        })
        .enable_all()
        .build()
        .unwrap();
    let addr = common::start_server();
    let provider = common::provider(addr);
    let only = std::env::var("LLMKIT_BENCH_COUNTS_PATH").unwrap_or_default();
    let paths = [
        ("instant model", Path::Model(InstantModel::shared())),
        (
            "full stack over instant model",
            Path::Model(common::full_stack(InstantModel::shared())),
        ),
        ("provider (HTTP)", Path::Model(provider.clone())),
        (
            "full stack over provider (HTTP)",
            Path::Model(common::full_stack(provider)),
        ),
    ];
    rt.block_on(common::drive_count(&paths[3].1, 8, 64));
    pin_threads();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n## per-call counts ({calls} calls per row; load average {})",
        load.trim()
    );
    println!(
        "\n| path | conc | wall µs | client CPU µs | server CPU µs | export CPU µs | other CPU µs | client vol/invol switches | server vol/invol | export vol/invol | client run-queue wait µs | client worker parks | client / server / export page faults | client / server CPU migrations |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, path) in paths.iter().filter(|(n, _)| n.contains(only.as_str())) {
        for conc in [1usize, 8] {
            rt.block_on(common::drive_count(path, conc, 400));
            let before = thread_counts();
            let parks0 = parks.load(Ordering::Relaxed);
            let start = std::time::Instant::now();
            rt.block_on(common::drive_count(path, conc, calls));
            let wall = start.elapsed();
            let after = thread_counts();
            let parked = parks.load(Ordering::Relaxed) - parks0;
            let n = calls as f64;
            let d = |i: usize| {
                let (a, b) = (after[i], before[i]);
                (
                    (a.cpu_ns - b.cpu_ns) as f64 / n / 1e3,
                    (a.wait_ns - b.wait_ns) as f64 / n / 1e3,
                    (a.voluntary - b.voluntary) as f64 / n,
                    (a.involuntary - b.involuntary) as f64 / n,
                    (a.minor_faults - b.minor_faults) as f64 / n,
                    (a.migrations - b.migrations) as f64 / n,
                )
            };
            let (c, s, e, o) = (d(0), d(1), d(2), d(3));
            println!(
                "| {name} | {conc} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.1} | {:.2} | {:.2} / {:.2} / {:.2} | {:.3} / {:.3} |",
                wall.as_secs_f64() * 1e6 / n,
                c.0,
                s.0,
                e.0,
                o.0,
                c.2,
                c.3,
                s.2,
                s.3,
                e.2,
                e.3,
                c.1,
                parked as f64 / n,
                c.4,
                s.4,
                e.4,
                c.5,
                s.5
            );
        }
    }
}

/// `LLMKIT_BENCH_LAYER_COUNTS=N`: each layer of the full stack alone, over the instant model
/// and over the provider (HTTP), N calls at concurrency 8 per round, three rounds interleaved:
/// the client CPU each layer adds per call with and without HTTP (CPU of the client threads,
/// the trace export thread included, minus the same path without the layer, same round).
fn layer_counts(calls: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("client-rt")
        .enable_all()
        .build()
        .unwrap();
    let addr = common::start_server();
    let provider = common::provider(addr);
    let instant = common::each_layer(&InstantModel::shared());
    let variant = std::env::var("LLMKIT_BENCH_LAYER_MODEL").unwrap_or_default();
    let yielding = match variant.as_str() {
        "syscall" => common::each_layer(&common::SyscallModel::shared(5)),
        "spin" | "thrash" => common::each_layer(&InstantModel::shared()),
        "sleep" => common::each_layer(&common::WaitingModel::shared(common::Wait::Sleep(
            Duration::from_micros(100),
        ))),
        "busy-wait" => common::each_layer(&common::WaitingModel::shared(common::Wait::Spin(
            Duration::from_micros(100),
        ))),
        _ => common::each_layer(&common::YieldingModel::shared(3)),
    };
    // "spin" / "thrash": the third column runs the instant model while another thread keeps
    // the second core busy, in registers only (spin) or reading 24 MiB at random (thrash, an
    // L2/L3 polluter like a busy server and network stack).
    let background = std::sync::Arc::new(std::sync::atomic::AtomicU8::new(0));
    if variant == "spin" || variant == "thrash" {
        let bg = background.clone();
        let thrash = variant == "thrash";
        std::thread::spawn(move || {
            let buf = vec![1u64; if thrash { 3 << 20 } else { 1 }];
            let mut x = 0x9E37_79B9_7F4A_7C15u64;
            let mut acc = 0u64;
            loop {
                if bg.load(std::sync::atomic::Ordering::Relaxed) == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                for _ in 0..4096 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    acc = acc.wrapping_add(buf[(x as usize) % buf.len()]);
                }
                std::hint::black_box(acc);
            }
        });
    }
    let http = common::each_layer(&provider);
    let cpu = |path: &Path| {
        rt.block_on(common::drive_count(path, 8, 200));
        let before = thread_counts();
        rt.block_on(common::drive_count(path, 8, calls));
        let after = thread_counts();
        let client = (after[0].cpu_ns - before[0].cpu_ns) + (after[2].cpu_ns - before[2].cpu_ns);
        client as f64 / calls as f64 / 1e3
    };
    rt.block_on(common::drive_count(&Path::Model(http[1].1.clone()), 8, 64));
    pin_threads();
    let rounds = 3;
    let mut sums = vec![(0.0, 0.0, 0.0); instant.len()];
    for _ in 0..rounds {
        for (i, (((_, a), (_, y)), (_, b))) in instant.iter().zip(&yielding).zip(&http).enumerate()
        {
            sums[i].0 += cpu(&Path::Model(a.clone())) / rounds as f64;
            background.store(1, std::sync::atomic::Ordering::Relaxed);
            sums[i].2 += cpu(&Path::Model(y.clone())) / rounds as f64;
            background.store(0, std::sync::atomic::Ordering::Relaxed);
            sums[i].1 += cpu(&Path::Model(b.clone())) / rounds as f64;
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n## client CPU per call by layer, concurrency 8 ({calls} calls × {rounds} rounds; load average {})",
        load.trim()
    );
    println!(
        "\n| layer | over instant model µs | layer's own µs | own µs, variant (LLMKIT_BENCH_LAYER_MODEL) | over provider (HTTP) µs | layer's own µs under HTTP | HTTP / instant |"
    );
    println!("|---|---|---|---|---|---|---|");
    let (base_i, base_h, base_y) = (sums[0].0, sums[0].1, sums[0].2);
    for ((name, _), (i, h, y)) in instant.iter().zip(&sums) {
        let (own_i, own_h, own_y) = (i - base_i, h - base_h, y - base_y);
        println!(
            "| {name} | {i:.1} | {own_i:.1} | {own_y:.1} | {h:.1} | {own_h:.1} | {:.1} |",
            own_h / own_i
        );
    }
}

/// `LLMKIT_BENCH_IDLE=N`: does idle time between calls, with no network at all, make the
/// stack's own code slower? The full stack and the bare model, N sequential calls per round,
/// three rounds interleaved, over a model that answers at once, one that first sleeps 100 µs
/// (the core idles, as a client core does while its server answers), one that first spins
/// 100 µs (same wait, core busy) and two that first write and read 1 MiB or 8 MiB of their own
/// (core busy, its caches and TLB refilled with other data). Prints the stack's own client CPU
/// per call (stack minus bare model, same round).
fn idle_experiment(calls: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("client-rt")
        .enable_all()
        .build()
        .unwrap();
    let wait = Duration::from_micros(100);
    // 1 MiB: this CPU's per-core L2 (lscpu: 2 MiB in 2 instances); 8 MiB: also past the
    // reach of the second-level TLB (2,048 4-KiB pages).
    let models: [(&str, std::sync::Arc<dyn ChatModel>); 5] = [
        ("answers at once", InstantModel::shared()),
        (
            "sleeps 100 µs first (core idles)",
            common::WaitingModel::shared(common::Wait::Sleep(wait)),
        ),
        (
            "spins 100 µs first (core busy)",
            common::WaitingModel::shared(common::Wait::Spin(wait)),
        ),
        (
            "touches 1 MiB first (core busy, L2 refilled)",
            common::WaitingModel::shared(common::Wait::Touch(1 << 20)),
        ),
        (
            "touches 8 MiB first (core busy, L2 and TLB refilled)",
            common::WaitingModel::shared(common::Wait::Touch(8 << 20)),
        ),
    ];
    let cpu = |path: &Path| {
        rt.block_on(common::drive_count(path, 1, 100));
        let before = thread_counts();
        rt.block_on(common::drive_count(path, 1, calls));
        let after = thread_counts();
        let client = (after[0].cpu_ns - before[0].cpu_ns) + (after[2].cpu_ns - before[2].cpu_ns);
        client as f64 / calls as f64 / 1e3
    };
    let rounds = 3;
    let mut own = [[0.0f64; 3]; 5];
    let mut bare = [0.0f64; 5];
    for round in 0..rounds {
        for ((_, m), (own, bare)) in models.iter().zip(own.iter_mut().zip(bare.iter_mut())) {
            let b = cpu(&Path::Model(m.clone()));
            let f = cpu(&Path::Model(common::full_stack(m.clone())));
            own[round] = f - b;
            *bare += b / rounds as f64;
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "\n## idle time and the stack's own CPU ({calls} sequential calls × {rounds} rounds; load average {})",
        load.trim()
    );
    println!("\n| model | bare model client CPU µs | stack's own client CPU µs per round | mean |");
    println!("|---|---|---|---|");
    for (i, (name, _)) in models.iter().enumerate() {
        let o = own[i];
        println!(
            "| {name} | {:.1} | {:.1} / {:.1} / {:.1} | {:.1} |",
            bare[i],
            o[0],
            o[1],
            o[2],
            o.iter().sum::<f64>() / rounds as f64
        );
    }
}

/// The only function the profile collects in.
#[inline(never)]
fn measured(run: impl FnOnce()) {
    run();
}

fn main() {
    let idle = env_or("LLMKIT_BENCH_IDLE", 0usize);
    if idle > 0 {
        idle_experiment(idle);
        return;
    }
    let layers = env_or("LLMKIT_BENCH_LAYER_COUNTS", 0usize);
    if layers > 0 {
        layer_counts(layers);
        return;
    }
    let count = env_or("LLMKIT_BENCH_COUNTS", 0usize);
    if count > 0 {
        counts(count);
        return;
    }
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
