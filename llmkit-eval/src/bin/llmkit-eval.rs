//! `llmkit-eval`: run, compare and gate evals from a shell or CI job, without linking the
//! application (outputs come from a JSON-lines file the application wrote).
//!
//! Exit codes: 0 success (gate passed), 1 gate failed, 2 bad input.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use llmkit_core::Decimal;
use llmkit_eval::gate::{EXIT_ERROR, GateOutcome, evaluate_gate};
use llmkit_eval::{
    Baseline, CompareOptions, Comparison, Dataset, EvalError, Evaluator, GateConfig, OutputsFile,
    RunResult, Runner, assertions, reference, report,
};

#[derive(Debug, Parser)]
#[command(
    name = "llmkit-eval",
    version,
    about = "Run LLM evals over a JSON-lines dataset, compare two runs, and gate CI on the results.",
    long_about = "Run LLM evals over a JSON-lines dataset, compare two runs, and gate CI on the results.\n\n\
Typical CI job:\n  llmkit-eval run --dataset cases.jsonl --outputs outputs.jsonl --rouge-l 0.5 --out eval-out\n  \
llmkit-eval gate --run eval-out/run.json --baseline eval/baseline.json --min-pass-rate 0.8 --max-regressed 0 --json eval-out/gate.json\n  \
llmkit-eval report --html eval-out/report.html eval-out/run.json --baseline main/run.json --gate eval-out/gate.json\n\n\
Exit codes: 0 success, 1 gate failed, 2 bad input."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score recorded outputs against a dataset and write run.json, report.md and junit.xml.
    Run(RunArgs),
    /// Compare two runs case by case (bootstrap CI, McNemar's test, regressed cases).
    Compare(CompareArgs),
    /// Check a run against thresholds and a baseline file; exits 1 when a check fails.
    Gate(GateArgs),
    /// Write one self-contained HTML page for a run (verdict, A/B diffs, calibration, trend).
    Report(ReportArgs),
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// The run to show (run.json written by `run`).
    #[arg(value_name = "RUN_JSON")]
    run: PathBuf,
    /// Where to write the HTML page.
    #[arg(long, value_name = "OUT_HTML")]
    html: PathBuf,
    /// Another run on the same cases to compare with (a run.json, not a gate baseline file).
    #[arg(long, value_name = "RUN_JSON")]
    baseline: Option<PathBuf>,
    /// The gate outcome to show (gate.json written by `gate --json` or the example).
    #[arg(long, value_name = "GATE_JSON")]
    gate: Option<PathBuf>,
    /// An earlier run for the trend chart; repeatable.
    #[arg(long, value_name = "RUN_JSON")]
    history: Vec<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Dataset: JSON lines, one case per line ({"id", "inputs", "reference"?, "expected_ids"?, "tags"?, "metadata"?}).
    #[arg(long, value_name = "FILE")]
    dataset: PathBuf,
    /// Outputs produced by your application: JSON lines {"id", "output", "latency_ms"?, "retrieved_ids"?, "usage"?, "cost"?, "model"?}.
    #[arg(long, value_name = "FILE")]
    outputs: PathBuf,
    /// Run name in reports (default: the outputs file stem).
    #[arg(long)]
    name: Option<String>,
    /// Directory for run.json, report.md and junit.xml.
    #[arg(long, value_name = "DIR", default_value = "eval-out")]
    out: PathBuf,
    /// Require the output to be JSON.
    #[arg(long)]
    valid_json: bool,
    /// Require the output to match this JSON Schema file.
    #[arg(long, value_name = "FILE")]
    schema: Option<PathBuf>,
    /// Require the output to contain this text (case-sensitive); repeatable.
    #[arg(long, value_name = "TEXT")]
    contains: Vec<String>,
    /// Forbid this text in the output (case-insensitive); repeatable.
    #[arg(long, value_name = "TEXT")]
    not_contains: Vec<String>,
    /// Require a match of this regular expression; repeatable.
    #[arg(long, value_name = "REGEX")]
    regex: Vec<String>,
    /// Require every term in the case's metadata field KEY (string or array) to appear.
    #[arg(long, value_name = "KEY")]
    contains_metadata: Vec<String>,
    /// Require an exact match with the case's reference.
    #[arg(long)]
    exact: bool,
    /// Require a normalized match (case, punctuation and articles ignored) with the reference.
    #[arg(long)]
    normalized: bool,
    /// Token F1 against the reference; the value is the passing threshold (0..=1).
    #[arg(long, value_name = "THRESHOLD")]
    token_f1: Option<f64>,
    /// ROUGE-L F-measure against the reference; the value is the passing threshold (0..=1).
    #[arg(long, value_name = "THRESHOLD")]
    rouge_l: Option<f64>,
    /// Fail cases slower than this many milliseconds.
    #[arg(long, value_name = "MS")]
    max_latency_ms: Option<u64>,
    /// Fail cases costing more than this many US dollars (unknown cost fails).
    #[arg(long, value_name = "USD")]
    max_cost_usd: Option<Decimal>,
    /// Cutoff k for retrieval metrics (cases with expected_ids).
    #[arg(long, default_value_t = 5)]
    k: usize,
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// The reference run (run.json written by `run`).
    #[arg(long, value_name = "RUN_JSON")]
    baseline: PathBuf,
    /// The run under test.
    #[arg(long, value_name = "RUN_JSON")]
    candidate: PathBuf,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 2000)]
    resamples: usize,
    /// Bootstrap RNG seed (same seed, same interval).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Confidence level of the interval.
    #[arg(long, default_value_t = 0.95)]
    level: f64,
    /// Also write comparison.json and report.md into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct GateArgs {
    /// The run to check (run.json written by `run`).
    #[arg(long, value_name = "RUN_JSON")]
    run: PathBuf,
    /// Baseline file for the relative checks (written by --write-baseline).
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Fail below this pass rate (0..=1).
    #[arg(long)]
    min_pass_rate: Option<f64>,
    /// Fail below this mean score (0..=1).
    #[arg(long)]
    min_mean_score: Option<f64>,
    /// Fail when the pass rate dropped more than this versus the baseline.
    #[arg(long)]
    max_pass_rate_drop: Option<f64>,
    /// Fail when the mean score dropped more than this versus the baseline.
    #[arg(long)]
    max_score_drop: Option<f64>,
    /// Fail when more than this many cases went from pass (in the baseline) to fail.
    #[arg(long)]
    max_regressed: Option<usize>,
    /// Fail when there are more than this many target or evaluator errors.
    #[arg(long)]
    max_errors: Option<usize>,
    /// Fail below this mean retrieval recall@k.
    #[arg(long)]
    min_recall: Option<f64>,
    /// Fail when an LLM judge was not calibrated or agrees with humans less than this.
    #[arg(long)]
    judge_floor: Option<f64>,
    /// Write this run as the new baseline to FILE (after checking).
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    /// Write the gate outcome as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run(a),
        Command::Compare(a) => compare(a),
        Command::Gate(a) => gate(a),
        Command::Report(a) => html_report(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("llmkit-eval: {e}");
            ExitCode::from(EXIT_ERROR as u8)
        }
    }
}

fn evaluators(a: &RunArgs) -> Result<Vec<Arc<dyn Evaluator>>, EvalError> {
    let mut out: Vec<Arc<dyn Evaluator>> = Vec::new();
    if a.valid_json {
        out.push(assertions::valid_json());
    }
    if let Some(path) = &a.schema {
        let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
        let schema: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| EvalError::Config(format!("{}: {e}", path.display())))?;
        out.push(assertions::matches_schema(&schema)?);
    }
    out.extend(a.contains.iter().map(|t| assertions::contains(t.clone())));
    out.extend(
        a.not_contains
            .iter()
            .map(|t| assertions::not_contains(t.clone())),
    );
    for r in &a.regex {
        out.push(assertions::matches_regex(r)?);
    }
    out.extend(
        a.contains_metadata
            .iter()
            .map(|k| assertions::contains_metadata(k.clone())),
    );
    if a.exact {
        out.push(reference::exact_match());
    }
    if a.normalized {
        out.push(reference::normalized_match());
    }
    if let Some(t) = a.token_f1 {
        out.push(reference::token_f1(t));
    }
    if let Some(t) = a.rouge_l {
        out.push(reference::rouge_l(t));
    }
    if let Some(ms) = a.max_latency_ms {
        out.push(assertions::latency_below(Duration::from_millis(ms)));
    }
    if let Some(usd) = a.max_cost_usd {
        out.push(assertions::cost_below(usd));
    }
    Ok(out)
}

fn run(a: RunArgs) -> Result<u8, EvalError> {
    let dataset = Dataset::load(&a.dataset)?;
    let outputs = OutputsFile::load(&a.outputs)?;
    let name = a.name.clone().unwrap_or_else(|| {
        a.outputs
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("run")
            .to_owned()
    });
    let runner = Runner::new()
        .concurrency(16)
        .retrieval_k(a.k)
        .evaluators(evaluators(&a)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| EvalError::Config(format!("cannot start runtime: {e}")))?;
    let result = rt.block_on(runner.run(&name, &dataset, &outputs))?;
    print!("{}", report::terminal(&result));
    let written = report::write_all(&a.out, &result, None, None)?;
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(0)
}

fn compare(a: CompareArgs) -> Result<u8, EvalError> {
    let baseline = RunResult::load(&a.baseline)?;
    let candidate = RunResult::load(&a.candidate)?;
    let options = CompareOptions {
        resamples: a.resamples,
        seed: a.seed,
        level: a.level,
        ..Default::default()
    };
    let comparison = Comparison::new(&baseline, &candidate, options);
    print!("{}", comparison.summary());
    if let Some(dir) = &a.out {
        for p in report::write_all(dir, &candidate, Some(&comparison), None)? {
            println!("wrote {}", p.display());
        }
    }
    Ok(0)
}

fn gate(a: GateArgs) -> Result<u8, EvalError> {
    let run = RunResult::load(&a.run)?;
    let baseline = a.baseline.as_ref().map(Baseline::load).transpose()?;
    let config = GateConfig {
        min_pass_rate: a.min_pass_rate,
        min_mean_score: a.min_mean_score,
        max_pass_rate_drop: a.max_pass_rate_drop,
        max_mean_score_drop: a.max_score_drop,
        max_regressed_cases: a.max_regressed,
        max_errors: a.max_errors,
        min_retrieval_recall: a.min_recall,
        judge_agreement_floor: a.judge_floor,
        ..GateConfig::default()
    };
    let outcome = evaluate_gate(&run, baseline.as_ref(), &config);
    print!("{}", outcome.report());
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&outcome).unwrap_or_default();
        std::fs::write(path, text).map_err(|e| EvalError::io(path, e))?;
    }
    if let Some(path) = &a.write_baseline {
        Baseline::from_run(&run).save(path)?;
        println!("wrote baseline {}", path.display());
    }
    Ok(u8::try_from(outcome.exit_code()).unwrap_or(1))
}

fn html_report(a: ReportArgs) -> Result<u8, EvalError> {
    let run = RunResult::load(&a.run)?;
    let baseline = match &a.baseline {
        None => None,
        Some(path) => Some(RunResult::load(path).map_err(|e| {
            // A gate baseline holds no outputs to diff; say so instead of a bare parse error.
            if Baseline::load(path).is_ok() {
                EvalError::Config(format!(
                    "{} is a gate baseline file, not a run: pass the baseline run's run.json",
                    path.display()
                ))
            } else {
                e
            }
        })?),
    };
    let gate: Option<GateOutcome> = a
        .gate
        .as_ref()
        .map(|path| {
            let text = std::fs::read_to_string(path).map_err(|e| EvalError::io(path, e))?;
            serde_json::from_str(&text)
                .map_err(|e| EvalError::Config(format!("{}: {e}", path.display())))
        })
        .transpose()?;
    let history = a
        .history
        .iter()
        .map(RunResult::load)
        .collect::<Result<Vec<_>, _>>()?;
    report::html::write(&a.html, &run, baseline.as_ref(), gate.as_ref(), &history)?;
    println!("wrote {}", a.html.display());
    Ok(0)
}
