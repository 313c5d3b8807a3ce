//! Batch formation (the pure queue) and merging/splitting tensors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use osprey_protocol::batch::{concat_inputs, split_outputs};
use osprey_protocol::{Tensor, TensorData};
use osprey_server::config::parse_pbtxt;
use osprey_server::scheduler::queue::{Next, Queue};
use osprey_server::scheduler::BatchPolicy;
use std::time::Instant;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch");
    for n in [8usize, 64] {
        g.throughput(Throughput::Elements(n as u64));
        let requests: Vec<Vec<Tensor>> = (0..n)
            .map(|i| {
                vec![
                    Tensor::new("input", vec![1, 64], TensorData::Fp32(vec![i as f32; 64]))
                        .unwrap(),
                ]
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("concat", n), &requests, |b, r| {
            b.iter(|| concat_inputs(r.clone()).unwrap())
        });
        let out = vec![Tensor::new(
            "output",
            vec![n as i64, 10],
            TensorData::Fp32(vec![0.5; n * 10]),
        )
        .unwrap()];
        let rows = vec![1usize; n];
        g.bench_with_input(BenchmarkId::new("split", n), &out, |b, o| {
            b.iter(|| split_outputs(o.clone(), &rows).unwrap())
        });
        let config = parse_pbtxt("max_batch_size: 64 dynamic_batching { }").unwrap();
        let policy = BatchPolicy::from_config(&config, 4096);
        g.bench_with_input(BenchmarkId::new("queue_push_and_form", n), &n, |b, &n| {
            b.iter(|| {
                let mut q: Queue<usize> = Queue::new(policy.clone());
                let now = Instant::now();
                for i in 0..n {
                    q.push(i, 1, vec![0, 1, 64], 0, None, now).unwrap();
                }
                match q.next_batch(now) {
                    Next::Batch(b) => b.len(),
                    _ => 0,
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
