//! Transformer stages around predictors: classification, normalisation, label mapping, and a
//! transformer in one Osprey server forwarding to a predictor in another (REST and gRPC).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{models_dir, temp_repo_with, TestServer};
use osprey_protocol::grpc::inference::model_infer_request::{
    InferInputTensor, InferRequestedOutputTensor,
};
use osprey_protocol::grpc::inference::{infer_parameter, InferParameter, ModelInferRequest};
use serde_json::json;

const IRIS: [f32; 8] = [5.9, 3.0, 5.1, 1.8, 5.1, 3.5, 1.4, 0.2];

fn linear(x: &[f64]) -> f64 {
    0.25 + x[0] - 2.0 * x[1] + 3.0 * x[2] + 0.5 * x[3]
}

#[tokio::test]
async fn classification_extension_rest_and_grpc() {
    let s = TestServer::start(&models_dir()).await;
    let body = json!({
        "inputs": [{"name": "float_input", "datatype": "FP32", "shape": [2, 4], "data": IRIS}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 2}}]
    });
    let (st, v) = s.post_json("/v2/models/iris/infer", &body).await;
    assert_eq!(st, 200, "{v}");
    let out = &v["outputs"][0];
    assert_eq!(out["datatype"], "BYTES");
    assert_eq!(out["shape"], json!([2, 2]));
    let items: Vec<&str> = out["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(items[0].ends_with(":2:virginica"), "{items:?}");
    assert!(items[2].ends_with(":0:setosa"), "{items:?}");
    let first: f64 = items[0].split(':').next().unwrap().parse().unwrap();
    let second: f64 = items[1].split(':').next().unwrap().parse().unwrap();
    assert!(first >= second);

    // gRPC: tritonclient's class_count travels as an int64 `classification` parameter.
    let mut client = s.grpc_client().await;
    let raw: Vec<u8> = IRIS.iter().flat_map(|f| f.to_le_bytes()).collect();
    let req = ModelInferRequest {
        model_name: "iris".into(),
        inputs: vec![InferInputTensor {
            name: "float_input".into(),
            datatype: "FP32".into(),
            shape: vec![2, 4],
            ..Default::default()
        }],
        outputs: vec![InferRequestedOutputTensor {
            name: "probabilities".into(),
            parameters: [(
                "classification".to_string(),
                InferParameter {
                    parameter_choice: Some(infer_parameter::ParameterChoice::Int64Param(1)),
                },
            )]
            .into(),
        }],
        raw_input_contents: vec![raw.into()],
        ..Default::default()
    };
    let resp = client.model_infer(req).await.unwrap().into_inner();
    assert_eq!(resp.outputs[0].datatype, "BYTES");
    assert_eq!(resp.outputs[0].shape, vec![2, 1]);
    let raw = &resp.raw_output_contents[0];
    let len = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]) as usize;
    let first = std::str::from_utf8(&raw[4..4 + len]).unwrap();
    assert!(first.ends_with(":2:virginica"), "{first}");

    // A count that is not a positive integer names the parameter.
    let bad = json!({
        "inputs": [{"name": "float_input", "datatype": "FP32", "shape": [2, 4], "data": IRIS}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": "two"}}]
    });
    let (st, v) = s.post_json("/v2/models/iris/infer", &bad).await;
    assert_eq!(st, 400);
    assert!(
        v["error"].as_str().unwrap().contains("classification"),
        "{v}"
    );
    s.assert_still_serving().await;
    s.shutdown().await;
}

fn write_config(repo: &std::path::Path, model: &str, text: &str) {
    std::fs::create_dir_all(repo.join(model)).unwrap();
    std::fs::write(repo.join(model).join("config.pbtxt"), text).unwrap();
}

#[tokio::test]
async fn normalize_and_label_steps() {
    let repo = temp_repo_with(&["linear", "iris"]);
    let lin = std::fs::read_to_string(repo.path().join("linear/config.pbtxt")).unwrap();
    let lin = format!(
        "{lin}\nstages {{ preprocess [ {{ normalize {{ input: \"x\" scale: [ 2, 1, 1, 1 ] shift: [ 1 ] }} }} ] }}\n"
    );
    // The explainer section and the new one merge into one `stages`.
    let lin = lin.replace(
        "stages { explainer { method: KERNEL_SHAP target: \"0\" } }",
        "",
    );
    write_config(repo.path(), "linear", &lin);
    let iris = std::fs::read_to_string(repo.path().join("iris/config.pbtxt")).unwrap();
    let iris = format!(
        "{iris}\nstages {{ postprocess [ {{ labels {{ output: \"label\" label_filename: \"labels.txt\" }} }} ] }}\n"
    );
    write_config(repo.path(), "iris", &iris);
    let s = TestServer::start(repo.path()).await;

    let x = [1.0, 2.0, 3.0, 4.0];
    let body = json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": x}]});
    let (st, v) = s.post_json("/v2/models/linear/infer", &body).await;
    assert_eq!(st, 200, "{v}");
    let want = linear(&[2.0 * 1.0 + 1.0, 2.0 + 1.0, 3.0 + 1.0, 4.0 + 1.0]);
    let got = v["outputs"][0]["data"][0].as_f64().unwrap();
    assert!((got - want).abs() < 1e-4, "{got} vs {want}");

    let body = json!({"inputs": [{"name": "float_input", "datatype": "FP32", "shape": [2, 4], "data": IRIS}]});
    let (st, v) = s.post_json("/v2/models/iris/infer", &body).await;
    assert_eq!(st, 200, "{v}");
    let label = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "label")
        .unwrap();
    assert_eq!(label["datatype"], "BYTES");
    assert_eq!(label["data"], json!(["virginica", "setosa"]));
    let (_, meta) = s.get("/v2/models/iris").await;
    let label_meta = meta["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "label")
        .cloned();
    assert_eq!(label_meta.unwrap()["datatype"], "BYTES");
    s.shutdown().await;
}

#[tokio::test]
async fn a_bad_stage_makes_the_model_unavailable_with_a_reason() {
    let repo = temp_repo_with(&["linear"]);
    let lin = std::fs::read_to_string(repo.path().join("linear/config.pbtxt")).unwrap();
    let lin = lin.replace(
        "stages { explainer { method: KERNEL_SHAP target: \"0\" } }",
        "stages { preprocess [ { normalize { input: \"nope\" } } ] }",
    );
    write_config(repo.path(), "linear", &lin);
    let s = TestServer::start_with(repo.path(), |a| a.strict_readiness = false).await;
    let (st, v) = s.post_json("/v2/repository/index", &json!({})).await;
    assert_eq!(st, 200);
    let reason = v[0]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("normalize.input 'nope'"), "{v}");
    s.shutdown().await;
}

fn front_config(name: &str, url: &str) -> String {
    format!(
        r#"name: "{name}"
max_batch_size: 64
input [ {{ name: "x" data_type: TYPE_FP32 dims: [ 4 ] }} ]
output [ {{ name: "y" data_type: TYPE_FP32 dims: [ 1 ] }} ]
stages {{
  preprocess [ {{ normalize {{ input: "x" scale: [ 2 ] shift: [ 1 ] }} }} ]
  remote {{ url: "{url}" model: "linear" timeout_ms: 2000 retries: 1 retry_backoff_ms: 10 }}
}}
"#
    )
}

#[tokio::test]
async fn transformer_forwards_to_a_remote_predictor() {
    let predictor_repo = temp_repo_with(&["linear"]);
    let predictor = TestServer::start(predictor_repo.path()).await;
    let repo = tempfile::tempdir().unwrap();
    write_config(
        repo.path(),
        "front_rest",
        &front_config("front_rest", &format!("http://{}", predictor.http)),
    );
    write_config(
        repo.path(),
        "front_grpc",
        &front_config("front_grpc", &format!("grpc://{}", predictor.grpc)),
    );
    let front = TestServer::start(repo.path()).await;
    let x = [0.5, -1.0, 2.0, 0.0];
    let want = linear(&x.map(|v| 2.0 * v + 1.0));
    let body = json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": x}]});
    for model in ["front_rest", "front_grpc"] {
        let (st, v) = front
            .post_json(&format!("/v2/models/{model}/infer"), &body)
            .await;
        assert_eq!(st, 200, "{model}: {v}");
        let got = v["outputs"][0]["data"][0].as_f64().unwrap();
        assert!((got - want).abs() < 1e-4, "{model}: {got} vs {want}");
        assert_eq!(v["model_name"], model);
    }
    // The predictor saw both requests.
    let (_, stats) = predictor.get("/v2/models/linear/stats").await;
    assert_eq!(stats["model_stats"][0]["inference_count"], 2);
    // A bad input is refused before it travels.
    let bad =
        json!({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]});
    let (st, _) = front.post_json("/v2/models/front_rest/infer", &bad).await;
    assert_eq!(st, 400);

    predictor.shutdown().await;
    for model in ["front_rest", "front_grpc"] {
        let (st, v) = front
            .post_json(&format!("/v2/models/{model}/infer"), &body)
            .await;
        assert_eq!(st, 503, "{model}: {v}");
        let msg = v["error"].as_str().unwrap();
        assert!(
            msg.contains("remote predictor") && msg.contains("2 attempts"),
            "{msg}"
        );
    }
    let (st, _) = front.get("/v2/health/live").await;
    assert_eq!(st, 200);
    front.shutdown().await;
}
