//! The generator against a small synthetic server whose answers are known: counts, error
//! classification and percentile ordering (no timing thresholds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use clap::Parser;
use osprey_loadtest::LoadtestArgs;
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: LoadtestArgs,
}

fn args(extra: &[&str]) -> LoadtestArgs {
    let mut v = vec![
        "loadtest",
        "--quiet",
        "--warmup",
        "0",
        "--duration",
        "30",
        "--timeout",
        "5",
    ];
    v.extend_from_slice(extra);
    Cli::parse_from(v).args
}

/// `good` answers 200, `busy` 503, `picky` 400; statistics count what `good` served, two
/// requests per execution.
async fn synthetic() -> (String, Arc<AtomicU64>) {
    let served = Arc::new(AtomicU64::new(0));
    let s1 = served.clone();
    let s2 = served.clone();
    let app = Router::new()
        .route(
            "/v2/models/{m}",
            get(|Path(m): Path<String>| async move {
                axum::Json(json!({"name": m, "versions": ["1"], "platform": "x",
                    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
                    "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 4]}]}))
            }),
        )
        .route(
            "/v2/models/{m}/infer",
            post(move |Path(m): Path<String>, body: axum::body::Bytes| {
                let served = s1.clone();
                async move {
                    assert!(!body.is_empty());
                    match m.as_str() {
                        "good" => {
                            served.fetch_add(1, Ordering::Relaxed);
                            (StatusCode::OK, "{}".to_string())
                        }
                        "busy" => (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "{\"error\":\"busy\"}".to_string(),
                        ),
                        _ => (StatusCode::BAD_REQUEST, "{\"error\":\"no\"}".to_string()),
                    }
                }
            }),
        )
        .route(
            "/v2/models/{m}/stats",
            get(move || {
                let n = s2.load(Ordering::Relaxed);
                async move {
                    axum::Json(json!({"model_stats": [{"name": "good", "version": "1",
                        "inference_count": n, "execution_count": n / 2,
                        "inference_stats": {"queue": {"count": n, "ns": n * 1000},
                                            "compute_infer": {"count": n, "ns": n * 3000}}}]}))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr.to_string(), served)
}

#[tokio::test]
async fn closed_loop_counts_and_percentiles() {
    let (url, _) = synthetic().await;
    let a = args(&[
        "--url",
        &url,
        "-m",
        "good",
        "--concurrency",
        "1,4",
        "--requests",
        "120",
        "--transport",
        "rest-json",
    ]);
    let results = osprey_loadtest::run(a).await.unwrap();
    assert_eq!(results.len(), 2);
    for r in &results {
        assert_eq!(r.requests, 120, "{r:?}");
        assert_eq!(r.ok, 120);
        assert!(r.errors.is_empty());
        let l = &r.latency;
        assert!(
            l.p50_us <= l.p90_us
                && l.p90_us <= l.p99_us
                && l.p99_us <= l.p999_us
                && l.p999_us <= l.max_us,
            "{l:?}"
        );
        assert!(l.p50_us > 0);
        assert_eq!(
            r.histogram.iter().map(|(_, c)| c).sum::<u64>(),
            120,
            "every request is in the histogram"
        );
        let server = r.server.as_ref().expect("statistics read");
        assert!(server.inferences >= 120, "{server:?}");
        assert!((server.avg_queue_us - 1.0).abs() < 1e-9);
        assert!((server.avg_compute_us - 3.0).abs() < 1e-9);
    }
    assert_eq!(results[0].concurrency, Some(1));
    assert_eq!(results[1].concurrency, Some(4));
}

#[tokio::test]
async fn errors_are_classified() {
    let (url, served) = synthetic().await;
    let busy = osprey_loadtest::run(args(&[
        "--url",
        &url,
        "-m",
        "busy",
        "--requests",
        "30",
        "--max-error-rate",
        "1",
    ]))
    .await
    .unwrap();
    assert_eq!(busy[0].ok, 0);
    assert_eq!(busy[0].errors.get("http_503"), Some(&30));
    assert_eq!(
        busy[0].error_samples.get("http_503").map(String::as_str),
        Some("{\"error\":\"busy\"}"),
        "the server's own answer is kept as the sample"
    );
    let picky = osprey_loadtest::run(args(&[
        "--url",
        &url,
        "-m",
        "picky",
        "--requests",
        "10",
        "--concurrency",
        "3",
        "--max-error-rate",
        "1",
    ]))
    .await
    .unwrap();
    assert_eq!(picky[0].errors.get("http_400"), Some(&10));
    assert_eq!(
        served.load(Ordering::Relaxed),
        0,
        "no request reached the good model"
    );
}

#[tokio::test]
async fn failures_past_the_allowed_rate_fail_the_run_with_a_sample() {
    let (url, _) = synthetic().await;
    let e = osprey_loadtest::run(args(&["--url", &url, "-m", "busy", "--requests", "20"]))
        .await
        .expect_err("every request failed");
    let e = format!("{e:#}");
    assert!(e.contains("20 of 20 requests failed"), "{e}");
    assert!(e.contains("http_503: {\"error\":\"busy\"}"), "{e}");
    // Within the allowed share the run passes.
    osprey_loadtest::run(args(&[
        "--url",
        &url,
        "-m",
        "busy",
        "--requests",
        "5",
        "--max-error-rate",
        "1",
    ]))
    .await
    .expect("allowed");
}

#[tokio::test]
async fn a_target_that_cannot_be_reached_says_why() {
    let spare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = spare.local_addr().unwrap().to_string();
    drop(spare);
    for transport in ["rest-binary", "grpc"] {
        let e = osprey_loadtest::run(args(&[
            "--url",
            &dead,
            "-m",
            "good",
            "--requests",
            "5",
            "--transport",
            transport,
        ]))
        .await
        .expect_err("nothing listens");
        let e = format!("{e:#}");
        assert!(
            e.contains("cannot start: model 'good'") && e.contains(&dead),
            "{transport}: {e}"
        );
        assert!(
            e.to_lowercase().contains("connect") || e.contains("refused"),
            "{transport}: {e}"
        );
    }
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let (url, _) = synthetic().await;
    // Metadata from the live server, then requests to a port nobody listens on.
    let spare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = spare.local_addr().unwrap().to_string();
    drop(spare);
    let mut a = args(&["--url", &url, "-m", "good", "--requests", "5"]);
    let target = osprey_loadtest::target::Target::connect(&a).await.unwrap();
    let osprey_loadtest::target::Target::Rest {
        client,
        bodies,
        next,
        ..
    } = target
    else {
        panic!("rest")
    };
    let broken = osprey_loadtest::target::Target::Rest {
        client,
        url: format!("http://{dead}/v2/models/good/infer"),
        bodies,
        next,
    };
    a.duration = 5.0;
    let step = osprey_loadtest::args::Step::Closed { concurrency: 1 };
    let r = osprey_loadtest::driver::run_step(&broken, &step, &a).await;
    assert_eq!(r.errors.get("connect"), Some(&5), "{:?}", r.errors);
}

#[tokio::test]
async fn requests_from_a_file_are_sent_round_robin() {
    let (url, served) = synthetic().await;
    let dir = std::env::temp_dir().join(format!("osprey-lt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("requests.json");
    let one = json!({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]});
    let two = json!({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [[1, 2, 3, 4], [5, 6, 7, 8]]}]});
    std::fs::write(&file, json!([one, two]).to_string()).unwrap();
    let path = file.to_str().unwrap().to_string();
    let r = osprey_loadtest::run(args(&[
        "--url",
        &url,
        "-m",
        "good",
        "--input-file",
        &path,
        "--requests",
        "10",
    ]))
    .await
    .unwrap();
    assert_eq!(r[0].ok, 10);
    assert!(served.load(Ordering::Relaxed) >= 10);
    std::fs::write(&file, "[{\"inputs\": 5}]").unwrap();
    let err = osprey_loadtest::run(args(&["--url", &url, "-m", "good", "--input-file", &path]))
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("request 0"), "{err:#}");
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn open_loop_sends_the_requested_count() {
    let (url, _) = synthetic().await;
    let a = args(&[
        "--url",
        &url,
        "-m",
        "good",
        "--rate",
        "400",
        "--requests",
        "60",
    ]);
    let r = osprey_loadtest::run(a).await.unwrap();
    assert_eq!(r[0].mode, "open");
    assert_eq!(r[0].requests, 60);
    assert_eq!(r[0].ok, 60);
    let p = osprey_loadtest::run(args(&[
        "--url",
        &url,
        "-m",
        "good",
        "--rate",
        "400",
        "--poisson",
        "--requests",
        "40",
    ]))
    .await
    .unwrap();
    assert_eq!(p[0].ok, 40);
    let csv = osprey_loadtest::output::csv(&r);
    assert_eq!(csv.lines().count(), 2);
    assert!(csv.lines().nth(1).unwrap().contains(",open,,400,"), "{csv}");
}
