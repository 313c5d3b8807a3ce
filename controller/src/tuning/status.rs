//! What Katib reports (`kubeflow.org/v1beta1`), with its field names, so that the Katib SDK reads
//! Osprey's Experiments and Trials unchanged: conditions, trial counts and lists, the current
//! optimal trial, observations (`min`, `max`, `latest` per metric, as strings).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Experiment condition types.
pub const CREATED: &str = "Created";
pub const RUNNING: &str = "Running";
pub const SUCCEEDED: &str = "Succeeded";
pub const FAILED: &str = "Failed";
/// Trial condition types besides the above.
pub const KILLED: &str = "Killed";
pub const METRICS_UNAVAILABLE: &str = "MetricsUnavailable";
pub const EARLY_STOPPED: &str = "EarlyStopped";

/// A condition as Katib writes it: the same fields as the training operator's (type, status,
/// reason, message, lastUpdateTime, lastTransitionTime).
pub use crate::training::crd::JobCondition as KatibCondition;

/// One parameter's value in a trial.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ParameterAssignment {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

/// A metric as observed over a trial: numbers as strings, as Katib keeps them.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ObservedMetric {
    pub name: String,
    #[serde(default)]
    pub min: String,
    #[serde(default)]
    pub max: String,
    #[serde(default)]
    pub latest: String,
}

/// A trial's metrics.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Observation {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<ObservedMetric>,
}

/// The best trial so far.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptimalTrial {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub best_trial_name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter_assignments: Vec<ParameterAssignment>,
    #[serde(default)]
    pub observation: Observation,
}

/// An Experiment's status, as Katib reports it.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperimentStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconcile_time: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<KatibCondition>,
    #[serde(default)]
    pub current_optimal_trial: OptimalTrial,
    #[serde(default)]
    pub running_trial_list: Vec<String>,
    #[serde(default)]
    pub pending_trial_list: Vec<String>,
    #[serde(default)]
    pub failed_trial_list: Vec<String>,
    #[serde(default)]
    pub succeeded_trial_list: Vec<String>,
    #[serde(default)]
    pub killed_trial_list: Vec<String>,
    #[serde(default)]
    pub early_stopped_trial_list: Vec<String>,
    #[serde(default)]
    pub metrics_unavailable_trial_list: Vec<String>,
    #[serde(default)]
    pub trials: i32,
    #[serde(default)]
    pub trials_succeeded: i32,
    #[serde(default)]
    pub trials_failed: i32,
    #[serde(default)]
    pub trials_killed: i32,
    #[serde(default)]
    pub trials_pending: i32,
    #[serde(default)]
    pub trials_running: i32,
    #[serde(default)]
    pub trials_early_stopped: i32,
    #[serde(default)]
    pub trial_metrics_unavailable: i32,
}

/// Whether `conditions` has `type_` with status True.
pub fn is_true(conditions: &[KatibCondition], type_: &str) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// Sets condition `type_` (with reason and message): Katib keeps one condition per type; a
/// changed one moves to the end (the `Type` column reads the last), with `now` as its update
/// time, and as its transition time when its status changed.
pub fn set_condition(
    conditions: &mut Vec<KatibCondition>,
    type_: &str,
    status: bool,
    reason: &str,
    message: &str,
    now: &str,
) {
    crate::training::status::upsert_condition(conditions, type_, status, reason, message, now);
}
