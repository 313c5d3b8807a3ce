//! The target's statistics extension, read before and after a step, so that a report can show
//! the server's own batch sizes, queue and compute times for the step.

use crate::args::{LoadtestArgs, Transport};
use crate::record::ServerView;

/// Totals of one model's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Totals {
    pub inferences: u64,
    pub executions: u64,
    pub queue: (u64, u64),
    pub compute: (u64, u64),
}

fn pair(v: &serde_json::Value) -> (u64, u64) {
    (
        v["count"].as_u64().unwrap_or(0),
        v["ns"].as_u64().unwrap_or(0),
    )
}

/// Reads the statistics over REST (`--stats-url`, or `--url` for REST transports); `None` when
/// the target has no statistics extension.
pub async fn fetch(args: &LoadtestArgs) -> Option<Totals> {
    let url = match (&args.stats_url, args.transport) {
        (Some(u), _) => u.clone(),
        (None, Transport::Grpc) => return None,
        (None, _) => args.url.clone(),
    };
    let base = crate::target::base(&url);
    let v: serde_json::Value = reqwest::get(format!("{base}/v2/models/{}/stats", args.model))
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let mut t = Totals::default();
    for m in v["model_stats"].as_array()? {
        if !args.model_version.is_empty() && m["version"].as_str() != Some(&args.model_version) {
            continue;
        }
        t.inferences += m["inference_count"].as_u64().unwrap_or(0);
        t.executions += m["execution_count"].as_u64().unwrap_or(0);
        let (qc, qn) = pair(&m["inference_stats"]["queue"]);
        let (cc, cn) = pair(&m["inference_stats"]["compute_infer"]);
        t.queue = (t.queue.0 + qc, t.queue.1 + qn);
        t.compute = (t.compute.0 + cc, t.compute.1 + cn);
    }
    Some(t)
}

/// What the server did between two readings.
pub fn delta(before: Option<&Totals>, after: Option<&Totals>) -> Option<ServerView> {
    let (b, a) = (before?, after?);
    let inferences = a.inferences.saturating_sub(b.inferences);
    let executions = a.executions.saturating_sub(b.executions);
    let avg = |(c1, n1): (u64, u64), (c0, n0): (u64, u64)| {
        let c = c1.saturating_sub(c0);
        if c == 0 {
            0.0
        } else {
            n1.saturating_sub(n0) as f64 / c as f64 / 1000.0
        }
    };
    Some(ServerView {
        inferences,
        executions,
        avg_batch_size: if executions == 0 {
            0.0
        } else {
            inferences as f64 / executions as f64
        },
        avg_queue_us: avg(a.queue, b.queue),
        avg_compute_us: avg(a.compute, b.compute),
    })
}
