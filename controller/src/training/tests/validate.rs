use super::super::crd::{PyTorchJob, TFJob};
use super::super::job::{CleanPodPolicy, Framework, RestartPolicy};
use super::super::validate;
use super::{pytorch, pytorch_yaml, tf, tf_role};

fn pytorch_error(yaml: &str) -> String {
    let j: PyTorchJob = serde_yaml::from_str(yaml).expect("parses");
    validate::pytorch(&j).expect_err("invalid").to_string()
}

#[test]
fn a_valid_job_orders_replicas_and_takes_defaults() {
    let j = pytorch(1, 2, "OnFailure", "");
    assert_eq!(j.framework, Framework::PyTorch);
    assert_eq!(j.namespace, "team");
    let roles: Vec<_> = j.replicas.iter().map(|r| (r.role, r.count)).collect();
    assert_eq!(roles, vec![("Master", 1), ("Worker", 2)]);
    assert_eq!(j.replicas[0].port, 23456);
    assert_eq!(j.clean_pod_policy, CleanPodPolicy::None);
    assert_eq!(j.backoff_limit, None);
    assert!(!j.suspend);
    assert_eq!(j.pods(), vec![("Master", 0), ("Worker", 0), ("Worker", 1)]);
}

#[test]
fn lower_case_replica_types_are_accepted() {
    let yaml = pytorch_yaml(1, 1, "Never", "")
        .replace("Master:", "master:")
        .replace("Worker:", "worker:");
    let j: PyTorchJob = serde_yaml::from_str(&yaml).expect("parses");
    let job = validate::pytorch(&j).expect("valid");
    assert_eq!(job.replicas[0].role, "Master");
    assert_eq!(job.replicas[1].restart, RestartPolicy::Never);
}

#[test]
fn the_named_port_is_used() {
    let yaml = pytorch_yaml(1, 0, "OnFailure", "").replace(
        "command: [\"python3\", \"train.py\"]",
        "command: [\"python3\", \"train.py\"]\n              ports: [{name: pytorchjob-port, containerPort: 29500}]",
    );
    let j: PyTorchJob = serde_yaml::from_str(&yaml).expect("parses");
    assert_eq!(
        validate::pytorch(&j).expect("valid").replicas[0].port,
        29500
    );
}

#[test]
fn bad_manifests_name_their_field() {
    let cases = [
        (pytorch_yaml(0, 0, "OnFailure", "").replace("pytorchReplicaSpecs:", "pytorchReplicaSpecs: {}"), "spec.pytorchReplicaSpecs: no replica types"),
        (pytorch_yaml(1, 1, "OnFailure", "").replace("Worker:", "Launcher:"), "spec.pytorchReplicaSpecs.Launcher: unknown replica type"),
        (pytorch_yaml(1, 1, "OnFailure", "").replace("Worker:\n      replicas: 1", "Worker:\n      replicas: -1"), "spec.pytorchReplicaSpecs.Worker.replicas: must not be negative (got -1)"),
        (pytorch_yaml(1, 1, "Sometimes", ""), "spec.pytorchReplicaSpecs.Master.restartPolicy: \"Sometimes\" is not Always, OnFailure, Never or ExitCode"),
        (pytorch_yaml(1, 1, "OnFailure", "").replace("Master:\n      replicas: 1", "Master:\n      replicas: 2"), "spec.pytorchReplicaSpecs.Master.replicas: must be 1 (got 2)"),
        (pytorch_yaml(1, 1, "OnFailure", "").replace("name: pytorch", "name: trainer"), "spec.pytorchReplicaSpecs.Master.template.spec.containers: no container named \"pytorch\""),
        (pytorch_yaml(1, 1, "OnFailure", "cleanPodPolicy: Some"), "spec.runPolicy.cleanPodPolicy: \"Some\" is not All, Running or None"),
        (pytorch_yaml(1, 1, "OnFailure", "backoffLimit: -2"), "spec.runPolicy.backoffLimit: must not be negative (got -2)"),
        (pytorch_yaml(1, 1, "OnFailure", "activeDeadlineSeconds: 0"), "spec.runPolicy.activeDeadlineSeconds: must be positive"),
        (pytorch_yaml(1, 0, "OnFailure", "").replace("Master:\n      replicas: 1", "Master:\n      replicas: 0"), "spec.pytorchReplicaSpecs: every replica type has 0 replicas"),
        (pytorch_yaml(1, 1, "OnFailure", "").replace("name: demo", &format!("name: {}", "x".repeat(60))), "metadata.name"),
        (pytorch_yaml(1, 1, "OnFailure", "").replace("spec:\n  runPolicy", "spec:\n  nprocPerNode: \"zero\"\n  runPolicy"), "spec.nprocPerNode"),
        (pytorch_yaml(0, 2, "OnFailure", "").replace("spec:\n  runPolicy", "spec:\n  elasticPolicy: {minReplicas: 3, maxReplicas: 2}\n  runPolicy"), "spec.elasticPolicy.maxReplicas: must not be below minReplicas 3 (got 2)"),
        (pytorch_yaml(0, 2, "OnFailure", "").replace("spec:\n  runPolicy", "spec:\n  elasticPolicy: {minReplicas: 1, maxReplicas: 2, maxRestarts: -1}\n  runPolicy"), "spec.elasticPolicy.maxRestarts: must not be negative (got -1)"),
    ];
    for (yaml, want) in cases {
        let got = pytorch_error(&yaml);
        assert!(got.contains(want), "want {want:?} in {got:?}");
    }
}

#[test]
fn tf_checks_its_own_fields() {
    let bad = |specs: &str, policy: &str| {
        let text = format!("apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata: {{name: t}}\nspec:\n  successPolicy: \"{policy}\"\n  tfReplicaSpecs:\n{specs}");
        let j: TFJob = serde_yaml::from_str(&text).expect("parses");
        validate::tf(&j).expect_err("invalid").to_string()
    };
    assert!(bad(&tf_role("Chief", 2), "")
        .contains("spec.tfReplicaSpecs.Chief.replicas: must be 0 or 1 (got 2)"));
    assert!(bad(&tf_role("Worker", 1), "Most").contains("spec.successPolicy"));
    assert!(bad(
        &format!("{}{}", tf_role("Chief", 1), tf_role("Master", 1)),
        ""
    )
    .contains("Chief and Master"));
    assert!(bad(&tf_role("Worker", 1).replace("tensorflow", "tf"), "")
        .contains("no container named \"tensorflow\""));
    let j = tf(
        &format!(
            "{}{}{}",
            tf_role("worker", 2),
            tf_role("ps", 1),
            tf_role("chief", 1)
        ),
        "AllWorkers",
    );
    let roles: Vec<_> = j.replicas.iter().map(|r| r.role).collect();
    assert_eq!(roles, vec!["Chief", "PS", "Worker"]);
    assert!(j.all_workers);
    assert_eq!(j.replicas[0].restart, RestartPolicy::Never);
    assert_eq!(j.replicas[0].port, 2222);
}
