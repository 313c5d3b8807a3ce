//! The `osprey` binary.

use clap::Parser;
use osprey_server::cli::{
    Cli, Command, LogFormat, PipelineCommand, ServeArgs, TrainCommand, TuneCommand,
};
use osprey_server::server::{build_state, run, Listeners};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// mimalloc: the request path allocates many small short-lived buffers; glibc's malloc took
/// about 9% of the server's CPU at concurrency 64 (perf), mimalloc less (see the README).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logging(args: &ServeArgs) {
    let filter = EnvFilter::try_new(&args.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&args).await?;
    let state = build_state(&args).await?;
    run(state, listeners, &args, shutdown_signal()).await?;
    Ok(())
}

/// `osprey train run`: exits with the job's outcome.
fn train_run(args: osprey_controller::training::local::TrainRunArgs) -> anyhow::Result<()> {
    use osprey_controller::training::local::LocalError;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match rt.block_on(osprey_controller::training::local::run(
        args,
        shutdown_signal(),
    )) {
        Ok(out) if out.succeeded => Ok(()),
        Ok(out) => std::process::exit(if out.interrupted { 130 } else { 1 }),
        Err(e @ (LocalError::Spec(_) | LocalError::Manifest(_))) => {
            eprintln!("osprey train run: {e}");
            std::process::exit(2)
        }
        Err(e) => Err(e.into()),
    }
}

/// `osprey tune collect`: exits with the trial command's code (1 when the collector failed).
fn tune_collect(args: osprey_controller::tuning::collect::CollectArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(osprey_controller::tuning::collect::run(&args)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1)
        }
    }
}

/// `osprey tune run`: exits with the experiment's outcome.
fn tune_run(args: osprey_controller::tuning::local::TuneRunArgs) -> anyhow::Result<()> {
    use osprey_controller::tuning::local::TuneError;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match rt.block_on(osprey_controller::tuning::local::run(
        args,
        shutdown_signal(),
    )) {
        Ok(report) if report.succeeded => Ok(()),
        Ok(report) => std::process::exit(if report.reason == "Interrupted" {
            130
        } else {
            1
        }),
        Err(e @ TuneError::Io(_)) => Err(e.into()),
        Err(e) => {
            eprintln!("osprey tune run: {e}");
            std::process::exit(2)
        }
    }
}

/// `osprey pipeline run`: exits with the run's outcome.
fn pipeline_run(args: osprey_controller::pipeline::local::PipelineRunArgs) -> anyhow::Result<()> {
    use osprey_controller::pipeline::PipelineError;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match rt.block_on(osprey_controller::pipeline::local::run(
        args,
        shutdown_signal(),
    )) {
        Ok(report) if report.succeeded => Ok(()),
        Ok(report) => std::process::exit(if report.interrupted { 130 } else { 1 }),
        Err(e @ PipelineError::Io(_)) => Err(e.into()),
        Err(e) => {
            eprintln!("osprey pipeline run: {e}");
            std::process::exit(2)
        }
    }
}

/// `osprey pipeline launch`: exits with the command's exit code, or 1 when the launcher failed.
fn pipeline_launch(args: osprey_controller::pipeline::launch::LaunchArgs) -> anyhow::Result<()> {
    use osprey_controller::pipeline::launch;
    if let Some(dest) = &args.copy_to {
        let bytes = launch::copy_self(dest)?;
        eprintln!(
            "osprey pipeline launch: copied this binary to {} ({bytes} bytes)",
            dest.display()
        );
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match rt.block_on(launch::run(&args)) {
        Ok(0) => Ok(()),
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("osprey pipeline launch: {e}");
            std::process::exit(1)
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Report(args) => osprey_loadtest::report::run(&args).map(|_| ()),
        Command::Loadtest(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(osprey_loadtest::run(args)).map(|_| ())),
        Command::Crd { out_dir: Some(dir) } => osprey_controller::cmd::crds()
            .map_err(anyhow::Error::from)
            .and_then(|files| {
                for (name, yaml) in files {
                    std::fs::write(dir.join(&name), yaml)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.join(&name).display()))?;
                }
                Ok(())
            }),
        Command::Crd { out_dir: None } => osprey_controller::cmd::crd_yaml()
            .map_err(anyhow::Error::from)
            .and_then(|y| {
                use std::io::Write;
                match std::io::stdout().lock().write_all(y.as_bytes()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                    r => r.map_err(anyhow::Error::from),
                }
            }),
        Command::Pull { uri, dir } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| {
                rt.block_on(osprey_controller::pull::pull(&uri, &dir))
                    .map_err(anyhow::Error::from)
            })
            .map(|p| {
                eprintln!(
                    "osprey pull: {} files, {} bytes into {}",
                    p.files,
                    p.bytes,
                    dir.display()
                )
            }),
        Command::Controller(args) => {
            let filter =
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(std::io::stderr().is_terminal())
                .with_writer(std::io::stderr)
                .init();
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    rt.block_on(osprey_controller::cmd::run_controller(
                        args,
                        shutdown_signal(),
                    ))
                    .map_err(anyhow::Error::from)
                })
        }
        Command::Train {
            command: TrainCommand::Run(args),
        } => train_run(args),
        Command::Pipeline {
            command: PipelineCommand::Run(args),
        } => pipeline_run(args),
        Command::Tune {
            command: TuneCommand::Run(args),
        } => tune_run(args),
        Command::Tune {
            command: TuneCommand::Collect(args),
        } => tune_collect(args),
        Command::Tune {
            command: TuneCommand::Suggest(args),
        } => match osprey_controller::tuning::ask::suggest(&args) {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
                Ok(())
            }
            Err(e) => {
                eprintln!("osprey tune suggest: {e}");
                std::process::exit(2)
            }
        },
        Command::Pipeline {
            command: PipelineCommand::Launch(args),
        } => pipeline_launch(args),
        Command::Serve(args) => {
            init_logging(&args);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(serve(args)))
        }
    };
    if let Err(e) = result {
        eprintln!("osprey: {e:#}");
        std::process::exit(1);
    }
}
