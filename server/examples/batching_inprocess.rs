//! In-process throughput of the MLP through the scheduler, dynamic batching off and on: what the
//! batcher buys once the transport is out of the picture.
//!
//!     cargo run --release -p osprey-server --example batching_inprocess [-- SECONDS]
//!
//! For each setting it starts a registry on a copy of models/mlp, lets 1, 8 and 64 tasks submit
//! batch-1 requests back to back for SECONDS (default 3), and prints requests per second and the
//! average executed batch size from the statistics.

use osprey_protocol::{InferRequest, Tensor, TensorData};
use osprey_runtimes::onnx::{locate_library, OnnxEnvironment};
use osprey_server::infer::{infer, Prepared};
use osprey_server::metrics::Protocol;
use osprey_server::model::layout::Repository;
use osprey_server::model::{LoadSettings, Registry};
use osprey_server::trace::RequestTrace;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn repo(dir: &Path, batching: bool) -> anyhow::Result<()> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/mlp");
    let dst = dir.join("mlp");
    std::fs::create_dir_all(dst.join("1"))?;
    std::fs::copy(src.join("1/model.onnx"), dst.join("1/model.onnx"))?;
    let config = std::fs::read_to_string(src.join("config.pbtxt"))?;
    let config = if batching {
        config
    } else {
        config.replace("dynamic_batching { }", "")
    };
    std::fs::write(dst.join("config.pbtxt"), config)?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let env = OnnxEnvironment::init(&locate_library(None)?)?;
    println!(
        "{:<10}{:>6}{:>12}{:>11}",
        "batching", "tasks", "infer/s", "avg batch"
    );
    for batching in [false, true] {
        let dir = tempfile::tempdir()?;
        repo(dir.path(), batching)?;
        let settings = LoadSettings {
            default_max_batch_size: 4,
            queue_per_instance: 1024,
            ..Default::default()
        };
        let registry = Arc::new(Registry::new(
            Repository::triton(dir.path().to_path_buf()),
            env.clone(),
            settings,
        ));
        registry.load("mlp").await?;
        let model = registry.get("mlp", None)?;
        for tasks in [1usize, 8, 64] {
            let before = model.stats.to_proto("mlp", "1");
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let handles: Vec<_> = (0..tasks)
                .map(|t| {
                    let model = model.clone();
                    tokio::spawn(async move {
                        let data: Vec<f32> =
                            (0..64).map(|i| (t * 64 + i) as f32 / 4096.0).collect();
                        let mut n = 0u64;
                        while Instant::now() < deadline {
                            let input =
                                Tensor::new("input", vec![1, 64], TensorData::Fp32(data.clone()))?;
                            let req = InferRequest {
                                inputs: vec![input],
                                ..Default::default()
                            };
                            let req = Prepared::new(&model, req)?;
                            infer(&model, req, Protocol::Grpc, &mut RequestTrace::off()).await?;
                            n += 1;
                        }
                        anyhow::Ok(n)
                    })
                })
                .collect();
            let mut total = 0;
            for h in handles {
                total += h.await??;
            }
            let after = model.stats.to_proto("mlp", "1");
            let execs = after.execution_count - before.execution_count;
            let rows = after.inference_count - before.inference_count;
            println!(
                "{:<10}{:>6}{:>12.0}{:>11.2}",
                if batching { "on" } else { "off" },
                tasks,
                total as f64 / seconds as f64,
                rows as f64 / execs.max(1) as f64
            );
        }
    }
    Ok(())
}
