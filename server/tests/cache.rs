//! Triton's response cache (`--cache-config local,size=N`, `response_cache { enable: true }`)
//! on real servers: a repeated request is answered from the cache without running the model,
//! over REST, gRPC and gRPC streams alike, and counted in the statistics and metrics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{copy_dir, models_dir, temp_repo_with, TestServer};
use osprey_protocol::grpc::inference::model_infer_request::{
    InferInputTensor, InferRequestedOutputTensor,
};
use osprey_protocol::grpc::inference::*;
use osprey_protocol::TensorData;
use osprey_server::cache::CacheConfig;
use serde_json::{json, Value};
use std::path::Path;

const CACHE_ON: &str = "response_cache { enable: true }";

/// A repository with copies of `iris` under these names, each with `response_cache` on, and
/// `linear` without it. Each test names its own models: the metrics recorder is shared by the
/// tests of this file.
fn repository(cached: &[&str]) -> tempfile::TempDir {
    let repo = temp_repo_with(&["linear"]);
    for name in cached {
        copy_dir(&models_dir().join("iris"), &repo.path().join(name));
        let path = repo.path().join(name).join("config.pbtxt");
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text.replace("name: \"iris\"", &format!("name: \"{name}\""));
        std::fs::write(&path, format!("{text}\n{CACHE_ON}\n")).unwrap();
    }
    repo
}

async fn start(repo: &Path) -> TestServer {
    TestServer::start_with(repo, |a| {
        a.cache_config = Some("local,size=1048576".parse::<CacheConfig>().unwrap());
    })
    .await
}

fn iris_body(first: f32) -> Value {
    json!({"inputs":[{"name":"float_input","shape":[2,4],"datatype":"FP32",
        "data":[first,3.5,1.4,0.2, 6.3,3.3,6.0,2.5]}]})
}

fn linear_body() -> Value {
    json!({"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1.0,2.0,3.0,4.0]}]})
}

/// The model's statistics over REST: (cache hits, cache misses, executions, successes).
async fn counts(s: &TestServer, model: &str) -> (u64, u64, u64, u64) {
    let (status, stats) = s.get(&format!("/v2/models/{model}/stats")).await;
    assert_eq!(status, 200, "{stats}");
    let m = &stats["model_stats"][0];
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("a count: {m}"));
    let i = &m["inference_stats"];
    (
        n(&i["cache_hit"]["count"]),
        n(&i["cache_miss"]["count"]),
        n(&m["execution_count"]),
        n(&i["success"]["count"]),
    )
}

async fn infer(s: &TestServer, model: &str, body: &Value) -> Value {
    let (status, v) = s
        .post_json(&format!("/v2/models/{model}/infer"), body)
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_rest_request_is_answered_from_the_cache() {
    let repo = repository(&["iris", "iris_twin"]);
    let s = start(repo.path()).await;

    let first = infer(&s, "iris", &iris_body(5.1)).await;
    assert_eq!(
        counts(&s, "iris").await,
        (0, 1, 1, 1),
        "a miss runs the model"
    );
    let again = infer(&s, "iris", &iris_body(5.1)).await;
    assert_eq!(again["outputs"], first["outputs"], "the same answer");
    assert_eq!(again["model_name"], "iris");
    assert_eq!(
        counts(&s, "iris").await,
        (1, 1, 1, 2),
        "a hit: counted as a success, the model did not run"
    );
    let (_, stats) = s.get("/v2/models/iris/stats").await;
    let m = &stats["model_stats"][0];
    // iris does not batch (max_batch_size 0): one inference per request that ran.
    assert_eq!(
        m["inference_count"], 1,
        "cache hits are not inferences: {m}"
    );
    assert_eq!(m["inference_stats"]["compute_infer"]["count"], 1, "{m}");
    assert_eq!(m["inference_stats"]["queue"]["count"], 2, "{m}");

    // Another input is another answer.
    let other = infer(&s, "iris", &iris_body(7.0)).await;
    assert_ne!(other["outputs"], first["outputs"]);
    assert_eq!(counts(&s, "iris").await, (1, 2, 2, 3));

    // Asking for other outputs (classification) is another entry, and repeats hit it.
    let mut classify = iris_body(5.1);
    classify["outputs"] = json!([{"name":"probabilities","parameters":{"classification":2}}]);
    let top = infer(&s, "iris", &classify).await;
    assert_eq!(counts(&s, "iris").await, (1, 3, 3, 4));
    assert_eq!(
        infer(&s, "iris", &classify).await["outputs"],
        top["outputs"]
    );
    assert_eq!(counts(&s, "iris").await, (2, 3, 3, 5));

    // The same request to another model does not find iris's entry.
    let twin = infer(&s, "iris_twin", &iris_body(5.1)).await;
    assert_eq!(twin["outputs"], first["outputs"]);
    assert_eq!(twin["model_name"], "iris_twin");
    assert_eq!(counts(&s, "iris_twin").await, (0, 1, 1, 1));

    // A reloaded model (its files may have changed under the same version) does not find the
    // answers of its previous load.
    let (status, v) = s
        .post_json("/v2/repository/models/iris_twin/load", &json!({}))
        .await;
    assert_eq!(status, 200, "{v}");
    infer(&s, "iris_twin", &iris_body(5.1)).await;
    assert_eq!(
        counts(&s, "iris_twin").await,
        (0, 1, 1, 1),
        "a fresh load misses"
    );
    infer(&s, "iris_twin", &iris_body(5.1)).await;
    assert_eq!(counts(&s, "iris_twin").await, (1, 1, 1, 2));

    // A model without response_cache never hits.
    infer(&s, "linear", &linear_body()).await;
    infer(&s, "linear", &linear_body()).await;
    assert_eq!(counts(&s, "linear").await, (0, 0, 2, 2));

    let text = s.metrics_text().await;
    for line in [
        "nv_cache_num_hits_per_model{model=\"iris\",version=\"1\"} 2",
        "nv_cache_num_misses_per_model{model=\"iris\",version=\"1\"} 3",
        "nv_cache_num_misses_per_model{model=\"iris_twin\",version=\"1\"} 2",
        "# HELP nv_cache_num_hits_per_model ",
        "# HELP nv_cache_miss_duration_per_model ",
        "# TYPE nv_cache_hit_duration_per_model counter",
        "nv_inference_exec_count{model=\"iris\",version=\"1\"} 3",
        "nv_inference_request_success{model=\"iris\",version=\"1\"} 5",
    ] {
        assert!(text.lines().any(|l| l.starts_with(line)), "{line}:\n{text}");
    }
    assert!(
        text.contains("nv_cache_hit_duration_per_model{model=\"iris\""),
        "{text}"
    );
    assert!(
        !text.contains("nv_cache_num_hits_per_model{model=\"linear\""),
        "no cache series for a model without the cache:\n{text}"
    );
    s.shutdown().await;
}

fn grpc_request(model: &str, first: f32) -> ModelInferRequest {
    let data = TensorData::Fp32(vec![first, 3.5, 1.4, 0.2, 6.3, 3.3, 6.0, 2.5]);
    ModelInferRequest {
        model_name: model.into(),
        id: "grpc-1".into(),
        inputs: vec![InferInputTensor {
            name: "float_input".into(),
            datatype: "FP32".into(),
            shape: vec![2, 4],
            ..Default::default()
        }],
        raw_input_contents: vec![Bytes::from(data.to_wire())],
        ..Default::default()
    }
}

/// The model's statistics over gRPC: (cache hits, cache misses, executions).
async fn grpc_counts(
    c: &mut grpc_inference_service_client::GrpcInferenceServiceClient<tonic::transport::Channel>,
    model: &str,
) -> (u64, u64, u64) {
    let stats = c
        .model_statistics(ModelStatisticsRequest {
            name: model.into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let m = &stats.model_stats[0];
    let i = m.inference_stats.as_ref().unwrap();
    (
        i.cache_hit.as_ref().unwrap().count,
        i.cache_miss.as_ref().unwrap().count,
        m.execution_count,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_and_its_streams_share_the_cache_with_rest() {
    const IRIS: &str = "iris_grpc";
    let repo = repository(&[IRIS]);
    let s = start(repo.path()).await;
    let mut c = s.grpc_client().await;

    let first = c
        .model_infer(grpc_request(IRIS, 5.1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(grpc_counts(&mut c, IRIS).await, (0, 1, 1));
    let mut again_req = grpc_request(IRIS, 5.1);
    again_req.id = "grpc-2".into();
    let again = c.model_infer(again_req).await.unwrap().into_inner();
    assert_eq!(again.raw_output_contents, first.raw_output_contents);
    assert_eq!(again.outputs, first.outputs);
    assert_eq!(
        again.id, "grpc-2",
        "the answer carries its own request's id"
    );
    assert_eq!(grpc_counts(&mut c, IRIS).await, (1, 1, 1));

    // Streamed requests after the first answer was stored: both hit.
    let mut stream = c
        .model_stream_infer(tokio_stream::iter(vec![
            grpc_request(IRIS, 5.1),
            grpc_request(IRIS, 5.1),
        ]))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        let msg = stream.message().await.unwrap().unwrap();
        assert_eq!(msg.error_message, "");
        let resp = msg.infer_response.unwrap();
        assert_eq!(resp.raw_output_contents, first.raw_output_contents);
    }
    assert_eq!(grpc_counts(&mut c, IRIS).await, (3, 1, 1));

    // The REST path looks up the same entries.
    let rest = infer(&s, IRIS, &iris_body(5.1)).await;
    let label = TensorData::from_wire(
        osprey_protocol::DataType::Int64,
        &first.raw_output_contents[0],
        "label",
    )
    .unwrap();
    assert_eq!(first.outputs[0].name, "label");
    assert_eq!(
        rest["outputs"][0]["data"],
        serde_json::to_value(label).unwrap()
    );
    assert_eq!(grpc_counts(&mut c, IRIS).await, (4, 1, 1));

    // Requested outputs are part of the key: only `label` is another entry.
    let mut only_label = grpc_request(IRIS, 5.1);
    only_label.outputs = vec![InferRequestedOutputTensor {
        name: "label".into(),
        ..Default::default()
    }];
    let one = c.model_infer(only_label).await.unwrap().into_inner();
    assert_eq!(one.outputs.len(), 1);
    assert_eq!(grpc_counts(&mut c, IRIS).await, (4, 2, 2));

    // A model without the cache: a repeated gRPC request runs again.
    let mut linear = grpc_request("linear", 1.0);
    linear.inputs[0].name = "x".into();
    linear.inputs[0].shape = vec![1, 4];
    linear.raw_input_contents = vec![Bytes::from(
        TensorData::Fp32(vec![1.0, 2.0, 3.0, 4.0]).to_wire(),
    )];
    c.model_infer(linear.clone()).await.unwrap();
    c.model_infer(linear).await.unwrap();
    assert_eq!(grpc_counts(&mut c, "linear").await, (0, 0, 2));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_cache_the_model_loads_and_is_not_cached() {
    let repo = repository(&["iris_uncached"]);
    let s = TestServer::start(repo.path()).await;
    let m = "iris_uncached";
    assert_eq!(s.get(&format!("/v2/models/{m}/ready")).await.0, 200);
    let first = infer(&s, m, &iris_body(5.1)).await;
    let again = infer(&s, m, &iris_body(5.1)).await;
    assert_eq!(again["outputs"], first["outputs"]);
    assert_eq!(counts(&s, m).await, (0, 0, 2, 2), "ran twice");
    assert!(!s
        .metrics_text()
        .await
        .contains("nv_cache_num_hits_per_model{model=\"iris_uncached\""));
    s.shutdown().await;
}
