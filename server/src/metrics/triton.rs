//! Triton's own series, under Triton's names and units, so that dashboards written for Triton
//! (`nv_inference_request_success`, `nv_inference_queue_duration_us`, ...) work unchanged:
//! counters of requests and cumulative microseconds, as Triton 2.51 exports them, and with
//! `--metrics-config summary_latencies=true` its latency summaries ([`super::summary`]).

use super::config::MetricsConfig;
use super::summary::Summary;
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
pub const REQUEST_SUMMARY_US: &str = "nv_inference_request_summary_us";
pub const QUEUE_SUMMARY_US: &str = "nv_inference_queue_summary_us";
pub const COMPUTE_INPUT_SUMMARY_US: &str = "nv_inference_compute_input_summary_us";
pub const COMPUTE_INFER_SUMMARY_US: &str = "nv_inference_compute_infer_summary_us";
pub const COMPUTE_OUTPUT_SUMMARY_US: &str = "nv_inference_compute_output_summary_us";
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
    // Triton's summaries reuse the counters' wording for the compute ones (core/src/metrics.cc).
    (REQUEST_SUMMARY_US, "Summary of inference request duration in microseconds (includes cached requests)"),
    (QUEUE_SUMMARY_US, "Summary of inference queuing duration in microseconds (includes cached requests)"),
    (COMPUTE_INPUT_SUMMARY_US, "Cumulative compute input duration in microseconds (does not include cached requests)"),
    (COMPUTE_INFER_SUMMARY_US, "Cumulative compute inference duration in microseconds (does not include cached requests)"),
    (COMPUTE_OUTPUT_SUMMARY_US, "Cumulative inference compute output duration in microseconds (does not include cached requests)"),
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
    /// The latency counters: no-ops with `counter_latencies=false`.
    request_us: Counter,
    queue_us: Counter,
    compute_input_us: Counter,
    compute_infer_us: Counter,
    compute_output_us: Counter,
    /// With `summary_latencies=true`.
    summaries: Option<TritonSummaries>,
}

/// One model version's latency summaries.
struct TritonSummaries {
    /// None for a model whose responses are cached, as in Triton (its FIXME DLIS-4762: a
    /// request's duration would miss the cache insertion).
    request: Option<Summary>,
    queue: Summary,
    compute_input: Summary,
    compute_infer: Summary,
    compute_output: Summary,
}

impl TritonSummaries {
    fn new(model: &str, version: &str, config: &MetricsConfig, cached: bool) -> TritonSummaries {
        let summary = |name| {
            Summary::register(
                name,
                &[("model", model), ("version", version)],
                config.summary_quantiles.clone(),
            )
        };
        TritonSummaries {
            request: (!cached).then(|| summary(REQUEST_SUMMARY_US)),
            queue: summary(QUEUE_SUMMARY_US),
            compute_input: summary(COMPUTE_INPUT_SUMMARY_US),
            compute_infer: summary(COMPUTE_INFER_SUMMARY_US),
            compute_output: summary(COMPUTE_OUTPUT_SUMMARY_US),
        }
    }
}

impl TritonMetrics {
    /// `cached`: the model's responses are cached (its request summary is left out).
    pub fn new(model: &str, version: &str, config: &MetricsConfig, cached: bool) -> TritonMetrics {
        let labels = [
            ("model", model.to_string()),
            ("version", version.to_string()),
        ];
        let latency = |name| {
            if config.counter_latencies {
                metrics::counter!(name, &labels)
            } else {
                Counter::noop()
            }
        };
        TritonMetrics {
            success: metrics::counter!(SUCCESS, &labels),
            inferences: metrics::counter!(INFERENCES, &labels),
            executions: metrics::counter!(EXECUTIONS, &labels),
            pending: metrics::gauge!(PENDING, &labels),
            request_us: latency(REQUEST_US),
            queue_us: latency(QUEUE_US),
            compute_input_us: latency(COMPUTE_INPUT_US),
            compute_infer_us: latency(COMPUTE_INFER_US),
            compute_output_us: latency(COMPUTE_OUTPUT_US),
            summaries: config
                .summary_latencies
                .then(|| TritonSummaries::new(model, version, config, cached)),
            labels,
        }
    }

    pub fn succeeded(&self, total: Duration, rows: u64) {
        self.success.increment(1);
        self.inferences.increment(rows);
        self.request_us.increment(us(total));
        // As Triton, the request summary observes successful requests only.
        if let Some(s) = self.summaries.as_ref().and_then(|s| s.request.as_ref()) {
            s.record_n(us(total), 1);
        }
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
        if let Some(s) = &self.summaries {
            s.queue.record_n(us(waited), 1);
        }
    }

    /// One execution of `requests` requests: as in Triton, each request of the batch counts
    /// the batch's compute time (in the counters and as one observation of each summary).
    pub fn executed(&self, requests: u64, input: Duration, infer: Duration, output: Duration) {
        self.executions.increment(1);
        self.compute_input_us
            .increment(us(input).saturating_mul(requests));
        self.compute_infer_us
            .increment(us(infer).saturating_mul(requests));
        self.compute_output_us
            .increment(us(output).saturating_mul(requests));
        if let Some(s) = &self.summaries {
            let n = u32::try_from(requests).unwrap_or(u32::MAX);
            s.compute_input.record_n(us(input), n);
            s.compute_infer.record_n(us(infer), n);
            s.compute_output.record_n(us(output), n);
        }
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
