//! End-to-end in-process inference of the bundled MLP through the scheduler and ONNX Runtime:
//! one request at a time, and 64 concurrent batch-1 requests (batched by the scheduler).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use osprey_protocol::{InferRequest, Tensor, TensorData};

fn request() -> InferRequest {
    let input = Tensor::new("input", vec![1, 64], TensorData::Fp32(vec![0.25; 64])).unwrap();
    InferRequest {
        inputs: vec![input],
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let (rt, model) = common::load("mlp");

    let mut g = c.benchmark_group("mlp_inference");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_request", |b| {
        b.iter(|| rt.block_on(common::infer(&model, request())).unwrap())
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("64_concurrent_requests", |b| {
        b.iter(|| {
            rt.block_on(async {
                let tasks: Vec<_> = (0..64)
                    .map(|_| {
                        let m = model.clone();
                        tokio::spawn(async move { common::infer(&m, request()).await.map(|_| ()) })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap().unwrap();
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
