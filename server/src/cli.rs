//! The command line, in Triton's spelling where Triton has the flag.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "osprey",
    version,
    about = "Osprey: a KServe v2 / Triton-compatible model inference server"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once at start-up and matched once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the models of a model repository over REST, gRPC and Prometheus metrics.
    Serve(ServeArgs),
    /// Drive load at any KServe v2 server and report throughput and latency.
    Loadtest(osprey_loadtest::LoadtestArgs),
    /// Combine `osprey loadtest --json` files into one HTML and CSV report.
    Report(osprey_loadtest::report::ReportArgs),
    /// Run the Kubernetes controller: InferenceServices become Deployments, Services and
    /// autoscalers of Osprey servers; PyTorchJobs and TFJobs (the Kubeflow training operator's
    /// API) become pods and headless Services (kubeconfig from KUBECONFIG, ~/.kube/config or
    /// in-cluster).
    Controller(osprey_controller::cmd::ControllerArgs),
    /// Print the CustomResourceDefinitions (YAML) the controller serves: InferenceService,
    /// PyTorchJob, TFJob and PipelineRun.
    Crd {
        /// Write one file per CRD (`<name>.yaml`, as in deploy/crds) into this directory instead
        /// of printing them.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Training jobs (Kubeflow's PyTorchJob and TFJob) on this machine.
    Train {
        #[command(subcommand)]
        command: TrainCommand,
    },
    /// Hyperparameter tuning: Katib Experiments on this machine.
    Tune {
        #[command(subcommand)]
        command: TuneCommand,
    },
    /// Kubeflow Pipelines (KFP v2) compiled by the official SDK: run on this machine, and the
    /// launcher inside a task's pod on Kubernetes.
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Fetch a model repository or one model's directory into DIR (file://, pvc://, http(s)://,
    /// s3:// with AWS_* variables, gs:// with GOOGLE_OAUTH_ACCESS_TOKEN and STORAGE_EMULATOR_HOST):
    /// what an InferenceService's init container runs.
    Pull {
        /// Where the repository is.
        uri: String,
        /// Where it goes (created if missing).
        dir: std::path::PathBuf,
    },
}

/// `osprey train` subcommands.
#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Run a PyTorchJob or TFJob manifest's replicas as local processes, with the environment,
    /// restart policies, backoffLimit and activeDeadlineSeconds the controller gives them on
    /// Kubernetes. Exit code 0 only when the job succeeded (1: failed, 2: bad manifest,
    /// 130: interrupted).
    Run(osprey_controller::training::local::TrainRunArgs),
}

/// `osprey pipeline` subcommands.
#[derive(Debug, Subcommand)]
pub enum PipelineCommand {
    /// Run a compiled KFP v2 pipeline (the SDK's YAML) with its tasks as local processes
    /// (lightweight Python components need a python3 with kfp on PATH: --python-path). Exit
    /// code 0 only when every task succeeded (1: the run failed, 2: the pipeline or a
    /// parameter was refused, 130: interrupted).
    Run(osprey_controller::pipeline::local::PipelineRunArgs),
    /// Inside a PipelineRun task's pod: substitute the placeholders of the component's command
    /// (after `--`) from the executor input, run it, and write its outputs as JSON to the
    /// termination message file. Exit code: the command's, or 1 when the launcher itself failed
    /// (outputs missing, of the wrong type or too large). `--copy-to PATH` copies this binary
    /// to PATH instead (the pod's init container).
    Launch(osprey_controller::pipeline::launch::LaunchArgs),
}

#[derive(Debug, Subcommand)]
pub enum TuneCommand {
    /// Run a Katib Experiment (kubeflow.org/v1beta1) with its trials as local processes (the
    /// trial template's primary container: a batch Job's or a Pod's command, args and env),
    /// `parallelTrialCount` at a time; algorithms random and grid so far. Exit code 0 when the
    /// experiment succeeded (goal, maxTrialCount or the end of the grid), 1 when it failed
    /// (maxFailedTrialCount), 2 when the manifest was refused.
    Run(osprey_controller::tuning::local::TuneRunArgs),
    /// Print the experiment's next assignments (one JSON list of `{name, value}` a line) for
    /// the trials so far (`--trials FILE`, as `tune run --output` writes it): the algorithm
    /// without running anything. Nothing printed: the search has ended. Exit code 2 when the
    /// manifest or the trials file was refused.
    Suggest(osprey_controller::tuning::ask::TuneSuggestArgs),
    /// Inside a Trial's pod: run the trial's command (after `--`) with its output passed
    /// through, collect its metrics (output or `--file`), stop it when an early-stopping rule
    /// is met, and write the observation as JSON to the termination message file. Exit code:
    /// the command's (0 when stopped early), 1 when the collector itself failed.
    Collect(osprey_controller::tuning::collect::CollectArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Model repository: <repo>/<model>/config.pbtxt and <repo>/<model>/<version>/model.onnx;
    /// or one model's own directory (KServe's storageUri layout: a config.pbtxt, a model.onnx
    /// or numeric version directories at its root), served as a repository of that one model.
    #[arg(long, env = "OSPREY_MODEL_REPOSITORY", default_value = "models")]
    pub model_repository: PathBuf,
    /// When --model-repository is one model's directory: the name it is served under (KServe
    /// passes the InferenceService's name); default: the directory's name. Ignored for a
    /// repository.
    #[arg(long, value_name = "NAME")]
    pub model_name: Option<String>,
    /// Load only these models at start (repeatable); default: every model in the repository.
    #[arg(long = "model", alias = "load-model", value_name = "NAME")]
    pub models: Vec<String>,
    /// How the repository is managed, as in Triton: `explicit` loads the start-up models (all of
    /// them unless `--model` is given) and serves the load/unload API; `none` loads them and
    /// refuses the API; `poll` loads every model, refuses the API and follows the repository's
    /// changes every `--repository-poll-secs`.
    #[arg(long, value_enum, default_value_t = crate::model::control::ModelControl::Explicit)]
    pub model_control_mode: crate::model::control::ModelControl,
    /// Seconds between two scans of the repository in `--model-control-mode poll`.
    #[arg(long, default_value_t = 15)]
    pub repository_poll_secs: u64,
    /// Exit (code 1) when a start-up model fails to load, instead of serving the others.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    pub exit_on_error: bool,
    /// Address every listener binds unless its own address flag is given.
    #[arg(long, default_value = "0.0.0.0")]
    pub address: IpAddr,
    /// Address of the REST listener.
    #[arg(long)]
    pub http_address: Option<IpAddr>,
    /// Address of the gRPC listener.
    #[arg(long)]
    pub grpc_address: Option<IpAddr>,
    /// Address of the metrics listener.
    #[arg(long)]
    pub metrics_address: Option<IpAddr>,
    /// REST port (0 picks a free port).
    #[arg(long, default_value_t = 8000)]
    pub http_port: u16,
    /// gRPC port (0 picks a free port).
    #[arg(long, default_value_t = 8001)]
    pub grpc_port: u16,
    /// Prometheus metrics port, serving /metrics (0 picks a free port).
    #[arg(long, default_value_t = 8002)]
    pub metrics_port: u16,
    /// Largest gRPC message received or sent, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub grpc_max_message_bytes: usize,
    /// Largest REST request body, in bytes; larger bodies get 413.
    #[arg(long, default_value_t = 64 << 20)]
    pub http_max_body_bytes: usize,
    /// Readiness requires every model loaded at start to be ready (Triton's --strict-readiness).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub strict_readiness: bool,
    /// max_batch_size given to models without config.pbtxt whose inputs and outputs all have a
    /// variable first dimension (Triton's default-max-batch-size).
    #[arg(long, default_value_t = 4)]
    pub default_max_batch_size: i32,
    /// ONNX Runtime intra-op threads per model instance. 0 (the default): one core is left to
    /// the front ends and the others are shared among the model's instances, at least one
    /// thread each (2 cores, 1 instance: 1 thread; 16 cores, 1 instance: 15). A model's
    /// `intra_op_thread_count` parameter overrides it.
    #[arg(long, default_value_t = 0)]
    pub intra_op_threads: usize,
    /// Let ONNX Runtime's idle intra-op threads spin waiting for work instead of sleeping
    /// (lower model latency, but each spinning thread takes a core from the request path).
    #[arg(long)]
    pub intra_op_spinning: bool,
    /// Requests that may wait per model instance before new ones get 503.
    #[arg(long, default_value_t = 1024)]
    pub queue_per_instance: usize,
    /// KServe's batcher: turn on dynamic batching, waiting at most this many milliseconds for a
    /// batch, for every model that can batch and whose config.pbtxt has no `dynamic_batching`.
    #[arg(long, value_name = "MS")]
    pub batcher_max_latency_ms: Option<u64>,
    /// KServe's batcher: cap `max_batch_size` of the models it batches (with
    /// --batcher-max-latency-ms).
    #[arg(long, value_name = "N")]
    pub batcher_max_batch_size: Option<i32>,
    /// Triton's response cache, `local,size=N`: one server-wide LRU of at most N bytes (keys
    /// and cached output tensors) for the models whose config.pbtxt has
    /// `response_cache { enable: true }`. Off unless given.
    #[arg(long, value_name = "local,size=N")]
    pub cache_config: Option<crate::cache::CacheConfig>,
    /// Triton's metrics settings, `KEY=VALUE` (repeatable): `summary_latencies=true` exports the
    /// latency summaries `nv_inference_*_summary_us` (default false); `summary_quantiles=
    /// 0.5:0.05,0.9:0.01,...` their quantile:error pairs (default Triton's 0.5, 0.9, 0.95,
    /// 0.99, 0.999); `counter_latencies=false` drops the `nv_inference_*_duration_us` counters
    /// (default true).
    #[arg(long, value_name = "KEY=VALUE")]
    pub metrics_config: Vec<crate::metrics::MetricsSetting>,
    /// Most BYTES elements (strings) in one input of one request; more get 400.
    #[arg(long, default_value_t = 65_536)]
    pub max_bytes_elements: usize,
    /// Most seconds one inference may take, queueing included; past it the request is dropped
    /// (never run if still queued) and answered 504 / DEADLINE_EXCEEDED. 0: no limit.
    #[arg(long, default_value_t = 0)]
    pub request_timeout_secs: u64,
    /// Most features (numbers, words or tokens) of one row the explainer takes.
    #[arg(long, default_value_t = 512)]
    pub explain_max_features: usize,
    /// Most model evaluations (perturbed rows) one explanation may need.
    #[arg(long, default_value_t = 262_144)]
    pub explain_max_rows: usize,
    /// Most seconds one explanation may run before it is stopped (504).
    #[arg(long, default_value_t = 60)]
    pub explain_timeout_secs: u64,
    /// Let model files be symlinks to anywhere (by default every file a model uses must resolve
    /// inside its own directory in the repository).
    #[arg(long)]
    pub model_symlinks: bool,
    /// Most instances one model may start (the sum of its `instance_group` counts); a larger
    /// configuration makes the model UNAVAILABLE with the reason.
    #[arg(long, default_value_t = 64)]
    pub max_instances_per_model: usize,
    /// Most open REST connections; a connection beyond it gets 503 and is closed.
    #[arg(long, default_value_t = 4096)]
    pub http_max_connections: usize,
    /// Most open gRPC connections; beyond it new connections are closed at once.
    #[arg(long, default_value_t = 4096)]
    pub grpc_max_connections: usize,
    /// A client must send a whole request head within this many seconds of opening the
    /// connection or of its previous answer (also the idle keep-alive timeout); 0: never.
    #[arg(long, default_value_t = 30)]
    pub http_header_timeout_secs: u64,
    /// Most concurrent HTTP/2 streams per connection, REST and gRPC.
    #[arg(long, default_value_t = 1024)]
    pub max_concurrent_streams: u32,
    /// PEM certificate chain: REST and gRPC are served over TLS (with --tls-key).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: clients must present a certificate signed by one of them (mutual
    /// TLS). Needs --tls-cert.
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Triton's restricted APIs over REST, `<categories>:<header>=<value>`: requests to an
    /// endpoint of these categories (comma-separated: health, metadata, inference,
    /// shared-memory, model-config, model-repository, statistics, trace, logging) must carry
    /// the header with that value. Repeatable, one category per flag at most.
    #[arg(long, value_name = "SPEC")]
    pub http_restricted_api: Vec<String>,
    /// The same for gRPC (`--grpc-restricted-protocol` in Triton's spelling).
    #[arg(long, value_name = "SPEC")]
    pub grpc_restricted_protocol: Vec<String>,
    /// A separate REST listener for operators (0 picks a free port): it serves every endpoint,
    /// and the categories of `--admin-api` are then refused on the public REST and gRPC
    /// listeners. Off unless given.
    #[arg(long, value_name = "PORT")]
    pub admin_port: Option<u16>,
    /// Address of the admin listener: loopback unless told otherwise, so that repository
    /// control is reachable only from the pod or host.
    #[arg(long, default_value = "127.0.0.1")]
    pub admin_address: IpAddr,
    /// The API categories (comma-separated, as in `--http-restricted-api`) that only the admin
    /// listener serves once `--admin-port` is given.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "model-repository,logging,trace"
    )]
    pub admin_api: Vec<String>,
    /// File of bearer tokens, one per line: REST and gRPC requests other than health checks
    /// must carry `Authorization: Bearer <token>` with one of them.
    #[arg(long, value_name = "PATH")]
    pub auth_token_file: Option<PathBuf>,
    /// On SIGTERM/SIGINT, how long in-flight requests may take before the server exits anyway.
    #[arg(long, alias = "exit-timeout-secs", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Path of libonnxruntime.so (else ORT_DYLIB_PATH, the project's .venv, Python's site-packages).
    #[arg(long, value_name = "PATH")]
    pub onnxruntime_library: Option<PathBuf>,
    /// Triton's trace configuration, repeatable: `mode=opentelemetry`, `level=TIMESTAMPS|OFF`
    /// (default OFF: no tracing), `rate=N` (one request in N, default 1000), `count=N` (-1: no
    /// limit), `opentelemetry,url=HOST:PORT/PATH` (OTLP/HTTP endpoint, default
    /// http://localhost:4318/v1/traces), `opentelemetry,resource=KEY=VALUE`.
    #[arg(long, value_name = "KEY=VALUE")]
    pub trace_config: Vec<crate::trace::config::TraceOption>,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// One log line per inference request at info level (target `osprey::access`): protocol,
    /// model, version, status, duration and request id.
    #[arg(long)]
    pub log_requests: bool,
    /// Log filter (tracing EnvFilter syntax); RUST_LOG also works.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}

impl ServeArgs {
    /// Arguments as a test would give them: loopback, port 0 everywhere.
    pub fn for_tests(model_repository: PathBuf) -> ServeArgs {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        let mut args = Only::parse_from([
            "serve",
            "--address",
            "127.0.0.1",
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--metrics-port",
            "0",
        ])
        .args;
        args.model_repository = model_repository;
        args
    }
}
