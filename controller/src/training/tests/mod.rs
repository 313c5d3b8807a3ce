//! Unit tests of the training jobs: parsing and validation, naming and labels, environments,
//! the state machine.

mod env;
mod status;
mod validate;

use super::crd::{PyTorchJob, TFJob};
use super::job::Job;

/// A PyTorchJob manifest with `master` masters and `workers` workers under `policy`.
pub fn pytorch_yaml(master: i32, workers: i32, policy: &str, run_policy: &str) -> String {
    let container = r#"
          containers:
            - name: pytorch
              image: python:3.11
              command: ["python3", "train.py"]"#;
    let mut specs = String::new();
    if master > 0 {
        specs.push_str(&format!(
            "\n    Master:\n      replicas: {master}\n      restartPolicy: {policy}\n      template:\n        spec:{container}"
        ));
    }
    if workers > 0 {
        specs.push_str(&format!(
            "\n    Worker:\n      replicas: {workers}\n      restartPolicy: {policy}\n      template:\n        spec:{container}"
        ));
    }
    format!(
        "apiVersion: kubeflow.org/v1\nkind: PyTorchJob\nmetadata:\n  name: demo\n  namespace: team\nspec:\n  runPolicy: {{{run_policy}}}\n  pytorchReplicaSpecs:{specs}\n"
    )
}

pub fn pytorch(master: i32, workers: i32, policy: &str, run_policy: &str) -> Job {
    let j: PyTorchJob =
        serde_yaml::from_str(&pytorch_yaml(master, workers, policy, run_policy)).expect("parses");
    super::validate::pytorch(&j).expect("valid")
}

pub fn tf(yaml_specs: &str, success_policy: &str) -> Job {
    let text = format!(
        "apiVersion: kubeflow.org/v1\nkind: TFJob\nmetadata:\n  name: tfdemo\n  namespace: ml\nspec:\n  successPolicy: \"{success_policy}\"\n  tfReplicaSpecs:\n{yaml_specs}"
    );
    let j: TFJob = serde_yaml::from_str(&text).expect("parses");
    super::validate::tf(&j).expect("valid")
}

/// `role: {replicas: n}` with a tensorflow container, indented for [`tf`].
pub fn tf_role(role: &str, n: i32) -> String {
    format!(
        "    {role}:\n      replicas: {n}\n      template:\n        spec:\n          containers:\n            - name: tensorflow\n              image: tf:2\n              command: [python3, t.py]\n"
    )
}
