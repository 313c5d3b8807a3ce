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
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `osprey_cpu_utilization` | gauges read from /proc at scrape | — | nv_cpu_utilization, nv_cpu_memory_used_bytes |

mod histogram;

use histogram::Histogram;
use metrics::{Counter, Gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

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
}

impl ModelMetrics {
    pub fn new(model: &str, version: &str) -> ModelMetrics {
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
        }
    }

    pub fn request_succeeded(&self, protocol: Protocol, total: Duration, rows: u64) {
        self.success[protocol as usize].increment(1);
        self.duration[protocol as usize].record(total.as_secs_f64());
        self.inferences.increment(rows);
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
    }

    pub fn queued(&self, waiting: usize) {
        self.pending.set(waiting as f64);
    }

    pub fn request_dequeued(&self, waited: Duration) {
        self.queue.record(waited.as_secs_f64());
    }

    pub fn executed(&self, rows: u64, input: Duration, infer: Duration, output: Duration) {
        self.executions.increment(1);
        self.batch_size.record(rows as f64);
        self.compute_input.record(input.as_secs_f64());
        self.compute_infer.record(infer.as_secs_f64());
        self.compute_output.record(output.as_secs_f64());
    }
}

/// Process CPU and memory, read from /proc when metrics are scraped.
struct ProcessSample {
    at: Instant,
    cpu_seconds: f64,
}

static LAST_SAMPLE: Mutex<Option<ProcessSample>> = Mutex::new(None);

fn clock_ticks() -> f64 {
    100.0
}

fn update_process_metrics() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the full line: 11 and 12 after the name.
    let cpu_seconds = (num(11) + num(12)) / clock_ticks();
    let vsize = num(20);
    let rss_pages = num(21);
    metrics::gauge!("process_cpu_seconds_total").set(cpu_seconds);
    metrics::gauge!("process_virtual_memory_bytes").set(vsize);
    metrics::gauge!("process_resident_memory_bytes").set(rss_pages * 4096.0);
    let now = Instant::now();
    let mut last = LAST_SAMPLE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(prev) = last.as_ref() {
        let wall = now.duration_since(prev.at).as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
        if wall > 0.0 {
            let util = ((cpu_seconds - prev.cpu_seconds) / wall / cores).clamp(0.0, 1.0);
            metrics::gauge!("osprey_cpu_utilization").set(util);
        }
    }
    *last = Some(ProcessSample {
        at: now,
        cpu_seconds,
    });
}

/// The metrics port's routes: `/metrics` in Prometheus text format.
pub fn router(handle: Option<PrometheusHandle>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                update_process_metrics();
                let mut text = handle.map(|h| h.render()).unwrap_or_default();
                histogram::render(&mut text);
                text
            }
        }),
    )
}
