//! The Trial resource (`kubeflow.org/v1beta1`, Katib's field names): one set of parameter
//! assignments, the resource that runs it (`runSpec`: the Experiment's trial template with the
//! assignments substituted, any kind), how its metrics are collected and when it counts as
//! succeeded or failed; the status Katib reports (conditions, observation).

use super::experiment::Objective;
use super::status::{KatibCondition, Observation, ParameterAssignment};
use crate::crd::free_form_object;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Label on a Trial (and its run's pods) naming its Experiment, as Katib sets it.
pub const EXPERIMENT_LABEL: &str = "katib.kubeflow.org/experiment";
/// Label on the run's pods naming their Trial, as Katib sets it.
pub const TRIAL_LABEL: &str = "katib.kubeflow.org/trial";

/// One trial of a Katib Experiment, run by Osprey's controller.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "kubeflow.org",
    version = "v1beta1",
    kind = "Trial",
    namespaced,
    status = "TrialStatus",
    doc = "One trial of a Katib Experiment (parameter assignments and the resource that runs them), run by Osprey's controller.",
    printcolumn = r#"{"name":"Type","type":"string","jsonPath":".status.conditions[-1:].type"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[-1:].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TrialSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    #[serde(default)]
    pub parameter_assignments: Vec<ParameterAssignment>,
    /// Rules under which the metrics collector stops the trial early (medianstop).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub early_stopping_rules: Vec<EarlyStoppingRule>,
    /// The resource that runs the trial (a batch Job, a PyTorchJob, a Pod...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub run_spec: Option<Value>,
    /// Keep the run resource once the trial finishes (default: deleted).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retain_run: bool,
    /// Katib's `metricsCollectorSpec` (StdOut by default, or File TEXT/JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub metrics_collector: Option<Value>,
    /// Labels that pick the pod whose metrics count (e.g. a PyTorchJob's master).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub primary_pod_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub primary_container_name: String,
    /// When the run succeeded: a GJSON path over the run resource that must match.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub success_condition: String,
    /// When the run failed: likewise.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub failure_condition: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A rule the metrics collector applies: stop once metric `name` compares `comparison`
/// (`less`, `greater`, `equal`) to `value`, from its `startStep`-th report on.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EarlyStoppingRule {
    pub name: String,
    pub value: String,
    pub comparison: String,
    #[serde(default)]
    pub start_step: i64,
}

/// A Trial's status, as Katib reports it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TrialStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<KatibCondition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<Observation>,
}
