//! A training job as both runners act on it: the framework's conventions and the replica types,
//! in order, each with its count, pod template and restart policy. Built (and checked) from a
//! PyTorchJob or TFJob by [`super::validate`].

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// The training frameworks, with the training operator's conventions for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    PyTorch,
    TensorFlow,
}

impl Framework {
    pub fn kind(self) -> &'static str {
        match self {
            Framework::PyTorch => "PyTorchJob",
            Framework::TensorFlow => "TFJob",
        }
    }

    /// The spec field holding the replica types.
    pub fn specs_field(self) -> &'static str {
        match self {
            Framework::PyTorch => "pytorchReplicaSpecs",
            Framework::TensorFlow => "tfReplicaSpecs",
        }
    }

    /// Replica types in the order their pods are created and ranked.
    pub fn roles(self) -> &'static [&'static str] {
        match self {
            Framework::PyTorch => &["Master", "Worker"],
            Framework::TensorFlow => &["Chief", "Master", "PS", "Worker", "Evaluator"],
        }
    }

    /// The container the framework's environment and port belong to.
    pub fn container(self) -> &'static str {
        match self {
            Framework::PyTorch => "pytorch",
            Framework::TensorFlow => "tensorflow",
        }
    }

    /// The name of the container port the replicas talk on, and its default.
    pub fn port_name(self) -> &'static str {
        match self {
            Framework::PyTorch => "pytorchjob-port",
            Framework::TensorFlow => "tfjob-port",
        }
    }

    pub fn default_port(self) -> i32 {
        match self {
            Framework::PyTorch => 23456,
            Framework::TensorFlow => 2222,
        }
    }

    pub fn default_restart(self) -> RestartPolicy {
        match self {
            Framework::PyTorch => RestartPolicy::OnFailure,
            Framework::TensorFlow => RestartPolicy::Never,
        }
    }

    /// Value of the `training.kubeflow.org/operator-name` label.
    pub fn operator_name(self) -> &'static str {
        match self {
            Framework::PyTorch => "pytorchjob-controller",
            Framework::TensorFlow => "tfjob-controller",
        }
    }
}

/// When a replica that exited is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
    /// Exit codes 128 and above (signals: 137 = killed, 143 = terminated) are retried;
    /// 1-127 are the program's own failures and permanent.
    ExitCode,
}

impl RestartPolicy {
    pub fn parse(s: &str) -> Option<RestartPolicy> {
        Some(match s {
            "Always" => RestartPolicy::Always,
            "OnFailure" => RestartPolicy::OnFailure,
            "Never" => RestartPolicy::Never,
            "ExitCode" => RestartPolicy::ExitCode,
            _ => return None,
        })
    }

    /// Whether a replica that exited with `code` is started again.
    pub fn restarts(self, code: i32) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Never => false,
            RestartPolicy::ExitCode => code >= 128,
        }
    }

    /// The pod's own restartPolicy: the kubelet restarts in place for Always and OnFailure;
    /// ExitCode pods never restart in place (the controller recreates them).
    pub fn pod_policy(self) -> &'static str {
        match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never | RestartPolicy::ExitCode => "Never",
        }
    }
}

/// Which pods go once the job has finished.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CleanPodPolicy {
    All,
    Running,
    None,
}

/// One replica type.
#[derive(Clone, Debug, PartialEq)]
pub struct Replica {
    /// Canonical name (`Master`, `Worker`, `PS`, ...).
    pub role: &'static str,
    pub count: i32,
    pub template: PodTemplateSpec,
    pub restart: RestartPolicy,
    /// The port named after the framework on its container (or the default).
    pub port: i32,
}

/// PyTorch elastic settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Elastic {
    pub min_replicas: i32,
    pub max_replicas: i32,
    pub max_restarts: Option<i32>,
    pub rdzv_backend: String,
    pub rdzv_id: Option<String>,
    pub rdzv_conf: Vec<(String, String)>,
}

/// A checked training job.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub framework: Framework,
    pub name: String,
    pub namespace: String,
    /// In [`Framework::roles`] order; types with no entry in the spec are absent.
    pub replicas: Vec<Replica>,
    pub clean_pod_policy: CleanPodPolicy,
    pub ttl_seconds_after_finished: Option<i64>,
    pub active_deadline_seconds: Option<i64>,
    pub backoff_limit: Option<i32>,
    pub suspend: bool,
    /// TFJob `successPolicy: AllWorkers`.
    pub all_workers: bool,
    pub elastic: Option<Elastic>,
    pub nproc_per_node: Option<String>,
}

impl Job {
    pub fn replica(&self, role: &str) -> Option<&Replica> {
        self.replicas.iter().find(|r| r.role == role)
    }

    pub fn total_replicas(&self) -> i32 {
        self.replicas.iter().map(|r| r.count).sum()
    }

    /// Every pod of the job as (role, index), in creation order.
    pub fn pods(&self) -> Vec<(&'static str, i32)> {
        self.replicas
            .iter()
            .flat_map(|r| (0..r.count).map(move |i| (r.role, i)))
            .collect()
    }

    /// The pod (and Service) name the training operator gives a replica.
    pub fn pod_name(&self, role: &str, index: i32) -> String {
        pod_name(&self.name, role, index)
    }

    /// Whether a replica has the `job-role: master` label: PyTorch's Master; TF's Chief or
    /// Master, or worker 0 when there is neither.
    pub fn is_master_role(&self, role: &str, index: i32) -> bool {
        match self.framework {
            Framework::PyTorch => role == "Master",
            Framework::TensorFlow => {
                if self.replica("Chief").is_some() || self.replica("Master").is_some() {
                    role == "Chief" || role == "Master"
                } else {
                    role == "Worker" && index == 0
                }
            }
        }
    }
}

/// `<job>-<role in lower case>-<index>`.
pub fn pod_name(job: &str, role: &str, index: i32) -> String {
    format!("{job}-{}-{index}", role.to_lowercase())
}
