//! The candle MiniLM encoder behind the tokenizer stage: embeddings from strings over REST and
//! gRPC, compared with sentence-transformers' reference vectors, and text requests of different
//! lengths batched together with per-batch padding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{models_dir, TestServer};
use osprey_protocol::grpc::inference::model_infer_request::InferInputTensor;
use osprey_protocol::grpc::inference::{InferTensorContents, ModelInferRequest};
use serde_json::{json, Value};
use std::path::Path;

struct Reference {
    text: String,
    embedding: Vec<f64>,
}

fn references() -> Vec<Reference> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../runtimes/tests/data/minilm_reference.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Reference {
            text: s["text"].as_str().unwrap().to_string(),
            embedding: s["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect(),
        })
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

fn rows(out: &Value) -> Vec<Vec<f64>> {
    let data: Vec<f64> = out["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    data.chunks(384).map(<[f64]>::to_vec).collect()
}

fn text_request(texts: &[&str]) -> Value {
    json!({"inputs": [{"name": "text", "datatype": "BYTES", "shape": [texts.len(), 1], "data": texts}]})
}

#[tokio::test]
async fn strings_in_reference_embeddings_out() {
    let s = TestServer::start(&models_dir()).await;
    let (st, meta) = s.get("/v2/models/minilm").await;
    assert_eq!(st, 200, "{meta}");
    assert_eq!(meta["inputs"][0]["name"], "text");
    assert_eq!(meta["inputs"][0]["datatype"], "BYTES");
    assert_eq!(meta["outputs"][0]["shape"], json!([-1, 384]));

    let refs = references();
    let texts: Vec<&str> = refs.iter().map(|r| r.text.as_str()).collect();
    // All sentences in one request: padded to the longest inside the request.
    let (st, v) = s
        .post_json("/v2/models/minilm/infer", &text_request(&texts))
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["outputs"][0]["shape"], json!([texts.len(), 384]));
    for (r, got) in refs.iter().zip(rows(&v["outputs"][0])) {
        let c = cosine(&got, &r.embedding);
        assert!(c >= 0.9999, "'{}': cosine {c}", r.text);
    }

    // gRPC, one sentence.
    let mut client = s.grpc_client().await;
    let req = ModelInferRequest {
        model_name: "minilm".into(),
        inputs: vec![InferInputTensor {
            name: "text".into(),
            datatype: "BYTES".into(),
            shape: vec![1, 1],
            contents: Some(InferTensorContents {
                bytes_contents: vec![refs[0].text.clone().into()],
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = client.model_infer(req).await.unwrap().into_inner();
    let raw = &resp.raw_output_contents[0];
    let got: Vec<f64> = raw
        .chunks_exact(4)
        .map(|b| f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
        .collect();
    assert!(cosine(&got, &refs[0].embedding) >= 0.9999);

    // A non-string and a missing input are refused, and the server keeps serving.
    let bad =
        json!({"inputs": [{"name": "text", "datatype": "FP32", "shape": [1, 1], "data": [1.0]}]});
    let (st, v) = s.post_json("/v2/models/minilm/infer", &bad).await;
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("text"), "{v}");
    s.assert_still_serving().await;
    s.shutdown().await;
}

/// A repository whose `minilm` batches with a long delay, so that concurrent requests meet; its
/// version directory is a symlink to the bundled one.
fn batching_repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("minilm");
    std::fs::create_dir_all(&m).unwrap();
    let cfg = std::fs::read_to_string(models_dir().join("minilm/config.pbtxt"))
        .unwrap()
        .replace(
            "max_queue_delay_microseconds: 2000",
            "max_queue_delay_microseconds: 300000",
        );
    std::fs::write(m.join("config.pbtxt"), cfg).unwrap();
    std::os::unix::fs::symlink(
        models_dir().join("minilm/1").canonicalize().unwrap(),
        m.join("1"),
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn different_lengths_share_a_padded_batch() {
    let repo = batching_repo();
    // The version directory is linked from the bundled model (90 MB not copied): allow it.
    let s = TestServer::start_with(repo.path(), |a| a.model_symlinks = true).await;
    let refs = references();
    let calls = refs.iter().map(|r| {
        let s = &s;
        async move {
            let (st, v) = s
                .post_json("/v2/models/minilm/infer", &text_request(&[&r.text]))
                .await;
            assert_eq!(st, 200, "{v}");
            rows(&v["outputs"][0]).remove(0)
        }
    });
    let answers = futures::future::join_all(calls).await;
    for (r, got) in refs.iter().zip(&answers) {
        let c = cosine(got, &r.embedding);
        assert!(c >= 0.9999, "'{}' batched with others: cosine {c}", r.text);
    }
    let (_, stats) = s.get("/v2/models/minilm/stats").await;
    let st = &stats["model_stats"][0];
    let executions = st["execution_count"].as_u64().unwrap();
    assert_eq!(st["inference_count"].as_u64().unwrap(), refs.len() as u64);
    assert!(
        executions < refs.len() as u64,
        "{} requests of different lengths ran in {executions} executions",
        refs.len()
    );
    s.shutdown().await;
}
