//! The command line of `osprey loadtest`.

use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// How requests travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// REST with JSON tensor data.
    RestJson,
    /// REST with the binary tensor extension.
    RestBinary,
    /// gRPC with raw_input_contents.
    Grpc,
}

/// Input tensor contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputData {
    Random,
    Zeros,
}

#[derive(Debug, Clone, Args)]
pub struct LoadtestArgs {
    /// Server address, host:port (REST port for rest-*, gRPC port for grpc).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub url: String,
    /// REST address used to read metadata and statistics when --transport grpc (default: none,
    /// metadata then comes over gRPC and statistics are skipped).
    #[arg(long)]
    pub stats_url: Option<String>,
    /// The server's Prometheus endpoint (host:port, path /metrics): its `process_cpu_seconds_total`
    /// read before and after each step gives the server CPU per inference. Default: port 8002
    /// on the host of --url (Osprey's default); skipped when nothing answers there.
    #[arg(long)]
    pub metrics_url: Option<String>,
    #[arg(long, value_enum, default_value = "rest-binary")]
    pub transport: Transport,
    /// Model name.
    #[arg(long, short = 'm')]
    pub model: String,
    /// Model version (empty: the server's choice).
    #[arg(long, default_value = "")]
    pub model_version: String,
    /// Closed loop: comma-separated concurrency levels, one step each.
    #[arg(long, default_value = "1")]
    pub concurrency: String,
    /// Open loop: comma-separated request rates per second, one step each (replaces --concurrency).
    #[arg(long)]
    pub rate: Option<String>,
    /// Open loop: exponential (Poisson) gaps between requests instead of even ones.
    #[arg(long)]
    pub poisson: bool,
    /// Rows per request (the batch dimension), for models with a batch dimension.
    #[arg(long, default_value_t = 1)]
    pub batch_size: usize,
    /// Values for variable dimensions other than the batch, e.g. `--shape input:64`.
    #[arg(long)]
    pub shape: Vec<String>,
    #[arg(long, value_enum, default_value = "random")]
    pub data: InputData,
    /// Send these requests instead (round-robin): a KServe v2 JSON request, or an array of them.
    #[arg(long, value_name = "PATH")]
    pub input_file: Option<PathBuf>,
    /// Measured seconds per step.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Stop a step after this many measured requests (whichever of this and --duration comes first).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Unmeasured seconds before each step.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Per-request timeout in seconds; a step never runs longer than warm-up + duration + this.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// gRPC: HTTP/2 connections to spread requests over.
    #[arg(long, default_value_t = 4)]
    pub grpc_connections: usize,
    /// Open loop: most requests in flight before new ones count as `generator_saturated`.
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,
    /// Write all results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write one CSV row per step here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// Write an HTML report of this run here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Label of this target in reports (default: the URL).
    #[arg(long)]
    pub label: Option<String>,
    /// No progress display.
    #[arg(long)]
    pub quiet: bool,
    /// Most failed requests tolerated, as a share of all measured requests (0 to 1): above
    /// it the run exits non-zero, after writing its results.
    #[arg(long, default_value_t = 0.0)]
    pub max_error_rate: f64,
}

/// One step of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    Closed { concurrency: usize },
    Open { rate: f64 },
}

fn list<T: std::str::FromStr>(text: &str, what: &str) -> anyhow::Result<Vec<T>> {
    text.split(',')
        .map(|v| {
            v.trim()
                .parse::<T>()
                .map_err(|_| anyhow::anyhow!("--{what}: '{v}' is not a number"))
        })
        .collect()
}

impl LoadtestArgs {
    /// The steps to run, in order.
    pub fn steps(&self) -> anyhow::Result<Vec<Step>> {
        match &self.rate {
            Some(r) => Ok(list::<f64>(r, "rate")?
                .into_iter()
                .map(|rate| Step::Open { rate })
                .collect()),
            None => Ok(list::<usize>(&self.concurrency, "concurrency")?
                .into_iter()
                .map(|concurrency| Step::Closed {
                    concurrency: concurrency.max(1),
                })
                .collect()),
        }
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration.max(0.0))
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup.max(0.0))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout.max(0.001))
    }

    /// The transport's spelling on the command line.
    pub fn transport_name(&self) -> String {
        self.transport
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_string())
    }

    pub fn label(&self) -> String {
        self.label.clone().unwrap_or_else(|| self.url.clone())
    }
}
