//! Per model-version statistics in the shape of Triton's statistics extension.

use osprey_protocol::grpc::inference::{
    InferBatchStatistics, InferStatistics, ModelStatistics, StatisticDuration,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A count and a total duration.
#[derive(Default, Debug)]
pub struct Counter {
    count: AtomicU64,
    ns: AtomicU64,
}

impl Counter {
    pub fn add(&self, d: Duration) {
        self.add_n(1, d);
    }

    /// Adds `n` occurrences that each took `d`.
    pub fn add_n(&self, n: u64, d: Duration) {
        self.count.fetch_add(n, Ordering::Relaxed);
        self.ns
            .fetch_add(n.saturating_mul(d.as_nanos() as u64), Ordering::Relaxed);
    }

    fn proto(&self) -> StatisticDuration {
        StatisticDuration {
            count: self.count.load(Ordering::Relaxed),
            ns: self.ns.load(Ordering::Relaxed),
        }
    }
}

/// Durations of one executed batch.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionTimes {
    pub batch_size: u64,
    pub compute_input: Duration,
    pub compute_infer: Duration,
    pub compute_output: Duration,
}

#[derive(Default, Debug)]
struct BatchCounters {
    compute_input: Counter,
    compute_infer: Counter,
    compute_output: Counter,
}

/// Statistics of one model version.
#[derive(Default, Debug)]
pub struct Stats {
    success: Counter,
    fail: Counter,
    queue: Counter,
    compute_input: Counter,
    compute_infer: Counter,
    compute_output: Counter,
    cache_hit: Counter,
    cache_miss: Counter,
    inference_count: AtomicU64,
    execution_count: AtomicU64,
    last_inference_ms: AtomicU64,
    batches: Mutex<BTreeMap<u64, BatchCounters>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Stats {
    /// Records one request that succeeded after `total`, having waited `queue`.
    pub fn request_succeeded(&self, total: Duration, queue: Duration, rows: u64) {
        self.success.add(total);
        self.queue.add(queue);
        self.inference_count.fetch_add(rows, Ordering::Relaxed);
        self.last_inference_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Records one request answered from the response cache after `total`, `lookup` of it
    /// finding and copying the answer. As in Triton, it counts as a success and in the queue
    /// statistics (with no wait), not in `inference_count` nor in the compute statistics.
    pub fn request_cached(&self, total: Duration, lookup: Duration) {
        self.success.add(total);
        self.queue.add(Duration::ZERO);
        self.cache_hit.add(lookup);
        self.last_inference_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Records one response cache miss whose lookup and insertion took `d`.
    pub fn cache_missed(&self, d: Duration) {
        self.cache_miss.add(d);
    }

    /// Records one request that failed after `total`.
    pub fn request_failed(&self, total: Duration) {
        self.fail.add(total);
        self.last_inference_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Records one execution of the model on a batch of `requests` requests. As in Triton,
    /// the request-level compute statistics count each request of the batch; `batch_stats`
    /// counts executions per batch size.
    pub fn executed(&self, t: ExecutionTimes, requests: u64) {
        self.execution_count.fetch_add(1, Ordering::Relaxed);
        self.compute_input.add_n(requests, t.compute_input);
        self.compute_infer.add_n(requests, t.compute_infer);
        self.compute_output.add_n(requests, t.compute_output);
        if let Ok(mut b) = self.batches.lock() {
            let c = b.entry(t.batch_size).or_default();
            c.compute_input.add(t.compute_input);
            c.compute_infer.add(t.compute_infer);
            c.compute_output.add(t.compute_output);
        }
    }

    /// The statistics as Triton's `ModelStatistics` message.
    pub fn to_proto(&self, name: &str, version: &str) -> ModelStatistics {
        let batch_stats = self
            .batches
            .lock()
            .map(|b| {
                b.iter()
                    .map(|(size, c)| InferBatchStatistics {
                        batch_size: *size,
                        compute_input: Some(c.compute_input.proto()),
                        compute_infer: Some(c.compute_infer.proto()),
                        compute_output: Some(c.compute_output.proto()),
                    })
                    .collect()
            })
            .unwrap_or_default();
        ModelStatistics {
            name: name.to_string(),
            version: version.to_string(),
            last_inference: self.last_inference_ms.load(Ordering::Relaxed),
            inference_count: self.inference_count.load(Ordering::Relaxed),
            execution_count: self.execution_count.load(Ordering::Relaxed),
            inference_stats: Some(InferStatistics {
                success: Some(self.success.proto()),
                fail: Some(self.fail.proto()),
                queue: Some(self.queue.proto()),
                compute_input: Some(self.compute_input.proto()),
                compute_infer: Some(self.compute_infer.proto()),
                compute_output: Some(self.compute_output.proto()),
                cache_hit: Some(self.cache_hit.proto()),
                cache_miss: Some(self.cache_miss.proto()),
            }),
            batch_stats,
            ..Default::default()
        }
    }
}
