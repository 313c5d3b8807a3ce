//! The dynamic batcher through the real server: batches larger than 1 seen in the statistics,
//! queue-full and timeout answers, per-request priority and timeout parameters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{temp_repo_with, TestServer};
use serde_json::{json, Value};
use std::sync::Arc;

const MLP: &str = r#"platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "input" data_type: TYPE_FP32 dims: [ 64 ] } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 10 ] } ]
"#;

/// A repository holding the MLP under `name` (metrics are process-wide, so each test uses
/// its own model name) with the given dynamic_batching block.
fn repo(name: &str, dynamic_batching: &str) -> tempfile::TempDir {
    let dir = temp_repo_with(&["mlp"]);
    std::fs::rename(dir.path().join("mlp"), dir.path().join(name)).unwrap();
    let config = format!("name: \"{name}\"\n{MLP}{dynamic_batching}\n");
    std::fs::write(dir.path().join(name).join("config.pbtxt"), config).unwrap();
    dir
}

fn row(seed: f32) -> Value {
    let data: Vec<f32> = (0..64).map(|i| seed + i as f32 / 64.0).collect();
    json!({"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":data}]})
}

#[tokio::test]
async fn concurrent_requests_run_as_one_batch() {
    let dir = repo(
        "batched",
        "dynamic_batching { preferred_batch_size: [ 8 ] max_queue_delay_microseconds: 5000000 }",
    );
    let s = Arc::new(TestServer::start(dir.path()).await);
    // Each request's answer alone, for comparison (runs before the batch test, one by one,
    // in a second server without batching).
    let plain_dir = repo("unbatched", "");
    let plain = TestServer::start(plain_dir.path()).await;
    let mut expected = Vec::new();
    for i in 0..8 {
        let (st, v) = plain
            .post_json("/v2/models/unbatched/infer", &row(i as f32))
            .await;
        assert_eq!(st, 200);
        expected.push(v["outputs"][0]["data"].clone());
    }
    plain.shutdown().await;

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                s.post_json("/v2/models/batched/infer", &row(i as f32))
                    .await
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let (st, v) = t.await.unwrap();
        assert_eq!(st, 200, "{v}");
        common::assert_data_close("output", &v["outputs"][0]["data"], &expected[i]);
    }
    let (_, stats) = s.get("/v2/models/batched/stats").await;
    let m = &stats["model_stats"][0];
    assert_eq!(m["inference_count"], 8);
    assert_eq!(
        m["execution_count"], 1,
        "eight requests, one execution: {m}"
    );
    assert_eq!(
        m["batch_stats"],
        json!([{
            "batch_size": 8,
            "compute_input": m["batch_stats"][0]["compute_input"],
            "compute_infer": m["batch_stats"][0]["compute_infer"],
            "compute_output": m["batch_stats"][0]["compute_output"],
        }])
    );
    assert_eq!(m["batch_stats"][0]["compute_infer"]["count"], 1);
    assert_eq!(
        m["inference_stats"]["compute_infer"]["count"], 8,
        "counted per request, as Triton does"
    );
    let text = s.metrics_text().await;
    assert!(
        text.contains("osprey_inference_exec_count_total{model=\"batched\",version=\"1\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "osprey_inference_batch_size_bucket{model=\"batched\",version=\"1\",le=\"8\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("osprey_inference_pending_request_count{model=\"batched\",version=\"1\"} 0")
    );
    assert!(text.contains("process_resident_memory_bytes"));
}

#[tokio::test]
async fn queue_timeout_answers_503_naming_the_limit() {
    let dir = repo(
        "timed",
        "dynamic_batching { max_queue_delay_microseconds: 5000000 \
         default_queue_policy { default_timeout_microseconds: 20000 allow_timeout_override: true } }",
    );
    let s = TestServer::start(dir.path()).await;
    let started = std::time::Instant::now();
    let (st, v) = s.post_json("/v2/models/timed/infer", &row(0.0)).await;
    assert_eq!(st, 503, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("timed out after"),
        "{v}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(4),
        "answered at the timeout, not the delay"
    );
    // The request's own timeout parameter overrides the default when the policy allows it.
    let mut body = row(0.0);
    body["parameters"] = json!({"timeout": 1000});
    let (st, _) = s.post_json("/v2/models/timed/infer", &body).await;
    assert_eq!(st, 503);
    let (_, stats) = s.get("/v2/models/timed/stats").await;
    assert_eq!(
        stats["model_stats"][0]["inference_stats"]["fail"]["count"],
        2
    );
    assert_eq!(stats["model_stats"][0]["execution_count"], 0);
    s.shutdown().await;
}

#[tokio::test]
async fn full_queue_answers_503_at_once() {
    let dir = repo(
        "small_queue",
        "dynamic_batching { max_queue_delay_microseconds: 300000 default_queue_policy { max_queue_size: 1 } }",
    );
    let s = Arc::new(TestServer::start(dir.path()).await);
    let first = {
        let s = s.clone();
        tokio::spawn(async move { s.post_json("/v2/models/small_queue/infer", &row(0.0)).await })
    };
    // Wait until the first request is queued (bounded polling of the pending gauge).
    for _ in 0..200 {
        let text = s.metrics_text().await;
        if text.contains(
            "osprey_inference_pending_request_count{model=\"small_queue\",version=\"1\"} 1",
        ) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (st, v) = s.post_json("/v2/models/small_queue/infer", &row(1.0)).await;
    assert_eq!(st, 503, "{v}");
    assert!(v["error"].as_str().unwrap().contains("queue full"), "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("max_queue_size 1"),
        "{v}"
    );
    let (st, v) = first.await.unwrap();
    assert_eq!(
        st, 200,
        "the queued request still runs after the delay: {v}"
    );
}

#[tokio::test]
async fn priority_parameter_is_checked() {
    let dir = repo(
        "prioritised",
        "dynamic_batching { priority_levels: 2 default_priority_level: 2 }",
    );
    let s = TestServer::start(dir.path()).await;
    let mut body = row(0.0);
    body["parameters"] = json!({"priority": 1});
    assert_eq!(
        s.post_json("/v2/models/prioritised/infer", &body).await.0,
        200
    );
    body["parameters"] = json!({"priority": 3});
    let (st, v) = s.post_json("/v2/models/prioritised/infer", &body).await;
    assert_eq!(st, 400);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("parameter 'priority'"),
        "{v}"
    );
    body["parameters"] = json!({});
    assert_eq!(
        s.post_json("/v2/models/prioritised/infer", &body).await.0,
        200,
        "still serving"
    );
    s.shutdown().await;
}
