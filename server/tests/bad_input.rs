//! Every kind of bad input gets a clear 4xx (or the matching gRPC code) naming the field, and
//! the server keeps answering afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{models_dir, TestServer};
use osprey_protocol::grpc::inference::model_infer_request::InferInputTensor;
use osprey_protocol::grpc::inference::ModelInferRequest;
use serde_json::{json, Value};

fn mlp_input(shape: Value, datatype: &str, data: Value) -> Value {
    json!({"inputs":[{"name":"input","shape":shape,"datatype":datatype,"data":data}]})
}

async fn expect_error(s: &TestServer, path: &str, body: &Value, status: u16, needle: &str) {
    let (got, v) = s.post_json(path, body).await;
    let msg = v["error"].as_str().unwrap_or_default().to_string();
    assert_eq!(got, status, "{path}: {v}");
    assert!(
        msg.contains(needle),
        "error {msg:?} should mention {needle:?}"
    );
    s.assert_still_serving().await;
}

#[tokio::test]
async fn json_errors_name_the_field() {
    let s = TestServer::start(&models_dir()).await;
    let infer = "/v2/models/mlp/infer";
    let zeros = |n: usize| json!(vec![0.0f32; n]);
    expect_error(
        &s,
        "/v2/models/nope/infer",
        &mlp_input(json!([1, 64]), "FP32", zeros(64)),
        404,
        "unknown model 'nope'",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/mlp/versions/9/infer",
        &mlp_input(json!([1, 64]), "FP32", zeros(64)),
        404,
        "version '9'",
    )
    .await;
    expect_error(
        &s,
        infer,
        &mlp_input(json!([1, 64]), "INT32", json!(vec![0; 64])),
        400,
        "input 'input': expected datatype FP32, got INT32",
    )
    .await;
    expect_error(
        &s,
        infer,
        &mlp_input(json!([1, 63]), "FP32", zeros(63)),
        400,
        "input 'input': expected shape [-1,64], got [1,63]",
    )
    .await;
    expect_error(
        &s,
        infer,
        &mlp_input(json!([1, 64]), "FP32", zeros(63)),
        400,
        "input 'input': shape [1,64] needs 64 elements, got 63",
    )
    .await;
    expect_error(
        &s,
        infer,
        &mlp_input(json!([1, 64]), "FP32", zeros(65)),
        400,
        "needs 64 elements, got 65",
    )
    .await;
    expect_error(
        &s,
        infer,
        &mlp_input(json!([1, 64]), "FP32", json!(vec!["a"; 64])),
        400,
        "element 0: expected an FP32 value",
    )
    .await;
    expect_error(
        &s,
        infer,
        &mlp_input(json!([1, 64]), "FLOAT", zeros(64)),
        400,
        "unknown datatype 'FLOAT'",
    )
    .await;
    expect_error(
        &s,
        infer,
        &mlp_input(json!([1000, 64]), "FP32", zeros(64_000)),
        400,
        "exceeds the model's max_batch_size",
    )
    .await;
    expect_error(
        &s,
        infer,
        &mlp_input(json!([1, -64]), "FP32", zeros(64)),
        400,
        "dimensions must be non-negative",
    )
    .await;
    expect_error(
        &s,
        infer,
        &json!({"inputs": []}),
        400,
        "missing input 'input'",
    )
    .await;
    let mut extra = mlp_input(json!([1, 64]), "FP32", zeros(64));
    extra["inputs"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name":"other","shape":[1],"datatype":"FP32","data":[1]}));
    expect_error(&s, infer, &extra, 400, "unexpected input 'other'").await;
    let mut out = mlp_input(json!([1, 64]), "FP32", zeros(64));
    out["outputs"] = json!([{"name": "nope"}]);
    expect_error(&s, infer, &out, 400, "unknown output 'nope'").await;
    expect_error(
        &s,
        infer,
        &json!({"inputs": [{"name":"input","datatype":"FP32","data":[1]}]}),
        400,
        "shape",
    )
    .await;
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_and_binary_body_errors() {
    let s = TestServer::start(&models_dir()).await;
    let infer = "/v2/models/mlp/infer";
    let (st, _, body) = s.post_raw(infer, b"{\"inputs\": [".to_vec(), None).await;
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body).contains("malformed request body"));

    let header = br#"{"inputs":[{"name":"input","shape":[1,64],"datatype":"FP32","parameters":{"binary_data_size":256}}]}"#;
    // Truncated: only 100 of 256 bytes follow the JSON.
    let mut truncated = header.to_vec();
    truncated.extend_from_slice(&[0u8; 100]);
    let (st, _, body) = s
        .post_raw(infer, truncated, Some(&header.len().to_string()))
        .await;
    assert_eq!(st, 400);
    assert!(
        String::from_utf8_lossy(&body)
            .contains("binary_data_size 256 runs past the end of the body"),
        "{}",
        String::from_utf8_lossy(&body)
    );

    // Header length larger than the whole body.
    let (st, _, body) = s.post_raw(infer, header.to_vec(), Some("100000")).await;
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body)
        .contains("Inference-Header-Content-Length 100000 is larger than the body"));

    // Header length that is not a number.
    let (st, _, body) = s.post_raw(infer, header.to_vec(), Some("abc")).await;
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body).contains("Inference-Header-Content-Length"));

    // Bytes left over after the last binary tensor.
    let mut trailing = header.to_vec();
    trailing.extend_from_slice(&[0u8; 260]);
    let (st, _, body) = s
        .post_raw(infer, trailing, Some(&header.len().to_string()))
        .await;
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&body).contains("4 bytes after the last tensor"));

    // Raw binary request of the wrong size.
    let (st, _, body) = s.post_raw(infer, vec![0u8; 255], Some("0")).await;
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    s.assert_still_serving().await;
    s.shutdown().await;
}

#[tokio::test]
async fn oversized_body_is_413() {
    let s = TestServer::start_with(&models_dir(), |a| a.http_max_body_bytes = 1024).await;
    let body = mlp_input(json!([4, 64]), "FP32", json!(vec![0.123456f32; 256]));
    let (st, v) = s.post_json("/v2/models/mlp/infer", &body).await;
    assert_eq!(st, 413, "{v}");
    assert!(v["error"]
        .as_str()
        .unwrap()
        .contains("exceeds the limit of 1024 bytes"));
    s.assert_still_serving().await;
    s.shutdown().await;
}

#[tokio::test]
async fn grpc_errors_use_the_right_codes() {
    let s = TestServer::start(&models_dir()).await;
    let mut c = s.grpc_client().await;
    let tensor = |shape: Vec<i64>, datatype: &str| InferInputTensor {
        name: "input".into(),
        datatype: datatype.into(),
        shape,
        ..Default::default()
    };
    let req = |model: &str, t: InferInputTensor, raw: Vec<Vec<u8>>| ModelInferRequest {
        model_name: model.into(),
        inputs: vec![t],
        raw_input_contents: raw.into_iter().map(Into::into).collect(),
        ..Default::default()
    };
    let good = vec![0u8; 256];
    let e = c
        .model_infer(req("nope", tensor(vec![1, 64], "FP32"), vec![good.clone()]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let e = c
        .model_infer(req(
            "mlp",
            tensor(vec![1, 63], "FP32"),
            vec![vec![0u8; 252]],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("expected shape [-1,64], got [1,63]"),
        "{}",
        e.message()
    );
    let e = c
        .model_infer(req(
            "mlp",
            tensor(vec![1, 64], "FP32"),
            vec![vec![0u8; 255]],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("255 bytes"), "{}", e.message());
    let e = c
        .model_infer(req(
            "mlp",
            tensor(vec![1, 64], "FP32"),
            vec![good.clone(), good.clone()],
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    let e = c
        .model_infer(req("mlp", tensor(vec![1, 64], "FP32"), vec![]))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("no data"), "{}", e.message());
    let ok = c
        .model_infer(req("mlp", tensor(vec![1, 64], "FP32"), vec![good]))
        .await
        .expect("good request");
    assert_eq!(ok.get_ref().outputs.len(), 1);
    s.assert_still_serving().await;
    s.shutdown().await;
}

#[tokio::test]
async fn bad_requests_never_disturb_good_ones() {
    let s = std::sync::Arc::new(TestServer::start(&models_dir()).await);
    let good_body = mlp_input(
        json!([1, 64]),
        "FP32",
        json!((0..64).map(|i| i as f32 / 64.0).collect::<Vec<_>>()),
    );
    let (st, expected) = s.post_json("/v2/models/mlp/infer", &good_body).await;
    assert_eq!(st, 200);
    let mut tasks = Vec::new();
    for i in 0..48 {
        let s = s.clone();
        let good_body = good_body.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                s.post_json("/v2/models/mlp/infer", &good_body).await
            } else {
                s.post_json(
                    "/v2/models/mlp/infer",
                    &mlp_input(json!([1, 64]), "FP32", json!([1.0])),
                )
                .await
            }
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let (st, v) = t.await.unwrap();
        if i % 2 == 0 {
            assert_eq!(st, 200);
            assert_eq!(v["outputs"], expected["outputs"]);
        } else {
            assert_eq!(st, 400);
        }
    }
}

#[tokio::test]
async fn grpc_message_over_the_limit_is_refused() {
    let s = TestServer::start_with(&models_dir(), |a| a.grpc_max_message_bytes = 4096).await;
    let mut c = s.grpc_client().await;
    let req = ModelInferRequest {
        model_name: "mlp".into(),
        inputs: vec![InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape: vec![64, 64],
            ..Default::default()
        }],
        raw_input_contents: vec![vec![0u8; 64 * 64 * 4].into()],
        ..Default::default()
    };
    let e = c.model_infer(req).await.unwrap_err();
    assert!(
        matches!(
            e.code(),
            tonic::Code::OutOfRange | tonic::Code::ResourceExhausted
        ),
        "{e:?}"
    );
    s.assert_still_serving().await;
    s.shutdown().await;
}
