//! REST JSON and binary decoding/encoding, and gRPC message conversion.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use osprey_protocol::grpc::inference::model_infer_request::InferInputTensor;
use osprey_protocol::grpc::inference::ModelInferRequest;
use osprey_protocol::grpc::{request_from_grpc, response_to_grpc};
use osprey_protocol::rest::{decode_request, encode_response};
use osprey_protocol::{InferResponse, Tensor, TensorData};

fn values(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * 0.37).sin()).collect()
}

fn json_body(rows: usize) -> Bytes {
    let body = serde_json::json!({"inputs":[{"name":"input","shape":[rows,64],"datatype":"FP32","data":values(rows*64)}]});
    Bytes::from(body.to_string())
}

fn binary_body(rows: usize) -> (Bytes, usize) {
    let raw: Vec<u8> = values(rows * 64)
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let header = format!(
        r#"{{"inputs":[{{"name":"input","shape":[{rows},64],"datatype":"FP32","parameters":{{"binary_data_size":{}}}}}],"parameters":{{"binary_data_output":true}}}}"#,
        raw.len()
    );
    let mut body = header.clone().into_bytes();
    body.extend(raw);
    (Bytes::from(body), header.len())
}

fn response(rows: usize) -> InferResponse {
    InferResponse {
        model_name: "mlp".into(),
        model_version: "1".into(),
        outputs: vec![Tensor::new(
            "output",
            vec![rows as i64, 10],
            TensorData::Fp32(values(rows * 10)),
        )
        .unwrap()],
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rest_decode");
    for rows in [1usize, 64] {
        g.throughput(Throughput::Elements(rows as u64));
        let json = json_body(rows);
        g.bench_with_input(BenchmarkId::new("json", rows), &json, |b, body| {
            b.iter(|| decode_request(body.clone(), None).unwrap())
        });
        let (bin, len) = binary_body(rows);
        g.bench_with_input(BenchmarkId::new("binary", rows), &bin, |b, body| {
            b.iter(|| decode_request(body.clone(), Some(len)).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("rest_encode");
    for rows in [1usize, 64] {
        let resp = response(rows);
        g.bench_with_input(BenchmarkId::new("json", rows), &resp, |b, r| {
            b.iter(|| encode_response(r, |_| false).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("binary", rows), &resp, |b, r| {
            b.iter(|| encode_response(r, |_| true).unwrap())
        });
    }
    g.finish();
    let mut g = c.benchmark_group("grpc_convert");
    for rows in [1usize, 64] {
        let raw: Vec<u8> = values(rows * 64)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let req = ModelInferRequest {
            model_name: "mlp".into(),
            inputs: vec![InferInputTensor {
                name: "input".into(),
                datatype: "FP32".into(),
                shape: vec![rows as i64, 64],
                ..Default::default()
            }],
            raw_input_contents: vec![Bytes::from(raw)],
            ..Default::default()
        };
        g.bench_with_input(BenchmarkId::new("request", rows), &req, |b, r| {
            b.iter(|| request_from_grpc(r.clone()).unwrap())
        });
        let resp = response(rows);
        g.bench_with_input(BenchmarkId::new("response", rows), &resp, |b, r| {
            b.iter(|| response_to_grpc(r.clone()))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
