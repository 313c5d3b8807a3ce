//! What a Triton user meets in the first week: configuration fields Osprey does not implement
//! are refused by name (never loaded while doing something else), unloading a start-up model
//! keeps the server ready, and `GET /v2` lists every extension served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{temp_repo_with, TestServer};
use serde_json::{json, Value};

/// The MLP's configuration with `extra` appended.
fn with_config(repo: &std::path::Path, extra: &str) {
    let path = repo.join("mlp/config.pbtxt");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n{extra}\n")).unwrap();
}

async fn index_row(s: &TestServer, model: &str) -> Value {
    let (_, index) = s.post_json("/v2/repository/index", &json!({})).await;
    index
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == model)
        .cloned()
        .unwrap_or_else(|| panic!("{model} in {index}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unimplemented_config_fields_are_refused_by_name() {
    for (extra, field) in [
        (
            "instance_group [ { count: 1 kind: KIND_GPU } ]",
            "KIND_GPU",
        ),
        (
            "model_warmup [ { name: \"w\" batch_size: 1 inputs { key: \"input\" value: { data_type: TYPE_FP32 dims: [ 64 ] zero_data: true } } } ]",
            "model_warmup",
        ),
        ("response_cache { enable: true }", "response_cache"),
        (
            "optimization { execution_accelerators { gpu_execution_accelerator [ { name: \"tensorrt\" } ] } }",
            "optimization.execution_accelerators",
        ),
    ] {
        let repo = temp_repo_with(&["mlp", "iris"]);
        with_config(repo.path(), extra);
        let s = TestServer::start_with(repo.path(), |a| a.strict_readiness = false).await;
        let row = index_row(&s, "mlp").await;
        assert_eq!(row["state"], "UNAVAILABLE", "{extra}: {row}");
        assert!(
            row["reason"].as_str().unwrap().contains(field),
            "{extra}: {row}"
        );
        let (status, v) = s.get("/v2/models/mlp/ready").await;
        assert_ne!(status, 200, "{extra}: {v}");
        let (status, v) = s
            .post_json("/v2/repository/models/mlp/load", &json!({}))
            .await;
        assert_eq!(status, 400, "{extra}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{v}");
        // The rest of the repository serves.
        assert_eq!(s.get("/v2/models/iris/ready").await.0, 200);
        s.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unloading_a_start_up_model_keeps_the_server_ready() {
    let repo = temp_repo_with(&["mlp", "iris"]);
    let s = TestServer::start(repo.path()).await;
    assert_eq!(s.get("/v2/health/ready").await.0, 200);
    let (status, _) = s
        .post_json("/v2/repository/models/iris/unload", &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 503);
    assert_eq!(
        s.get("/v2/health/ready").await.0,
        200,
        "an unloaded model is no longer a loaded one"
    );
    let (status, _) = s
        .post_json("/v2/repository/models/iris/load", &json!({}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(s.get("/v2/health/ready").await.0, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn server_metadata_lists_every_extension_served() {
    let repo = temp_repo_with(&["iris"]);
    let s = TestServer::start(repo.path()).await;
    let (status, v) = s.get("/v2").await;
    assert_eq!(status, 200);
    let ext: Vec<&str> = v["extensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    for e in [
        "binary_tensor_data",
        "classification",
        "model_repository",
        "model_configuration",
        "schedule_policy",
        "statistics",
    ] {
        assert!(ext.contains(&e), "{e} in {ext:?}");
    }
    // Classification is really served.
    let body = json!({"inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32",
        "data": [5.1, 3.5, 1.4, 0.2]}],
        "outputs": [{"name": "probabilities", "parameters": {"classification": 1}}]});
    let (status, v) = s.post_json("/v2/models/iris/infer", &body).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["outputs"][0]["datatype"], "BYTES", "{v}");
    s.shutdown().await;
}
