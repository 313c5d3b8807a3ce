use super::super::desired;
use super::super::env::{replica_env, tf_config, ClusterAddresses};
use super::super::labels;
use super::{pytorch, tf, tf_role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use std::collections::BTreeMap;

fn env_map(v: Vec<(String, String)>) -> BTreeMap<String, String> {
    v.into_iter().collect()
}

#[test]
fn pytorch_master_and_workers_get_ranks_and_the_master_address() {
    let j = pytorch(1, 2, "OnFailure", "");
    let master = env_map(replica_env(&j, "Master", 0, &ClusterAddresses));
    assert_eq!(master["MASTER_ADDR"], "demo-master-0");
    assert_eq!(master["MASTER_PORT"], "23456");
    assert_eq!(master["PET_MASTER_ADDR"], "demo-master-0");
    assert_eq!(master["PET_MASTER_PORT"], "23456");
    assert_eq!(master["WORLD_SIZE"], "3");
    assert_eq!(master["RANK"], "0");
    assert_eq!(master["PET_NODE_RANK"], "0");
    assert_eq!(master["PET_NNODES"], "3");
    assert_eq!(master["PYTHONUNBUFFERED"], "1");
    let w1 = env_map(replica_env(&j, "Worker", 1, &ClusterAddresses));
    assert_eq!(w1["RANK"], "2");
    assert_eq!(w1["WORLD_SIZE"], "3");
    assert!(!w1.contains_key("PET_NPROC_PER_NODE"));
}

#[test]
fn workers_only_rank_from_worker_zero() {
    let j = pytorch(0, 2, "OnFailure", "");
    let w0 = env_map(replica_env(&j, "Worker", 0, &ClusterAddresses));
    assert_eq!(w0["MASTER_ADDR"], "demo-worker-0");
    assert_eq!(w0["RANK"], "0");
    let w1 = env_map(replica_env(&j, "Worker", 1, &ClusterAddresses));
    assert_eq!(w1["RANK"], "1");
    assert_eq!(w1["WORLD_SIZE"], "2");
}

#[test]
fn nproc_per_node_and_elastic_settings_reach_torchrun() {
    let mut j = pytorch(1, 2, "OnFailure", "");
    j.nproc_per_node = Some("4".into());
    j.elastic = Some(super::super::job::Elastic {
        min_replicas: 1,
        max_replicas: 3,
        max_restarts: Some(5),
        rdzv_backend: "c10d".into(),
        rdzv_id: None,
        rdzv_conf: vec![("timeout".into(), "60".into())],
    });
    let e = env_map(replica_env(&j, "Worker", 0, &ClusterAddresses));
    assert_eq!(e["WORLD_SIZE"], "12");
    assert_eq!(e["PET_NPROC_PER_NODE"], "4");
    assert_eq!(e["PET_NNODES"], "1:3");
    assert_eq!(e["PET_MAX_RESTARTS"], "5");
    assert_eq!(e["PET_RDZV_BACKEND"], "c10d");
    assert_eq!(e["PET_RDZV_ENDPOINT"], "demo-master-0:23456");
    assert_eq!(e["PET_RDZV_CONF"], "timeout=60");
}

#[test]
fn tf_config_lists_the_cluster_and_the_task() {
    let j = tf(
        &format!(
            "{}{}{}",
            tf_role("Chief", 1),
            tf_role("Worker", 2),
            tf_role("PS", 1)
        ),
        "",
    );
    let c: serde_json::Value =
        serde_json::from_str(&tf_config(&j, "Worker", 1, &ClusterAddresses)).expect("json");
    assert_eq!(
        c["cluster"]["chief"],
        serde_json::json!(["tfdemo-chief-0.ml.svc:2222"])
    );
    assert_eq!(
        c["cluster"]["worker"],
        serde_json::json!(["tfdemo-worker-0.ml.svc:2222", "tfdemo-worker-1.ml.svc:2222"])
    );
    assert_eq!(
        c["cluster"]["ps"],
        serde_json::json!(["tfdemo-ps-0.ml.svc:2222"])
    );
    assert_eq!(c["task"], serde_json::json!({"type": "worker", "index": 1}));
    assert_eq!(c["environment"], "cloud");
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "kubeflow.org/v1".into(),
        kind: "PyTorchJob".into(),
        name: "demo".into(),
        uid: "u-1".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[test]
fn pods_and_services_carry_the_operators_names_and_labels() {
    let j = pytorch(1, 2, "ExitCode", "");
    let pod = desired::pod(&j, "Worker", 1, &owner(), 2).expect("pod");
    assert_eq!(pod.metadata.name.as_deref(), Some("demo-worker-1"));
    let l = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(l[labels::JOB_NAME], "demo");
    assert_eq!(l[labels::REPLICA_TYPE], "worker");
    assert_eq!(l[labels::REPLICA_INDEX], "1");
    assert_eq!(l[labels::OPERATOR_NAME], "pytorchjob-controller");
    assert!(!l.contains_key(labels::JOB_ROLE));
    assert_eq!(
        pod.metadata.annotations.unwrap_or_default()[labels::RECREATIONS],
        "2"
    );
    let spec = pod.spec.expect("spec");
    // ExitCode restarts are the controller's: the kubelet never restarts in place.
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    let env = spec.containers[0].env.clone().unwrap_or_default();
    assert!(env
        .iter()
        .any(|e| e.name == "RANK" && e.value.as_deref() == Some("2")));
    let master = desired::pod(&j, "Master", 0, &owner(), 0).expect("pod");
    assert_eq!(
        master.metadata.labels.unwrap_or_default()[labels::JOB_ROLE],
        "master"
    );
    let svc = desired::service(&j, "Master", 0, &owner()).expect("service");
    let s = svc.spec.expect("spec");
    assert_eq!(s.cluster_ip.as_deref(), Some("None"));
    assert_eq!(s.ports.unwrap_or_default()[0].port, 23456);
    assert_eq!(s.selector.unwrap_or_default()[labels::REPLICA_INDEX], "0");
}

#[test]
fn a_variable_the_container_sets_is_kept() {
    let mut j = pytorch(1, 0, "OnFailure", "");
    if let Some(spec) = j.replicas[0].template.spec.as_mut() {
        spec.containers[0].env = Some(vec![k8s_openapi::api::core::v1::EnvVar {
            name: "MASTER_PORT".into(),
            value: Some("1234".into()),
            value_from: None,
        }]);
    }
    let pod = desired::pod(&j, "Master", 0, &owner(), 0).expect("pod");
    let env = pod.spec.expect("spec").containers[0]
        .env
        .clone()
        .unwrap_or_default();
    let ports: Vec<_> = env.iter().filter(|e| e.name == "MASTER_PORT").collect();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].value.as_deref(), Some("1234"));
}

#[test]
fn tf_masters_are_the_chief_or_worker_zero() {
    let j = tf(
        &format!("{}{}", tf_role("Chief", 1), tf_role("Worker", 2)),
        "",
    );
    assert!(j.is_master_role("Chief", 0));
    assert!(!j.is_master_role("Worker", 0));
    let j = tf(&tf_role("Worker", 2), "");
    assert!(j.is_master_role("Worker", 0));
    assert!(!j.is_master_role("Worker", 1));
}
