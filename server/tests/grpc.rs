//! gRPC front end against the bundled models: every RPC, raw and typed contents, streaming,
//! repository control and standard health checking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{assert_data_close, models_dir, reference, TestServer};
use osprey_protocol::grpc::health::health_client::HealthClient;
use osprey_protocol::grpc::health::HealthCheckRequest;
use osprey_protocol::grpc::inference::model_infer_request::InferInputTensor;
use osprey_protocol::grpc::inference::*;
use osprey_protocol::{DataType, TensorData};
use serde_json::Value;

fn request(model: &str, inputs: &[Value]) -> ModelInferRequest {
    let mut raw = Vec::new();
    let tensors = inputs
        .iter()
        .map(|t| {
            let dt: DataType = t["datatype"].as_str().unwrap().parse().unwrap();
            let values: osprey_protocol::json::JsonData =
                serde_json::from_value(t["data"].clone()).unwrap();
            raw.push(Bytes::from(
                TensorData::from_json(dt, values, "t").unwrap().to_wire(),
            ));
            InferInputTensor {
                name: t["name"].as_str().unwrap().into(),
                datatype: dt.as_str().into(),
                shape: t["shape"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d.as_i64().unwrap())
                    .collect(),
                ..Default::default()
            }
        })
        .collect();
    ModelInferRequest {
        model_name: model.into(),
        inputs: tensors,
        raw_input_contents: raw,
        ..Default::default()
    }
}

fn check_response(resp: &ModelInferResponse, want: &[Value]) {
    assert_eq!(resp.outputs.len(), want.len());
    assert_eq!(resp.raw_output_contents.len(), want.len());
    for (o, raw) in resp.outputs.iter().zip(&resp.raw_output_contents) {
        let w = want.iter().find(|w| w["name"] == o.name.as_str()).unwrap();
        assert_eq!(o.datatype, w["datatype"].as_str().unwrap());
        let shape: Vec<i64> = w["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_i64().unwrap())
            .collect();
        assert_eq!(o.shape, shape);
        let data = TensorData::from_wire(o.datatype.parse().unwrap(), raw, &o.name).unwrap();
        assert_data_close(&o.name, &serde_json::to_value(data).unwrap(), &w["data"]);
    }
}

#[tokio::test]
async fn metadata_config_and_health() {
    let s = TestServer::start(&models_dir()).await;
    let mut c = s.grpc_client().await;
    assert!(
        c.server_live(ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        c.server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let meta = c
        .server_metadata(ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.name, "osprey");
    assert!(meta.extensions.contains(&"model_repository".to_string()));
    let ready = c
        .model_ready(ModelReadyRequest {
            name: "iris".into(),
            version: "1".into(),
        })
        .await
        .unwrap();
    assert!(ready.into_inner().ready);
    let m = c
        .model_metadata(ModelMetadataRequest {
            name: "mlp".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.versions, vec!["1"]);
    assert_eq!(m.inputs[0].name, "input");
    assert_eq!(m.inputs[0].shape, vec![-1, 64]);
    let cfg = c
        .model_config(ModelConfigRequest {
            name: "mlp".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    let cfg = cfg.into_inner().config.unwrap();
    assert_eq!(cfg.max_batch_size, 64);
    assert_eq!(
        cfg.input[0].data_type,
        osprey_protocol::grpc::inference::DataType::TypeFp32 as i32
    );
    let e = c
        .model_metadata(ModelMetadataRequest {
            name: "nope".into(),
            version: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);

    let mut h = HealthClient::connect(format!("http://{}", s.grpc))
        .await
        .unwrap();
    let st = h
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(st, 1, "SERVING");
    let e = h
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    s.shutdown().await;
}

#[tokio::test]
async fn raw_and_typed_inference_match_reference() {
    let s = TestServer::start(&models_dir()).await;
    let mut c = s.grpc_client().await;
    for model in ["mlp", "identity", "iris", "text_sentiment"] {
        for case in reference(model) {
            let resp = c
                .model_infer(request(model, &case.inputs))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(resp.model_name, model);
            assert_eq!(resp.model_version, "1");
            check_response(&resp, &case.outputs);
        }
    }
    // Typed contents instead of raw bytes.
    let case = &reference("mlp")[0];
    let mut req = request("mlp", &case.inputs);
    req.raw_input_contents.clear();
    let fp32: Vec<f32> = case.inputs[0]["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    req.inputs[0].contents = Some(InferTensorContents {
        fp32_contents: fp32,
        ..Default::default()
    });
    req.id = "typed".into();
    let resp = c.model_infer(req).await.unwrap().into_inner();
    assert_eq!(resp.id, "typed");
    check_response(&resp, &case.outputs);
    s.shutdown().await;
}

#[tokio::test]
async fn stream_infer_answers_in_order() {
    let s = TestServer::start(&models_dir()).await;
    let mut c = s.grpc_client().await;
    let cases = reference("iris");
    let mut reqs: Vec<ModelInferRequest> =
        cases.iter().map(|c| request("iris", &c.inputs)).collect();
    reqs.push(ModelInferRequest {
        model_name: "nope".into(),
        ..Default::default()
    });
    let mut stream = c
        .model_stream_infer(tokio_stream::iter(reqs))
        .await
        .unwrap()
        .into_inner();
    for case in &cases {
        let msg = stream.message().await.unwrap().unwrap();
        assert_eq!(msg.error_message, "");
        check_response(msg.infer_response.as_ref().unwrap(), &case.outputs);
    }
    let err = stream.message().await.unwrap().unwrap();
    assert!(
        err.error_message.contains("unknown model 'nope'"),
        "{}",
        err.error_message
    );
    assert!(stream.message().await.unwrap().is_none());
    s.shutdown().await;
}

/// 100,000 requests on one stream: every answer arrives, in order, and the stream's requests
/// run concurrently (the batcher sees more than one at a time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_stream_carries_100k_requests() {
    const N: usize = 100_000;
    let repo = common::temp_repo_with(&["identity"]);
    let s = TestServer::start(repo.path()).await;
    let mut c = s.grpc_client().await;
    let row: Vec<u8> = (0..64).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let reqs = tokio_stream::iter((0..N).map(move |i| ModelInferRequest {
        model_name: "identity".into(),
        id: i.to_string(),
        inputs: vec![
            osprey_protocol::grpc::inference::model_infer_request::InferInputTensor {
                name: "input".into(),
                datatype: "FP32".into(),
                shape: vec![1, 64],
                ..Default::default()
            },
        ],
        raw_input_contents: vec![row.clone().into()],
        ..Default::default()
    }));
    let mut stream = c.model_stream_infer(reqs).await.unwrap().into_inner();
    let mut next = 0usize;
    while let Some(msg) = stream.message().await.unwrap() {
        assert_eq!(msg.error_message, "", "answer {next}");
        let resp = msg.infer_response.expect("a response");
        assert_eq!(
            resp.id,
            next.to_string(),
            "answers come back in request order"
        );
        next += 1;
    }
    assert_eq!(next, N);
    let (_, stats) = s.get("/v2/models/identity/stats").await;
    let st = &stats["model_stats"][0];
    assert_eq!(st["inference_count"].as_u64(), Some(N as u64));
    assert!(
        st["execution_count"].as_u64().unwrap() < N as u64,
        "the stream's requests were batched together: {st}"
    );
    s.shutdown().await;
}

/// A client that sends each stream message in a DATA frame of its own, far ahead of the
/// answers. While the stream handler has its requests in flight, the frames wait in h2's
/// receive buffer, and every small one (payload under 256 bytes) counts against h2's budget for
/// framing overhead: half the connection window. With hyper's 1 MB window, about 2,500 waiting
/// 46-byte frames ended the connection with GOAWAY ENHANCE_YOUR_CALM ("too_many_data_frames").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_of_small_frames_far_ahead_of_the_answers_is_answered_in_full() {
    use prost::Message;
    const N: usize = 30_000;
    let repo = common::temp_repo_with(&["linear", "mlp"]);
    let s = TestServer::start(repo.path()).await;
    let tcp = tokio::net::TcpStream::connect(s.grpc).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let head = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://{}/inference.GRPCInferenceService/ModelStreamInfer",
            s.grpc
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (answer, mut send) = client.send_request(head, false).unwrap();
    let msg = ModelInferRequest {
        model_name: "linear".into(),
        inputs: vec![InferInputTensor {
            name: "x".into(),
            datatype: "FP32".into(),
            shape: vec![1, 4],
            ..Default::default()
        }],
        raw_input_contents: vec![vec![0u8; 16].into()],
        ..Default::default()
    }
    .encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend((msg.len() as u32).to_be_bytes());
    frame.extend(msg);
    assert!(frame.len() < 256, "a small frame: {} bytes", frame.len());
    let frame = Bytes::from(frame);
    // Every message queued at once: h2 sends each as its own DATA frame as fast as the
    // window allows, never merging them.
    for _ in 0..N {
        send.send_data(frame.clone(), false).unwrap();
    }
    send.send_data(Bytes::new(), true).unwrap();

    let mut body = answer.await.unwrap().into_body();
    let mut buf = bytes::BytesMut::new();
    let mut answered = 0usize;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("after {answered} answers: {e}"));
        let _ = body.flow_control().release_capacity(chunk.len());
        buf.extend_from_slice(&chunk);
        while buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            if buf.len() < 5 + len {
                break;
            }
            let m = ModelStreamInferResponse::decode(&buf[5..5 + len]).unwrap();
            assert_eq!(m.error_message, "", "answer {answered}");
            let _ = buf.split_to(5 + len);
            answered += 1;
        }
    }
    assert_eq!(answered, N);
    s.assert_still_serving().await;
}

#[tokio::test]
async fn statistics_and_repository_control() {
    let s = TestServer::start(&models_dir()).await;
    let mut c = s.grpc_client().await;
    let case = &reference("mlp")[0];
    c.model_infer(request("mlp", &case.inputs)).await.unwrap();
    let st = c
        .model_statistics(ModelStatisticsRequest {
            name: "mlp".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    let st = &st.into_inner().model_stats[0];
    assert_eq!(st.execution_count, 1);
    assert_eq!(
        st.inference_stats
            .as_ref()
            .unwrap()
            .success
            .as_ref()
            .unwrap()
            .count,
        1
    );

    let idx = c
        .repository_index(RepositoryIndexRequest {
            repository_name: String::new(),
            ready: true,
        })
        .await
        .unwrap();
    assert_eq!(idx.into_inner().models.len(), common::bundled_model_count());
    c.repository_model_unload(RepositoryModelUnloadRequest {
        model_name: "mlp".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let ready = c
        .model_ready(ModelReadyRequest {
            name: "mlp".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    assert!(!ready.into_inner().ready);
    let e = c
        .model_infer(request("mlp", &case.inputs))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert!(
        c.server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready,
        "an unloaded model no longer counts towards readiness, as in Triton"
    );
    c.repository_model_load(RepositoryModelLoadRequest {
        model_name: "mlp".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.model_infer(request("mlp", &case.inputs)).await.unwrap();
    assert!(
        c.server_ready(ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let e = c
        .repository_model_load(RepositoryModelLoadRequest {
            model_name: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    s.shutdown().await;
}

#[tokio::test]
async fn malformed_protobuf_is_invalid_argument() {
    let s = TestServer::start(&models_dir()).await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    // A gRPC frame (uncompressed, length 4) whose payload is not a valid protobuf message.
    let body = vec![0u8, 0, 0, 0, 4, 0xff, 0xff, 0xff, 0xff];
    let r = client
        .post(format!(
            "http://{}/inference.GRPCInferenceService/ModelInfer",
            s.grpc
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_string()),
        Some("3".into())
    );
    s.assert_still_serving().await;
    s.shutdown().await;
}
