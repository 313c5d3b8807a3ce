//! GPU instances as every machine meets them. `instance_group { kind: KIND_GPU gpus: [...] }`
//! on a GPU that is not there (no driver, no GPU, an index past the last GPU) makes the model
//! UNAVAILABLE with the device and the reason, and a load through the API answers 400 with the
//! same; GPU indices are checked by field; /metrics has GPU series exactly when NVML sees GPUs.
//! These run everywhere: each asserts what this machine's GPUs (read through NVML) imply. The
//! GPU-only checks (the same outputs on the GPU as on the CPU) are in runtimes/tests/gpu.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{index_row, temp_repo_with, TestServer};
use serde_json::json;

fn with_config(repo: &std::path::Path, extra: &str) {
    let path = repo.join("mlp/config.pbtxt");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{text}\n{extra}\n")).unwrap();
}

/// The MLP with `extra` appended loads as UNAVAILABLE with a reason containing each of
/// `expect`, and an explicit load answers 400 saying the same; the rest of the repository
/// serves.
async fn refused(extra: &str, expect: &[&str]) {
    let repo = temp_repo_with(&["mlp", "iris"]);
    with_config(repo.path(), extra);
    let s = TestServer::start_with(repo.path(), |a| a.strict_readiness = false).await;
    let row = index_row(&s, "mlp").await;
    assert_eq!(row["state"], "UNAVAILABLE", "{extra}: {row}");
    let reason = row["reason"].as_str().unwrap();
    for e in expect {
        assert!(reason.contains(e), "{extra}: expected '{e}' in: {reason}");
    }
    let (status, v) = s
        .post_json("/v2/repository/models/mlp/load", &json!({}))
        .await;
    assert_eq!(status, 400, "{extra}: {v}");
    assert!(v["error"].as_str().unwrap().contains(expect[0]), "{v}");
    assert_eq!(s.get("/v2/models/iris/ready").await.0, 200);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_that_is_not_there_makes_the_model_unavailable_with_the_reason() {
    let why = match osprey_runtimes::gpu::devices() {
        Ok(gpus) => {
            eprintln!("this machine has {} GPU(s)", gpus.len());
            "does not exist"
        }
        Err(e) => {
            eprintln!("this machine: {e}");
            "no GPU"
        }
    };
    refused(
        "instance_group [ { count: 1 kind: KIND_GPU gpus: [ 63 ] } ]",
        &["cuda:63", why],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_indices_are_checked_by_field() {
    refused(
        "instance_group [ { count: 1 kind: KIND_GPU gpus: [ 0, -1 ] } ]",
        &["instance_group[1].gpus: -1 is not a GPU index"],
    )
    .await;
    refused(
        "instance_group [ { count: 1 kind: KIND_CPU gpus: [ 0 ] } ]",
        &["instance_group[1].gpus is set on a KIND_CPU group"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_series_are_there_exactly_when_gpus_are() {
    let repo = temp_repo_with(&["iris"]);
    let s = TestServer::start(repo.path()).await;
    let text = s.metrics_text().await;
    match osprey_runtimes::gpu::devices() {
        Ok(gpus) => {
            for g in &gpus {
                let line = format!("nv_gpu_memory_total_bytes{{gpu_uuid=\"{}\"}}", g.uuid);
                assert!(text.contains(&line), "{line} missing from:\n{text}");
            }
            assert!(text.contains("# TYPE nv_gpu_utilization gauge"), "{text}");
        }
        Err(e) => {
            eprintln!("no GPU, so no GPU series expected: {e}");
            assert!(
                !text.contains("nv_gpu_"),
                "GPU series without a GPU:\n{text}"
            );
            assert!(!text.contains("nv_energy_consumption"), "{text}");
        }
    }
    s.shutdown().await;
}
