//! `support-service`: the reference llmkit service.
//!
//! ```text
//! support-service [--config FILE]                 serve (offline scripted model by default)
//! support-service [--config FILE] eval [--cases FILE] [--gate FILE]
//!                                                 run the eval set through the handler; exit 1 when the gate fails
//! support-service mock-openai [--listen ADDR]     a local OpenAI-compatible mock provider (load tests)
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use support_service::{App, Config, Secrets};

fn usage() -> ExitCode {
    eprintln!(
        "usage: support-service [--config FILE] [eval [--cases FILE] [--gate FILE] | mock-openai [--listen ADDR]]"
    );
    ExitCode::from(2)
}

#[derive(Debug, Default)]
struct Args {
    config: Option<PathBuf>,
    command: Option<String>,
    cases: Option<PathBuf>,
    gate: Option<PathBuf>,
    listen: Option<String>,
}

fn parse_args() -> Option<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => args.config = Some(it.next()?.into()),
            "--cases" => args.cases = Some(it.next()?.into()),
            "--gate" => args.gate = Some(it.next()?.into()),
            "--listen" => args.listen = Some(it.next()?),
            "eval" | "mock-openai" if args.command.is_none() => args.command = Some(a),
            _ => return None,
        }
    }
    Some(args)
}

fn init_logs() {
    // One JSON object per line; `SUPPORT_LOG` filters (default `info`).
    let filter = tracing_subscriber::EnvFilter::try_from_env("SUPPORT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(args) = parse_args() else {
        return usage();
    };
    init_logs();
    if args.command.as_deref() == Some("mock-openai") {
        return mock_openai(args.listen.as_deref().unwrap_or("127.0.0.1:9100")).await;
    }
    let config = match Config::load(args.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "configuration");
            return ExitCode::from(2);
        }
    };
    let secrets = match Secrets::load(&config.secrets, |name| std::env::var(name).ok()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "secrets");
            return ExitCode::from(2);
        }
    };
    if secrets.api_keys.is_empty() {
        tracing::warn!("no API keys configured: the API is open (tenant `public`)");
    }
    let drain = Duration::from_secs(config.server.drain_seconds);
    let listen = config.server.listen.clone();
    let version = config.model.version.clone();
    let app = match App::build(config, secrets).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "startup");
            return ExitCode::from(2);
        }
    };
    if args.command.as_deref() == Some("eval") {
        let cases = args
            .cases
            .unwrap_or_else(|| support_service::eval::DEFAULT_CASES.into());
        let gate = args
            .gate
            .unwrap_or_else(|| support_service::eval::DEFAULT_GATE.into());
        return match support_service::eval::run(&app, &cases, &gate).await {
            Ok((outcome, run)) => {
                for case in run.cases.iter().filter(|c| !c.passed) {
                    println!("FAIL {}: {:?}", case.id, case.scores);
                }
                println!(
                    "{} cases, {} passed\n{}",
                    run.summary.cases,
                    run.summary.passed,
                    outcome.report()
                );
                ExitCode::from(u8::try_from(outcome.exit_code()).unwrap_or(1))
            }
            Err(e) => {
                tracing::error!(error = %e, "eval");
                ExitCode::from(2)
            }
        };
    }
    serve(app, &listen, &version, drain).await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn bind(listen: &str) -> Option<llmkit::serve::NoDelayListener> {
    match llmkit::serve::bind(listen).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::error!(error = %e, listen, "bind");
            None
        }
    }
}

async fn serve(app: App, listen: &str, version: &str, drain: Duration) -> ExitCode {
    let Some(listener) = bind(listen).await else {
        return ExitCode::from(2);
    };
    let addr = axum::serve::Listener::local_addr(&listener)
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(addr = %addr, model_version = version, "listening");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app.router()).with_graceful_shutdown(async move {
        let _ = stop_rx.await;
    });
    let mut task = tokio::spawn(async move { server.await });
    tokio::select! {
        ended = &mut task => {
            tracing::error!(?ended, "server stopped on its own");
            app.flush().await;
            return ExitCode::from(1);
        }
        () = shutdown_signal() => {}
    }
    // Stop accepting; requests in flight finish, up to the drain deadline.
    let in_flight = app.serve().http_metrics().in_flight();
    tracing::info!(
        in_flight,
        drain_seconds = drain.as_secs(),
        "shutdown: draining"
    );
    let _ = stop_tx.send(());
    let code = match tokio::time::timeout(drain, &mut task).await {
        Ok(_) => {
            tracing::info!("shutdown: drained");
            ExitCode::SUCCESS
        }
        Err(_) => {
            let left = app.serve().http_metrics().in_flight();
            tracing::warn!(abandoned = left, "shutdown: drain deadline passed");
            task.abort();
            ExitCode::from(1)
        }
    };
    app.flush().await;
    tracing::info!("shutdown: trace export flushed, exiting");
    code
}

/// A local OpenAI-compatible provider for load tests: the same routes over a scripted model
/// answering a fixed sentence at once.
async fn mock_openai(listen: &str) -> ExitCode {
    let model = Arc::new(llmkit::core::ScriptedModel::always(
        "Refunds are accepted within 30 days of delivery.",
    ));
    let serve = llmkit::serve::Serve::builder(model).build();
    let Some(listener) = bind(listen).await else {
        return ExitCode::from(2);
    };
    let addr = axum::serve::Listener::local_addr(&listener)
        .map(|a| a.to_string())
        .unwrap_or_default();
    tracing::info!(addr = %addr, "mock provider listening");
    match axum::serve(listener, serve.router())
        .with_graceful_shutdown(shutdown_signal())
        .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(1),
    }
}
