//! Triton's latency summaries (`--metrics-config summary_latencies=true`) on /metrics.
//! The tests share one process, hence one metrics registry: each uses its own model, and
//! looks only at that model's series.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{temp_repo_with, TestServer};
use osprey_server::metrics::MetricsSetting;
use serde_json::json;

const SUMMARIES: [&str; 5] = [
    "nv_inference_request_summary_us",
    "nv_inference_queue_summary_us",
    "nv_inference_compute_input_summary_us",
    "nv_inference_compute_infer_summary_us",
    "nv_inference_compute_output_summary_us",
];

fn settings(specs: &[&str]) -> Vec<MetricsSetting> {
    specs.iter().map(|s| s.parse().expect(s)).collect()
}

/// The value of the sample line `series` (name and labels).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} in\n{text}"))
        .parse()
        .unwrap()
}

/// Sends `n` successful requests to `model`, whose one input `input` takes `width` numbers.
async fn infer(s: &TestServer, model: &str, input: &str, width: usize, n: usize) {
    let body = json!({"inputs": [{"name": input, "shape": [1, width], "datatype": "FP32",
        "data": vec![0.5f32; width]}]});
    for _ in 0..n {
        let (status, v) = s
            .post_json(&format!("/v2/models/{model}/infer"), &body)
            .await;
        assert_eq!(status, 200, "{v}");
    }
}

/// Checks one model's summaries: HELP and TYPE, `quantiles` in order, non-decreasing and
/// positive, `_count` equal to `count` and a positive `_sum`.
fn assert_summaries(text: &str, model: &str, quantiles: &[&str], count: f64) {
    let labels = format!("model=\"{model}\",version=\"1\"");
    for name in SUMMARIES {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}:\n{text}");
        assert!(
            text.contains(&format!("# TYPE {name} summary\n")),
            "{name}:\n{text}"
        );
        assert_eq!(
            sample(text, &format!("{name}_count{{{labels}}}")),
            count,
            "{name}"
        );
        let sum = sample(text, &format!("{name}_sum{{{labels}}}"));
        let got: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{name}{{{labels},quantile=")))
            .collect();
        assert_eq!(got.len(), quantiles.len(), "{name}: {got:?}");
        let mut last = 0.0;
        for q in quantiles {
            let v = sample(text, &format!("{name}{{{labels},quantile=\"{q}\"}}"));
            assert!(v >= last, "{name}: quantile {q} = {v} < {last}");
            last = v;
        }
        // Compute input and output of a one-row request can take under a microsecond; the
        // request and the model run cannot.
        if name == SUMMARIES[0] || name == SUMMARIES[3] {
            assert!(sum > 0.0, "{name}: sum {sum}");
            let p50 = sample(text, &format!("{name}{{{labels},quantile=\"0.5\"}}"));
            assert!(p50 > 0.0, "{name}: p50 {p50}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn summaries_report_the_configured_quantiles_of_every_request() {
    let repo = temp_repo_with(&["mlp"]);
    let s = TestServer::start_with(repo.path(), |a| {
        a.metrics_config = settings(&[
            "summary_latencies=true",
            "summary_quantiles=0.5:0.05,0.9:0.01,0.95:0.001,0.99:0.001",
        ]);
    })
    .await;
    infer(&s, "mlp", "input", 64, 25).await;
    let text = s.metrics_text().await;
    assert_summaries(&text, "mlp", &["0.5", "0.9", "0.95", "0.99"], 25.0);
    // The counters stay, and the summary's sum matches the counter's, as Triton's docs say.
    let mv = "{model=\"mlp\",version=\"1\"}";
    assert_eq!(
        sample(&text, &format!("nv_inference_queue_duration_us{mv}")),
        sample(&text, &format!("nv_inference_queue_summary_us_sum{mv}"))
    );
    assert_eq!(
        sample(&text, &format!("nv_inference_request_success{mv}")),
        25.0
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_no_summary_is_exported() {
    let repo = temp_repo_with(&["iris"]);
    let s = TestServer::start(repo.path()).await;
    infer(&s, "iris", "float_input", 4, 3).await;
    let text = s.metrics_text().await;
    let mv = "model=\"iris\",version=\"1\"";
    assert_eq!(
        sample(&text, &format!("nv_inference_request_success{{{mv}}}")),
        3.0
    );
    sample(&text, &format!("nv_inference_request_duration_us{{{mv}}}"));
    let leaked: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("_summary_us") && l.contains(mv))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tritons_default_quantiles_and_counters_switched_off() {
    let repo = temp_repo_with(&["linear"]);
    let s = TestServer::start_with(repo.path(), |a| {
        a.metrics_config = settings(&["summary_latencies=true", "counter_latencies=false"]);
    })
    .await;
    infer(&s, "linear", "x", 4, 7).await;
    let text = s.metrics_text().await;
    assert_summaries(
        &text,
        "linear",
        &["0.5", "0.9", "0.95", "0.99", "0.999"],
        7.0,
    );
    let mv = "{model=\"linear\",version=\"1\"}";
    assert_eq!(
        sample(&text, &format!("nv_inference_request_success{mv}")),
        7.0
    );
    for counter in [
        "nv_inference_request_duration_us",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_input_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us",
    ] {
        assert!(
            !text.contains(&format!("{counter}{mv}")),
            "{counter} with counter_latencies=false:\n{text}"
        );
    }
    s.shutdown().await;
}
