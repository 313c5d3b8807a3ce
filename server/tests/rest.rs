//! REST front end against the bundled models: every endpoint, JSON and binary tensors, compared
//! with reference outputs computed by onnxruntime in Python when the models were generated.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{assert_data_close, models_dir, reference, temp_repo_with, TestServer};
use osprey_protocol::{DataType, TensorData};
use serde_json::{json, Value};

const MODELS: [&str; 4] = ["mlp", "identity", "iris", "text_sentiment"];

fn find<'a>(outputs: &'a [Value], name: &str) -> &'a Value {
    outputs
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("output {name} missing"))
}

#[tokio::test]
async fn health_metadata_config_and_readiness() {
    let s = TestServer::start(&models_dir()).await;
    assert_eq!(s.get("/v2/health/live").await, (200, json!({"live": true})));
    assert_eq!(
        s.get("/v2/health/ready").await,
        (200, json!({"ready": true}))
    );
    let (st, meta) = s.get("/v2").await;
    assert_eq!(st, 200);
    assert_eq!(meta["name"], "osprey");
    assert!(meta["extensions"]
        .as_array()
        .unwrap()
        .contains(&json!("binary_tensor_data")));

    let (st, m) = s.get("/v2/models/mlp").await;
    assert_eq!(st, 200);
    assert_eq!(m["versions"], json!(["1"]));
    assert_eq!(m["platform"], "onnxruntime_onnx");
    assert_eq!(
        m["inputs"],
        json!([{"name": "input", "datatype": "FP32", "shape": [-1, 64]}])
    );
    assert_eq!(
        m["outputs"],
        json!([{"name": "output", "datatype": "FP32", "shape": [-1, 10]}])
    );
    assert_eq!(s.get("/v2/models/mlp/versions/1").await.0, 200);
    assert_eq!(
        s.get("/v2/models/mlp/ready").await,
        (200, json!({"name": "mlp", "ready": true}))
    );
    assert_eq!(s.get("/v2/models/mlp/versions/1/ready").await.0, 200);
    assert_eq!(s.get("/v2/models/nope/ready").await.0, 404);

    let (st, c) = s.get("/v2/models/mlp/config").await;
    assert_eq!(st, 200);
    assert_eq!(c["name"], "mlp");
    assert_eq!(c["max_batch_size"], 64);
    assert_eq!(c["input"][0]["data_type"], "TYPE_FP32");
    assert_eq!(c["input"][0]["dims"], json!([64]));
    let (st, c) = s.get("/v2/models/text_sentiment/config").await;
    assert_eq!(st, 200);
    assert_eq!(c["input"][0]["data_type"], "TYPE_STRING");
    assert_eq!(s.get("/v2/nothing/here").await.0, 404);
    s.shutdown().await;
}

#[tokio::test]
async fn json_inference_matches_reference() {
    let s = TestServer::start(&models_dir()).await;
    for model in MODELS {
        for (i, case) in reference(model).into_iter().enumerate() {
            let body = json!({"id": format!("case-{i}"), "inputs": case.inputs});
            let (st, v) = s
                .post_json(&format!("/v2/models/{model}/infer"), &body)
                .await;
            assert_eq!(st, 200, "{model} case {i}: {v}");
            assert_eq!(v["model_name"], model);
            assert_eq!(v["model_version"], "1");
            assert_eq!(v["id"], format!("case-{i}"));
            let outs = v["outputs"].as_array().unwrap();
            assert_eq!(outs.len(), case.outputs.len());
            for want in &case.outputs {
                let got = find(outs, want["name"].as_str().unwrap());
                assert_eq!(got["datatype"], want["datatype"], "{model} case {i}");
                assert_eq!(got["shape"], want["shape"], "{model} case {i}");
                assert!(
                    got.get("parameters").is_none(),
                    "JSON outputs carry no parameters"
                );
                assert_data_close(want["name"].as_str().unwrap(), &got["data"], &want["data"]);
            }
        }
    }
    s.shutdown().await;
}

fn to_wire(datatype: &str, data: &Value) -> Vec<u8> {
    let dt: DataType = datatype.parse().unwrap();
    let values: osprey_protocol::json::JsonData = serde_json::from_value(data.clone()).unwrap();
    TensorData::from_json(dt, values, "t").unwrap().to_wire()
}

fn from_wire(datatype: &str, raw: &[u8]) -> Value {
    let dt: DataType = datatype.parse().unwrap();
    serde_json::to_value(TensorData::from_wire(dt, &Bytes::copy_from_slice(raw), "t").unwrap())
        .unwrap()
}

#[tokio::test]
async fn binary_inference_matches_reference() {
    let s = TestServer::start(&models_dir()).await;
    for model in MODELS {
        for case in reference(model) {
            let mut tail = Vec::new();
            let inputs: Vec<Value> = case
                .inputs
                .iter()
                .map(|t| {
                    let raw = to_wire(t["datatype"].as_str().unwrap(), &t["data"]);
                    let size = raw.len();
                    tail.extend(raw);
                    json!({"name": t["name"], "shape": t["shape"], "datatype": t["datatype"],
                           "parameters": {"binary_data_size": size}})
                })
                .collect();
            let header =
                json!({"inputs": inputs, "parameters": {"binary_data_output": true}}).to_string();
            let mut body = header.clone().into_bytes();
            body.extend(tail);
            let (st, headers, resp) = s
                .post_raw(
                    &format!("/v2/models/{model}/infer"),
                    body,
                    Some(&header.len().to_string()),
                )
                .await;
            assert_eq!(st, 200, "{}", String::from_utf8_lossy(&resp));
            let json_len: usize = headers["inference-header-content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            let v: Value = serde_json::from_slice(&resp[..json_len]).unwrap();
            let mut pos = json_len;
            for out in v["outputs"].as_array().unwrap() {
                let size = out["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
                let data = from_wire(out["datatype"].as_str().unwrap(), &resp[pos..pos + size]);
                pos += size;
                let want = find(&case.outputs, out["name"].as_str().unwrap());
                assert_eq!(out["shape"], want["shape"]);
                assert_data_close(out["name"].as_str().unwrap(), &data, &want["data"]);
            }
            assert_eq!(pos, resp.len(), "every binary byte belongs to an output");
        }
    }
    s.shutdown().await;
}

#[tokio::test]
async fn raw_binary_request_and_requested_outputs() {
    let s = TestServer::start(&models_dir()).await;
    let case = &reference("mlp")[0];
    let row: Vec<f64> = case.inputs[0]["data"].as_array().unwrap()[..64]
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let (st, v) = s
        .post_json(
            "/v2/models/mlp/infer",
            &json!({"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","data":row}]}),
        )
        .await;
    assert_eq!(st, 200);
    let raw: Vec<u8> = row.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
    let (st, headers, resp) = s.post_raw("/v2/models/mlp/infer", raw, Some("0")).await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&resp));
    let json_len: usize = headers["inference-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let data = from_wire("FP32", &resp[json_len..]);
    assert_data_close("output", &data, &v["outputs"][0]["data"]);

    // Requested outputs come back alone, in the order asked, binary only where asked.
    let iris = &reference("iris")[0];
    let body = json!({"inputs": iris.inputs, "outputs": [{"name": "probabilities"}, {"name": "label", "parameters": {"binary_data": false}}]});
    let (st, v) = s.post_json("/v2/models/iris/infer", &body).await;
    assert_eq!(st, 200);
    let names: Vec<&str> = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["probabilities", "label"]);
    let body = json!({"inputs": iris.inputs, "outputs": [{"name": "label"}]});
    let (_, v) = s.post_json("/v2/models/iris/versions/1/infer", &body).await;
    assert_eq!(v["outputs"].as_array().unwrap().len(), 1);
    assert_data_close(
        "label",
        &v["outputs"][0]["data"],
        &find(&iris.outputs, "label")["data"],
    );
    s.shutdown().await;
}

#[tokio::test]
async fn statistics_and_metrics_follow_inference() {
    let s = TestServer::start(&models_dir()).await;
    let case = &reference("mlp")[0];
    for _ in 0..3 {
        assert_eq!(
            s.post_json("/v2/models/mlp/infer", &json!({"inputs": case.inputs}))
                .await
                .0,
            200
        );
    }
    let rows = case.inputs[0]["shape"][0].as_u64().unwrap();
    let (st, v) = s.get("/v2/models/mlp/stats").await;
    assert_eq!(st, 200);
    let m = &v["model_stats"][0];
    assert_eq!(m["name"], "mlp");
    assert_eq!(m["version"], "1");
    assert_eq!(m["inference_count"], 3 * rows);
    assert_eq!(m["execution_count"], 3);
    assert_eq!(m["inference_stats"]["success"]["count"], 3);
    assert!(m["inference_stats"]["success"]["ns"].as_u64().unwrap() > 0);
    assert!(m["last_inference"].as_u64().unwrap() > 0);
    assert_eq!(m["batch_stats"][0]["batch_size"], rows);
    assert_eq!(
        s.get("/v2/models/mlp/versions/1/stats").await.1["model_stats"][0]["execution_count"],
        3
    );
    let (_, all) = s.get("/v2/models/stats").await;
    assert_eq!(
        all["model_stats"].as_array().unwrap().len(),
        common::bundled_model_count()
    );
    assert_eq!(s.get("/v2/models/nope/stats").await.0, 404);

    let text = s.metrics_text().await;
    assert!(
        text.contains(
            "osprey_inference_request_success_total{model=\"mlp\",version=\"1\",protocol=\"http\"}"
        ),
        "{text}"
    );
    assert!(text.contains("osprey_inference_request_duration_seconds_bucket"));
    s.shutdown().await;
}

#[tokio::test]
async fn config_is_completed_from_the_model_when_absent() {
    let repo = temp_repo_with(&["mlp"]);
    std::fs::remove_file(repo.path().join("mlp/config.pbtxt")).unwrap();
    let s = TestServer::start(repo.path()).await;
    let (st, c) = s.get("/v2/models/mlp/config").await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["max_batch_size"], 4, "Triton's default-max-batch-size");
    assert_eq!(c["platform"], "onnxruntime_onnx");
    assert_eq!(c["input"][0]["name"], "input");
    assert_eq!(c["input"][0]["dims"], json!([64]));
    assert_eq!(c["output"][0]["dims"], json!([10]));
    s.assert_still_serving().await;
    s.shutdown().await;
}

#[tokio::test]
async fn version_policies_pick_versions() {
    let repo = temp_repo_with(&["mlp"]);
    common::copy_dir(&repo.path().join("mlp/1"), &repo.path().join("mlp/3"));
    let s = TestServer::start(repo.path()).await;
    assert_eq!(
        s.get("/v2/models/mlp").await.1["versions"],
        json!(["3"]),
        "default policy: latest 1"
    );
    assert_eq!(s.get("/v2/models/mlp/versions/1").await.0, 404);
    s.shutdown().await;

    let cfg = std::fs::read_to_string(repo.path().join("mlp/config.pbtxt")).unwrap();
    std::fs::write(
        repo.path().join("mlp/config.pbtxt"),
        format!("{cfg}\nversion_policy: {{ all {{ }} }}\n"),
    )
    .unwrap();
    let s = TestServer::start(repo.path()).await;
    assert_eq!(
        s.get("/v2/models/mlp").await.1["versions"],
        json!(["1", "3"])
    );
    assert_eq!(
        s.post_json(
            "/v2/models/mlp/versions/1/infer",
            &json!({"inputs": reference("mlp")[0].inputs})
        )
        .await
        .0,
        200
    );
    s.shutdown().await;

    std::fs::write(
        repo.path().join("mlp/config.pbtxt"),
        format!("{cfg}\nversion_policy: {{ specific {{ versions: [1] }} }}\n"),
    )
    .unwrap();
    let s = TestServer::start(repo.path()).await;
    assert_eq!(s.get("/v2/models/mlp").await.1["versions"], json!(["1"]));
    s.shutdown().await;
}

#[tokio::test]
async fn a_broken_model_is_unavailable_while_others_serve() {
    let repo = temp_repo_with(&["mlp", "iris"]);
    std::fs::write(repo.path().join("iris/1/model.onnx"), b"not an onnx file").unwrap();
    std::fs::create_dir_all(repo.path().join("badcfg/1")).unwrap();
    std::fs::write(
        repo.path().join("badcfg/config.pbtxt"),
        "max_batch_size: \"eight\"",
    )
    .unwrap();
    let s = TestServer::start(repo.path()).await;
    let (_, index) = s.post_json("/v2/repository/index", &json!({})).await;
    let row = |n: &str| {
        index
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("mlp")["state"], "READY");
    assert_eq!(row("iris")["state"], "UNAVAILABLE");
    assert!(
        row("iris")["reason"]
            .as_str()
            .unwrap()
            .contains("failed to load model"),
        "{index}"
    );
    assert_eq!(row("badcfg")["state"], "UNAVAILABLE");
    assert!(
        row("badcfg")["reason"]
            .as_str()
            .unwrap()
            .contains("config.pbtxt"),
        "{index}"
    );
    let (st, v) = s
        .post_json(
            "/v2/models/iris/infer",
            &json!({"inputs": reference("iris")[0].inputs}),
        )
        .await;
    assert_eq!(st, 503, "{v}");
    assert_eq!(
        s.get("/v2/models/iris/ready").await,
        (503, json!({"name": "iris", "ready": false}))
    );
    assert_eq!(
        s.get("/v2/health/ready").await.0,
        503,
        "strict readiness: a start-up model failed"
    );
    s.assert_still_serving().await;
    s.shutdown().await;

    let s = TestServer::start_with(repo.path(), |a| a.strict_readiness = false).await;
    assert_eq!(s.get("/v2/health/ready").await.0, 200);
    s.shutdown().await;
}

#[tokio::test]
async fn repository_load_and_unload() {
    let s = TestServer::start_with(&models_dir(), |a| a.models = vec!["mlp".into()]).await;
    let (st, index) = s.post_json("/v2/repository/index", &json!({})).await;
    assert_eq!(st, 200);
    let iris = index
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "iris")
        .unwrap();
    assert!(iris.get("state").is_none(), "not loaded yet: {index}");
    let (_, ready_only) = s
        .post_json("/v2/repository/index", &json!({"ready": true}))
        .await;
    assert_eq!(ready_only.as_array().unwrap().len(), 1);
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 404);

    assert_eq!(
        s.post_json("/v2/repository/models/iris/load", &json!({}))
            .await,
        (200, json!({}))
    );
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 200);
    assert_eq!(
        s.post_json(
            "/v2/models/iris/infer",
            &json!({"inputs": reference("iris")[0].inputs})
        )
        .await
        .0,
        200
    );

    assert_eq!(
        s.post_json("/v2/repository/models/iris/unload", &json!({}))
            .await
            .0,
        200
    );
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 503);
    let (st, v) = s
        .post_json(
            "/v2/models/iris/infer",
            &json!({"inputs": reference("iris")[0].inputs}),
        )
        .await;
    assert_eq!(st, 503);
    assert!(v["error"].as_str().unwrap().contains("unloaded"));
    let (_, index) = s.post_json("/v2/repository/index", &json!({})).await;
    let iris = index
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "iris")
        .unwrap();
    assert_eq!(iris["state"], "UNAVAILABLE");

    assert_eq!(
        s.post_json("/v2/repository/models/iris/load", &json!({}))
            .await
            .0,
        200
    );
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 200);
    let (st, v) = s
        .post_json("/v2/repository/models/nope/load", &json!({}))
        .await;
    assert_eq!(st, 404, "{v}");
    let (st, _) = s
        .post_json("/v2/repository/models/mlp/load", &json!("not an object"))
        .await;
    assert_eq!(st, 400);
    s.assert_still_serving().await;
    s.shutdown().await;
}
