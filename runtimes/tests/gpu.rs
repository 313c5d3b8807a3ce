//! The MLP on ONNX Runtime's CUDA execution provider gives the CPU provider's outputs. It runs
//! on a machine with a GPU and `onnxruntime-gpu`'s library (ORT_DYLIB_PATH; scripts/gpu-check.sh
//! sets it); everywhere else it checks that loading onto the GPU is refused with the reason
//! this machine implies, and prints why the comparison was skipped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use osprey_protocol::{Tensor, TensorData};
use osprey_runtimes::onnx::{locate_library, OnnxEnvironment};
use osprey_runtimes::{gpu, Accelerator, LoadOptions, Runtime, RuntimeError};
use std::path::PathBuf;

fn mlp() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/mlp/1/model.onnx")
}

fn outputs(runtime: &mut dyn Runtime, rows: usize) -> Vec<f32> {
    let data: Vec<f32> = (0..rows * 64)
        .map(|i| ((i * 7) % 23) as f32 / 23.0 - 0.5)
        .collect();
    let input = Tensor::new("input", vec![rows as i64, 64], TensorData::Fp32(data)).unwrap();
    let mut out = runtime.run(vec![input]).expect("runs");
    match out.remove(0).data {
        TensorData::Fp32(v) => v,
        other => panic!("expected FP32, got {other:?}"),
    }
}

#[test]
fn mlp_on_the_cuda_provider_matches_the_cpu_or_says_why_not() {
    let env = OnnxEnvironment::init(&locate_library(None).expect("ONNX Runtime")).expect("init");
    let mut cpu = env.load(&mlp(), &LoadOptions::default()).expect("CPU load");
    let opts = LoadOptions {
        device: Accelerator::Cuda(0),
        ..Default::default()
    };
    match env.load(&mlp(), &opts) {
        Ok(mut gpu_model) => {
            for rows in [1, 64, 1024] {
                let (a, b) = (outputs(&mut cpu, rows), outputs(&mut gpu_model, rows));
                assert_eq!(a.len(), b.len());
                let diff = a
                    .iter()
                    .zip(&b)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f32::max);
                assert!(diff < 1e-4, "{rows} rows: GPU and CPU differ by {diff}");
            }
        }
        Err(RuntimeError::DeviceUnavailable { device, message }) => {
            assert_eq!(device, "cuda:0");
            match gpu::devices() {
                Err(no_gpu) => assert!(message.contains("no GPU"), "{message} ({no_gpu})"),
                Ok(_) => assert!(
                    message.contains("CUDA execution provider"),
                    "a GPU is here, so only the provider can be missing: {message}"
                ),
            }
            eprintln!("skipping the CUDA provider comparison: {message}");
        }
        Err(e) => panic!("unexpected error loading onto the GPU: {e}"),
    }
}

#[test]
fn a_gpu_past_the_last_is_refused_by_number() {
    let env = OnnxEnvironment::init(&locate_library(None).expect("ONNX Runtime")).expect("init");
    let opts = LoadOptions {
        device: Accelerator::Cuda(63),
        ..Default::default()
    };
    let err = env
        .load(&mlp(), &opts)
        .err()
        .expect("no machine has 64 GPUs");
    let text = err.to_string();
    assert!(text.contains("cuda:63"), "{text}");
    match gpu::devices() {
        Ok(_) => assert!(text.contains("GPU 63 does not exist"), "{text}"),
        Err(_) => assert!(text.contains("no GPU"), "{text}"),
    }
}
