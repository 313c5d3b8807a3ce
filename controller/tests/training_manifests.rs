//! The training operator's documentation manifests (tests/manifests/training/ and
//! examples/training/pytorch-simple.yaml, unchanged) read and checked as the controller and
//! `osprey train run` read them, with the environment their replicas get.

use osprey_controller::training::env::{replica_env, ClusterAddresses};
use osprey_controller::training::job::{Framework, RestartPolicy};
use osprey_controller::training::local::manifest;
use std::collections::BTreeMap;
use std::path::Path;

fn read(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn the_docs_pytorch_example() {
    let job = manifest::parse(&read("../examples/training/pytorch-simple.yaml")).expect("valid");
    assert_eq!(job.framework, Framework::PyTorch);
    assert_eq!(
        (job.name.as_str(), job.namespace.as_str()),
        ("pytorch-simple", "kubeflow")
    );
    assert_eq!(job.pods(), vec![("Master", 0), ("Worker", 0)]);
    assert_eq!(job.replicas[0].restart, RestartPolicy::OnFailure);
    let env: BTreeMap<_, _> = replica_env(&job, "Worker", 0, &ClusterAddresses)
        .into_iter()
        .collect();
    assert_eq!(env["MASTER_ADDR"], "pytorch-simple-master-0");
    assert_eq!(env["RANK"], "1");
    assert_eq!(env["WORLD_SIZE"], "2");
}

#[test]
fn the_docs_tf_example() {
    let job = manifest::parse(&read("tests/manifests/training/tf-simple.yaml")).expect("valid");
    assert_eq!(job.framework, Framework::TensorFlow);
    assert_eq!(job.pods(), vec![("Worker", 0), ("Worker", 1)]);
    assert!(job.is_master_role("Worker", 0));
    let env: BTreeMap<_, _> = replica_env(&job, "Worker", 1, &ClusterAddresses)
        .into_iter()
        .collect();
    let tf: serde_json::Value = serde_json::from_str(&env["TF_CONFIG"]).expect("json");
    assert_eq!(
        tf["cluster"]["worker"],
        serde_json::json!([
            "tfjob-simple-worker-0.kubeflow.svc:2222",
            "tfjob-simple-worker-1.kubeflow.svc:2222"
        ])
    );
    assert_eq!(tf["task"]["index"], 1);
}

#[test]
fn the_docs_elastic_example() {
    let job = manifest::parse(&read("tests/manifests/training/elastic-echo.yaml")).expect("valid");
    let elastic = job.elastic.clone().expect("elasticPolicy");
    assert_eq!((elastic.min_replicas, elastic.max_replicas), (1, 2));
    assert_eq!(elastic.max_restarts, Some(100));
    let env: BTreeMap<_, _> = replica_env(&job, "Worker", 1, &ClusterAddresses)
        .into_iter()
        .collect();
    assert_eq!(env["PET_NNODES"], "1:2");
    assert_eq!(env["PET_RDZV_BACKEND"], "c10d");
    assert_eq!(env["PET_MAX_RESTARTS"], "100");
    assert_eq!(
        env["PET_RDZV_ENDPOINT"],
        "elastic-example-echo-worker-0:23456"
    );
}
