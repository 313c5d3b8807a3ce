//! Prometheus metrics: every name, its labels and buckets are declared here. Handles are
//! registered once per model version ([`ModelMetrics`]) so the request path allocates no labels.
//!
//! | metric | type | labels | Triton counterpart |
//! |---|---|---|---|
//! | `osprey_inference_request_success_total` | counter | model, version, protocol | nv_inference_request_success |
//! | `osprey_inference_request_failure_total` | counter | model, version, protocol, reason | nv_inference_request_failure |
//! | `osprey_inference_count_total` | counter (rows) | model, version | nv_inference_count |
//! | `osprey_inference_exec_count_total` | counter (executions) | model, version | nv_inference_exec_count |
//! | `osprey_inference_pending_request_count` | gauge | model, version | nv_inference_pending_request_count |
//! | `osprey_inference_request_duration_seconds` | histogram | model, version, protocol | nv_inference_request_duration_us |
//! | `osprey_inference_queue_duration_seconds` | histogram | model, version | nv_inference_queue_duration_us |
//! | `osprey_inference_compute_input_duration_seconds` | histogram | model, version | nv_inference_compute_input_duration_us |
//! | `osprey_inference_compute_infer_duration_seconds` | histogram | model, version | nv_inference_compute_infer_duration_us |
//! | `osprey_inference_compute_output_duration_seconds` | histogram | model, version | nv_inference_compute_output_duration_us |
//! | `osprey_inference_batch_size` | histogram (rows per execution) | model, version | — |
//! | `process_cpu_seconds_total` (counter), `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `osprey_cpu_utilization` | read from /proc at scrape | — | nv_cpu_utilization, nv_cpu_memory_used_bytes |
//! | `nv_gpu_utilization`, `nv_gpu_memory_total_bytes`, `nv_gpu_memory_used_bytes`, `nv_gpu_power_usage`, `nv_gpu_power_limit`, `nv_energy_consumption` | read through NVML at scrape, only on a machine with GPUs | gpu_uuid | the same names |
//!
//! Beside them, Triton's own series under Triton's names and units ([`triton`]): its counters
//! and, with `--metrics-config summary_latencies=true` ([`config`]), its latency summaries;
//! every series carries a `# HELP` line.
//!
//! Modules: [`config`] `--metrics-config`; [`histogram`] the fixed-memory histograms;
//! [`summary`] the fixed-memory sliding-window summaries, over [`sketch`]'s log-linear
//! buckets; [`process`] the /proc series; [`gpu`] the GPUs' series; [`triton`] Triton's series.

pub mod config;
mod gpu;
mod histogram;
mod process;
mod sketch;
mod summary;
pub mod triton;

pub use config::{MetricsConfig, MetricsConfigError, MetricsSetting};

use histogram::Histogram;
use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;
use triton::TritonMetrics;

const SUCCESS: &str = "osprey_inference_request_success_total";
const FAILURE: &str = "osprey_inference_request_failure_total";
const INFERENCES: &str = "osprey_inference_count_total";
const EXECUTIONS: &str = "osprey_inference_exec_count_total";
const PENDING: &str = "osprey_inference_pending_request_count";
const REQUEST_DURATION: &str = "osprey_inference_request_duration_seconds";
const QUEUE_DURATION: &str = "osprey_inference_queue_duration_seconds";
const COMPUTE_INPUT: &str = "osprey_inference_compute_input_duration_seconds";
const COMPUTE_INFER: &str = "osprey_inference_compute_infer_duration_seconds";
const COMPUTE_OUTPUT: &str = "osprey_inference_compute_output_duration_seconds";
const BATCH_SIZE: &str = "osprey_inference_batch_size";

/// Help text of Osprey's own series.
const HELP: &[(&str, &str)] = &[
    (SUCCESS, "Successful inference requests, per protocol"),
    (
        FAILURE,
        "Failed inference requests, per protocol and error class",
    ),
    (
        INFERENCES,
        "Inferences performed (rows of successful requests)",
    ),
    (EXECUTIONS, "Model executions (batches)"),
    (PENDING, "Requests waiting in the model's queue"),
    (
        REQUEST_DURATION,
        "Inference request duration in seconds, from decoding to answer",
    ),
    (
        QUEUE_DURATION,
        "Time requests waited in the model's queue, in seconds",
    ),
    (COMPUTE_INPUT, "Time merging a batch's inputs, in seconds"),
    (COMPUTE_INFER, "Model execution time per batch, in seconds"),
    (
        COMPUTE_OUTPUT,
        "Time splitting a batch's outputs per request, in seconds",
    ),
    (BATCH_SIZE, "Rows per model execution"),
    (
        crate::trace::export::EXPORTED,
        "Trace spans sent to the OTLP endpoint (--trace-config)",
    ),
    (
        crate::trace::export::DROPPED,
        "Trace spans dropped because the export queue was full",
    ),
    (
        crate::trace::export::FAILED,
        "Trace spans whose export to the OTLP endpoint failed",
    ),
];

/// The help text of a series Osprey exports.
fn help(name: &str) -> &'static str {
    HELP.iter()
        .chain(triton::HELP)
        .find(|(n, _)| *n == name)
        .map_or("", |(_, h)| h)
}

/// Declares the help text of every counter and gauge to the exporter.
fn describe() {
    for (name, text) in HELP.iter().chain(triton::HELP) {
        match *name {
            PENDING | triton::PENDING => metrics::describe_gauge!(*name, *text),
            // Our own summaries ([`summary`]) carry their help text.
            triton::REQUEST_SUMMARY_US
            | triton::QUEUE_SUMMARY_US
            | triton::COMPUTE_INPUT_SUMMARY_US
            | triton::COMPUTE_INFER_SUMMARY_US
            | triton::COMPUTE_OUTPUT_SUMMARY_US => {}
            REQUEST_DURATION | QUEUE_DURATION | COMPUTE_INPUT | COMPUTE_INFER | COMPUTE_OUTPUT
            | BATCH_SIZE => {}
            _ => metrics::describe_counter!(*name, *text),
        }
    }
}

const DURATION_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle (None if another recorder
/// was installed first).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            // Counters and gauges only: histograms are our own ([`histogram`]), fixed in size.
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

/// The transport a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http,
    Grpc,
}

impl Protocol {
    pub fn label(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
        }
    }
}

/// Metric handles of one model version.
pub struct ModelMetrics {
    model: String,
    version: String,
    success: [Counter; 2],
    duration: [Histogram; 2],
    inferences: Counter,
    executions: Counter,
    pending: Gauge,
    queue: Histogram,
    compute_input: Histogram,
    compute_infer: Histogram,
    compute_output: Histogram,
    batch_size: Histogram,
    triton: TritonMetrics,
}

impl ModelMetrics {
    /// `config`: `--metrics-config`; `cached`: the model's responses are cached.
    pub fn new(model: &str, version: &str, config: &MetricsConfig, cached: bool) -> ModelMetrics {
        let hist = |name, bounds| {
            Histogram::register(name, &[("model", model), ("version", version)], bounds)
        };
        let mv = [
            ("model", model.to_string()),
            ("version", version.to_string()),
        ];
        let with_protocol = |p: Protocol| {
            [
                ("model", model.to_string()),
                ("version", version.to_string()),
                ("protocol", p.label().to_string()),
            ]
        };
        ModelMetrics {
            model: model.to_string(),
            version: version.to_string(),
            success: [Protocol::Http, Protocol::Grpc]
                .map(|p| metrics::counter!(SUCCESS, &with_protocol(p))),
            duration: [Protocol::Http, Protocol::Grpc].map(|p| {
                Histogram::register(
                    REQUEST_DURATION,
                    &[
                        ("model", model),
                        ("version", version),
                        ("protocol", p.label()),
                    ],
                    DURATION_BUCKETS,
                )
            }),
            inferences: metrics::counter!(INFERENCES, &mv),
            executions: metrics::counter!(EXECUTIONS, &mv),
            pending: metrics::gauge!(PENDING, &mv),
            queue: hist(QUEUE_DURATION, DURATION_BUCKETS),
            compute_input: hist(COMPUTE_INPUT, DURATION_BUCKETS),
            compute_infer: hist(COMPUTE_INFER, DURATION_BUCKETS),
            compute_output: hist(COMPUTE_OUTPUT, DURATION_BUCKETS),
            batch_size: hist(BATCH_SIZE, BATCH_BUCKETS),
            triton: TritonMetrics::new(model, version, config, cached),
        }
    }

    pub fn request_succeeded(&self, protocol: Protocol, total: Duration, rows: u64) {
        self.success[protocol as usize].increment(1);
        self.duration[protocol as usize].record(total.as_secs_f64());
        self.inferences.increment(rows);
        self.triton.succeeded(total, rows);
    }

    pub fn request_failed(&self, protocol: Protocol, reason: &'static str, total: Duration) {
        let labels = [
            ("model", self.model.clone()),
            ("version", self.version.clone()),
            ("protocol", protocol.label().to_string()),
            ("reason", reason.to_string()),
        ];
        metrics::counter!(FAILURE, &labels).increment(1);
        self.duration[protocol as usize].record(total.as_secs_f64());
        self.triton.failed(reason, total);
    }

    pub fn queued(&self, waiting: usize) {
        self.pending.set(waiting as f64);
        self.triton.pending.set(waiting as f64);
    }

    pub fn request_dequeued(&self, waited: Duration) {
        self.queue.record(waited.as_secs_f64());
        self.triton.dequeued(waited);
    }

    /// One execution of `rows` rows from `requests` requests.
    pub fn executed(
        &self,
        rows: u64,
        requests: u64,
        input: Duration,
        infer: Duration,
        output: Duration,
    ) {
        self.triton.executed(requests, input, infer, output);
        self.executions.increment(1);
        self.batch_size.record(rows as f64);
        self.compute_input.record(input.as_secs_f64());
        self.compute_infer.record(infer.as_secs_f64());
        self.compute_output.record(output.as_secs_f64());
    }
}

/// The metrics port's routes: `/metrics` in Prometheus text format.
pub fn router(handle: Option<PrometheusHandle>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                let mut text = handle.map(|h| h.render()).unwrap_or_default();
                histogram::render(&mut text, help);
                summary::render(&mut text, help);
                process::render(&mut text);
                gpu::render(&mut text);
                text
            }
        }),
    )
}
