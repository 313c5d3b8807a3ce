//! In-process throughput of one model instance, with no server in between: the ceiling that
//! `scripts/bench_gpu.py` compares the server against, on the CPU and on a GPU.
//!
//! ```text
//! cargo run --release -p osprey-runtimes --example throughput -- \
//!     MODEL DEVICE BATCH SECONDS [TOKENS]
//! ```
//! MODEL is an `.onnx` file (ONNX Runtime; FP32 inputs, variable dimensions other than the
//! batch set to 1) or a sentence-transformers directory (candle's BERT encoder; TOKENS tokens
//! per sentence, 16 by default). DEVICE is `cpu`, `cuda` or `cuda:N`. Prints one JSON line:
//! rows per second and the median and spread of the time per run.
#![allow(clippy::expect_used)]

use osprey_protocol::{Tensor, TensorData};
use osprey_runtimes::candle::BertEncoder;
use osprey_runtimes::onnx::{locate_library, OnnxEnvironment};
use osprey_runtimes::{Accelerator, LoadOptions, Runtime};
use std::path::Path;
use std::time::{Duration, Instant};

fn inputs(runtime: &dyn Runtime, batch: usize, tokens: usize, candle: bool) -> Vec<Tensor> {
    runtime
        .inputs()
        .iter()
        .map(|spec| {
            if candle {
                let ids: Vec<i64> = (0..batch * tokens)
                    .map(|i| 1000 + (i % 997) as i64)
                    .collect();
                let data = match spec.name.as_str() {
                    "input_ids" => ids,
                    "attention_mask" => vec![1; batch * tokens],
                    _ => vec![0; batch * tokens],
                };
                let shape = vec![batch as i64, tokens as i64];
                return Tensor::new(spec.name.clone(), shape, TensorData::Int64(data))
                    .expect("tensor");
            }
            let mut shape = spec.shape.clone();
            for (i, d) in shape.iter_mut().enumerate() {
                if *d < 0 {
                    *d = if i == 0 { batch as i64 } else { 1 };
                }
            }
            let n = shape.iter().product::<i64>() as usize;
            let data = (0..n).map(|i| (i % 13) as f32 / 13.0).collect();
            Tensor::new(spec.name.clone(), shape, TensorData::Fp32(data)).expect("tensor")
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model, device, batch, seconds, rest @ ..] = args.as_slice() else {
        return Err("usage: throughput MODEL DEVICE BATCH SECONDS [TOKENS]".into());
    };
    let device: Accelerator = device.parse()?;
    let batch: usize = batch.parse()?;
    let seconds: f64 = seconds.parse()?;
    let tokens: usize = rest.first().map_or(Ok(16), |t| t.parse())?;
    let path = Path::new(model);
    let candle = path.is_dir();
    let mut runtime: Box<dyn Runtime> = if candle {
        Box::new(BertEncoder::load(path, &device)?)
    } else {
        let env = OnnxEnvironment::init(&locate_library(None)?)?;
        let opts = LoadOptions {
            device,
            ..Default::default()
        };
        Box::new(env.load(path, &opts)?)
    };
    let batch_inputs = inputs(runtime.as_ref(), batch, tokens, candle);
    // Warm-up: first-run allocations, CUDA kernels loaded, cuBLAS handles made.
    for _ in 0..3 {
        runtime.run(batch_inputs.clone())?;
    }
    let mut runs: Vec<Duration> = Vec::new();
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        let inputs = batch_inputs.clone();
        let t = Instant::now();
        runtime.run(inputs)?;
        runs.push(t.elapsed());
    }
    let total: Duration = runs.iter().sum();
    runs.sort();
    let ms = |q: f64| {
        let i = ((runs.len() - 1) as f64 * q).round() as usize;
        runs.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{{\"model\":{model:?},\"device\":\"{device}\",\"batch\":{batch},\"runs\":{},\
         \"rows_per_s\":{:.1},\"run_ms_p50\":{:.3},\"run_ms_min\":{:.3},\"run_ms_p90\":{:.3}}}",
        runs.len(),
        (runs.len() * batch) as f64 / total.as_secs_f64(),
        ms(0.5),
        ms(0.0),
        ms(0.9)
    );
    Ok(())
}
