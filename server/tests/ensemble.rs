//! Triton's ensembles: steps through other models of the server, tensors passed in process,
//! each step in its own model's batcher; bad graphs refused naming the step; a failing step
//! named in the answer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{index_row, temp_repo_with, TestServer};
use osprey_protocol::grpc::inference::model_infer_request::InferInputTensor;
use osprey_protocol::grpc::inference::ModelInferRequest;
use osprey_protocol::TensorData;
use serde_json::{json, Value};
use std::path::Path;

/// identity (64 → 64) then mlp (64 → 10): the chain's answer is the MLP's.
const CHAIN: &str = r#"
name: "chain"
platform: "ensemble"
max_batch_size: 64
input [ { name: "IN" data_type: TYPE_FP32 dims: [ 64 ] } ]
output [ { name: "OUT" data_type: TYPE_FP32 dims: [ 10 ] } ]
ensemble_scheduling {
  step [
    { model_name: "identity" model_version: -1
      input_map { key: "input" value: "IN" } output_map { key: "output" value: "MID" } },
    { model_name: "mlp" model_version: -1
      input_map { key: "input" value: "MID" } output_map { key: "output" value: "OUT" } }
  ]
}
"#;

fn ensemble(repo: &Path, name: &str, config: &str) {
    let dir = repo.join(name);
    std::fs::create_dir_all(dir.join("1")).unwrap();
    std::fs::write(
        dir.join("config.pbtxt"),
        config.replace("\"chain\"", &format!("\"{name}\"")),
    )
    .unwrap();
}

fn row(seed: f32) -> Vec<f32> {
    (0..64).map(|i| ((i as f32) * 0.37 + seed).sin()).collect()
}

fn body(input: &str, rows: &[Vec<f32>]) -> Value {
    let data: Vec<f32> = rows.iter().flatten().copied().collect();
    json!({"inputs": [{"name": input, "datatype": "FP32", "shape": [rows.len(), 64], "data": data}]})
}

fn floats(v: &Value) -> Vec<f32> {
    v["outputs"][0]["data"]
        .as_array()
        .unwrap_or_else(|| panic!("{v}"))
        .iter()
        .map(|d| d.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_answers_what_its_last_model_answers() {
    let repo = temp_repo_with(&["identity", "mlp"]);
    ensemble(repo.path(), "chain", CHAIN);
    let s = TestServer::start(repo.path()).await;
    let (status, v) = s.get("/v2/models/chain/config").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["platform"], "ensemble", "{v}");
    assert_eq!(
        v["ensemble_scheduling"]["step"].as_array().unwrap().len(),
        2,
        "{v}"
    );

    let rows = [row(0.0), row(1.0), row(2.0)];
    let (status, direct) = s
        .post_json("/v2/models/mlp/infer", &body("input", &rows))
        .await;
    assert_eq!(status, 200, "{direct}");
    let (status, chained) = s
        .post_json("/v2/models/chain/infer", &body("IN", &rows))
        .await;
    assert_eq!(status, 200, "{chained}");
    assert_eq!(chained["model_name"], "chain", "{chained}");
    assert_eq!(chained["outputs"][0]["name"], "OUT", "{chained}");
    assert_eq!(chained["outputs"][0]["shape"], json!([3, 10]), "{chained}");
    assert_eq!(floats(&chained), floats(&direct));

    // gRPC, and many at once: every answer is its own request's.
    let mut handles = Vec::new();
    for k in 0..16 {
        let mut c = s.grpc_client().await;
        handles.push(tokio::spawn(async move {
            let data = TensorData::Fp32(row(k as f32));
            let r = c
                .model_infer(ModelInferRequest {
                    model_name: "chain".into(),
                    inputs: vec![InferInputTensor {
                        name: "IN".into(),
                        datatype: "FP32".into(),
                        shape: vec![1, 64],
                        ..Default::default()
                    }],
                    raw_input_contents: vec![Bytes::from(data.to_wire())],
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            (k, r.raw_output_contents[0].to_vec())
        }));
    }
    for h in handles {
        let (k, raw) = h.await.unwrap();
        let (_, direct) = s
            .post_json("/v2/models/mlp/infer", &body("input", &[row(k as f32)]))
            .await;
        let got: Vec<f32> = raw
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(got, floats(&direct), "request {k}");
    }
    // Each step ran as a request of its own model.
    let (_, stats) = s.get("/v2/models/identity/stats").await;
    assert!(
        stats["model_stats"][0]["inference_count"].as_u64().unwrap() >= 19,
        "{stats}"
    );

    // A step whose model is gone fails the request naming the step.
    let (status, _) = s
        .post_json("/v2/repository/models/mlp/unload", &json!({}))
        .await;
    assert_eq!(status, 200);
    let (status, v) = s
        .post_json("/v2/models/chain/infer", &body("IN", &rows))
        .await;
    assert_eq!(status, 503, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("ensemble step 1 (model 'mlp')"), "{e}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ensembles_are_refused_naming_the_step() {
    let cycle = CHAIN
        .replace(
            "value: \"IN\" } output_map { key: \"output\" value: \"MID\"",
            "value: \"LOOP\" } output_map { key: \"output\" value: \"MID\"",
        )
        .replace(
            "value: \"MID\" } output_map { key: \"output\" value: \"OUT\" }",
            "value: \"MID\" } output_map { key: \"output\" value: \"LOOP\" }",
        );
    let missing = CHAIN.replace("model_name: \"mlp\"", "model_name: \"nope\"");
    let bad_map = CHAIN.replace(
        "input_map { key: \"input\" value: \"MID\" }",
        "input_map { key: \"x\" value: \"MID\" }",
    );
    let repo = temp_repo_with(&["identity", "mlp"]);
    ensemble(repo.path(), "cycle", &cycle);
    ensemble(repo.path(), "missing", &missing);
    ensemble(repo.path(), "bad_map", &bad_map);
    let s = TestServer::start_with(repo.path(), |a| a.strict_readiness = false).await;
    for (model, says) in [
        (
            "cycle",
            "ensemble_scheduling: the steps form a cycle through step 0 (model 'identity')",
        ),
        (
            "missing",
            "step 1 (model 'nope'): no such model in the repository",
        ),
        (
            "bad_map",
            "step 1 (model 'mlp'): input_map names 'x', which is not an input",
        ),
    ] {
        let r = index_row(&s, model).await;
        assert_eq!(r["state"], "UNAVAILABLE", "{model}: {r}");
        assert!(r["reason"].as_str().unwrap().contains(says), "{model}: {r}");
        let (status, v) = s
            .post_json(&format!("/v2/repository/models/{model}/load"), &json!({}))
            .await;
        assert_eq!(status, 400, "{model}: {v}");
    }
    // The step models serve.
    assert_eq!(s.get("/v2/models/mlp/ready").await.0, 200);
    s.shutdown().await;
}
