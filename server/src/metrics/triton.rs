//! Triton's own series, under Triton's names and units, so that dashboards written for Triton
//! (`nv_inference_request_success`, `nv_inference_queue_duration_us`, ...) work unchanged:
//! counters of requests and cumulative microseconds, as Triton 2.51 exports them.

use metrics::{Counter, Gauge};
use std::time::Duration;

pub const SUCCESS: &str = "nv_inference_request_success";
pub const FAILURE: &str = "nv_inference_request_failure";
pub const INFERENCES: &str = "nv_inference_count";
pub const EXECUTIONS: &str = "nv_inference_exec_count";
pub const PENDING: &str = "nv_inference_pending_request_count";
pub const REQUEST_US: &str = "nv_inference_request_duration_us";
pub const QUEUE_US: &str = "nv_inference_queue_duration_us";
pub const COMPUTE_INPUT_US: &str = "nv_inference_compute_input_duration_us";
pub const COMPUTE_INFER_US: &str = "nv_inference_compute_infer_duration_us";
pub const COMPUTE_OUTPUT_US: &str = "nv_inference_compute_output_duration_us";
pub const CACHE_HITS: &str = "nv_cache_num_hits_per_model";
pub const CACHE_MISSES: &str = "nv_cache_num_misses_per_model";
pub const CACHE_HIT_US: &str = "nv_cache_hit_duration_per_model";
pub const CACHE_MISS_US: &str = "nv_cache_miss_duration_per_model";

/// Every Triton series with its help text, as Triton words it.
pub const HELP: &[(&str, &str)] = &[
    (SUCCESS, "Number of successful inference requests, all batch sizes"),
    (
        FAILURE,
        "Number of failed inference requests, all batch sizes (reason: REJECTED, BACKEND, OTHER)",
    ),
    (INFERENCES, "Number of inferences performed (does not include cached requests)"),
    (EXECUTIONS, "Number of model executions performed (does not include cached requests)"),
    (PENDING, "Instantaneous number of pending requests awaiting execution per-model."),
    (REQUEST_US, "Cumulative inference request duration in microseconds (includes cached requests)"),
    (QUEUE_US, "Cumulative inference queuing duration in microseconds (includes cached requests)"),
    (COMPUTE_INPUT_US, "Cumulative compute input duration in microseconds (does not include cached requests)"),
    (COMPUTE_INFER_US, "Cumulative compute inference duration in microseconds (does not include cached requests)"),
    (COMPUTE_OUTPUT_US, "Cumulative inference compute output duration in microseconds (does not include cached requests)"),
    (CACHE_HITS, "Number of cache hits per model"),
    (CACHE_MISSES, "Number of cache misses per model"),
    (CACHE_HIT_US, "Total cache hit duration per model, in microseconds"),
    (CACHE_MISS_US, "Total cache miss duration per model, in microseconds"),
];

/// Triton's reason for a failed request, from Osprey's error class.
pub fn failure_reason(kind: &str) -> &'static str {
    match kind {
        "unavailable" | "deadline_exceeded" => "REJECTED",
        "internal" => "BACKEND",
        _ => "OTHER",
    }
}

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// One model version's Triton series.
pub struct TritonMetrics {
    labels: [(&'static str, String); 2],
    success: Counter,
    inferences: Counter,
    executions: Counter,
    pub pending: Gauge,
    request_us: Counter,
    queue_us: Counter,
    compute_input_us: Counter,
    compute_infer_us: Counter,
    compute_output_us: Counter,
}

impl TritonMetrics {
    pub fn new(model: &str, version: &str) -> TritonMetrics {
        let labels = [
            ("model", model.to_string()),
            ("version", version.to_string()),
        ];
        TritonMetrics {
            success: metrics::counter!(SUCCESS, &labels),
            inferences: metrics::counter!(INFERENCES, &labels),
            executions: metrics::counter!(EXECUTIONS, &labels),
            pending: metrics::gauge!(PENDING, &labels),
            request_us: metrics::counter!(REQUEST_US, &labels),
            queue_us: metrics::counter!(QUEUE_US, &labels),
            compute_input_us: metrics::counter!(COMPUTE_INPUT_US, &labels),
            compute_infer_us: metrics::counter!(COMPUTE_INFER_US, &labels),
            compute_output_us: metrics::counter!(COMPUTE_OUTPUT_US, &labels),
            labels,
        }
    }

    pub fn succeeded(&self, total: Duration, rows: u64) {
        self.success.increment(1);
        self.inferences.increment(rows);
        self.request_us.increment(us(total));
    }

    pub fn failed(&self, kind: &str, total: Duration) {
        let [m, v] = &self.labels;
        let labels = [
            m.clone(),
            v.clone(),
            ("reason", failure_reason(kind).to_string()),
        ];
        metrics::counter!(FAILURE, &labels).increment(1);
        self.request_us.increment(us(total));
    }

    pub fn dequeued(&self, waited: Duration) {
        self.queue_us.increment(us(waited));
    }

    /// One execution of `requests` requests: as in Triton, each request of the batch counts
    /// the batch's compute time.
    pub fn executed(&self, requests: u64, input: Duration, infer: Duration, output: Duration) {
        self.executions.increment(1);
        self.compute_input_us
            .increment(us(input).saturating_mul(requests));
        self.compute_infer_us
            .increment(us(infer).saturating_mul(requests));
        self.compute_output_us
            .increment(us(output).saturating_mul(requests));
    }
}

/// One model version's response cache series, registered only for models whose cache is on
/// (as Triton reports them only then).
pub struct TritonCacheMetrics {
    hits: Counter,
    misses: Counter,
    hit_us: Counter,
    miss_us: Counter,
}

impl TritonCacheMetrics {
    pub fn new(model: &str, version: &str) -> TritonCacheMetrics {
        let labels = [
            ("model", model.to_string()),
            ("version", version.to_string()),
        ];
        TritonCacheMetrics {
            hits: metrics::counter!(CACHE_HITS, &labels),
            misses: metrics::counter!(CACHE_MISSES, &labels),
            hit_us: metrics::counter!(CACHE_HIT_US, &labels),
            miss_us: metrics::counter!(CACHE_MISS_US, &labels),
        }
    }

    /// A hit: the lookup and the copy of the answer took `d`.
    pub fn hit(&self, d: Duration) {
        self.hits.increment(1);
        self.hit_us.increment(us(d));
    }

    /// A miss: the lookup and the insertion of the computed answer took `d`.
    pub fn miss(&self, d: Duration) {
        self.misses.increment(1);
        self.miss_us.increment(us(d));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_fall_into_tritons_reasons() {
        assert_eq!(failure_reason("unavailable"), "REJECTED");
        assert_eq!(failure_reason("deadline_exceeded"), "REJECTED");
        assert_eq!(failure_reason("internal"), "BACKEND");
        assert_eq!(failure_reason("invalid_argument"), "OTHER");
    }
}
