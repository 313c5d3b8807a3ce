//! Prometheus metrics: every name, its labels and buckets are declared here.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `osprey_inference_request_success_total` | counter | model, version, protocol |
//! | `osprey_inference_request_failure_total` | counter | model, version, protocol, reason |
//! | `osprey_inference_count_total` | counter (rows inferred) | model, version |
//! | `osprey_inference_request_duration_seconds` | histogram | model, version, protocol |
//! | `osprey_inference_queue_duration_seconds` | histogram | model, version |

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

const SUCCESS: &str = "osprey_inference_request_success_total";
const FAILURE: &str = "osprey_inference_request_failure_total";
const INFERENCES: &str = "osprey_inference_count_total";
const REQUEST_DURATION: &str = "osprey_inference_request_duration_seconds";
const QUEUE_DURATION: &str = "osprey_inference_queue_duration_seconds";

const BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle (None if another recorder
/// was installed first).
pub fn install() -> Option<PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

pub fn request_succeeded(
    model: &str,
    version: &str,
    protocol: &'static str,
    total: Duration,
    queue: Duration,
    rows: u64,
) {
    let labels = [
        ("model", model.to_string()),
        ("version", version.to_string()),
        ("protocol", protocol.to_string()),
    ];
    metrics::counter!(SUCCESS, &labels).increment(1);
    metrics::histogram!(REQUEST_DURATION, &labels).record(total.as_secs_f64());
    let mv = [
        ("model", model.to_string()),
        ("version", version.to_string()),
    ];
    metrics::counter!(INFERENCES, &mv).increment(rows);
    metrics::histogram!(QUEUE_DURATION, &mv).record(queue.as_secs_f64());
}

pub fn request_failed(
    model: &str,
    version: &str,
    protocol: &'static str,
    reason: &'static str,
    total: Duration,
) {
    let labels = [
        ("model", model.to_string()),
        ("version", version.to_string()),
        ("protocol", protocol.to_string()),
        ("reason", reason.to_string()),
    ];
    metrics::counter!(FAILURE, &labels).increment(1);
    let labels = [
        ("model", model.to_string()),
        ("version", version.to_string()),
        ("protocol", protocol.to_string()),
    ];
    metrics::histogram!(REQUEST_DURATION, &labels).record(total.as_secs_f64());
}

/// The metrics port's routes: `/metrics` in Prometheus text format.
pub fn router(handle: Option<PrometheusHandle>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move { handle.map(|h| h.render()).unwrap_or_default() }
        }),
    )
}
