//! Results as JSON (everything, histograms included) and CSV (one row per step).

use crate::args::LoadtestArgs;
use crate::record::StepResult;
use std::fmt::Write as _;

/// The CSV header and rows.
pub fn csv(results: &[StepResult]) -> String {
    let mut out = String::from(
        "target,transport,model,mode,concurrency,rate,seconds,requests,ok,errors,throughput,p50_us,p90_us,p99_us,p999_us,max_us,server_avg_batch,server_avg_queue_us,server_avg_compute_us,server_cpu_us_per_inference\n",
    );
    for r in results {
        let errors: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let s = r.server.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{:.3},{},{},{},{:.1},{},{},{},{},{},{:.2},{:.1},{:.1},{}",
            r.target,
            r.transport,
            r.model,
            r.mode,
            r.concurrency.map(|c| c.to_string()).unwrap_or_default(),
            r.rate.map(|c| c.to_string()).unwrap_or_default(),
            r.seconds,
            r.requests,
            r.ok,
            errors.join(";"),
            r.throughput,
            r.latency.p50_us,
            r.latency.p90_us,
            r.latency.p99_us,
            r.latency.p999_us,
            r.latency.max_us,
            s.avg_batch_size,
            s.avg_queue_us,
            s.avg_compute_us,
            s.cpu_us_per_inference
                .map(|c| format!("{c:.1}"))
                .unwrap_or_default()
        );
    }
    out
}

/// Writes the files the arguments ask for.
pub fn write(args: &LoadtestArgs, results: &[StepResult]) -> anyhow::Result<()> {
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(results)?)?;
    }
    if let Some(p) = &args.csv {
        std::fs::write(p, csv(results))?;
    }
    if let Some(p) = &args.html {
        std::fs::write(p, crate::report::html(results))?;
    }
    Ok(())
}
