//! A self-contained HTML report (inline SVG, no scripts, no external files): a summary table,
//! latency-versus-throughput curves and latency histograms, for one target or several side by
//! side. `osprey report` builds it from the JSON files of earlier runs.

use crate::record::StepResult;
use clap::Args;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

/// `osprey report`: combine result files into one report.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// JSON files written by `osprey loadtest --json`.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write the HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Write all steps as one CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
}

/// Reads the inputs and writes the outputs; prints the summary table.
pub fn run(args: &ReportArgs) -> anyhow::Result<Vec<StepResult>> {
    let mut all = Vec::new();
    for p in &args.inputs {
        let text =
            std::fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        let steps: Vec<StepResult> =
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        all.extend(steps);
    }
    if let Some(h) = &args.html {
        std::fs::write(h, html(&all))?;
    }
    if let Some(c) = &args.csv {
        std::fs::write(c, crate::output::csv(&all))?;
    }
    print!("{}", text_table(&all));
    Ok(all)
}

fn series_name(r: &StepResult) -> String {
    format!("{} / {} / {}", r.target, r.transport, r.model)
}

fn load_of(r: &StepResult) -> String {
    match (r.concurrency, r.rate) {
        (Some(c), _) => format!("c={c}"),
        (_, Some(rate)) => format!("{rate}/s"),
        _ => String::new(),
    }
}

/// The summary as aligned text.
pub fn text_table(results: &[StepResult]) -> String {
    let mut out = format!(
        "{:<44} {:>8} {:>10} {:>9} {:>9} {:>9} {:>8} {:>9} {:>11}\n",
        "target / transport / model",
        "load",
        "infer/s",
        "p50 us",
        "p99 us",
        "max us",
        "errors",
        "avg batch",
        "cpu us/inf"
    );
    for r in results {
        let errors: u64 = r.errors.values().sum();
        let batch = r
            .server
            .as_ref()
            .map_or("-".to_string(), |s| format!("{:.2}", s.avg_batch_size));
        let cpu = r
            .server
            .as_ref()
            .and_then(|s| s.cpu_us_per_inference)
            .map_or("-".to_string(), |c| format!("{c:.1}"));
        let _ = writeln!(
            out,
            "{:<44} {:>8} {:>10.0} {:>9} {:>9} {:>9} {:>8} {:>9} {:>11}",
            series_name(r),
            load_of(r),
            r.throughput,
            r.latency.p50_us,
            r.latency.p99_us,
            r.latency.max_us,
            errors,
            batch,
            cpu
        );
    }
    out
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// An SVG line chart: one polyline per series, log-scaled y.
fn chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(String, Vec<(f64, f64)>)],
    log_x: bool,
) -> String {
    let (w, h, left, bottom, top, right) = (760.0, 360.0, 70.0, 40.0, 30.0, 220.0);
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(_, p)| p.iter().copied())
        .filter(|(_, y)| *y > 0.0)
        .collect();
    if pts.is_empty() {
        return String::new();
    }
    let fx = |x: f64| if log_x { x.max(1.0).log10() } else { x };
    let (x0, x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
        (a.min(fx(*x)), b.max(fx(*x)))
    });
    let (y0, y1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
        (a.min(y.log10()), b.max(y.log10()))
    });
    let (x0, x1) = if log_x {
        (x0.floor(), x1.ceil().max(x0.floor() + 1.0))
    } else {
        (0.0, x1 * 1.05 + 1.0)
    };
    let (y0, y1) = (y0.floor(), y1.ceil().max(y0.floor() + 1.0));
    let px = |x: f64| left + (fx(x) - x0) / (x1 - x0) * (w - left - right);
    let py = |y: f64| top + (1.0 - (y.log10() - y0) / (y1 - y0)) * (h - top - bottom);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{}\" y=\"16\" font-size=\"13\" font-weight=\"bold\">{}</text>",
        left,
        esc(title)
    );
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#333\"/>",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    let mut decade = y0;
    while decade <= y1 {
        let y = py(10f64.powf(decade));
        let _ = write!(
            s,
            "<line x1=\"{left}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 4.0,
            y + 4.0,
            10f64.powf(decade)
        );
        decade += 1.0;
    }
    for i in 0..=4 {
        let v = if log_x {
            10f64.powf(x0 + (x1 - x0) * i as f64 / 4.0)
        } else {
            x0 + (x1 - x0) * i as f64 / 4.0
        };
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{:.0}</text>",
            px(v),
            h - bottom + 14.0,
            v
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text><text x=\"14\" y=\"{}\" transform=\"rotate(-90 14 {})\" text-anchor=\"middle\">{}</text>",
        left + (w - left - right) / 2.0,
        h - 6.0,
        esc(x_label),
        top + (h - top - bottom) / 2.0,
        top + (h - top - bottom) / 2.0,
        esc(y_label)
    );
    for (i, (name, points)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = points
            .iter()
            .filter(|(_, y)| *y > 0.0)
            .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for p in &path {
            let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = write!(
                s,
                "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"3\" fill=\"{colour}\"/>"
            );
        }
        let ly = top + 14.0 * i as f64;
        let _ = write!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            w - right + 10.0,
            ly,
            w - right + 24.0,
            ly + 9.0,
            esc(name)
        );
    }
    s.push_str("</svg>");
    s
}

/// The whole report.
pub fn html(results: &[StepResult]) -> String {
    let mut by_series: BTreeMap<String, Vec<&StepResult>> = BTreeMap::new();
    for r in results {
        by_series.entry(series_name(r)).or_default().push(r);
    }
    let mut curves_p99 = Vec::new();
    let mut curves_p50 = Vec::new();
    for (name, steps) in &by_series {
        curves_p99.push((
            name.clone(),
            steps
                .iter()
                .map(|r| (r.throughput, r.latency.p99_us as f64))
                .collect(),
        ));
        curves_p50.push((
            name.clone(),
            steps
                .iter()
                .map(|r| (r.throughput, r.latency.p50_us as f64))
                .collect(),
        ));
    }
    let mut page = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>osprey loadtest report</title>\
         <style>body{font-family:sans-serif;margin:24px}table{border-collapse:collapse}td,th{border:1px solid #ccc;\
         padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>\
         <h1>osprey loadtest report</h1><h2>Summary</h2><table><tr><th>target / transport / model</th><th>load</th>\
         <th>infer/s</th><th>p50 µs</th><th>p90 µs</th><th>p99 µs</th><th>p99.9 µs</th><th>max µs</th><th>errors</th>\
         <th>server avg batch</th><th>server queue µs</th><th>server compute µs</th></tr>",
    );
    for r in results {
        let errors: Vec<String> = r.errors.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let s = r.server.clone();
        let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&series_name(r)),
            load_of(r),
            r.throughput,
            r.latency.p50_us,
            r.latency.p90_us,
            r.latency.p99_us,
            r.latency.p999_us,
            r.latency.max_us,
            esc(&errors.join(", ")),
            f(s.as_ref().map(|s| s.avg_batch_size)),
            f(s.as_ref().map(|s| s.avg_queue_us)),
            f(s.as_ref().map(|s| s.avg_compute_us)),
        );
    }
    page.push_str("</table><h2>Latency versus throughput</h2>");
    page.push_str(&chart(
        "p99 latency vs throughput",
        "throughput (infer/s)",
        "p99 latency (µs, log)",
        &curves_p99,
        false,
    ));
    page.push_str(&chart(
        "p50 latency vs throughput",
        "throughput (infer/s)",
        "p50 latency (µs, log)",
        &curves_p50,
        false,
    ));
    page.push_str("<h2>Latency histograms</h2>");
    for (name, steps) in &by_series {
        let hist: Vec<(String, Vec<(f64, f64)>)> = steps
            .iter()
            .map(|r| {
                (
                    load_of(r),
                    r.histogram
                        .iter()
                        .map(|(us, n)| (*us as f64, *n as f64))
                        .collect(),
                )
            })
            .collect();
        page.push_str(&chart(
            &format!("{name}: requests per latency bucket"),
            "latency (µs, log)",
            "requests (log)",
            &hist,
            true,
        ));
    }
    page.push_str("</body></html>\n");
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Latency, StepResult};

    fn step(target: &str, c: usize, tput: f64, p99: u64) -> StepResult {
        StepResult {
            target: target.into(),
            transport: "grpc".into(),
            model: "mlp".into(),
            mode: "closed".into(),
            concurrency: Some(c),
            rate: None,
            seconds: 1.0,
            requests: 10,
            ok: 10,
            errors: Default::default(),
            error_samples: Default::default(),
            throughput: tput,
            latency: Latency {
                p50_us: p99 / 2,
                p90_us: p99,
                p99_us: p99,
                p999_us: p99,
                max_us: p99,
                mean_us: 1.0,
            },
            histogram: vec![(64, 3), (128, 7)],
            server: None,
        }
    }

    #[test]
    fn report_has_a_curve_per_target_and_a_row_per_step() {
        let steps = vec![
            step("osprey", 1, 1000.0, 300),
            step("osprey", 8, 5000.0, 900),
            step("triton<2>", 1, 800.0, 400),
        ];
        let page = html(&steps);
        assert_eq!(page.matches("<tr><td>").count(), 3);
        // p99 and p50 charts: one curve per target (2 + 2); histograms: one line per step (2 + 1).
        assert_eq!(page.matches("<polyline").count(), 7);
        assert!(page.contains("triton&lt;2&gt;"), "names are escaped");
        assert!(!page.contains("<script"));
        let table = text_table(&steps);
        assert_eq!(table.lines().count(), 4);
    }
}
