//! PyTorchJob and TFJob (`kubeflow.org/v1`), with the Kubeflow training operator's field names,
//! so that its manifests and its SDK work unchanged against Osprey's controller.
//!
//! Fields the controller checks itself (replica type names, `restartPolicy`, `cleanPodPolicy`,
//! counts) are plain strings and integers in the schema: a wrong value is reported as a Failed
//! condition naming the field (see [`super::validate`]) rather than refused without a trace.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A PyTorch training job: a Master and Workers (or Workers only), each a Pod.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "kubeflow.org",
    version = "v1",
    kind = "PyTorchJob",
    namespaced,
    status = "JobStatus",
    doc = "A PyTorch training job (the Kubeflow training operator's PyTorchJob), run by Osprey's controller.",
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.conditions[-1:].type"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct PyTorchJobSpec {
    #[serde(default)]
    pub run_policy: RunPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elastic_policy: Option<ElasticPolicy>,
    /// Replica types (`Master`, `Worker`) and their pods.
    #[serde(default)]
    pub pytorch_replica_specs: BTreeMap<String, ReplicaSpec>,
    /// Processes per node (`PET_NPROC_PER_NODE`): a number, `auto`, `cpu` or `gpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nproc_per_node: Option<String>,
}

/// A TensorFlow training job: Chief/Master, PS, Workers and an Evaluator, each a Pod.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "kubeflow.org",
    version = "v1",
    kind = "TFJob",
    namespaced,
    status = "JobStatus",
    doc = "A TensorFlow training job (the Kubeflow training operator's TFJob), run by Osprey's controller.",
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.conditions[-1:].type"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TFJobSpec {
    #[serde(default)]
    pub run_policy: RunPolicy,
    /// `""` (the chief, else worker 0, decides) or `AllWorkers`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_policy: Option<String>,
    /// Replica types (`Chief`, `Master`, `PS`, `Worker`, `Evaluator`) and their pods.
    #[serde(default)]
    pub tf_replica_specs: BTreeMap<String, ReplicaSpec>,
    /// Accepted for compatibility; TF_CONFIG always lists the whole cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_dynamic_worker: Option<bool>,
}

/// One replica type: how many pods, what they run, when they restart.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaSpec {
    /// Number of pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default)]
    pub template: PodTemplateSpec,
    /// `Always`, `OnFailure`, `Never` or `ExitCode` (exit codes 128 and above are retried,
    /// 1-127 are permanent). Default: `OnFailure` for PyTorch, `Never` for TF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<String>,
}

/// What happens around the replicas: clean-up, deadlines, retries, suspension.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunPolicy {
    /// Pods deleted once the job finishes: `All`, `Running` or `None` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clean_pod_policy: Option<String>,
    /// Seconds after finishing before the job itself is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
    /// Seconds the job may run (from its start) before it is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// Restarts allowed over all replicas before the job is failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_limit: Option<i32>,
    /// Accepted for compatibility (gang scheduling needs a batch scheduler).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling_policy: Option<SchedulingPolicy>,
    /// True: the job's pods are deleted and it waits; false again: they are created anew.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// The controller that runs the job; Osprey runs jobs with none or the training operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

/// The training operator's gang-scheduling settings.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchedulingPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_timeout_seconds: Option<i32>,
}

/// PyTorch elastic training (torchrun's rendezvous), passed to the pods as `PET_*` variables.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ElasticPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<i32>,
    /// `c10d` (default), `etcd` or `etcd-v2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdzv_backend: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdzv_port: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdzv_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdzv_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rdzv_conf: Vec<RdzvConf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standalone: Option<bool>,
    #[serde(
        default,
        rename = "nProcPerNode",
        skip_serializing_if = "Option::is_none"
    )]
    pub n_proc_per_node: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<i32>,
}

/// One `key=value` of the rendezvous configuration.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct RdzvConf {
    pub key: String,
    pub value: String,
}

/// What the controller (or `osprey train run`) last observed of a job.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Created, Running, Restarting, Succeeded, Suspended, Failed; the newest change last.
    #[serde(default)]
    pub conditions: Vec<JobCondition>,
    /// Per replica type: pods active, succeeded and failed.
    #[serde(default)]
    pub replica_statuses: BTreeMap<String, ReplicaStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<String>,
}

/// One condition, as the training operator writes them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCondition {
    #[serde(rename = "type")]
    pub type_: String,
    /// "True" or "False".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// The pods of one replica type.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<LabelSelector>,
    /// The label selector of the type's pods, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}
