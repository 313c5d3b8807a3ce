//! What one step measured.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How a request failed.
pub fn classify_http(status: u16) -> String {
    format!("http_{status}")
}

/// Why one request failed: its kind (`http_503`, `grpc_unavailable`, `timeout`, `connect`,
/// `transport`, `generator_saturated`) and what the server or the client library said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: String,
    pub message: String,
}

impl Failure {
    /// At most this much of a message is kept as a sample.
    const SAMPLE_CHARS: usize = 300;

    pub fn new(kind: impl Into<String>, message: impl AsRef<str>) -> Failure {
        let message = message.as_ref().trim();
        Failure {
            kind: kind.into(),
            message: message.chars().take(Self::SAMPLE_CHARS).collect(),
        }
    }
}

/// Latencies and outcomes of one step's measured requests.
pub struct Recorder {
    pub histogram: Histogram<u64>,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// The first message seen of each kind of error.
    pub samples: BTreeMap<String, String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            // 1 µs to 1 hour at 3 significant digits: constant, valid bounds.
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("valid histogram bounds"),
            ok: 0,
            errors: BTreeMap::new(),
            samples: BTreeMap::new(),
        }
    }
}

impl Recorder {
    pub fn record(&mut self, latency: Duration, outcome: Result<(), Failure>) {
        let us = (latency.as_micros() as u64).max(1);
        let _ = self.histogram.record(us.min(self.histogram.high()));
        match outcome {
            Ok(()) => self.ok += 1,
            Err(f) => {
                *self.errors.entry(f.kind.clone()).or_default() += 1;
                self.samples.entry(f.kind).or_insert(f.message);
            }
        }
    }

    pub fn merge(&mut self, other: Recorder) {
        let _ = self.histogram.add(&other.histogram);
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        for (k, m) in other.samples {
            self.samples.entry(k).or_insert(m);
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

/// The server's own view of the step, from its statistics extension.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ServerView {
    pub inferences: u64,
    pub executions: u64,
    pub avg_batch_size: f64,
    pub avg_queue_us: f64,
    pub avg_compute_us: f64,
    /// Server CPU time (user + system, whole process) per inference in the step, in µs, from
    /// its `process_cpu_seconds_total`.
    #[serde(default)]
    pub cpu_us_per_inference: Option<f64>,
}

/// One step's results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepResult {
    pub target: String,
    pub transport: String,
    pub model: String,
    pub mode: String,
    pub concurrency: Option<usize>,
    pub rate: Option<f64>,
    pub seconds: f64,
    pub requests: u64,
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// One message per kind of error, as the server or the client library gave it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_samples: BTreeMap<String, String>,
    pub throughput: f64,
    pub latency: Latency,
    pub histogram: Vec<(u64, u64)>,
    pub server: Option<ServerView>,
}

impl StepResult {
    pub fn from_recorder(rec: &Recorder, seconds: f64) -> (Latency, Vec<(u64, u64)>, f64) {
        let h = &rec.histogram;
        let latency = if h.is_empty() {
            Latency::default()
        } else {
            Latency {
                p50_us: h.value_at_quantile(0.5),
                p90_us: h.value_at_quantile(0.9),
                p99_us: h.value_at_quantile(0.99),
                p999_us: h.value_at_quantile(0.999),
                max_us: h.max(),
                mean_us: h.mean(),
            }
        };
        let buckets = h
            .iter_log(1, 2.0)
            .map(|v| (v.value_iterated_to(), v.count_since_last_iteration()))
            .collect();
        let throughput = if seconds > 0.0 {
            rec.ok as f64 / seconds
        } else {
            0.0
        };
        (latency, buckets, throughput)
    }

    pub fn summary_line(&self) -> String {
        let load = match (self.concurrency, self.rate) {
            (Some(c), _) => format!("concurrency {c}"),
            (_, Some(r)) => format!("rate {r}/s"),
            _ => String::new(),
        };
        let batch = self
            .server
            .as_ref()
            .map(|s| {
                let cpu = s
                    .cpu_us_per_inference
                    .map(|c| format!(", server CPU {c:.1} µs/inference"))
                    .unwrap_or_default();
                format!(", server avg batch {:.2}{cpu}", s.avg_batch_size)
            })
            .unwrap_or_default();
        format!(
            "{} {} {}: {:.0} infer/s, p50 {} µs, p99 {} µs, max {} µs, {} ok, errors {:?}{batch}",
            self.target,
            self.transport,
            load,
            self.throughput,
            self.latency.p50_us,
            self.latency.p99_us,
            self.latency.max_us,
            self.ok,
            self.errors
        ) + &self
            .error_samples
            .iter()
            .map(|(k, m)| format!("\n  {k}, e.g.: {m}"))
            .collect::<String>()
    }
}
