//! Sentence embeddings with the bundled MiniLM (candle): sentences per second for batches of 1,
//! 8 and 32 short and long sentences, in process through the server's path (tokenizer stage,
//! batcher, candle), and the encoder alone with per-batch padding against fixed padding to 128
//! tokens (what MiniLM's tokenizer.json asks for).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use osprey_protocol::{InferRequest, Tensor, TensorData};
use osprey_runtimes::candle::{Accelerator, BertEncoder};
use osprey_runtimes::Runtime;

use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer};

const SHORT: &str = "A man is playing a guitar.";
const LONG: &str = "Inference servers sit between applications and models: they accept requests \
over HTTP or gRPC, validate tensors, queue them, merge concurrent requests into batches so that \
the hardware works on many rows at once, run the model, and split the answers back to every \
caller. Latency at low load and throughput at high load pull in opposite directions, and a \
good batcher trades a little of one for much of the other.";

fn request(text: &str, n: usize) -> InferRequest {
    let t = Tensor::new(
        "text",
        vec![n as i64, 1],
        TensorData::Bytes(vec![text.to_string().into(); n]),
    )
    .unwrap();
    InferRequest {
        inputs: vec![t],
        ..Default::default()
    }
}

fn through_server(c: &mut Criterion) {
    let (rt, model) = common::load("minilm");
    let mut g = c.benchmark_group("minilm_server_path");
    g.sample_size(10);
    for (kind, text) in [("short", SHORT), ("long", LONG)] {
        for n in [1usize, 8, 32] {
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new(kind, n), &n, |b, &n| {
                b.iter(|| {
                    rt.block_on(common::infer(&model, request(text, n)))
                        .unwrap()
                })
            });
        }
    }
    g.finish();
}

/// Token tensors for `texts`, padded to the longest (`fixed` None) or to a fixed length.
fn tokens(tok: &Tokenizer, texts: &[&str], fixed: Option<usize>) -> Vec<Tensor> {
    let mut tok = tok.clone();
    tok.with_padding(Some(PaddingParams {
        strategy: fixed.map_or(PaddingStrategy::BatchLongest, PaddingStrategy::Fixed),
        ..Default::default()
    }));
    let enc = tok.encode_batch(texts.to_vec(), true).unwrap();
    let len = enc[0].len();
    let field = |name: &str, f: &dyn Fn(&tokenizers::Encoding) -> Vec<i64>| {
        let v: Vec<i64> = enc.iter().flat_map(f).collect();
        Tensor::new(
            name,
            vec![texts.len() as i64, len as i64],
            TensorData::Int64(v),
        )
        .unwrap()
    };
    vec![
        field("input_ids", &|e| {
            e.get_ids().iter().map(|&x| x.into()).collect()
        }),
        field("attention_mask", &|e| {
            e.get_attention_mask().iter().map(|&x| x.into()).collect()
        }),
        field("token_type_ids", &|e| {
            e.get_type_ids().iter().map(|&x| x.into()).collect()
        }),
    ]
}

fn padding(c: &mut Criterion) {
    let dir = common::models().join("minilm/1");
    let mut enc = BertEncoder::load(&dir, &Accelerator::Cpu).expect("run scripts/setup.sh");
    let tok = Tokenizer::from_file(dir.join("tokenizer.json")).unwrap();
    let mut g = c.benchmark_group("minilm_padding");
    g.sample_size(10);
    let mixed: Vec<&str> = (0..32)
        .map(|i| if i % 4 == 0 { LONG } else { SHORT })
        .collect();
    for (kind, texts) in [
        ("short32", vec![SHORT; 32]),
        ("long32", vec![LONG; 32]),
        ("mixed32", mixed),
    ] {
        g.throughput(Throughput::Elements(32));
        for (pad, fixed) in [("per_batch", None), ("fixed128", Some(128))] {
            let inputs = tokens(&tok, &texts, fixed);
            g.bench_function(BenchmarkId::new(kind, pad), |b| {
                b.iter(|| enc.run(inputs.clone()).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, through_server, padding);
criterion_main!(benches);
