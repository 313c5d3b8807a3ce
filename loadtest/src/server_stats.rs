//! The target's statistics extension and its process CPU time (Prometheus
//! `process_cpu_seconds_total`), read before and after a step, so that a report can show the
//! server's own batch sizes, queue and compute times and CPU per inference for the step.

use crate::args::{LoadtestArgs, Transport};
use crate::record::ServerView;

/// What the server says at one instant: its process CPU time and the model's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    pub cpu_seconds: Option<f64>,
    pub totals: Option<Totals>,
}

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

/// Reads the server's CPU time and the model's statistics.
pub async fn fetch(args: &LoadtestArgs) -> Reading {
    Reading {
        cpu_seconds: cpu_seconds(args).await,
        totals: statistics(args).await,
    }
}

/// `process_cpu_seconds_total` from the Prometheus text at `--metrics-url` (or port 8002 of the
/// --url host).
async fn cpu_seconds(args: &LoadtestArgs) -> Option<f64> {
    let base = match &args.metrics_url {
        Some(u) => crate::target::base(u),
        None => {
            let host = crate::target::base(&args.url);
            let (scheme_host, _port) = host.rsplit_once(':')?;
            format!("{scheme_host}:8002")
        }
    };
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(2))
        .build()
        .ok()?;
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    parse_cpu_seconds(&text)
}

/// The value of the unlabelled `process_cpu_seconds_total` sample in Prometheus text.
pub fn parse_cpu_seconds(text: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix("process_cpu_seconds_total")?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// Reads the statistics over REST (`--stats-url`, or `--url` for REST transports); `None` when
/// the target has no statistics extension.
async fn statistics(args: &LoadtestArgs) -> Option<Totals> {
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

/// What the server did between two readings; `client_rows` (rows the client had answered)
/// stands in for the server's inference count when it has no statistics extension.
pub fn delta(before: &Reading, after: &Reading, client_rows: u64) -> Option<ServerView> {
    let cpu = match (before.cpu_seconds, after.cpu_seconds) {
        (Some(b), Some(a)) => Some((a - b).max(0.0)),
        _ => None,
    };
    let per_inference = |n: u64| cpu.filter(|_| n > 0).map(|c| c * 1e6 / n as f64);
    let (Some(b), Some(a)) = (&before.totals, &after.totals) else {
        return cpu.map(|_| ServerView {
            inferences: client_rows,
            cpu_us_per_inference: per_inference(client_rows),
            ..ServerView::default()
        });
    };
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
        cpu_us_per_inference: per_inference(inferences),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_per_inference_from_two_readings() {
        let text = "# TYPE process_cpu_seconds_total gauge\nprocess_cpu_seconds_total 12.5\nprocess_cpu_seconds_total_x 1\n";
        assert_eq!(parse_cpu_seconds(text), Some(12.5));
        assert_eq!(parse_cpu_seconds("other 1\n"), None);
        let totals = |inferences| Totals {
            inferences,
            executions: inferences / 2,
            ..Totals::default()
        };
        let before = Reading {
            cpu_seconds: Some(10.0),
            totals: Some(totals(1_000)),
        };
        let after = Reading {
            cpu_seconds: Some(10.5),
            totals: Some(totals(11_000)),
        };
        let v = delta(&before, &after, 0).expect("view");
        assert_eq!(v.inferences, 10_000);
        assert_eq!(v.avg_batch_size, 2.0);
        assert_eq!(v.cpu_us_per_inference, Some(50.0));
        // Without statistics the client's count stands in.
        let (b, a) = (
            Reading {
                cpu_seconds: Some(1.0),
                totals: None,
            },
            Reading {
                cpu_seconds: Some(2.0),
                totals: None,
            },
        );
        assert_eq!(
            delta(&b, &a, 4_000).and_then(|v| v.cpu_us_per_inference),
            Some(250.0)
        );
        assert!(delta(&Reading::default(), &Reading::default(), 5).is_none());
    }
}
