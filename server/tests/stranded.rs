//! Stress: many closed-loop clients over HTTP and gRPC against batching models, for many
//! iterations each. A request that is never answered while the instances sit idle (a lost
//! wake-up between the submitters and the instance threads) fails the test at the bound below,
//! far above any honest answer time, instead of hanging it. Every answer is checked to be the
//! request's own.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{temp_repo_with, TestServer};
use osprey_protocol::grpc::inference::model_infer_request::InferInputTensor;
use osprey_protocol::grpc::inference::ModelInferRequest;
use std::sync::Arc;
use std::time::Duration;

/// Longer than any request needs on a loaded machine; only a stranded request reaches it.
const STRANDED_AFTER: Duration = Duration::from_secs(20);
const CLIENTS: usize = 64;
const ITERATIONS: usize = 60;

/// The MLP as a Triton user configures it: batching on with Triton's defaults, or with a delay.
fn repo(dynamic_batching: &str) -> tempfile::TempDir {
    let dir = temp_repo_with(&["mlp"]);
    let config = include_str!("../../scripts/peers/triton_user_mlp.pbtxt")
        .replace("@NAME@", "mlp")
        .replace("@BATCHING@", dynamic_batching);
    std::fs::write(dir.path().join("mlp/config.pbtxt"), config).unwrap();
    dir
}

fn row(seed: usize) -> Vec<f32> {
    (0..64)
        .map(|i| ((seed * 64 + i) % 997) as f32 / 997.0)
        .collect()
}

fn binary_body(x: &[f32]) -> (Vec<u8>, usize) {
    let header = serde_json::json!({
        "inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32",
                    "parameters": {"binary_data_size": 256}}],
        "outputs": [{"name": "output", "parameters": {"binary_data": true}}]
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    for v in x {
        body.extend_from_slice(&v.to_le_bytes());
    }
    (body, header.len())
}

/// The model's answer for each distinct input, computed one request at a time first.
async fn expected(s: &TestServer, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for seed in 0..n {
        out.push(http_infer(&s.client, &s.url("/v2/models/mlp/infer"), seed).await);
    }
    out
}

/// One binary-tensor REST inference; returns the output's bytes.
async fn http_infer(client: &reqwest::Client, url: &str, seed: usize) -> Vec<u8> {
    let (body, len) = binary_body(&row(seed));
    let r = client
        .post(url)
        .header("Inference-Header-Content-Length", len.to_string())
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let json_len: Option<usize> = r
        .headers()
        .get("inference-header-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let bytes = r.bytes().await.expect("body");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    bytes
        .get(json_len.expect("binary answer")..)
        .expect("output")
        .to_vec()
}

async fn grpc_infer(
    c: &mut osprey_protocol::grpc::inference::grpc_inference_service_client::GrpcInferenceServiceClient<
        tonic::transport::Channel,
    >,
    seed: usize,
) -> Vec<u8> {
    let raw: Vec<u8> = row(seed).iter().flat_map(|v| v.to_le_bytes()).collect();
    let req = ModelInferRequest {
        model_name: "mlp".into(),
        inputs: vec![InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape: vec![1, 64],
            ..Default::default()
        }],
        raw_input_contents: vec![raw.into()],
        ..Default::default()
    };
    let r = c.model_infer(req).await.expect("gRPC infer").into_inner();
    r.raw_output_contents
        .into_iter()
        .next()
        .expect("output")
        .to_vec()
}

/// CLIENTS clients over HTTP and CLIENTS over gRPC (each its own connection), ITERATIONS
/// requests each, back to back.
async fn hammer(dynamic_batching: &str) {
    let dir = repo(dynamic_batching);
    let s = Arc::new(TestServer::start(dir.path()).await);
    let want = Arc::new(expected(&s, 8).await);
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let (server, answers) = (s.clone(), want.clone());
        tasks.push(tokio::spawn(async move {
            let (s, want) = (server, answers);
            // Its own keep-alive connection, as each of perf_analyzer's clients has.
            let own = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let url = s.url("/v2/models/mlp/infer");
            for i in 0..ITERATIONS {
                let seed = (client + i) % want.len();
                let got = tokio::time::timeout(STRANDED_AFTER, http_infer(&own, &url, seed))
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "HTTP client {client}, request {i}: no answer after {STRANDED_AFTER:?}"
                        )
                    });
                assert_eq!(
                    got, want[seed],
                    "HTTP client {client} request {i} got another's answer"
                );
            }
        }));
        let (server, answers) = (s.clone(), want.clone());
        tasks.push(tokio::spawn(async move {
            let (s, want) = (server, answers);
            let mut c = s.grpc_client().await;
            for i in 0..ITERATIONS {
                let seed = (client + 2 * i) % want.len();
                let got = tokio::time::timeout(STRANDED_AFTER, grpc_infer(&mut c, seed))
                    .await
                    .unwrap_or_else(|_| {
                        panic!(
                            "gRPC client {client}, request {i}: no answer after {STRANDED_AFTER:?}"
                        )
                    });
                assert_eq!(
                    got, want[seed],
                    "gRPC client {client} request {i} got another's answer"
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let (_, stats) = s.get("/v2/models/mlp/stats").await;
    let m = &stats["model_stats"][0];
    let inferences = m["inference_count"].as_u64().unwrap();
    let executions = m["execution_count"].as_u64().unwrap();
    assert_eq!(inferences, (8 + 2 * CLIENTS * ITERATIONS) as u64);
    assert!(
        executions < inferences,
        "requests were batched: {executions} executions for {inferences}"
    );
    Arc::try_unwrap(s)
        .ok()
        .expect("clients done")
        .shutdown()
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_is_stranded_with_default_batching() {
    hammer("dynamic_batching { }").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_is_stranded_with_a_queue_delay() {
    hammer("dynamic_batching { max_queue_delay_microseconds: 300 preferred_batch_size: [ 16 ] }")
        .await;
}
